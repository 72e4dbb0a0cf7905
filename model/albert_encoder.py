"""ALBERT, "A Lite BERT" (Lan et al., 2019): a transformer encoder with factorized embeddings
and cross-layer parameter sharing."""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

from model.pooling import masked_mean
from schemas import features

_LAYER_NORM_EPSILON = 1e-12  # as in BERT and ALBERT


def _kernel_initializer():
    """A fresh initializer per weight, as in BERT/ALBERT (truncated normal, stddev 0.02)."""
    return keras.initializers.TruncatedNormal(stddev=0.02)


@keras.saving.register_keras_serializable(package="albert_pipelines")
class _TransformerBlock(keras.layers.Layer):
    """One post-LN transformer layer: self-attention and a GELU feed-forward network, each followed
    by dropout, a residual connection and layer normalization (as in BERT and ALBERT).

    Args:
        hidden_dim: int. Width of the input and output.
        num_heads: int. Attention heads; `hidden_dim` must be divisible by it.
        intermediate_dim: int. Width of the feed-forward network's hidden layer.
        dropout: float. Dropout rate on attention probabilities and on both residual branches.

    Call arguments:
        x: float tensor (B, T, H).
        attention_mask: bool tensor (B, 1, T): the keys each query may attend to.
        training: bool. Whether dropout is active.
    """

    def __init__(self, hidden_dim: int, num_heads: int, intermediate_dim: int, dropout: float, **kwargs):
        super().__init__(**kwargs)

        # === Layers ===
        self.attention = keras.layers.MultiHeadAttention(
            num_heads, key_dim=hidden_dim // num_heads, dropout=dropout,
            kernel_initializer=_kernel_initializer(), dtype=self.dtype_policy, name="attention")
        self.attention_dropout = keras.layers.Dropout(dropout, dtype=self.dtype_policy, name="attention_dropout")
        self.attention_norm = keras.layers.LayerNormalization(
            epsilon=_LAYER_NORM_EPSILON, dtype=self.dtype_policy, name="attention_norm")
        self.intermediate = keras.layers.Dense(
            intermediate_dim, kernel_initializer=_kernel_initializer(), dtype=self.dtype_policy, name="intermediate")
        self.output_dense = keras.layers.Dense(
            hidden_dim, kernel_initializer=_kernel_initializer(), dtype=self.dtype_policy, name="output_dense")
        self.output_dropout = keras.layers.Dropout(dropout, dtype=self.dtype_policy, name="output_dropout")
        self.output_norm = keras.layers.LayerNormalization(
            epsilon=_LAYER_NORM_EPSILON, dtype=self.dtype_policy, name="output_norm")

        # === Config ===
        self.hidden_dim = hidden_dim
        self.num_heads = num_heads
        self.intermediate_dim = intermediate_dim
        self.dropout = dropout

    def build(self, input_shape):
        input_shape = tuple(input_shape)  # (B, T, H)
        self.attention.build(input_shape, input_shape)
        self.attention_norm.build(input_shape)
        self.intermediate.build(input_shape)
        self.output_dense.build((*input_shape[:-1], self.intermediate_dim))
        self.output_norm.build(input_shape)
        self.built = True

    def call(self, x, attention_mask, training=None):
        attended = self.attention(x, x, attention_mask=attention_mask, training=training)  # (B, T, H)
        x = self.attention_norm(x + self.attention_dropout(attended, training=training))
        h = keras.activations.gelu(self.intermediate(x), approximate=True)  # (B, T, I)
        h = self.output_dropout(self.output_dense(h), training=training)  # (B, T, H)
        return self.output_norm(x + h)

    def get_config(self):
        config = super().get_config()
        config.update({"hidden_dim": self.hidden_dim, "num_heads": self.num_heads,
                       "intermediate_dim": self.intermediate_dim, "dropout": self.dropout})
        return config


@keras.saving.register_keras_serializable(package="albert_pipelines")
class AlbertEncoder(keras.layers.Layer):
    """Token ids → a pooled vector, through ALBERT's transformer encoder.

    Factorized embedding parameterization: tokens are embedded at a small `embedding_dim` (E),
    learned position embeddings are added at E, the sum is layer-normalized and dropped out, then
    a dense projection maps E → `hidden_dim` (H). Cross-layer parameter sharing: `num_layers`
    transformer layers are run with only `num_groups` distinct blocks, layer `i` using block
    `i // (num_layers // num_groups)` (`num_groups=1` shares one block across all layers, as in
    the paper's default). Padded positions (`features.PAD_ID`) are never attended to and are left
    out of the pooling, so trailing padding never changes the output.

    Inputs must be at most `max_seq_length` long (the size of the position embedding table);
    longer inputs raise an error rather than being truncated. Shorter ones are fine.

    Args:
        vocab_size: int. Number of token ids, padding included.
        max_seq_length: int. Longest accepted input; number of learned positions.
        embedding_dim: int. Width E of the token and position embeddings.
        hidden_dim: int. Width H of the transformer layers and of the output.
        num_layers: int. Number of transformer layers applied.
        num_groups: int. Number of distinct (parameter-holding) transformer blocks;
            `num_layers` must be divisible by it.
        num_heads: int. Attention heads; `hidden_dim` must be divisible by it.
        intermediate_dim: int. Width of the feed-forward networks' hidden layer.
        dropout: float. Dropout rate in the embeddings and the transformer layers.
        **kwargs: base layer arguments (`name`, `dtype`, `trainable`).

    Call arguments:
        token_ids: int tensor (B, T), T <= max_seq_length, `features.PAD_ID` after the last token.
        training: bool. Whether dropout is active.

    Returns:
        float tensor (B, hidden_dim).
    """

    def __init__(self, vocab_size: int, max_seq_length: int, embedding_dim: int = 128, hidden_dim: int = 256,
                 num_layers: int = 6, num_groups: int = 1, num_heads: int = 4, intermediate_dim: int = 1024,
                 dropout: float = 0.1, **kwargs):
        if num_groups < 1 or num_layers < 1 or num_layers % num_groups != 0:
            raise ValueError("`num_layers` must be divisible by `num_groups`. "
                             f"Received: num_layers={num_layers}, num_groups={num_groups}")
        if num_heads < 1 or hidden_dim % num_heads != 0:
            raise ValueError("`hidden_dim` must be divisible by `num_heads`. "
                             f"Received: hidden_dim={hidden_dim}, num_heads={num_heads}")
        super().__init__(**kwargs)

        # === Layers ===
        self.token_embedding = keras.layers.Embedding(
            vocab_size, embedding_dim, embeddings_initializer=_kernel_initializer(),
            dtype=self.dtype_policy, name="token_embedding")
        # The position embeddings (max_seq_length, E) are a weight created in build().
        self.embedding_norm = keras.layers.LayerNormalization(
            epsilon=_LAYER_NORM_EPSILON, dtype=self.dtype_policy, name="embedding_norm")
        self.embedding_dropout = keras.layers.Dropout(dropout, dtype=self.dtype_policy, name="embedding_dropout")
        self.embedding_projection = keras.layers.Dense(
            hidden_dim, kernel_initializer=_kernel_initializer(), dtype=self.dtype_policy,
            name="embedding_projection")
        self.blocks = [
            _TransformerBlock(hidden_dim, num_heads, intermediate_dim, dropout,
                              dtype=self.dtype_policy, name=f"transformer_group_{g}")
            for g in range(num_groups)
        ]
        self.pooler = keras.layers.Dense(
            hidden_dim, activation="tanh", kernel_initializer=_kernel_initializer(),
            dtype=self.dtype_policy, name="pooler")

        # === Config ===
        self.vocab_size = vocab_size
        self.max_seq_length = max_seq_length
        self.embedding_dim = embedding_dim
        self.hidden_dim = hidden_dim
        self.num_layers = num_layers
        self.num_groups = num_groups
        self.num_heads = num_heads
        self.intermediate_dim = intermediate_dim
        self.dropout = dropout

    @property
    def output_dim(self) -> int:
        return self.hidden_dim

    def build(self, input_shape):
        input_shape = tuple(input_shape)  # (B, T)
        self.token_embedding.build(input_shape)
        self.position_embeddings = self.add_weight(
            name="position_embeddings", shape=(self.max_seq_length, self.embedding_dim),
            initializer=_kernel_initializer())
        self.embedding_norm.build((*input_shape, self.embedding_dim))
        self.embedding_projection.build((*input_shape, self.embedding_dim))
        for block in self.blocks:
            block.build((*input_shape, self.hidden_dim))
        self.pooler.build((input_shape[0], self.hidden_dim))
        self.built = True

    def call(self, token_ids, training=None):
        token_ids, seq_length = self._checked_length(token_ids)
        padding_mask = ops.not_equal(token_ids, features.PAD_ID)  # (B, T)

        x = self.token_embedding(token_ids)  # (B, T, E)
        x = x + self.position_embeddings[:seq_length]  # (T, E) broadcast over the batch
        x = self.embedding_norm(x)
        x = self.embedding_dropout(x, training=training)
        x = self.embedding_projection(x)  # (B, T, H)

        # Every query attends only to real tokens; broadcast over queries and heads.
        attention_mask = ops.expand_dims(padding_mask, axis=1)  # (B, 1, T)
        layers_per_group = self.num_layers // self.num_groups
        for i in range(self.num_layers):
            x = self.blocks[i // layers_per_group](x, attention_mask=attention_mask, training=training)

        # This project's tokenization adds no [CLS] token, so instead of BERT/ALBERT's first-token
        # pooling the sequence is summarized by its masked mean, then the usual dense + tanh pooler.
        return self.pooler(masked_mean(x, padding_mask))  # (B, H)

    def _checked_length(self, token_ids):
        """(token_ids, T) of `token_ids` (B, T), once the position embeddings are known to cover T."""
        static_length = token_ids.shape[1]
        message = (f"Input sequences must be at most max_seq_length={self.max_seq_length} tokens long "
                   "(the size of the position embedding table); pad or truncate them when preprocessing.")
        if static_length is not None:
            if static_length > self.max_seq_length:
                raise ValueError(f"{message} Received: sequence length {static_length}")
            return token_ids, static_length
        # Length known only at run time (inside a traced graph): assert there, and hand on ids that
        # depend on the assertion, so that nothing computed from them (the position-embedding add
        # above all, which fails on a long input with a shape error) can run before it. Under XLA,
        # where asserts compile to nothing, that add's shape error still stops a long input.
        check = tf.debugging.assert_less_equal(ops.shape(token_ids)[1], self.max_seq_length, message=message)
        with tf.control_dependencies([check]):
            token_ids = tf.identity(token_ids)
        return token_ids, ops.shape(token_ids)[1]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.hidden_dim)

    def get_config(self):
        config = super().get_config()
        config.update({
            "vocab_size": self.vocab_size,
            "max_seq_length": self.max_seq_length,
            "embedding_dim": self.embedding_dim,
            "hidden_dim": self.hidden_dim,
            "num_layers": self.num_layers,
            "num_groups": self.num_groups,
            "num_heads": self.num_heads,
            "intermediate_dim": self.intermediate_dim,
            "dropout": self.dropout,
        })
        return config
