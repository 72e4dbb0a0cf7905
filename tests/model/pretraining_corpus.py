"""Tiny pretrain-task preprocessing outputs, written directly (no Beam), for the pretraining tests.

The layout is the one `pipelines.preprocess --task pretrain` writes: train/ and eval/ gzip
TFRecords of unpadded `[CLS] A [SEP] B [SEP]` pairs, spiece.model, stats.json, _STAGE.json, _SUCCESS.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import tensorflow as tf

from schemas import features, output_dirs
from tests.conftest import REPO_ROOT

SPIECE_MODEL = REPO_ROOT / "tests" / "fixtures" / "albert" / "spiece.model"  # 200 pieces, [MASK] at 4
SPECIAL_TOKENS = {"pad": 0, "unk": 1, "cls": 2, "sep": 3, "mask": 4}
VOCAB_SIZE = 200
WORD_IDS = range(10, 50)  # the synthetic text's 40 words
MOTIF_LENGTH = 4


def motif_pair(rng: np.random.Generator, swapped: bool, max_seq_length: int,
               motif_length: int = MOTIF_LENGTH) -> tuple[list[int], list[int]]:
    """A pair from a "document" that repeats a motif of `motif_length` random words: a masked word
    follows from the word `motif_length` places away (and is one of the words seen around it), while
    every word is as frequent as any other over the corpus (a unigram guess is right 1 time in 40)."""
    length_a = int(rng.integers(6, (max_seq_length - 3) // 2 + 1))
    length_b = int(rng.integers(6, max_seq_length - 3 - length_a + 1))
    motif = rng.choice(np.asarray(WORD_IDS), size=motif_length, replace=False)
    text = [int(motif[i % motif_length]) for i in range(length_a + length_b)]
    first, second = text[:length_a], text[length_a:]
    if swapped:
        first, second = second, first
    cls, sep = SPECIAL_TOKENS["cls"], SPECIAL_TOKENS["sep"]
    token_ids = [cls, *first, sep, *second, sep]
    return token_ids, [0] * (len(first) + 2) + [1] * (len(second) + 1)


def _example(token_ids: list[int], segment_ids: list[int], order: int) -> bytes:
    feature = {
        features.PAIR_TOKEN_IDS: tf.train.Feature(int64_list=tf.train.Int64List(value=token_ids)),
        features.PAIR_SEGMENT_IDS: tf.train.Feature(int64_list=tf.train.Int64List(value=segment_ids)),
        features.SENTENCE_ORDER: tf.train.Feature(int64_list=tf.train.Int64List(value=[order])),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def write_pretrain_dir(directory: Path, train_pairs: int = 2000, eval_pairs: int = 200, max_seq_length: int = 32,
                       seed: int = 0, stats_changes: dict | None = None, motif_length: int = MOTIF_LENGTH) -> str:
    """A finished pretrain-task output of motif pairs (half of them swapped) at `directory`."""
    rng = np.random.default_rng(seed)
    tokens = {}
    for split, count in ((features.TRAIN_SPLIT, train_pairs), (features.EVAL_SPLIT, eval_pairs)):
        (directory / split).mkdir(parents=True)
        tokens[split] = 0
        with tf.io.TFRecordWriter(str(directory / split / f"part-00000-of-00001{features.TFRECORD_SUFFIX}"),
                                  options="GZIP") as writer:
            for i in range(count):
                token_ids, segment_ids = motif_pair(rng, swapped=bool(i % 2), max_seq_length=max_seq_length,
                                                     motif_length=motif_length)
                tokens[split] += len(token_ids)
                writer.write(_example(token_ids, segment_ids, i % 2))
    shutil.copy(SPIECE_MODEL, directory / features.TOKENIZER_MODEL_FILE)
    stats = {"task": features.TASK_PRETRAIN, "read": train_pairs + eval_pairs, "accepted": train_pairs + eval_pairs,
             "rejected": 0, "rejected_by_reason": {}, "train": train_pairs, "eval": eval_pairs,
             "pairs": {"train": train_pairs, "eval": eval_pairs}, "tokens": tokens,
             "swapped_pairs": (train_pairs + eval_pairs) // 2, "max_seq_length": max_seq_length,
             "tokenizer": "sentencepiece", "framing": "cls_sep", "lowercase": True, "pretrained": None,
             "vocab_size": VOCAB_SIZE, "special_tokens": SPECIAL_TOKENS,
             "tokenizer_sha256": hashlib.sha256(SPIECE_MODEL.read_bytes()).hexdigest(), "wall_seconds": 0.0,
             **(stats_changes or {})}
    (directory / features.STATS_FILE).write_text(json.dumps(stats))
    (directory / output_dirs.STAGE_MARKER).write_text(output_dirs.stage_marker(output_dirs.PREPROCESS))
    (directory / features.SUCCESS_MARKER).write_text("")
    return str(directory)
