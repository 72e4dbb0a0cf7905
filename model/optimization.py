"""What a training run optimizes and how: loss and metrics per task, AdamW on the warm-up + cosine
schedule, class weights."""

from __future__ import annotations

import keras

from model.data import PreprocessedData
from model.schedule import WarmupCosineDecay
from schemas.config import TrainConfig

# Peak learning rates when train.learning_rate is not given. Fine-tuning pretrained weights wants a
# small one (BERT/ALBERT fine-tuning uses 1e-5 to 5e-5); a model trained from scratch a large one.
FROM_SCRATCH_LEARNING_RATE = 1e-3
FINE_TUNING_LEARNING_RATE = 3e-5


def peak_learning_rate(settings: TrainConfig) -> float:
    """train.learning_rate, or its default for the run: fine-tuning (init_from) or from scratch."""
    if settings.learning_rate is not None:
        return settings.learning_rate
    return FINE_TUNING_LEARNING_RATE if settings.init_from else FROM_SCRATCH_LEARNING_RATE


def scheduled_optimizer(peak: float, total_steps: int, *, warmup_fraction: float, weight_decay: float,
                        clip_norm: float, lamb: bool = False) -> keras.optimizers.Optimizer:
    """AdamW (or LAMB) on the warm-up + cosine schedule, global-norm clipping (0: none), no weight
    decay on biases, norms and embeddings."""
    schedule = WarmupCosineDecay(peak, total_steps=total_steps, warmup_steps=int(warmup_fraction * total_steps))
    optimizer_class = keras.optimizers.Lamb if lamb else keras.optimizers.AdamW
    optimizer = optimizer_class(learning_rate=schedule, weight_decay=weight_decay, global_clipnorm=clip_norm or None)
    optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta", "embeddings"])
    return optimizer


def make_optimizer(settings: TrainConfig, total_steps: int) -> keras.optimizers.Optimizer:
    return scheduled_optimizer(peak_learning_rate(settings), total_steps, warmup_fraction=settings.warmup_fraction,
                               weight_decay=settings.weight_decay, clip_norm=settings.clip_norm)


def compile_model(model: keras.Model, settings: TrainConfig, multi_label: bool, total_steps: int,
                  jit_compile: bool = False) -> None:
    """Cross-entropy for the task (sigmoid per label, or softmax over classes) and its accuracy."""
    if multi_label:
        loss = keras.losses.BinaryCrossentropy()
        metrics = [keras.metrics.BinaryAccuracy(threshold=settings.threshold, name="accuracy")]
    else:
        loss = keras.losses.SparseCategoricalCrossentropy()
        metrics = [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
    model.compile(optimizer=make_optimizer(settings, total_steps), loss=loss, metrics=metrics,
                  jit_compile=jit_compile)


def class_weights(data: PreprocessedData) -> dict[int, float]:
    """Inverse-frequency weights, normalised so a balanced corpus gets 1.0 everywhere."""
    total = sum(data.train_label_counts.values())
    return {i: total / (data.num_labels * max(data.train_label_counts.get(name, 0), 1))
            for i, name in enumerate(data.label_names)}
