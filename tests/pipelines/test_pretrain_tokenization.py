"""The pretrain task's pieces without a pipeline: its preprocessing_fn called eagerly with a given
model, the step from tf.Transform's output batches to documents, the tf.Example of a pair, and
validation that ignores labels."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import sentencepiece
import tensorflow as tf

from pipelines.documents import Document
from pipelines.formats import RawRecord, Rejection
from pipelines.preprocessing_fn import (ENDS_SENTENCE, PIECE_IDS, pretrain_preprocessing_fn, sentence_final_piece_ids,
                                        sentencepiece_outputs)
from pipelines.pretrain_data import DOCUMENT_ID, RECORD, SOURCE, pair_example, tokenized_documents
from pipelines.segment_pairs import frame_pair
from pipelines.sentencepiece_model import describe
from pipelines.transforms import _ValidateDoFn
from schemas import features
from schemas.config import CorpusConfig, PreprocessConfig
from tests.pipelines.albert_fixtures import SPIECE

TEXTS = ["The team said: no! Then what? Report.", "news", "Café ``quoted'' naïve... ok"]


def model():
    return describe(SPIECE.read_bytes(), str(SPIECE))


def pretrain_outputs(texts, lowercase=True):
    config = PreprocessConfig(tokenizer="sentencepiece", sentencepiece_model=str(SPIECE), lowercase=lowercase)
    outputs = pretrain_preprocessing_fn({features.TEXT: tf.constant(texts)}, config=config,
                                        sentencepiece_model=model())
    return outputs[PIECE_IDS].to_list(), outputs[ENDS_SENTENCE].to_list()


def test_sentence_final_pieces_are_the_punctuation_pieces_of_the_model():
    processor = sentencepiece.SentencePieceProcessor(model_proto=SPIECE.read_bytes())
    final = sentence_final_piece_ids(SPIECE.read_bytes())
    assert sorted(processor.id_to_piece(i) for i in final) == ["!", ".", "?"]


def test_pretrain_pieces_are_the_classify_ids_without_framing_or_padding():
    for lowercase in (True, False):
        pieces, _ = pretrain_outputs(TEXTS, lowercase)
        config = PreprocessConfig(tokenizer="sentencepiece", sentencepiece_model=str(SPIECE), lowercase=lowercase,
                                  max_seq_length=128)
        classify = sentencepiece_outputs(tf.constant(TEXTS), config, model())
        for row, length, document_pieces in zip(classify[features.TOKEN_IDS].numpy(),
                                                classify[features.SEQUENCE_LENGTH].numpy(), pieces):
            assert row[1: length - 1].tolist() == document_pieces


def test_a_piece_ends_a_sentence_exactly_when_it_is_sentence_final_punctuation():
    pieces, ends = pretrain_outputs(TEXTS)
    final = set(sentence_final_piece_ids(SPIECE.read_bytes()))
    assert [[int(p in final) for p in row] for row in pieces] == ends
    assert sum(ends[0]) == 3 and sum(ends[1]) == 0


def test_a_text_with_nothing_to_tokenize_has_no_pieces():
    pieces, ends = pretrain_outputs(["\u0301\u0308", "the"])
    assert pieces == [[], [16]] and ends == [[], [0]]


def _ragged(rows):
    return pa.LargeListArray.from_arrays(np.cumsum([0] + [len(r) for r in rows]), pa.array(
        [v for r in rows for v in r], type=pa.int64()))


def _strings(values):
    return pa.LargeListArray.from_arrays(np.arange(len(values) + 1), pa.array(values, type=pa.large_binary()))


def test_tokenized_documents_keep_each_rows_pieces_with_its_pass_through_columns_even_in_a_slice():
    batch = pa.RecordBatch.from_arrays(
        [_ragged([[5, 6], [7], [8, 9, 10]]), _ragged([[0, 1], [1], [0, 0, 1]]),
         _strings([b"a", b"b", b"c"]), _strings([b"f:1", b"f:2", b"f:3"]), _strings([b"ra", b"rb", b"rc"])],
        names=[PIECE_IDS, ENDS_SENTENCE, DOCUMENT_ID, SOURCE, RECORD])
    documents = list(tokenized_documents((batch.slice(1), {})))
    assert [(d.id, d.source, d.record, d.pieces.tolist(), d.ends_sentence.tolist()) for d in documents] == [
        ("b", "f:2", "rb", [7], [1]), ("c", "f:3", "rc", [8, 9, 10], [0, 0, 1])]


def test_a_pair_example_holds_the_pair_as_written():
    pair = frame_pair([7, 8], [9], sentence_order=1, cls_id=2, sep_id=3)
    spec = {features.PAIR_TOKEN_IDS: tf.io.VarLenFeature(tf.int64),
            features.PAIR_SEGMENT_IDS: tf.io.VarLenFeature(tf.int64),
            features.SENTENCE_ORDER: tf.io.FixedLenFeature([], tf.int64)}
    parsed = tf.io.parse_single_example(pair_example(pair), spec)
    assert tf.sparse.to_dense(parsed[features.PAIR_TOKEN_IDS]).numpy().tolist() == [2, 7, 8, 3, 9, 3]
    assert tf.sparse.to_dense(parsed[features.PAIR_SEGMENT_IDS]).numpy().tolist() == [0, 0, 0, 0, 1, 1]
    assert int(parsed[features.SENTENCE_ORDER]) == 1


def test_validation_that_ignores_labels_accepts_any_label_field_and_keeps_no_label():
    validate = _ValidateDoFn(CorpusConfig(inputs=("x",)), require_label=False, keep_fields=(), ignore_labels=True)
    for fields in ({"text": "a b"}, {"text": "a b", "label": ""}, {"text": "a b", "label": 3.5},
                   {"text": "a b", "label": ["x", 1]}):
        (result,) = validate.process(RawRecord(fields, "f:1"))
        assert isinstance(result, Document) and result.labels == ()
    (rejected,) = validate.process(RawRecord({"text": " ", "label": "x"}, "f:2"))
    assert rejected.tag == "rejected" and isinstance(rejected.value, Rejection)
