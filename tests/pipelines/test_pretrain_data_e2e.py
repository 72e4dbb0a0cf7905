"""`python -m pipelines.preprocess --task pretrain` on a tiny unlabelled corpus, end to end.

One run with a pretrained-encoder directory is shared by most tests; its documents are also run
through the classify task with the same directory, whose ids are the reference: every pair must be
cut from one document's classify ids, in the order its label says. One run learns its model (the
session's `learned_tokenizer_pairs`, which tests/test_pretraining_e2e.py pretrains on); two runs
fail (nothing to pair).
"""

from __future__ import annotations

import glob
import json
import os

import pytest
import tensorflow as tf

from pipelines import preprocess
from schemas import features
from tests.pipelines.albert_fixtures import SPIECE, write_pretrained_dir
from tests.pipelines.test_preprocess_e2e import read_rejected, read_split, run_main

pytestmark = pytest.mark.slow

MAX_SEQ_LENGTH = 24
CLS, SEP = 2, 3
TOO_SHORT = [{"id": "one-piece", "text": "the"}, {"id": "no-piece", "text": "\u0301\u0308"}]
PAIR_SPEC = {features.PAIR_TOKEN_IDS: tf.io.VarLenFeature(tf.int64),
             features.PAIR_SEGMENT_IDS: tf.io.VarLenFeature(tf.int64),
             features.SENTENCE_ORDER: tf.io.FixedLenFeature([], tf.int64)}


def documents() -> list[dict]:
    """Unlabelled documents of 1 to 6 numbered sentences (one carries a label the task ignores)."""
    docs = [{"id": f"doc-{i:02d}",
             "text": " ".join(f"Team {i} said {j} goals{'!' if j % 3 == 1 else '.'}" for j in range(i % 6 + 1))}
            for i in range(36)]
    docs[5]["label"] = 3.5
    return docs


def write_jsonl(rows: list[dict], path) -> str:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return str(path)


def read_pairs(output, split: str) -> list[dict]:
    files = sorted(glob.glob(os.path.join(str(output), split, f"*{features.TFRECORD_SUFFIX}")))
    dataset = tf.data.TFRecordDataset(files, compression_type="GZIP").map(
        lambda r: tf.io.parse_single_example(r, PAIR_SPEC))
    return [{features.PAIR_TOKEN_IDS: e[features.PAIR_TOKEN_IDS].values.numpy().tolist(),
             features.PAIR_SEGMENT_IDS: e[features.PAIR_SEGMENT_IDS].values.numpy().tolist(),
             features.SENTENCE_ORDER: int(e[features.SENTENCE_ORDER])} for e in dataset]


@pytest.fixture(scope="module")
def pretrained_run(tmp_path_factory):
    """(stats, output dir, encoder dir, classify ids of each document without framing, classify stats)."""
    tmp_path = tmp_path_factory.mktemp("pretrain")
    encoder = write_pretrained_dir(tmp_path / "encoder", max_sequence_length=512)
    corpus = write_jsonl(documents() + TOO_SHORT + [{"id": "blank", "text": "   "}], tmp_path / "corpus.jsonl")
    stats = preprocess.run(["--task", "pretrain", "--input", corpus, "--output-dir", str(tmp_path / "out"),
                            "--pretrained", encoder, "--max-seq-length", str(MAX_SEQ_LENGTH), "--eval-fraction", "0.3"])
    labelled = write_jsonl([dict(d, label="x") for d in documents()], tmp_path / "labelled.jsonl")
    classify_stats = preprocess.run(["--input", labelled, "--output-dir", str(tmp_path / "classify"),
                                     "--pretrained", encoder])
    classify = read_split(tmp_path / "classify", features.TRAIN_SPLIT) + read_split(
        tmp_path / "classify", features.EVAL_SPLIT)
    document_ids = [e[features.TOKEN_IDS][1: e[features.SEQUENCE_LENGTH] - 1] for e in classify]
    return stats, tmp_path / "out", encoder, document_ids, classify_stats


def segments(pair: dict) -> tuple[list[int], list[int]]:
    ids, segment_ids = pair[features.PAIR_TOKEN_IDS], pair[features.PAIR_SEGMENT_IDS]
    first = [t for t, s in zip(ids, segment_ids) if s == 0][1:-1]
    second = [t for t, s in zip(ids, segment_ids) if s == 1][:-1]
    return first, second


def position(run: list[int], within: list[int], start: int = 0) -> int:
    """Where `run` occurs contiguously in `within` at or after `start`; -1 if nowhere."""
    for i in range(start, len(within) - len(run) + 1):
        if within[i: i + len(run)] == run:
            return i
    return -1


def in_document_order(earlier: list[int], later: list[int], document: list[int]) -> bool:
    at = position(earlier, document)
    while at >= 0:
        if position(later, document, at + len(earlier)) >= 0:
            return True
        at = position(earlier, document, at + 1)
    return False


def test_every_pair_is_framed_fits_and_has_segment_ids_switching_after_the_first_sep(pretrained_run):
    _, output, *_ = pretrained_run
    pairs = read_pairs(output, features.TRAIN_SPLIT) + read_pairs(output, features.EVAL_SPLIT)
    assert pairs
    for pair in pairs:
        ids, segment_ids = pair[features.PAIR_TOKEN_IDS], pair[features.PAIR_SEGMENT_IDS]
        assert len(ids) == len(segment_ids) <= MAX_SEQ_LENGTH
        first_sep = ids.index(SEP)
        assert ids[0] == CLS and ids[-1] == SEP and ids.count(SEP) == 2 and 0 not in ids
        assert segment_ids == [0] * (first_sep + 1) + [1] * (len(ids) - first_sep - 1)
        assert pair[features.SENTENCE_ORDER] in (0, 1)
    assert max(len(p[features.PAIR_TOKEN_IDS]) for p in pairs) == MAX_SEQ_LENGTH


def test_pairs_are_cut_from_one_documents_classify_ids_in_the_order_their_label_says(pretrained_run):
    _, output, _, document_ids, _ = pretrained_run
    for split in (features.TRAIN_SPLIT, features.EVAL_SPLIT):
        for pair in read_pairs(output, split):
            first, second = segments(pair)
            earlier, later = (second, first) if pair[features.SENTENCE_ORDER] else (first, second)
            assert any(in_document_order(earlier, later, document) for document in document_ids), pair


def test_counts_reconcile_with_the_pairs_written_and_too_short_documents_are_rejected(pretrained_run):
    stats, output, *_ = pretrained_run
    train, eval_ = read_pairs(output, features.TRAIN_SPLIT), read_pairs(output, features.EVAL_SPLIT)
    assert stats["read"] == len(documents()) + 3 == stats["accepted"] + stats["rejected"]
    assert stats["rejected_by_reason"] == {"empty_text": 1, "too_short_for_pair": 2}
    assert stats["train"] + stats["eval"] == len(documents()) and stats["eval"] > 0
    assert stats["pairs"] == {"train": len(train), "eval": len(eval_)}
    assert stats["tokens"] == {"train": sum(len(p[features.PAIR_TOKEN_IDS]) for p in train),
                               "eval": sum(len(p[features.PAIR_TOKEN_IDS]) for p in eval_)}
    assert stats["swapped_pairs"] == sum(p[features.SENTENCE_ORDER] for p in train + eval_)
    assert 0.2 < stats["swapped_pairs"] / len(train + eval_) < 0.8
    too_short = sorted((r for r in read_rejected(output) if r["reason"] == "too_short_for_pair"),
                       key=lambda r: r["source"])
    assert [r["source"] for r in too_short] == [f"{output.parent}/corpus.jsonl:{n}" for n in (37, 38)]
    for rejection, document in zip(too_short, TOO_SHORT):
        assert rejection["record"].endswith(f"'text': {document['text']!r}}}")


def test_stats_and_spiece_model_describe_the_pretrained_directorys_tokenizer(pretrained_run):
    stats, output, encoder, *_ = pretrained_run
    with open(output / features.STATS_FILE, encoding="utf-8") as f:
        assert json.load(f) == stats
    assert (output / features.TOKENIZER_MODEL_FILE).read_bytes() == SPIECE.read_bytes()
    assert {k: stats[k] for k in ("task", "tokenizer", "framing", "pretrained", "max_seq_length", "vocab_size",
                                  "lowercase", "special_tokens")} == {
        "task": "pretrain", "tokenizer": "sentencepiece", "framing": "cls_sep", "pretrained": encoder,
        "max_seq_length": MAX_SEQ_LENGTH, "vocab_size": 200, "lowercase": True,
        "special_tokens": {"pad": 0, "unk": 1, "cls": 2, "sep": 3, "mask": 4}}
    assert (output / features.SUCCESS_MARKER).exists()


def test_each_task_names_itself_in_stats(pretrained_run):
    stats, *_, classify_stats = pretrained_run
    assert (stats["task"], classify_stats["task"]) == ("pretrain", "classify")


def test_a_learned_model_is_written_as_spiece_model_and_every_id_is_one_of_its_pieces(learned_tokenizer_pairs):
    output, stats = learned_tokenizer_pairs  # --vocab-size 60, no --pretrained nor --sentencepiece-model
    assets = glob.glob(str(output / "transform_fn" / "assets" / "*.model"))
    assert len(assets) == 1
    with open(assets[0], "rb") as f:
        assert (output / features.TOKENIZER_MODEL_FILE).read_bytes() == f.read()
    assert stats["tokenizer"] == "sentencepiece" and stats["pretrained"] is None
    pairs = read_pairs(output, features.TRAIN_SPLIT)
    assert max(i for p in pairs for i in p[features.PAIR_TOKEN_IDS]) < stats["vocab_size"]


def test_a_corpus_with_no_document_long_enough_for_a_pair_exits_2_and_finishes_nothing(tmp_path, capsys):
    corpus = write_jsonl(TOO_SHORT, tmp_path / "corpus.jsonl")
    output = tmp_path / "out"

    error = run_main(capsys, ["--task", "pretrain", "--input", corpus, "--output-dir", output,
                              "--sentencepiece-model", SPIECE])

    assert "No training documents: 2 read, 2 rejected (too_short_for_pair 2)" in error
    assert not output.exists()


def test_an_empty_corpus_exits_2_and_finishes_nothing(tmp_path, capsys):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("")
    output = tmp_path / "out"

    error = run_main(capsys, ["--task", "pretrain", "--input", corpus, "--output-dir", output])

    assert "the input holds no records" in error
    assert not output.exists()
