"""The training stage end to end on tiny corpora and tiny models."""

from __future__ import annotations

import csv
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from model import trainer
from model.export import latest_export
from schemas import features
from tests.conftest import REPO_ROOT, run_cli
from tests.model.conftest import read_json

pytestmark = pytest.mark.slow


def train(data_dir, model_dir, job_file, *extra) -> dict:
    return trainer.run(["--config", job_file, "--data-dir", data_dir, "--model-dir", str(model_dir), *extra])


@pytest.mark.parametrize("encoder", ["bilstm", "albert"])
def test_multiclass_training_writes_metrics_plots_logs_checkpoints_and_export(
        tmp_path, multiclass_data, tiny_job_file, encoder):
    metrics = train(multiclass_data, tmp_path / "m", tiny_job_file, "--encoder", encoder, "--epochs", "3")

    on_disk = read_json(tmp_path / "m" / "metrics.json")
    assert on_disk["accuracy"] == metrics["accuracy"]
    assert set(on_disk) >= {"loss", "accuracy", "macro_f1", "per_class", "confusion_matrix", "roc_auc",
                            "majority_baseline_accuracy", "hardware"}
    assert set(on_disk["per_class"]) == {"sports", "science", "business"}
    assert np.sum(on_disk["confusion_matrix"]) == read_json(Path(multiclass_data) / "stats.json")["eval"]
    assert on_disk["accuracy"] > on_disk["majority_baseline_accuracy"] + 0.15  # the topics are easy
    assert (tmp_path / "m" / "plots" / "confusion_matrix.png").stat().st_size > 1000
    assert (tmp_path / "m" / "plots" / "training_curves.png").stat().st_size > 1000
    assert list((tmp_path / "m" / "logs").rglob("events.out.tfevents.*"))
    assert sorted(p.name for p in (tmp_path / "m" / "checkpoints").glob("epoch-*.weights.h5")) == \
        ["epoch-001.weights.h5", "epoch-002.weights.h5", "epoch-003.weights.h5"]
    export = Path(latest_export(str(tmp_path / "m")))
    assert (export / "saved_model.pb").exists()
    assert read_json(export / "assets.extra" / features.CONFIG_FILE)["train"]["encoder"] == encoder
    assert (tmp_path / "m" / features.SUCCESS_MARKER).exists()


def test_binary_task_reports_roc_auc_of_the_positive_class(tmp_path, binary_data, tiny_job_file):
    metrics = train(binary_data, tmp_path / "m", tiny_job_file, "--epochs", "2", "--class-weights")
    assert len(metrics["label_names"]) == 2
    assert 0.0 <= metrics["roc_auc"] <= 1.0


def test_multilabel_task_trains_with_sigmoid_outputs(tmp_path, multilabel_data, tiny_job_file):
    metrics = train(multilabel_data, tmp_path / "m", tiny_job_file, "--epochs", "2")
    assert "urgent" in metrics["per_class"]
    assert set(metrics) >= {"hamming_accuracy", "micro_f1", "macro_f1", "threshold"}


def test_a_finished_model_dir_is_kept_unless_overwrite(tmp_path, multiclass_data, tiny_job_file):
    train(multiclass_data, tmp_path / "m", tiny_job_file, "--epochs", "1")
    result = run_cli("model.trainer", "--config", tiny_job_file, "--data-dir", multiclass_data,
                     "--model-dir", str(tmp_path / "m"), "--epochs", "1")
    assert result.returncode == 2 and "--overwrite" in result.stderr and "Traceback" not in result.stderr


def test_missing_data_dir_is_a_one_line_error(tmp_path):
    result = run_cli("model.trainer", "--data-dir", str(tmp_path / "nope"), "--model-dir", str(tmp_path / "m"))
    assert result.returncode == 2
    assert [line for line in result.stderr.splitlines() if line.startswith("error:")] == [
        f"error: {tmp_path / 'nope'} is not a finished preprocessing output (no _SUCCESS); "
        f"run `python -m pipelines.preprocess` first."]


def history_epochs(model_dir: Path) -> list[int]:
    with open(model_dir / "history.csv") as f:
        return [int(row["epoch"]) for row in csv.DictReader(f)]


def last_checkpointed_epoch(model_dir: Path) -> int:
    """The newest epoch with a weights file; such an epoch is logged and resumable (0: none yet)."""
    return max((int(p.name[len("epoch-"):-len(".weights.h5")])
                for p in (model_dir / "checkpoints").glob("epoch-*.weights.h5")), default=0)


def test_only_the_most_recent_epoch_checkpoints_are_kept(tmp_path, multiclass_data, tiny_job_file):
    train(multiclass_data, tmp_path / "m", tiny_job_file, "--epochs", "4", "--keep-checkpoints", "2")
    assert sorted(p.name for p in (tmp_path / "m" / "checkpoints").glob("epoch-*.weights.h5")) == \
        ["epoch-003.weights.h5", "epoch-004.weights.h5"]


@pytest.mark.parametrize("keep, kept", [(0, [8, 9, 10, 999, 1000]), (1, [1000]), (3, [10, 999, 1000])])
def test_checkpoint_pruning_orders_epochs_by_number_and_zero_keeps_all(tmp_path, keep, kept):
    for epoch in (8, 9, 10, 999, 1000):
        (tmp_path / f"epoch-{epoch:03d}.weights.h5").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("not a checkpoint")

    trainer.PruneEpochCheckpoints(str(tmp_path), keep).on_epoch_end(999)

    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"epoch-{epoch:03d}.weights.h5" for epoch in kept] + ["notes.txt"])


def test_a_killed_run_resumes_from_its_last_epoch_instead_of_starting_over(tmp_path, multiclass_data, tiny_job_file):
    model_dir = tmp_path / "m"
    epochs = 12  # enough that the tiny model cannot finish them between the check below and the kill
    command = [sys.executable, "-m", "model.trainer", "--config", tiny_job_file, "--data-dir", multiclass_data,
               "--model-dir", str(model_dir), "--epochs", str(epochs)]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while last_checkpointed_epoch(model_dir) < 2:
        assert process.poll() is None and time.time() < deadline, "the trainer ended before its second epoch"
        time.sleep(0.2)
    time.sleep(0.5)  # let the resume state of epoch 2 be written too
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished_before_kill = history_epochs(model_dir)
    assert 2 <= len(finished_before_kill) < epochs

    resumed = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False)

    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"Epoch 1/{epochs}" not in resumed.stdout + resumed.stderr
    first_epoch = int(re.search(rf"Epoch (\d+)/{epochs}", resumed.stdout + resumed.stderr).group(1))
    # The next epoch, or the last one again if the kill hit while its state was being saved.
    assert first_epoch in (len(finished_before_kill), len(finished_before_kill) + 1) and first_epoch >= 2
    # Every epoch is in the history; one killed while its state was being saved is trained again.
    assert sorted(set(history_epochs(model_dir))) == list(range(epochs))
    assert len(history_epochs(model_dir)) <= epochs + 1
    assert read_json(model_dir / "metrics.json")["epochs_trained"] == epochs


MIRRORED_SCRIPT = """
import sys, json, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from model import trainer
metrics = trainer.run(sys.argv[1:])
print(json.dumps({"hardware": metrics["hardware"], "accuracy": metrics["accuracy"]}))
"""


def test_mirrored_strategy_trains_across_two_logical_cpu_devices(tmp_path, multiclass_data, tiny_job_file):
    result = subprocess.run([sys.executable, "-c", MIRRORED_SCRIPT, "--config", tiny_job_file,
                             "--data-dir", multiclass_data, "--model-dir", str(tmp_path / "m"), "--epochs", "2",
                             "--strategy", "mirrored"],
                            cwd=REPO_ROOT, capture_output=True, text=True, check=False,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert result.returncode == 0, result.stderr[-3000:]
    hardware = result.stdout.strip().splitlines()[-1]
    assert "strategy=mirrored" in hardware and "CPU:0" in hardware and "CPU:1" in hardware


def test_word_vectors_initialise_the_embedding_and_their_coverage_is_reported(tmp_path, multiclass_data,
                                                                               tiny_job_file):
    rng = np.random.default_rng(0)
    words = ["team", "goal", "market", "lab", "notinvocabulary"]
    vectors = tmp_path / "vectors.txt"
    vectors.write_text("".join(f"{w} " + " ".join(f"{v:.4f}" for v in rng.normal(size=16)) + "\n" for w in words))

    metrics = train(multiclass_data, tmp_path / "m", tiny_job_file, "--epochs", "1", "--word-vectors", str(vectors))

    vocabulary_size = len(open(Path(multiclass_data) / "transform_fn" / "assets" / features.TOKEN_VOCABULARY).readlines())
    assert metrics["word_vector_coverage"] == pytest.approx(4 / vocabulary_size)
