"""The solved n-gram path: the layer's weights are scikit-learn's logistic regression on the layer's own features."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import tensorflow as tf
from scipy.special import expit, softmax
from sklearn.feature_extraction.text import TfidfTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.svm import LinearSVC

from model.ngram_logits import NAIVE_BAYES, TFIDF, feature_scales, ngram_logits_for
from model.ngram_solver import (C_GRIDS, LOGISTIC, MIN_DOCUMENTS, SQUARED_HINGE, base_features, fit_temperature,
                                set_scales_from_counts, solve_from_batches)

VOCAB, LENGTH, CLASSES = 60, 12, 3
CLASS_WORDS = {0: range(1, 8), 1: range(8, 15), 2: range(15, 22)}  # each class favours its own words
# The solver stops at L-BFGS's tol 1e-4, the references at 1e-8: on these tiny, nearly separable
# corpora that alone moves a probability by up to 0.04. Features the model does not compute move
# them by far more.
TOLERANCE = 5e-2


def documents(count: int, seed: int, classes: int = CLASSES, unseen_words: bool = False):
    """(token ids [count, LENGTH] padded with 0, labels [count]): topic words mixed with shared words
    22..39, most of them twice, a fifth of the labels flipped so no C fits perfectly; with `unseen_words`, also words
    40..59, which training never holds."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, count)
    ids = np.zeros((count, LENGTH), np.int64)
    for i, label in enumerate(labels):
        length = rng.integers(4, LENGTH + 1)
        pool = np.concatenate([np.array(CLASS_WORDS[label]), np.arange(22, 40 if not unseen_words else 60)])
        ids[i, :length] = np.resize(rng.choice(pool, length // 2 + 1), length)  # most words twice
    noisy = rng.random(count) < 0.2
    labels[noisy] = rng.integers(0, classes, noisy.sum())
    return ids, labels


def batches(ids, labels, size=32):
    return [(tf.constant(ids[i:i + size]), labels[i:i + size]) for i in range(0, len(ids), size)]


def counts_matrix(layer, ids) -> sp.csr_matrix:
    """How often each row occurs in each document, from the layer's own n-gram rows."""
    documents, rows, counts = (t.numpy() for t in layer.present_rows_and_counts(tf.constant(ids)))
    return sp.csr_matrix((counts.astype(np.float64), (documents, rows)), shape=(len(ids), layer.num_rows))


def solved_layer(weighting, train, evaluation, classes=CLASSES, multi_label=False, losses=(LOGISTIC,)):
    layer = ngram_logits_for(weighting, classes, VOCAB, max_ngram=2, num_buckets=64)
    layer.build((None, None))
    layer.set_scales(feature_scales(layer, batches(*train), weighting, multi_label))
    solution = solve_from_batches(layer, batches(*train), batches(*evaluation), multi_label, losses=losses)
    return layer, solution


@pytest.fixture(scope="module")
def solved_tfidf():
    """(layer, solution, train, evaluation): three classes, one word (VOCAB - 1) in one training
    document only, and evaluation documents holding words training never saw."""
    train, evaluation = documents(240, seed=0), documents(80, seed=1, unseen_words=True)
    train[0][0, 0] = VOCAB - 1
    return (*solved_layer(TFIDF, train, evaluation), train, evaluation)


def test_a_solved_tfidf_layer_gives_scikit_learns_probabilities_on_the_same_documents(solved_tfidf):
    layer, solution, train, evaluation = solved_tfidf

    # The reference: scikit-learn's own TF-IDF of the same counts (documents scaled to unit length
    # over all their rows), and its logistic regression over the rows two or more documents hold.
    counts = counts_matrix(layer, train[0])
    tfidf = TfidfTransformer(sublinear_tf=True).fit(counts)
    kept = sp.diags((counts.getnnz(axis=0) >= MIN_DOCUMENTS).astype(np.float64))
    reference = LogisticRegression(C=solution["c"], max_iter=5000, tol=1e-8).fit(tfidf.transform(counts) @ kept,
                                                                                 train[1])
    expected = reference.predict_proba(tfidf.transform(counts_matrix(layer, evaluation[0])) @ kept)
    served = softmax(layer(tf.constant(evaluation[0])).numpy(), axis=1)
    np.testing.assert_allclose(served, expected, atol=TOLERANCE)


def test_a_solved_naive_bayes_pair_is_one_binary_model_whose_probability_the_softmax_gives():
    train, evaluation = documents(240, seed=2, classes=2), documents(80, seed=3, classes=2, unseen_words=True)
    layer, solution = solved_layer(NAIVE_BAYES, train, evaluation, classes=2)

    ratios = layer.scales.numpy()[:, 1].astype(np.float64)
    present = (counts_matrix(layer, train[0]) > 0).astype(np.float64)
    reference = LogisticRegression(C=solution["c"], max_iter=5000, tol=1e-8).fit(present @ sp.diags(ratios), train[1])
    eval_present = (counts_matrix(layer, evaluation[0]) > 0).astype(np.float64)
    expected = reference.predict_proba(eval_present @ sp.diags(ratios))[:, 1]
    served = softmax(layer(tf.constant(evaluation[0])).numpy(), axis=1)[:, 1]
    np.testing.assert_allclose(served, expected, atol=TOLERANCE)


def test_naive_bayes_with_more_classes_solves_one_class_against_the_rest_on_its_own_ratios():
    train, evaluation = documents(240, seed=4), documents(80, seed=5)
    layer, solution = solved_layer(NAIVE_BAYES, train, evaluation)
    logits = layer(tf.constant(evaluation[0])).numpy()
    present = (counts_matrix(layer, train[0]) > 0).astype(np.float64)
    eval_present = (counts_matrix(layer, evaluation[0]) > 0).astype(np.float64)
    for output in range(CLASSES):
        ratios = sp.diags(layer.scales.numpy()[:, output].astype(np.float64))
        reference = LogisticRegression(C=solution["c"], max_iter=5000, tol=1e-8).fit(
            present @ ratios, (train[1] == output).astype(int))
        np.testing.assert_allclose(logits[:, output], reference.decision_function(eval_present @ ratios),
                                   rtol=TOLERANCE, atol=TOLERANCE)


def test_multi_label_outputs_are_one_binary_model_per_label():
    (ids, classes), (eval_ids, eval_classes) = documents(240, seed=6), documents(80, seed=7)
    multi_hot = np.stack([classes == 0, (classes == 1) | (ids[:, 0] % 2 == 0)], axis=1).astype(np.float32)
    eval_multi_hot = np.stack([eval_classes == 0, (eval_classes == 1) | (eval_ids[:, 0] % 2 == 0)],
                              axis=1).astype(np.float32)
    layer, solution = solved_layer(TFIDF, (ids, multi_hot), (eval_ids, eval_multi_hot), classes=2, multi_label=True)
    served = expit(layer(tf.constant(eval_ids)).numpy())
    tfidf = TfidfTransformer(sublinear_tf=True).fit(counts_matrix(layer, ids))
    for label in range(2):
        reference = LogisticRegression(C=solution["c"], max_iter=5000, tol=1e-8).fit(
            tfidf.transform(counts_matrix(layer, ids)), multi_hot[:, label])
        np.testing.assert_allclose(served[:, label],
                                   reference.predict_proba(tfidf.transform(counts_matrix(layer, eval_ids)))[:, 1],
                                   atol=TOLERANCE)
    assert 0.0 < solution["eval_score"][LOGISTIC][str(solution["c"])] <= 1.0


def test_c_is_the_one_with_the_best_eval_accuracy_and_that_accuracy_is_the_layers(solved_tfidf):
    layer, solution, _, evaluation = solved_tfidf
    scores = {float(c): score for c, score in solution["eval_score"][LOGISTIC].items()}
    assert set(scores) == set(C_GRIDS[LOGISTIC]) and solution["loss"] == LOGISTIC
    assert solution["c"] == max(scores, key=lambda c: (scores[c], -c))  # ties: the stronger penalty
    predicted = layer(tf.constant(evaluation[0])).numpy().argmax(axis=1)
    assert np.mean(predicted == evaluation[1]) == pytest.approx(scores[solution["c"]], abs=1e-4)


def test_rows_fewer_than_two_training_documents_hold_keep_zero_weight(solved_tfidf):
    layer, solution, train, _ = solved_tfidf
    documents_holding = np.bincount(layer.present_rows(tf.constant(train[0]))[1].numpy(), minlength=layer.num_rows)
    held = np.flatnonzero(documents_holding >= MIN_DOCUMENTS)
    weights = layer.weights_table.numpy()
    assert solution["rows_used"] == len(held) and documents_holding[VOCAB - 1] == 1
    assert not np.any(np.delete(weights, held, axis=0))
    assert np.all(np.any(weights[held] != 0, axis=1))


def test_class_weights_weight_each_training_document_by_its_class():
    train, evaluation = documents(240, seed=12), documents(80, seed=13)
    layer = ngram_logits_for(TFIDF, CLASSES, VOCAB, max_ngram=2, num_buckets=64)
    layer.build((None, None))
    layer.set_scales(feature_scales(layer, batches(*train), TFIDF, False))
    plain = solve_from_batches(layer, batches(*train), batches(*evaluation), False, losses=(LOGISTIC,))
    plain_logits = layer(tf.constant(evaluation[0])).numpy()
    weighted = solve_from_batches(layer, batches(*train), batches(*evaluation), False,
                                  class_weights={0: 5.0, 1: 1.0, 2: 1.0}, losses=(LOGISTIC,))
    weighted_logits = layer(tf.constant(evaluation[0])).numpy()
    # Class 0 weighs five times as much as the others: more documents are predicted as class 0.
    assert (weighted_logits.argmax(axis=1) == 0).sum() > (plain_logits.argmax(axis=1) == 0).sum()
    assert set(plain) == set(weighted)


def test_a_label_every_training_document_has_gets_zero_weights_and_its_log_odds():
    (ids, classes), (eval_ids, eval_classes) = documents(120, seed=14), documents(40, seed=15)
    always = np.stack([classes == 0, np.ones(len(classes), bool)], axis=1).astype(np.float32)
    eval_always = np.stack([eval_classes == 0, np.ones(len(eval_classes), bool)], axis=1).astype(np.float32)
    layer, _ = solved_layer(TFIDF, (ids, always), (eval_ids, eval_always), classes=2, multi_label=True)
    assert not np.any(layer.weights_table.numpy()[:, 1]) and np.any(layer.weights_table.numpy()[:, 0])
    assert layer.bias.numpy()[1] == pytest.approx(np.log(120.5 / 0.5))


def test_a_squared_hinge_solution_is_the_linear_svms_margins_times_the_fitted_temperature():
    train, evaluation = documents(240, seed=16), documents(80, seed=17, unseen_words=True)
    layer, solution = solved_layer(TFIDF, train, evaluation, losses=(SQUARED_HINGE,))
    assert solution["loss"] == SQUARED_HINGE and solution["c"] in C_GRIDS[SQUARED_HINGE]

    counts = counts_matrix(layer, train[0])
    tfidf = TfidfTransformer(sublinear_tf=True).fit(counts)
    kept = sp.diags((counts.getnnz(axis=0) >= MIN_DOCUMENTS).astype(np.float64))
    reference = LinearSVC(C=solution["c"], max_iter=5000, tol=1e-8).fit(tfidf.transform(counts) @ kept, train[1])
    margins = reference.decision_function(tfidf.transform(counts_matrix(layer, evaluation[0])) @ kept)
    logits = layer(tf.constant(evaluation[0])).numpy()
    np.testing.assert_allclose(logits, solution["temperature"] * margins, rtol=TOLERANCE, atol=TOLERANCE)
    # The temperature is the one that minimizes the eval split's log loss.
    assert solution["temperature"] == pytest.approx(fit_temperature(margins, evaluation[1], False), rel=TOLERANCE)


def test_the_temperature_recovers_the_scale_of_logits_the_labels_were_drawn_with():
    rng = np.random.default_rng(18)
    margins = rng.normal(size=(4000, 3))
    labels = np.array([rng.choice(3, p=p) for p in softmax(2.5 * margins, axis=1)])
    assert fit_temperature(margins, labels, multi_label=False) == pytest.approx(2.5, rel=0.1)
    multi_hot = (rng.random((4000, 2)) < expit(0.5 * margins[:, :2])).astype(np.float64)
    assert fit_temperature(margins[:, :2], multi_hot, multi_label=True) == pytest.approx(0.5, rel=0.1)


def test_the_eval_split_chooses_between_the_losses_and_reports_every_score():
    train, evaluation = documents(240, seed=19), documents(80, seed=20)
    layer, solution = solved_layer(TFIDF, train, evaluation, losses=(LOGISTIC, SQUARED_HINGE))
    scores = {(loss, float(c)): score for loss, by_c in solution["eval_score"].items() for c, score in by_c.items()}
    assert set(scores) == {(loss, c) for loss, grid in C_GRIDS.items() for c in grid}
    assert scores[solution["loss"], solution["c"]] == max(scores.values())
    predicted = layer(tf.constant(evaluation[0])).numpy().argmax(axis=1)
    assert np.mean(predicted == evaluation[1]) == pytest.approx(max(scores.values()), abs=1e-4)


@pytest.mark.parametrize("loss", [LOGISTIC, SQUARED_HINGE])
def test_a_class_no_training_document_has_keeps_zero_weights_and_the_others_are_solved(loss):
    (ids, classes), evaluation = documents(120, seed=21, classes=2), documents(40, seed=22)
    layer, _ = solved_layer(TFIDF, (ids, classes), evaluation, losses=(loss,))  # three outputs, classes 0 and 1
    weights = layer.weights_table.numpy()
    assert not np.any(weights[:, 2]) and np.any(weights[:, 0]) and np.any(weights[:, 1])
    predicted = layer(tf.constant(ids)).numpy().argmax(axis=1)
    assert np.mean(predicted == classes) > 0.7


@pytest.mark.parametrize("weighting, multi_label", [(TFIDF, False), (NAIVE_BAYES, False), (NAIVE_BAYES, True)])
def test_scales_from_the_solvers_matrix_are_those_the_batches_give(weighting, multi_label):
    ids, classes = documents(120, seed=23)
    labels = np.stack([classes == 0, classes != 1], axis=1).astype(np.float32) if multi_label else classes
    outputs = 2 if multi_label else CLASSES
    from_batches = ngram_logits_for(weighting, outputs, VOCAB, max_ngram=2, num_buckets=64)
    from_counts = ngram_logits_for(weighting, outputs, VOCAB, max_ngram=2, num_buckets=64)
    for layer in (from_batches, from_counts):
        layer.build((None, None))
    from_batches.set_scales(feature_scales(from_batches, batches(ids, labels), weighting, multi_label))
    set_scales_from_counts(from_counts, *base_features(from_counts, batches(ids, labels)), weighting, multi_label)
    np.testing.assert_allclose(from_counts.scales.numpy(), from_batches.scales.numpy(), rtol=1e-6)
