"""Choosing the tf.distribute strategy, the mixed-precision policy and XLA from the hardware."""

from __future__ import annotations

import dataclasses
import logging

import keras
import tensorflow as tf

from model.cluster import Worker, read_worker
from schemas.config import AUTO, MULTI_WORKER, TrainConfig
from schemas.errors import UserError


@dataclasses.dataclass(frozen=True)
class HardwarePlan:
    strategy: tf.distribute.Strategy
    strategy_name: str
    precision_policy: str  # a Keras dtype policy name
    devices: tuple[str, ...]  # this worker's
    jit_compile: bool  # XLA-compile the training step
    worker: Worker = Worker()  # this process's place in the cluster (a lone chief outside multi_worker)

    def describe(self) -> str:
        workers = f" worker={self.worker.describe()}" if self.strategy_name == MULTI_WORKER else ""
        return (f"strategy={self.strategy_name}{workers} devices={list(self.devices)} "
                f"precision={self.precision_policy} xla={'on' if self.jit_compile else 'off'}")


class KerasMultiWorkerMirroredStrategy(tf.distribute.MultiWorkerMirroredStrategy):
    """MultiWorkerMirroredStrategy whose `reduce` takes what Keras 3's `fit` passes it across workers.

    Keras 3 (checked on 3.15) reduces a whole input batch, a tuple, before building the model, and
    each scalar log with axis=0 after every step; this strategy's `reduce` takes one tensor (its
    docstring: "TODO: support `value` being a nest") and fails on both
    (keras-team/keras#20585). Here each tensor of a nest is reduced on its own, and a scalar, which
    has no axis 0, across the replicas only: what MirroredStrategy does with both.
    """

    def reduce(self, reduce_op, value, axis):
        def reduce_one(component):
            rank = self.experimental_local_results(component)[0].shape.rank
            return super(KerasMultiWorkerMirroredStrategy, self).reduce(reduce_op, component, axis if rank else None)

        return tf.nest.map_structure(reduce_one, value)


def _gpus() -> list:
    return tf.config.list_physical_devices("GPU")


def _choose_strategy(config: TrainConfig, worker: Worker, multi_worker: bool) -> tuple[tf.distribute.Strategy, str]:
    name = config.strategy
    several_workers = worker.num_workers > 1
    if several_workers and name not in (AUTO, MULTI_WORKER):
        raise UserError(f"TF_CONFIG names {worker.num_workers} workers, but strategy {name} trains on one, so each "
                        f"would train alone and write the same files; use strategy {MULTI_WORKER} (or auto).")
    if name == AUTO:
        name = ("tpu" if config.tpu else MULTI_WORKER if several_workers else "mirrored" if len(_gpus()) > 1
                else "one_device" if _gpus() else "default")
    if name == MULTI_WORKER:
        if not multi_worker:
            raise UserError(f"TF_CONFIG names {worker.num_workers} workers; this command trains on one worker "
                            f"(its devices mirrored): unset TF_CONFIG.")
        # Created before the model and its data: it connects to every worker in TF_CONFIG and waits
        # for them all, and must configure TensorFlow's runtime before tensors exist.
        return KerasMultiWorkerMirroredStrategy(), name
    if name == "tpu":
        if not config.tpu:
            raise UserError("--strategy tpu needs --tpu NAME_OR_ADDRESS.")
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=config.tpu)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver), name
    if name == "mirrored":
        # On a CPU-only host this mirrors over the logical CPU devices (used by tests).
        devices = [d.name for d in tf.config.list_logical_devices("GPU")] or \
                  [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices=devices), name
    if name == "one_device":
        device = "/gpu:0" if _gpus() else "/cpu:0"
        return tf.distribute.OneDeviceStrategy(device), name
    return tf.distribute.get_strategy(), "default"


def _choose_precision(config: TrainConfig, strategy_name: str) -> str:
    choice = config.mixed_precision
    if choice == "off":
        return "float32"
    if choice == "float16":
        return "mixed_float16"
    if choice == "bfloat16":
        return "mixed_bfloat16"
    # auto: TPUs compute in bfloat16; GPUs with tensor cores gain from float16 (bfloat16 from Ampere on,
    # which needs no loss scaling); CPUs stay in float32.
    if strategy_name == "tpu":
        return "mixed_bfloat16"
    gpus = _gpus()
    if gpus:
        capability = tf.config.experimental.get_device_details(gpus[0]).get("compute_capability", (0, 0))
        if capability >= (8, 0):
            return "mixed_bfloat16"
        if capability >= (7, 0):
            return "mixed_float16"
    return "float32"


def _choose_jit_compile(config: TrainConfig, strategy_name: str) -> bool:
    if config.jit_compile != "auto":
        return config.jit_compile == "on"
    # auto: XLA on accelerators (Keras' own default). On CPUs, measured with benchmarks/train_bench.py
    # (BENCHMARKS.md): XLA made the BiLSTM's training step 3.3x slower (its recurrent loop of small
    # matmuls) and ALBERT's 1.3x slower, so CPUs run the step as a plain graph.
    return strategy_name == "tpu" or bool(_gpus())


def plan_hardware(config: TrainConfig, *, multi_worker: bool = True) -> HardwarePlan:
    """Picks strategy, precision and XLA, sets the global Keras dtype policy, and logs the choice.

    `multi_worker=False` (a command that trains on one worker) refuses a TF_CONFIG naming several
    workers instead of choosing MultiWorkerMirroredStrategy for it.
    """
    worker = read_worker()
    strategy, strategy_name = _choose_strategy(config, worker, multi_worker)
    if strategy_name != MULTI_WORKER:
        worker = Worker()  # one worker trains alone: it is its own chief
    policy = _choose_precision(config, strategy_name)
    keras.mixed_precision.set_dtype_policy(policy)
    devices = ("default",) if strategy_name == "default" else tuple(strategy.extended.worker_devices)
    plan = HardwarePlan(strategy, strategy_name, policy, devices, _choose_jit_compile(config, strategy_name), worker)
    logging.info("Hardware: %s (GPUs visible: %d)", plan.describe(), len(_gpus()))
    return plan
