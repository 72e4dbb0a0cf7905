"""The "linear bidirectional encoder": embedding → linear projection → stacked BiLSTM → context vector."""

from __future__ import annotations

import keras
from keras import ops

from model.pooling import masked_max, masked_mean
from schemas import features


@keras.saving.register_keras_serializable(package="albert_pipelines")
class BiLstmEncoder(keras.layers.Layer):
    """Token ids → a fixed-size context vector, through a stack of bidirectional LSTMs.

    Token embedding (vocab_size → embedding_dim), a linear projection (no activation) to
    `projection_dim`, then `num_lstm_layers` bidirectional LSTM layers of `lstm_units` per
    direction, each fed through dropout (so the projected embeddings are regularised too).
    Padding (`features.PAD_ID`) is masked throughout: the
    LSTMs skip padded steps and the pooling ignores them, so trailing padding never changes the
    output. The context vector concatenates the masked mean and the masked max over time of the
    last layer's states (each `2 * lstm_units` wide), so `output_dim == 4 * lstm_units`.

    With `num_lstm_layers=0` the mean and max pool the projected embeddings themselves (after
    dropout), `output_dim == 2 * projection_dim`: a bag of words that ignores order ("SWEM-concat",
    Shen et al., 2018), which suits long documents whose topic is in their words, and costs a
    small fraction of an LSTM layer per token.

    Pretrained word vectors go into `token_embedding.embeddings` once the layer is built.

    Args:
        vocab_size: int. Number of token ids, padding included.
        embedding_dim: int. Width of the token embedding.
        projection_dim: int. Width of the linear projection fed to the first LSTM layer.
        lstm_units: int. Units of each LSTM, per direction.
        num_lstm_layers: int. Number of stacked bidirectional LSTM layers; 0 pools the projected
            embeddings directly.
        dropout: float. Dropout rate on the input of every LSTM layer (on the pooled embeddings
            when there is none).
        **kwargs: base layer arguments (`name`, `dtype`, `trainable`).

    Call arguments:
        token_ids: int tensor (B, T), any T, `features.PAD_ID` after the last token.
        training: bool. Whether dropout is active.

    Returns:
        float tensor (B, output_dim): (B, 4 * lstm_units), or (B, 2 * projection_dim) without
        LSTM layers.
    """

    def __init__(self, vocab_size: int, embedding_dim: int = 128, projection_dim: int = 128,
                 lstm_units: int = 128, num_lstm_layers: int = 1, dropout: float = 0.1, **kwargs):
        if num_lstm_layers < 0:
            raise ValueError(f"`num_lstm_layers` must not be negative. Received: num_lstm_layers={num_lstm_layers}")
        super().__init__(**kwargs)

        # === Layers ===
        self.token_embedding = keras.layers.Embedding(
            vocab_size, embedding_dim, dtype=self.dtype_policy, name="token_embedding")
        self.projection = keras.layers.Dense(projection_dim, dtype=self.dtype_policy, name="projection")
        self.lstm_layers = [
            keras.layers.Bidirectional(
                keras.layers.LSTM(lstm_units, return_sequences=True, dtype=self.dtype_policy),
                dtype=self.dtype_policy, name=f"bilstm_{i}")
            for i in range(num_lstm_layers)
        ]
        self.dropout_layers = [
            keras.layers.Dropout(dropout, dtype=self.dtype_policy, name=f"dropout_{i}")
            for i in range(max(num_lstm_layers, 1))
        ]

        # === Config ===
        self.vocab_size = vocab_size
        self.embedding_dim = embedding_dim
        self.projection_dim = projection_dim
        self.lstm_units = lstm_units
        self.num_lstm_layers = num_lstm_layers
        self.dropout = dropout

    @property
    def output_dim(self) -> int:
        if self.num_lstm_layers == 0:
            return 2 * self.projection_dim  # [mean ; max] of the projected embeddings
        return 4 * self.lstm_units  # [mean ; max] of [forward ; backward]

    def build(self, input_shape):
        input_shape = tuple(input_shape)  # (B, T)
        self.token_embedding.build(input_shape)
        self.projection.build((*input_shape, self.embedding_dim))
        sequence_shape = (*input_shape, self.projection_dim)
        for lstm in self.lstm_layers:
            lstm.build(sequence_shape)
            sequence_shape = (*input_shape, 2 * self.lstm_units)
        self.built = True

    def call(self, token_ids, training=None):
        mask = ops.not_equal(token_ids, features.PAD_ID)  # (B, T)
        x = self.token_embedding(token_ids)  # (B, T, E)
        x = self.projection(x)  # (B, T, P)
        # The mask is passed explicitly rather than left to Keras' implicit propagation
        # (Embedding(mask_zero=True) → `_keras_mask`), which is silently lost by any op that is
        # not a mask-aware layer. Masked steps keep the previous LSTM state, so the backward
        # direction starts from its initial state at the last real token, as without padding.
        # Padding is on the right, which also keeps the cuDNN kernel usable on GPUs.
        for dropout, lstm in zip(self.dropout_layers, self.lstm_layers):
            x = dropout(x, training=training)
            x = lstm(x, mask=mask, training=training)  # (B, T, 2U)
        if self.num_lstm_layers == 0:
            x = self.dropout_layers[0](x, training=training)
        return ops.concatenate([masked_mean(x, mask), masked_max(x, mask)], axis=-1)  # (B, output_dim)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.output_dim)

    def get_config(self):
        config = super().get_config()
        config.update({
            "vocab_size": self.vocab_size,
            "embedding_dim": self.embedding_dim,
            "projection_dim": self.projection_dim,
            "lstm_units": self.lstm_units,
            "num_lstm_layers": self.num_lstm_layers,
            "dropout": self.dropout,
        })
        return config
