"""SentencePiece models for the `sentencepiece` tokenizer: given ones checked, missing ones learned.

A given model (`--sentencepiece-model PATH`, or a pretrained-encoder directory's spiece.model) is
read once when the pipeline is built and checked with `sentencepiece.SentencePieceProcessor`:
`<pad>` must be id 0 (padding is features.PAD_ID) and `[CLS]` and `[SEP]` must exist (every
sequence is framed `[CLS] pieces… [SEP]`).

Without one, `learn_sentencepiece` learns a unigram model from the training split inside the
pipeline, as the WordPiece vocabulary is learned (`pipelines.wordpiece`): a tf.Transform analyzer
whose Beam part counts the words (`pipelines.word_counts`) and runs the `sentencepiece` trainer
on the counts, with ALBERT's layout of special pieces: <pad>=0, <unk>=1, [CLS]=2, [SEP]=3,
[MASK]=4. The learned model is written as an asset (transform_fn/assets/spiece.model).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import io
import logging
import re

import apache_beam as beam
import numpy as np
import sentencepiece
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from apache_beam.io.filesystems import FileSystems

from pipelines.word_counts import WordCounter
from schemas import pretrained
from schemas.errors import UserError

MODEL_ASSET = pretrained.TOKENIZER_MODEL_FILE  # the learned model's file name in transform_fn/assets/
CONTROL_PIECES = (pretrained.CLS_PIECE, pretrained.SEP_PIECE, pretrained.MASK_PIECE)
LEARNED_LAYOUT = {"pad": 0, "unk": 1, "cls": 2, "sep": 3, "mask": 4}


@dataclasses.dataclass(frozen=True)
class SentencePieceModel:
    """A SentencePiece model (serialized proto) and the facts stats.json reports about it."""

    model: bytes
    vocab_size: int  # pieces in the model
    special_tokens: dict[str, int | None]  # "pad", "unk", "cls", "sep", "mask" → id (mask: None if absent)
    sha256: str

    @property
    def cls_id(self) -> int:
        return self.special_tokens["cls"]

    @property
    def sep_id(self) -> int:
        return self.special_tokens["sep"]

    @property
    def unk_id(self) -> int:
        return self.special_tokens["unk"]


def describe(model: bytes, source: str) -> SentencePieceModel:
    """Checks a serialized SentencePiece model; `source` names it in the UserError if it is unusable."""
    try:
        processor = sentencepiece.SentencePieceProcessor(model_proto=model)
    except (RuntimeError, OSError, TypeError):
        raise UserError(f"{source} is not a SentencePiece model (it cannot be parsed as one).") from None

    def piece_id(piece: str) -> int | None:
        found = processor.piece_to_id(piece)  # unknown pieces map to <unk>'s id
        return found if processor.id_to_piece(found) == piece else None

    special = {name: piece_id(piece) for name, piece in pretrained.SPECIAL_PIECES.items()}
    if special["unk"] is None:
        special["unk"] = processor.unk_id()
    if special["pad"] != 0:
        where = "is missing" if special["pad"] is None else f"has id {special['pad']}"
        raise UserError(f"The SentencePiece model {source} cannot be used: its padding piece "
                        f"{pretrained.PAD_PIECE} {where}, it must be id 0.")
    for name in ("cls", "sep"):
        if special[name] is None:
            raise UserError(f"The SentencePiece model {source} cannot be used: it has no "
                            f"{pretrained.SPECIAL_PIECES[name]} piece (sequences are framed [CLS] … [SEP]).")
    return SentencePieceModel(model=model, vocab_size=processor.get_piece_size(), special_tokens=special,
                              sha256=hashlib.sha256(model).hexdigest())


def read_model_file(path: str) -> bytes:
    """The bytes of a model file on any Beam filesystem; a missing file is a UserError."""
    if not FileSystems.exists(path):
        raise UserError(f"SentencePiece model not found: {path}")
    with FileSystems.open(path, compression_type="uncompressed") as f:
        return f.read()


# --- Learning a model in the pipeline ----------------------------------------------------------


def train_model(word_counts: dict[bytes, int], vocab_size: int) -> bytes:
    """A unigram SentencePiece model learned from (word, count) pairs, ALBERT's special pieces first.

    `vocab_size` is a ceiling: a small corpus gives fewer pieces. Words are sorted by count, then
    bytes, so the trainer sees the same input however Beam merged the counts (and the model
    records no input path: the same counts give the same bytes).
    """
    words = sorted(word_counts.items(), key=lambda item: (-item[1], item[0]))
    model = io.BytesIO()
    try:
        sentencepiece.SentencePieceTrainer.train(
            sentence_iterator=(f"{word.decode('utf-8')}\t{count}" for word, count in words), input_format="tsv",
            model_writer=model, model_type="unigram", vocab_size=vocab_size, hard_vocab_limit=False,
            pad_id=LEARNED_LAYOUT["pad"], unk_id=LEARNED_LAYOUT["unk"], bos_id=-1, eos_id=-1,
            control_symbols=list(CONTROL_PIECES),
            minloglevel=1,  # warnings and errors only
        )
    except RuntimeError as e:
        needed = re.search(r"smaller than required_chars\. \d+ vs (\d+)", str(e))
        if needed is None:
            raise
        raise UserError(f"preprocess.vocab_size {vocab_size} is too small for a SentencePiece model of this "
                        f"corpus: its characters and special pieces alone need {needed.group(1)}.") from None
    return model.getvalue()


@functools.cache
def placeholder_model() -> bytes:
    """A tiny model with the learned layout: stands for the learned one while tf.Transform traces."""
    return train_model({b"a": 1, b"b": 1}, vocab_size=8)


class LearnSentencePieceModel(tft_beam.experimental.PTransformAnalyzer):
    """Beam half of the analyzer: batches of words in, the path of the learned model file out."""

    def __init__(self, vocab_size: int):
        super().__init__()
        self._vocab_size = vocab_size

    def _learn_and_write(self, word_counts):
        if word_counts:
            model = train_model(word_counts, self._vocab_size)
        else:  # no training document: the run ends with a UserError saying so
            model = placeholder_model()
        learned = describe(model, "the learned model")
        assert learned.special_tokens == LEARNED_LAYOUT, learned.special_tokens
        logging.info("Learned a SentencePiece model of %d pieces from %d distinct words.",
                     learned.vocab_size, len(word_counts))
        tf.io.gfile.makedirs(self.base_temp_dir)
        path = f"{self.base_temp_dir}/{MODEL_ASSET}"
        with tf.io.gfile.GFile(path, "wb") as f:
            f.write(model)
        return np.array(path.encode(), dtype=object)

    def expand(self, word_batches):
        return (
            word_batches
            | "CountWords" >> beam.CombineGlobally(WordCounter())
            | "LearnAndWrite" >> beam.Map(self._learn_and_write)
        )


def learn_sentencepiece(words: tf.Tensor, vocab_size: int) -> bytes:
    """tf.Transform analyzer over all words (a 1-D string tensor): the learned model's bytes.

    SentencepieceTokenizer takes its model as an op attribute, a value needed when the graph is
    built, not a tensor. The analyzer's result is an asset (the model file, which tf.Transform
    copies into transform_fn/assets/); after analysis tf.Transform traces `preprocessing_fn` once
    more with every analyzer result bound to its value, and that trace reads the learned model
    from the file and builds the tokenizer saved in transform_fn/ (the saved graph holds the
    bytes; it does not read the asset). The traces before it, which only feed the analyzers,
    get the placeholder model.
    """
    (model_path,) = tft.experimental.ptransform_analyzer(
        inputs=[words],
        ptransform=LearnSentencePieceModel(vocab_size),
        output_dtypes=[tf.string],
        output_shapes=[[]],
        output_asset_default_values=[placeholder_model()],
        name="learn_sentencepiece",
    )
    path = tf.get_static_value(model_path)
    if path is None:
        return placeholder_model()
    with tf.io.gfile.GFile(np.asarray(path).item().decode(), "rb") as f:
        return f.read()
