"""Classification metrics on an eval split, in pure numpy, as a JSON-serializable dict.

Conventions used throughout:

* Confusion matrices have rows = true class and columns = predicted class, both in
  ``label_names`` order. Multi-label confusion matrices are per label ``[[tn, fp], [fn, tp]]``.
* Precision, recall and F1 of a class with no predictions / no support / both are 0.0 rather
  than NaN, and no numpy warnings are emitted.
* Macro averages weigh every class in ``label_names`` equally, including classes absent from
  the eval split (their F1 is 0.0). Weighted averages weigh classes by their support.
* ROC-AUC uses the rank (Mann-Whitney U) formula with average ranks for tied scores. Multi-class
  and multi-label ROC-AUC is the macro average over the one-vs-rest problems that have both
  positives and negatives; when no class qualifies, the ``roc_auc`` key is left out.
* Every number in the result is a plain Python ``int`` or ``float`` so ``json.dumps`` works.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def classification_metrics(labels, probabilities, label_names: Sequence[str],
                           multi_label: bool = False, threshold: float = 0.5) -> dict:
    """Metrics of predicted ``probabilities`` against true ``labels``.

    Single-label: ``labels`` holds class ids, shape [N]; ``probabilities`` has shape [N, C];
    the prediction is the argmax. Multi-label: ``labels`` is multi-hot 0/1, shape [N, C]; a label
    is predicted when its probability is ``>= threshold``. ``C == len(label_names)`` in both.
    """
    names = _validated_label_names(label_names)
    if multi_label:
        return _multi_label_metrics(labels, probabilities, names, threshold)
    return _single_label_metrics(labels, probabilities, names)


def roc_auc_score(binary_labels, scores) -> float:
    """Area under the ROC curve of ``scores`` for the positives (1) among ``binary_labels`` (0/1).

    Equals the probability that a random positive scores above a random negative, ties counting
    one half: ``(sum of positive ranks - P(P+1)/2) / (P * Q)`` with 1-based average ranks.
    Raises ValueError unless both classes are present.
    """
    truth = _as_binary_vector(binary_labels, "binary_labels")
    values = np.asarray(scores, dtype=np.float64)
    if values.shape != truth.shape:
        raise ValueError(f"binary_labels and scores must have the same 1-D shape, "
                         f"received {truth.shape} and {values.shape}")
    _require_finite(values, "scores")
    positives = int(truth.sum())
    negatives = truth.size - positives
    if positives == 0 or negatives == 0:
        raise ValueError("ROC-AUC needs both positive and negative labels, "
                         f"received {positives} positives and {negatives} negatives")
    positive_rank_sum = float(average_ranks(values)[truth].sum())
    return (positive_rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


def average_ranks(values) -> np.ndarray:
    """1-based ranks of ``values`` in ascending order; tied values share their average rank."""
    values = np.asarray(values)
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    starts_group = np.empty(ordered.size, dtype=bool)
    starts_group[:1] = True
    starts_group[1:] = ordered[1:] != ordered[:-1]
    group_starts = np.flatnonzero(starts_group)  # 0-based position of each tie group's first value
    group_ends = np.append(group_starts[1:], ordered.size)  # 0-based position after its last value
    group_mean_rank = (group_starts + 1 + group_ends) / 2.0  # mean of ranks start+1 .. end
    ranks = np.empty(values.size, dtype=np.float64)
    ranks[order] = group_mean_rank[np.cumsum(starts_group) - 1]
    return ranks


def majority_baseline_accuracy(labels) -> float:
    """Accuracy of always predicting the most frequent class: its share of ``labels`` (shape [N])."""
    values = np.asarray(labels)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"labels must be a non-empty 1-D array, received shape {values.shape}")
    _, counts = np.unique(values, return_counts=True)
    return float(counts.max() / values.size)


def confusion_matrix(labels, predictions, num_classes: int) -> np.ndarray:
    """Counts [C, C] of (true, predicted) class-id pairs: rows = true class, columns = predicted."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(labels), np.asarray(predictions)), 1)
    return matrix


def binary_counts(truth: np.ndarray, predicted: np.ndarray) -> dict[str, np.ndarray]:
    """Per-column tp/fp/fn/tn counts of boolean arrays [N, C] of true and predicted labels."""
    return {
        "tp": np.sum(truth & predicted, axis=0),
        "fp": np.sum(~truth & predicted, axis=0),
        "fn": np.sum(truth & ~predicted, axis=0),
        "tn": np.sum(~truth & ~predicted, axis=0),
    }


def precision_recall_f1(tp, fp, fn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-class precision, recall and F1 from count arrays; 0.0 wherever a denominator is 0."""
    tp, fp, fn = (np.asarray(count, dtype=np.float64) for count in (tp, fp, fn))
    precision = _safe_divide(tp, tp + fp)
    recall = _safe_divide(tp, tp + fn)
    f1 = _safe_divide(2 * tp, 2 * tp + fp + fn)  # = 2PR / (P + R), and 0 when tp == 0
    return precision, recall, f1


# --- single-label -------------------------------------------------------------------------------

def _single_label_metrics(labels, probabilities, names: list[str]) -> dict:
    probs = _as_probability_matrix(probabilities, len(names))
    class_ids = _as_class_ids(labels, probs.shape[0], len(names))
    predictions = np.argmax(probs, axis=1)
    matrix = confusion_matrix(class_ids, predictions, len(names))
    true_positives = np.diag(matrix)
    support = matrix.sum(axis=1)
    precision, recall, f1 = precision_recall_f1(
        true_positives, matrix.sum(axis=0) - true_positives, support - true_positives)
    metrics = {
        "accuracy": float(true_positives.sum() / class_ids.size),
        "macro_f1": float(f1.mean()),
        "weighted_f1": float(np.sum(f1 * support) / class_ids.size),
        "per_class": _per_class_table(names, precision, recall, f1, support),
        "confusion_matrix": matrix.tolist(),
        "label_names": names,
        "num_examples": int(class_ids.size),
    }
    auc = _single_label_roc_auc(class_ids, probs)
    if auc is not None:
        metrics["roc_auc"] = auc
    return metrics


def _single_label_roc_auc(class_ids: np.ndarray, probs: np.ndarray) -> float | None:
    """Binary: AUC of class 1's probability. More classes: macro one-vs-rest over usable classes."""
    if probs.shape[1] == 2:
        return _macro_roc_auc(class_ids[:, None] == 1, probs[:, 1:])
    return _macro_roc_auc(class_ids[:, None] == np.arange(probs.shape[1]), probs)


# --- multi-label --------------------------------------------------------------------------------

def _multi_label_metrics(labels, probabilities, names: list[str], threshold: float) -> dict:
    probs = _as_probability_matrix(probabilities, len(names))
    truth = _as_multi_hot(labels, probs.shape)
    threshold = float(threshold)
    if not np.isfinite(threshold):
        raise ValueError(f"threshold must be a finite number, received {threshold}")
    predicted = probs >= threshold
    counts = binary_counts(truth, predicted)
    precision, recall, f1 = precision_recall_f1(counts["tp"], counts["fp"], counts["fn"])
    _, _, micro_f1 = precision_recall_f1(*(counts[key].sum() for key in ("tp", "fp", "fn")))
    metrics = {
        "accuracy": float(np.all(truth == predicted, axis=1).mean()),
        "hamming_accuracy": float((truth == predicted).mean()),
        "macro_f1": float(f1.mean()),
        "micro_f1": float(micro_f1),
        "per_class": _per_class_table(names, precision, recall, f1, truth.sum(axis=0)),
        "confusion_matrix": {
            name: [[int(counts["tn"][i]), int(counts["fp"][i])],
                   [int(counts["fn"][i]), int(counts["tp"][i])]]
            for i, name in enumerate(names)
        },
        "threshold": threshold,
        "label_names": names,
        "num_examples": int(truth.shape[0]),
    }
    auc = _macro_roc_auc(truth, probs)
    if auc is not None:
        metrics["roc_auc"] = auc
    return metrics


# --- shared helpers -----------------------------------------------------------------------------

def _macro_roc_auc(truth: np.ndarray, scores: np.ndarray) -> float | None:
    """Mean AUC over columns of boolean ``truth`` [N, K] that hold both classes; None if none do."""
    aucs = [roc_auc_score(truth[:, k], scores[:, k])
            for k in range(truth.shape[1]) if 0 < truth[:, k].sum() < truth.shape[0]]
    return float(np.mean(aucs)) if aucs else None


def _per_class_table(names, precision, recall, f1, support) -> dict[str, dict]:
    return {
        name: {"precision": float(precision[i]), "recall": float(recall[i]),
               "f1": float(f1[i]), "support": int(support[i])}
        for i, name in enumerate(names)
    }


def _safe_divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    result = np.zeros(np.broadcast(numerator, denominator).shape, dtype=np.float64)
    np.divide(numerator, denominator, out=result, where=denominator != 0)
    return result


def _validated_label_names(label_names) -> list[str]:
    names = [str(name) for name in label_names]
    if not names:
        raise ValueError("label_names must not be empty")
    if len(set(names)) != len(names):
        raise ValueError(f"label_names must be unique, received {names}")
    return names


def _as_probability_matrix(probabilities, num_classes: int) -> np.ndarray:
    probs = np.asarray(probabilities, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[1] != num_classes:
        raise ValueError(f"probabilities must have shape [N, {num_classes}] "
                         f"(one column per label name), received shape {probs.shape}")
    if probs.shape[0] == 0:
        raise ValueError(f"need at least one example, received probabilities of shape {probs.shape}")
    _require_finite(probs, "probabilities")
    return probs


def _as_class_ids(labels, num_examples: int, num_classes: int) -> np.ndarray:
    values = np.asarray(labels)
    if values.shape != (num_examples,):
        raise ValueError(f"single-label labels must have shape [N] = ({num_examples},) matching "
                         f"probabilities, received shape {values.shape}")
    if not np.issubdtype(values.dtype, np.integer):
        if not np.issubdtype(values.dtype, np.number) or np.any(values != np.round(values)):
            raise ValueError(f"single-label labels must be integer class ids, received dtype {values.dtype}")
    class_ids = values.astype(np.int64)
    if class_ids.min() < 0 or class_ids.max() >= num_classes:
        raise ValueError(f"class ids must lie in [0, {num_classes}), "
                         f"received values from {class_ids.min()} to {class_ids.max()}")
    return class_ids


def _as_multi_hot(labels, expected_shape: tuple[int, int]) -> np.ndarray:
    values = np.asarray(labels)
    if values.shape != expected_shape:
        raise ValueError(f"multi-label labels must be multi-hot with shape {expected_shape} "
                         f"matching probabilities, received shape {values.shape}")
    return _as_binary(values, "multi-label labels")


def _as_binary_vector(values, what: str) -> np.ndarray:
    values = np.asarray(values)
    if values.ndim != 1:
        raise ValueError(f"{what} must be 1-D, received shape {values.shape}")
    return _as_binary(values, what)


def _as_binary(values: np.ndarray, what: str) -> np.ndarray:
    if values.dtype == bool:
        return values
    if not np.issubdtype(values.dtype, np.number) or not np.all((values == 0) | (values == 1)):
        raise ValueError(f"{what} must contain only 0 and 1")
    return values == 1


def _require_finite(values: np.ndarray, what: str) -> None:
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{what} must be finite, received NaN or infinity")
