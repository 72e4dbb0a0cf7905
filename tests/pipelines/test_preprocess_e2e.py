"""The preprocessing stage end to end: the real entry point on tiny corpora."""

from __future__ import annotations

import glob
import json
import os
import random

import pytest
import tensorflow as tf
import tensorflow_transform as tft

from pipelines import preprocess
from schemas import features, rejections
from schemas.errors import UserError
from tests.conftest import make_documents, run_cli, write_corpus

pytestmark = pytest.mark.slow

MAX_SEQ_LENGTH = 16


def run_preprocess(input_path: str, output_dir, *extra: str) -> dict:
    return preprocess.run(["--input", input_path, "--output-dir", str(output_dir),
                           "--max-seq-length", str(MAX_SEQ_LENGTH), "--vocab-size", "200", "--min-frequency", "1",
                           "--eval-fraction", "0.25", *extra])


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


BROKEN_LINES = {
    rejections.UNPARSABLE_RECORD: ['{"id": "x1", "text": "unterminated', '["not", "an", "object"]'],
    rejections.MISSING_TEXT: ['{"id": "x2", "label": "sports"}', '{"id": "x3", "text": null, "label": "sports"}'],
    rejections.EMPTY_TEXT: ['{"id": "x4", "text": "   ", "label": "sports"}'],
    rejections.MISSING_LABEL: ['{"id": "x5", "text": "team wins"}', '{"id": "x6", "text": "team wins", "label": ""}'],
    rejections.WRONG_TYPE: ['{"id": "x7", "text": 42, "label": "sports"}', '{"id": "x8", "text": "x", "label": [1]}'],
    rejections.MISSING_ID: ['{"text": "team wins a match", "label": "sports"}'],
}


def test_jsonl_corpus_with_broken_records_reconciles_and_explains_each_rejection(tmp_path):
    documents = make_documents()
    lines = [json.dumps(d) for d in documents]
    rng = random.Random(3)
    for broken in BROKEN_LINES.values():
        for line in broken:
            lines.insert(rng.randrange(len(lines)), line)
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_bytes(("\n".join(lines) + "\n").encode() + b'{"id": "x9", "text": "caf\xe9 bar", "label": "sports"}\n')
    output = tmp_path / "out"

    stats = run_preprocess(str(corpus), output, "--id-field", "id")

    expected_reasons = {reason: len(broken) for reason, broken in BROKEN_LINES.items()}
    expected_reasons[rejections.INVALID_UTF8] = 1
    assert stats["read"] == len(documents) + sum(expected_reasons.values())
    assert stats["read"] == stats["accepted"] + stats["rejected"]
    assert stats["accepted"] == len(documents) == stats["train"] + stats["eval"]
    assert stats["rejected_by_reason"] == expected_reasons
    rejected = read_rejected(output)
    assert sorted(r["reason"] for r in rejected) == sorted(
        reason for reason, count in expected_reasons.items() for _ in range(count))
    line_count = len(lines) + 1
    for record in rejected:
        path, line = record["source"].rsplit(":", 1)
        assert path.endswith("corpus.jsonl") and 1 <= int(line) <= line_count
        assert record["detail"]

    on_disk = json.loads((output / features.STATS_FILE).read_text())
    assert on_disk["read"] == stats["read"] and on_disk["tokenizer"] == "word"
    assert set(on_disk) >= {"read", "accepted", "rejected", "rejected_by_reason", "train", "eval", "labels",
                            "vocab_size", "max_seq_length", "tokenizer"}
    assert json.loads((output / features.CONFIG_FILE).read_text())["corpus"]["id_field"] == "id"
    assert (output / features.SUCCESS_MARKER).exists()
    assert not glob.glob(f"{output}.staging-*")

    train = read_split(output, features.TRAIN_SPLIT)
    assert len(train) == stats["train"]
    assert all(len(e[features.TOKEN_IDS]) == MAX_SEQ_LENGTH for e in train)
    assert all(0 <= i < stats["vocab_size"] for e in train for i in e[features.TOKEN_IDS])


FORMAT_DOCUMENTS = 60


@pytest.fixture(scope="module")
def jsonl_reference(tmp_path_factory):
    """The JSON Lines run every other input format is compared with: (stats, output dir)."""
    tmp_path = tmp_path_factory.mktemp("jsonl-reference")
    output = tmp_path / "ref"
    stats = run_preprocess(write_corpus(make_documents(FORMAT_DOCUMENTS), tmp_path / "jsonl", "jsonl"), output)
    return stats, output


@pytest.mark.parametrize("input_format", ["csv", "tsv", "parquet", "tfrecord", "textdirs"])
def test_every_input_format_gives_the_same_accepted_examples_as_jsonl(tmp_path, input_format, jsonl_reference):
    reference, reference_dir = jsonl_reference
    documents = make_documents(FORMAT_DOCUMENTS)
    stats = run_preprocess(write_corpus(documents, tmp_path / input_format, input_format), tmp_path / "out")

    assert {k: stats[k] for k in ("read", "accepted", "train", "eval", "labels")} == \
        {k: reference[k] for k in ("read", "accepted", "train", "eval", "labels")}
    for split in (features.TRAIN_SPLIT, features.EVAL_SPLIT):
        assert sorted(map(example_key, read_split(tmp_path / "out", split))) == \
            sorted(map(example_key, read_split(reference_dir, split)))


def test_shuffled_input_keeps_every_example_in_its_split_and_duplicates_together(tmp_path):
    documents = make_documents()
    shuffled = documents[:]
    random.Random(11).shuffle(shuffled)
    run_preprocess(write_corpus(documents, tmp_path / "a", "jsonl"), tmp_path / "out_a", "--id-field", "id")
    run_preprocess(write_corpus(shuffled, tmp_path / "b", "jsonl"), tmp_path / "out_b", "--id-field", "id")

    for split in (features.TRAIN_SPLIT, features.EVAL_SPLIT):
        assert sorted(map(example_key, read_split(tmp_path / "out_a", split))) == \
            sorted(map(example_key, read_split(tmp_path / "out_b", split)))
    train_keys = set(map(example_key, read_split(tmp_path / "out_a", features.TRAIN_SPLIT)))
    eval_keys = set(map(example_key, read_split(tmp_path / "out_a", features.EVAL_SPLIT)))
    assert train_keys and eval_keys
    assert not train_keys & eval_keys  # duplicate texts (same ids after transform) never straddle


@pytest.mark.parametrize("tokenizer", ["word", "wordpiece"])
def test_ids_from_the_pipeline_equal_transform_raw_features_in_a_fresh_process(tmp_path, tokenizer):
    documents = make_documents(45)
    output = tmp_path / "out"
    run_preprocess(write_corpus(documents, tmp_path, "jsonl"), output, "--tokenizer", tokenizer,
                   "--eval-fraction", "0.0")
    texts = [d["text"] for d in documents]
    script = (
        "import json, sys, tensorflow as tf, tensorflow_text, tensorflow_transform as tft\n"
        "texts = json.loads(sys.stdin.read())\n"
        f"out = tft.TFTransformOutput({str(output)!r}).transform_raw_features("
        "{'text': tf.constant(texts)}, drop_unused_features=True)\n"
        f"print(json.dumps(out[{features.TOKEN_IDS!r}].numpy().tolist()))\n"
    )
    import subprocess
    import sys

    fresh = subprocess.run([sys.executable, "-c", script], input=json.dumps(texts), capture_output=True,
                           text=True, check=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    served = sorted(map(tuple, json.loads(fresh.stdout.strip().splitlines()[-1])))
    pipelined = sorted(tuple(e[features.TOKEN_IDS]) for e in read_split(output, features.TRAIN_SPLIT))
    assert served == pipelined


def test_multi_label_corpus_gets_multi_hot_labels(tmp_path):
    documents = make_documents(30)
    for i, d in enumerate(documents):
        d["label"] = d["label"] + (",urgent" if i % 2 else "")
    stats = run_preprocess(write_corpus(documents, tmp_path, "jsonl"), tmp_path / "out", "--multi-label")
    labels = tft.TFTransformOutput(str(tmp_path / "out")).vocabulary_by_name(features.LABEL_VOCABULARY)
    assert stats["num_labels"] == len(labels) == 4
    examples = read_split(tmp_path / "out", features.TRAIN_SPLIT) + read_split(tmp_path / "out", features.EVAL_SPLIT)
    urgent = labels.index(b"urgent")
    assert sorted(int(e[features.LABEL_MULTI_HOT][urgent]) for e in examples) == \
        sorted(int(i % 2 == 1) for i in range(len(documents)))
    assert all(sum(e[features.LABEL_MULTI_HOT]) in (1, 2) for e in examples)


def test_multi_process_run_equals_in_process_run(tmp_path):
    corpus = write_corpus(make_documents(), tmp_path, "jsonl")
    args = ["--input", corpus, "--max-seq-length", str(MAX_SEQ_LENGTH), "--min-frequency", "1", "--id-field", "id"]
    in_process = run_cli("pipelines.preprocess", *args, "--output-dir", str(tmp_path / "single"))
    multi = run_cli("pipelines.preprocess", *args, "--output-dir", str(tmp_path / "multi"),
                    "--direct_running_mode=multi_processing", "--direct_num_workers=2")
    assert in_process.returncode == 0, in_process.stderr[-3000:]
    assert multi.returncode == 0, multi.stderr[-3000:]

    single_out, multi_out = tft.TFTransformOutput(str(tmp_path / "single")), tft.TFTransformOutput(str(tmp_path / "multi"))
    for vocabulary in (features.TOKEN_VOCABULARY, features.LABEL_VOCABULARY):
        assert single_out.vocabulary_by_name(vocabulary) == multi_out.vocabulary_by_name(vocabulary)
    for split in (features.TRAIN_SPLIT, features.EVAL_SPLIT):
        assert sorted(map(example_key, read_split(tmp_path / "single", split))) == \
            sorted(map(example_key, read_split(tmp_path / "multi", split)))


def test_finished_output_is_kept_unless_overwrite(tmp_path):
    corpus = write_corpus(make_documents(30), tmp_path, "jsonl")
    run_preprocess(corpus, tmp_path / "out")
    marker = tmp_path / "out" / "train" / "keep-me"
    marker.write_text("x")

    failed = run_cli("pipelines.preprocess", "--input", corpus, "--output-dir", str(tmp_path / "out"))
    assert failed.returncode == 2 and "--overwrite" in failed.stderr
    assert marker.exists()

    run_preprocess(corpus, tmp_path / "out", "--overwrite")
    assert not marker.exists() and (tmp_path / "out" / features.SUCCESS_MARKER).exists()


def test_corpus_without_a_usable_document_is_an_error_that_points_to_the_rejections(tmp_path):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text('{"text": "", "label": "a"}\n{"broken\n')

    with pytest.raises(UserError, match="No training documents: 2 read, 2 rejected .*rejected/"):
        run_preprocess(str(corpus), tmp_path / "out")
    stats = json.loads((tmp_path / "out" / features.STATS_FILE).read_text())
    assert stats["rejected_by_reason"] == {rejections.EMPTY_TEXT: 1, rejections.UNPARSABLE_RECORD: 1}
    assert len(read_rejected(tmp_path / "out")) == 2


@pytest.mark.parametrize("args, message", [
    (["--input", "does/not/exist/*.jsonl"], "No files match"),
    (["--input", "{corpus}", "--format", "xml"], "invalid choice"),
    (["--input", "{corpus}", "--vocab-size", "many"], "invalid int value"),
    (["--input", "{corpus}", "--eval-fraction", "1.5"], "eval_fraction"),
    (["--input", "{corpus}", "--config", "{bad_config}"], "Unknown config key 'preprocess.tokeniser'"),
    (["--input", "{corpus}", "--frobnicate=1"], "Unknown option --frobnicate"),
    (["--input", "{unknown_extension}"], "Cannot tell the format"),
])
def test_user_mistakes_exit_non_zero_with_one_clear_line(tmp_path, args, message):
    corpus = write_corpus(make_documents(6), tmp_path, "jsonl")
    bad_config = tmp_path / "job.yaml"
    bad_config.write_text("preprocess:\n  tokeniser: word\n")
    unknown_extension = tmp_path / "corpus.xml"
    unknown_extension.write_text("<docs/>")
    argv = [a.format(corpus=corpus, bad_config=bad_config, unknown_extension=unknown_extension) for a in args]

    result = run_cli("pipelines.preprocess", *argv, "--output-dir", str(tmp_path / "out"))

    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 2
    assert len(error_lines) == 1 and message in error_lines[0], result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()
