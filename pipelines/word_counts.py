"""Counting words over the whole training split: the Beam combiner behind the learned subword models.

Both learners (`pipelines.wordpiece`, `pipelines.sentencepiece_model`) are tf.Transform analyzers
whose Beam part counts the words tf.Transform hands over, batch by batch, with this combiner
(so the counting scales out), then learns from the counts on one worker.
"""

from __future__ import annotations

import collections

import apache_beam as beam


class WordCounter(beam.CombineFn):
    """Batches of words (one 1-D array per analyzer input batch) → Counter {word bytes: count}."""

    def create_accumulator(self):
        return collections.Counter()

    def add_input(self, counter, batch):
        (words,) = batch
        counter.update(words.tolist())
        return counter

    def merge_accumulators(self, counters):
        counters = iter(counters)
        merged = next(counters)
        for counter in counters:
            merged.update(counter)
        return merged

    def extract_output(self, counter):
        return counter
