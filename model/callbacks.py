"""The callbacks of a training run: timing, history, TensorBoard, resume state, checkpoints."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable

import keras
import tensorflow as tf

from model.filesystem import join
from model.history import HistoryWriter
from schemas.config import TrainConfig
from schemas.durations import format_duration

CHECKPOINTS_DIR = "checkpoints"
BACKUP_DIR = "checkpoints/resume"
LOGS_DIR = "logs"
EPOCH_WEIGHTS_FILE = "epoch-{epoch:03d}.weights.h5"  # ModelCheckpoint's file name template
EPOCH_WEIGHTS_PATTERN = re.compile(r"epoch-(\d+)\.weights\.h5")  # its names, epoch captured


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


class TimeLeft(keras.callbacks.Callback):
    """Logs after each epoch how long the run has taken and about how long the rest will take: the
    mean epoch of this run (validation included) times the epochs left. Early stopping may end the
    run sooner; a resumed run counts from the epoch it resumed at."""

    def __init__(self, epochs: int, clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self._epochs = epochs
        self._clock = clock

    def on_train_begin(self, logs=None):
        self._started, self._first_epoch = self._clock(), None

    def on_epoch_begin(self, epoch, logs=None):
        if self._first_epoch is None:
            self._first_epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        elapsed = self._clock() - self._started
        epochs_left = self._epochs - (epoch + 1)
        per_epoch = elapsed / (epoch + 1 - self._first_epoch)
        logging.info("Epoch %d/%d done, %s into this run; %s", epoch + 1, self._epochs, format_duration(elapsed),
                     f"about {format_duration(per_epoch * epochs_left)} left for {epochs_left} more "
                     f"epoch{'s' if epochs_left > 1 else ''}." if epochs_left else "the last epoch.")


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
                by_epoch[int(match.group(1))] = join(self._directory, name)
        for epoch_number in sorted(by_epoch)[:-self._keep]:
            tf.io.gfile.remove(by_epoch[epoch_number])


class RestoreFromAndBackUp(keras.callbacks.BackupAndRestore):
    """BackupAndRestore that restores from one run directory's resume state and backs up to another's.

    Every worker of a multi-worker run restores the chief's state (the model directory's), so all
    of them resume at the same epoch with the same weights; each backs up where it writes, and only
    the chief's copy is kept.
    """

    def __init__(self, restore_dir: str, backup_dir: str, **kwargs):
        super().__init__(backup_dir=backup_dir, **kwargs)
        self._restore = keras.callbacks.BackupAndRestore(backup_dir=restore_dir, **kwargs)

    def set_model(self, model):
        super().set_model(model)
        self._restore.set_model(model)

    def on_train_begin(self, logs=None):
        self._restore.on_train_begin(logs)


def run_callbacks(run_dir: str, examples_per_epoch: int, write_dir: str | None = None) -> list:
    """Timing, history.csv, TensorBoard and the resume state, in the order a kill at an epoch end
    needs: logs first, then the resume state, so a resumable epoch is always a logged one.

    All are written to `write_dir` (default: `run_dir`; `model.cluster.write_dir` for a worker of a
    multi-worker run); the resume state is read from `run_dir`.
    """
    write_dir = write_dir or run_dir
    return [
        EpochTimer(examples_per_epoch),
        HistoryWriter(write_dir),
        keras.callbacks.TensorBoard(log_dir=join(write_dir, LOGS_DIR)),
        # Saves model and optimizer state after every epoch; a restarted run continues from there.
        # Two copies, so a kill in the middle of writing one resumes from the other.
        RestoreFromAndBackUp(restore_dir=join(run_dir, BACKUP_DIR), backup_dir=join(write_dir, BACKUP_DIR),
                             delete_checkpoint=False, double_checkpoint=True),
    ]


def make_callbacks(settings: TrainConfig, multi_label: bool, steps_per_epoch: int,
                   write_dir: str | None = None) -> list:
    """The training run's callbacks; `write_dir` as in `run_callbacks`."""
    write_dir = write_dir or settings.model_dir
    monitor, mode = ("val_loss", "min") if multi_label else ("val_accuracy", "max")
    # The per-epoch checkpoint after the resume state: a checkpoint on disk implies its epoch is
    # logged and resumable.
    callbacks = [
        *run_callbacks(settings.model_dir, steps_per_epoch * settings.batch_size, write_dir),
        keras.callbacks.ModelCheckpoint(join(write_dir, CHECKPOINTS_DIR, EPOCH_WEIGHTS_FILE), save_weights_only=True),
        PruneEpochCheckpoints(join(write_dir, CHECKPOINTS_DIR), settings.keep_checkpoints),
        TimeLeft(settings.epochs),
    ]
    if settings.early_stopping_patience:
        callbacks.append(keras.callbacks.EarlyStopping(monitor=monitor, mode=mode, restore_best_weights=True,
                                                       patience=settings.early_stopping_patience))
    return callbacks
