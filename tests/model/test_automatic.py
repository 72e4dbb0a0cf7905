"""The settings chosen from stats.json: different for short and long documents, never over a given value."""

from __future__ import annotations

import dataclasses

import pytest

from model.automatic import choose_settings
from model.data import PreprocessedData
from schemas.config import JobConfig
from schemas.config_loader import load_job_config
from schemas.errors import UserError


def corpus(median_tokens: int, labels: int = 2, examples: int = 5000, multi_label: bool = False) -> PreprocessedData:
    return PreprocessedData(
        data_dir="prep", vocab_size=1000, max_seq_length=1024, label_names=tuple(f"l{i}" for i in range(labels)),
        multi_label=multi_label, train_examples=examples, eval_examples=500, train_label_counts={}, tokenizer="word",
        feature_spec={}, token_length={"mean": median_tokens, "p50": median_tokens, "p95": 3 * median_tokens})


SHORT_TEXTS = corpus(median_tokens=12, labels=6)
MANY_SHORT_TEXTS = corpus(median_tokens=9, labels=2, examples=60000)
LONG_REVIEWS = corpus(median_tokens=210, labels=2, examples=22500)
LONG_POSTS = corpus(median_tokens=300, labels=20, examples=10000)


def test_many_short_texts_get_a_bilstm_with_word_pairs_and_long_documents_the_solved_ngram_path_alone():
    short, short_choices = choose_settings(JobConfig(), MANY_SHORT_TEXTS)
    long, long_choices = choose_settings(JobConfig(), LONG_REVIEWS)
    assert (short.train.encoder, short.ngrams.max_ngram, short.ngrams.fit, short.train.batch_size) == (
        "bilstm", 2, "train", 64)
    assert (long.train.encoder, long.ngrams.max_ngram, long.ngrams.fit, long.train.batch_size) == (
        "none", 3, "solve", 256)
    assert short.ngrams.weighting == long.ngrams.weighting == "naive_bayes"  # two classes
    assert short.train.epochs == 3 and long.train.epochs == 1  # the solved path only records its loss
    assert set(long_choices) == {"train.encoder", "ngrams.max_ngram", "ngrams.num_buckets", "ngrams.weighting",
                                 "ngrams.fit", "train.batch_size", "train.epochs"}
    assert "median 210 tokens" in long_choices["train.encoder"]["reason"]
    assert short_choices["train.encoder"]["value"] == "bilstm"


def test_a_small_corpus_of_short_texts_gets_the_solved_ngram_path_alone_with_word_pairs():
    job, choices = choose_settings(JobConfig(), SHORT_TEXTS)
    assert (job.train.encoder, job.ngrams.max_ngram, job.ngrams.fit, job.ngrams.weighting) == (
        "none", 2, "solve", "tfidf")  # 6 classes
    assert "small corpus" in choices["train.encoder"]["reason"]


def test_long_documents_of_many_classes_get_tfidf_word_pairs_and_a_larger_learning_rate_when_trained():
    solved, choices = choose_settings(JobConfig(), LONG_POSTS)
    assert (solved.train.encoder, solved.ngrams.max_ngram, solved.ngrams.weighting) == ("none", 2, "tfidf")
    assert solved.train.learning_rate is None and "train.learning_rate" not in choices
    trained, choices = choose_settings(load_job_config(None, {"ngrams.fit": "train"}), LONG_POSTS)
    assert trained.train.learning_rate == choices["train.learning_rate"]["value"] == 1e-2
    assert trained.train.epochs == 8


def test_a_large_corpus_of_short_texts_trains_fewer_epochs():
    job, _ = choose_settings(JobConfig(), corpus(median_tokens=8, examples=60000))
    assert job.train.epochs == 3
    job, _ = choose_settings(load_job_config(None, {"train.encoder": "bilstm"}), corpus(median_tokens=8))
    assert job.train.epochs == 10 and job.ngrams.fit == "train"  # a small corpus: more passes


def test_hashed_ngrams_get_four_buckets_per_training_token_within_bounds():
    few, _ = choose_settings(JobConfig(), corpus(median_tokens=10, examples=100))  # 1,000 tokens
    some, _ = choose_settings(JobConfig(), corpus(median_tokens=10, examples=5000))  # 50,000 tokens
    many, _ = choose_settings(JobConfig(), LONG_REVIEWS)  # 4.7 million tokens
    assert (few.ngrams.num_buckets, some.ngrams.num_buckets, many.ngrams.num_buckets) == (2**12, 2**18, 2**20)
    given, choices = choose_settings(load_job_config(None, {"ngrams.num_buckets": 77}), LONG_REVIEWS)
    assert given.ngrams.num_buckets == 77 and "ngrams.num_buckets" not in choices


def test_multi_label_corpora_get_tfidf_weighting():
    job, _ = choose_settings(JobConfig(), corpus(median_tokens=8, labels=2, multi_label=True))
    assert job.ngrams.weighting == "tfidf"


@pytest.mark.parametrize("overrides, expected", [
    ({"train.encoder": "bilstm"}, {"train.encoder": "bilstm", "ngrams.max_ngram": 2, "ngrams.fit": "train"}),
    ({"ngrams.fit": "train"}, {"ngrams.fit": "train", "train.encoder": "none", "train.epochs": 8}),
    ({"ngrams.fit": "solve", "train.encoder": "bilstm"}, {"ngrams.fit": "solve", "train.encoder": "bilstm"}),
    ({"train.encoder": "albert"}, {"train.encoder": "albert"}),
    ({"ngrams.max_ngram": 0}, {"ngrams.max_ngram": 0, "train.encoder": "none"}),
    ({"train.epochs": 2, "train.batch_size": 32}, {"train.epochs": 2, "train.batch_size": 32}),
    ({"ngrams.weighting": "tfidf"}, {"ngrams.weighting": "tfidf"}),
    ({"ngrams.num_buckets": 5}, {"ngrams.num_buckets": 5}),
    ({"train.learning_rate": 0.5}, {"train.learning_rate": 0.5}),
])
def test_an_explicit_setting_always_wins_and_is_not_reported_as_chosen(overrides, expected):
    if overrides.get("ngrams.max_ngram") == 0:
        with pytest.raises(UserError, match="encoder none leaves only the n-gram path"):
            choose_settings(load_job_config(None, overrides), LONG_REVIEWS)
        return
    job, choices = choose_settings(load_job_config(None, overrides), LONG_REVIEWS)
    flat = {f"{section}.{key}": value for section, values in job.to_dict().items() for key, value in values.items()}
    for key, value in expected.items():
        assert flat[key] == value
    assert not set(overrides) & set(choices)


def test_fine_tuning_a_pretrained_encoder_chooses_albert_without_ngrams():
    job, _ = choose_settings(load_job_config(None, {"train.init_from": "enc"}), SHORT_TEXTS)
    assert (job.train.encoder, job.ngrams.max_ngram) == ("albert", 0)


def test_stats_without_lengths_count_as_short_texts():
    job, _ = choose_settings(JobConfig(), dataclasses.replace(MANY_SHORT_TEXTS, token_length=None))
    assert job.train.encoder == "bilstm"
