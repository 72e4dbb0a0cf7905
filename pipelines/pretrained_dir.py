"""Reading a pretrained-encoder directory's tokenizer for preprocessing (`--pretrained DIR`).

The directory's format is declared in `schemas.pretrained`. Preprocessing takes from it the
SentencePiece model (spiece.model), the text normalization (`tokenizer.lowercase`) and the
longest sequence the encoder accepts (`backbone.max_sequence_length`). Any Beam filesystem path
works (gs://...). Every problem is a one-line UserError naming the file or setting.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Collection
from typing import Any

from apache_beam.io.filesystems import FileSystems

from pipelines.sentencepiece_model import SentencePieceModel, describe, read_model_file
from schemas import pretrained
from schemas.config import ConfigError, PreprocessConfig
from schemas.errors import UserError


@dataclasses.dataclass(frozen=True)
class PretrainedTokenizer:
    """What preprocessing needs from a pretrained-encoder directory."""

    directory: str
    model: SentencePieceModel
    lowercase: bool
    max_sequence_length: int  # the encoder's position table: the longest sequence it accepts


def _read_encoder_json(directory: str) -> dict[str, Any]:
    path = FileSystems.join(directory, pretrained.ENCODER_FILE)
    if not FileSystems.exists(path):
        raise UserError(f"{directory} is not a pretrained-encoder directory: it has no {pretrained.ENCODER_FILE}.")
    with FileSystems.open(path, compression_type="uncompressed") as f:
        raw = f.read()
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"{path} is not valid JSON: {e}") from None
    if not isinstance(document, dict):
        raise UserError(f"{path} must hold a JSON object.")
    return document


def _setting(document: dict[str, Any], path: str, section: str, key: str, kind: type) -> Any:
    """document[section][key], which must be of `kind` (bool is not an int here)."""
    values = document.get(section)
    value = values.get(key) if isinstance(values, dict) else None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise UserError(f"{path}: {section}.{key} must be {'an integer' if kind is int else f'a {kind.__name__}'}. "
                        f"Received: {key}={value!r}")
    return value


def read_pretrained_tokenizer(directory: str) -> PretrainedTokenizer:
    """The checked tokenizer settings and SentencePiece model of a pretrained-encoder directory."""
    document = _read_encoder_json(directory)
    path = FileSystems.join(directory, pretrained.ENCODER_FILE)
    version = document.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise UserError(f"{path}: format_version must be a positive integer. Received: format_version={version!r}")
    if version > pretrained.FORMAT_VERSION:
        raise UserError(f"{directory} was written by a newer release (format_version {version}); this release "
                        f"reads format_version {pretrained.FORMAT_VERSION} or older.")
    kind = _setting(document, path, "tokenizer", "type", str)
    if kind != pretrained.TOKENIZER_SENTENCEPIECE:
        raise UserError(f"{path}: tokenizer.type must be {pretrained.TOKENIZER_SENTENCEPIECE}. Received: type={kind!r}")
    model_file = _setting(document, path, "tokenizer", "model_file", str)
    lowercase = _setting(document, path, "tokenizer", "lowercase", bool)
    max_sequence_length = _setting(document, path, "backbone", "max_sequence_length", int)
    vocabulary_size = _setting(document, path, "backbone", "vocabulary_size", int)

    model_path = FileSystems.join(directory, model_file)
    if not FileSystems.exists(model_path):
        raise UserError(f"The pretrained-encoder directory {directory} has no SentencePiece model {model_file}.")
    model = describe(read_model_file(model_path), model_path)
    declared = document["tokenizer"].get("sha256")
    if declared is not None and declared != model.sha256:
        raise UserError(f"{model_path} is not the SentencePiece model {path} declares: its sha256 is "
                        f"{model.sha256}, tokenizer.sha256 is {declared}.")
    if model.vocab_size != vocabulary_size:
        raise UserError(f"{model_path} has {model.vocab_size} pieces but {path} declares backbone.vocabulary_size "
                        f"{vocabulary_size}.")
    return PretrainedTokenizer(directory=directory, model=model, lowercase=lowercase,
                               max_sequence_length=max_sequence_length)


def apply_to_settings(settings: PreprocessConfig, tokenizer: PretrainedTokenizer,
                      explicit: Collection[str]) -> PreprocessConfig:
    """The preprocessing settings with the directory's case handling and sequence bound applied.

    `explicit`: the preprocess keys the user set (job file or flag). An explicit max_seq_length
    above the encoder's max_sequence_length is an error naming both; without one, the default is
    lowered to the encoder's bound when that is smaller. An explicit lowercase that contradicts
    the directory is an error: the pretrained model expects its own normalization.
    """
    bound = tokenizer.max_sequence_length
    if settings.max_seq_length > bound:
        if "max_seq_length" in explicit:
            raise ConfigError(f"preprocess.max_seq_length {settings.max_seq_length} is longer than the pretrained "
                              f"encoder in {tokenizer.directory} accepts (max_sequence_length {bound}).")
        settings = dataclasses.replace(settings, max_seq_length=bound)
    if "lowercase" in explicit and settings.lowercase != tokenizer.lowercase:
        raise ConfigError(f"preprocess.lowercase {str(settings.lowercase).lower()} contradicts the pretrained encoder "
                          f"in {tokenizer.directory} (tokenizer.lowercase {str(tokenizer.lowercase).lower()}).")
    return dataclasses.replace(settings, lowercase=tokenizer.lowercase)
