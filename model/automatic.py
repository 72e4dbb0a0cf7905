"""The settings a job leaves to the data, chosen from what preprocessing measured (stats.json).

Every choice here fills a setting left at `auto`/unset; a value from a flag or the job file is
never replaced. The rules, measured on the benchmark corpora (BENCHMARKS.md, "Out of the box"):

- Long documents (median over LONG_DOCUMENT_TOKENS tokens) are told apart by their words and word
  pairs, and so are the short texts of a small corpus (up to LARGE_CORPUS_EXAMPLES training
  examples), where a sequence encoder trained from scratch overfits: the n-gram path alone
  (encoder `none`), 1..3-grams for long documents of two classes, else 1..2-grams.
- Short texts of a large corpus, where word order pays: the BiLSTM with 1..2-grams beside it.
- With train.init_from: ALBERT (the pretrained encoder), no n-gram path.
- Fit: the n-gram path alone is solved (a linear model to its optimum, `model.ngram_solver`)
  and then has nothing left to train: one epoch records its loss. Beside an encoder it trains with
  it, by gradient descent, in batches of 64.
- Weighting: naive-Bayes log-count ratios (NBSVM) for two classes; TF-IDF for more classes (on 20
  Newsgroups a ratio per class measured lower) and for multi-label corpora.
- Epochs beside an encoder: enough passes for the corpus size, early stopping picking the best.
- Buckets for hashed n-grams: four per training token, as a power of two between 2^10 and 2^20, so
  a small corpus does not carry (and update) a million rows it never fills.
- Learning rate: 1e-2 for the n-gram path alone trained by gradient descent with TF-IDF weighting
  (its length-normalized inputs are small), else the trainer's defaults.
"""

from __future__ import annotations

import dataclasses
import logging
import math

from model.data import PreprocessedData
from schemas.config import AUTO, NGRAM_SOLVE, NGRAM_TRAIN, JobConfig
from schemas.errors import UserError

LONG_DOCUMENT_TOKENS = 100  # median token count above which a corpus counts as long documents
LARGE_CORPUS_EXAMPLES = 20000  # training examples above which fewer epochs suffice
NGRAM_ONLY_TFIDF_LEARNING_RATE = 1e-2
MIN_BUCKETS, MAX_BUCKETS = 2**10, 2**20
BUCKETS_PER_TOKEN = 4


def choose_settings(job: JobConfig, data: PreprocessedData) -> tuple[JobConfig, dict]:
    """`job` with every automatic setting filled in from `data`, and {setting: {"value", "reason"}}
    for each one that was chosen (empty when the job named them all)."""
    train, ngrams = job.train, job.ngrams
    median_tokens = (data.token_length or {}).get("p50")
    long_documents = median_tokens is not None and median_tokens > LONG_DOCUMENT_TOKENS
    corpus = (f"median {median_tokens} tokens, {data.train_examples} training examples, "
              f"{data.num_labels} {'labels' if data.multi_label else 'classes'}")
    chosen: dict[str, dict] = {}

    def choose(key: str, value, reason: str):
        chosen[key] = {"value": value, "reason": f"{reason} ({corpus})"}
        return value

    encoder = train.encoder
    if encoder == AUTO:
        if train.init_from:
            encoder = choose("train.encoder", "albert", "a pretrained encoder to fine-tune")
        elif long_documents:
            encoder = choose("train.encoder", "none", "long documents: the n-gram path alone")
        elif data.train_examples <= LARGE_CORPUS_EXAMPLES:
            encoder = choose("train.encoder", "none", "short texts, a small corpus: the n-gram path alone")
        else:
            encoder = choose("train.encoder", "bilstm", "short texts, a large corpus: a BiLSTM reads the word order")
    max_ngram = ngrams.max_ngram
    if max_ngram is None:
        if encoder == "albert" and train.init_from:
            max_ngram = choose("ngrams.max_ngram", 0, "fine-tuning a pretrained encoder")
        elif encoder == "none" and long_documents and data.num_labels == 2 and not data.multi_label:
            max_ngram = choose("ngrams.max_ngram", 3, "long documents, two classes")
        else:
            max_ngram = choose("ngrams.max_ngram", 2, "word pairs beside the encoder" if encoder != "none"
                               else "words and word pairs")
    if encoder == "none" and max_ngram == 0:
        raise UserError("train.encoder none leaves only the n-gram path, and ngrams.max_ngram 0 turns it off: "
                        "choose an encoder or a max_ngram of at least 1.")
    num_buckets = ngrams.num_buckets
    if num_buckets is None and max_ngram and max_ngram > 1:
        tokens = data.train_examples * float((data.token_length or {}).get("mean") or data.max_seq_length)
        wanted = 1 << max(0, math.ceil(math.log2(max(BUCKETS_PER_TOKEN * tokens, 1.0))))
        num_buckets = choose("ngrams.num_buckets", int(min(MAX_BUCKETS, max(MIN_BUCKETS, wanted))),
                             f"{BUCKETS_PER_TOKEN} per training token, at most {MAX_BUCKETS}")
    weighting = ngrams.weighting
    if weighting == AUTO and max_ngram:
        two_classes = data.num_labels == 2 and not data.multi_label
        weighting = choose("ngrams.weighting", "naive_bayes" if two_classes else "tfidf",
                           "two classes: naive-Bayes ratios" if two_classes else "more classes: TF-IDF")
    fit = ngrams.fit
    if fit == AUTO and max_ngram:
        fit = choose("ngrams.fit", NGRAM_SOLVE if encoder == "none" else NGRAM_TRAIN,
                     "the n-gram path alone: a linear model, solved" if encoder == "none"
                     else "beside an encoder: trained with it")
    solved_alone = encoder == "none" and fit == NGRAM_SOLVE
    batch_size = train.batch_size
    if batch_size is None:
        batch_size = choose("train.batch_size", 256 if encoder == "none" else 64,
                            "the n-gram path alone" if encoder == "none" else "an encoder")
    epochs = train.epochs
    if epochs is None:
        if solved_alone:
            epochs = choose("train.epochs", 1, "the solved n-gram path has nothing left to train: one pass "
                            "records its loss")
        elif encoder == "none":
            epochs = choose("train.epochs", 8, "the n-gram path alone: cheap epochs, early stopping picks the best")
        elif data.train_examples > LARGE_CORPUS_EXAMPLES:
            epochs = choose("train.epochs", 3, "a large corpus")
        else:
            epochs = choose("train.epochs", 10, "a small corpus, early stopping picks the best")
    learning_rate = train.learning_rate
    if learning_rate is None and encoder == "none" and fit == NGRAM_TRAIN and weighting == "tfidf":
        learning_rate = choose("train.learning_rate", NGRAM_ONLY_TFIDF_LEARNING_RATE,
                               "the n-gram path alone on length-normalized TF-IDF inputs")

    resolved = dataclasses.replace(
        job,
        train=dataclasses.replace(train, encoder=encoder, epochs=epochs, batch_size=batch_size,
                                  learning_rate=learning_rate),
        ngrams=dataclasses.replace(ngrams, max_ngram=max_ngram, weighting=weighting, fit=fit,
                                   num_buckets=num_buckets or 1))
    for key, choice in chosen.items():
        logging.info("Chose %s = %s: %s.", key, choice["value"], choice["reason"])
    return resolved, chosen
