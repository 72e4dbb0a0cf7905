"""Eval metrics against small examples worked out by hand (confusion rows = true class).

sklearn computes them; these tests pin the conventions model.evaluation promises on top of it.
"""

import json
import warnings

import numpy as np
import pytest

from model.evaluation import classification_metrics, majority_baseline_accuracy

THREE_NAMES = ["cat", "dog", "bird"]


def one_hot_scores(predicted_ids, num_classes, top=0.6):
    """Probability rows whose argmax is each predicted id (top on it, the rest shared evenly)."""
    rest = (1.0 - top) / (num_classes - 1)
    probs = np.full((len(predicted_ids), num_classes), rest)
    probs[np.arange(len(predicted_ids)), predicted_ids] = top
    return probs


@pytest.fixture
def no_warnings():
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        yield


# --- single-label: a 3-class example worked out by hand ------------------------------------------
#   true: 0 0 0 0 1 1 1 2 2 2
#   pred: 0 0 1 2 1 1 0 2 2 1
HAND_TRUE = [0, 0, 0, 0, 1, 1, 1, 2, 2, 2]
HAND_PRED = [0, 0, 1, 2, 1, 1, 0, 2, 2, 1]


@pytest.fixture
def hand_metrics():
    return classification_metrics(np.array(HAND_TRUE), one_hot_scores(HAND_PRED, 3), THREE_NAMES)


def test_confusion_matrix_has_true_classes_on_rows_and_predictions_on_columns(hand_metrics):
    assert hand_metrics["confusion_matrix"] == [[2, 1, 1],
                                                [1, 2, 0],
                                                [0, 1, 2]]


def test_per_class_precision_recall_f1_match_hand_computation(hand_metrics):
    per_class = hand_metrics["per_class"]
    # cat: tp 2 of 3 predicted, 4 true; dog: tp 2 of 4 predicted, 3 true; bird: tp 2 of 3 and 3.
    expected = {
        "cat": {"precision": 2 / 3, "recall": 1 / 2, "f1": 4 / 7, "support": 4},
        "dog": {"precision": 1 / 2, "recall": 2 / 3, "f1": 4 / 7, "support": 3},
        "bird": {"precision": 2 / 3, "recall": 2 / 3, "f1": 2 / 3, "support": 3},
    }
    assert list(per_class) == THREE_NAMES
    for name, values in expected.items():
        assert per_class[name] == pytest.approx(values)
        assert isinstance(per_class[name]["support"], int)


def test_accuracy_and_f1_averages_match_hand_computation(hand_metrics):
    assert hand_metrics["accuracy"] == pytest.approx(0.6)
    assert hand_metrics["macro_f1"] == pytest.approx(38 / 63)  # (4/7 + 4/7 + 2/3) / 3
    assert hand_metrics["weighted_f1"] == pytest.approx(0.6)  # (4*4/7 + 3*4/7 + 3*2/3) / 10
    assert hand_metrics["num_examples"] == 10
    assert hand_metrics["label_names"] == THREE_NAMES


def test_perfect_predictions_score_one_everywhere(no_warnings):
    labels = np.array([0, 1, 2, 2, 1, 0])
    metrics = classification_metrics(labels, one_hot_scores(labels, 3), THREE_NAMES)
    assert metrics["accuracy"] == metrics["macro_f1"] == metrics["weighted_f1"] == 1.0
    assert metrics["roc_auc"] == 1.0
    for values in metrics["per_class"].values():
        assert values["precision"] == values["recall"] == values["f1"] == 1.0
    assert metrics["confusion_matrix"] == [[2, 0, 0], [0, 2, 0], [0, 0, 2]]


def test_class_never_predicted_scores_zero_without_nan_or_warning(no_warnings):
    labels = np.array([0, 1, 2, 0])
    metrics = classification_metrics(labels, one_hot_scores([0, 1, 0, 0], 3), THREE_NAMES)
    assert metrics["per_class"]["bird"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert metrics["per_class"]["cat"]["precision"] == pytest.approx(2 / 3)
    json.dumps(metrics, allow_nan=False)


def test_class_without_support_or_predictions_scores_zero_and_counts_in_macro_f1(no_warnings):
    labels = np.array([0, 1, 1, 0])
    metrics = classification_metrics(labels, one_hot_scores(labels, 3), THREE_NAMES)
    assert metrics["per_class"]["bird"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert metrics["macro_f1"] == pytest.approx(2 / 3)
    assert metrics["weighted_f1"] == 1.0


# --- ROC-AUC ------------------------------------------------------------------------------------

def binary_roc_auc(labels, positive_probability) -> float:
    """classification_metrics' ROC-AUC of a two-class task with these class-1 probabilities."""
    positive_probability = np.asarray(positive_probability, dtype=float)
    probs = np.column_stack([1 - positive_probability, positive_probability])
    return classification_metrics(np.array(labels), probs, ["neg", "pos"])["roc_auc"]


def test_roc_auc_counts_correctly_ordered_positive_negative_pairs():
    # pairs (pos, neg): 0.35>0.1, 0.35<0.4, 0.8>0.1, 0.8>0.4 -> 3 of 4
    assert binary_roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)


def test_roc_auc_counts_tied_pairs_as_one_half():
    # pairs: 0.5=0.5 -> 1/2, 0.5>0.2, 0.9>0.5, 0.9>0.2 -> 3.5 of 4
    assert binary_roc_auc([1, 0, 0, 1], [0.5, 0.5, 0.2, 0.9]) == pytest.approx(0.875)
    assert binary_roc_auc([1, 0, 1, 0], [0.3, 0.3, 0.3, 0.3]) == pytest.approx(0.5)


def test_roc_auc_is_one_for_perfect_and_zero_for_inverted_scores():
    assert binary_roc_auc([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == 1.0
    assert binary_roc_auc([1, 1, 0, 0], [0.1, 0.2, 0.8, 0.9]) == 0.0


def test_binary_roc_auc_uses_probability_of_class_one():
    positive_probability = np.array([0.1, 0.4, 0.35, 0.8])
    probs = np.column_stack([1 - positive_probability, positive_probability])
    metrics = classification_metrics(np.array([0, 0, 1, 1]), probs, ["neg", "pos"])
    assert metrics["roc_auc"] == pytest.approx(0.75)


MULTI_CLASS_PROBS = np.array([[0.7, 0.2, 0.1],
                              [0.3, 0.4, 0.3],
                              [0.2, 0.5, 0.3],
                              [0.1, 0.1, 0.8]])


def test_multi_class_roc_auc_is_macro_average_of_one_vs_rest():
    # cat: 0.7 above all 3 negatives -> 1; dog: 0.4 above 0.2, 0.1, below 0.5 -> 2/3;
    # bird: positives 0.3, 0.8 vs negatives 0.1, 0.3 -> (1 + 1/2 + 1 + 1) / 4 = 0.875
    metrics = classification_metrics(np.array([0, 1, 2, 2]), MULTI_CLASS_PROBS, THREE_NAMES)
    assert metrics["roc_auc"] == pytest.approx((1 + 2 / 3 + 0.875) / 3)


def test_multi_class_roc_auc_skips_classes_absent_from_labels():
    # bird never occurs: cat (0.7, 0.2 vs 0.3, 0.1) -> 3/4; dog (0.4, 0.1 vs 0.2, 0.5) -> 1/4
    metrics = classification_metrics(np.array([0, 1, 0, 1]), MULTI_CLASS_PROBS, THREE_NAMES)
    assert metrics["roc_auc"] == pytest.approx((0.75 + 0.25) / 2)


def test_roc_auc_is_left_out_when_labels_hold_a_single_class():
    metrics = classification_metrics(np.array([1, 1, 1, 1]), MULTI_CLASS_PROBS, THREE_NAMES)
    assert "roc_auc" not in metrics


# --- multi-label --------------------------------------------------------------------------------
ML_NAMES = ["a", "b", "c"]
ML_LABELS = np.array([[1, 0, 1],
                      [0, 1, 0],
                      [1, 1, 0],
                      [0, 0, 1]], dtype=np.float32)
ML_PROBS = np.array([[0.9, 0.2, 0.6],    # -> 1 0 1 exact
                     [0.4, 0.7, 0.1],    # -> 0 1 0 exact
                     [0.8, 0.3, 0.55],   # -> 1 0 1 two labels wrong
                     [0.6, 0.1, 0.45]])  # -> 1 0 0 two labels wrong


@pytest.fixture
def multi_label_metrics():
    return classification_metrics(ML_LABELS, ML_PROBS, ML_NAMES, multi_label=True)


def test_multi_label_accuracy_is_exact_match_and_hamming_counts_cells(multi_label_metrics):
    assert multi_label_metrics["accuracy"] == pytest.approx(2 / 4)
    assert multi_label_metrics["hamming_accuracy"] == pytest.approx(8 / 12)


def test_multi_label_per_label_counts_and_scores(multi_label_metrics):
    assert multi_label_metrics["confusion_matrix"] == {"a": [[1, 1], [0, 2]],
                                                       "b": [[2, 0], [1, 1]],
                                                       "c": [[1, 1], [1, 1]]}
    per_class = multi_label_metrics["per_class"]
    assert per_class["a"] == pytest.approx({"precision": 2 / 3, "recall": 1.0, "f1": 0.8, "support": 2})
    assert per_class["b"] == pytest.approx({"precision": 1.0, "recall": 0.5, "f1": 2 / 3, "support": 2})
    assert per_class["c"] == pytest.approx({"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2})


def test_multi_label_macro_and_micro_f1_match_hand_computation(multi_label_metrics):
    assert multi_label_metrics["macro_f1"] == pytest.approx((0.8 + 2 / 3 + 0.5) / 3)
    # micro: tp 4, fp 2, fn 2 -> 2*4 / (2*4 + 2 + 2)
    assert multi_label_metrics["micro_f1"] == pytest.approx(2 / 3)


def test_multi_label_roc_auc_is_macro_over_labels(multi_label_metrics):
    # a: 1, b: 1, c: positives 0.6, 0.45 vs negatives 0.1, 0.55 -> 3/4
    assert multi_label_metrics["roc_auc"] == pytest.approx((1 + 1 + 0.75) / 3)
    assert multi_label_metrics["threshold"] == 0.5
    assert multi_label_metrics["num_examples"] == 4


def test_multi_label_threshold_decides_which_labels_are_predicted():
    metrics = classification_metrics(ML_LABELS, ML_PROBS, ML_NAMES, multi_label=True, threshold=0.58)
    # c is predicted only for 0.6 now: 0.55 on row 3 stops being a false positive (4 -> 3 wrong cells)
    assert metrics["confusion_matrix"]["c"] == [[2, 0], [1, 1]]
    assert metrics["hamming_accuracy"] == pytest.approx(9 / 12)
    assert metrics["threshold"] == 0.58


def test_multi_label_prediction_includes_probability_equal_to_threshold():
    metrics = classification_metrics([[1, 0]], [[0.5, 0.49]], ["x", "y"], multi_label=True)
    assert metrics["accuracy"] == 1.0


def test_multi_label_with_nothing_predicted_scores_zero_without_warning(no_warnings):
    metrics = classification_metrics(ML_LABELS, np.zeros((4, 3)), ML_NAMES, multi_label=True)
    assert metrics["micro_f1"] == metrics["macro_f1"] == 0.0
    assert metrics["per_class"]["a"]["precision"] == 0.0


# --- validation and output format ---------------------------------------------------------------

def test_probability_columns_must_match_label_names():
    with pytest.raises(ValueError, match=r"\(4, 3\)"):
        classification_metrics(np.array([0, 1, 0, 1]), MULTI_CLASS_PROBS, ["neg", "pos"])


def test_single_label_labels_must_match_number_of_rows():
    with pytest.raises(ValueError, match=r"\(3,\)"):
        classification_metrics(np.array([0, 1, 2]), MULTI_CLASS_PROBS, THREE_NAMES)


def test_single_label_ids_must_be_valid_classes():
    with pytest.raises(ValueError, match="class ids"):
        classification_metrics(np.array([0, 1, 2, 3]), MULTI_CLASS_PROBS, THREE_NAMES)


def test_multi_label_labels_must_be_multi_hot_matrix():
    with pytest.raises(ValueError, match=r"\(4,\)"):
        classification_metrics(np.array([0, 1, 2, 2]), MULTI_CLASS_PROBS, THREE_NAMES, multi_label=True)
    with pytest.raises(ValueError, match="only 0 and 1"):
        classification_metrics(ML_LABELS * 2, ML_PROBS, ML_NAMES, multi_label=True)


def test_probabilities_must_be_finite():
    with pytest.raises(ValueError, match="finite"):
        classification_metrics(np.array([0, 1]), [[0.5, np.nan], [0.2, 0.8]], ["neg", "pos"])


@pytest.mark.parametrize("multi_label", [False, True])
def test_result_is_plain_json(multi_label):
    if multi_label:
        metrics = classification_metrics(ML_LABELS, ML_PROBS, ML_NAMES, multi_label=True)
    else:
        metrics = classification_metrics(np.array(HAND_TRUE), one_hot_scores(HAND_PRED, 3), THREE_NAMES)
    assert json.loads(json.dumps(metrics, allow_nan=False)) == metrics


def test_majority_baseline_is_share_of_most_frequent_class():
    assert majority_baseline_accuracy(np.array(HAND_TRUE)) == pytest.approx(0.4)
    assert majority_baseline_accuracy([2, 2, 2]) == 1.0
    assert isinstance(majority_baseline_accuracy([0, 1]), float)


def test_majority_baseline_rejects_empty_labels():
    with pytest.raises(ValueError, match=r"\(0,\)"):
        majority_baseline_accuracy([])
