"""Dynamic masking for the masked-LM objective, as ALBERT does it: n-gram spans, 80/10/10.

For one `[CLS] A [SEP] B [SEP]` pair:

- the candidates are its non-special tokens ([CLS], [SEP], padding and the other special ids are
  never chosen);
- round(mask_fraction × candidates) of them are chosen (at least 1, at most max_predictions), in
  spans of n consecutive candidates, n ≤ max_ngram drawn with p(n) ∝ 1/n (the last span is cut to
  the budget); the spans are laid out uniformly at random without overlapping, so the lengths keep
  the 1/n law exactly (ALBERT's rejection of overlapping spans skews them to shorter ones);
- each chosen token becomes [MASK] with probability 0.8, a random non-special id with 0.1, and stays
  itself with 0.1; the model predicts the original.

`mask_pair` is plain numpy (seedable with a `np.random.Generator`); `batch_masking_map` wraps it
for a tf.data `map` over padded batches after `enumerate()`: each batch read (each epoch's) draws
afresh, from a seed that is a function of (seed, batch index), so a run's masks are reproducible.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import tensorflow as tf

MASK_TOKEN_SHARE = 0.8  # chosen tokens replaced by [MASK]
RANDOM_TOKEN_SHARE = 0.1  # replaced by a random non-special id; the rest (0.1) stay unchanged


@dataclasses.dataclass(frozen=True)
class MaskingSettings:
    mask_id: int
    special_ids: tuple[int, ...]  # never chosen, never drawn as a random replacement
    vocab_size: int
    mask_fraction: float = 0.15
    max_ngram: int = 3
    max_predictions: int = 20

    def __post_init__(self):
        if self.max_predictions < 1 or self.max_ngram < 1:
            raise ValueError(f"max_predictions and max_ngram must be at least 1. Received: max_predictions="
                             f"{self.max_predictions!r}, max_ngram={self.max_ngram!r}")
        if not 0 < self.mask_fraction < 1:
            raise ValueError(f"mask_fraction must be in (0, 1). Received: mask_fraction={self.mask_fraction!r}")

    @functools.cached_property
    def ngram_probabilities(self) -> np.ndarray:
        weights = 1.0 / np.arange(1, self.max_ngram + 1)
        return weights / weights.sum()

    @functools.cached_property
    def ngram_cumulative(self) -> np.ndarray:  # inverse-CDF sampling of n, cheaper than rng.choice
        return np.cumsum(self.ngram_probabilities)[:-1]

    @functools.cached_property  # built once: rebuilding it per example would dominate the cost
    def replacement_ids(self) -> np.ndarray:
        return np.setdiff1d(np.arange(self.vocab_size), np.asarray(self.special_ids))


def choose_spans(num_candidates: int, settings: MaskingSettings, rng: np.random.Generator
                 ) -> list[tuple[int, int]]:
    """(start, length) spans over candidate indices 0..num_candidates-1: disjoint, in order."""
    budget = min(settings.max_predictions, max(1, round(settings.mask_fraction * num_candidates)), num_candidates)
    if budget <= 0:
        return []
    # Lengths first (p(n) ∝ 1/n), enough to cover the budget; the last one cut to fit it.
    draws = 1 + np.searchsorted(settings.ngram_cumulative, rng.random(budget), side="right")
    ends = np.cumsum(draws)
    count = int(np.searchsorted(ends, budget)) + 1
    lengths = draws[:count].copy()
    lengths[-1] -= ends[count - 1] - budget
    # Uniform layout of `count` blocks among the free candidates: shuffle blocks and free slots.
    items = np.concatenate([np.arange(count), np.full(num_candidates - budget, -1)])
    rng.shuffle(items)
    item_lengths = np.where(items >= 0, lengths[np.maximum(items, 0)], 1)
    starts = np.cumsum(item_lengths) - item_lengths
    return [(int(start), int(lengths[block])) for start, block in zip(starts, items) if block >= 0]


def mask_pair(token_ids: np.ndarray, settings: MaskingSettings, rng: np.random.Generator
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(masked token_ids, mask_positions, mask_ids, mask_weights), the last three [max_predictions].

    Spans run over consecutive candidates (a span may step over the [SEP] between A and B, as in
    ALBERT). Unused prediction slots have position 0, id 0 and weight 0.
    """
    token_ids = np.asarray(token_ids)
    candidates = np.flatnonzero(~np.isin(token_ids, settings.special_ids))
    chosen = [index for start, length in choose_spans(len(candidates), settings, rng)
              for index in range(start, start + length)]
    positions = candidates[chosen]
    originals = token_ids[positions]
    draw = rng.random(len(positions))
    random_ids = settings.replacement_ids[rng.integers(0, len(settings.replacement_ids), size=len(positions))]
    replaced = np.where(draw < MASK_TOKEN_SHARE, settings.mask_id,
                        np.where(draw < MASK_TOKEN_SHARE + RANDOM_TOKEN_SHARE, random_ids, originals))
    masked = token_ids.copy()
    masked[positions] = replaced
    slots = settings.max_predictions
    mask_positions = np.zeros(slots, np.int64)
    mask_ids = np.zeros(slots, np.int64)
    mask_weights = np.zeros(slots, np.float32)
    mask_positions[:len(positions)] = positions
    mask_ids[:len(positions)] = originals
    mask_weights[:len(positions)] = 1.0
    return masked.astype(np.int64), mask_positions, mask_ids, mask_weights


def mask_batch(token_ids: np.ndarray, settings: MaskingSettings, rng: np.random.Generator
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """`mask_pair` on each row of a padded batch [B, T]; outputs [B, T] and three [B, max_predictions]."""
    rows = [mask_pair(row, settings, rng) for row in np.asarray(token_ids)]
    return tuple(np.stack(parts) for parts in zip(*rows)) if rows else (
        np.asarray(token_ids, np.int64), *(np.zeros((0, settings.max_predictions), dtype)
                                           for dtype in (np.int64, np.int64, np.float32)))


def batch_masking_map(settings: MaskingSettings, seed: int):
    """A function for `dataset.enumerate().map(...)` over padded batches: (index, token_ids [B, T]) →
    mask_batch's four tensors. One numpy call per batch: per example, TensorFlow's call overhead
    cost more than the masking itself."""
    def draw(index, token_ids):
        return mask_batch(token_ids, settings, np.random.default_rng([seed, int(index)]))

    def map_fn(index, token_ids):
        masked, positions, ids, weights = tf.numpy_function(
            draw, [index, token_ids], [tf.int64, tf.int64, tf.int64, tf.float32], stateful=False)
        masked.set_shape(token_ids.shape)
        for tensor in (positions, ids, weights):
            tensor.set_shape([token_ids.shape[0], settings.max_predictions])
        return masked, positions, ids, weights

    return map_fn
