"""Multi-worker training: TF_CONFIG, who writes where, and two workers on 127.0.0.1."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from model.cluster import Worker, read_worker, write_dir
from schemas.errors import UserError
from tests.conftest import REPO_ROOT
from tests.model.conftest import read_json


def tf_config(cluster: dict, task_type: str, index: int) -> dict[str, str]:
    return {"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": task_type, "index": index}})}


TWO_WORKERS = {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}
CHIEF_AND_WORKER = {"chief": ["127.0.0.1:1"], "worker": ["127.0.0.1:2"]}


def test_without_tf_config_the_process_is_a_lone_chief():
    assert read_worker({}) == read_worker({"TF_CONFIG": " "}) == Worker("chief", 0, 1, True)


def test_worker_0_is_the_chief_when_the_cluster_has_no_chief_task():
    assert read_worker(tf_config(TWO_WORKERS, "worker", 0)) == Worker("worker", 0, 2, True)
    assert read_worker(tf_config(TWO_WORKERS, "worker", 1)) == Worker("worker", 1, 2, False)


def test_the_chief_task_is_the_chief_and_counts_as_a_worker():
    assert read_worker(tf_config(CHIEF_AND_WORKER, "chief", 0)) == Worker("chief", 0, 2, True)
    assert read_worker(tf_config(CHIEF_AND_WORKER, "worker", 0)) == Worker("worker", 0, 2, False)


def test_extra_keys_that_vertex_ai_sets_are_ignored():
    config = json.loads(tf_config(CHIEF_AND_WORKER, "worker", 0)["TF_CONFIG"])
    config.update({"environment": "cloud", "job": {"python_module": "model.trainer"}})
    config["task"]["trial"] = ""
    assert read_worker({"TF_CONFIG": json.dumps(config)}).num_workers == 2


@pytest.mark.parametrize("text, message", [
    ("{not json", "not valid JSON"),
    ('["a list"]', 'needs a "cluster" object and a "task" object'),
    ('{"cluster": {"worker": ["h:1"]}}', 'needs a "cluster" object and a "task" object'),
    ('{"cluster": {"worker": "h:1"}, "task": {"type": "worker", "index": 0}}', "must be a list"),
    ('{"cluster": {"worker": ["h:1"], "ps": ["h:2"]}, "task": {"type": "worker", "index": 0}}', "names ps tasks"),
    ('{"cluster": {"chief": ["h:1", "h:2"]}, "task": {"type": "chief", "index": 0}}', "at most one"),
    ('{"cluster": {"worker": ["h:1"]}, "task": {"type": "evaluator", "index": 0}}', "chief or worker"),
    ('{"cluster": {"worker": ["h:1"]}, "task": {"type": "worker", "index": "0"}}', "integer index"),
    ('{"cluster": {"worker": ["h:1"]}, "task": {"type": "worker", "index": 1}}', "does not list"),
])
def test_a_malformed_tf_config_is_a_user_error(text, message):
    with pytest.raises(UserError, match=message):
        read_worker({"TF_CONFIG": text})


def test_the_chief_writes_to_the_model_dir(tmp_path):
    with write_dir(str(tmp_path / "m"), Worker("worker", 0, 2, True)) as outputs:
        assert outputs == str(tmp_path / "m")


def test_another_worker_writes_to_a_temporary_dir_deleted_afterwards(tmp_path):
    with pytest.raises(RuntimeError):
        with write_dir(str(tmp_path / "m"), Worker("worker", 1, 2, False)) as outputs:
            assert outputs != str(tmp_path / "m") and os.path.isdir(outputs)
            Path(outputs, "history.csv").write_text("epoch\n")
            raise RuntimeError("a failed run cleans up too")
    assert not os.path.exists(outputs)


def free_port() -> int:
    """A port the OS says is free now (another process may take it before a worker binds it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_two_workers(tmp_path: Path, args: list[str], timeout: int = 300) -> list[subprocess.CompletedProcess]:
    """`python -m model.trainer args` as worker 0 (the chief, cwd tmp_path/w0) and worker 1 (cwd
    tmp_path/w1, TMPDIR tmp_path/tmp1) of one cluster on 127.0.0.1; both killed if still running at
    the end. Tried again on new ports when a port was taken in between."""
    for _ in range(3):
        cluster = {"worker": [f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"]}
        workers = []
        try:
            for index in (0, 1):
                cwd = tmp_path / f"w{index}"
                cwd.mkdir(exist_ok=True)
                (tmp_path / f"tmp{index}").mkdir(exist_ok=True)
                env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(REPO_ROOT),
                           TMPDIR=str(tmp_path / f"tmp{index}"), **tf_config(cluster, "worker", index))
                workers.append(subprocess.Popen([sys.executable, "-m", "model.trainer", *args], cwd=cwd, env=env,
                                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
            results = []
            for worker in workers:
                stdout, stderr = worker.communicate(timeout=timeout)
                results.append(subprocess.CompletedProcess(worker.args, worker.returncode, stdout, stderr))
        finally:
            for worker in workers:
                if worker.poll() is None:
                    worker.kill()
                    worker.wait()
        if not any("Address already in use" in result.stderr for result in results):
            return results
    return results


@pytest.mark.slow
def test_two_workers_train_like_one_and_only_the_chief_writes(tmp_path, multiclass_data, tiny_job_file):
    import tensorflow as tf

    from model import trainer
    from model.export import latest_export
    from model.history import read_history

    # The n-gram path alone, trained by gradient descent: the cheapest model `fit` trains; no dropout and
    # no gradient clipping, which Keras applies to each worker's share of the gradient before the sum.
    args = ["--config", tiny_job_file, "--data-dir", multiclass_data, "--model-dir", "m", "--encoder", "none",
            "--ngram-fit", "train", "--epochs", "1", "--clip-norm", "0"]
    chief, other = run_two_workers(tmp_path, [*args, "--strategy", "multi_worker"])
    assert chief.returncode == 0, chief.stderr[-3000:]
    assert other.returncode == 0, other.stderr[-3000:]

    model_dir = tmp_path / "w0" / "m"
    assert (model_dir / "_SUCCESS").exists()
    assert "strategy=multi_worker worker=worker 0 of 2 workers" in read_json(model_dir / "metrics.json")["hardware"]
    # Worker 1 ran the same command in its own directory: had it written its "model dir", it would be there.
    assert not (tmp_path / "w1" / "m").exists()
    assert not list((tmp_path / "tmp1").iterdir())  # its temporary copy is gone

    served = tf.saved_model.load(latest_export(str(model_dir))).signatures["serving_default"](
        text=tf.constant(["The team won the match after a late goal.", "Shares and profit rose at the bank."]))
    assert served["probabilities"].shape == (2, 3)

    # One worker alone (one_device: like the workers, `fit` reads the input through tf.distribute), the same
    # global batch. Each global batch holds the same examples; the float sums differ in order across workers,
    # which Adam's normalised steps amplify: 0.2% apart measured here after one epoch, so 2% is allowed.
    single = tmp_path / "single"
    trainer.run([*args[:5], str(single), *args[6:], "--strategy", "one_device"])
    multi_loss, single_loss = read_history(str(model_dir))["loss"][0], read_history(str(single))["loss"][0]
    assert multi_loss == pytest.approx(single_loss, rel=0.02)
