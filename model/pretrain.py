"""Pretraining stage: masked-LM + sentence-order pretraining of ALBERT on the user's own corpus.

    python -m pipelines.preprocess --task pretrain --input 'texts/*.jsonl' --output-dir out/pairs
    python -m model.pretrain --data-dir out/pairs --output-dir out/encoder [--init-from DIR0] [--steps N]
    python -m model.trainer --data-dir out/prep --model-dir out/model --encoder albert --init-from out/encoder

Reads the segment pairs of a pretrain-task preprocessing output and trains keras-hub's
AlbertBackbone (the `albert` section's sizes, or --init-from's architecture and weights: domain-
adaptive pretraining) with a masked-LM head tied to the word embeddings and a sentence-order head
on the pooled [CLS] output. Masks are drawn afresh each time a batch is read (`model.masking`).

Writes to the output directory: _STAGE.json and config.json first, then checkpoints/resume (the
state a killed run resumes from, every --steps-per-checkpoint steps), logs/ (TensorBoard),
history.csv (a row per checkpoint interval, with held-out masked-LM and sentence-order loss and
accuracy), metrics.json, plots/curves.png and, last, the pretrained-encoder files (encoder.json,
encoder.weights.h5, spiece.model; `schemas.pretrained`, source_format "pretrain", pooler
"trained") and _SUCCESS. The finished directory is read by `pipelines.preprocess --pretrained DIR`
and `model.trainer --init-from DIR` like an imported checkpoint. Run the same command again after a
crash and it resumes from the last checkpoint; changed settings are refused, naming them. Steps are
rounded up to a whole number of checkpoint intervals.

This module is the command line and the order of the steps; each step lives in its own module.
"""

from __future__ import annotations

from schemas.runtime_defaults import apply_tensorflow_defaults

apply_tensorflow_defaults()  # before TensorFlow loads: it reads them once

import collections
import functools
import logging
import math
import time
from typing import Sequence

import keras
import numpy as np
import tensorflow as tf

from model import plots
from model.callbacks import run_callbacks
from model.filesystem import join, write_text
from model.flops import compute_dtype, measure_matmul_peak, pretraining_flops_per_example
from model.hardware import plan_hardware
from model.history import read_history
from model.model_dir import RESUMABLE_CHANGES, RunDir, check_run_dir, comparable_settings, prepare_run_dir
from model.pretrained_encoder import encoder_json, read_encoder_config, tokenizer_description, write_encoder_files
from model.pretraining_data import (MLM_OUTPUT, SOP_OUTPUT, PretrainData, make_pretrain_dataset, masking_settings,
                                    read_pretrain_data)
from model.pretraining_model import (build_backbone, build_pretraining_model, compile_pretraining_model,
                                     load_pretrained_backbone, peak_learning_rate)
from model.reports import PLOTS_DIR, write_metrics
from schemas import cli, features, output_dirs
from schemas import pretrained as spec
from schemas.config import JIT_COMPILE, MIXED_PRECISION, PRETRAIN_OPTIMIZERS, STRATEGIES, JobConfig
from schemas.errors import UserError

CURVES_FILE = "curves.png"
# Settings a resumed pretraining may change: where files go, how the hardware runs the steps, how
# much of the held-out split each checkpoint evaluates. The rest shapes the saved state.
_RESUMABLE = frozenset({"pretrain.output_dir", "pretrain.overwrite", "pretrain.eval_batches", "pretrain.strategy",
                        "pretrain.tpu", "pretrain.mixed_precision", "pretrain.jit_compile", "albert.pooling"})
_PATHS = ("pretrain.data_dir", "pretrain.init_from")


def pretrain_run_dir(job: JobConfig) -> RunDir:
    settings = job.pretrain
    sections = ("pretrain",) if settings.init_from else ("pretrain", "albert")  # init_from fixes the sizes
    return RunDir(settings.output_dir, output_dirs.PRETRAIN, settings.overwrite,
                  (settings.data_dir, settings.init_from or ""), flag="--output-dir", noun="output directory",
                  state_settings=lambda config: comparable_settings(config, sections, _RESUMABLE | RESUMABLE_CHANGES,
                                                                    _PATHS))


def check_init_from(directory: str, data: PretrainData) -> None:
    """Refuses an encoder whose tokenizer or position table does not fit the pairs."""
    config = read_encoder_config(directory)
    if config["tokenizer"]["sha256"] != data.tokenizer_sha256:
        raise UserError(f"The pairs in {data.data_dir} were tokenized with another SentencePiece model than the "
                        f"encoder in {directory} (sha256 {data.tokenizer_sha256[:12]} vs "
                        f"{config['tokenizer']['sha256'][:12]}); preprocess with --pretrained {directory}.")
    if config["backbone"]["max_sequence_length"] < data.max_seq_length:
        raise UserError(f"The pairs in {data.data_dir} are up to {data.max_seq_length} tokens long, more than the "
                        f"encoder in {directory} has positions for ({config['backbone']['max_sequence_length']}).")


def evaluate(model: keras.Model, eval_dataset: tf.data.Dataset) -> dict:
    """Held-out masked-LM and sentence-order loss and accuracy, and the unigram baseline: the accuracy of
    always predicting the most frequent masked token of these batches."""
    results = model.evaluate(eval_dataset, return_dict=True, verbose=0)
    counts = collections.Counter()
    for _, labels, weights in eval_dataset:
        ids, real = labels[MLM_OUTPUT].numpy().ravel(), weights[MLM_OUTPUT].numpy().ravel() > 0
        counts.update(ids[real].tolist())
    total = sum(counts.values())
    return {"mlm_accuracy": float(results[f"{MLM_OUTPUT}_accuracy"]), "mlm_loss": float(results[f"{MLM_OUTPUT}_loss"]),
            "sop_accuracy": float(results[f"{SOP_OUTPUT}_accuracy"]), "sop_loss": float(results[f"{SOP_OUTPUT}_loss"]),
            "mlm_unigram_baseline_accuracy": max(counts.values()) / total if total else None,
            "eval_predictions": total}


def pretrain(job: JobConfig) -> dict:
    """Pretrains, evaluates and writes the pretrained-encoder directory; returns metrics.json's content."""
    settings = job.pretrain
    run_dir = pretrain_run_dir(job)
    decision = check_run_dir(job, run_dir)  # before reading anything: refusals leave no trace
    data = read_pretrain_data(settings.data_dir)
    if not data.eval_pairs:
        raise UserError(f"{data.data_dir} has no held-out pairs; preprocess with --eval-fraction above 0.")
    tokenizer_model = tf.io.gfile.GFile(data.tokenizer_model_path, "rb").read()
    tokenizer = tokenizer_description(tokenizer_model, data.lowercase, data.tokenizer_model_path)
    if "mask" not in tokenizer["special_tokens"]:
        raise UserError(f"The SentencePiece model {data.tokenizer_model_path} has no {spec.MASK_PIECE} piece, "
                        f"which masked-LM pretraining needs.")
    if settings.init_from:
        check_init_from(settings.init_from, data)
    hardware = plan_hardware(settings, multi_worker=False)  # refuses several workers before writing
    prepare_run_dir(job, run_dir, decision)
    keras.utils.set_random_seed(settings.seed)

    masking = masking_settings(data, settings.mask_fraction, settings.max_ngram, settings.max_predictions)
    epochs = math.ceil(settings.steps / settings.steps_per_checkpoint)
    total_steps = epochs * settings.steps_per_checkpoint
    trained_batches = len(read_history(settings.output_dir).get("loss", [])) * settings.steps_per_checkpoint
    train_dataset = make_pretrain_dataset(data, features.TRAIN_SPLIT, settings.batch_size, masking, training=True,
                                          seed=settings.seed, shuffle_buffer=settings.shuffle_buffer,
                                          first_batch=trained_batches)  # a resumed run goes on with new draws
    eval_dataset = make_pretrain_dataset(data, features.EVAL_SPLIT, settings.batch_size, masking, training=False,
                                         seed=settings.seed, max_batches=settings.eval_batches)
    with hardware.strategy.scope():
        backbone = (load_pretrained_backbone(settings.init_from, settings.dropout) if settings.init_from
                    else build_backbone(job.albert, data.vocab_size, data.max_seq_length, settings.dropout))
        model = build_pretraining_model(backbone)
        compile_pretraining_model(model, settings, hardware.jit_compile, total_steps)
    # Measured before training, in the run's precision, so the two do not compete for the cores.
    peak = measure_matmul_peak(compute_dtype(hardware.precision_policy))
    logging.info("Pretraining ALBERT (%d parameters%s) for %d steps (%d checkpoint intervals) on %d pairs, "
                 "peak learning rate %g.", model.count_params(),
                 f", from {settings.init_from}" if settings.init_from else "", total_steps, epochs, data.train_pairs,
                 peak_learning_rate(settings))

    started = time.perf_counter()
    model.fit(train_dataset, epochs=epochs, steps_per_epoch=settings.steps_per_checkpoint,
              validation_data=eval_dataset,
              callbacks=run_callbacks(settings.output_dir, settings.steps_per_checkpoint * settings.batch_size),
              shuffle=False, verbose=2)  # the dataset shuffles itself
    train_seconds = time.perf_counter() - started

    metrics = evaluate(model, eval_dataset)
    history = read_history(settings.output_dir)
    examples_per_second = float(np.median(history["examples_per_second"])) if history.get("examples_per_second") \
        else None
    predictions = min(settings.max_predictions, max(1, round(settings.mask_fraction * (data.mean_pair_length - 3))))
    backbone_sizes = {key: value for key, value in backbone.get_config().items()
                      if key in ("embedding_dim", "hidden_dim", "num_layers", "intermediate_dim",
                                 "num_inner_repetitions")}
    flops = pretraining_flops_per_example(data.mean_pair_length, predictions, data.vocab_size, **backbone_sizes)
    metrics.update({
        "steps": len(history.get("loss", [])) * settings.steps_per_checkpoint,
        "init_from": settings.init_from,
        "optimizer": settings.optimizer,
        "learning_rate": peak_learning_rate(settings),
        "parameters": int(model.count_params()),
        "encoder_parameters": int(backbone.count_params()),
        "train_pairs": data.train_pairs,
        "eval_pairs": data.eval_pairs,
        "train_seconds": round(train_seconds, 1),  # this run's (a resumed run's last part only)
        "examples_per_second": examples_per_second,
        "training_flops_per_example": flops,
        "matmul_peak_gflops_per_second": round(peak / 1e9, 1),
        "mfu": examples_per_second * flops / peak if examples_per_second else None,
        "hardware": hardware.describe(),
    })
    write_metrics(settings.output_dir, metrics)
    if history:
        plots.plot_training_curves(history, join(settings.output_dir, PLOTS_DIR, CURVES_FILE),
                                   title="Pretraining",
                                   x_label=f"Checkpoint interval ({settings.steps_per_checkpoint} steps)")
    provenance = {"source": data.data_dir, "source_format": spec.SOURCE_PRETRAIN,
                  "tensors": len(backbone.weights), "sha256": data.tokenizer_sha256, "pooler": spec.POOLER_TRAINED,
                  "init_from": settings.init_from, "steps": metrics["steps"]}
    write_encoder_files(settings.output_dir, backbone, tokenizer_model, encoder_json(backbone, tokenizer, provenance))
    write_text(join(settings.output_dir, features.CONFIG_FILE), job.to_json())  # this run's, if it resumed another
    write_text(join(settings.output_dir, features.SUCCESS_MARKER), "")
    logging.info("held-out masked-LM accuracy %.4f (unigram baseline %.4f), sentence-order accuracy %.4f; "
                 "encoder written to %s", metrics["mlm_accuracy"], metrics["mlm_unigram_baseline_accuracy"] or 0,
                 metrics["sop_accuracy"], settings.output_dir)
    return metrics


def build_parser() -> cli.ArgumentParser:
    parser = cli.ArgumentParser(prog="python -m model.pretrain",
                                description="Pretrain ALBERT (masked LM + sentence order) on segment pairs.")
    add = functools.partial(cli.add_override, parser)
    add("--data-dir", "pretrain.data_dir", metavar="DIR", help="A pretrain-task preprocessing output directory.")
    add("--output-dir", "pretrain.output_dir", metavar="DIR",
        help="Becomes a pretrained-encoder directory (plus checkpoints, logs, metrics).")
    add("--init-from", "pretrain.init_from", metavar="DIR",
        help="Continue pretraining this pretrained-encoder directory (its architecture, weights and tokenizer).")
    add("--steps", "pretrain.steps", type=int, help="Optimizer steps in all.")
    add("--steps-per-checkpoint", "pretrain.steps_per_checkpoint", type=int,
        help="Resume state, held-out evaluation and a history row every this many steps.")
    add("--batch-size", "pretrain.batch_size", type=int, help="Global batch size (split across devices).")
    add("--optimizer", "pretrain.optimizer", choices=PRETRAIN_OPTIMIZERS)
    add("--learning-rate", "pretrain.learning_rate", type=float,
        help="Peak learning rate after warm-up (default 5e-4, 1e-4 with --init-from).")
    add("--warmup-fraction", "pretrain.warmup_fraction", type=float)
    add("--weight-decay", "pretrain.weight_decay", type=float)
    add("--clip-norm", "pretrain.clip_norm", type=float)
    add("--dropout", "pretrain.dropout", type=float)
    add("--mask-fraction", "pretrain.mask_fraction", type=float, help="Share of the tokens predicted (0.15).")
    add("--max-ngram", "pretrain.max_ngram", type=int, help="Longest masked span; p(n) is proportional to 1/n.")
    add("--max-predictions", "pretrain.max_predictions", type=int, help="Masked tokens per pair, at most.")
    add("--eval-batches", "pretrain.eval_batches", type=int, help="Held-out batches per evaluation (0: all).")
    add("--strategy", "pretrain.strategy", choices=STRATEGIES)
    add("--tpu", "pretrain.tpu")
    add("--mixed-precision", "pretrain.mixed_precision", choices=MIXED_PRECISION)
    add("--jit-compile", "pretrain.jit_compile", choices=JIT_COMPILE)
    add("--shuffle-buffer", "pretrain.shuffle_buffer", type=int)
    add("--seed", "pretrain.seed", type=int)
    add("--overwrite", "pretrain.overwrite", action="store_const", const=True,
        help="Replace this stage's own finished (or unfinished) run in --output-dir; nothing else is ever deleted.")
    add("--embedding-dim", "albert.embedding_dim", type=int)
    add("--hidden-dim", "albert.hidden_dim", type=int)
    add("--num-layers", "albert.num_layers", type=int)
    add("--num-groups", "albert.num_groups", type=int)
    add("--num-heads", "albert.num_heads", type=int)
    add("--intermediate-dim", "albert.intermediate_dim", type=int)
    add("--num-inner-repetitions", "albert.num_inner_repetitions", type=int)
    return parser


def run(argv: Sequence[str] | None = None) -> dict:
    return pretrain(cli.resolve_job(build_parser().parse_args(argv)))


def main(argv: Sequence[str] | None = None) -> None:
    cli.run_main(run, argv)


if __name__ == "__main__":
    main()
