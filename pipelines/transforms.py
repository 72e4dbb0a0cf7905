"""The middle of the preprocessing pipeline: validate, split, batch. No I/O here."""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Callable, Iterable, Iterator

import apache_beam as beam
import numpy as np
import pyarrow as pa
from apache_beam import pvalue

from pipelines.documents import Document, text_fingerprint, to_document
from pipelines.formats import RawRecord, Rejection
from schemas import features, rejections
from schemas.config import CorpusConfig
from schemas.raw_schema import BYTES_LIST, RAW_ARROW_SCHEMA

REJECTED_TAG = "rejected"


class _ValidateDoFn(beam.DoFn):
    def __init__(self, config: CorpusConfig, require_label: bool, keep_fields: tuple[str, ...],
                 ignore_labels: bool = False):
        self._config = config
        self._require_label = require_label
        self._keep_fields = keep_fields
        self._ignore_labels = ignore_labels

    def process(self, item: RawRecord | Rejection) -> Iterator:
        if isinstance(item, RawRecord) and self._ignore_labels:
            # Whatever the label field holds (nothing, a list, a number) cannot reject the document.
            fields = {name: value for name, value in item.fields.items() if name != self._config.label_field}
            item = dataclasses.replace(item, fields=fields)
        if isinstance(item, RawRecord):
            result = to_document(item, self._config, self._require_label, self._keep_fields)
        else:
            result = item
        if isinstance(result, Rejection):
            yield pvalue.TaggedOutput(REJECTED_TAG, result)
        else:
            yield result


class ValidateDocuments(beam.PTransform):
    """RawRecords → Documents (main output) and Rejections (output `rejected`).

    `ignore_labels`: the label field is not read at all (unlabelled corpora): every Document has
    no labels and none is rejected for its label.
    """

    def __init__(self, config: CorpusConfig, require_label: bool = True, keep_fields: tuple[str, ...] = (),
                 ignore_labels: bool = False):
        super().__init__()
        self._config = config
        self._require_label = require_label and not ignore_labels
        self._keep_fields = keep_fields
        self._ignore_labels = ignore_labels

    def expand(self, records):
        return records | beam.ParDo(_ValidateDoFn(self._config, self._require_label, self._keep_fields,
                                                  self._ignore_labels)).with_outputs(REJECTED_TAG, main="documents")


class _CountRejectionsDoFn(beam.DoFn):
    def __init__(self, namespace: str):
        self._namespace = namespace

    def setup(self):
        self._total = beam.metrics.Metrics.counter(self._namespace, "rejected")
        self._by_reason = {reason: beam.metrics.Metrics.counter(self._namespace, f"rejected_{reason}")
                           for reason in rejections.ALL}

    def process(self, rejection: Rejection) -> Iterator[Rejection]:
        self._total.inc()
        self._by_reason[rejection.reason].inc()
        yield rejection


class CountRejections(beam.PTransform):
    """Counts each rejection in Beam counters `<namespace>:rejected_<reason>`; passes them on."""

    def __init__(self, namespace: str):
        super().__init__()
        self._namespace = namespace

    def expand(self, rejected):
        return rejected | beam.ParDo(_CountRejectionsDoFn(self._namespace))


def split_bucket(key: str) -> float:
    """A uniform number in [0, 1) from a stable hash of `key` (same on every machine and run)."""
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


class _CountAndFirstId(beam.CombineFn):
    """(number of documents, smallest id) of the documents sharing one text."""

    def create_accumulator(self):
        return 0, None

    def add_input(self, accumulator, doc_id):
        count, first = accumulator
        return count + 1, doc_id if first is None or doc_id < first else first

    def merge_accumulators(self, accumulators):
        count, first = 0, None
        for c, f in accumulators:
            count += c
            if f is not None and (first is None or f < first):
                first = f
        return count, first

    def extract_output(self, accumulator):
        return accumulator


class _AssignSplitDoFn(beam.DoFn):
    def __init__(self, eval_fraction: float):
        self._eval_fraction = eval_fraction

    def process(self, document: Document, duplicate_owner: dict[str, str]) -> Iterator:
        # Exact duplicates share the split of the smallest id among them, so none straddles.
        split_key = duplicate_owner.get(text_fingerprint(document.text), document.id)
        if split_bucket(split_key) < self._eval_fraction:
            yield pvalue.TaggedOutput(features.EVAL_SPLIT, document)
        else:
            yield document


class DuplicateOwners(beam.PTransform):
    """Documents → (text fingerprint, smallest id) for each text that more than one document holds.

    Small beside the corpus (one pair per duplicated text), so it serves as a side input.
    """

    def expand(self, documents):
        return (
            documents
            | "KeyByText" >> beam.Map(lambda d: (text_fingerprint(d.text), d.id))
            | "CountPerText" >> beam.CombinePerKey(_CountAndFirstId())
            | "KeepDuplicates" >> beam.Filter(lambda kv: kv[1][0] > 1)
            | "OwnerId" >> beam.MapTuple(lambda fingerprint, count_and_first: (fingerprint, count_and_first[1]))
        )


class SplitTrainEval(beam.PTransform):
    """Deterministic train/eval split by a hash of the document id; duplicates stay together.

    Outputs `train` and `eval`. The split of a document depends only on its id (and on the ids of
    documents with exactly the same text), never on input order, sharding or runner.

    `duplicate_owners`: `DuplicateOwners` of the same documents, computed from another read of
    them. Without it they are computed here, and the runner keeps the documents until they are known.
    """

    def __init__(self, eval_fraction: float, duplicate_owners: beam.PCollection | None = None):
        super().__init__()
        self._eval_fraction = eval_fraction
        self._duplicate_owners = duplicate_owners

    def expand(self, documents):
        duplicate_owners = self._duplicate_owners
        if duplicate_owners is None:
            duplicate_owners = documents | "DuplicateOwners" >> DuplicateOwners()
        return documents | "Assign" >> beam.ParDo(
            _AssignSplitDoFn(self._eval_fraction), duplicate_owner=pvalue.AsDict(duplicate_owners)
        ).with_outputs(features.EVAL_SPLIT, main=features.TRAIN_SPLIT)


def _check_labels(document: Document, known_labels: Iterable[str]) -> Iterator:
    known = set(known_labels)
    unknown = [label for label in document.labels if label not in known]
    if unknown:
        yield pvalue.TaggedOutput(REJECTED_TAG, Rejection(
            rejections.UNKNOWN_LABEL, document.source,
            f"label(s) {', '.join(map(repr, unknown))} never occur in the training split", document.id))
    else:
        yield document


class RejectUnknownLabels(beam.PTransform):
    """Eval documents whose label the training split never saw cannot be scored: reject them."""

    def __init__(self, train_documents: beam.PCollection[Document]):
        super().__init__()
        self._train_documents = train_documents

    def expand(self, eval_documents):
        train_labels = (
            self._train_documents
            | "TrainLabels" >> beam.FlatMap(lambda d: d.labels)
            | "DistinctLabels" >> beam.Distinct()
        )
        return eval_documents | "CheckLabels" >> beam.ParDo(
            _check_labels, known_labels=pvalue.AsList(train_labels)).with_outputs(REJECTED_TAG, main="documents")


def _list_array(values: list[bytes], lengths: np.ndarray) -> pa.LargeListArray:
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return pa.LargeListArray.from_arrays(offsets, pa.array(values, type=BYTES_LIST.value_type))


def to_record_batch(documents: list[Document]) -> pa.RecordBatch:
    """Documents → one Arrow RecordBatch in the raw schema (text and label columns)."""
    texts = [d.text.encode("utf-8") for d in documents]
    labels = [label.encode("utf-8") for d in documents for label in d.labels]
    label_counts = np.fromiter((len(d.labels) for d in documents), dtype=np.int64, count=len(documents))
    return pa.RecordBatch.from_arrays(
        [_list_array(texts, np.ones(len(texts), dtype=np.int64)), _list_array(labels, label_counts)],
        schema=RAW_ARROW_SCHEMA,
    )


class ToRecordBatches(beam.PTransform):
    """Documents → Arrow RecordBatches, the input tf.Transform reads fastest.

    Batches are large and of fixed size: tf.Transform runs its graph and pre-aggregates analyzer
    inputs once per batch, so fewer, larger batches mean less per-element work in Beam.

    `to_batch`: the conversion of a list of Documents (default: the raw schema's text and labels).
    """

    def __init__(self, batch_size: int = 4096, to_batch: Callable[[list[Document]], pa.RecordBatch] = to_record_batch):
        super().__init__()
        self._batch_size = batch_size
        self._to_batch = to_batch

    def expand(self, documents):
        return (
            documents
            | "Batch" >> beam.BatchElements(min_batch_size=self._batch_size, max_batch_size=self._batch_size)
            | "ToArrow" >> beam.Map(self._to_batch)
        )
