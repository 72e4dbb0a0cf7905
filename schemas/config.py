"""The job configuration: one frozen dataclass per section, each checking its own values.

`schemas.config_loader.load_job_config` builds a `JobConfig` from a YAML job file and flag
overrides. Values derived from data (vocabulary size, label names) are never written back here:
they are read from the artifacts.
"""

from __future__ import annotations

import dataclasses
import json
import reprlib
from typing import Any

from schemas import features, predictions
from schemas.errors import UserError

INPUT_FORMATS = ("auto", "csv", "tsv", "jsonl", "parquet", "tfrecord", "textdirs")


class ConfigError(UserError):
    """The job file or a flag holds a value the job cannot run with."""


MAX_SHOWN_CHARS = 200  # of a value quoted in an error message

_SHORT_REPR = reprlib.Repr()  # bounded at every level, so a huge value is never expanded whole
_SHORT_REPR.maxstring = _SHORT_REPR.maxother = MAX_SHOWN_CHARS
_SHORT_REPR.maxlist = _SHORT_REPR.maxtuple = _SHORT_REPR.maxdict = _SHORT_REPR.maxset = 10
_SHORT_REPR.maxlevel = 3


def shown(value: Any) -> str:
    """`repr(value)` for an error message, at most MAX_SHOWN_CHARS long however large the value is.

    (A few lines of YAML with aliases can hold a value whose full repr is many megabytes.)
    """
    try:
        text = _SHORT_REPR.repr(value)
    except ValueError:  # an integer too long to print
        text = f"<a {type(value).__name__} too long to show>"
    return text if len(text) <= MAX_SHOWN_CHARS else text[: MAX_SHOWN_CHARS - 3] + "..."


def check(condition: bool, message: str) -> None:
    """Raises ConfigError(message) unless `condition` holds."""
    if not condition:
        raise ConfigError(message)


def _check_hardware_choices(section: str, settings) -> None:
    """strategy, mixed_precision and jit_compile of a section that trains (train, pretrain)."""
    for name, choices in (("strategy", STRATEGIES), ("mixed_precision", MIXED_PRECISION), ("jit_compile", JIT_COMPILE)):
        value = getattr(settings, name)
        check(value in choices,
              f"{section}.{name} must be one of {', '.join(choices)}. Received: {name}={shown(value)}")


def _check_all_at_least_one(section: str, values, may_be_zero: tuple[str, ...] = ()) -> None:
    """Every (integer) field of a model-size section must be at least 1 (those named in
    `may_be_zero`: at least 0)."""
    for field in dataclasses.fields(values):
        value, least = getattr(values, field.name), 0 if field.name in may_be_zero else 1
        check(value >= least, f"{section}.{field.name} must be at least {least}. Received: {field.name}={shown(value)}")


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
        check(self.format in INPUT_FORMATS,
               f"corpus.format must be one of {', '.join(INPUT_FORMATS)}. Received: format={shown(self.format)}")
        check(bool(self.text_field), "corpus.text_field must not be empty.")
        check(bool(self.label_field), "corpus.label_field must not be empty.")
        check(bool(self.label_separator), "corpus.label_separator must not be empty.")


@dataclasses.dataclass(frozen=True)
class PreprocessConfig:
    """How documents become padded token ids."""

    output_dir: str = ""
    task: str = features.TASK_CLASSIFY  # classify | pretrain (segment pairs for model.pretrain; sentencepiece)
    tokenizer: str = "word"  # word | wordpiece | sentencepiece (implied by the two fields below)
    vocab_size: int = 50000  # word: the id space (padding + words + OOV buckets); wordpiece, sentencepiece: target size
    sentencepiece_model: str | None = None  # a SentencePiece model file (any Beam filesystem path); None: learned
    pretrained: str | None = None  # a pretrained-encoder directory: its SentencePiece model, case and longest sequence
    min_frequency: int = 2  # word tokens seen fewer times in training map to OOV buckets
    num_oov_buckets: int = 1  # word tokenizer only
    max_seq_length: int = 1024  # training and scoring batches are cut to their longest document
    eval_fraction: float = 0.1
    lowercase: bool = True
    overwrite: bool = False

    def __post_init__(self):
        check(self.task in features.TASKS,
               f"preprocess.task must be one of {', '.join(features.TASKS)}. Received: task={shown(self.task)}")
        check(self.tokenizer in features.TOKENIZERS,
               f"preprocess.tokenizer must be one of {', '.join(features.TOKENIZERS)}. "
               f"Received: tokenizer={shown(self.tokenizer)}")
        check(not (self.sentencepiece_model and self.pretrained),
               "preprocess.sentencepiece_model and preprocess.pretrained cannot be combined: the pretrained "
               "directory holds its own SentencePiece model.")
        if self.sentencepiece_model or self.pretrained:
            given = "sentencepiece_model" if self.sentencepiece_model else "pretrained"
            check(self.tokenizer in ("word", "sentencepiece"),  # word: the default, replaced
                   f"preprocess.{given} needs preprocess.tokenizer sentencepiece. Received: tokenizer={shown(self.tokenizer)}")
            object.__setattr__(self, "tokenizer", "sentencepiece")
        check(self.tokenizer != "sentencepiece" or self.max_seq_length >= 3,
               f"preprocess.max_seq_length must be at least 3 with the sentencepiece tokenizer ([CLS], a piece, [SEP]). "
               f"Received: max_seq_length={shown(self.max_seq_length)}")
        check(self.vocab_size >= 10, f"preprocess.vocab_size must be at least 10. Received: vocab_size={shown(self.vocab_size)}")
        check(self.min_frequency >= 1,
               f"preprocess.min_frequency must be at least 1. Received: min_frequency={shown(self.min_frequency)}")
        check(self.num_oov_buckets >= 1,
               f"preprocess.num_oov_buckets must be at least 1. Received: num_oov_buckets={shown(self.num_oov_buckets)}")
        check(self.vocab_size - self.num_oov_buckets - 1 >= 1,
               f"preprocess.vocab_size must leave room for words beside padding and the OOV buckets. "
               f"Received: vocab_size={shown(self.vocab_size)}, num_oov_buckets={shown(self.num_oov_buckets)}")
        check(self.max_seq_length >= 1,
               f"preprocess.max_seq_length must be at least 1. Received: max_seq_length={shown(self.max_seq_length)}")
        check(0.0 <= self.eval_fraction < 1.0,
               f"preprocess.eval_fraction must be in [0, 1). Received: eval_fraction={shown(self.eval_fraction)}")

ENCODERS = ("bilstm", "albert", "none")  # none: the n-gram path alone (a linear model)
AUTO = "auto"  # chosen by the trainer from the data's stats.json (model/automatic.py)
NGRAM_WEIGHTINGS = (AUTO, "naive_bayes", "tfidf")
NGRAM_SOLVE, NGRAM_TRAIN = "solve", "train"
NGRAM_FITS = (AUTO, NGRAM_SOLVE, NGRAM_TRAIN)
ALBERT_POOLINGS = ("auto", "cls", "mean")
MULTI_WORKER = "multi_worker"  # MultiWorkerMirroredStrategy over the workers TF_CONFIG names (model/cluster.py)
STRATEGIES = ("auto", "default", "one_device", "mirrored", "tpu", MULTI_WORKER)
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
    num_inner_repetitions: int = 1  # transformer blocks in each group
    pooling: str = "auto"  # cls | mean | auto: cls for [CLS]-framed data (sentencepiece), else mean

    def __post_init__(self):
        check(self.pooling in ALBERT_POOLINGS,
               f"albert.pooling must be one of {', '.join(ALBERT_POOLINGS)}. Received: pooling={shown(self.pooling)}")
        for name in ("embedding_dim", "hidden_dim", "num_layers", "num_groups", "num_heads", "intermediate_dim",
                     "num_inner_repetitions"):
            check(getattr(self, name) >= 1,
                  f"albert.{name} must be at least 1. Received: {name}={shown(getattr(self, name))}")
        check(self.num_layers % self.num_groups == 0,
               f"albert.num_layers must be divisible by albert.num_groups. "
               f"Received: num_layers={shown(self.num_layers)}, num_groups={shown(self.num_groups)}")
        check(self.hidden_dim % self.num_heads == 0,
               f"albert.hidden_dim must be divisible by albert.num_heads. "
               f"Received: hidden_dim={shown(self.hidden_dim)}, num_heads={shown(self.num_heads)}")


@dataclasses.dataclass(frozen=True)
class HeadConfig:
    """The MLP classification head on top of either encoder."""

    hidden_units: tuple[int, ...] = (128,)
    dropout: float = 0.1
    batch_norm: bool = False

    def __post_init__(self):
        check(all(u >= 1 for u in self.hidden_units),
               f"head.hidden_units must be positive. Received: hidden_units={shown(self.hidden_units)}")
        check(0.0 <= self.dropout < 1.0, f"head.dropout must be in [0, 1). Received: dropout={shown(self.dropout)}")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How the encoder is fitted, evaluated and exported."""

    data_dir: str = ""  # a preprocessing output directory
    model_dir: str = ""
    encoder: str = AUTO  # auto | bilstm | albert | none (the n-gram path alone)
    epochs: int | None = None  # None: chosen from the data (model/automatic.py)
    batch_size: int | None = None  # None: chosen from the data
    init_from: str | None = None  # a pretrained-encoder directory: albert's architecture and weights
    learning_rate: float | None = None  # peak, reached after warm-up; None: 3e-5 with init_from, else 1e-3
    warmup_fraction: float = 0.1  # share of all steps spent warming up, then cosine decay
    weight_decay: float = 0.01  # AdamW, not applied to biases, norms and embeddings
    clip_norm: float = 1.0  # global gradient norm; 0 = no clipping
    dropout: float = 0.1  # inside the encoder
    early_stopping_patience: int = 2  # epochs without eval improvement; 0 = never stop early
    keep_checkpoints: int = 3  # per-epoch weights files kept, the most recent; 0 = keep every epoch's
    # auto: TPU (with tpu) → several workers in TF_CONFIG: multi_worker → several GPUs mirrored → one GPU → default
    strategy: str = "auto"
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
        check(self.encoder in (AUTO, *ENCODERS),
               f"train.encoder must be one of {AUTO}, {', '.join(ENCODERS)}. Received: encoder={shown(self.encoder)}")
        _check_hardware_choices("train", self)
        check(self.epochs is None or self.epochs >= 1,
               f"train.epochs must be at least 1. Received: epochs={shown(self.epochs)}")
        check(self.batch_size is None or self.batch_size >= 1,
               f"train.batch_size must be at least 1. Received: batch_size={shown(self.batch_size)}")
        check(self.learning_rate is None or self.learning_rate > 0,
               f"train.learning_rate must be positive. Received: learning_rate={shown(self.learning_rate)}")
        check(not self.init_from or self.encoder in (AUTO, "albert"),
               f"train.init_from needs train.encoder albert (a pretrained-encoder directory holds an ALBERT). "
               f"Received: encoder={shown(self.encoder)}")
        check(not (self.init_from and self.word_vectors),
               "train.init_from and train.word_vectors cannot be combined: the embeddings come from the "
               "pretrained encoder.")
        check(0.0 <= self.warmup_fraction < 1.0,
               f"train.warmup_fraction must be in [0, 1). Received: warmup_fraction={shown(self.warmup_fraction)}")
        check(0.0 <= self.dropout < 1.0, f"train.dropout must be in [0, 1). Received: dropout={shown(self.dropout)}")
        check(self.weight_decay >= 0 and self.clip_norm >= 0 and self.early_stopping_patience >= 0
               and self.keep_checkpoints >= 0,
               "train.weight_decay, train.clip_norm, train.early_stopping_patience and train.keep_checkpoints "
               "must not be negative.")
        check(0.0 < self.threshold < 1.0, f"train.threshold must be in (0, 1). Received: threshold={shown(self.threshold)}")


@dataclasses.dataclass(frozen=True)
class NgramConfig:
    """The wide path: a linear model over the word n-grams each document holds, beside the encoder
    (or alone, with train.encoder none). Its logits add to the head's."""

    max_ngram: int | None = None  # longest n-gram in tokens; 0: no n-gram path; None: chosen from the data
    num_buckets: int | None = None  # rows shared by hashed n-grams of 2+ tokens; None: from the corpus size
    weighting: str = AUTO  # naive_bayes (log-count ratios, NBSVM) | tfidf (idf, length-normalized) | auto
    # solve: a linear model solved to its optimum before training, then frozen | train: by gradient
    # descent with the encoder | auto
    fit: str = AUTO

    def __post_init__(self):
        check(self.max_ngram is None or self.max_ngram >= 0,
               f"ngrams.max_ngram must not be negative. Received: max_ngram={shown(self.max_ngram)}")
        check(self.num_buckets is None or self.num_buckets >= 1,
               f"ngrams.num_buckets must be at least 1. Received: num_buckets={shown(self.num_buckets)}")
        check(self.weighting in NGRAM_WEIGHTINGS,
               f"ngrams.weighting must be one of {', '.join(NGRAM_WEIGHTINGS)}. Received: weighting={shown(self.weighting)}")
        check(self.fit in NGRAM_FITS,
               f"ngrams.fit must be one of {', '.join(NGRAM_FITS)}. Received: fit={shown(self.fit)}")


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
        check(self.output_format in OUTPUT_FORMATS,
               f"score.output_format must be one of {', '.join(OUTPUT_FORMATS)}. "
               f"Received: output_format={shown(self.output_format)}")
        check(self.batch_size >= 1, f"score.batch_size must be at least 1. Received: batch_size={shown(self.batch_size)}")
        check(self.padding in PADDING_MODES,
               f"score.padding must be one of {', '.join(PADDING_MODES)}. Received: padding={shown(self.padding)}")
        check(self.sort_window_batches >= 1,
               f"score.sort_window_batches must be at least 1. "
               f"Received: sort_window_batches={shown(self.sort_window_batches)}")
        check(self.num_shards >= 0, f"score.num_shards must not be negative. Received: num_shards={shown(self.num_shards)}")
        clashing = sorted(set(self.keep_fields) & set(predictions.PREDICTION_COLUMNS))
        check(not clashing, f"score.keep_fields cannot include prediction columns ({', '.join(clashing)}). "
                             f"Received: keep_fields={shown(list(self.keep_fields))}")


PRETRAIN_OPTIMIZERS = ("adamw", "lamb")


@dataclasses.dataclass(frozen=True)
class PretrainConfig:
    """Masked-LM + sentence-order pretraining of the albert encoder (`python -m model.pretrain`).

    The architecture is the `albert` section's (or init_from's); hardware choices as in `train`.
    """

    data_dir: str = ""  # a preprocessing output directory of the pretrain task
    output_dir: str = ""  # becomes a pretrained-encoder directory (plus the run's checkpoints, logs, metrics)
    init_from: str | None = None  # continue pretraining this pretrained-encoder directory
    steps: int = 10000  # optimizer steps in all
    steps_per_checkpoint: int = 500  # resume state, held-out evaluation and history every this many steps
    batch_size: int = 64
    optimizer: str = "adamw"  # adamw | lamb
    learning_rate: float | None = None  # peak; None: 5e-4 from scratch, 1e-4 with init_from
    warmup_fraction: float = 0.05
    weight_decay: float = 0.01
    clip_norm: float = 1.0
    dropout: float = 0.0  # ALBERT pretrains without dropout
    mask_fraction: float = 0.15  # share of the non-special tokens chosen for prediction
    max_ngram: int = 3  # masked spans of n tokens, p(n) ∝ 1/n for n ≤ max_ngram
    max_predictions: int = 20  # chosen tokens per sequence, at most
    eval_batches: int = 50  # held-out batches evaluated at each checkpoint (0: all)
    strategy: str = "auto"
    tpu: str | None = None
    mixed_precision: str = "auto"
    jit_compile: str = "auto"
    shuffle_buffer: int = 10000
    seed: int = 42
    overwrite: bool = False

    def __post_init__(self):
        check(self.optimizer in PRETRAIN_OPTIMIZERS,
               f"pretrain.optimizer must be one of {', '.join(PRETRAIN_OPTIMIZERS)}. "
               f"Received: optimizer={shown(self.optimizer)}")
        _check_hardware_choices("pretrain", self)
        check(self.strategy != MULTI_WORKER,
               f"pretrain.strategy {MULTI_WORKER} is not supported: pretraining runs on one worker (several "
               f"devices of it with mirrored or tpu); multi-worker training is the trainer's.")
        for name in ("steps", "steps_per_checkpoint", "batch_size", "max_ngram", "max_predictions", "shuffle_buffer"):
            check(getattr(self, name) >= 1,
                  f"pretrain.{name} must be at least 1. Received: {name}={shown(getattr(self, name))}")
        check(self.eval_batches >= 0,
               f"pretrain.eval_batches must not be negative. Received: eval_batches={shown(self.eval_batches)}")
        check(self.learning_rate is None or self.learning_rate > 0,
               f"pretrain.learning_rate must be positive. Received: learning_rate={shown(self.learning_rate)}")
        check(0.0 < self.mask_fraction < 1.0,
               f"pretrain.mask_fraction must be in (0, 1). Received: mask_fraction={shown(self.mask_fraction)}")
        check(0.0 <= self.warmup_fraction < 1.0,
               f"pretrain.warmup_fraction must be in [0, 1). Received: warmup_fraction={shown(self.warmup_fraction)}")
        check(0.0 <= self.dropout < 1.0, f"pretrain.dropout must be in [0, 1). Received: dropout={shown(self.dropout)}")
        check(self.weight_decay >= 0 and self.clip_norm >= 0,
               "pretrain.weight_decay and pretrain.clip_norm must not be negative.")


@dataclasses.dataclass(frozen=True)
class JobConfig:
    """Every stage's settings; each stage receives only its own section(s)."""

    corpus: CorpusConfig = CorpusConfig()
    preprocess: PreprocessConfig = PreprocessConfig()
    train: TrainConfig = TrainConfig()
    bilstm: BiLstmConfig = BiLstmConfig()
    albert: AlbertConfig = AlbertConfig()
    head: HeadConfig = HeadConfig()
    ngrams: NgramConfig = NgramConfig()
    score: ScoreConfig = ScoreConfig()
    pretrain: PretrainConfig = PretrainConfig()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"
