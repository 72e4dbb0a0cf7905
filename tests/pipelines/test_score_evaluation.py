"""The scorer's evaluation from counted (true, predicted) label pairs, checked against hand counts."""

from __future__ import annotations

import pytest

from pipelines.score_evaluation import evaluation_summary, summary_fields

NAMES = ["a", "b", "c"]


def test_single_label_metrics_weigh_each_pair_by_its_count():
    pairs = [(("a", "a"), 3), (("a", "b"), 1), (("b", "b"), 2), (("c", "a"), 1)]
    evaluation = evaluation_summary(pairs, NAMES, multi_label=False)
    # a: 3 right of 4 predicted and of 4 true; b: 2 of 3 predicted, 2 of 2 true; c: never predicted.
    assert evaluation["per_class"] == {
        "a": pytest.approx({"precision": 0.75, "recall": 0.75, "f1": 0.75, "support": 4}),
        "b": pytest.approx({"precision": 2 / 3, "recall": 1.0, "f1": 0.8, "support": 2}),
        "c": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}}
    assert evaluation["accuracy"] == pytest.approx(5 / 7)
    assert evaluation["macro_f1"] == pytest.approx((0.75 + 0.8 + 0.0) / 3)
    assert (evaluation["num_examples"], evaluation["labelled"], evaluation["unknown_true_labels"]) == (7, 7, 0)
    assert all(isinstance(m["support"], int) for m in evaluation["per_class"].values())


def test_a_label_absent_from_the_documents_counts_as_zero_in_macro_f1():
    evaluation = evaluation_summary([(("a", "a"), 2)], NAMES, multi_label=False)
    assert evaluation["accuracy"] == 1.0
    assert evaluation["macro_f1"] == pytest.approx(1 / 3)


def test_documents_with_labels_the_model_never_saw_are_counted_and_count_as_errors_overall():
    evaluation = evaluation_summary([(("a", "a"), 2), (("weather", "a"), 6)], NAMES, multi_label=False)
    assert evaluation["accuracy"] == 1.0  # over the two documents whose label the model knows
    assert (evaluation["labelled"], evaluation["unknown_true_labels"], evaluation["num_examples"]) == (8, 6, 2)
    assert evaluation["accuracy_all_labelled"] == pytest.approx(2 / 8)


def test_when_every_label_is_unknown_only_the_overall_accuracy_is_given():
    evaluation = evaluation_summary([(("weather", "a"), 3)], NAMES, multi_label=False)
    assert (evaluation["accuracy"], evaluation["macro_f1"], evaluation["accuracy_all_labelled"]) == (None, None, 0.0)
    assert evaluation["unknown_true_labels"] == 3


def test_no_labelled_document_means_no_evaluation():
    assert evaluation_summary([], NAMES, multi_label=False) is None


def test_multi_label_metrics_over_label_sets_keep_names_holding_the_separator():
    names = ["a", "b,c"]
    pairs = [((["a"], ["a"]), 2), ((["a", "b,c"], ["a"]), 1), ((["b,c"], ["a", "b,c"]), 1),
             ((["a", "weather"], ["a"]), 1)]
    evaluation = evaluation_summary(pairs, names, multi_label=True)
    # Known documents: a has tp 3, fp 1, fn 0; "b,c" has tp 1, fp 0, fn 1.
    assert evaluation["per_class"] == {
        "a": pytest.approx({"precision": 0.75, "recall": 1.0, "f1": 6 / 7, "support": 3}),
        "b,c": pytest.approx({"precision": 1.0, "recall": 0.5, "f1": 2 / 3, "support": 2})}
    assert evaluation["accuracy"] == pytest.approx(2 / 4)  # exact match
    assert evaluation["hamming_accuracy"] == pytest.approx(6 / 8)
    assert evaluation["micro_f1"] == pytest.approx(2 * 4 / (2 * 4 + 1 + 1))
    assert evaluation["macro_f1"] == pytest.approx((6 / 7 + 2 / 3) / 2)
    assert (evaluation["labelled"], evaluation["unknown_true_labels"], evaluation["num_examples"]) == (5, 1, 4)
    assert evaluation["accuracy_all_labelled"] == pytest.approx(2 / 5)


def test_the_summary_repeats_the_evaluation_without_its_per_label_table():
    evaluation = evaluation_summary([(("a", "a"), 2)], NAMES, multi_label=False)
    fields = summary_fields(evaluation)
    assert "per_class" not in fields and fields["accuracy"] == 1.0 and fields["unknown_true_labels"] == 0
