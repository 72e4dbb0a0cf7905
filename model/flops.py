"""Model FLOPs of ALBERT and the matmul peak they are compared against (model-FLOPs utilization).

Matmul FLOPs only (2 per multiply-add): softmax, norms and activations are a few percent more.
A training step costs about 3x the forward pass (forward, plus gradients for activations and weights).
"""

from __future__ import annotations

import time

import tensorflow as tf

TRAINING_TO_FORWARD = 3


def albert_forward_flops(seq_length: float, embedding_dim: int, hidden_dim: int, num_layers: int,
                         intermediate_dim: int, num_inner_repetitions: int = 1, **_) -> float:
    """Matmul FLOPs of one example through the ALBERT encoder (sharing saves weights, not FLOPs)."""
    t, h = seq_length, hidden_dim
    per_layer = (2 * 4 * t * h * h  # query, key, value and output projections
                 + 2 * 2 * t * t * h  # attention scores and the weighted sum of values
                 + 2 * 2 * t * h * intermediate_dim)  # feed-forward network
    layers_applied = num_layers * num_inner_repetitions  # each layer runs its group's inner blocks
    return 2 * t * embedding_dim * h + layers_applied * per_layer + 2 * h * h  # + embedding projection, pooler


def pretraining_flops_per_example(seq_length: float, predictions: float, vocab_size: int, *, embedding_dim: int,
                                  hidden_dim: int, **albert_sizes) -> float:
    """Training FLOPs of one pair: the encoder, the masked-LM head at `predictions` positions
    (dense H → E, then logits E → vocabulary against the tied embeddings) and the sentence-order head."""
    forward = (albert_forward_flops(seq_length, embedding_dim=embedding_dim, hidden_dim=hidden_dim, **albert_sizes)
               + predictions * (2 * hidden_dim * embedding_dim + 2 * embedding_dim * vocab_size)
               + 2 * hidden_dim * 2)
    return TRAINING_TO_FORWARD * forward


def measure_matmul_peak(dtype: str = "float32", size: int = 1024, repeats: int = 4, seconds: float = 2.0) -> float:
    """FLOP/s of a chain of `size`² matmuls in `dtype` (float32, bfloat16, float16), best of timings
    repeated for `seconds` (at least 3)."""
    matrix = tf.cast(tf.random.normal((size, size), dtype=tf.float32) / size ** 0.5, dtype)

    @tf.function
    def chain(x):
        for _ in range(repeats):
            x = tf.matmul(x, matrix)
        return x

    chain(matrix).numpy()  # trace and warm up
    best, timings, deadline = 0.0, 0, time.perf_counter() + seconds
    while timings < 3 or time.perf_counter() < deadline:
        started = time.perf_counter()
        chain(matrix).numpy()
        best = max(best, repeats * 2 * size ** 3 / (time.perf_counter() - started))
        timings += 1
    return best


def compute_dtype(policy_name: str) -> str:
    """The matmul dtype of a Keras dtype policy name ("mixed_bfloat16" → "bfloat16")."""
    return policy_name.removeprefix("mixed_")
