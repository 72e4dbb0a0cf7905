"""Learning-rate schedule, hardware choice, word vectors, input pipeline: the trainer's parts."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from model.data import read_preprocessed
from model.hardware import plan_hardware
from model.inputs import make_dataset, padding_multiple
from model.schedule import WarmupCosineDecay
from model.word_vectors import embedding_matrix
from schemas import features
from schemas.config import TrainConfig
from schemas.errors import UserError


def learning_rates(schedule, steps):
    return [float(keras.ops.convert_to_numpy(schedule(step))) for step in steps]


def test_schedule_warms_up_linearly_then_decays_to_the_floor():
    schedule = WarmupCosineDecay(1e-3, total_steps=100, warmup_steps=10, final_ratio=0.1)
    warmup = learning_rates(schedule, range(10))
    np.testing.assert_allclose(warmup, [1e-3 * (s + 1) / 10 for s in range(10)], rtol=1e-5)
    decay = learning_rates(schedule, range(10, 101, 10))
    assert decay[0] == pytest.approx(1e-3, rel=1e-5)
    assert all(a > b for a, b in zip(decay, decay[1:]))
    assert decay[-1] == pytest.approx(1e-4, rel=1e-4)
    assert learning_rates(schedule, [55])[0] == pytest.approx(1e-4 + 0.9e-3 * 0.5, rel=1e-4)  # cosine midpoint


def test_schedule_round_trips_through_its_config():
    schedule = WarmupCosineDecay(2e-3, total_steps=50, warmup_steps=5)
    clone = WarmupCosineDecay.from_config(schedule.get_config())
    assert learning_rates(clone, [0, 7, 49]) == learning_rates(schedule, [0, 7, 49])


def test_schedule_rejects_more_warmup_than_steps():
    with pytest.raises(ValueError, match="warmup_steps=20, total_steps=10"):
        WarmupCosineDecay(1e-3, total_steps=10, warmup_steps=20)


@pytest.fixture
def restore_dtype_policy():
    yield
    keras.mixed_precision.set_dtype_policy("float32")


def test_auto_on_a_cpu_only_host_uses_the_default_strategy_in_float32(restore_dtype_policy):
    plan = plan_hardware(TrainConfig())
    assert plan.strategy_name == "default" and plan.precision_policy == "float32"
    assert keras.mixed_precision.dtype_policy().name == "float32"


@pytest.mark.parametrize("choice, policy", [("bfloat16", "mixed_bfloat16"), ("float16", "mixed_float16"),
                                            ("off", "float32")])
def test_explicit_mixed_precision_sets_the_keras_policy(restore_dtype_policy, choice, policy):
    plan = plan_hardware(TrainConfig(mixed_precision=choice))
    assert plan.precision_policy == policy == keras.mixed_precision.dtype_policy().name


def test_auto_on_a_cpu_only_host_runs_the_training_step_without_xla(restore_dtype_policy):
    assert plan_hardware(TrainConfig(encoder="bilstm")).jit_compile is False
    assert plan_hardware(TrainConfig(encoder="albert")).jit_compile is False
    assert plan_hardware(TrainConfig(jit_compile="on")).jit_compile is True
    assert plan_hardware(TrainConfig(jit_compile="off")).jit_compile is False


def test_tpu_strategy_without_a_tpu_address_is_a_user_error():
    with pytest.raises(UserError, match="--tpu"):
        plan_hardware(TrainConfig(strategy="tpu"))


def test_word_vectors_fill_known_words_and_report_coverage(tmp_path):
    vectors = tmp_path / "vectors.txt"
    vectors.write_text("3 2\nteam 1.0 2.0\ngoal -1.0 0.5\nzebra 9 9\n")
    matrix, coverage = embedding_matrix(str(vectors), ["team", "market", "goal"], id_offset=1, vocab_size=6, dim=2)
    assert matrix.shape == (6, 2)
    np.testing.assert_array_equal(matrix[1], [1.0, 2.0])
    np.testing.assert_array_equal(matrix[3], [-1.0, 0.5])
    np.testing.assert_array_equal(matrix[0], [0.0, 0.0])  # padding
    assert coverage == pytest.approx(2 / 3)


def test_word_vectors_of_the_wrong_width_are_a_user_error(tmp_path):
    vectors = tmp_path / "vectors.txt"
    vectors.write_text("team 1.0 2.0 3.0\n")
    with pytest.raises(UserError, match="embedding_dim is 2"):
        embedding_matrix(str(vectors), ["team"], id_offset=1, vocab_size=4, dim=2)


@pytest.mark.slow  # reads a preprocessed corpus
def test_eval_input_yields_every_example_once_cut_to_its_batchs_longest_document(multiclass_data):
    data = read_preprocessed(multiclass_data)
    batches = list(make_dataset(data, features.EVAL_SPLIT, batch_size=7, training=False))
    assert sum(int(ids.shape[0]) for ids, _ in batches) == data.eval_examples
    multiple = padding_multiple(data.max_seq_length)
    assert all(ids.shape[1] % multiple == 0 or ids.shape[1] == data.max_seq_length for ids, _ in batches)
    # Only padding was cut: every token of the fixed-length records is still there.
    records = tf.data.TFRecordDataset(data.files(features.EVAL_SPLIT), compression_type="GZIP").batch(1000)
    spec = {features.TOKEN_IDS: tf.io.FixedLenFeature([data.max_seq_length], tf.int64)}
    stored_tokens = sum(int(tf.math.count_nonzero(tf.io.parse_example(r, spec)[features.TOKEN_IDS]))
                        for r in records)
    assert sum(int(tf.math.count_nonzero(ids)) for ids, _ in batches) == stored_tokens
    labels = np.concatenate([y.numpy() for _, y in batches])
    assert set(labels.tolist()) <= set(range(data.num_labels))


@pytest.mark.slow  # reads a preprocessed corpus
def test_input_runs_without_the_autotuning_thread_that_delays_each_epoch(multiclass_data):
    data = read_preprocessed(multiclass_data)
    for split, training in ((features.TRAIN_SPLIT, True), (features.EVAL_SPLIT, False)):
        assert make_dataset(data, split, batch_size=4, training=training).options().autotune.enabled is False


@pytest.mark.slow  # reads a preprocessed corpus
def test_input_is_sharded_across_workers_by_data_so_each_global_batch_is_one_workers_batch(multiclass_data):
    data = read_preprocessed(multiclass_data)
    for split, training in ((features.TRAIN_SPLIT, True), (features.EVAL_SPLIT, False)):
        options = make_dataset(data, split, batch_size=4, training=training, multi_worker=True).options()
        assert options.experimental_distribute.auto_shard_policy == tf.data.experimental.AutoShardPolicy.DATA


def test_several_workers_in_tf_config_with_a_one_worker_strategy_is_a_user_error(monkeypatch, restore_dtype_policy):
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}, '
                                    '"task": {"type": "worker", "index": 0}}')
    with pytest.raises(UserError, match="names 2 workers, but strategy default trains on one"):
        plan_hardware(TrainConfig(strategy="default"))


def test_several_workers_are_refused_where_a_command_trains_on_one_worker(monkeypatch, restore_dtype_policy):
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}, '
                                    '"task": {"type": "worker", "index": 1}}')
    with pytest.raises(UserError, match="trains on one worker"):
        plan_hardware(TrainConfig(strategy="auto"), multi_worker=False)


def test_a_lone_chief_in_tf_config_trains_as_a_single_machine_would(monkeypatch, restore_dtype_policy):
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {"chief": ["127.0.0.1:1"]}, "task": {"type": "chief", "index": 0}}')
    plan = plan_hardware(TrainConfig())
    assert plan.strategy_name == "default" and plan.worker.is_chief


@pytest.mark.slow  # reads a preprocessed corpus
def test_multilabel_input_yields_dense_multi_hot_rows(multilabel_data):
    data = read_preprocessed(multilabel_data)
    _, labels = next(iter(make_dataset(data, features.TRAIN_SPLIT, batch_size=5, training=True)))
    assert labels.shape == (5, data.num_labels)
    assert set(np.unique(labels.numpy()).tolist()) <= {0.0, 1.0}
