"""The wide path: which word n-grams a document holds → class logits, a linear model inside the graph.

A bag of word 1..n-grams, weighted and fed to a linear layer. Two weightings, both fixed from the
training documents before training starts:
- naive_bayes: each n-gram present counts once, times its log-count ratio per class, one class
  against the rest: NBSVM (Wang & Manning, 2012), the strongest linear model on two-class sentiment;
- tfidf: each n-gram's inverse document frequency times 1 + log(its count), the document's vector
  scaled to unit length, as TF-IDF + logistic regression does; it measured higher with many classes.
Long documents reward both: they are told apart by their words and word pairs. The n-grams are
made from the token ids the encoder reads, inside the model, so training, the export and scoring
see the same features by construction, and the export still takes raw text.
"""

from __future__ import annotations

import logging
import time

import keras
import numpy as np
import tensorflow as tf

from model.data import PreprocessedData
from model.inputs import make_dataset
from schemas import features

NGRAM_LAYER_NAME = "ngram_logits"
NAIVE_BAYES = "naive_bayes"
TFIDF = "tfidf"
WEIGHTINGS = (NAIVE_BAYES, TFIDF)

# n-grams of two or more tokens share `num_buckets` rows, addressed by a polynomial hash of their
# ids taken modulo this prime (2^31 - 1): integer arithmetic only, so a token sequence lands in the
# same bucket in every process, and any unseen sequence lands in some bucket.
_HASH_MODULUS = 2_147_483_647


@keras.saving.register_keras_serializable(package="albert_pipelines")
class NgramLogits(keras.layers.Layer):
    """Token ids (B, T) → logits (B, num_outputs) of a linear model over the n-grams present.

    Unigrams have a row each (the token id); longer n-grams are hashed into `num_buckets` shared
    rows. A document's logits are `bias + sum over its distinct n-grams f of scales[f] * weights[f]`,
    each term times 1 + log(count of f) with `sublinear_counts`, the sum divided by the root of the
    sum of its squared scales with `normalize` (a unit-length input vector, as TF-IDF has). `scales` are fixed before training (`set_scales`, from
    `feature_scales`): naive-Bayes log-count ratios per output, or inverse document frequencies;
    all ones (the initial value) make it a linear model over binary n-gram features. Padding
    (`features.PAD_ID`) and windows that reach into it add nothing.

    Args:
        num_outputs: int. Number of classes (softmax) or labels (sigmoid).
        vocab_size: int. Number of token ids, padding included.
        max_ngram: int. Longest n-gram, in tokens (1: unigrams only).
        num_buckets: int. Rows shared by the hashed n-grams of 2..max_ngram tokens.
        normalize: bool. Whether each document's scaled n-gram vector is divided by its length.
        scale_per_output: bool. One scale per row and output (naive Bayes), or one per row (idf).
        sublinear_counts: bool. Whether an n-gram counts 1 + log(its count in the document), as
            TF-IDF's sublinear term frequency, rather than once.
        **kwargs: base layer arguments (`name`, `dtype`, `trainable`).

    Call arguments:
        token_ids: int tensor (B, T), any T, `features.PAD_ID` after the last token.

    Returns:
        float32 tensor (B, num_outputs).
    """

    def __init__(self, num_outputs: int, vocab_size: int, max_ngram: int = 3, num_buckets: int = 2**20,
                 normalize: bool = False, scale_per_output: bool = True, sublinear_counts: bool = False, **kwargs):
        if max_ngram < 1:
            raise ValueError(f"`max_ngram` must be at least 1. Received: max_ngram={max_ngram}")
        if num_buckets < 1:
            raise ValueError(f"`num_buckets` must be at least 1. Received: num_buckets={num_buckets}")
        super().__init__(**kwargs)
        self.num_outputs = num_outputs
        self.vocab_size = vocab_size
        self.max_ngram = max_ngram
        self.num_buckets = num_buckets
        self.normalize = normalize
        self.scale_per_output = scale_per_output
        self.sublinear_counts = sublinear_counts

    @property
    def num_rows(self) -> int:
        return self.vocab_size + (self.num_buckets if self.max_ngram > 1 else 0)

    def build(self, input_shape):
        # float32 whatever the dtype policy: sums over a thousand n-grams lose too much in 16 bits.
        self.weights_table = self.add_weight(name="weights", shape=(self.num_rows, self.num_outputs),
                                             initializer="zeros", dtype="float32")
        scale_columns = self.num_outputs if self.scale_per_output else 1
        self.scales = self.add_weight(name="scales", shape=(self.num_rows, scale_columns),
                                      initializer="ones", dtype="float32", trainable=False)
        self.bias = self.add_weight(name="bias", shape=(self.num_outputs,), initializer="zeros", dtype="float32")
        self.built = True

    def present_rows_and_counts(self, token_ids):
        """The distinct (document, row) pairs of a batch and how often each occurs: three int vectors."""
        token_ids = tf.cast(token_ids, tf.int64)
        shape = tf.shape(token_ids, out_type=tf.int64)
        width = shape[1]
        documents = tf.broadcast_to(tf.range(shape[0])[:, None], shape)
        keys = [token_ids]  # unigrams: their own rows
        valid = [tf.not_equal(token_ids, features.PAD_ID)]
        hashed = token_ids
        for n in range(2, self.max_ngram + 1):
            # hashed[:, i] covers tokens i..i+n-1; windows past the end read padding and are dropped.
            shifted = tf.pad(token_ids[:, n - 1:], [[0, 0], [0, n - 1]])[:, :width]
            if n == 2:
                hashed = tf.math.floormod(token_ids * self.vocab_size + shifted + 1, _HASH_MODULUS)
            else:
                hashed = tf.math.floormod(hashed * self.vocab_size + shifted + n, _HASH_MODULUS)
            keys.append(self.vocab_size + tf.math.floormod(hashed * 31 + n, self.num_buckets))
            valid.append(tf.not_equal(shifted, features.PAD_ID))
        keys, valid = tf.concat(keys, axis=1), tf.concat(valid, axis=1)
        documents = tf.tile(documents, [1, self.max_ngram])
        flat = tf.boolean_mask(documents * self.num_rows + keys, valid)
        flat, _, counts = tf.unique_with_counts(flat)  # each n-gram once per document, and how often
        return flat // self.num_rows, flat % self.num_rows, counts

    def present_rows(self, token_ids):
        """The distinct (document, row) pairs of a batch: two int64 vectors of the same length."""
        documents, rows, _ = self.present_rows_and_counts(token_ids)
        return documents, rows

    def call(self, token_ids):
        documents, rows, counts = self.present_rows_and_counts(token_ids)
        scales = tf.gather(self.scales, rows)  # (pairs, num_outputs or 1)
        if self.sublinear_counts:  # 1 + log(count), as TF-IDF's sublinear term frequency
            scales = scales * (1.0 + tf.math.log(tf.cast(counts, tf.float32)))[:, None]
        batch_size = tf.shape(token_ids)[0]
        logits = tf.math.unsorted_segment_sum(tf.gather(self.weights_table, rows) * scales, documents, batch_size)
        if self.normalize:
            squares = tf.math.unsorted_segment_sum(tf.square(scales), documents, batch_size)
            logits = logits / tf.sqrt(tf.maximum(squares, 1e-12))
        return logits + self.bias

    def set_scales(self, scales: np.ndarray) -> None:
        self.scales.assign(np.broadcast_to(np.asarray(scales, dtype=np.float32), self.scales.shape))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_outputs)

    def get_config(self):
        config = super().get_config()
        config.update({"num_outputs": self.num_outputs, "vocab_size": self.vocab_size,
                       "max_ngram": self.max_ngram, "num_buckets": self.num_buckets, "normalize": self.normalize,
                       "scale_per_output": self.scale_per_output, "sublinear_counts": self.sublinear_counts})
        return config


def ngram_logits_for(weighting: str, num_outputs: int, vocab_size: int, max_ngram: int, num_buckets: int
                     ) -> NgramLogits:
    """The layer for a weighting: naive_bayes (ratios per output, n-grams present or not, unnormalized,
    as NBSVM) or tfidf (one idf per row, sublinear counts, unit-length documents, as scikit-learn's
    TfidfVectorizer(sublinear_tf=True))."""
    if weighting not in WEIGHTINGS:
        raise ValueError(f"`weighting` must be one of {WEIGHTINGS}. Received: weighting={weighting!r}")
    tfidf = weighting == TFIDF
    return NgramLogits(num_outputs, vocab_size, max_ngram, num_buckets, normalize=tfidf, scale_per_output=not tfidf,
                       sublinear_counts=tfidf, dtype="float32", name=NGRAM_LAYER_NAME)


def feature_scales(layer: NgramLogits, batches, weighting: str, multi_label: bool, smoothing: float = 1.0
                   ) -> np.ndarray:
    """The fixed scale of every row: (rows, num_outputs) log-count ratios for `naive_bayes`, (rows, 1)
    inverse document frequencies for `tfidf`, counted over `batches` of the training documents.

    `batches` yields (token_ids [B, T], labels): class ids [B], or multi-hot [B, num_outputs] when
    `multi_label`. Naive Bayes, for output c, with p the documents of c holding each row and q
    those of the rest: ratio = log((p + a) / |p + a|₁) - log((q + a) / |q + a|₁), a = `smoothing`
    (Wang & Manning, 2012). TF-IDF: idf = log((1 + N) / (1 + df)) + 1, scikit-learn's smoothed form.
    Rows never seen get one constant per output (naive Bayes: log(|q + a|₁ / |p + a|₁)) or the
    largest idf.
    """
    if weighting not in WEIGHTINGS:
        raise ValueError(f"`weighting` must be one of {WEIGHTINGS}. Received: weighting={weighting!r}")
    rows_by_output = np.zeros((layer.num_rows, layer.num_outputs), np.float64)
    rows_total = np.zeros(layer.num_rows, np.float64)
    documents_total = 0
    present_rows = tf.function(layer.present_rows)
    for token_ids, labels in batches:
        documents, rows = (t.numpy() for t in present_rows(token_ids))
        labels = np.asarray(labels)
        documents_total += len(labels)
        rows_total += np.bincount(rows, minlength=layer.num_rows)
        if weighting == TFIDF:
            continue
        if multi_label:
            for output in range(layer.num_outputs):
                chosen = labels[documents, output] > 0
                rows_by_output[:, output] += np.bincount(rows[chosen], minlength=layer.num_rows)
        else:
            flat = rows * layer.num_outputs + labels[documents].astype(np.int64)
            rows_by_output += np.bincount(flat, minlength=layer.num_rows * layer.num_outputs).reshape(
                layer.num_rows, layer.num_outputs)
    return scales_from_document_counts(rows_total, rows_by_output, documents_total, weighting, smoothing)


def scales_from_document_counts(rows_total: np.ndarray, rows_by_output: np.ndarray, documents_total: int,
                                weighting: str, smoothing: float = 1.0) -> np.ndarray:
    """`feature_scales` from its counts: the documents holding each row (rows,), those of them in each
    output (rows, num_outputs; unused for tfidf) and the documents counted."""
    if weighting == TFIDF:
        return (np.log((1.0 + documents_total) / (1.0 + rows_total)) + 1.0)[:, None]
    positive = rows_by_output + smoothing
    negative = rows_total[:, None] - rows_by_output + smoothing
    return np.log(positive / positive.sum(axis=0)) - np.log(negative / negative.sum(axis=0))


def fit_feature_scales(layer: NgramLogits, data: PreprocessedData, weighting: str) -> None:
    """Sets `layer`'s scales from one pass over the training split (before training starts)."""
    started = time.perf_counter()
    batches = make_dataset(data, features.TRAIN_SPLIT, 256, training=False)
    layer.set_scales(feature_scales(layer, batches, weighting, data.multi_label))
    logging.info("N-gram %s weights from %d training documents in %.1f s.", weighting, data.train_examples,
                 time.perf_counter() - started)
