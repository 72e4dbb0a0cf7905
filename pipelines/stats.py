"""Corpus statistics computed inside the pipeline: counts that must reconcile, labels, lengths,
and for the pretrain task the segment pairs."""

from __future__ import annotations

import collections
import json
from typing import Any

import apache_beam as beam
import numpy as np
import pyarrow as pa
from apache_beam import pvalue

from schemas import features
from schemas.config import PreprocessConfig


class _LengthHistogram(beam.CombineFn):
    """Histogram of token counts per document (index = length), merged across workers."""

    def create_accumulator(self):
        return np.zeros(0, dtype=np.int64)

    def add_input(self, histogram, lengths: np.ndarray):
        counts = np.bincount(lengths)
        if len(counts) > len(histogram):
            histogram = np.pad(histogram, (0, len(counts) - len(histogram)))
        histogram[: len(counts)] += counts
        return histogram

    def merge_accumulators(self, histograms):
        size = max((len(h) for h in histograms), default=0)
        merged = np.zeros(size, dtype=np.int64)
        for h in histograms:
            merged[: len(h)] += h
        return merged

    def extract_output(self, histogram):
        return histogram.tolist()


def sequence_lengths(transformed: tuple[pa.RecordBatch, Any]) -> np.ndarray:
    record_batch, _ = transformed
    column = record_batch.column(record_batch.schema.get_field_index(features.SEQUENCE_LENGTH))
    return column.flatten().to_numpy(zero_copy_only=False).astype(np.int64)


def length_summary(histogram: list[int], max_seq_length: int) -> dict[str, float]:
    """Mean, median, 95th percentile and max token count, and the share cut by truncation."""
    counts = np.asarray(histogram, dtype=np.int64)
    total = int(counts.sum())
    if total == 0:
        return {"mean": 0.0, "p50": 0, "p95": 0, "max": 0, "truncated_fraction": 0.0}
    lengths = np.arange(len(counts))
    cumulative = np.cumsum(counts)
    return {
        "mean": round(float((lengths * counts).sum() / total), 2),
        "p50": int(np.searchsorted(cumulative, 0.50 * total)),
        "p95": int(np.searchsorted(cumulative, 0.95 * total)),
        "max": int(lengths[counts > 0].max()),
        "truncated_fraction": round(float(counts[max_seq_length + 1:].sum() / total), 4),
    }


def tokenizer_facts(settings: PreprocessConfig, sentencepiece_model) -> dict[str, Any]:
    """stats.json's description of the token ids: their framing and, for sentencepiece, the model.

    `sentencepiece_model`: the `pipelines.sentencepiece_model.SentencePieceModel` used (None when
    there is none, e.g. no training document to learn it from).
    """
    if settings.tokenizer != "sentencepiece":
        return {"framing": "none"}
    facts = {"framing": "cls_sep", "pretrained": settings.pretrained}
    if sentencepiece_model is not None:
        facts.update({
            "vocab_size": sentencepiece_model.vocab_size,  # pieces in the model
            "special_tokens": dict(sentencepiece_model.special_tokens),
            "tokenizer_sha256": sentencepiece_model.sha256,
        })
    return facts


def _summarize(_, read, train, eval_, rejected_by_reason, train_labels, eval_labels, train_lengths, eval_lengths,
               max_seq_length) -> str:
    rejected = sum(rejected_by_reason.values())
    labels = collections.Counter(train_labels) + collections.Counter(eval_labels)
    length_histogram = _LengthHistogram().merge_accumulators([np.asarray(train_lengths, dtype=np.int64),
                                                              np.asarray(eval_lengths, dtype=np.int64)])
    return json.dumps({
        "read": read,
        "accepted": train + eval_,
        "rejected": rejected,
        "rejected_by_reason": dict(sorted(rejected_by_reason.items())),
        "train": train,
        "eval": eval_,
        "labels": dict(sorted(labels.items())),
        "token_length": length_summary(length_histogram.tolist(), max_seq_length),
    })


class CountByReason(beam.PTransform):
    """Rejections → one dict {reason: count}."""

    def expand(self, rejected):
        return (
            rejected
            | "Reasons" >> beam.Map(lambda r: r.reason)
            | "CountReasons" >> beam.combiners.Count.PerElement()
            | "ReasonsToDict" >> beam.combiners.ToDict()
        )


class SummarizeCorpus(beam.PTransform):
    """One JSON object with every count the stage reports (see stats.json).

    `transformed`: the (train, eval) transformed datasets. Each PCollection is summarized on its own
    and the small results merged: a Flatten of PCollections made in different stages would make
    the runner keep every element of both.
    """

    def __init__(self, *, read, train, eval_, rejected, transformed, max_seq_length: int):
        super().__init__()
        self._read, self._train, self._eval = read, train, eval_
        self._rejected, self._transformed = rejected, transformed
        self._max_seq_length = max_seq_length

    def expand(self, pipeline):
        def count(pcoll, label):
            return pcoll | label >> beam.combiners.Count.Globally()

        def labels(documents, label):
            return (documents
                    | f"{label}Labels" >> beam.FlatMap(lambda d: d.labels)
                    | f"Count{label}Labels" >> beam.combiners.Count.PerElement()
                    | f"{label}LabelsToDict" >> beam.combiners.ToDict())

        def lengths(transformed, label):
            return (transformed
                    | f"{label}Lengths" >> beam.Map(sequence_lengths)
                    | f"{label}LengthHistogram" >> beam.CombineGlobally(_LengthHistogram()))

        train_transformed, eval_transformed = self._transformed
        rejected_by_reason = self._rejected | "RejectedByReason" >> CountByReason()
        return (
            pipeline
            | "Start" >> beam.Create([None])
            | "Summarize" >> beam.Map(
                _summarize,
                read=pvalue.AsSingleton(count(self._read, "CountRead")),
                train=pvalue.AsSingleton(count(self._train, "CountTrain")),
                eval_=pvalue.AsSingleton(count(self._eval, "CountEval")),
                rejected_by_reason=pvalue.AsSingleton(rejected_by_reason),
                train_labels=pvalue.AsSingleton(labels(self._train, "Train")),
                eval_labels=pvalue.AsSingleton(labels(self._eval, "Eval")),
                train_lengths=pvalue.AsSingleton(lengths(train_transformed, "Train")),
                eval_lengths=pvalue.AsSingleton(lengths(eval_transformed, "Eval")),
                max_seq_length=self._max_seq_length,
            )
        )


# --- The pretrain task ---------------------------------------------------------------------------


class _PairCounts(beam.CombineFn):
    """Documents, pairs, tokens ([CLS]/[SEP] included) and swapped pairs of per-document pair lists."""

    def create_accumulator(self):
        return 0, 0, 0, 0

    def add_input(self, counts, pairs):
        documents, pair_count, tokens, swapped = counts
        return (documents + 1, pair_count + len(pairs), tokens + sum(len(p.token_ids) for p in pairs),
                swapped + sum(p.sentence_order for p in pairs))

    def merge_accumulators(self, accumulators):
        return tuple(int(sum(values)) for values in zip(*accumulators)) if accumulators else self.create_accumulator()

    def extract_output(self, counts):
        return dict(zip(("documents", "pairs", "tokens", "swapped"), counts))


def _summarize_pretrain(_, read, rejected_by_reason, train, eval_) -> str:
    rejected = sum(rejected_by_reason.values())
    return json.dumps({
        "read": read,
        "accepted": train["documents"] + eval_["documents"],
        "rejected": rejected,
        "rejected_by_reason": dict(sorted(rejected_by_reason.items())),
        "train": train["documents"],
        "eval": eval_["documents"],
        "pairs": {features.TRAIN_SPLIT: train["pairs"], features.EVAL_SPLIT: eval_["pairs"]},
        "tokens": {features.TRAIN_SPLIT: train["tokens"], features.EVAL_SPLIT: eval_["tokens"]},
        "swapped_pairs": train["swapped"] + eval_["swapped"],
    })


class SummarizePairs(beam.PTransform):
    """The pretrain task's counts as one JSON object: documents accepted per split (those that gave
    pairs), pairs, tokens and swapped pairs per split, rejections by reason."""

    def __init__(self, *, read, rejected, train_pairs, eval_pairs):
        super().__init__()
        self._read, self._rejected = read, rejected
        self._train_pairs, self._eval_pairs = train_pairs, eval_pairs

    def expand(self, pipeline):
        return (
            pipeline
            | "Start" >> beam.Create([None])
            | "Summarize" >> beam.Map(
                _summarize_pretrain,
                read=pvalue.AsSingleton(self._read | "CountRead" >> beam.combiners.Count.Globally()),
                rejected_by_reason=pvalue.AsSingleton(self._rejected | "RejectedByReason" >> CountByReason()),
                train=pvalue.AsSingleton(self._train_pairs | "CountTrain" >> beam.CombineGlobally(_PairCounts())),
                eval_=pvalue.AsSingleton(self._eval_pairs | "CountEval" >> beam.CombineGlobally(_PairCounts())),
            )
        )
