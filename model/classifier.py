"""The text classifier: token ids → an encoder (chosen by name) → a classifier head."""

from __future__ import annotations

import keras

from model.albert_encoder import POOLING_MEAN, AlbertEncoder
from model.bilstm_encoder import BiLstmEncoder
from model.classifier_head import ClassifierHead
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
    if name == "albert":
        if encoder_kwargs.get("pooling") == "auto":
            encoder_kwargs = {**encoder_kwargs, "pooling": POOLING_MEAN}
        return AlbertEncoder(vocab_size=vocab_size, max_seq_length=max_seq_length, **encoder_kwargs)
    raise ValueError(f"`name` must be one of {ENCODERS}. Received: name={name!r}")


def build_classifier(encoder: keras.layers.Layer, head: ClassifierHead) -> keras.Model:
    """A functional model: int64 token ids (B, T), PAD_ID-padded → probabilities (B, num_outputs)."""
    token_ids = keras.Input(shape=(None,), dtype="int64", name=features.TOKEN_IDS)  # (B, T)
    context = encoder(token_ids)  # (B, D)
    probabilities = head(context)  # (B, num_outputs)
    return keras.Model(token_ids, probabilities, name="text_classifier")
