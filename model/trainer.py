"""Training stage: transformed TFRecords → a fitted encoder, its evaluation, a raw-text export.

    python -m model.trainer --data-dir out/prep --model-dir out/model [--encoder bilstm|albert]
    python -m model.trainer --data-dir out/prep --model-dir out/model --encoder albert --init-from DIR

Writes to the model directory: _STAGE.json and config.json first, then checkpoints/ (weights of
the last epochs, plus the state a killed run resumes from), logs/ (TensorBoard), history.csv,
metrics.json, plots/*.png, export/<version>/ (the raw-text SavedModel) and, last, _SUCCESS. Run
the same command again after a crash and it resumes from the last finished epoch. Paths may be on
any filesystem TensorFlow knows (gs://...).

With --strategy multi_worker (or auto, when TF_CONFIG names several workers) the same command runs
on every worker of the cluster TF_CONFIG describes and trains with MultiWorkerMirroredStrategy,
the batch size being the global batch; only the chief writes the model directory (`model.cluster`).

With --init-from DIR (a pretrained-encoder directory, `schemas.pretrained`), the albert encoder
takes DIR's architecture and weights and is fine-tuned; the data must have been preprocessed with
DIR's tokenizer (`pipelines.preprocess --pretrained DIR`).

This module is the command line and the order of the steps; each step lives in its own module.
"""

from __future__ import annotations

from schemas.runtime_defaults import apply_tensorflow_defaults

apply_tensorflow_defaults()  # before TensorFlow loads: it reads them once

import functools
import logging
import math
import time
import warnings
from typing import Sequence

import keras
import numpy as np

from model import evaluation
from model.automatic import choose_settings
from model.callbacks import make_callbacks
from model.classifier import build_classifier, build_encoder
from model.classifier_head import ClassifierHead
from model.cluster import write_dir
from model.data import PreprocessedData, read_preprocessed
from model.export import export_model
from model.filesystem import join, write_text
from model.fine_tuning import check_pretrained_fits_data, resolve_pooling
from model.hardware import HardwarePlan, plan_hardware
from model.history import read_history
from model.inputs import make_dataset
from model.model_dir import check_model_dir, prepare_model_dir
from model.ngram_logits import NGRAM_LAYER_NAME, fit_feature_scales, ngram_logits_for
from model.ngram_solver import solve_ngram_weights
from model.optimization import class_weights, compile_model
from model.optimization import peak_learning_rate
from model.pretrained_encoder import load_encoder
from model.reports import write_metrics, write_plots
from model.word_vectors import load_word_vectors
from schemas import cli, features
from schemas.config import (ALBERT_POOLINGS, AUTO, ENCODERS, JIT_COMPILE, MIXED_PRECISION, MULTI_WORKER, NGRAM_FITS,
                            NGRAM_SOLVE, NGRAM_WEIGHTINGS, STRATEGIES, JobConfig, TrainConfig)
from schemas.errors import UserError


def build_model(job: JobConfig, data: PreprocessedData) -> keras.Model:
    """Encoder + head (+ the n-gram path) for the task the preprocessing output describes; `job` with
    its automatic settings chosen (`model.automatic`). Call inside strategy.scope()."""
    settings = job.train
    if settings.encoder == AUTO or job.ngrams.max_ngram is None:
        raise ValueError("build_model needs the job's automatic settings chosen: model.automatic.choose_settings.")
    activation = "sigmoid" if data.multi_label else "softmax"
    ngrams = (ngram_logits_for(job.ngrams.weighting, data.num_labels, data.vocab_size, job.ngrams.max_ngram,
                               job.ngrams.num_buckets) if job.ngrams.max_ngram else None)
    if settings.encoder == "none":
        return build_classifier(None, None, ngrams, activation)
    if settings.encoder == "bilstm":
        encoder = build_encoder("bilstm", data.vocab_size, data.max_seq_length, dropout=settings.dropout,
                                **vars(job.bilstm))
    elif settings.init_from:  # the architecture is the pretrained encoder's; albert's sizes do not apply
        encoder = load_encoder(settings.init_from, pooling=resolve_pooling(job.albert.pooling, data),
                               dropout=settings.dropout)
    else:
        encoder = build_encoder("albert", data.vocab_size, data.max_seq_length, dropout=settings.dropout,
                                **{**vars(job.albert), "pooling": resolve_pooling(job.albert.pooling, data)})
    head = ClassifierHead(num_outputs=data.num_labels, hidden_units=job.head.hidden_units,
                          dropout=job.head.dropout, batch_norm=job.head.batch_norm,
                          activation=activation)
    return build_classifier(encoder, head, ngrams)


def prepare_ngram_path(model: keras.Model, job: JobConfig, data: PreprocessedData) -> dict | None:
    """Fixes the n-gram path's scales from the training split and, with ngrams.fit solve, solves its
    weights and freezes them (`model.ngram_solver`); returns what the solver chose, or None."""
    if not job.ngrams.max_ngram:
        return None
    layer = model.get_layer(NGRAM_LAYER_NAME)
    if job.ngrams.fit != NGRAM_SOLVE:
        fit_feature_scales(layer, data, job.ngrams.weighting)
        return None
    solution = solve_ngram_weights(layer, data, job.ngrams.weighting, job.train.seed,
                                   class_weights(data) if job.train.class_weights else None)
    layer.trainable = False
    if not model.trainable_weights:
        logging.info("The solved n-gram path is the whole model: each epoch only records its loss.")
    return solution


def evaluate(model: keras.Model, data: PreprocessedData, settings: TrainConfig, multi_worker: bool = False) -> dict:
    """Loss and classification metrics on the eval split."""
    eval_dataset = make_dataset(data, features.EVAL_SPLIT, settings.batch_size, training=False,
                                multi_worker=multi_worker)
    loss = model.evaluate(eval_dataset, return_dict=True, verbose=0)["loss"]
    probabilities = model.predict(eval_dataset, verbose=0)
    labels = np.concatenate([batch_labels.numpy() for _, batch_labels in eval_dataset])
    metrics = evaluation.classification_metrics(labels, probabilities, list(data.label_names),
                                                multi_label=data.multi_label, threshold=settings.threshold)
    metrics["loss"] = float(loss)
    if not data.multi_label:
        metrics["majority_baseline_accuracy"] = evaluation.majority_baseline_accuracy(labels)
    return metrics


def train_and_evaluate(job: JobConfig) -> dict:
    """Fits, evaluates and exports; returns the metrics written to metrics.json."""
    model_dir_decision = check_model_dir(job)  # before reading anything: refusals leave no trace
    given_job = job
    data = read_preprocessed(job.train.data_dir)
    job, automatic_choices = choose_settings(given_job, data)
    settings = job.train
    if data.eval_examples == 0:
        raise UserError(f"{data.data_dir} has no eval examples; preprocess with --eval-fraction above 0.")
    if settings.word_vectors and settings.encoder == "none":
        raise UserError("--word-vectors initialise an encoder's word embeddings; train.encoder none has no encoder.")
    if settings.class_weights and data.multi_label:
        raise UserError("--class-weights applies to single-label corpora only.")
    if settings.init_from:
        check_pretrained_fits_data(settings.init_from, data)
    elif settings.encoder == "albert":
        resolve_pooling(job.albert.pooling, data)  # refuses pooling cls on data without [CLS]
    # Before the model directory is touched: with several workers this connects to all of them, so
    # every worker has checked the directory before the chief prepares it.
    hardware = plan_hardware(settings)
    if hardware.worker.is_chief:
        prepare_model_dir(given_job, model_dir_decision)  # a resumed run compares the settings as given
    keras.utils.set_random_seed(settings.seed)  # the same on every worker: they build the same input
    with write_dir(settings.model_dir, hardware.worker) as outputs:
        return _train(job, data, automatic_choices, hardware, outputs)


def _train(job: JobConfig, data: PreprocessedData, automatic_choices: dict, hardware: HardwarePlan,
           outputs: str) -> dict:
    """Fits, evaluates and exports, writing everything to `outputs` (the model directory, or a worker's
    temporary directory) and reading the resume state from the model directory."""
    settings = job.train
    multi_worker = hardware.strategy_name == MULTI_WORKER

    steps_per_epoch = math.ceil(data.train_examples / settings.batch_size)
    total_steps = steps_per_epoch * settings.epochs
    train_dataset = make_dataset(data, features.TRAIN_SPLIT, settings.batch_size, training=True,
                                 shuffle_buffer=settings.shuffle_buffer, seed=settings.seed, multi_worker=multi_worker)
    eval_dataset = make_dataset(data, features.EVAL_SPLIT, settings.batch_size, training=False,
                                multi_worker=multi_worker)
    with hardware.strategy.scope():
        model = build_model(job, data)
    coverage = load_word_vectors(model, settings.word_vectors, data) if settings.word_vectors else None
    ngram_solution = prepare_ngram_path(model, job, data)
    with hardware.strategy.scope():  # after the n-gram path is frozen or not: the optimizer sees what trains
        compile_model(model, settings, data.multi_label, total_steps, hardware.jit_compile)
    logging.info("Training %s%s (%d parameters%s) for up to %d epochs of %d steps on %d examples, peak learning "
                 "rate %g.", settings.encoder,
                 f" + {job.ngrams.max_ngram}-gram {job.ngrams.weighting}" if job.ngrams.max_ngram else "",
                 model.count_params(),
                 f", initialized from {settings.init_from}" if settings.init_from else "", settings.epochs,
                 steps_per_epoch, data.train_examples, peak_learning_rate(settings))

    started = time.perf_counter()
    # The training input repeats forever, so each epoch is exactly `steps_per_epoch` batches.
    with warnings.catch_warnings():
        # A solved n-gram path alone leaves nothing to train: the epochs record its loss, as said above.
        warnings.filterwarnings("ignore", "The model does not have any trainable weights")
        model.fit(train_dataset, epochs=settings.epochs, steps_per_epoch=steps_per_epoch,
                  validation_data=eval_dataset,
                  callbacks=make_callbacks(settings, data.multi_label, steps_per_epoch, write_dir=outputs),
                  class_weight=class_weights(data) if settings.class_weights else None,
                  shuffle=False, verbose=2)  # the dataset shuffles itself
    train_seconds = time.perf_counter() - started

    metrics = evaluate(model, data, settings, multi_worker)
    all_epochs = read_history(outputs)
    metrics.update({
        "encoder": settings.encoder,
        "ngrams": {"max_ngram": job.ngrams.max_ngram, "weighting": job.ngrams.weighting,
                   "num_buckets": job.ngrams.num_buckets, "fit": job.ngrams.fit,
                   "solved": ngram_solution} if job.ngrams.max_ngram else None,
        "epochs": settings.epochs,
        "batch_size": settings.batch_size,
        "automatic_choices": automatic_choices,
        "init_from": settings.init_from,
        "learning_rate": peak_learning_rate(settings),
        "parameters": int(model.count_params()),
        "epochs_trained": len(all_epochs.get("loss", [])),
        "train_seconds_this_run": round(train_seconds, 1),
        "train_examples_per_second": round(float(np.median(all_epochs["examples_per_second"])), 1)
        if all_epochs.get("examples_per_second") else None,
        "hardware": hardware.describe(),
        "word_vector_coverage": coverage,
    })
    config_json = job.to_json()
    # Every worker exports and writes, each to its own `outputs`: saving may read variables that
    # every worker must take part in reading.
    export_path = export_model(model, data.data_dir, outputs, list(data.label_names), data.multi_label,
                               settings.threshold, config_json)
    metrics["export"] = export_path
    write_metrics(outputs, metrics)
    write_plots(outputs, metrics, data.multi_label)
    write_text(join(outputs, features.CONFIG_FILE), config_json)  # this run's, if it resumed another
    write_text(join(outputs, features.SUCCESS_MARKER), "")
    logging.info("eval accuracy %.4f (majority baseline %s), macro-F1 %.4f; model exported to %s%s",
                 metrics["accuracy"], metrics.get("majority_baseline_accuracy"), metrics["macro_f1"], export_path,
                 "" if hardware.worker.is_chief else " (this worker's temporary copy; the chief's is kept)")
    return metrics


def build_parser() -> cli.ArgumentParser:
    parser = cli.ArgumentParser(prog="python -m model.trainer",
                                description="Fit a text encoder on preprocessed TFRecords, evaluate, export.")
    add = functools.partial(cli.add_override, parser)
    add("--data-dir", "train.data_dir", metavar="DIR", help="A finished preprocessing output directory.")
    add("--model-dir", "train.model_dir", metavar="DIR", help="Where checkpoints, logs, metrics and exports go.")
    add("--encoder", "train.encoder", choices=(AUTO, *ENCODERS),
        help="bilstm, albert, none (the n-gram path alone) or auto (default: chosen from the data's stats.json).")
    add("--epochs", "train.epochs", type=int, help="Default: chosen from the data.")
    add("--batch-size", "train.batch_size", type=int,
        help="Global batch size (split across devices). Default: chosen from the data.")
    add("--init-from", "train.init_from", metavar="DIR",
        help="Fine-tune the albert encoder of this pretrained-encoder directory (its architecture and weights).")
    add("--learning-rate", "train.learning_rate", type=float,
        help="Peak learning rate after warm-up (default 3e-5 with --init-from, else 1e-3).")
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
    add("--overwrite", "train.overwrite", action="store_const", const=True,
        help="Replace this trainer's own finished (or unfinished) run in --model-dir; nothing else is ever deleted.")
    add("--max-ngram", "ngrams.max_ngram", type=int, metavar="N",
        help="Longest word n-gram of the n-gram path (0: none). Default: chosen from the data.")
    add("--ngram-buckets", "ngrams.num_buckets", type=int, metavar="N", help="Rows shared by hashed n-grams. Default: from the corpus size.")
    add("--ngram-weighting", "ngrams.weighting", choices=NGRAM_WEIGHTINGS,
        help="naive_bayes (log-count ratios), tfidf, or auto (naive_bayes for two classes).")
    add("--ngram-fit", "ngrams.fit", choices=NGRAM_FITS,
        help="solve (a linear model solved to its optimum before training, then frozen), train (by gradient "
             "descent with the encoder), or auto (solve with --encoder none).")
    add("--lstm-units", "bilstm.lstm_units", type=int)
    add("--num-lstm-layers", "bilstm.num_lstm_layers", type=int)
    add("--hidden-dim", "albert.hidden_dim", type=int)
    add("--num-layers", "albert.num_layers", type=int)
    add("--num-groups", "albert.num_groups", type=int)
    add("--num-heads", "albert.num_heads", type=int)
    add("--pooling", "albert.pooling", choices=ALBERT_POOLINGS,
        help="albert: cls (the [CLS] token), mean (of all tokens) or auto (cls for sentencepiece data).")
    return parser


def run(argv: Sequence[str] | None = None) -> dict:
    parser = build_parser()
    parsed = parser.parse_args(argv)
    return train_and_evaluate(cli.resolve_job(parsed))


def main(argv: Sequence[str] | None = None) -> None:
    cli.run_main(run, argv)


if __name__ == "__main__":
    main()
