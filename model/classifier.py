"""The text classifier: token ids → an encoder (chosen by name) → a classifier head, with the
n-gram path's logits added before the activation (or the n-gram path alone)."""

from __future__ import annotations

import keras

from model.albert_encoder import POOLING_MEAN, AlbertEncoder
from model.bilstm_encoder import BiLstmEncoder
from model.classifier_head import ClassifierHead
from model.ngram_logits import NgramLogits
from schemas import features
from schemas.config import ENCODERS


def build_encoder(name: str, vocab_size: int, max_seq_length: int, **encoder_kwargs) -> keras.layers.Layer:
    """The encoder called `name` ("bilstm" or "albert"), with `encoder_kwargs` for its constructor.

    `max_seq_length` sizes ALBERT's position embeddings; the BiLSTM takes any length and ignores it.
    ALBERT's `pooling="auto"` (the job file's default) is "mean" here, where the data is unknown:
    the trainer resolves it from the data's framing first (`model.fine_tuning.resolve_pooling`).
    """
    if name == "bilstm":
        return BiLstmEncoder(vocab_size=vocab_size, **encoder_kwargs)
    if name == "none":
        raise ValueError("Encoder 'none' has no layer: build_classifier takes encoder=None for it.")
    if name == "albert":
        if encoder_kwargs.get("pooling") == "auto":
            encoder_kwargs = {**encoder_kwargs, "pooling": POOLING_MEAN}
        return AlbertEncoder(vocab_size=vocab_size, max_seq_length=max_seq_length, **encoder_kwargs)
    raise ValueError(f"`name` must be one of {ENCODERS}. Received: name={name!r}")


def build_classifier(encoder: keras.layers.Layer | None, head: ClassifierHead | None,
                     ngram_logits: NgramLogits | None = None, activation: str = "softmax") -> keras.Model:
    """A functional model: int64 token ids (B, T), PAD_ID-padded → probabilities (B, num_outputs).

    encoder + head, plus `ngram_logits` added to the head's logits when given; or, with no encoder
    (and no head), `ngram_logits` alone through `activation`.
    """
    if encoder is None and ngram_logits is None:
        raise ValueError("A classifier needs an encoder, an n-gram path or both. Received neither.")
    token_ids = keras.Input(shape=(None,), dtype="int64", name=features.TOKEN_IDS)  # (B, T)
    context = encoder(token_ids) if encoder is not None else None  # (B, D); the model's layer 1
    wide = ngram_logits(token_ids) if ngram_logits is not None else None  # (B, num_outputs)
    if context is None:
        probabilities = keras.layers.Activation(activation, dtype="float32", name="probabilities")(wide)
    else:
        probabilities = head(context) if wide is None else head(context, wide)  # (B, num_outputs)
    return keras.Model(token_ids, probabilities, name="text_classifier")
