"""Pooling over time that ignores padded steps, shared by both encoders."""

from __future__ import annotations

import numpy as np
from keras import ops

# Fill value for padded steps before a max over time: the most negative float16 number, which is
# finite in every float dtype a precision policy may pick (float32, bfloat16, float16).
_MASKED_MAX_FILL = float(np.finfo(np.float16).min)


def masked_mean(x, mask):
    """Mean of `x` (B, T, D) over the steps where `mask` (B, T) is True; zeros for empty rows."""
    weights = ops.expand_dims(ops.cast(mask, x.dtype), axis=-1)  # (B, T, 1)
    total = ops.sum(x * weights, axis=1)  # (B, D)
    count = ops.maximum(ops.sum(weights, axis=1), 1.0)  # (B, 1); an all-padding row divides by 1
    return total / count


def masked_max(x, mask):
    """Max of `x` (B, T, D) over the steps where `mask` (B, T) is True; zeros for empty rows."""
    filled = ops.where(ops.expand_dims(mask, axis=-1), x, ops.cast(_MASKED_MAX_FILL, x.dtype))
    maximum = ops.max(filled, axis=1)  # (B, D)
    has_tokens = ops.any(mask, axis=1, keepdims=True)  # (B, 1)
    return ops.where(has_tokens, maximum, ops.zeros_like(maximum))
