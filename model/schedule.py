"""The "dynamic learning rate": linear warm-up to the peak, then cosine decay to a floor."""

from __future__ import annotations

import math

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="albert_pipelines")
class WarmupCosineDecay(keras.optimizers.schedules.LearningRateSchedule):
    """learning_rate(step): 0 → peak over `warmup_steps`, then cosine down to peak * final_ratio."""

    def __init__(self, peak_learning_rate: float, total_steps: int, warmup_steps: int, final_ratio: float = 0.0):
        if total_steps < 1 or not 0 <= warmup_steps <= total_steps:
            raise ValueError(f"Need 0 <= warmup_steps <= total_steps and total_steps >= 1. "
                             f"Received: warmup_steps={warmup_steps}, total_steps={total_steps}")
        self.peak_learning_rate = peak_learning_rate
        self.total_steps = total_steps
        self.warmup_steps = warmup_steps
        self.final_ratio = final_ratio

    def __call__(self, step):
        step = ops.cast(step, "float32")
        warmup = ops.cast(max(self.warmup_steps, 1), "float32")
        warming = self.peak_learning_rate * ops.minimum(1.0, (step + 1.0) / warmup)
        decay_steps = float(max(self.total_steps - self.warmup_steps, 1))
        progress = ops.clip((step - self.warmup_steps) / decay_steps, 0.0, 1.0)
        cosine = 0.5 * (1.0 + ops.cos(math.pi * progress))
        decaying = self.peak_learning_rate * (self.final_ratio + (1.0 - self.final_ratio) * cosine)
        return ops.where(step < self.warmup_steps, warming, decaying)

    def get_config(self):
        return {"peak_learning_rate": self.peak_learning_rate, "total_steps": self.total_steps,
                "warmup_steps": self.warmup_steps, "final_ratio": self.final_ratio}
