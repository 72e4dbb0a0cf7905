"""Training throughput of each encoder, and its model-FLOPs utilization (MFU) against a matmul peak
measured in the same run.

    .venv/bin/python benchmarks/train_bench.py [--encoders bilstm albert] [--seq-length 128]
        [--batch-sizes 64 256] [--steps 20] [--precisions float32 bfloat16] [--jit-compile on off]
        [--json-out FILE]

For every encoder × batch size × precision × XLA setting it builds the project's classifier at its default size
(schemas/config.py), compiles it with the trainer's optimizer, and times `model.fit` over
synthetic full-length batches (no padding, so every position costs what the FLOPs count says),
after warm-up steps that absorb tracing and compilation; then it times the forward pass alone
(inference, compiled the same way) on one such batch. The baseline is the machine itself: a
chain of square matmuls in the same precision, timed in the same run, whose FLOP/s is the peak the
model's FLOP/s is divided by.

Model FLOPs count the matrix multiplications only (2 per multiply-add): the forward pass from the
shapes, and training as 3x the forward pass (the backward pass costs about twice the forward),
the convention of the PaLM paper's MFU. Embedding lookups, softmax, normalization and the
optimizer update are real work left out of the count, so they lower the MFU.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)  # run from a checkout: the project's packages without installing it

from schemas.runtime_defaults import apply_tensorflow_defaults  # noqa: E402  (needs the path above)

apply_tensorflow_defaults()  # as the stages: before TensorFlow loads

from model.flops import albert_forward_flops, measure_matmul_peak  # noqa: E402  (after the defaults)

PRECISION_POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16"}


def bilstm_forward_flops(seq_length: int, embedding_dim: int, projection_dim: int, lstm_units: int,
                         num_lstm_layers: int) -> int:
    """Matmul FLOPs of one example through the BiLSTM encoder."""
    flops = 2 * seq_length * embedding_dim * projection_dim
    layer_input = projection_dim
    for _ in range(num_lstm_layers):
        # Per step and direction: [input ; state] (d + U) times the four gates' kernel (4U).
        flops += 2 * 2 * seq_length * (layer_input + lstm_units) * 4 * lstm_units
        layer_input = 2 * lstm_units
    return flops


def head_forward_flops(context_dim: int, hidden_units: tuple[int, ...], num_classes: int) -> int:
    flops, width = 0, context_dim
    for units in (*hidden_units, num_classes):
        flops += 2 * width * units
        width = units
    return flops


def training_flops_per_example(encoder: str, job, seq_length: int, num_classes: int) -> int:
    from model.classifier import build_encoder

    encoder_config = job.bilstm if encoder == "bilstm" else job.albert
    forward_flops = bilstm_forward_flops if encoder == "bilstm" else albert_forward_flops
    forward = forward_flops(seq_length, **dataclasses.asdict(encoder_config))
    # The head's input width as the encoder defines it (an unbuilt layer: no weights are made).
    context_dim = build_encoder(encoder, 2, seq_length, **vars(encoder_config)).output_dim
    return 3 * (forward + head_forward_flops(context_dim, job.head.hidden_units, num_classes))


def measure_training(encoder: str, job, precision: str, jit_compile: bool, seq_length: int, batch_size: int,
                     steps: int, warmup_steps: int, vocab_size: int = 20000, num_classes: int = 2
                     ) -> tuple[float, float]:
    """Examples/s of training (`model.fit`) and of inference (the forward pass alone, compiled the
    same way) over synthetic full-length batches, each after warm-up."""
    import keras
    import numpy as np
    import tensorflow as tf

    from model.classifier import build_classifier, build_encoder
    from model.classifier_head import ClassifierHead
    from model.inputs import without_autotuning
    from model.optimization import make_optimizer

    keras.backend.clear_session()
    keras.mixed_precision.set_dtype_policy(PRECISION_POLICIES[precision])
    keras.utils.set_random_seed(0)
    encoder_config = job.bilstm if encoder == "bilstm" else job.albert
    model = build_classifier(
        build_encoder(encoder, vocab_size, seq_length, dropout=job.train.dropout, **vars(encoder_config)),
        ClassifierHead(num_classes, hidden_units=job.head.hidden_units, dropout=job.head.dropout))
    model.compile(optimizer=make_optimizer(job.train, total_steps=steps + warmup_steps),
                  loss=keras.losses.SparseCategoricalCrossentropy(), jit_compile=jit_compile)
    rng = np.random.default_rng(0)
    token_ids = rng.integers(1, vocab_size, size=(batch_size * 8, seq_length), dtype=np.int64)  # no padding
    labels = rng.integers(0, num_classes, size=(batch_size * 8,), dtype=np.int64)
    dataset = (tf.data.Dataset.from_tensor_slices((token_ids, labels)).batch(batch_size).repeat().prefetch(2)
               .with_options(without_autotuning()))  # as the trainer's input: no stall when `fit` ends
    model.fit(dataset, epochs=1, steps_per_epoch=warmup_steps, verbose=0)  # trace, compile, warm caches
    started = time.perf_counter()
    model.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0)
    train_seconds = time.perf_counter() - started

    forward = tf.function(lambda ids: model(ids, training=False), jit_compile=jit_compile)
    batch = tf.constant(token_ids[:batch_size])
    for _ in range(warmup_steps):
        forward(batch).numpy()
    started = time.perf_counter()
    for _ in range(steps):
        forward(batch).numpy()
    inference_seconds = time.perf_counter() - started
    keras.mixed_precision.set_dtype_policy("float32")
    return steps * batch_size / train_seconds, steps * batch_size / inference_seconds


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--encoders", nargs="+", default=["bilstm", "albert"], choices=["bilstm", "albert"])
    parser.add_argument("--seq-length", type=int, default=128)
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[64],
                        help="Batch sizes to measure (the trainer's default is 64).")
    parser.add_argument("--steps", type=int, default=20, help="Timed training steps per setting.")
    parser.add_argument("--warmup-steps", type=int, default=3)
    parser.add_argument("--precisions", nargs="+", default=["float32"], choices=sorted(PRECISION_POLICIES))
    parser.add_argument("--jit-compile", nargs="+", default=["off"], choices=["on", "off"],
                        help="XLA settings to measure (the trainer's default on CPUs is off).")
    parser.add_argument("--config", help="A job file whose model sizes to use (default: the project's).")
    parser.add_argument("--json-out")
    args = parser.parse_args(argv)

    import tensorflow as tf

    from schemas.config_loader import load_job_config

    job = load_job_config(args.config)
    # Larger and longer than the trainer's own measurement: the peak is this benchmark's baseline.
    peaks = {precision: measure_matmul_peak(precision, size=2048, repeats=8, seconds=3.0)
             for precision in args.precisions}
    rows = []
    for encoder in args.encoders:
        flops_per_example = training_flops_per_example(encoder, job, args.seq_length, num_classes=2)
        for batch_size in args.batch_sizes:
            for precision in args.precisions:
                for jit in args.jit_compile:
                    examples_per_second, inference_per_second = measure_training(
                        encoder, job, precision, jit == "on", args.seq_length, batch_size, args.steps,
                        args.warmup_steps)
                    achieved = examples_per_second * flops_per_example
                    print(f"{encoder} batch {batch_size} {precision} xla={jit}: training "
                          f"{examples_per_second:.1f} examples/s, MFU {achieved / peaks[precision]:.1%}; "
                          f"inference {inference_per_second:.1f} examples/s", file=sys.stderr, flush=True)
                    rows.append({"encoder": encoder, "batch_size": batch_size, "precision": precision, "xla": jit,
                                 "examples_per_second": examples_per_second,
                                 "model_gflops_per_example": flops_per_example / 1e9,
                                 "achieved_gflops_per_second": achieved / 1e9,
                                 "matmul_peak_gflops_per_second": peaks[precision] / 1e9,
                                 "mfu": achieved / peaks[precision],
                                 "inference_examples_per_second": inference_per_second})

    print(f"\nTraining, sequence length {args.seq_length}, {args.steps} timed steps "
          f"({os.cpu_count()} cores, TensorFlow {tf.__version__})")
    print("baseline: " + ", ".join(f"{p} matmul peak {peaks[p] / 1e9:.1f} GFLOP/s" for p in args.precisions))
    print(f"{'encoder':<8}{'batch':>6}{'precision':>10}{'XLA':>5}{'train ex/s':>12}{'GFLOP/ex':>10}{'GFLOP/s':>10}"
          f"{'MFU':>8}{'infer ex/s':>12}")
    for row in rows:
        print(f"{row['encoder']:<8}{row['batch_size']:>6}{row['precision']:>10}{row['xla']:>5}"
              f"{row['examples_per_second']:>12.1f}{row['model_gflops_per_example']:>10.3f}"
              f"{row['achieved_gflops_per_second']:>10.1f}{row['mfu']:>8.1%}{row['inference_examples_per_second']:>12.1f}")
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump({"benchmark": "train", "seq_length": args.seq_length, "batch_sizes": args.batch_sizes,
                       "steps": args.steps, "cores": os.cpu_count(),
                       "matmul_peak_gflops_per_second": {p: v / 1e9 for p, v in peaks.items()},
                       "results": rows}, f, indent=2)


if __name__ == "__main__":
    main()
