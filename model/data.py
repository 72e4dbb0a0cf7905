"""What the trainer learns from a preprocessing output directory (artifacts, never the config)."""

from __future__ import annotations

import dataclasses
import json

import tensorflow as tf

from schemas import features
from schemas.errors import UserError


@dataclasses.dataclass(frozen=True)
class PreprocessedData:
    data_dir: str
    vocab_size: int  # token id space the embedding covers
    max_seq_length: int
    label_names: tuple[str, ...]
    multi_label: bool
    train_examples: int
    eval_examples: int
    train_label_counts: dict[str, int]
    tokenizer: str

    @property
    def num_labels(self) -> int:
        return len(self.label_names)

    def files(self, split: str) -> list[str]:
        return sorted(tf.io.gfile.glob(f"{self.data_dir}/{split}/*{features.TFRECORD_SUFFIX}"))

    def token_vocabulary(self) -> list[str]:
        """Token strings in id order of the vocabulary file (without padding/OOV offsets)."""
        path = f"{self.data_dir}/transform_fn/assets/{features.TOKEN_VOCABULARY}"
        with tf.io.gfile.GFile(path) as f:
            return [line.rstrip("\n") for line in f]


def read_preprocessed(data_dir: str) -> PreprocessedData:
    """Reads stats.json and the label vocabulary of a finished preprocessing run."""
    data_dir = data_dir.rstrip("/")
    if not data_dir or not tf.io.gfile.exists(f"{data_dir}/{features.SUCCESS_MARKER}"):
        raise UserError(f"{data_dir or '--data-dir'} is not a finished preprocessing output "
                        f"(no {features.SUCCESS_MARKER}); run `python -m pipelines.preprocess` first.")
    with tf.io.gfile.GFile(f"{data_dir}/{features.STATS_FILE}") as f:
        stats = json.load(f)
    label_path = f"{data_dir}/transform_fn/assets/{features.LABEL_VOCABULARY}"
    with tf.io.gfile.GFile(label_path) as f:
        label_names = tuple(line.rstrip("\n") for line in f)
    if len(label_names) < 2:
        raise UserError(f"{data_dir} has {len(label_names)} label(s); a classifier needs at least 2.")
    return PreprocessedData(
        data_dir=data_dir,
        vocab_size=stats["vocab_size"],
        max_seq_length=stats["max_seq_length"],
        label_names=label_names,
        multi_label=stats["multi_label"],
        train_examples=stats["train"],
        eval_examples=stats["eval"],
        train_label_counts=stats["labels"],
        tokenizer=stats["tokenizer"],
    )
