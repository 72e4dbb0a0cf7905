"""The n-gram path: which n-grams a batch holds, the linear logits over them and their fixed scales."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import scipy.sparse as sp
import tensorflow as tf
from sklearn.feature_extraction.text import TfidfTransformer

from model.classifier import build_classifier
from model.ngram_logits import NAIVE_BAYES, TFIDF, NgramLogits, feature_scales, ngram_logits_for

VOCAB = 50


def present(layer: NgramLogits, token_ids) -> set[tuple[int, int]]:
    documents, rows = layer.present_rows(tf.constant(token_ids, tf.int64))
    pairs = list(zip(documents.numpy().tolist(), rows.numpy().tolist()))
    assert len(pairs) == len(set(pairs)), "an n-gram is counted once per document"
    return set(pairs)


def test_unigrams_are_token_rows_and_each_ngram_counts_once_per_document():
    layer = NgramLogits(2, VOCAB, max_ngram=2, num_buckets=1000)
    pairs = present(layer, [[5, 6, 5, 6, 0, 0]])  # "a b a b": unigrams a, b; bigrams "a b" (twice), "b a"
    unigrams = {row for _, row in pairs if row < VOCAB}
    bigrams = {row for _, row in pairs if row >= VOCAB}
    assert unigrams == {5, 6} and len(bigrams) == 2 and all(row < VOCAB + 1000 for row in bigrams)


def test_windows_that_reach_into_padding_add_nothing():
    layer = NgramLogits(2, VOCAB, max_ngram=3, num_buckets=1000)
    assert present(layer, [[7, 0, 0, 0]]) == {(0, 7)}
    assert present(layer, [[0, 0, 0, 0]]) == set()
    two_tokens = present(layer, [[7, 8, 0, 0]])
    assert len(two_tokens) == 3  # 7, 8 and "7 8"; no trigram
    assert present(layer, [[7, 8]]) == two_tokens  # trailing padding changes nothing


def test_the_same_ngram_lands_in_the_same_row_in_any_document_and_batch():
    layer = NgramLogits(2, VOCAB, max_ngram=3, num_buckets=97)
    alone = present(layer, [[9, 10, 11, 0]])
    among = present(layer, [[1, 2, 0, 0, 0], [4, 9, 10, 11, 4]])
    assert {row for _, row in alone} <= {row for document, row in among if document == 1}
    assert not {row for _, row in alone if row >= VOCAB} & {row for document, row in among if document == 0}


def test_order_matters_for_ngrams_of_two_or_more_tokens():
    layer = NgramLogits(2, VOCAB, max_ngram=2, num_buckets=2**20)
    forward = {row for _, row in present(layer, [[3, 4]]) if row >= VOCAB}
    backward = {row for _, row in present(layer, [[4, 3]]) if row >= VOCAB}
    assert forward != backward


def test_an_unseen_ngram_and_the_largest_token_id_give_finite_logits():
    layer = NgramLogits(3, VOCAB, max_ngram=3, num_buckets=5)
    logits = layer(tf.constant([[VOCAB - 1, VOCAB - 1, 1, 2, 0]], tf.int64))
    assert logits.shape == (1, 3) and np.all(np.isfinite(logits.numpy()))


def test_logits_sum_weights_times_scales_over_the_ngrams_present():
    layer = NgramLogits(2, VOCAB, max_ngram=1)
    layer.build((None, None))
    weights = np.zeros((VOCAB, 2), np.float32)
    weights[5], weights[6] = [1.0, -1.0], [0.5, 2.0]
    layer.weights_table.assign(weights)
    scales = np.ones((VOCAB, 2), np.float32)
    scales[6] = [2.0, 3.0]
    layer.set_scales(scales)
    logits = layer(tf.constant([[5, 6, 6, 0], [6, 0, 0, 0]], tf.int64)).numpy()
    np.testing.assert_allclose(logits, [[1.0 + 1.0, -1.0 + 6.0], [1.0, 6.0]])


def test_normalize_divides_by_the_length_of_the_scaled_vector():
    layer = NgramLogits(1, VOCAB, max_ngram=1, normalize=True, scale_per_output=False)
    layer.build((None, None))
    layer.weights_table.assign(np.ones((VOCAB, 1), np.float32))
    scales = np.ones((VOCAB, 1), np.float32)
    scales[5], scales[6] = 3.0, 4.0
    layer.set_scales(scales)
    np.testing.assert_allclose(layer(tf.constant([[5, 6]], tf.int64)).numpy(), [[(3.0 + 4.0) / 5.0]], rtol=1e-6)


def test_sublinear_counts_weigh_an_ngram_by_one_plus_the_log_of_its_count():
    layer = NgramLogits(1, VOCAB, max_ngram=1, sublinear_counts=True)
    layer.build((None, None))
    layer.weights_table.assign(np.ones((VOCAB, 1), np.float32))
    np.testing.assert_allclose(layer(tf.constant([[5, 5, 5, 6]], tf.int64)).numpy(), [[1.0 + np.log(3.0) + 1.0]],
                               rtol=1e-6)


def test_the_tfidf_layer_is_scikit_learns_sublinear_unit_length_tfidf_vector_times_the_weights():
    layer = ngram_logits_for(TFIDF, 1, VOCAB, max_ngram=1, num_buckets=1)
    layer.build((None, None))
    rng = np.random.default_rng(0)
    weights, idf = rng.normal(size=(VOCAB, 1)), rng.uniform(1, 3, size=(VOCAB, 1))
    layer.weights_table.assign(weights.astype(np.float32))
    layer.set_scales(idf)
    document = [5, 5, 9, 5, 7, 9]
    counts = np.bincount(document, minlength=VOCAB).astype(float)
    vector = np.where(counts > 0, 1 + np.log(np.maximum(counts, 1)), 0) * idf[:, 0]
    expected = (vector / np.linalg.norm(vector)) @ weights
    np.testing.assert_allclose(layer(tf.constant([document], tf.int64)).numpy()[0], expected, rtol=1e-5)


def batches_of(documents, labels):
    width = max(len(d) for d in documents)
    token_ids = np.array([d + [0] * (width - len(d)) for d in documents], np.int64)
    return [(tf.constant(token_ids), tf.constant(labels))]


def test_naive_bayes_scales_are_the_log_count_ratios_one_class_against_the_rest():
    layer = NgramLogits(2, 10, max_ngram=1)
    documents = [[1, 2], [1, 1, 3], [2, 3]]  # token 1 in two documents of class 0, token 2 in one of each
    scales = feature_scales(layer, batches_of(documents, [0, 0, 1]), NAIVE_BAYES, multi_label=False)
    counts = np.zeros((10, 2))
    counts[1, 0], counts[2, 0], counts[3, 0] = 2, 1, 1
    counts[2, 1], counts[3, 1] = 1, 1
    rest = counts[:, ::-1]  # with two classes, "the rest" of one is the other
    expected = np.log((counts + 1) / (counts + 1).sum(0)) - np.log((rest + 1) / (rest + 1).sum(0))
    np.testing.assert_allclose(scales, expected)
    assert scales[1, 0] > 0 > scales[1, 1]  # token 1 speaks for class 0


def test_naive_bayes_scales_for_multi_label_count_each_labels_documents():
    layer = NgramLogits(2, 10, max_ngram=1)
    scales = feature_scales(layer, batches_of([[1], [1], [2]], [[1, 1], [1, 0], [0, 1]]), NAIVE_BAYES,
                            multi_label=True)
    assert scales[1, 0] > 0 and scales[2, 0] < 0 and scales[2, 1] > 0


def test_tfidf_scales_match_scikit_learns_smoothed_idf():
    layer = NgramLogits(3, 10, max_ngram=1, scale_per_output=False)
    documents = [[1, 2, 2], [1, 3], [4, 1, 5, 0]]
    scales = feature_scales(layer, batches_of(documents, [0, 1, 2]), TFIDF, multi_label=False)
    binary = sp.lil_matrix((3, 10))
    for i, document in enumerate(documents):
        for token in set(document) - {0}:
            binary[i, token] = 1
    np.testing.assert_allclose(scales[:, 0], TfidfTransformer().fit(binary).idf_, rtol=1e-6)


def test_a_classifier_of_the_ngram_path_alone_outputs_probabilities():
    layer = ngram_logits_for(TFIDF, 3, VOCAB, max_ngram=2, num_buckets=64)
    model = build_classifier(None, None, layer, activation="softmax")
    probabilities = model(tf.constant([[3, 4, 5, 0], [0, 0, 0, 0]], tf.int64)).numpy()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-6)
    assert model.get_layer("ngram_logits").normalize


def test_the_layer_survives_a_keras_save_and_load(tmp_path):
    layer = ngram_logits_for(NAIVE_BAYES, 2, VOCAB, max_ngram=3, num_buckets=32)
    model = build_classifier(None, None, layer)
    layer.weights_table.assign(np.random.default_rng(0).normal(size=layer.weights_table.shape).astype(np.float32))
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    token_ids = tf.constant([[3, 4, 5, 6, 0]], tf.int64)
    np.testing.assert_allclose(loaded(token_ids).numpy(), model(token_ids).numpy(), rtol=1e-6)


@pytest.mark.parametrize("bad", [{"max_ngram": 0}, {"num_buckets": 0}])
def test_bad_sizes_are_refused(bad):
    with pytest.raises(ValueError, match="must be at least 1"):
        NgramLogits(2, VOCAB, **{"max_ngram": 2, "num_buckets": 8, **bad})
