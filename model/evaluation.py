"""Classification metrics on an eval split, from sklearn.metrics, as a JSON-serializable dict.

sklearn computes every number; this module fixes the conventions and the shape of the result:

* Confusion matrices have rows = true class and columns = predicted class, both in
  ``label_names`` order. Multi-label confusion matrices are per label ``[[tn, fp], [fn, tp]]``.
* Precision, recall and F1 of a class with no predictions / no support / both are 0.0 rather
  than NaN (``zero_division=0.0``), and no warnings are emitted.
* Macro averages weigh every class in ``label_names`` equally, including classes absent from
  the eval split (their F1 is 0.0). Weighted averages weigh classes by their support.
* ROC-AUC of a binary task is that of class 1's probability. Multi-class and multi-label
  ROC-AUC is the macro average over the one-vs-rest problems that have both positives and
  negatives (sklearn refuses the others); when none qualifies, the ``roc_auc`` key is left out.
* Every number in the result is a plain Python ``int`` or ``float`` so ``json.dumps`` works.

Inputs are checked here first, so a mismatch is reported in these terms (shape [N, C], class ids,
multi-hot rows) rather than sklearn's.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn import metrics as sk


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


def majority_baseline_accuracy(labels) -> float:
    """Accuracy of always predicting the most frequent class: its share of ``labels`` (shape [N])."""
    values = np.asarray(labels)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"labels must be a non-empty 1-D array, received shape {values.shape}")
    _, counts = np.unique(values, return_counts=True)
    return float(counts.max() / values.size)


def _single_label_metrics(labels, probabilities, names: list[str]) -> dict:
    probs = _as_probability_matrix(probabilities, len(names))
    class_ids = _as_class_ids(labels, probs.shape[0], len(names))
    predictions = np.argmax(probs, axis=1)
    classes = np.arange(len(names))
    precision, recall, f1, support = sk.precision_recall_fscore_support(
        class_ids, predictions, labels=classes, zero_division=0.0)
    metrics = {
        "accuracy": float(sk.accuracy_score(class_ids, predictions)),
        "macro_f1": float(f1.mean()),
        "weighted_f1": float(np.sum(f1 * support) / class_ids.size),
        "per_class": _per_class_table(names, precision, recall, f1, support),
        "confusion_matrix": sk.confusion_matrix(class_ids, predictions, labels=classes).tolist(),
        "label_names": names,
        "num_examples": int(class_ids.size),
    }
    # Binary: class 1's probability alone (its one-vs-rest problem is the task itself).
    truth = class_ids[:, None] == (classes[1:] if len(names) == 2 else classes)
    auc = _macro_roc_auc(truth, probs[:, 1:] if len(names) == 2 else probs)
    if auc is not None:
        metrics["roc_auc"] = auc
    return metrics


def _multi_label_metrics(labels, probabilities, names: list[str], threshold: float) -> dict:
    probs = _as_probability_matrix(probabilities, len(names))
    truth = _as_multi_hot(labels, probs.shape)
    threshold = float(threshold)
    if not np.isfinite(threshold):
        raise ValueError(f"threshold must be a finite number, received {threshold}")
    predicted = probs >= threshold
    precision, recall, f1, support = sk.precision_recall_fscore_support(truth, predicted, zero_division=0.0)
    per_label = sk.multilabel_confusion_matrix(truth, predicted)  # [C, 2, 2]: [[tn, fp], [fn, tp]]
    metrics = {
        "accuracy": float(sk.accuracy_score(truth, predicted)),  # every label of a row right
        "hamming_accuracy": float(1.0 - sk.hamming_loss(truth, predicted)),
        "macro_f1": float(f1.mean()),
        "micro_f1": float(sk.f1_score(truth, predicted, average="micro", zero_division=0.0)),
        "per_class": _per_class_table(names, precision, recall, f1, support),
        "confusion_matrix": {name: per_label[i].tolist() for i, name in enumerate(names)},
        "threshold": threshold,
        "label_names": names,
        "num_examples": int(truth.shape[0]),
    }
    auc = _macro_roc_auc(truth, probs)
    if auc is not None:
        metrics["roc_auc"] = auc
    return metrics


def _macro_roc_auc(truth: np.ndarray, scores: np.ndarray) -> float | None:
    """Mean AUC over columns of boolean ``truth`` [N, K] that hold both classes; None if none do."""
    aucs = [sk.roc_auc_score(truth[:, k], scores[:, k])
            for k in range(truth.shape[1]) if 0 < truth[:, k].sum() < truth.shape[0]]
    return float(np.mean(aucs)) if aucs else None


def _per_class_table(names, precision, recall, f1, support) -> dict[str, dict]:
    return {
        name: {"precision": float(precision[i]), "recall": float(recall[i]),
               "f1": float(f1[i]), "support": int(support[i])}
        for i, name in enumerate(names)
    }


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
    if not np.all(np.isfinite(probs)):
        raise ValueError("probabilities must be finite, received NaN or infinity")
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
    if values.dtype != bool and (not np.issubdtype(values.dtype, np.number)
                                 or not np.all((values == 0) | (values == 1))):
        raise ValueError("multi-label labels must contain only 0 and 1")
    return values == 1
