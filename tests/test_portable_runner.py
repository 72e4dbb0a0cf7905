"""Both Beam stages through Beam's portable job API, with the work done by a separate SDK worker.

`--runner PortableRunner --job_endpoint embed` runs Beam's Python job service in the launching
process (no Java, no download); `--environment_type EXTERNAL` sends the work to a local
`worker_pool_main`, whose workers import only the installed wheel and run in another working
directory — as Flink, Spark or Dataflow Runner v2 workers would. The paths given are relative to
the launcher's working directory, which the workers do not share. docs/runners.md has the commands.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest

from pipelines import preprocess, score
from tests.conftest import make_documents, write_corpus
from tests.wheel_fixture import installed_only_env, installed_wheel  # noqa: F401  (installed_wheel: a fixture)

pytestmark = pytest.mark.slow

_POOL_START_SECONDS = 120  # a guard against a pool that neither serves nor exits, not a timing assertion


@dataclasses.dataclass(frozen=True)
class WorkerPool:
    address: str  # 127.0.0.1:PORT
    log: Path  # the pool's stdout and stderr

    def workers_started(self) -> int:
        """How many SDK worker processes the pool has started (it logs each one)."""
        return self.log.read_text(errors="replace").count("Starting worker with command")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serves(pool: subprocess.Popen, address: str) -> bool:
    """Whether the pool accepts gRPC connections at `address`; False once it has exited (port taken)."""
    deadline = time.monotonic() + _POOL_START_SECONDS
    with grpc.insecure_channel(address) as channel:
        ready = grpc.channel_ready_future(channel)
        while pool.poll() is None and time.monotonic() < deadline:
            try:
                ready.result(timeout=1)
                return True
            except grpc.FutureTimeoutError:
                continue
    return False


def _stop(pool: subprocess.Popen) -> None:
    """Ends the pool and the workers it started (its own process group)."""
    if pool.poll() is None:
        os.killpg(pool.pid, signal.SIGTERM)
    pool.wait(timeout=60)


@pytest.fixture(scope="module")
def worker_pool(installed_wheel, tmp_path_factory) -> WorkerPool:  # noqa: F811
    """A local Beam worker pool on 127.0.0.1 whose workers see only the installed wheel."""
    directory = tmp_path_factory.mktemp("worker_pool")
    log_path = directory / "pool.log"
    # One level deeper than the launcher's: no relative path means the same file in both.
    working_dir = directory / "cwd"
    working_dir.mkdir()
    for _ in range(3):  # the port the OS just gave out may be taken before the pool binds it
        address = f"127.0.0.1:{_free_port()}"
        with open(log_path, "ab") as log:
            pool = subprocess.Popen(
                [sys.executable, "-m", "apache_beam.runners.worker.worker_pool_main",
                 "--service_port", address.rsplit(":", 1)[1]],
                cwd=working_dir, env=installed_only_env(installed_wheel), stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
        if _serves(pool, address):
            break
        _stop(pool)
    else:
        pytest.fail(f"The worker pool did not start: {log_path.read_text()[-3000:]}")
    try:
        yield WorkerPool(address, log_path)
    finally:
        _stop(pool)


@pytest.fixture(scope="module")
def launch_dir(tmp_path_factory):
    """The launcher's working directory, holding the corpus (44 documents) as corpus.jsonl."""
    directory = tmp_path_factory.mktemp("launch")
    write_corpus(make_documents(40), directory, "jsonl")
    return directory


def portable_flags(worker_pool: WorkerPool) -> list[str]:
    return ["--runner", "PortableRunner", "--job_endpoint", "embed",
            "--environment_type", "EXTERNAL", "--environment_config", worker_pool.address]


def without_timings(values: dict) -> dict:
    return {k: v for k, v in values.items() if not k.endswith(("seconds", "per_second"))}


def examples(output_dir, split: str) -> collections.Counter:
    """The split's tf.Examples, each as its sorted (feature name, serialized values) pairs, counted."""
    import tensorflow as tf

    files = sorted(str(p) for p in (output_dir / split).glob("part-*"))
    found = collections.Counter()
    for record in tf.data.TFRecordDataset(files, compression_type="GZIP").as_numpy_iterator():
        feature = tf.train.Example.FromString(record).features.feature
        found[tuple(sorted((key, value.SerializeToString()) for key, value in feature.items()))] += 1
    return found


def predictions(output_dir) -> dict[str, tuple]:
    """id → (source, label, score) of every prediction."""
    rows = []
    for path in sorted(output_dir.glob("predictions-*.jsonl")):
        with open(path) as f:
            rows += [json.loads(line) for line in f]
    return {r["id"]: (r["source"], r["label"], r["score"]) for r in rows}


def test_preprocess_on_the_portable_runner_writes_what_the_in_process_run_writes(
        worker_pool, launch_dir, monkeypatch):
    monkeypatch.chdir(launch_dir)
    args = ["--input", "corpus.jsonl", "--max-seq-length", "16", "--min-frequency", "1"]

    workers_before = worker_pool.workers_started()
    preprocess.run([*args, "--output-dir", "prep_portable", *portable_flags(worker_pool)])
    assert worker_pool.workers_started() == workers_before + 1
    preprocess.run([*args, "--output-dir", "prep_in_process"])

    portable, in_process = (json.loads((launch_dir / name / "stats.json").read_text())
                            for name in ("prep_portable", "prep_in_process"))
    assert portable["accepted"] == 44
    assert without_timings(portable) == without_timings(in_process)
    for split in ("train", "eval"):
        written = examples(launch_dir / "prep_portable", split)
        assert written == examples(launch_dir / "prep_in_process", split)
        assert sum(written.values()) == portable[split]
    assert portable["train"] > 0


def test_score_on_the_portable_runner_predicts_what_the_in_process_run_predicts(
        worker_pool, launch_dir, tiny_export, monkeypatch):
    monkeypatch.chdir(launch_dir)
    args = ["--model", os.path.relpath(tiny_export), "--input", "corpus.jsonl", "--id-field", "id"]

    workers_before = worker_pool.workers_started()
    portable = score.run([*args, "--output-dir", "scored_portable", *portable_flags(worker_pool)])
    assert worker_pool.workers_started() == workers_before + 1
    in_process = score.run([*args, "--output-dir", "scored_in_process"])

    counts = ("read", "scored", "rejected", "rejected_by_reason", "duplicate_ids", "model_version")
    assert {k: portable[k] for k in counts} == {k: in_process[k] for k in counts}
    assert portable["scored"] == 44
    scored, expected = predictions(launch_dir / "scored_portable"), predictions(launch_dir / "scored_in_process")
    assert len(scored) == 44
    assert {i: p[:2] for i, p in scored.items()} == {i: p[:2] for i, p in expected.items()}
    assert {i: p[2] for i, p in scored.items()} == pytest.approx({i: p[2] for i, p in expected.items()}, abs=1e-5)
