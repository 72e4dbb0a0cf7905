"""Training stage: transformed TFRecords → a fitted encoder, its evaluation, a raw-text export.

    python -m model.trainer --data-dir out/prep --model-dir out/model [--encoder bilstm|albert]

Writes to the model directory: checkpoints/ (weights of the last epochs, plus the state a killed
run resumes from), logs/ (TensorBoard), history.csv, metrics.json, plots/*.png,
export/<version>/ (the raw-text SavedModel), config.json and, last, _SUCCESS. Run the same
command again after a crash and it resumes from the last finished epoch.
"""

from __future__ import annotations

from schemas.runtime_defaults import apply_tensorflow_defaults

apply_tensorflow_defaults()  # before TensorFlow loads: it reads them once

import csv
import functools
import json
import logging
import math
import re
import time
from typing import Sequence

import keras
import numpy as np
import tensorflow as tf

from model import evaluation, plots
from model.classifier import build_classifier, build_encoder
from model.classifier_head import ClassifierHead
from model.data import PreprocessedData, read_preprocessed
from model.export import export_model
from model.hardware import plan_hardware
from model.inputs import make_dataset
from model.schedule import WarmupCosineDecay
from model.word_vectors import embedding_matrix
from schemas import cli, features
from schemas.config import ENCODERS, JIT_COMPILE, MIXED_PRECISION, STRATEGIES, JobConfig, TrainConfig
from schemas.errors import UserError

CHECKPOINTS_DIR = "checkpoints"
BACKUP_DIR = "checkpoints/resume"
LOGS_DIR = "logs"
PLOTS_DIR = "plots"
HISTORY_FILE = "history.csv"
METRICS_FILE = "metrics.json"
EPOCH_WEIGHTS_FILE = "epoch-{epoch:03d}.weights.h5"  # ModelCheckpoint's file name template
EPOCH_WEIGHTS_PATTERN = re.compile(r"epoch-(\d+)\.weights\.h5")  # its names, epoch captured


def build_model(job: JobConfig, data: PreprocessedData) -> keras.Model:
    """Encoder + head for the task the preprocessing output describes (call inside strategy.scope())."""
    settings = job.train
    encoder_config = job.bilstm if settings.encoder == "bilstm" else job.albert
    encoder = build_encoder(settings.encoder, data.vocab_size, data.max_seq_length, dropout=settings.dropout,
                            **vars(encoder_config))
    head = ClassifierHead(num_outputs=data.num_labels, hidden_units=job.head.hidden_units,
                          dropout=job.head.dropout, batch_norm=job.head.batch_norm,
                          activation="sigmoid" if data.multi_label else "softmax")
    return build_classifier(encoder, head)


def make_optimizer(settings: TrainConfig, total_steps: int) -> keras.optimizers.Optimizer:
    """AdamW on the warm-up + cosine schedule, global-norm clipping, no decay on biases/norms/embeddings."""
    schedule = WarmupCosineDecay(settings.learning_rate, total_steps=total_steps,
                                 warmup_steps=int(settings.warmup_fraction * total_steps))
    optimizer = keras.optimizers.AdamW(learning_rate=schedule, weight_decay=settings.weight_decay,
                                       global_clipnorm=settings.clip_norm or None)
    optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta", "embeddings"])
    return optimizer


def compile_model(model: keras.Model, settings: TrainConfig, data: PreprocessedData, total_steps: int,
                  jit_compile: bool = False) -> None:
    if data.multi_label:
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


def load_word_vectors(model: keras.Model, path: str, data: PreprocessedData) -> float:
    """Copies pretrained vectors into the encoder's token embedding; returns the coverage."""
    if data.tokenizer != "word":
        raise UserError("--word-vectors needs a corpus preprocessed with --tokenizer word.")
    encoder = model.get_layer(index=1)
    embeddings = encoder.token_embedding.embeddings
    matrix, coverage = embedding_matrix(path, data.token_vocabulary(), id_offset=1, vocab_size=data.vocab_size,
                                        dim=int(embeddings.shape[-1]))
    embeddings.assign(matrix)
    return coverage


class EpochTimer(keras.callbacks.Callback):
    """Records training examples/s of each epoch (validation excluded) into the logs."""

    def __init__(self, examples_per_epoch: int):
        super().__init__()
        self._examples = examples_per_epoch

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()

    def on_test_begin(self, logs=None):
        self._train_seconds = time.perf_counter() - getattr(self, "_started", time.perf_counter())

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            seconds = getattr(self, "_train_seconds", None) or (time.perf_counter() - self._started)
            logs["examples_per_second"] = self._examples / seconds
            logs["learning_rate"] = float(keras.ops.convert_to_numpy(
                self.model.optimizer.learning_rate))


class PruneEpochCheckpoints(keras.callbacks.Callback):
    """Keeps only the `keep` most recent per-epoch weights files; `keep=0` keeps them all.

    Each file holds the whole model (93 MB with a 60,000-word vocabulary). Runs after
    ModelCheckpoint, so the epoch just saved always stays.
    """

    def __init__(self, directory: str, keep: int):
        super().__init__()
        self._directory = directory
        self._keep = keep

    def on_epoch_end(self, epoch, logs=None):
        if not self._keep:
            return
        by_epoch = {}
        for name in tf.io.gfile.listdir(self._directory):
            match = EPOCH_WEIGHTS_PATTERN.fullmatch(name)
            if match:
                by_epoch[int(match.group(1))] = f"{self._directory}/{name}"
        for epoch_number in sorted(by_epoch)[:-self._keep]:
            tf.io.gfile.remove(by_epoch[epoch_number])


def make_callbacks(settings: TrainConfig, data: PreprocessedData, steps_per_epoch: int) -> list:
    model_dir = settings.model_dir
    monitor, mode = ("val_loss", "min") if data.multi_label else ("val_accuracy", "max")
    # Order matters for a run killed at an epoch end: logs first, then the resume state, then the
    # per-epoch checkpoint, so a checkpoint on disk implies its epoch is logged and resumable.
    callbacks = [
        EpochTimer(steps_per_epoch * settings.batch_size),
        keras.callbacks.CSVLogger(f"{model_dir}/{HISTORY_FILE}", append=True),
        keras.callbacks.TensorBoard(log_dir=f"{model_dir}/{LOGS_DIR}"),
        # Saves model and optimizer state after every epoch; a restarted run continues from there.
        # Two copies, so a kill in the middle of writing one resumes from the other.
        keras.callbacks.BackupAndRestore(backup_dir=f"{model_dir}/{BACKUP_DIR}", delete_checkpoint=False,
                                         double_checkpoint=True),
        keras.callbacks.ModelCheckpoint(f"{model_dir}/{CHECKPOINTS_DIR}/{EPOCH_WEIGHTS_FILE}", save_weights_only=True),
        PruneEpochCheckpoints(f"{model_dir}/{CHECKPOINTS_DIR}", settings.keep_checkpoints),
    ]
    if settings.early_stopping_patience:
        callbacks.append(keras.callbacks.EarlyStopping(monitor=monitor, mode=mode, restore_best_weights=True,
                                                       patience=settings.early_stopping_patience))
    return callbacks


def read_history(model_dir: str) -> dict[str, list[float]]:
    """history.csv (all epochs, across resumed runs) as {metric: values per epoch}.

    An epoch that a killed run logged but could not save is trained again on resume and logged
    twice; the later row wins.
    """
    path = f"{model_dir}/{HISTORY_FILE}"
    if not tf.io.gfile.exists(path):
        return {}
    with tf.io.gfile.GFile(path) as f:
        rows = {int(row["epoch"]): row for row in csv.DictReader(f)}
    epochs = [rows[epoch] for epoch in sorted(rows)]
    return {key: [float(row[key]) for row in epochs] for key in epochs[0] if key != "epoch"} if epochs else {}


def evaluate(model: keras.Model, data: PreprocessedData, settings: TrainConfig) -> dict:
    """Loss and classification metrics on the eval split."""
    eval_dataset = make_dataset(data, features.EVAL_SPLIT, settings.batch_size, training=False)
    loss = model.evaluate(eval_dataset, return_dict=True, verbose=0)["loss"]
    probabilities = model.predict(eval_dataset, verbose=0)
    labels = np.concatenate([batch_labels.numpy() for _, batch_labels in eval_dataset])
    metrics = evaluation.classification_metrics(labels, probabilities, list(data.label_names),
                                                multi_label=data.multi_label, threshold=settings.threshold)
    metrics["loss"] = float(loss)
    if not data.multi_label:
        metrics["majority_baseline_accuracy"] = evaluation.majority_baseline_accuracy(labels)
    return metrics


def write_plots(model_dir: str, metrics: dict, multi_label: bool) -> list[str]:
    tf.io.gfile.makedirs(f"{model_dir}/{PLOTS_DIR}")
    paths = []
    if multi_label:
        paths.append(plots.plot_multilabel_confusion(metrics["confusion_matrix"],
                                                     f"{model_dir}/{PLOTS_DIR}/confusion_matrix.png"))
    else:
        paths.append(plots.plot_confusion_matrix(metrics["confusion_matrix"], metrics["label_names"],
                                                 f"{model_dir}/{PLOTS_DIR}/confusion_matrix.png"))
    history = read_history(model_dir)
    if history:
        paths.append(plots.plot_training_curves(history, f"{model_dir}/{PLOTS_DIR}/training_curves.png"))
    return paths


def prepare_model_dir(settings: TrainConfig) -> None:
    """Refuses a finished model directory unless --overwrite (which starts over); resumes an unfinished one."""
    model_dir = settings.model_dir
    if not model_dir:
        raise UserError("No model directory given: pass --model-dir DIR.")
    if tf.io.gfile.exists(model_dir) and settings.overwrite:
        tf.io.gfile.rmtree(model_dir)
    elif tf.io.gfile.exists(f"{model_dir}/{features.SUCCESS_MARKER}"):
        raise UserError(f"{model_dir} already holds a finished training run; pass --overwrite to replace it.")
    tf.io.gfile.makedirs(model_dir)
    if tf.io.gfile.exists(f"{model_dir}/{BACKUP_DIR}"):
        logging.info("Found the state of an unfinished run in %s: resuming it.", model_dir)


def train_and_evaluate(job: JobConfig) -> dict:
    """Fits, evaluates and exports; returns the metrics written to metrics.json."""
    settings = job.train
    data = read_preprocessed(settings.data_dir)
    if data.eval_examples == 0:
        raise UserError(f"{data.data_dir} has no eval examples; preprocess with --eval-fraction above 0.")
    if settings.class_weights and data.multi_label:
        raise UserError("--class-weights applies to single-label corpora only.")
    prepare_model_dir(settings)
    hardware = plan_hardware(settings)
    keras.utils.set_random_seed(settings.seed)

    steps_per_epoch = math.ceil(data.train_examples / settings.batch_size)
    total_steps = steps_per_epoch * settings.epochs
    train_dataset = make_dataset(data, features.TRAIN_SPLIT, settings.batch_size, training=True,
                                 shuffle_buffer=settings.shuffle_buffer, seed=settings.seed)
    eval_dataset = make_dataset(data, features.EVAL_SPLIT, settings.batch_size, training=False)
    with hardware.strategy.scope():
        model = build_model(job, data)
        compile_model(model, settings, data, total_steps, hardware.jit_compile)
    coverage = load_word_vectors(model, settings.word_vectors, data) if settings.word_vectors else None
    logging.info("Training %s (%d parameters) for up to %d epochs of %d steps on %d examples.",
                 settings.encoder, model.count_params(), settings.epochs, steps_per_epoch, data.train_examples)

    started = time.perf_counter()
    model.fit(train_dataset, epochs=settings.epochs, steps_per_epoch=steps_per_epoch,
              validation_data=eval_dataset, callbacks=make_callbacks(settings, data, steps_per_epoch),
              class_weight=class_weights(data) if settings.class_weights else None,
              shuffle=False, verbose=2)  # the dataset shuffles itself
    train_seconds = time.perf_counter() - started

    metrics = evaluate(model, data, settings)
    all_epochs = read_history(settings.model_dir)
    metrics.update({
        "encoder": settings.encoder,
        "parameters": int(model.count_params()),
        "epochs_trained": len(all_epochs.get("loss", [])),
        "train_seconds_this_run": round(train_seconds, 1),
        "train_examples_per_second": round(float(np.median(all_epochs["examples_per_second"])), 1)
        if all_epochs.get("examples_per_second") else None,
        "hardware": hardware.describe(),
        "word_vector_coverage": coverage,
    })
    config_json = job.to_json()
    export_path = export_model(model, data.data_dir, settings.model_dir, list(data.label_names), data.multi_label,
                               settings.threshold, config_json)
    metrics["export"] = export_path
    with tf.io.gfile.GFile(f"{settings.model_dir}/{METRICS_FILE}", "w") as f:
        f.write(json.dumps(metrics, indent=2) + "\n")
    write_plots(settings.model_dir, metrics, data.multi_label)
    with tf.io.gfile.GFile(f"{settings.model_dir}/{features.CONFIG_FILE}", "w") as f:
        f.write(config_json)
    with tf.io.gfile.GFile(f"{settings.model_dir}/{features.SUCCESS_MARKER}", "w") as f:
        f.write("")
    logging.info("eval accuracy %.4f (majority baseline %s), macro-F1 %.4f; model exported to %s",
                 metrics["accuracy"], metrics.get("majority_baseline_accuracy"), metrics["macro_f1"], export_path)
    return metrics


def build_parser() -> cli.ArgumentParser:
    parser = cli.ArgumentParser(prog="python -m model.trainer",
                                description="Fit a text encoder on preprocessed TFRecords, evaluate, export.")
    add = functools.partial(cli.add_override, parser)
    add("--data-dir", "train.data_dir", metavar="DIR", help="A finished preprocessing output directory.")
    add("--model-dir", "train.model_dir", metavar="DIR", help="Where checkpoints, logs, metrics and exports go.")
    add("--encoder", "train.encoder", choices=ENCODERS, help="bilstm (default) or albert.")
    add("--epochs", "train.epochs", type=int)
    add("--batch-size", "train.batch_size", type=int, help="Global batch size (split across devices).")
    add("--learning-rate", "train.learning_rate", type=float, help="Peak learning rate after warm-up.")
    add("--warmup-fraction", "train.warmup_fraction", type=float)
    add("--weight-decay", "train.weight_decay", type=float)
    add("--clip-norm", "train.clip_norm", type=float)
    add("--dropout", "train.dropout", type=float)
    add("--early-stopping-patience", "train.early_stopping_patience", type=int)
    add("--keep-checkpoints", "train.keep_checkpoints", type=int, metavar="N",
        help="Per-epoch weights files kept in checkpoints/, the most recent (default 3; 0 keeps all).")
    add("--strategy", "train.strategy", choices=STRATEGIES)
    add("--tpu", "train.tpu")
    add("--mixed-precision", "train.mixed_precision", choices=MIXED_PRECISION)
    add("--jit-compile", "train.jit_compile", choices=JIT_COMPILE,
        help="XLA-compile the training step (auto: on with GPUs/TPUs, off on CPUs, where it was no faster).")
    add("--class-weights", "train.class_weights", action="store_const", const=True)
    add("--threshold", "train.threshold", type=float, help="Multi-label decision threshold.")
    add("--word-vectors", "train.word_vectors", metavar="PATH", help="GloVe/word2vec text file.")
    add("--seed", "train.seed", type=int)
    add("--overwrite", "train.overwrite", action="store_const", const=True)
    add("--lstm-units", "bilstm.lstm_units", type=int)
    add("--num-lstm-layers", "bilstm.num_lstm_layers", type=int)
    add("--hidden-dim", "albert.hidden_dim", type=int)
    add("--num-layers", "albert.num_layers", type=int)
    add("--num-groups", "albert.num_groups", type=int)
    add("--num-heads", "albert.num_heads", type=int)
    return parser


def run(argv: Sequence[str] | None = None) -> dict:
    parser = build_parser()
    parsed = parser.parse_args(argv)
    return train_and_evaluate(cli.resolve_job(parsed))


def main(argv: Sequence[str] | None = None) -> None:
    cli.run_main(run, argv)


if __name__ == "__main__":
    main()
