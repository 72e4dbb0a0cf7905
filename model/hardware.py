"""Choosing the tf.distribute strategy, the mixed-precision policy and XLA from the hardware."""

from __future__ import annotations

import dataclasses
import logging

import keras
import tensorflow as tf

from schemas.config import TrainConfig
from schemas.errors import UserError


@dataclasses.dataclass(frozen=True)
class HardwarePlan:
    strategy: tf.distribute.Strategy
    strategy_name: str
    precision_policy: str  # a Keras dtype policy name
    devices: tuple[str, ...]
    jit_compile: bool  # XLA-compile the training step

    def describe(self) -> str:
        return (f"strategy={self.strategy_name} devices={list(self.devices)} precision={self.precision_policy} "
                f"xla={'on' if self.jit_compile else 'off'}")


def _gpus() -> list:
    return tf.config.list_physical_devices("GPU")


def _choose_strategy(config: TrainConfig) -> tuple[tf.distribute.Strategy, str]:
    name = config.strategy
    if name == "auto":
        name = "tpu" if config.tpu else "mirrored" if len(_gpus()) > 1 else "one_device" if _gpus() else "default"
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


def plan_hardware(config: TrainConfig) -> HardwarePlan:
    """Picks strategy, precision and XLA, sets the global Keras dtype policy, and logs the choice."""
    strategy, strategy_name = _choose_strategy(config)
    policy = _choose_precision(config, strategy_name)
    keras.mixed_precision.set_dtype_policy(policy)
    devices = ("default",) if strategy_name == "default" else tuple(strategy.extended.worker_devices)
    plan = HardwarePlan(strategy, strategy_name, policy, devices, _choose_jit_compile(config, strategy_name))
    logging.info("Hardware: %s (GPUs visible: %d)", plan.describe(), len(_gpus()))
    return plan
