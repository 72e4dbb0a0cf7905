"""ALBERT, "A Lite BERT" (Lan et al., 2019), on keras-hub's `AlbertBackbone`: token ids → a pooled vector."""

from __future__ import annotations

import keras
import keras_hub
import tensorflow as tf
from keras import ops

from model.pooling import masked_mean
from schemas import features

POOLING_CLS = "cls"  # the backbone's pooled_output: a tanh dense on the first token, [CLS]
POOLING_MEAN = "mean"  # the same tanh dense on the masked mean of the sequence output
POOLINGS = (POOLING_CLS, POOLING_MEAN)


@keras.saving.register_keras_serializable(package="albert_pipelines")
class AlbertEncoder(keras.layers.Layer):
    """Token ids → a pooled vector, through keras-hub's ALBERT backbone.

    The backbone (`self.backbone`, a `keras_hub.models.AlbertBackbone` with keras-hub's
    interface: `token_ids`, `segment_ids`, `padding_mask` → `sequence_output`, `pooled_output`)
    has ALBERT's factorized embedding (E → H), `num_layers` transformer layers sharing
    `num_groups` groups of `num_inner_repetitions` blocks, the tanh GELU and layer-norm epsilon
    1e-12; it is the part a pretrained-encoder directory holds. This layer derives the backbone's
    other inputs from the token ids: the padding mask (`features.PAD_ID` is padding, never
    attended to) and segment ids (all 0: one text per example), then pools:

    - "cls": the backbone's `pooled_output`, for ids framed `[CLS] … [SEP]` (SentencePiece
      tokenization; what a pretrained pooler was trained on);
    - "mean": the backbone's pooler dense (tanh) on the masked mean of `sequence_output`, for
      tokenizations without a [CLS] token (word, WordPiece). It reuses the pooler's weights, so
      every weight of this layer is a backbone weight in both modes.

    Trailing padding never changes the output. Inputs must be at most `max_seq_length` long (the
    position embedding table); longer inputs raise an error rather than being truncated.

    Args:
        vocab_size: int. Number of token ids, padding included.
        max_seq_length: int. Longest accepted input; number of learned positions.
        embedding_dim: int. Width E of the token, position and segment embeddings.
        hidden_dim: int. Width H of the transformer layers and of the output.
        num_layers: int. Number of transformer layer calls (group calls).
        num_groups: int. Number of distinct (parameter-holding) groups; `num_layers` must be
            divisible by it.
        num_heads: int. Attention heads; `hidden_dim` must be divisible by it.
        intermediate_dim: int. Width of the feed-forward networks' hidden layer.
        num_inner_repetitions: int. Transformer blocks in each group.
        pooling: "cls" or "mean" (see above).
        num_segments: int. Size of the segment embedding table (2 in published checkpoints).
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
                 num_inner_repetitions: int = 1, pooling: str = POOLING_MEAN, num_segments: int = 2,
                 dropout: float = 0.1, **kwargs):
        if num_groups < 1 or num_layers < 1 or num_layers % num_groups != 0:
            raise ValueError("`num_layers` must be divisible by `num_groups`. "
                             f"Received: num_layers={num_layers}, num_groups={num_groups}")
        if num_heads < 1 or hidden_dim % num_heads != 0:
            raise ValueError("`hidden_dim` must be divisible by `num_heads`. "
                             f"Received: hidden_dim={hidden_dim}, num_heads={num_heads}")
        if pooling not in POOLINGS:
            raise ValueError(f"`pooling` must be one of {POOLINGS}. Received: pooling={pooling!r}")
        super().__init__(**kwargs)

        # === Layers ===
        self.backbone = keras_hub.models.AlbertBackbone(
            vocabulary_size=vocab_size, num_layers=num_layers, num_heads=num_heads, embedding_dim=embedding_dim,
            hidden_dim=hidden_dim, intermediate_dim=intermediate_dim, num_groups=num_groups,
            num_inner_repetitions=num_inner_repetitions, dropout=dropout, max_sequence_length=max_seq_length,
            num_segments=num_segments, dtype=self.dtype_policy, name="backbone")

        # === Config ===
        self.vocab_size = vocab_size
        self.max_seq_length = max_seq_length
        self.embedding_dim = embedding_dim
        self.hidden_dim = hidden_dim
        self.num_layers = num_layers
        self.num_groups = num_groups
        self.num_heads = num_heads
        self.intermediate_dim = intermediate_dim
        self.num_inner_repetitions = num_inner_repetitions
        self.pooling = pooling
        self.num_segments = num_segments
        self.dropout = dropout

    @property
    def output_dim(self) -> int:
        return self.hidden_dim

    @property
    def token_embedding(self) -> keras.layers.Layer:
        return self.backbone.token_embedding

    def build(self, input_shape):
        self.built = True  # the backbone, a functional model, is built when constructed

    def call(self, token_ids, training=None):
        token_ids = ops.cast(self._checked_length(token_ids), "int32")  # (B, T)
        padding_mask = ops.not_equal(token_ids, features.PAD_ID)  # (B, T)
        outputs = self.backbone({
            "token_ids": token_ids,
            "segment_ids": ops.zeros_like(token_ids),  # one text per example: segment 0
            "padding_mask": ops.cast(padding_mask, "int32"),
        }, training=training)
        if self.pooling == POOLING_CLS:
            return outputs["pooled_output"]  # (B, H)
        return self.backbone.pooled_dense(masked_mean(outputs["sequence_output"], padding_mask))  # (B, H)

    def _checked_length(self, token_ids):
        """`token_ids` (B, T), once the position embeddings are known to cover T."""
        static_length = token_ids.shape[1]
        message = (f"Input sequences must be at most max_seq_length={self.max_seq_length} tokens long "
                   "(the size of the position embedding table); pad or truncate them when preprocessing.")
        if static_length is not None:
            if static_length > self.max_seq_length:
                raise ValueError(f"{message} Received: sequence length {static_length}")
            return token_ids
        # Length known only at run time (inside a traced graph): assert there, and hand on ids that
        # depend on the assertion, so that nothing computed from them can run before it. Under XLA,
        # where asserts compile to nothing, the position-embedding slice still fails on a long input.
        check = tf.debugging.assert_less_equal(ops.shape(token_ids)[1], self.max_seq_length, message=message)
        with tf.control_dependencies([check]):
            return tf.identity(token_ids)

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
            "num_inner_repetitions": self.num_inner_repetitions,
            "pooling": self.pooling,
            "num_segments": self.num_segments,
            "dropout": self.dropout,
        })
        return config
