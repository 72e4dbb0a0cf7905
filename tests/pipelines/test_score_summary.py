"""The scoring summary from the pipeline's counts, and the line the stage logs (no pipeline)."""

from __future__ import annotations

import json

import pytest

from pipelines import score, score_summary
from pipelines.model_handler import ExportMetadata
from pipelines.score_summary import PARTIAL_SUMMARY, complete_summary, finish_summary, label_pair, summary_line
from schemas import config as config_lib
from schemas import predictions


def export_metadata(multi_label: bool = False) -> ExportMetadata:
    return ExportMetadata(version="42", label_names=("a", "b"), multi_label=multi_label, threshold=0.5,
                          signatures={})


def partial(**changes) -> dict:
    values = {"read": 10, "scored": 8, "rejected": 2, "rejected_by_reason": {"empty_text": 2}, "duplicate_ids": 1,
              "model_version": "42", "label_pairs": [[["a", "a"], 3], [["weather", "a"], 3]]}
    values.update(changes)
    return values


def test_the_summary_shows_drift_duplicates_and_the_models_share_of_the_time(tmp_path):
    (tmp_path / PARTIAL_SUMMARY).write_text(json.dumps(partial()))
    summary = finish_summary(str(tmp_path), export_metadata(), wall_seconds=4.0,
                             timings={"model_load_seconds": 1.0, "model_call_seconds": 2.0})
    assert json.loads((tmp_path / predictions.SUMMARY_FILE).read_text()) == summary
    assert not (tmp_path / PARTIAL_SUMMARY).exists()
    assert (summary["duplicate_ids"], summary["docs_per_second"], summary["model_call_docs_per_second"]) == (1, 2.5, 4)
    assert summary["evaluation"] == {"labelled": 6, "unknown_true_labels": 3, "num_examples": 3, "accuracy": 1.0,
                                     "accuracy_all_labelled": 0.5, "macro_f1": pytest.approx(0.5)}
    evaluation = json.loads((tmp_path / predictions.EVALUATION_FILE).read_text())
    assert evaluation["per_class"]["a"]["support"] == 3


def test_the_logged_line_names_unknown_labels_and_both_accuracies():
    summary, _ = complete_summary(partial(), export_metadata(), wall_seconds=4.0)
    line = summary_line(summary, "out/scored")
    assert "duplicate_ids=1" in line
    assert "accuracy 1.0000 over the 3 with labels the model knows" in line
    assert "0.5000 over all (unknown_true_labels=3 counted as errors)" in line


def test_counts_that_do_not_reconcile_are_a_bug_not_a_summary():
    with pytest.raises(RuntimeError, match="do not reconcile"):
        complete_summary(partial(scored=9), export_metadata(), wall_seconds=1.0)


def test_a_multi_label_rows_label_pair_is_a_pair_of_label_tuples():
    row = {predictions.TRUE_LABEL: ["a", "b, c"], predictions.LABELS: ["a"], predictions.LABEL: "a"}
    assert label_pair(row, multi_label=True) == [(("a", "b, c"), ("a",))]
    assert label_pair({predictions.TRUE_LABEL: None}, multi_label=True) == []


@pytest.mark.parametrize("job_file_says", [False, True])
def test_the_task_comes_from_the_export_not_the_job_file(job_file_says):
    job = config_lib.JobConfig(corpus=config_lib.CorpusConfig(multi_label=job_file_says))
    assert score.job_for_export(job, export_metadata(multi_label=True)).corpus.multi_label is True
    assert score.job_for_export(job, export_metadata(multi_label=False)).corpus.multi_label is False


def test_a_run_that_scored_nothing_says_why_and_where_its_records_are():
    rejected = score.nothing_scored_message(partial(read=3, scored=0, rejected=3,
                                                    rejected_by_reason={"empty_text": 2, "missing_text": 1}),
                                            "out.failed-1")
    assert rejected == ("No document was scored: all 3 record(s) were rejected (empty_text: 2, missing_text: 1). "
                        "See out.failed-1/rejected/ for each record and its reason.")
    empty = score.nothing_scored_message(partial(read=0, scored=0, rejected=0, rejected_by_reason={}), "out.failed-1")
    assert "the input holds no records" in empty


def test_duplicated_ids_are_counted_once_each_from_their_hashes_merged_across_bundles():
    combine = score_summary.CountDuplicatedHashes()
    ids = ["a", "b", "a", "c", "b", "a", "d"]  # a three times, b twice: two ids duplicated
    hashes = [score_summary.bucketed_id_hash(doc_id) for doc_id in ids]
    parts = [combine.create_accumulator(), combine.create_accumulator()]
    for i, (_, value) in enumerate(hashes):
        parts[i % 2] = combine.add_input(parts[i % 2], value)
    assert combine.extract_output(combine.merge_accumulators(parts)) == 2
    assert combine.extract_output(combine.create_accumulator()) == 0
    # The same id always lands in the same bucket with the same hash, in any process.
    assert score_summary.bucketed_id_hash("a") == hashes[0] == hashes[2]
    assert all(0 <= bucket < score_summary.ID_HASH_BUCKETS for bucket, _ in hashes)
