"""The pretrain task's Beam steps around tf.Transform: documents in, segment pairs out.

Documents enter tf.Transform (`preprocessing_fn.pretrain_preprocessing_fn`) with their id, source
and a short copy of the record as pass-through columns (`tft_beam.Context(passthrough_keys=
PASSTHROUGH_KEYS)`): tf.Transform appends them, row for row, to its output batches, so each
document's pieces come out beside its id (the seed of its pairs, `pipelines.segment_pairs`) and
what a rejection needs. A document too short for a pair is rejected as TOO_SHORT_FOR_PAIR.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any

import apache_beam as beam
import numpy as np
import pyarrow as pa
import tensorflow as tf
from apache_beam import pvalue
from tfx_bsl.tfxio.tensor_adapter import TensorAdapterConfig

from pipelines.documents import Document
from pipelines.formats import Rejection, excerpt
from pipelines.preprocessing_fn import ENDS_SENTENCE, PIECE_IDS
from pipelines.segment_pairs import MIN_PIECES, SegmentPair, document_pairs, document_rng
from pipelines.transforms import REJECTED_TAG
from schemas import features
from schemas.raw_schema import BYTES_LIST, raw_tensor_representations
from schemas.rejections import TOO_SHORT_FOR_PAIR


# Raw columns of the pretrain task: the text, and what passes through tf.Transform untouched.
DOCUMENT_ID = "document_id"
SOURCE = "source"
RECORD = "record"
PASSTHROUGH_KEYS = frozenset({DOCUMENT_ID, SOURCE, RECORD})
PRETRAIN_ARROW_SCHEMA = pa.schema([(features.TEXT, BYTES_LIST), (DOCUMENT_ID, BYTES_LIST), (SOURCE, BYTES_LIST),
                                   (RECORD, BYTES_LIST)])


def raw_adapter_config() -> TensorAdapterConfig:
    """Only the text becomes a tensor; the pass-through columns stay Arrow columns."""
    return TensorAdapterConfig(PRETRAIN_ARROW_SCHEMA,
                               {features.TEXT: raw_tensor_representations(multi_label=False)[features.TEXT]})


def _bytes_column(values: list[str]) -> pa.LargeListArray:
    offsets = np.arange(len(values) + 1, dtype=np.int64)  # one value per row
    return pa.LargeListArray.from_arrays(offsets, pa.array([v.encode("utf-8") for v in values],
                                                           type=BYTES_LIST.value_type))


def to_pretrain_record_batch(documents: list[Document]) -> pa.RecordBatch:
    """Documents → one Arrow RecordBatch of PRETRAIN_ARROW_SCHEMA."""
    return pa.RecordBatch.from_arrays([
        _bytes_column([d.text for d in documents]),
        _bytes_column([d.id for d in documents]),
        _bytes_column([d.source for d in documents]),
        _bytes_column([excerpt(repr({"id": d.id, "text": d.text})) for d in documents]),
    ], schema=PRETRAIN_ARROW_SCHEMA)


@dataclasses.dataclass(frozen=True)
class TokenizedDocument:
    id: str
    source: str
    record: str
    pieces: np.ndarray  # int64 [pieces]
    ends_sentence: np.ndarray  # int64 [pieces], 1 after a sentence


def tokenized_documents(transformed: tuple[pa.RecordBatch, Mapping[str, Any]]) -> Iterator[TokenizedDocument]:
    """tf.Transform's (record batch, unary pass-through) → one TokenizedDocument per row."""
    batch, _ = transformed

    def column(name: str) -> pa.Array:
        return batch.column(batch.schema.get_field_index(name))

    def strings(name: str) -> list[str]:
        return [value.decode("utf-8") for value in column(name).flatten().to_pylist()]

    def rows(name: str) -> Iterator[np.ndarray]:
        # A sliced list array's offsets index into its whole (unsliced) values.
        lists = column(name)
        offsets, values = lists.offsets.to_numpy(), lists.values.to_numpy(zero_copy_only=False)
        return (values[start:stop] for start, stop in zip(offsets[:-1], offsets[1:]))

    for doc_id, source, record, pieces, ends in zip(strings(DOCUMENT_ID), strings(SOURCE), strings(RECORD),
                                                     rows(PIECE_IDS), rows(ENDS_SENTENCE), strict=True):
        yield TokenizedDocument(doc_id, source, record, pieces, ends)


class _MakePairsDoFn(beam.DoFn):
    def __init__(self, max_seq_length: int, cls_id: int, sep_id: int):
        self._max_seq_length = max_seq_length
        self._cls_id, self._sep_id = cls_id, sep_id

    def process(self, document: TokenizedDocument) -> Iterator:
        pairs = document_pairs(document.pieces.tolist(), document.ends_sentence.tolist(),
                               max_seq_length=self._max_seq_length, cls_id=self._cls_id, sep_id=self._sep_id,
                               rng=document_rng(document.id))
        if pairs:
            yield pairs
        else:
            yield pvalue.TaggedOutput(REJECTED_TAG, Rejection(
                TOO_SHORT_FOR_PAIR, document.source,
                f"{len(document.pieces)} piece(s); a segment pair needs at least {MIN_PIECES}", document.record))


class MakeSegmentPairs(beam.PTransform):
    """tf.Transform's output batches → per accepted document, the list of its SegmentPairs (main
    output `documents`); documents too short for a pair go to output `rejected`."""

    def __init__(self, max_seq_length: int, cls_id: int, sep_id: int):
        super().__init__()
        self._max_seq_length = max_seq_length
        self._cls_id, self._sep_id = cls_id, sep_id

    def expand(self, transformed):
        return (
            transformed
            | "PerDocument" >> beam.FlatMap(tokenized_documents)
            | "Pair" >> beam.ParDo(_MakePairsDoFn(self._max_seq_length, self._cls_id, self._sep_id)
                                   ).with_outputs(REJECTED_TAG, main="documents")
        )


def _int64_feature(values) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=values))


def pair_example(pair: SegmentPair) -> bytes:
    """A serialized tf.Example: token_ids, segment_ids (same length, unpadded), sentence_order."""
    return tf.train.Example(features=tf.train.Features(feature={
        features.PAIR_TOKEN_IDS: _int64_feature(pair.token_ids),
        features.PAIR_SEGMENT_IDS: _int64_feature(pair.segment_ids),
        features.SENTENCE_ORDER: _int64_feature([pair.sentence_order]),
    })).SerializeToString()


class EncodePairs(beam.PTransform):
    """Per-document lists of SegmentPairs → serialized tf.Examples, one per pair."""

    def expand(self, pair_lists):
        return pair_lists | "Flatten" >> beam.FlatMap(lambda pairs: pairs) | "ToExample" >> beam.Map(pair_example)
