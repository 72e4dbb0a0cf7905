"""The tf.Transform `preprocessing_fn`: raw text and labels → padded token ids and label ids.

It is traced once into transform_fn/, which the trainer reads and every exported model embeds,
so training and serving tokenize identically. Configure it with `functools.partial`.

Three tokenizers: `word` and `wordpiece` share a pre-tokenization (`normalize_text`) and pad
after the last token; `sentencepiece` prepares the text as ALBERT does (`pipelines.albert_text`)
and frames the pieces `[CLS] pieces… [SEP]` before padding.
"""

from __future__ import annotations

import functools
import re

import sentencepiece
import tensorflow as tf
import tensorflow_text as tf_text
import tensorflow_transform as tft

from pipelines import albert_text, visible_text
from pipelines.sentencepiece_model import SentencePieceModel, describe, learn_sentencepiece
from pipelines.wordpiece import learn_wordpiece
from schemas import features
from schemas.config import PreprocessConfig


def normalize_text(text: tf.Tensor, lowercase: bool) -> tf.Tensor:
    """Invisible characters removed and separators made spaces (the rule validation applies, see
    `pipelines.visible_text`), Unicode NFKC (+ case folding), markup line breaks removed,
    punctuation set apart."""
    text = tf.strings.regex_replace(text, visible_text.re2_class(visible_text.REMOVED), "")
    text = tf.strings.regex_replace(text, visible_text.re2_class(visible_text.SPACES), " ")
    text = tf_text.case_fold_utf8(text) if lowercase else tf_text.normalize_utf8(text, "NFKC")
    text = tf.strings.regex_replace(text, visible_text.BR_TAG, " ")
    return tf.strings.regex_replace(text, r"([\pP\pS])", r" \1 ")


def split_words(text: tf.Tensor, lowercase: bool) -> tf.RaggedTensor:
    """[batch] strings → [batch, (words)]: the pre-tokenization both tokenizers share."""
    return tf.strings.split(normalize_text(text, lowercase))


def word_ids(words: tf.RaggedTensor, config: PreprocessConfig) -> tf.RaggedTensor:
    """Word vocabulary of the training split; id 0 = padding, then the vocabulary, then OOV buckets.

    This is `tft.compute_and_apply_vocabulary`, with the counting done per batch in the graph:
    the analyzer receives each batch's distinct words weighted by their counts instead of every
    token, which cuts the elements Beam has to count by an order of magnitude.
    """
    distinct_words, _, counts = tf.unique_with_counts(words.flat_values)
    vocabulary_path = tft.vocabulary(
        distinct_words,
        weights=tf.cast(counts, tf.float32),
        top_k=config.vocab_size - config.num_oov_buckets - 1,  # the id space is exactly vocab_size
        frequency_threshold=config.min_frequency if config.min_frequency > 1 else None,
        vocab_filename=features.TOKEN_VOCABULARY,
    )
    ids = tft.apply_vocabulary(words, vocabulary_path, num_oov_buckets=config.num_oov_buckets)
    return ids + 1


def wordpiece_ids(words: tf.RaggedTensor, config: PreprocessConfig) -> tf.RaggedTensor:
    """Subword ids from a vocabulary learned in the pipeline; id 0 = [PAD], unknown pieces = [UNK]."""
    _, model_path = learn_wordpiece(words.flat_values, config.vocab_size)
    tokenizer = tf_text.FastWordpieceTokenizer(
        model_buffer=tf.io.decode_raw(tf.io.read_file(model_path), tf.uint8),
        no_pretokenization=True,
        token_out_type=tf.int64,
    )
    return tokenizer.tokenize(words).merge_dims(-2, -1)


def pad_or_truncate(ids: tf.RaggedTensor, max_seq_length: int) -> tf.Tensor:
    """[batch, (tokens)] → [batch, max_seq_length], cut at the end, PAD_ID after the last token."""
    return ids[:, :max_seq_length].to_tensor(default_value=features.PAD_ID, shape=[None, max_seq_length])


def sentencepiece_pieces(normalized: tf.Tensor, model: bytes) -> tf.RaggedTensor:
    """[batch] prepared strings → [batch, (pieces)] int64 piece ids of the serialized `model`.

    The model bytes become part of the graph (an op attribute): the saved transform needs no file.
    """
    tokenizer = tf_text.SentencepieceTokenizer(model=model, out_type=tf.int32)  # int64 is not supported
    return tf.cast(tokenizer.tokenize(normalized), tf.int64)


def frame_cls_sep(pieces: tf.RaggedTensor, model: SentencePieceModel, max_seq_length: int
                  ) -> tuple[tf.Tensor, tf.Tensor]:
    """(token ids [batch, max_seq_length], sequence lengths [batch]) of `[CLS] pieces… [SEP]` + PAD.

    Pieces beyond max_seq_length - 2 are cut; the length counts [CLS], every piece and [SEP]. A
    text whose preparation leaves nothing to tokenize (only combining marks, say) gets one <unk>
    piece, so every accepted document has at least one piece, as with the other tokenizers.
    """
    batch_size = pieces.nrows()
    nothing = tf.cast(pieces.row_lengths() == 0, tf.int64)
    unk = tf.RaggedTensor.from_tensor(tf.fill([batch_size, 1], tf.constant(model.unk_id, tf.int64)), lengths=nothing)
    pieces = tf.concat([pieces, unk], axis=1)
    cls = tf.fill([batch_size, 1], tf.constant(model.cls_id, tf.int64))
    sep = tf.fill([batch_size, 1], tf.constant(model.sep_id, tf.int64))
    framed = tf.concat([cls, pieces[:, : max_seq_length - 2], sep], axis=1)
    token_ids = framed.to_tensor(default_value=features.PAD_ID, shape=[None, max_seq_length])
    return token_ids, pieces.row_lengths() + 2


def model_and_pieces(text: tf.Tensor, config: PreprocessConfig, model: SentencePieceModel | None
                     ) -> tuple[SentencePieceModel, tf.RaggedTensor]:
    """The given SentencePiece model, or one learned from the training split, and the [batch,
    (pieces)] ids of the text prepared as ALBERT prepares it. Both tasks tokenize through here,
    so pretraining and fine-tuning see the same ids for the same text."""
    normalized = albert_text.normalize(text, config.lowercase)
    if model is None:
        words = tf.strings.split(normalized)
        model = describe(learn_sentencepiece(words.flat_values, config.vocab_size), "the learned model")
    return model, sentencepiece_pieces(normalized, model.model)


def sentencepiece_outputs(text: tf.Tensor, config: PreprocessConfig, model: SentencePieceModel | None
                          ) -> dict[str, tf.Tensor]:
    """Token ids of the given SentencePiece model, or of one learned from the training split."""
    model, pieces = model_and_pieces(text, config, model)
    token_ids, lengths = frame_cls_sep(pieces, model, config.max_seq_length)
    return {features.TOKEN_IDS: token_ids, features.SEQUENCE_LENGTH: lengths}


def label_outputs(labels: tf.Tensor | tf.SparseTensor, multi_label: bool) -> dict[str, tf.Tensor]:
    """Label ids from the training split's label vocabulary; multi-hot vectors for multi-label."""
    ids = tft.compute_and_apply_vocabulary(labels, vocab_filename=features.LABEL_VOCABULARY, default_value=-1)
    if not multi_label:
        return {features.LABEL_ID: ids}
    num_labels = tft.experimental.get_vocabulary_size_by_name(features.LABEL_VOCABULARY)
    multi_hot = tf.math.bincount(ids, minlength=num_labels, maxlength=num_labels, binary_output=True,
                                 dtype=tf.float32, axis=-1)
    multi_hot = tf.ensure_shape(multi_hot, [None, None])
    # The width is known only after analysis, so it is stored as a variable-length feature.
    return {features.LABEL_MULTI_HOT: tf.RaggedTensor.from_tensor(multi_hot)}


def preprocessing_fn(inputs: dict[str, tf.Tensor], *, config: PreprocessConfig, multi_label: bool = False,
                     sentencepiece_model: SentencePieceModel | None = None) -> dict[str, tf.Tensor]:
    """Raw `text` (and `label` when present) → `token_ids`, `sequence_length`, label id(s).

    `sentencepiece_model`: the checked model of config.sentencepiece_model or config.pretrained
    (read once when the pipeline is built); None with the sentencepiece tokenizer learns one.
    """
    if sentencepiece_model is not None and config.tokenizer != "sentencepiece":
        raise ValueError(f"A SentencePiece model was given to the {config.tokenizer} tokenizer.")
    if config.tokenizer == "sentencepiece":
        if sentencepiece_model is None and (config.sentencepiece_model or config.pretrained):
            raise ValueError("The configured SentencePiece model must be read and passed as `sentencepiece_model`.")
        outputs = sentencepiece_outputs(inputs[features.TEXT], config, sentencepiece_model)
    else:
        words = split_words(inputs[features.TEXT], config.lowercase)
        ids = wordpiece_ids(words, config) if config.tokenizer == "wordpiece" else word_ids(words, config)
        outputs = {
            features.TOKEN_IDS: pad_or_truncate(ids, config.max_seq_length),
            features.SEQUENCE_LENGTH: ids.row_lengths(),
        }
    if features.LABEL in inputs:
        outputs.update(label_outputs(inputs[features.LABEL], multi_label))
    return outputs


# --- The pretrain task: a document's pieces and where its sentences end ---------------------------

PIECE_IDS = "piece_ids"  # int64 [batch, (pieces)]: unframed and uncut
ENDS_SENTENCE = "ends_sentence"  # int64 [batch, (pieces)]: 1 where the piece closes a sentence

# A piece made only of sentence-final punctuation, perhaps after the word-start mark and before
# closing quotes or brackets: ".", "▁?", "!!", '."', ".)". (NFKD has already made "…" "...".)
_SENTENCE_FINAL_PIECE = re.compile("\u2581?[.!?\u3002\uff01\uff1f]+[\"'\u2019\u201d\u00bb)\\]]*")


@functools.cache
def sentence_final_piece_ids(model: bytes) -> tuple[int, ...]:
    """Ids of the model's pieces that end a sentence (normal pieces only, never control pieces)."""
    processor = sentencepiece.SentencePieceProcessor(model_proto=model)
    return tuple(i for i in range(processor.get_piece_size())
                 if not (processor.is_control(i) or processor.is_unknown(i))
                 and _SENTENCE_FINAL_PIECE.fullmatch(processor.id_to_piece(i)))


def ends_sentence(pieces: tf.RaggedTensor, model: bytes) -> tf.RaggedTensor:
    """[batch, (pieces)] → [batch, (pieces)] int64: 1 for a piece of sentence-final punctuation.

    The ids are found once, in Python, when the graph is built; the graph compares against them.
    """
    final_ids = sentence_final_piece_ids(model)
    final_ids = tf.constant(final_ids, dtype=tf.int64, shape=[len(final_ids)])
    flat = pieces.flat_values
    is_final = tf.reduce_any(tf.equal(flat[:, None], final_ids[None, :]), axis=-1)
    return pieces.with_flat_values(tf.cast(is_final, tf.int64))


def pretrain_preprocessing_fn(inputs: dict[str, tf.Tensor], *, config: PreprocessConfig,
                              sentencepiece_model: SentencePieceModel | None = None) -> dict[str, tf.Tensor]:
    """Raw `text` → its SentencePiece ids (`piece_ids`) and sentence ends (`ends_sentence`).

    The pretrain task's variant: no framing, padding or cut (pairs are cut from whole documents
    after the transform) and no labels. Same normalization and model as `preprocessing_fn`.
    """
    if config.tokenizer != "sentencepiece":
        raise ValueError(f"The pretrain task tokenizes with sentencepiece. Received: tokenizer={config.tokenizer!r}")
    if sentencepiece_model is None and (config.sentencepiece_model or config.pretrained):
        raise ValueError("The configured SentencePiece model must be read and passed as `sentencepiece_model`.")
    model, pieces = model_and_pieces(inputs[features.TEXT], config, sentencepiece_model)
    return {PIECE_IDS: pieces, ENDS_SENTENCE: ends_sentence(pieces, model.model)}
