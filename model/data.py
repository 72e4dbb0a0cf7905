"""What the trainer learns from a preprocessing output directory (artifacts, never the config)."""

from __future__ import annotations

import dataclasses
import json

import tensorflow as tf
import tensorflow_transform as tft

from model.filesystem import join, read_text
from schemas import features
from schemas.errors import UserError

FRAMING_NONE = "none"
FRAMING_CLS_SEP = "cls_sep"


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
    feature_spec: dict  # tf.io parsing spec of the model's inputs and labels in the TFRecords
    # Written by sentencepiece runs only (absent from word/wordpiece and older outputs):
    framing: str = FRAMING_NONE  # FRAMING_CLS_SEP: ids are [CLS] pieces [SEP], then padding
    tokenizer_sha256: str | None = None  # of the SentencePiece model used
    special_tokens: dict | None = None  # {"pad": 0, "unk": 1, "cls": 2, ...}
    pretrained: str | None = None  # the pretrained-encoder directory preprocessing took its tokenizer from
    token_length: dict | None = None  # mean, p50, p95, max tokens per document before truncation

    @property
    def num_labels(self) -> int:
        return len(self.label_names)

    def files(self, split: str) -> list[str]:
        return sorted(tf.io.gfile.glob(join(self.data_dir, split, f"*{features.TFRECORD_SUFFIX}")))

    def token_vocabulary(self) -> list[str]:
        """Token strings in id order of the vocabulary file (without padding/OOV offsets)."""
        return _read_vocabulary(self.data_dir, features.TOKEN_VOCABULARY)


def read_finished_stats(data_dir: str, command: str) -> dict:
    """stats.json of the finished preprocessing output `data_dir`; UserError naming `command` (the
    one that makes such an output) when it is not one."""
    if not data_dir or not tf.io.gfile.exists(join(data_dir, features.SUCCESS_MARKER)):
        raise UserError(f"{data_dir or '--data-dir'} is not a finished preprocessing output "
                        f"(no {features.SUCCESS_MARKER}); run `{command}` first.")
    return json.loads(read_text(join(data_dir, features.STATS_FILE)))


def read_preprocessed(data_dir: str) -> PreprocessedData:
    """Reads stats.json, the label vocabulary and the feature spec of a finished preprocessing run."""
    data_dir = data_dir.rstrip("/")
    stats = read_finished_stats(data_dir, "python -m pipelines.preprocess")
    if stats.get("task") == features.TASK_PRETRAIN:
        raise UserError(f"{data_dir} holds pretrain-task data (unlabelled segment pairs, for `python -m "
                        f"model.pretrain`); the trainer needs labelled documents: preprocess with --task classify.")
    label_names = tuple(_read_vocabulary(data_dir, features.LABEL_VOCABULARY))
    if len(label_names) < 2:
        raise UserError(f"{data_dir} has {len(label_names)} label(s); a classifier needs at least 2.")
    label_key = features.LABEL_MULTI_HOT if stats["multi_label"] else features.LABEL_ID
    spec = tft.TFTransformOutput(data_dir).transformed_feature_spec()
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
        feature_spec={key: spec[key] for key in (features.TOKEN_IDS, label_key)},
        framing=stats.get("framing") or FRAMING_NONE,
        tokenizer_sha256=stats.get("tokenizer_sha256"),
        special_tokens=stats.get("special_tokens"),
        pretrained=stats.get("pretrained"),
        token_length=stats.get("token_length"),
    )


def _read_vocabulary(data_dir: str, name: str) -> list[str]:
    path = tft.TFTransformOutput(data_dir).vocabulary_file_by_name(name)
    if path is None:
        raise UserError(f"{data_dir} has no {name} vocabulary; is it a finished preprocessing output?")
    lines = read_text(path).split("\n")  # not splitlines(): a token may hold other line breaks
    return lines[:-1] if lines[-1:] == [""] else lines
