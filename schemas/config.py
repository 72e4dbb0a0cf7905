"""The job configuration: one frozen dataclass tree, loaded from YAML, overridden by flags.

A job file has one mapping per stage section::

    corpus:
      inputs: [data/*.jsonl]
      text_field: body
    preprocess:
      tokenizer: wordpiece
      vocab_size: 8000

Unknown sections or keys are an error naming the key. Values derived from data (vocabulary size,
label names) are never written back here: they are read from the artifacts.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from typing import Any, Mapping

import yaml

from schemas import features, predictions
from schemas.errors import UserError

INPUT_FORMATS = ("auto", "csv", "tsv", "jsonl", "parquet", "tfrecord", "textdirs")


class ConfigError(UserError):
    """The job file or a flag holds a value the job cannot run with."""


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def _check_all_at_least_one(section: str, values, may_be_zero: tuple[str, ...] = ()) -> None:
    """Every (integer) field of a model-size section must be at least 1 (those named in
    `may_be_zero`: at least 0)."""
    for field in dataclasses.fields(values):
        value, least = getattr(values, field.name), 0 if field.name in may_be_zero else 1
        _check(value >= least, f"{section}.{field.name} must be at least {least}. Received: {field.name}={value}")


@dataclasses.dataclass(frozen=True)
class CorpusConfig:
    """Where the documents are and which fields hold what."""

    inputs: tuple[str, ...] = ()  # file patterns, local or any Beam filesystem (gs://...)
    format: str = "auto"  # auto = from each file's extension (a directory means textdirs)
    text_field: str = features.TEXT
    label_field: str = features.LABEL
    id_field: str | None = None  # None: the id is a fingerprint of the text
    multi_label: bool = False
    label_separator: str = ","  # splits the label field when multi_label

    def __post_init__(self):
        _check(self.format in INPUT_FORMATS,
               f"corpus.format must be one of {', '.join(INPUT_FORMATS)}. Received: format={self.format!r}")
        _check(bool(self.text_field), "corpus.text_field must not be empty.")
        _check(bool(self.label_field), "corpus.label_field must not be empty.")
        _check(bool(self.label_separator), "corpus.label_separator must not be empty.")


@dataclasses.dataclass(frozen=True)
class PreprocessConfig:
    """How documents become padded token ids."""

    output_dir: str = ""
    tokenizer: str = "word"  # word | wordpiece
    vocab_size: int = 20000  # word: the id space (padding + words + OOV buckets); wordpiece: target size
    min_frequency: int = 2  # word tokens seen fewer times in training map to OOV buckets
    num_oov_buckets: int = 1  # word tokenizer only
    max_seq_length: int = 256  # training and scoring batches are cut to their longest document
    eval_fraction: float = 0.1
    lowercase: bool = True
    overwrite: bool = False

    def __post_init__(self):
        _check(self.tokenizer in features.TOKENIZERS,
               f"preprocess.tokenizer must be one of {', '.join(features.TOKENIZERS)}. "
               f"Received: tokenizer={self.tokenizer!r}")
        _check(self.vocab_size >= 10, f"preprocess.vocab_size must be at least 10. Received: vocab_size={self.vocab_size}")
        _check(self.min_frequency >= 1,
               f"preprocess.min_frequency must be at least 1. Received: min_frequency={self.min_frequency}")
        _check(self.num_oov_buckets >= 1,
               f"preprocess.num_oov_buckets must be at least 1. Received: num_oov_buckets={self.num_oov_buckets}")
        _check(self.vocab_size - self.num_oov_buckets - 1 >= 1,
               f"preprocess.vocab_size must leave room for words beside padding and the OOV buckets. "
               f"Received: vocab_size={self.vocab_size}, num_oov_buckets={self.num_oov_buckets}")
        _check(self.max_seq_length >= 1,
               f"preprocess.max_seq_length must be at least 1. Received: max_seq_length={self.max_seq_length}")
        _check(0.0 <= self.eval_fraction < 1.0,
               f"preprocess.eval_fraction must be in [0, 1). Received: eval_fraction={self.eval_fraction}")

ENCODERS = ("bilstm", "albert")
STRATEGIES = ("auto", "default", "one_device", "mirrored", "tpu")
MIXED_PRECISION = ("auto", "off", "float16", "bfloat16")
JIT_COMPILE = ("auto", "on", "off")


@dataclasses.dataclass(frozen=True)
class BiLstmConfig:
    """The linear bidirectional encoder: embedding → Dense projection → stacked BiLSTM → pooling."""

    embedding_dim: int = 128
    projection_dim: int = 128
    lstm_units: int = 128
    num_lstm_layers: int = 1  # 0: mean and max of the projected embeddings, no LSTM

    def __post_init__(self):
        _check_all_at_least_one("bilstm", self, may_be_zero=("num_lstm_layers",))


@dataclasses.dataclass(frozen=True)
class AlbertConfig:
    """ALBERT (Lan et al., 2019): factorized embedding E → H, num_layers sharing num_groups blocks."""

    embedding_dim: int = 128
    hidden_dim: int = 256
    num_layers: int = 6
    num_groups: int = 1
    num_heads: int = 4
    intermediate_dim: int = 1024

    def __post_init__(self):
        _check_all_at_least_one("albert", self)
        _check(self.num_layers % self.num_groups == 0,
               f"albert.num_layers must be divisible by albert.num_groups. "
               f"Received: num_layers={self.num_layers}, num_groups={self.num_groups}")
        _check(self.hidden_dim % self.num_heads == 0,
               f"albert.hidden_dim must be divisible by albert.num_heads. "
               f"Received: hidden_dim={self.hidden_dim}, num_heads={self.num_heads}")


@dataclasses.dataclass(frozen=True)
class HeadConfig:
    """The MLP classification head on top of either encoder."""

    hidden_units: tuple[int, ...] = (128,)
    dropout: float = 0.1
    batch_norm: bool = False

    def __post_init__(self):
        _check(all(u >= 1 for u in self.hidden_units),
               f"head.hidden_units must be positive. Received: hidden_units={self.hidden_units}")
        _check(0.0 <= self.dropout < 1.0, f"head.dropout must be in [0, 1). Received: dropout={self.dropout}")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How the encoder is fitted, evaluated and exported."""

    data_dir: str = ""  # a preprocessing output directory
    model_dir: str = ""
    encoder: str = "bilstm"  # bilstm | albert
    epochs: int = 10
    batch_size: int = 64
    learning_rate: float = 1e-3  # peak, reached after warm-up
    warmup_fraction: float = 0.1  # share of all steps spent warming up, then cosine decay
    weight_decay: float = 0.01  # AdamW, not applied to biases, norms and embeddings
    clip_norm: float = 1.0  # global gradient norm; 0 = no clipping
    dropout: float = 0.1  # inside the encoder
    early_stopping_patience: int = 2  # epochs without eval improvement; 0 = never stop early
    keep_checkpoints: int = 3  # per-epoch weights files kept, the most recent; 0 = keep every epoch's
    strategy: str = "auto"  # auto: TPU (with tpu) → several GPUs mirrored → one GPU → default
    tpu: str | None = None  # TPU name or address for TPUStrategy
    mixed_precision: str = "auto"  # auto: on where the hardware gains from it
    jit_compile: str = "auto"  # XLA for the training step; auto: on with accelerators, off on CPUs
    class_weights: bool = False  # weight classes by inverse training frequency (single-label)
    threshold: float = 0.5  # multi-label decision threshold
    word_vectors: str | None = None  # GloVe/word2vec text file to initialise word embeddings
    shuffle_buffer: int = 10000
    seed: int = 42
    overwrite: bool = False

    def __post_init__(self):
        _check(self.encoder in ENCODERS,
               f"train.encoder must be one of {', '.join(ENCODERS)}. Received: encoder={self.encoder!r}")
        _check(self.strategy in STRATEGIES,
               f"train.strategy must be one of {', '.join(STRATEGIES)}. Received: strategy={self.strategy!r}")
        _check(self.mixed_precision in MIXED_PRECISION,
               f"train.mixed_precision must be one of {', '.join(MIXED_PRECISION)}. "
               f"Received: mixed_precision={self.mixed_precision!r}")
        _check(self.jit_compile in JIT_COMPILE,
               f"train.jit_compile must be one of {', '.join(JIT_COMPILE)}. Received: jit_compile={self.jit_compile!r}")
        _check(self.epochs >= 1, f"train.epochs must be at least 1. Received: epochs={self.epochs}")
        _check(self.batch_size >= 1, f"train.batch_size must be at least 1. Received: batch_size={self.batch_size}")
        _check(self.learning_rate > 0, f"train.learning_rate must be positive. Received: learning_rate={self.learning_rate}")
        _check(0.0 <= self.warmup_fraction < 1.0,
               f"train.warmup_fraction must be in [0, 1). Received: warmup_fraction={self.warmup_fraction}")
        _check(0.0 <= self.dropout < 1.0, f"train.dropout must be in [0, 1). Received: dropout={self.dropout}")
        _check(self.weight_decay >= 0 and self.clip_norm >= 0 and self.early_stopping_patience >= 0
               and self.keep_checkpoints >= 0,
               "train.weight_decay, train.clip_norm, train.early_stopping_patience and train.keep_checkpoints "
               "must not be negative.")
        _check(0.0 < self.threshold < 1.0, f"train.threshold must be in (0, 1). Received: threshold={self.threshold}")


OUTPUT_FORMATS = ("jsonl", "parquet", "csv")
PADDING_LONGEST = "longest"  # each batch padded to its longest document; documents sorted by length
PADDING_MAX_LENGTH = "max_length"  # every batch padded to max_seq_length, in arrival order
PADDING_MODES = (PADDING_LONGEST, PADDING_MAX_LENGTH)


@dataclasses.dataclass(frozen=True)
class ScoreConfig:
    """Bulk scoring with an exported model."""

    model: str = ""  # a model directory (its newest export is used) or one export directory
    output_dir: str = ""
    output_format: str = "jsonl"  # jsonl | parquet | csv
    batch_size: int = 64  # documents per model call
    padding: str = PADDING_LONGEST  # longest | max_length
    sort_window_batches: int = 64  # longest: documents sorted by length together, in batches
    keep_fields: tuple[str, ...] = ()  # input fields copied into each prediction
    num_shards: int = 0  # 0: let the runner choose
    overwrite: bool = False

    def __post_init__(self):
        _check(self.output_format in OUTPUT_FORMATS,
               f"score.output_format must be one of {', '.join(OUTPUT_FORMATS)}. "
               f"Received: output_format={self.output_format!r}")
        _check(self.batch_size >= 1, f"score.batch_size must be at least 1. Received: batch_size={self.batch_size}")
        _check(self.padding in PADDING_MODES,
               f"score.padding must be one of {', '.join(PADDING_MODES)}. Received: padding={self.padding!r}")
        _check(self.sort_window_batches >= 1,
               f"score.sort_window_batches must be at least 1. "
               f"Received: sort_window_batches={self.sort_window_batches}")
        _check(self.num_shards >= 0, f"score.num_shards must not be negative. Received: num_shards={self.num_shards}")
        clashing = sorted(set(self.keep_fields) & set(predictions.PREDICTION_COLUMNS))
        _check(not clashing, f"score.keep_fields cannot include prediction columns ({', '.join(clashing)}). "
                             f"Received: keep_fields={list(self.keep_fields)}")


@dataclasses.dataclass(frozen=True)
class JobConfig:
    """Every stage's settings; each stage receives only its own section(s)."""

    corpus: CorpusConfig = CorpusConfig()
    preprocess: PreprocessConfig = PreprocessConfig()
    train: TrainConfig = TrainConfig()
    bilstm: BiLstmConfig = BiLstmConfig()
    albert: AlbertConfig = AlbertConfig()
    head: HeadConfig = HeadConfig()
    score: ScoreConfig = ScoreConfig()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"


def _coerce(value: Any, annotation: Any, key: str) -> Any:
    """Converts a YAML/flag value to the field's declared type, or raises ConfigError."""
    hint = annotation
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None:
            return None
        hint = options[0]
        origin = typing.get_origin(hint)
    if origin is tuple:
        if isinstance(value, str):
            value = [value]
        _check(isinstance(value, (list, tuple)), f"{key} must be a list. Received: {key}={value!r}")
        (item_type, _) = typing.get_args(hint)
        return tuple(_coerce(v, item_type, key) for v in value)
    if hint is bool:
        _check(isinstance(value, bool), f"{key} must be true or false. Received: {key}={value!r}")
        return value
    if hint is int:
        _check(isinstance(value, int) and not isinstance(value, bool),
               f"{key} must be an integer. Received: {key}={value!r}")
        return value
    if hint is float:
        _check(isinstance(value, (int, float)) and not isinstance(value, bool),
               f"{key} must be a number. Received: {key}={value!r}")
        return float(value)
    if hint is str:
        _check(isinstance(value, str), f"{key} must be a string. Received: {key}={value!r}")
        return value
    raise TypeError(f"Unsupported config field type {hint!r} for {key}")


def _build_section(section_type: type, values: Mapping[str, Any], section: str):
    field_types = typing.get_type_hints(section_type)
    known = {f.name for f in dataclasses.fields(section_type)}
    unknown = sorted(set(values) - known)
    _check(not unknown, f"Unknown config key '{section}.{unknown[0] if unknown else ''}'. "
                        f"Known keys in '{section}': {', '.join(sorted(known))}")
    kwargs = {name: _coerce(value, field_types[name], f"{section}.{name}") for name, value in values.items()}
    return section_type(**kwargs)


def read_job_file(path: str) -> dict[str, Any]:
    """Reads a YAML job file into a plain mapping of sections, with clear errors."""
    try:
        with open(path, encoding="utf-8") as f:
            document = yaml.safe_load(f)
    except FileNotFoundError:
        raise ConfigError(f"Config file not found: {path}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"Config file {path} is not valid YAML: {str(e).splitlines()[0]}") from None
    if document is None:
        return {}
    _check(isinstance(document, dict), f"Config file {path} must hold a mapping of sections.")
    return document


def load_job_config(path: str | None = None, overrides: Mapping[str, Any] | None = None) -> JobConfig:
    """Builds the JobConfig from an optional YAML file, then `overrides` ("section.key" → value)."""
    document = read_job_file(path) if path else {}
    sections = {f.name: f.type for f in dataclasses.fields(JobConfig)}
    unknown = sorted(set(document) - set(sections))
    _check(not unknown, f"Unknown config section '{unknown[0] if unknown else ''}'. "
                        f"Known sections: {', '.join(sections)}")
    merged: dict[str, dict[str, Any]] = {}
    for name in sections:
        values = document.get(name) or {}
        _check(isinstance(values, dict), f"Config section '{name}' must be a mapping. Received: {values!r}")
        merged[name] = dict(values)
    for dotted, value in (overrides or {}).items():
        section, _, key = dotted.partition(".")
        _check(section in merged and bool(key), f"Unknown config key '{dotted}'. Known sections: {', '.join(sections)}")
        merged[section][key] = value
    hints = typing.get_type_hints(JobConfig)
    return JobConfig(**{name: _build_section(hints[name], merged[name], name) for name in sections})
