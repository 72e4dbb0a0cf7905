"""Dynamic padding: a batch of right-padded token ids cut to the width its longest document needs."""

from __future__ import annotations

import tensorflow as tf

from schemas import features


def trim_trailing_padding(token_ids: tf.Tensor, multiple: int = 1) -> tf.Tensor:
    """(B, max_seq_length) → (B, T): drops the columns after the batch's last real token, T >= 1.

    T is the largest position of a non-PAD id rather than the largest count of them, so a PAD_ID
    inside a document could never cut it short. One column stays when no row has a token (a batch
    of empty documents, or no documents), since the encoders need a time axis. With `multiple`,
    T is rounded up to a multiple of it (never past max_seq_length), which bounds the number of
    distinct shapes an XLA-compiled step sees to max_seq_length / multiple.
    """
    max_width = tf.shape(token_ids)[1]
    positions = tf.range(1, max_width + 1)  # (T_max,) 1-based
    ends = tf.reduce_max(tf.where(tf.not_equal(token_ids, features.PAD_ID), positions, 0), axis=1)  # (B,)
    width = tf.maximum(tf.reduce_max(ends), 1)  # reduce_max of no rows is the smallest int32
    width = tf.minimum((width + multiple - 1) // multiple * multiple, max_width)
    return token_ids[:, :width]
