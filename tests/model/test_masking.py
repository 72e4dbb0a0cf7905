"""Dynamic masking statistics, the pretraining inputs and model, and what pretraining refuses (no training).

Tolerances are 4 binomial standard errors, sqrt(p(1-p)/n), of the counts drawn here, so a correct
implementation fails about once in 16,000 runs per assertion; the draws are seeded, so it never flakes.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf

from model.data import read_preprocessed
from model.masking import MaskingSettings, batch_masking_map, choose_spans, mask_pair
from model.pretraining_data import (MASK_POSITIONS, MLM_OUTPUT, SOP_OUTPUT, make_pretrain_dataset, masking_settings,
                                    read_pretrain_data)
from model.pretraining_model import build_backbone, build_pretraining_model
from schemas import features
from schemas.config import AlbertConfig
from schemas.errors import UserError
from tests.model.pretraining_corpus import SPECIAL_TOKENS, VOCAB_SIZE, write_pretrain_dir

SETTINGS = MaskingSettings(mask_id=4, special_ids=(0, 1, 2, 3, 4), vocab_size=VOCAB_SIZE, max_predictions=20)
DRAWS = 4000


def standard_errors(p: float, n: int, k: float = 4.0) -> float:
    return k * math.sqrt(p * (1 - p) / n)


def pair(rng: np.random.Generator, length_a: int = 40, length_b: int = 39, padding: int = 10) -> np.ndarray:
    words = rng.integers(5, VOCAB_SIZE, length_a + length_b)
    return np.concatenate([[2], words[:length_a], [3], words[length_a:], [3], np.zeros(padding, np.int64)])


@pytest.fixture(scope="module")
def draws():
    rng = np.random.default_rng(0)
    token_ids = [pair(rng) for _ in range(DRAWS)]
    return token_ids, [mask_pair(ids, SETTINGS, rng) for ids in token_ids]


def test_fifteen_percent_of_the_non_special_tokens_are_chosen(draws):
    _, masked = draws
    chosen = np.array([weights.sum() for _, _, _, weights in masked])
    assert set(chosen) == {round(0.15 * 79)}  # 79 non-special tokens per pair: exactly the rounded budget


def test_at_most_max_predictions_are_chosen_in_long_pairs():
    rng = np.random.default_rng(1)
    _, positions, _, weights = mask_pair(pair(rng, 200, 200), SETTINGS, rng)
    assert weights.sum() == SETTINGS.max_predictions and len(set(positions.tolist())) == SETTINGS.max_predictions


def test_special_and_padding_tokens_are_never_chosen_and_labels_are_the_originals(draws):
    token_ids, masked = draws
    for ids, (_, positions, labels, weights) in zip(token_ids, masked):
        real = positions[weights > 0]
        assert not np.isin(ids[real], SETTINGS.special_ids).any()
        np.testing.assert_array_equal(labels[weights > 0], ids[real])
        assert (labels[weights == 0] == 0).all() and (positions[weights == 0] == 0).all()


def test_chosen_tokens_become_mask_80_random_10_unchanged_10_percent(draws):
    token_ids, masked = draws
    outcomes = {"mask": 0, "random": 0, "same": 0}
    for ids, (new_ids, positions, _, weights) in zip(token_ids, masked):
        real = positions[weights > 0]
        after, before = new_ids[real], ids[real]
        outcomes["mask"] += int((after == SETTINGS.mask_id).sum())
        outcomes["same"] += int((after == before).sum())
        outcomes["random"] += int(((after != SETTINGS.mask_id) & (after != before)).sum())
        unchosen = np.setdiff1d(np.arange(len(ids)), real)
        np.testing.assert_array_equal(new_ids[unchosen], ids[unchosen])  # nothing else changes
        assert not np.isin(after[after != SETTINGS.mask_id], [0, 1, 2, 3]).any()  # random ids are non-special
    total = sum(outcomes.values())
    # A random draw equal to the original counts as "same": 1 in 195 of the 10%.
    same_share = 0.1 + 0.1 / (VOCAB_SIZE - 5)
    assert abs(outcomes["mask"] / total - 0.8) < standard_errors(0.8, total)
    assert abs(outcomes["same"] / total - same_share) < standard_errors(same_share, total)
    assert abs(outcomes["random"] / total - (0.2 - same_share)) < standard_errors(0.1, total)


def test_span_lengths_follow_one_over_n():
    rng = np.random.default_rng(2)
    settings = MaskingSettings(mask_id=4, special_ids=(0,), vocab_size=VOCAB_SIZE, max_predictions=10 ** 6)
    lengths = []
    for _ in range(300):
        spans = choose_spans(400, settings, rng)
        lengths.extend(length for _, length in spans[:-1])  # the last span may be cut to the budget
        starts = [start for start, _ in spans]
        assert all(start + length <= following for (start, length), following in zip(spans, starts[1:]))
    counts = np.bincount(lengths, minlength=4)[1:]
    expected = np.array([1, 1 / 2, 1 / 3]) / (1 + 1 / 2 + 1 / 3)
    for observed, p in zip(counts / counts.sum(), expected):
        assert abs(observed - p) < standard_errors(p, counts.sum())


def test_the_same_seed_draws_the_same_masks_and_another_draws_others():
    ids = pair(np.random.default_rng(3))
    first = mask_pair(ids, SETTINGS, np.random.default_rng(7))
    again = mask_pair(ids, SETTINGS, np.random.default_rng(7))
    other = mask_pair(ids, SETTINGS, np.random.default_rng(8))
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not np.array_equal(first[1], other[1])


def test_each_read_of_a_batch_in_tf_data_draws_new_masks():
    batch = np.stack([pair(np.random.default_rng(i)) for i in range(4)])
    dataset = tf.data.Dataset.from_tensors(batch).repeat(2).enumerate().map(batch_masking_map(SETTINGS, seed=5))
    (ids_1, positions_1, _, _), (ids_2, positions_2, _, weights_2) = list(dataset)
    assert positions_1.shape == (4, SETTINGS.max_predictions) and ids_1.shape == batch.shape
    assert not np.array_equal(positions_1.numpy(), positions_2.numpy())
    assert weights_2.numpy().sum() == 4 * 12


@pytest.fixture(scope="module")
def pretrain_dir(tmp_path_factory):
    return write_pretrain_dir(tmp_path_factory.mktemp("pairs") / "prep", train_pairs=40, eval_pairs=10)


def test_pretraining_batches_are_padded_to_their_longest_pair_with_masks_and_labels(pretrain_dir):
    data = read_pretrain_data(pretrain_dir)
    settings = masking_settings(data, 0.15, 3, 5)
    dataset = make_pretrain_dataset(data, features.EVAL_SPLIT, 4, settings, training=False, seed=1)
    assert dataset.cardinality() == 3
    batches = list(dataset)
    inputs, labels, weights = batches[0]
    lengths = inputs["padding_mask"].numpy().sum(axis=1)
    assert inputs[features.PAIR_TOKEN_IDS].shape[1] == lengths.max() <= data.max_seq_length
    assert inputs[MASK_POSITIONS].shape == labels[MLM_OUTPUT].shape == weights[MLM_OUTPUT].shape == (4, 5)
    assert labels[SOP_OUTPUT].numpy().tolist() == [0, 1, 0, 1]
    again = list(dataset)  # held-out masks are the same at every evaluation
    np.testing.assert_array_equal(again[0][0][MASK_POSITIONS], inputs[MASK_POSITIONS])


def test_the_pretraining_model_predicts_the_vocabulary_at_each_mask_position_with_tied_embeddings():
    backbone = build_backbone(AlbertConfig(embedding_dim=8, hidden_dim=16, num_layers=1, num_heads=2,
                                           intermediate_dim=16), VOCAB_SIZE, 32, dropout=0.0)
    model = build_pretraining_model(backbone)
    ids = np.array([[2, 10, 11, 3, 12, 3, 0]])
    outputs = model({features.PAIR_TOKEN_IDS: ids, features.PAIR_SEGMENT_IDS: np.array([[0, 0, 0, 0, 1, 1, 0]]),
                     "padding_mask": (ids > 0).astype("int32"), MASK_POSITIONS: np.array([[1, 4]])})
    assert outputs[MLM_OUTPUT].shape == (1, 2, VOCAB_SIZE) and outputs[SOP_OUTPUT].shape == (1, 2)
    vocabulary_matrices = [w.path for w in model.weights if len(w.shape) == 2 and VOCAB_SIZE in w.shape]
    assert vocabulary_matrices == [backbone.token_embedding.embeddings.path]  # the head reuses it


def test_a_resumed_run_draws_other_pairs_and_masks_than_the_first_run_began_with(pretrain_dir):
    data = read_pretrain_data(pretrain_dir)
    settings = masking_settings(data, 0.15, 3, 5)

    def first_batch(already_trained: int):
        dataset = make_pretrain_dataset(data, features.TRAIN_SPLIT, 4, settings, training=True, seed=1,
                                        first_batch=already_trained)
        inputs, _, _ = next(iter(dataset))
        return inputs[features.PAIR_TOKEN_IDS].numpy().tolist(), inputs[MASK_POSITIONS].numpy().tolist()

    assert first_batch(0) == first_batch(0)  # a fresh run is reproducible
    assert first_batch(20) != first_batch(0)


@pytest.mark.parametrize("changes, message", [
    ({"task": "classify"}, "preprocess with --task pretrain"),
    ({"pairs": {"train": 0, "eval": 0}}, "no training pairs"),
    ({"special_tokens": {**SPECIAL_TOKENS, "mask": None}}, "no [MASK] piece"),
])
def test_pretraining_refuses_data_it_cannot_use(tmp_path, changes, message):
    directory = write_pretrain_dir(tmp_path / "prep", train_pairs=4, eval_pairs=2, stats_changes=changes)
    with pytest.raises(UserError, match=message.replace("[", r"\[").replace("]", r"\]")):
        read_pretrain_data(directory)


def test_pretraining_refuses_an_unfinished_directory(tmp_path):
    with pytest.raises(UserError, match="not a finished preprocessing output"):
        read_pretrain_data(str(tmp_path))


def test_the_trainer_refuses_pretrain_task_data_naming_the_task(pretrain_dir):
    with pytest.raises(UserError, match="pretrain-task data.*--task classify"):
        read_preprocessed(pretrain_dir)

