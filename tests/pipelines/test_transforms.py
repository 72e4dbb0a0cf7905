"""Beam transforms of the preprocessing pipeline (pipelines/transforms.py, pipelines/stats.py)."""

from __future__ import annotations

import json
import random

import apache_beam as beam
import pyarrow as pa
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from pipelines.documents import Document, text_fingerprint
from pipelines.formats import RawRecord, Rejection
from pipelines.stats import SummarizeCorpus, length_summary
from pipelines.transforms import (CountRejections, RejectUnknownLabels, SplitTrainEval, ToRecordBatches,
                                  ValidateDocuments, split_bucket, to_record_batch)
from schemas import features, rejections
from schemas.config import CorpusConfig
from schemas.raw_schema import RAW_ARROW_SCHEMA


def local_pipeline() -> BeamTestPipeline:
    """A pipeline on Beam's FnApiRunner (the DirectRunner would try to download Prism)."""
    return BeamTestPipeline(runner=FnApiRunner())


def run_and_collect(tmp_path, build) -> dict[str, list]:
    """Runs `build(pipeline) -> {name: PCollection of JSON-able values}`; returns the values per name."""
    pipeline = local_pipeline()
    outputs = build(pipeline)
    for name, pcoll in outputs.items():
        _ = (pcoll
             | f"ToJson_{name}" >> beam.Map(json.dumps)
             | f"Write_{name}" >> beam.io.WriteToText(str(tmp_path / name), shard_name_template=""))
    pipeline.run().wait_until_finish()
    return {name: [json.loads(line) for line in (tmp_path / name).read_text().splitlines()] for name in outputs}


def doc(doc_id: str, text: str | None = None, labels: tuple[str, ...] = ("pos",)) -> Document:
    return Document(id=doc_id, text=text if text is not None else f"text of {doc_id}", labels=labels,
                    source=f"corpus.jsonl:{doc_id}")


def split_ids(tmp_path, documents: list[Document], eval_fraction: float) -> tuple[set[str], set[str]]:
    """(train ids, eval ids) that SplitTrainEval assigns to `documents`."""
    def build(pipeline):
        split = pipeline | beam.Create(documents) | SplitTrainEval(eval_fraction)
        return {"train": split.train | "TrainIds" >> beam.Map(lambda d: d.id),
                "eval": split.eval | "EvalIds" >> beam.Map(lambda d: d.id)}

    collected = run_and_collect(tmp_path, build)
    return set(collected["train"]), set(collected["eval"])


def counter_value(result, name: str, namespace: str = "preprocess") -> int:
    counters = result.metrics().query(MetricsFilter().with_namespace(namespace).with_name(name))["counters"]
    return sum(c.committed if c.committed is not None else c.attempted for c in counters)


# --- ValidateDocuments -------------------------------------------------------------------------

ID_CONFIG = CorpusConfig(id_field="id")


def test_validate_documents_splits_valid_documents_from_rejections():
    reader_rejection = Rejection(rejections.UNPARSABLE_RECORD, "c.jsonl:9", "invalid JSON", "{oops")
    items = [
        RawRecord({"text": "a fine film", "label": "pos", "id": "1"}, "c.jsonl:1"),
        RawRecord({"text": "dull", "label": 7, "id": 2}, "c.jsonl:2"),
        RawRecord({"text": "   ", "label": "pos", "id": "3"}, "c.jsonl:3"),
        RawRecord({"label": "neg", "id": "4"}, "c.jsonl:4"),
        RawRecord({"text": "no label", "id": "5"}, "c.jsonl:5"),
        RawRecord({"text": 5, "label": "neg", "id": "6"}, "c.jsonl:6"),
        RawRecord({"text": b"\xff\xfe bad bytes", "label": "neg", "id": "7"}, "c.jsonl:7"),
        RawRecord({"text": "no id here", "label": "neg"}, "c.jsonl:8"),
        reader_rejection,
        RawRecord({"text": "kept bad byte \udcff", "label": "neg", "id": "10"}, "c.jsonl:10"),
    ]
    with local_pipeline() as p:
        result = p | beam.Create(items) | ValidateDocuments(ID_CONFIG)
        assert_that(result.documents, equal_to([
            Document("1", "a fine film", ("pos",), "c.jsonl:1"),
            Document("2", "dull", ("7",), "c.jsonl:2"),
        ]), label="CheckDocuments")
        assert_that(result.rejected | beam.Map(lambda r: (r.reason, r.source)), equal_to([
            (rejections.EMPTY_TEXT, "c.jsonl:3"),
            (rejections.MISSING_TEXT, "c.jsonl:4"),
            (rejections.MISSING_LABEL, "c.jsonl:5"),
            (rejections.WRONG_TYPE, "c.jsonl:6"),
            (rejections.INVALID_UTF8, "c.jsonl:7"),
            (rejections.MISSING_ID, "c.jsonl:8"),
            (rejections.UNPARSABLE_RECORD, "c.jsonl:9"),
            (rejections.INVALID_UTF8, "c.jsonl:10"),
        ]), label="CheckReasons")


def test_validate_documents_passes_reader_rejections_through_unchanged():
    reader_rejection = Rejection(rejections.UNREADABLE_FILE, "broken.parquet", "not a readable Parquet file")
    with local_pipeline() as p:
        result = p | beam.Create([reader_rejection]) | ValidateDocuments(ID_CONFIG)
        assert_that(result.rejected, equal_to([reader_rejection]), label="CheckRejected")
        assert_that(result.documents, equal_to([]), label="CheckNoDocuments")


def test_validate_documents_ids_default_to_text_fingerprint_and_labels_are_optional_when_not_required():
    records = [RawRecord({"text": "unlabelled text"}, "c.jsonl:1"),
               RawRecord({"text": "labelled text", "label": "neg"}, "c.jsonl:2")]
    with local_pipeline() as p:
        result = p | beam.Create(records) | ValidateDocuments(CorpusConfig(), require_label=False)
        assert_that(result.documents, equal_to([
            Document(text_fingerprint("unlabelled text"), "unlabelled text", (), "c.jsonl:1"),
            Document(text_fingerprint("labelled text"), "labelled text", ("neg",), "c.jsonl:2"),
        ]))


def test_validate_documents_splits_multi_labels_on_the_separator():
    config = CorpusConfig(id_field="id", multi_label=True, label_separator="|")
    records = [RawRecord({"text": "t", "label": "a| b |a", "id": "1"}, "c.jsonl:1"),
               RawRecord({"text": "u", "label": " | ", "id": "2"}, "c.jsonl:2")]
    with local_pipeline() as p:
        result = p | beam.Create(records) | ValidateDocuments(config)
        assert_that(result.documents, equal_to([Document("1", "t", ("a", "b"), "c.jsonl:1")]),
                    label="CheckDocuments")
        assert_that(result.rejected | beam.Map(lambda r: r.reason), equal_to([rejections.MISSING_LABEL]),
                    label="CheckRejected")


# --- SplitTrainEval ----------------------------------------------------------------------------

def numbered_documents(count: int) -> list[Document]:
    return [doc(f"doc-{i}") for i in range(count)]


def test_split_is_independent_of_input_order(tmp_path):
    documents = numbered_documents(300)
    shuffled = list(documents)
    random.Random(0).shuffle(shuffled)
    assert shuffled != documents

    first = split_ids(tmp_path / "first", documents, eval_fraction=0.2)
    second = split_ids(tmp_path / "second", shuffled, eval_fraction=0.2)

    assert first == second
    train, eval_ = first
    assert train | eval_ == {d.id for d in documents}
    assert not train & eval_


def test_split_eval_share_is_close_to_eval_fraction(tmp_path):
    train, eval_ = split_ids(tmp_path, numbered_documents(300), eval_fraction=0.2)
    assert len(train) + len(eval_) == 300
    assert 0.12 * 300 <= len(eval_) <= 0.28 * 300


def test_split_of_a_unique_document_depends_only_on_its_id(tmp_path):
    documents = numbered_documents(100)
    _, eval_ = split_ids(tmp_path, documents, eval_fraction=0.3)
    assert eval_ == {d.id for d in documents if split_bucket(d.id) < 0.3}


def test_split_keeps_exact_duplicates_on_one_side(tmp_path):
    groups = [[doc(f"dup-{g}-{k}", text=f"the same review number {g}") for k in range(3)] for g in range(50)]
    singles = [doc(f"single-{i}") for i in range(50)]
    documents = [d for group in groups for d in group] + singles
    random.Random(1).shuffle(documents)

    train, eval_ = split_ids(tmp_path, documents, eval_fraction=0.5)

    sides = []
    for group in groups:
        ids = {d.id for d in group}
        assert ids <= train or ids <= eval_, f"duplicates {sorted(ids)} straddle the split"
        sides.append(ids <= eval_)
    assert any(sides) and not all(sides), "expected duplicate groups on both sides at eval_fraction=0.5"
    assert len(train) + len(eval_) == len(documents)


def test_split_bucket_is_a_stable_uniform_number():
    assert split_bucket("doc-42") == 0.6703091423887348
    assert split_bucket("doc-42") == split_bucket("doc-42")
    buckets = [split_bucket(f"key-{i}") for i in range(1000)]
    assert all(0.0 <= b < 1.0 for b in buckets)
    assert 0.4 < sum(buckets) / len(buckets) < 0.6


def test_split_with_zero_eval_fraction_puts_everything_in_train(tmp_path):
    documents = numbered_documents(50)
    train, eval_ = split_ids(tmp_path, documents, eval_fraction=0.0)
    assert train == {d.id for d in documents}
    assert eval_ == set()


# --- RejectUnknownLabels -----------------------------------------------------------------------

def test_reject_unknown_labels_rejects_eval_documents_with_labels_training_never_saw():
    train = [doc("t1", labels=("pos",)), doc("t2", labels=("neg",)), doc("t3", labels=("pos",))]
    known = doc("e1", labels=("neg",))
    known_multi = doc("e2", labels=("pos", "neg"))
    unknown = doc("e3", labels=("meh",))
    one_unknown_of_two = doc("e4", labels=("pos", "meh"))
    with local_pipeline() as p:
        train_pcoll = p | "Train" >> beam.Create(train)
        result = p | "Eval" >> beam.Create([known, known_multi, unknown, one_unknown_of_two]) | RejectUnknownLabels(
            train_pcoll)
        assert_that(result.documents, equal_to([known, known_multi]), label="CheckKept")
        assert_that(result.rejected | beam.Map(lambda r: (r.reason, r.source, "'meh'" in r.detail)), equal_to([
            (rejections.UNKNOWN_LABEL, unknown.source, True),
            (rejections.UNKNOWN_LABEL, one_unknown_of_two.source, True),
        ]), label="CheckRejected")


def test_reject_unknown_labels_rejects_everything_when_training_is_empty():
    eval_docs = [doc("e1"), doc("e2", labels=("neg",))]
    with local_pipeline() as p:
        train_pcoll = p | "Train" >> beam.Create([], reshuffle=False).with_output_types(Document)
        result = p | "Eval" >> beam.Create(eval_docs) | RejectUnknownLabels(train_pcoll)
        assert_that(result.documents, equal_to([]), label="CheckKept")
        assert_that(result.rejected | beam.Map(lambda r: r.source), equal_to([d.source for d in eval_docs]),
                    label="CheckRejected")


# --- CountRejections ---------------------------------------------------------------------------

def test_count_rejections_sets_total_and_per_reason_counters():
    rejected = ([Rejection(rejections.EMPTY_TEXT, f"c.jsonl:{i}", "empty") for i in range(3)]
                + [Rejection(rejections.UNKNOWN_LABEL, f"e.jsonl:{i}", "unknown") for i in range(2)]
                + [Rejection(rejections.UNPARSABLE_RECORD, "c.jsonl:99", "bad json")])
    p = beam.Pipeline(runner=FnApiRunner())
    counted = p | beam.Create(rejected) | CountRejections("preprocess")
    assert_that(counted, equal_to(rejected))
    result = p.run()
    result.wait_until_finish()

    assert counter_value(result, "rejected") == 6
    assert counter_value(result, f"rejected_{rejections.EMPTY_TEXT}") == 3
    assert counter_value(result, f"rejected_{rejections.UNKNOWN_LABEL}") == 2
    assert counter_value(result, f"rejected_{rejections.UNPARSABLE_RECORD}") == 1
    assert counter_value(result, f"rejected_{rejections.MISSING_TEXT}") == 0
    assert counter_value(result, "rejected", namespace="other") == 0


# --- to_record_batch / ToRecordBatches ----------------------------------------------------------

def test_to_record_batch_has_the_raw_schema_and_round_trips_texts_and_labels():
    documents = [doc("1", text="caf\u00e9 cr\u00e8me \U0001F600", labels=("pos",)),
                 doc("2", text="two labels", labels=("sports", "politics")),
                 doc("3", text="unlabelled", labels=())]
    batch = to_record_batch(documents)

    assert batch.schema == RAW_ARROW_SCHEMA
    assert batch.num_rows == 3
    assert batch.column(features.TEXT).to_pylist() == [[d.text.encode("utf-8")] for d in documents]
    assert batch.column(features.LABEL).to_pylist() == [[b"pos"], [b"sports", b"politics"], []]


def test_to_record_batch_of_no_documents_is_empty():
    batch = to_record_batch([])
    assert batch.schema == RAW_ARROW_SCHEMA
    assert batch.num_rows == 0


def test_to_record_batches_keeps_every_document_in_bounded_batches():
    documents = [doc(f"d{i}", text=f"text {i}", labels=("a", "b") if i % 7 == 0 else ("a",)) for i in range(250)]
    with local_pipeline() as p:
        batches = p | beam.Create(documents) | ToRecordBatches(batch_size=100)
        assert_that(batches | "Rows" >> beam.Map(lambda b: b.num_rows) | "Total" >> beam.CombineGlobally(sum),
                    equal_to([250]), label="CheckTotalRows")
        assert_that(batches | "Oversized" >> beam.Filter(lambda b: b.num_rows > 100), equal_to([]),
                    label="CheckBatchSize")
        assert_that(batches | "Schema" >> beam.Filter(lambda b: b.schema != RAW_ARROW_SCHEMA), equal_to([]),
                    label="CheckSchema")
        rows = batches | "Unbatch" >> beam.FlatMap(
            lambda b: zip(b.column(features.TEXT).to_pylist(), b.column(features.LABEL).to_pylist()))
        assert_that(rows | "AsTuples" >> beam.Map(lambda row: (row[0][0], tuple(row[1]))), equal_to(
            [(d.text.encode(), tuple(label.encode() for label in d.labels)) for d in documents]), label="CheckRows")


# --- SummarizeCorpus ---------------------------------------------------------------------------

def test_length_summary_of_a_hand_computed_histogram():
    # lengths: 1,1, 2,2,2, 4,4,4,4, 5  (10 documents)
    histogram = [0, 2, 3, 0, 4, 1]
    assert length_summary(histogram, max_seq_length=3) == {
        "mean": 2.9, "p50": 2, "p95": 5, "max": 5, "truncated_fraction": 0.5}


def test_length_summary_counts_only_documents_longer_than_max_seq_length_as_truncated():
    histogram = [0, 0, 0, 1, 1, 0, 0, 0, 2]  # lengths 3, 4, 8, 8
    summary = length_summary(histogram, max_seq_length=4)
    assert summary["truncated_fraction"] == 0.5
    assert summary["max"] == 8
    assert summary["p50"] == 4


def test_length_summary_of_no_documents_is_all_zero():
    assert length_summary([], max_seq_length=8) == {
        "mean": 0.0, "p50": 0, "p95": 0, "max": 0, "truncated_fraction": 0.0}


def transformed_batch(lengths: list[int]) -> tuple[pa.RecordBatch, None]:
    """A transformed RecordBatch as tf.Transform emits it: every feature a large_list column."""
    column = pa.array([[n] for n in lengths], type=pa.large_list(pa.int64()))
    return pa.RecordBatch.from_arrays([column], names=[features.SEQUENCE_LENGTH]), None


def test_summarize_corpus_reports_reconciled_counts_labels_and_lengths(tmp_path):
    train = [doc("t1", labels=("pos",)), doc("t2", labels=("neg",)), doc("t3", labels=("pos", "neg")),
             doc("t4", labels=("pos",))]
    eval_ = [doc("e1", labels=("neg",)), doc("e2", labels=("pos",))]
    rejected = [Rejection(rejections.EMPTY_TEXT, f"c:{i}", "empty") for i in range(3)] + [
        Rejection(rejections.UNKNOWN_LABEL, "c:9", "unknown")]

    def build(pipeline):
        read = pipeline | "Read" >> beam.Create(range(10))
        summary = pipeline | SummarizeCorpus(
            read=read,
            train=pipeline | "Train" >> beam.Create(train),
            eval_=pipeline | "Eval" >> beam.Create(eval_),
            rejected=pipeline | "Rejected" >> beam.Create(rejected),
            transformed=pipeline | "Transformed" >> beam.Create(
                [transformed_batch([1, 1, 2, 2]), transformed_batch([2, 4, 4, 4, 4, 5])]),
            max_seq_length=3)
        return {"summary": summary | beam.Map(json.loads)}

    (summary,) = run_and_collect(tmp_path, build)["summary"]
    assert summary == {
        "read": 10,
        "accepted": 6,
        "rejected": 4,
        "rejected_by_reason": {rejections.EMPTY_TEXT: 3, rejections.UNKNOWN_LABEL: 1},
        "train": 4,
        "eval": 2,
        "labels": {"neg": 3, "pos": 4},
        "token_length": {"mean": 2.9, "p50": 2, "p95": 5, "max": 5, "truncated_fraction": 0.5},
    }
    assert summary["read"] == summary["accepted"] + summary["rejected"]
