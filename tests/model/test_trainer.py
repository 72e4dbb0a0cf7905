"""The training stage end to end on tiny corpora and tiny models.

Each training run costs seconds, so runs are shared: `bilstm_run` is trained once per session
and several tests read what it left.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from sklearn.metrics import roc_auc_score

from model import trainer
from model.automatic import choose_settings
from model.data import read_preprocessed
from model.export import latest_export
from model.inputs import make_dataset
from model.word_vectors import load_word_vectors
from schemas import cli, features
from schemas import export_contract as contract
from schemas.errors import UserError
from tests.conftest import REPO_ROOT, run_cli
from tests.model.conftest import read_json

OUT_OF_DATA = "ran out of data"


def train_args(data_dir, model_dir, job_file, *extra) -> list[str]:
    return ["--config", job_file, "--data-dir", str(data_dir), "--model-dir", str(model_dir), *extra]


def train(data_dir, model_dir, job_file, *extra) -> dict:
    return trainer.run(train_args(data_dir, model_dir, job_file, *extra))


def job_of(*args: str):
    """The JobConfig the trainer resolves from these command-line arguments."""
    return cli.resolve_job(trainer.build_parser().parse_args(list(args)))


def epoch_checkpoints(model_dir: Path) -> list[str]:
    return sorted(p.name for p in (model_dir / "checkpoints").glob("epoch-*.weights.h5"))


@pytest.fixture(scope="session")
def bilstm_run(tmp_path_factory, multiclass_data, tiny_job_file):
    """(model dir, metrics, warnings raised) of a 3-epoch BiLSTM run keeping 2 epoch checkpoints."""
    model_dir = tmp_path_factory.mktemp("bilstm_run") / "m"
    with warnings.catch_warnings(record=True) as raised:
        warnings.simplefilter("always")
        metrics = train(multiclass_data, model_dir, tiny_job_file, "--epochs", "3", "--keep-checkpoints", "2")
    return model_dir, metrics, [str(w.message) for w in raised]


@pytest.mark.slow
def test_training_writes_metrics_plots_logs_checkpoints_and_export(bilstm_run, multiclass_data):
    model_dir, metrics, _ = bilstm_run
    on_disk = read_json(model_dir / "metrics.json")
    assert on_disk["accuracy"] == metrics["accuracy"]
    assert set(on_disk) >= {"loss", "accuracy", "macro_f1", "per_class", "confusion_matrix", "roc_auc",
                            "majority_baseline_accuracy", "hardware"}
    assert set(on_disk["per_class"]) == {"sports", "science", "business"}
    assert np.sum(on_disk["confusion_matrix"]) == read_json(Path(multiclass_data) / "stats.json")["eval"]
    assert on_disk["accuracy"] > on_disk["majority_baseline_accuracy"] + 0.15  # the topics are easy
    assert on_disk["epochs_trained"] == 3
    assert (model_dir / "plots" / "confusion_matrix.png").stat().st_size > 1000
    assert (model_dir / "plots" / "training_curves.png").stat().st_size > 1000
    assert list((model_dir / "logs").rglob("events.out.tfevents.*"))
    assert epoch_checkpoints(model_dir) == ["epoch-002.weights.h5", "epoch-003.weights.h5"]  # --keep-checkpoints 2
    export = Path(latest_export(str(model_dir)))
    assert (export / "saved_model.pb").exists()
    metadata = read_json(export / contract.EXPORT_METADATA)
    assert metadata[contract.METADATA_VERSION] == export.name and export.name.isdigit()
    assert read_json(export / contract.EXPORT_CONFIG_FILE)["train"]["encoder"] == "bilstm"
    assert read_json(model_dir / "_STAGE.json")["stage"] == "train"
    assert (model_dir / features.SUCCESS_MARKER).exists()


@pytest.mark.slow
def test_training_never_runs_out_of_input(bilstm_run):
    _, _, raised = bilstm_run
    assert not [message for message in raised if OUT_OF_DATA in message]


@pytest.mark.slow
def test_eval_input_says_how_many_batches_it_holds_so_keras_never_reads_past_its_end(multiclass_data):
    data = read_preprocessed(multiclass_data)
    dataset = make_dataset(data, features.EVAL_SPLIT, batch_size=16, training=False)
    assert int(dataset.cardinality()) == len(list(dataset)) == -(-data.eval_examples // 16)


@pytest.mark.slow
def test_albert_training_learns_the_topics(tmp_path, multiclass_data, tiny_job_file):
    metrics = train(multiclass_data, tmp_path / "m", tiny_job_file, "--encoder", "albert", "--epochs", "3")
    assert metrics["accuracy"] > metrics["majority_baseline_accuracy"] + 0.15
    assert read_json(Path(latest_export(str(tmp_path / "m"))) / contract.EXPORT_CONFIG_FILE)["train"]["encoder"] \
        == "albert"


@pytest.mark.slow
def test_binary_roc_auc_is_that_of_the_trained_models_positive_class_probabilities(
        tmp_path, binary_data, tiny_job_file):
    args = train_args(binary_data, tmp_path / "m", tiny_job_file, "--epochs", "2", "--class-weights")
    metrics = trainer.run(args)

    # The final weights are the last epoch's checkpoint: predict the eval split with them.
    data = read_preprocessed(binary_data)
    model = trainer.build_model(choose_settings(job_of(*args), data)[0], data)
    model.load_weights(tmp_path / "m" / "checkpoints" / "epoch-002.weights.h5")
    eval_dataset = make_dataset(data, features.EVAL_SPLIT, batch_size=16, training=False)
    probabilities = model.predict(eval_dataset, verbose=0)
    labels = np.concatenate([batch_labels.numpy() for _, batch_labels in eval_dataset])
    assert metrics["label_names"] == list(data.label_names) and len(data.label_names) == 2
    assert metrics["roc_auc"] == pytest.approx(roc_auc_score(labels, probabilities[:, 1]), abs=1e-6)
    assert metrics["roc_auc"] > 0.8  # two topics of distinct words


@pytest.mark.slow
def test_multilabel_task_trains_with_sigmoid_outputs(tmp_path, multilabel_data, tiny_job_file):
    metrics = train(multilabel_data, tmp_path / "m", tiny_job_file, "--epochs", "1")
    assert "urgent" in metrics["per_class"]
    assert set(metrics) >= {"hamming_accuracy", "micro_f1", "macro_f1", "threshold"}
    assert set(metrics["confusion_matrix"]) == set(metrics["per_class"])
    assert (tmp_path / "m" / "plots" / "confusion_matrix.png").stat().st_size > 1000


@pytest.mark.slow
def test_a_whole_run_on_another_filesystem_writes_nothing_locally(tmp_path, monkeypatch, multiclass_data,
                                                                   tiny_job_file):
    data_dir, model_dir = "ram://trainer/prep", "ram://trainer/m"
    for root, _, names in os.walk(multiclass_data):  # the preprocessed data, moved there too
        for name in names:
            target = f"{data_dir}/{os.path.relpath(os.path.join(root, name), multiclass_data)}"
            tf.io.gfile.makedirs(os.path.dirname(target))
            tf.io.gfile.copy(os.path.join(root, name), target)
    monkeypatch.chdir(tmp_path)  # pathlib would create ./ram:/... here

    train(data_dir, model_dir, tiny_job_file, "--epochs", "1")

    written = {f"{root}/{name}"[len(model_dir) + 1:] for root, _, names in tf.io.gfile.walk(model_dir)
               for name in names}
    assert written >= {"_STAGE.json", "config.json", "history.csv", "metrics.json", "_SUCCESS",
                       "plots/confusion_matrix.png", "plots/training_curves.png",
                       "checkpoints/epoch-001.weights.h5", "checkpoints/resume/latest.weights.h5"}
    export = latest_export(model_dir)
    assert {f"{export}/saved_model.pb", f"{export}/{contract.EXPORT_METADATA}"} <= {
        f"{model_dir}/{path}" for path in written}
    assert any(path.startswith("logs/train/events.out.tfevents") for path in written)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_a_finished_model_dir_is_kept_unless_overwrite(bilstm_run, multiclass_data, tiny_job_file, capsys):
    model_dir, _, _ = bilstm_run
    before = sorted(str(p) for p in model_dir.rglob("*"))
    capsys.readouterr()
    with pytest.raises(SystemExit) as raised:  # the command's entry point, as `python -m model.trainer` runs it
        trainer.main(train_args(multiclass_data, model_dir, tiny_job_file, "--epochs", "1"))
    stderr = capsys.readouterr().err
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert raised.value.code == 2 and len(errors) == 1 and "--overwrite" in errors[0], stderr[-3000:]
    assert "Traceback" not in stderr
    assert sorted(str(p) for p in model_dir.rglob("*")) == before


@pytest.mark.slow
def test_a_model_dir_equal_to_the_data_dir_is_one_error_line_and_the_data_is_kept(tmp_path, multiclass_data):
    data_dir = tmp_path / "prep"
    subprocess.run(["cp", "-r", multiclass_data, str(data_dir)], check=True)
    result = run_cli("model.trainer", "--data-dir", str(data_dir), "--model-dir", str(data_dir), "--overwrite")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "overlaps the input" in errors[0] and "--overwrite" not in errors[0]
    assert read_preprocessed(str(data_dir)).eval_examples > 0


def test_missing_data_dir_is_a_user_error_and_leaves_no_model_dir(tmp_path):
    with pytest.raises(UserError) as failure:
        trainer.run(["--data-dir", str(tmp_path / "nope"), "--model-dir", str(tmp_path / "m")])
    assert str(failure.value) == (f"{tmp_path / 'nope'} is not a finished preprocessing output (no _SUCCESS); "
                                  f"run `python -m pipelines.preprocess` first.")
    assert not (tmp_path / "m").exists()


def history_epochs(model_dir: Path) -> list[int]:
    with open(model_dir / "history.csv") as f:
        return [int(row["epoch"]) for row in csv.DictReader(f)]


# The trainer, killed with SIGKILL right after a given epoch's end-of-epoch work (history, resume
# state, checkpoint): the kill lands at the same point however loaded the machine is.
KILLED_AFTER_EPOCH_SCRIPT = """
import os, signal, sys
import keras
from model import trainer


class KillAfterEpoch(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == int(os.environ["KILL_AFTER_EPOCH"]):
            os.kill(os.getpid(), signal.SIGKILL)


make_callbacks = trainer.make_callbacks
trainer.make_callbacks = lambda *args, **kwargs: [*make_callbacks(*args, **kwargs), KillAfterEpoch()]
trainer.main(sys.argv[1:])
"""


@pytest.mark.slow
def test_a_killed_run_resumes_from_its_last_epoch_instead_of_starting_over(tmp_path, multiclass_data, tiny_job_file,
                                                                          capsys):
    model_dir = tmp_path / "m"
    epochs = 3
    args = train_args(multiclass_data, model_dir, tiny_job_file, "--epochs", str(epochs))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", KILL_AFTER_EPOCH="2")
    killed = subprocess.run([sys.executable, "-c", KILLED_AFTER_EPOCH_SCRIPT, *args], cwd=REPO_ROOT, env=env,
                            capture_output=True, text=True, check=False)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert history_epochs(model_dir) == [0, 1]
    assert not (model_dir / features.SUCCESS_MARKER).exists()

    capsys.readouterr()
    with warnings.catch_warnings(record=True) as raised:
        warnings.simplefilter("always")
        resumed = trainer.run(args)
    captured = capsys.readouterr()

    output = captured.out + captured.err
    assert f"Epoch 1/{epochs}" not in output and f"Epoch 2/{epochs}" not in output
    assert f"Epoch 3/{epochs}" in output
    assert history_epochs(model_dir) == list(range(epochs))
    assert resumed["epochs_trained"] == read_json(model_dir / "metrics.json")["epochs_trained"] == epochs
    assert OUT_OF_DATA not in captured.err and not [w for w in raised if OUT_OF_DATA in str(w.message)]


MIRRORED_SCRIPT = """
import sys, json, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from model import trainer
metrics = trainer.run(sys.argv[1:])
print(json.dumps({"hardware": metrics["hardware"], "accuracy": metrics["accuracy"]}))
"""


@pytest.mark.slow
def test_mirrored_strategy_trains_across_two_logical_cpu_devices(tmp_path, multiclass_data, tiny_job_file):
    result = subprocess.run([sys.executable, "-c", MIRRORED_SCRIPT,
                             *train_args(multiclass_data, tmp_path / "m", tiny_job_file, "--epochs", "1",
                                         "--strategy", "mirrored")],
                            cwd=REPO_ROOT, capture_output=True, text=True, check=False,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert result.returncode == 0, result.stderr[-3000:]
    hardware = result.stdout.strip().splitlines()[-1]
    assert "strategy=mirrored" in hardware and "CPU:0" in hardware and "CPU:1" in hardware


@pytest.mark.slow
def test_word_vectors_initialise_the_embedding_and_their_coverage_is_reported(tmp_path, multiclass_data,
                                                                               tiny_job_file):
    rng = np.random.default_rng(0)
    vectors = {word: rng.normal(size=16) for word in ["team", "goal", "market", "lab", "notinvocabulary"]}
    path = tmp_path / "vectors.txt"
    path.write_text("".join(f"{w} " + " ".join(f"{v:.4f}" for v in vector) + "\n" for w, vector in vectors.items()))
    data = read_preprocessed(multiclass_data)
    model = trainer.build_model(choose_settings(job_of("--config", tiny_job_file), data)[0], data)

    coverage = load_word_vectors(model, str(path), data)

    vocabulary = data.token_vocabulary()
    assert coverage == pytest.approx(4 / len(vocabulary))
    embeddings = model.get_layer(index=1).token_embedding.embeddings.numpy()
    np.testing.assert_allclose(embeddings[vocabulary.index("goal") + 1], vectors["goal"], atol=1e-4)
