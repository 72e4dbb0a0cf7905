"""This process's place in a multi-worker training cluster, from TF_CONFIG, and where it writes.

TF_CONFIG is the JSON that TensorFlow's cluster resolvers read (Vertex AI and Kubernetes
operators set it on every replica):

    {"cluster": {"chief": ["host0:port"], "worker": ["host1:port", ...]},
     "task": {"type": "worker", "index": 0}}

The chief is the "chief" task when the cluster has one, else worker 0 (TensorFlow's rule).
Only the chief writes the model directory. The other workers run the same steps, because
saving can take part in the collective operations every worker must join, but write to a
temporary directory of their own that is deleted when the run ends (TensorFlow's advice for
multi-worker Keras: "write to a temp dir, then delete").
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping

from schemas.errors import UserError

TF_CONFIG = "TF_CONFIG"
CHIEF, WORKER = "chief", "worker"
_TRAINING_JOBS = (CHIEF, WORKER)  # the task types MultiWorkerMirroredStrategy trains with
_MAX_SHOWN = 120  # characters of TF_CONFIG quoted in an error


@dataclasses.dataclass(frozen=True)
class Worker:
    """One training process: its task in the cluster and the cluster's size."""

    task_type: str = CHIEF
    task_index: int = 0
    num_workers: int = 1  # chief and workers together
    is_chief: bool = True

    def describe(self) -> str:
        return f"{self.task_type} {self.task_index} of {self.num_workers} workers"


def read_worker(environ: Mapping[str, str] = os.environ) -> Worker:
    """This process's Worker from TF_CONFIG; a lone chief when TF_CONFIG is unset or empty."""
    text = environ.get(TF_CONFIG, "").strip()
    if not text:
        return Worker()
    try:
        config = json.loads(text)
    except ValueError:
        raise UserError(f"{TF_CONFIG} is not valid JSON. Received: {_shown(text)}") from None
    cluster = config.get("cluster") if isinstance(config, dict) else None
    task = config.get("task") if isinstance(config, dict) else None
    if not isinstance(cluster, dict) or not isinstance(task, dict):
        raise UserError(f"{TF_CONFIG} needs a \"cluster\" object and a \"task\" object. Received: {_shown(text)}")
    jobs = {name: addresses for name, addresses in cluster.items() if addresses}
    other = sorted(set(jobs) - set(_TRAINING_JOBS) - {"evaluator"})  # an evaluator sidecar trains nothing
    if other:
        raise UserError(f"{TF_CONFIG} names {', '.join(other)} tasks; multi-worker training uses chief and worker "
                        f"tasks only.")
    for name in _TRAINING_JOBS:
        if not isinstance(jobs.get(name, []), list):
            raise UserError(f"{TF_CONFIG}'s cluster.{name} must be a list of host:port addresses. "
                            f"Received: {_shown(json.dumps(jobs[name]))}")
    if len(jobs.get(CHIEF, [])) > 1:
        raise UserError(f"{TF_CONFIG} names {len(jobs[CHIEF])} chief tasks; a cluster has at most one.")
    task_type, task_index = task.get("type"), task.get("index", 0)
    if task_type not in _TRAINING_JOBS or not isinstance(task_index, int) or isinstance(task_index, bool):
        raise UserError(f"{TF_CONFIG}'s task must be a chief or worker with an integer index. "
                        f"Received: {_shown(json.dumps(task))}")
    if not 0 <= task_index < len(jobs.get(task_type, [])):
        raise UserError(f"{TF_CONFIG}'s task is {task_type} {task_index}, which its cluster does not list "
                        f"({len(jobs.get(task_type, []))} {task_type} addresses).")
    chief = (CHIEF, 0) if jobs.get(CHIEF) else (WORKER, 0)
    return Worker(task_type, task_index, sum(len(jobs.get(name, [])) for name in _TRAINING_JOBS),
                  (task_type, task_index) == chief)


@contextlib.contextmanager
def write_dir(model_dir: str, worker: Worker) -> Iterator[str]:
    """Where `worker` writes the run's outputs: the model directory on the chief; on any other worker a
    new local temporary directory, deleted when the block ends (however it ends)."""
    if worker.is_chief:
        yield model_dir
        return
    temporary = tempfile.mkdtemp(prefix=f"train-{worker.task_type}-{worker.task_index}-")
    try:
        yield temporary
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


def _shown(text: str) -> str:
    return repr(text if len(text) <= _MAX_SHOWN else text[:_MAX_SHOWN - 3] + "...")
