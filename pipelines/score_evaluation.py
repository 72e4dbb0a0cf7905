"""How the predictions compare with the labels the scored documents carried (sklearn.metrics).

The pipeline counts each distinct (true label(s), predicted label(s)) pair (a few dozen pairs,
whatever the corpus size); the metrics weigh each pair by its count (`sample_weight`).

Drift: a document whose true label (any of its labels, multi-label) is one the model never saw
cannot be predicted right. The metrics are computed over the documents whose labels the model
knows (`accuracy`, `macro_f1`, `per_class`, `num_examples`), and beside them `labelled` (every
document with a label), `unknown_true_labels` (those with a label the model does not know) and
`accuracy_all_labelled` (counting those as errors), so a corpus that drifted away from the
model's labels cannot look accurate.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
from sklearn import metrics
from sklearn.preprocessing import MultiLabelBinarizer

# ((true label(s), predicted label(s)), number of documents); labels are a string (single-label)
# or a sequence of strings (multi-label).
LabelPairCount = tuple[tuple[object, object], int]


def evaluation_summary(label_pairs: Iterable[LabelPairCount], label_names: Sequence[str],
                       multi_label: bool) -> dict | None:
    """The evaluation of a scoring run, or None when no document carried a label."""
    names = list(label_names)
    pairs = [((_as_key(truth, multi_label), _as_key(predicted, multi_label)), int(count))
             for (truth, predicted), count in label_pairs]
    labelled = sum(count for _, count in pairs)
    if not labelled:
        return None
    known = [(pair, count) for pair, count in pairs if _is_known(pair[0], names, multi_label)]
    num_known = sum(count for _, count in known)
    evaluation = {
        "labelled": labelled,
        "unknown_true_labels": labelled - num_known,
        "num_examples": num_known,
        "accuracy": None,
        "accuracy_all_labelled": _multi_label_accuracy(pairs) if multi_label else _accuracy(pairs),
        "macro_f1": None,
    }
    if known:
        evaluation.update(_multi_label_metrics(known, names) if multi_label else _single_label_metrics(known, names))
    return evaluation


def summary_fields(evaluation: dict) -> dict:
    """The part of the evaluation that summary.json repeats (evaluation.json has it all)."""
    return {k: v for k, v in evaluation.items() if k not in ("per_class",)}


def _as_key(labels, multi_label: bool):
    return tuple(labels) if multi_label else labels


def _is_known(truth, names: list[str], multi_label: bool) -> bool:
    return all(label in names for label in truth) if multi_label else truth in names


def _unzip(pairs: list[LabelPairCount]) -> tuple[list, list, np.ndarray]:
    truths = [truth for (truth, _), _ in pairs]
    predictions = [predicted for (_, predicted), _ in pairs]
    return truths, predictions, np.array([count for _, count in pairs], dtype=np.float64)


def _accuracy(pairs: list[LabelPairCount]) -> float:
    truths, predicted, weights = _unzip(pairs)
    return float(metrics.accuracy_score(truths, predicted, sample_weight=weights))


def _multi_label_accuracy(pairs: list[LabelPairCount]) -> float:
    """Exact-match accuracy over label sets, unknown labels included (they never match)."""
    truths, predicted, weights = _unzip(pairs)
    binarizer = MultiLabelBinarizer().fit(truths + predicted)
    return float(metrics.accuracy_score(binarizer.transform(truths), binarizer.transform(predicted),
                                        sample_weight=weights))


def _single_label_metrics(pairs: list[LabelPairCount], names: list[str]) -> dict:
    truths, predicted, weights = _unzip(pairs)
    precision, recall, f1, support = metrics.precision_recall_fscore_support(
        truths, predicted, labels=names, sample_weight=weights, zero_division=0)
    return {
        "accuracy": float(metrics.accuracy_score(truths, predicted, sample_weight=weights)),
        # Every label the model knows weighs the same; one absent from the documents counts as 0.
        "macro_f1": float(metrics.f1_score(truths, predicted, labels=names, average="macro", sample_weight=weights,
                                           zero_division=0)),
        "per_class": _per_class(names, precision, recall, f1, support),
    }


def _multi_label_metrics(pairs: list[LabelPairCount], names: list[str]) -> dict:
    truths, predicted, weights = _unzip(pairs)
    binarizer = MultiLabelBinarizer(classes=names).fit([])
    y_true, y_pred = binarizer.transform(truths), binarizer.transform(predicted)
    precision, recall, f1, support = metrics.precision_recall_fscore_support(
        y_true, y_pred, sample_weight=weights, zero_division=0)
    return {
        "accuracy": float(metrics.accuracy_score(y_true, y_pred, sample_weight=weights)),  # exact match
        "hamming_accuracy": 1.0 - float(metrics.hamming_loss(y_true, y_pred, sample_weight=weights)),
        "micro_f1": float(metrics.f1_score(y_true, y_pred, average="micro", sample_weight=weights,
                                           zero_division=0)),
        "macro_f1": float(metrics.f1_score(y_true, y_pred, average="macro", sample_weight=weights,
                                           zero_division=0)),
        "per_class": _per_class(names, precision, recall, f1, support),
    }


def _per_class(names, precision, recall, f1, support) -> dict[str, dict]:
    return {name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(round(s))}
            for name, p, r, f, s in zip(names, precision, recall, f1, support)}
