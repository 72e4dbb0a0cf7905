"""The preprocessing stage end to end: the real entry point on tiny corpora (every test is `slow`).

One module-scoped run over a corpus with every kind of damage serves most assertions; the other
runs each show one behaviour that needs a run of its own (tokenizer, multi-label, multi-process,
failed runs).
"""

from __future__ import annotations

import glob
import gzip
import json
import os
import random
import shutil
import zlib

import pytest
import tensorflow as tf
import tensorflow_transform as tft

from pipelines import preprocess
from schemas import features, output_dirs, rejections
from tests.conftest import make_documents, write_corpus
from tests.pipelines.fresh_process import token_ids_in_fresh_process

pytestmark = pytest.mark.slow

MAX_SEQ_LENGTH = 16
COMMON_FLAGS = ["--max-seq-length", str(MAX_SEQ_LENGTH), "--vocab-size", "200", "--min-frequency", "1",
                "--eval-fraction", "0.25"]


def run_preprocess(inputs, output_dir, *extra: str) -> dict:
    inputs = [inputs] if isinstance(inputs, str) else inputs
    return preprocess.run([arg for path in inputs for arg in ("--input", str(path))]
                          + ["--output-dir", str(output_dir), *COMMON_FLAGS, *extra])


def read_split(output_dir, split: str) -> list[dict]:
    """Parses a split's TFRecords with the transformed feature spec of the run."""
    spec = tft.TFTransformOutput(str(output_dir)).transformed_feature_spec()
    files = sorted(glob.glob(os.path.join(str(output_dir), split, f"*{features.TFRECORD_SUFFIX}")))
    dataset = tf.data.TFRecordDataset(files, compression_type="GZIP").map(lambda r: tf.io.parse_single_example(r, spec))
    return [{k: v.numpy().tolist() for k, v in example.items()} for example in dataset]


def example_key(example: dict) -> tuple:
    return tuple(example[features.TOKEN_IDS]), example[features.LABEL_ID]


def read_rejected(output_dir) -> list[dict]:
    return [json.loads(line)
            for path in sorted(glob.glob(os.path.join(str(output_dir), features.REJECTED_DIR, "*.jsonl")))
            for line in open(path, encoding="utf-8")]


def siblings(output_dir) -> list[str]:
    """What lies beside the output directory, under its own name."""
    name = os.path.basename(str(output_dir))
    return sorted(entry for entry in os.listdir(os.path.dirname(str(output_dir))) if entry.startswith(name))


# --- one run over a damaged, mixed corpus ---------------------------------------------------------

BROKEN_LINES = {
    rejections.UNPARSABLE_RECORD: ['{"id": "x1", "text": "unterminated', '["not", "an", "object"]'],
    rejections.MISSING_TEXT: ['{"id": "x2", "label": "sports"}', '{"id": "x3", "text": null, "label": "sports"}'],
    rejections.EMPTY_TEXT: ['{"id": "x4", "text": "   ", "label": "sports"}',
                            '{"id": "x10", "text": "\\u200b", "label": "sports"}',
                            '{"id": "x11", "text": "\\u200e\\u200f\\ufeff", "label": "science"}'],
    rejections.MISSING_LABEL: ['{"id": "x5", "text": "team wins"}', '{"id": "x6", "text": "team wins", "label": ""}'],
    rejections.WRONG_TYPE: ['{"id": "x7", "text": 42, "label": "sports"}', '{"id": "x8", "text": "x", "label": [1]}',
                            '{"id": "x12", "text": "y", "label": true}'],
    rejections.MISSING_ID: ['{"text": "team wins a match", "label": "sports"}'],
}


def renamed(documents: list[dict], prefix: str) -> list[dict]:
    return [dict(d, id=f"{prefix}-{d['id']}") for d in documents]


def complete_lines_of_truncated_gzip(data: bytes) -> int:
    return zlib.decompressobj(zlib.MAX_WBITS | 16).decompress(data).count(b"\n")


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """A run over broken JSON Lines, a gzip CSV and a truncated gzip JSON Lines file:
    (stats, output dir, {expected facts})."""
    tmp_path = tmp_path_factory.mktemp("mixed")
    documents = make_documents()
    lines = [json.dumps(d) for d in documents]
    rng = random.Random(3)
    for broken in BROKEN_LINES.values():
        for line in broken:
            lines.insert(rng.randrange(len(lines)), line)
    broken_jsonl = tmp_path / "broken.jsonl"
    broken_jsonl.write_bytes(("\n".join(lines) + "\n").encode()
                             + b'{"id": "x9", "text": "caf\xe9 bar", "label": "sports"}\n')

    csv_documents = renamed(make_documents(30, seed=8), "csv")
    csv_gz = tmp_path / "corpus.csv.gz"
    with open(write_corpus(csv_documents, tmp_path / "csv", "csv"), "rb") as f:
        csv_gz.write_bytes(gzip.compress(f.read()))

    cut = gzip.compress("".join(json.dumps(d) + "\n" for d in renamed(make_documents(200, seed=9), "cut")).encode())
    cut = cut[: len(cut) // 2]
    (tmp_path / "cut.jsonl.gz").write_bytes(cut)

    output = tmp_path / "out"
    inputs = [broken_jsonl, csv_gz, tmp_path / "cut.jsonl.gz"]
    stats = run_preprocess(inputs, output, "--id-field", "id")
    expected_reasons = {reason: len(broken) for reason, broken in BROKEN_LINES.items()}
    expected_reasons[rejections.INVALID_UTF8] = 1
    expected_reasons[rejections.UNREADABLE_FILE] = 1
    return stats, output, {
        "inputs": inputs,
        "reasons": expected_reasons,
        "accepted": len(documents) + len(csv_documents) + complete_lines_of_truncated_gzip(cut),
        "jsonl_lines": len(lines) + 1,
    }


def test_every_record_read_is_accepted_or_rejected_with_its_reason(mixed):
    stats, _, expected = mixed

    assert stats["rejected_by_reason"] == expected["reasons"]
    assert stats["accepted"] == expected["accepted"] == stats["train"] + stats["eval"]
    assert stats["read"] == stats["accepted"] + stats["rejected"] == expected["accepted"] + sum(
        expected["reasons"].values())


def test_a_truncated_gzip_input_keeps_its_records_before_the_damage_and_is_one_unreadable_file(mixed):
    stats, output, expected = mixed
    unreadable = [r for r in read_rejected(output) if r["reason"] == rejections.UNREADABLE_FILE]

    assert [r["source"] for r in unreadable] == [str(expected["inputs"][2])]
    assert "truncated" in unreadable[0]["detail"]
    assert complete_lines_of_truncated_gzip((expected["inputs"][2]).read_bytes()) > 50  # counted in "accepted"


def test_every_rejection_is_written_with_its_source_and_detail(mixed):
    _, output, expected = mixed
    rejected = read_rejected(output)

    assert sorted(r["reason"] for r in rejected) == sorted(
        reason for reason, count in expected["reasons"].items() for _ in range(count))
    for record in rejected:
        assert record["detail"]
        if record["reason"] != rejections.UNREADABLE_FILE:
            path, line = record["source"].rsplit(":", 1)
            assert path.endswith("broken.jsonl") and 1 <= int(line) <= expected["jsonl_lines"]


def test_the_finished_output_holds_stats_config_and_markers_and_nothing_is_left_beside_it(mixed):
    stats, output, _ = mixed

    on_disk = json.loads((output / features.STATS_FILE).read_text())
    assert on_disk["read"] == stats["read"] and on_disk["tokenizer"] == "word"
    assert set(on_disk) >= {"read", "accepted", "rejected", "rejected_by_reason", "train", "eval", "labels",
                            "vocab_size", "max_seq_length", "tokenizer"}
    assert json.loads((output / features.CONFIG_FILE).read_text())["corpus"]["id_field"] == "id"
    assert json.loads((output / output_dirs.STAGE_MARKER).read_text())["stage"] == output_dirs.PREPROCESS
    assert (output / features.SUCCESS_MARKER).exists()
    assert siblings(output) == ["out"]  # no staging or failed directory


def test_training_examples_are_padded_ids_within_the_vocabulary_and_never_empty(mixed):
    stats, output, _ = mixed

    train = read_split(output, features.TRAIN_SPLIT)
    assert len(train) == stats["train"]
    assert all(len(e[features.TOKEN_IDS]) == MAX_SEQ_LENGTH for e in train)
    assert all(0 <= i < stats["vocab_size"] for e in train for i in e[features.TOKEN_IDS])
    examples = train + read_split(output, features.EVAL_SPLIT)
    assert min(e[features.SEQUENCE_LENGTH] for e in examples) >= 1  # invisible texts were rejected
    assert stats["token_length"]["max"] == max(e[features.SEQUENCE_LENGTH] for e in examples)


def test_duplicate_texts_never_straddle_train_and_eval(mixed):
    _, output, _ = mixed

    train_keys = set(map(example_key, read_split(output, features.TRAIN_SPLIT)))
    eval_keys = set(map(example_key, read_split(output, features.EVAL_SPLIT)))
    assert train_keys and eval_keys
    assert not train_keys & eval_keys


def test_a_multi_process_run_gives_the_same_vocabularies_and_splits(mixed, tmp_path):
    stats, output, expected = mixed

    multi = run_preprocess(expected["inputs"], tmp_path / "multi", "--id-field", "id",
                           "--direct_running_mode=multi_processing", "--direct_num_workers=2")

    assert {k: multi[k] for k in ("read", "train", "eval", "rejected_by_reason", "labels")} == \
        {k: stats[k] for k in ("read", "train", "eval", "rejected_by_reason", "labels")}
    single_out, multi_out = tft.TFTransformOutput(str(output)), tft.TFTransformOutput(str(tmp_path / "multi"))
    for vocabulary in (features.TOKEN_VOCABULARY, features.LABEL_VOCABULARY):
        assert single_out.vocabulary_by_name(vocabulary) == multi_out.vocabulary_by_name(vocabulary)
    for split in (features.TRAIN_SPLIT, features.EVAL_SPLIT):
        assert sorted(map(example_key, read_split(output, split))) == \
            sorted(map(example_key, read_split(tmp_path / "multi", split)))


# --- one run per tokenizer or task -----------------------------------------------------------------



def test_wordpiece_ids_from_the_pipeline_equal_transform_raw_features_in_a_fresh_process(tmp_path):
    documents = make_documents(45)
    output = tmp_path / "out"
    run_preprocess(write_corpus(documents, tmp_path, "jsonl"), output, "--tokenizer", "wordpiece",
                   "--eval-fraction", "0.0")
    texts = [d["text"] for d in documents]

    served = sorted(token_ids_in_fresh_process(output, texts))

    pipelined = sorted(tuple(e[features.TOKEN_IDS]) for e in read_split(output, features.TRAIN_SPLIT))
    assert served == pipelined


def test_word_ids_from_the_pipeline_equal_transform_raw_features(mixed):
    _, output, expected = mixed
    csv_texts = [d["text"] for d in renamed(make_documents(30, seed=8), "csv")]

    served = tft.TFTransformOutput(str(output)).transform_raw_features(
        {features.TEXT: tf.constant(csv_texts)}, drop_unused_features=True)[features.TOKEN_IDS].numpy().tolist()

    pipelined = {tuple(e[features.TOKEN_IDS]) for split in (features.TRAIN_SPLIT, features.EVAL_SPLIT)
                 for e in read_split(output, split)}
    assert set(map(tuple, served)) <= pipelined


def test_multi_label_corpus_gets_multi_hot_labels(tmp_path):
    documents = make_documents(30)
    for i, d in enumerate(documents):
        d["label"] = d["label"] + (",urgent" if i % 2 else "")
    stats = run_preprocess(write_corpus(documents, tmp_path, "jsonl"), tmp_path / "out", "--multi-label")
    output = tft.TFTransformOutput(str(tmp_path / "out"))
    labels = output.vocabulary_by_name(features.LABEL_VOCABULARY)
    assert stats["num_labels"] == len(labels) == 4
    assert features.LABEL_MULTI_HOT in output.transformed_feature_spec()
    examples = read_split(tmp_path / "out", features.TRAIN_SPLIT) + read_split(tmp_path / "out", features.EVAL_SPLIT)
    urgent = labels.index(b"urgent")
    assert sorted(int(e[features.LABEL_MULTI_HOT][urgent]) for e in examples) == \
        sorted(int(i % 2 == 1) for i in range(len(documents)))
    assert all(sum(e[features.LABEL_MULTI_HOT]) in (1, 2) for e in examples)


# --- failed runs never look finished ----------------------------------------------------------------


def run_main(capsys, argv) -> str:
    """Runs the stage's entry point as the command line does; returns its one `error:` line."""
    with pytest.raises(SystemExit) as raised:
        preprocess.main([str(a) for a in argv])
    assert raised.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, errors
    return errors[0]


def failed_dir_named_in(error: str, output) -> str:
    (failed,) = [entry for entry in siblings(output) if ".failed-" in entry]
    path = os.path.join(os.path.dirname(str(output)), failed)
    assert f"{path}/{features.REJECTED_DIR}/" in error
    return path


def test_a_run_that_rejects_everything_keeps_the_previous_output_and_a_corrected_rerun_replaces_it(
        mixed, tmp_path, capsys):
    corpus = tmp_path / "corpus.jsonl"
    output = tmp_path / "out"
    shutil.copytree(mixed[1], output)  # a finished output of the stage, as an earlier run left it
    previous = sorted(os.listdir(output))
    corpus.write_text('{"text": "\\u200b", "label": "a"}\n{"broken\n')

    error = run_main(capsys, ["--input", corpus, "--output-dir", output, "--overwrite"])

    assert "No training documents: 2 read, 2 rejected (empty_text 1, unparsable_record 1)" in error
    failed = failed_dir_named_in(error, output)
    assert sorted(os.listdir(output)) == previous and (output / features.SUCCESS_MARKER).exists()
    assert not os.path.exists(os.path.join(failed, features.SUCCESS_MARKER))
    assert len(read_rejected(failed)) == 2
    assert json.loads(open(os.path.join(failed, features.STATS_FILE)).read())["rejected"] == 2

    corrected = make_documents(12)
    corpus.write_text("".join(json.dumps(d) + "\n" for d in corrected))
    assert "--overwrite" in run_main(capsys, ["--input", corpus, "--output-dir", output])  # refused before running
    stats = run_preprocess(str(corpus), output, "--overwrite")

    assert stats["read"] == len(corrected) and (output / features.SUCCESS_MARKER).exists()
    assert json.loads((output / features.STATS_FILE).read_text())["read"] == len(corrected)


def test_an_empty_input_exits_2_with_no_output_and_a_corrected_rerun_to_the_same_dir_works(tmp_path, capsys):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("")
    output = tmp_path / "out"

    error = run_main(capsys, ["--input", corpus, "--output-dir", output])

    assert "the input holds no records" in error
    failed_dir_named_in(error, output)
    assert not output.exists()

    corpus.write_text("".join(json.dumps(d) + "\n" for d in make_documents(12)))
    stats = run_preprocess(str(corpus), output)

    assert stats["train"] > 0 and (output / features.SUCCESS_MARKER).exists()
