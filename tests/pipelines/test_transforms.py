"""The middle of the preprocessing pipeline (pipelines/transforms.py, pipelines/stats.py).

The DoFns and functions are tested directly (fast); the composite transforms are wired into ONE
pipeline, run once per module (`slow`), whose outputs the tests below it check.
"""

from __future__ import annotations

import json
import random

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pytest
from apache_beam import pvalue
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.runners.portability.fn_api_runner import FnApiRunner

from pipelines.documents import Document, text_fingerprint
from pipelines.formats import RawRecord, Rejection
from pipelines.stats import SummarizeCorpus, _LengthHistogram, length_summary, sequence_lengths
from pipelines.transforms import (REJECTED_TAG, CountRejections, RejectUnknownLabels, SplitTrainEval,
                                  ToRecordBatches, ValidateDocuments, _AssignSplitDoFn, _check_labels,
                                  _CountAndFirstId, _ValidateDoFn, split_bucket, to_record_batch)
from schemas import features, rejections
from schemas.config import CorpusConfig
from schemas.raw_schema import RAW_ARROW_SCHEMA


def doc(doc_id: str, text: str | None = None, labels: tuple[str, ...] = ("pos",)) -> Document:
    return Document(id=doc_id, text=text if text is not None else f"text of {doc_id}", labels=labels,
                    source=f"corpus.jsonl:{doc_id}")


def numbered_documents(count: int) -> list[Document]:
    return [doc(f"doc-{i}") for i in range(count)]


def tagged(outputs) -> tuple[list, list]:
    """(main outputs, outputs tagged `rejected`) of a DoFn's process() results."""
    outputs = list(outputs)
    rejected = [o.value for o in outputs if isinstance(o, pvalue.TaggedOutput) and o.tag == REJECTED_TAG]
    main = [o for o in outputs if not isinstance(o, pvalue.TaggedOutput)]
    assert len(main) + len(rejected) == len(outputs)
    return main, rejected


# --- ValidateDocuments (its DoFn) ----------------------------------------------------------------

ID_CONFIG = CorpusConfig(id_field="id")
READER_REJECTION = Rejection(rejections.UNPARSABLE_RECORD, "c.jsonl:9", "invalid JSON", "{oops")
VALIDATION_ITEMS = [
    RawRecord({"text": "a fine film", "label": "pos", "id": "1"}, "c.jsonl:1"),
    RawRecord({"text": "dull", "label": 7, "id": 2}, "c.jsonl:2"),
    RawRecord({"text": "   ", "label": "pos", "id": "3"}, "c.jsonl:3"),
    RawRecord({"label": "neg", "id": "4"}, "c.jsonl:4"),
    RawRecord({"text": "no label", "id": "5"}, "c.jsonl:5"),
    RawRecord({"text": 5, "label": "neg", "id": "6"}, "c.jsonl:6"),
    RawRecord({"text": b"\xff\xfe bad bytes", "label": "neg", "id": "7"}, "c.jsonl:7"),
    RawRecord({"text": "no id here", "label": "neg"}, "c.jsonl:8"),
    READER_REJECTION,
    RawRecord({"text": "kept bad byte \udcff", "label": "neg", "id": "10"}, "c.jsonl:10"),
    RawRecord({"text": "\u200b\u200e\u200f", "label": "neg", "id": "11"}, "c.jsonl:11"),
]
EXPECTED_DOCUMENTS = [Document("1", "a fine film", ("pos",), "c.jsonl:1"), Document("2", "dull", ("7",), "c.jsonl:2")]
EXPECTED_REJECTIONS = [
    (rejections.EMPTY_TEXT, "c.jsonl:3"),
    (rejections.MISSING_TEXT, "c.jsonl:4"),
    (rejections.MISSING_LABEL, "c.jsonl:5"),
    (rejections.WRONG_TYPE, "c.jsonl:6"),
    (rejections.INVALID_UTF8, "c.jsonl:7"),
    (rejections.MISSING_ID, "c.jsonl:8"),
    (rejections.UNPARSABLE_RECORD, "c.jsonl:9"),
    (rejections.INVALID_UTF8, "c.jsonl:10"),
    (rejections.EMPTY_TEXT, "c.jsonl:11"),
]


def validate_all(items, config=ID_CONFIG, require_label=True) -> tuple[list, list]:
    dofn = _ValidateDoFn(config, require_label, keep_fields=())
    return tagged(output for item in items for output in dofn.process(item))


def test_validation_splits_valid_documents_from_rejections():
    documents, rejected = validate_all(VALIDATION_ITEMS)

    assert documents == EXPECTED_DOCUMENTS
    assert [(r.reason, r.source) for r in rejected] == EXPECTED_REJECTIONS


def test_validation_passes_reader_rejections_through_unchanged():
    reader_rejection = Rejection(rejections.UNREADABLE_FILE, "broken.parquet", "not a readable Parquet file")

    assert validate_all([reader_rejection]) == ([], [reader_rejection])


def test_validation_ids_default_to_text_fingerprint_and_labels_are_optional_when_not_required():
    records = [RawRecord({"text": "unlabelled text"}, "c.jsonl:1"),
               RawRecord({"text": "labelled text", "label": "neg"}, "c.jsonl:2")]

    documents, rejected = validate_all(records, CorpusConfig(), require_label=False)

    assert rejected == []
    assert documents == [Document(text_fingerprint("unlabelled text"), "unlabelled text", (), "c.jsonl:1"),
                         Document(text_fingerprint("labelled text"), "labelled text", ("neg",), "c.jsonl:2")]


@pytest.mark.parametrize("require_label", [True, False], ids=["preprocessing", "scoring"])
def test_validation_rejects_invisible_text_as_empty_in_both_stages(require_label):
    records = [RawRecord({"text": text, "label": "pos"}, f"c.jsonl:{i}")
               for i, text in enumerate(["\u200b", "\u200e\u200f", "\ufeff \u2060", "<br />\u200b"])]

    documents, rejected = validate_all(records, CorpusConfig(), require_label=require_label)

    assert documents == []
    assert [r.reason for r in rejected] == [rejections.EMPTY_TEXT] * 4


def test_validation_splits_multi_labels_on_the_separator():
    config = CorpusConfig(id_field="id", multi_label=True, label_separator="|")
    records = [RawRecord({"text": "t", "label": "a| b |a", "id": "1"}, "c.jsonl:1"),
               RawRecord({"text": "u", "label": " | ", "id": "2"}, "c.jsonl:2")]

    documents, rejected = validate_all(records, config)

    assert documents == [Document("1", "t", ("a", "b"), "c.jsonl:1")]
    assert [r.reason for r in rejected] == [rejections.MISSING_LABEL]


# --- SplitTrainEval (its parts) ------------------------------------------------------------------


def test_split_bucket_is_a_pinned_uniform_number():
    assert split_bucket("doc-42") == 0.6703091423887348  # pinned: splits must not move between releases
    assert split_bucket("doc-43") != split_bucket("doc-42")
    buckets = [split_bucket(f"key-{i}") for i in range(1000)]
    assert all(0.0 <= b < 1.0 for b in buckets)
    assert 0.4 < sum(buckets) / len(buckets) < 0.6


def assign(document: Document, eval_fraction: float, duplicate_owner: dict | None = None) -> str:
    (output,) = _AssignSplitDoFn(eval_fraction).process(document, duplicate_owner or {})
    return output.tag if isinstance(output, pvalue.TaggedOutput) else features.TRAIN_SPLIT


def test_a_unique_document_goes_to_eval_exactly_when_its_id_hashes_under_the_fraction():
    documents = numbered_documents(200)

    splits = [assign(d, 0.3) for d in documents]

    assert splits == [features.EVAL_SPLIT if split_bucket(d.id) < 0.3 else features.TRAIN_SPLIT for d in documents]
    assert 0 < splits.count(features.EVAL_SPLIT) < 200


def test_a_duplicate_takes_the_split_of_its_owner_id():
    owner_in_eval = next(f"doc-{i}" for i in range(100) if split_bucket(f"doc-{i}") < 0.5)
    owner_in_train = next(f"doc-{i}" for i in range(100) if split_bucket(f"doc-{i}") >= 0.5)
    for owner, expected in ((owner_in_eval, features.EVAL_SPLIT), (owner_in_train, features.TRAIN_SPLIT)):
        document = doc("some-other-id", text="shared text")
        assert assign(document, 0.5, {text_fingerprint("shared text"): owner}) == expected


def test_count_and_first_id_counts_and_keeps_the_smallest_id_across_merges():
    combine = _CountAndFirstId()
    first = combine.add_input(combine.add_input(combine.create_accumulator(), "doc-7"), "doc-3")
    second = combine.add_input(combine.create_accumulator(), "doc-5")

    assert combine.extract_output(combine.merge_accumulators([first, second, combine.create_accumulator()])) == (
        3, "doc-3")


# --- RejectUnknownLabels (its check) -------------------------------------------------------------


def test_label_check_rejects_a_document_with_any_label_training_never_saw():
    known = ["pos", "neg"]
    kept, rejected = tagged(output for d in [doc("e1", labels=("neg",)), doc("e2", labels=("pos", "neg")),
                                             doc("e3", labels=("meh",)), doc("e4", labels=("pos", "meh"))]
                            for output in _check_labels(d, known))

    assert [d.id for d in kept] == ["e1", "e2"]
    assert [(r.reason, r.source) for r in rejected] == [(rejections.UNKNOWN_LABEL, "corpus.jsonl:e3"),
                                                        (rejections.UNKNOWN_LABEL, "corpus.jsonl:e4")]
    assert all("'meh'" in r.detail for r in rejected)


# --- to_record_batch / length statistics ---------------------------------------------------------


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


def test_length_histogram_merges_batches_of_any_lengths():
    combine = _LengthHistogram()
    first = combine.add_input(combine.create_accumulator(), sequence_lengths(transformed_batch([1, 1, 2, 2])))
    second = combine.add_input(combine.create_accumulator(), np.array([2, 4, 4, 4, 4, 5]))

    assert combine.extract_output(combine.merge_accumulators([first, second])) == [0, 2, 3, 0, 4, 1]


# --- the composite transforms, wired into one pipeline (slow) ------------------------------------

SPLIT_DOCUMENTS = numbered_documents(300)
DUPLICATE_GROUPS = [[doc(f"dup-{g}-{k}", text=f"the same review number {g}") for k in range(3)] for g in range(50)]
TRAIN_FOR_LABELS = [doc("t1", labels=("pos",)), doc("t2", labels=("neg",)), doc("t3", labels=("pos",))]
EVAL_FOR_LABELS = [doc("e1", labels=("neg",)), doc("e2", labels=("pos", "neg")), doc("e3", labels=("meh",)),
                   doc("e4", labels=("pos", "meh"))]
REJECTED_TO_COUNT = ([Rejection(rejections.EMPTY_TEXT, f"c.jsonl:{i}", "empty") for i in range(3)]
                     + [Rejection(rejections.UNKNOWN_LABEL, f"e.jsonl:{i}", "unknown") for i in range(2)]
                     + [Rejection(rejections.UNPARSABLE_RECORD, "c.jsonl:99", "bad json")])
BATCHED_DOCUMENTS = [doc(f"d{i}", text=f"text {i}", labels=("a", "b") if i % 7 == 0 else ("a",)) for i in range(250)]
SUMMARY_TRAIN = [doc("t1", labels=("pos",)), doc("t2", labels=("neg",)), doc("t3", labels=("pos", "neg")),
                 doc("t4", labels=("pos",))]
SUMMARY_EVAL = [doc("e1", labels=("neg",)), doc("e2", labels=("pos",))]
SUMMARY_REJECTED = [Rejection(rejections.EMPTY_TEXT, f"c:{i}", "empty") for i in range(3)] + [
    Rejection(rejections.UNKNOWN_LABEL, "c:9", "unknown")]


def _ids(split, label: str) -> dict:
    return {features.TRAIN_SPLIT: split.train | f"{label}TrainIds" >> beam.Map(lambda d: d.id),
            features.EVAL_SPLIT: split.eval | f"{label}EvalIds" >> beam.Map(lambda d: d.id)}


def _build(pipeline) -> dict[str, beam.PCollection]:
    """Every composite transform applied once; returns named PCollections of JSON-able values."""
    def create(label, values):
        return pipeline | label >> beam.Create(values, reshuffle=False)

    shuffled = list(SPLIT_DOCUMENTS)
    random.Random(0).shuffle(shuffled)
    duplicates = [d for group in DUPLICATE_GROUPS for d in group] + numbered_documents(50)
    random.Random(1).shuffle(duplicates)

    validated = create("Items", VALIDATION_ITEMS) | "Validate" >> ValidateDocuments(ID_CONFIG)
    collected = {
        "validated": validated.documents | "DocumentTuples" >> beam.Map(lambda d: [d.id, d.text, list(d.labels)]),
        "validation_rejected": validated.rejected | "ReasonSource" >> beam.Map(lambda r: [r.reason, r.source]),
    }
    for name, documents, fraction in (("ordered", SPLIT_DOCUMENTS, 0.2), ("shuffled", shuffled, 0.2),
                                      ("duplicates", duplicates, 0.5), ("no_eval", SPLIT_DOCUMENTS[:50], 0.0)):
        split = create(f"{name}Docs", documents) | f"{name}Split" >> SplitTrainEval(fraction)
        for split_name, ids in _ids(split, name).items():
            collected[f"{name}_{split_name}"] = ids

    checked = create("EvalDocs", EVAL_FOR_LABELS) | "CheckLabels" >> RejectUnknownLabels(
        create("TrainDocs", TRAIN_FOR_LABELS))
    no_train = pipeline | "NoTrain" >> beam.Create([], reshuffle=False).with_output_types(Document)
    unchecked = create("EvalDocsNoTrain", EVAL_FOR_LABELS) | "CheckLabelsNoTrain" >> RejectUnknownLabels(no_train)
    collected.update({
        "labels_kept": checked.documents | "KeptIds" >> beam.Map(lambda d: d.id),
        "labels_rejected": checked.rejected | "RejectedIds" >> beam.Map(lambda r: [r.reason, r.source]),
        "no_train_kept": unchecked.documents | "NoTrainKeptIds" >> beam.Map(lambda d: d.id),
        "no_train_rejected": unchecked.rejected | "NoTrainRejectedIds" >> beam.Map(lambda r: r.source),
        "counted": create("ToCount", REJECTED_TO_COUNT) | CountRejections("preprocess")
        | "CountedReasons" >> beam.Map(lambda r: r.reason),
        "batches": create("ToBatch", BATCHED_DOCUMENTS) | ToRecordBatches(batch_size=100)
        | "BatchFacts" >> beam.Map(lambda b: [b.num_rows, b.schema == RAW_ARROW_SCHEMA,
                                              [[t[0].decode(), [x.decode() for x in ls]] for t, ls in zip(
                                                  b.column(features.TEXT).to_pylist(),
                                                  b.column(features.LABEL).to_pylist())]]),
        "summary": pipeline | SummarizeCorpus(
            read=create("Read", range(10)), train=create("SummaryTrain", SUMMARY_TRAIN),
            eval_=create("SummaryEval", SUMMARY_EVAL), rejected=create("SummaryRejected", SUMMARY_REJECTED),
            transformed=(create("TrainTransformed", [transformed_batch([1, 1, 2, 2])]),
                         create("EvalTransformed", [transformed_batch([2, 4, 4, 4, 4, 5])])),
            max_seq_length=3) | "ParseSummary" >> beam.Map(json.loads),
    })
    return collected


def counter_value(result, name: str, namespace: str = "preprocess") -> int:
    counters = result.metrics().query(MetricsFilter().with_namespace(namespace).with_name(name))["counters"]
    return sum(c.committed if c.committed is not None else c.attempted for c in counters)


@pytest.fixture(scope="module")
def pipeline_run(tmp_path_factory):
    """(outputs by name, the pipeline result for its counters) of the one pipeline of this module."""
    directory = tmp_path_factory.mktemp("transforms")
    pipeline = beam.Pipeline(runner=FnApiRunner())
    collected = _build(pipeline)
    for name, pcoll in collected.items():
        _ = (pcoll
             | f"ToJson_{name}" >> beam.Map(json.dumps)
             | f"Write_{name}" >> beam.io.WriteToText(str(directory / name), shard_name_template=""))
    result = pipeline.run()
    result.wait_until_finish()
    values = {name: [json.loads(line) for line in (directory / name).read_text().splitlines()] for name in collected}
    return values, result


@pytest.fixture(scope="module")
def outputs(pipeline_run):
    return pipeline_run[0]


def split_of(outputs, name: str) -> tuple[set, set]:
    return set(outputs[f"{name}_{features.TRAIN_SPLIT}"]), set(outputs[f"{name}_{features.EVAL_SPLIT}"])


@pytest.mark.slow
def test_validate_documents_routes_documents_and_rejections_to_their_outputs(outputs):
    assert sorted(outputs["validated"]) == sorted([d.id, d.text, list(d.labels)] for d in EXPECTED_DOCUMENTS)
    assert sorted(map(tuple, outputs["validation_rejected"])) == sorted(EXPECTED_REJECTIONS)


@pytest.mark.slow
def test_split_is_independent_of_input_order_and_loses_nothing(outputs):
    train, eval_ = split_of(outputs, "ordered")

    assert (train, eval_) == split_of(outputs, "shuffled")
    assert train | eval_ == {d.id for d in SPLIT_DOCUMENTS}
    assert not train & eval_
    assert eval_ == {d.id for d in SPLIT_DOCUMENTS if split_bucket(d.id) < 0.2}


@pytest.mark.slow
def test_split_eval_share_is_close_to_eval_fraction(outputs):
    train, eval_ = split_of(outputs, "ordered")
    assert 0.12 * 300 <= len(eval_) <= 0.28 * 300


@pytest.mark.slow
def test_split_keeps_exact_duplicates_on_one_side(outputs):
    train, eval_ = split_of(outputs, "duplicates")

    sides = []
    for group in DUPLICATE_GROUPS:
        ids = {d.id for d in group}
        assert ids <= train or ids <= eval_, f"duplicates {sorted(ids)} straddle the split"
        sides.append(ids <= eval_)
    assert any(sides) and not all(sides), "expected duplicate groups on both sides at eval_fraction=0.5"
    assert len(train) + len(eval_) == len(DUPLICATE_GROUPS) * 3 + 50


@pytest.mark.slow
def test_split_with_zero_eval_fraction_puts_everything_in_train(outputs):
    assert split_of(outputs, "no_eval") == ({d.id for d in SPLIT_DOCUMENTS[:50]}, set())


@pytest.mark.slow
def test_reject_unknown_labels_keeps_known_and_rejects_unknown(outputs):
    assert sorted(outputs["labels_kept"]) == ["e1", "e2"]
    assert sorted(map(tuple, outputs["labels_rejected"])) == [(rejections.UNKNOWN_LABEL, "corpus.jsonl:e3"),
                                                              (rejections.UNKNOWN_LABEL, "corpus.jsonl:e4")]


@pytest.mark.slow
def test_reject_unknown_labels_rejects_everything_when_training_is_empty(outputs):
    assert outputs["no_train_kept"] == []
    assert sorted(outputs["no_train_rejected"]) == sorted(d.source for d in EVAL_FOR_LABELS)


@pytest.mark.slow
def test_count_rejections_passes_rejections_on_and_sets_total_and_per_reason_counters(pipeline_run):
    outputs, result = pipeline_run

    assert sorted(outputs["counted"]) == sorted(r.reason for r in REJECTED_TO_COUNT)
    assert counter_value(result, "rejected") == 6
    assert counter_value(result, f"rejected_{rejections.EMPTY_TEXT}") == 3
    assert counter_value(result, f"rejected_{rejections.UNKNOWN_LABEL}") == 2
    assert counter_value(result, f"rejected_{rejections.UNPARSABLE_RECORD}") == 1
    assert counter_value(result, f"rejected_{rejections.MISSING_TEXT}") == 0
    assert counter_value(result, "rejected", namespace="other") == 0


@pytest.mark.slow
def test_to_record_batches_keeps_every_document_in_bounded_batches(outputs):
    batches = outputs["batches"]

    assert sum(rows for rows, _, _ in batches) == len(BATCHED_DOCUMENTS)
    assert all(rows <= 100 and schema_ok for rows, schema_ok, _ in batches)
    assert sorted((text, tuple(labels)) for _, _, rows in batches for text, labels in rows) == sorted(
        (d.text, d.labels) for d in BATCHED_DOCUMENTS)


@pytest.mark.slow
def test_summarize_corpus_reports_reconciled_counts_labels_and_lengths(outputs):
    (summary,) = outputs["summary"]
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
