"""Test accuracy on a real corpus through the real commands, beside a majority-class baseline.

    .venv/bin/python benchmarks/quality_bench.py --dataset ../shared/datasets/trec --work-dir /tmp/qb \
        [--encoder bilstm] [--config job.yaml] [-- extra trainer flags]

Runs `python -m pipelines.preprocess` on DATASET/train.parquet, `python -m model.trainer` on its
output, then calls the exported raw-text model on DATASET/test.parquet. Prints test accuracy and
macro-F1 of the model and of the majority class of the training split, and each stage's wall time.
--json-out writes the same numbers as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)  # run from a checkout: the project's packages without installing it


def run_stage(module: str, args: list[str]) -> float:
    started = time.perf_counter()
    completed = subprocess.run([sys.executable, "-m", module, *args], cwd=REPO_ROOT, capture_output=True,
                               text=True, check=False)
    if completed.returncode != 0:
        sys.stderr.write(completed.stderr[-5000:])
        raise SystemExit(f"{module} failed with exit status {completed.returncode}")
    return time.perf_counter() - started


def score_test_split(export_dir: str, test_path: str, label_names: list[str], batch_size: int = 256) -> dict:
    import numpy as np
    import pyarrow.parquet as pq
    import tensorflow as tf
    import tensorflow_text  # noqa: F401

    from model.evaluation import classification_metrics

    table = pq.read_table(test_path, columns=["text", "label"])
    texts, labels = table.column("text").to_pylist(), table.column("label").to_pylist()
    serve = tf.saved_model.load(export_dir).signatures["serving_default"]
    started = time.perf_counter()
    probabilities = np.concatenate([serve(text=tf.constant(texts[i:i + batch_size]))["probabilities"].numpy()
                                    for i in range(0, len(texts), batch_size)])
    seconds = time.perf_counter() - started
    index = {name: i for i, name in enumerate(label_names)}
    label_ids = np.array([index[label] for label in labels])
    metrics = classification_metrics(label_ids, probabilities, label_names)
    metrics["docs_per_second"] = len(texts) / seconds
    return metrics


def majority_baseline(train_path: str, test_path: str, label_names: list[str]) -> dict:
    import collections

    import numpy as np
    import pyarrow.parquet as pq

    from model.evaluation import classification_metrics

    majority = collections.Counter(pq.read_table(train_path, columns=["label"]).column("label").to_pylist()
                                   ).most_common(1)[0][0]
    labels = pq.read_table(test_path, columns=["label"]).column("label").to_pylist()
    index = {name: i for i, name in enumerate(label_names)}
    probabilities = np.zeros((len(labels), len(label_names)))
    probabilities[:, index[majority]] = 1.0
    return classification_metrics(np.array([index[label] for label in labels]), probabilities, label_names)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", required=True, help="A directory with train.parquet and test.parquet.")
    parser.add_argument("--work-dir", required=True)
    parser.add_argument("--encoder", default="bilstm", choices=["bilstm", "albert"])
    parser.add_argument("--config", help="Job file for both stages.")
    parser.add_argument("--json-out")
    args, trainer_flags = parser.parse_known_args(argv)
    name = os.path.basename(os.path.normpath(args.dataset))
    prep_dir = os.path.join(args.work_dir, name, "prep")
    model_dir = os.path.join(args.work_dir, name, f"model-{args.encoder}")
    config = ["--config", args.config] if args.config else []

    seconds = {"preprocess": run_stage("pipelines.preprocess", [
        "--input", os.path.join(args.dataset, "train.parquet"), "--id-field", "id", "--output-dir", prep_dir,
        "--overwrite", *config])}
    seconds["train"] = run_stage("model.trainer", [
        "--data-dir", prep_dir, "--model-dir", model_dir, "--encoder", args.encoder, "--overwrite", *config,
        *trainer_flags])

    from model.export import latest_export

    with open(os.path.join(model_dir, "metrics.json")) as f:
        eval_metrics = json.load(f)
    label_names = eval_metrics["label_names"]
    started = time.perf_counter()
    model = score_test_split(latest_export(model_dir), os.path.join(args.dataset, "test.parquet"), label_names)
    seconds["score test"] = time.perf_counter() - started
    baseline = majority_baseline(os.path.join(args.dataset, "train.parquet"),
                                 os.path.join(args.dataset, "test.parquet"), label_names)

    print(f"\n{name}: test split, {model['num_examples']} documents ({os.cpu_count()} cores)")
    print(f"{'':<28}{'accuracy':>10}{'macro-F1':>10}")
    print(f"{'majority class (baseline)':<28}{baseline['accuracy']:>10.4f}{baseline['macro_f1']:>10.4f}")
    print(f"{args.encoder + ' (this pipeline)':<28}{model['accuracy']:>10.4f}{model['macro_f1']:>10.4f}")
    print("wall time: " + ", ".join(f"{stage} {s:.0f}s" for stage, s in seconds.items())
          + f"; epochs trained {eval_metrics['epochs_trained']}, eval accuracy {eval_metrics['accuracy']:.4f}")
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump({"benchmark": "quality", "dataset": name, "encoder": args.encoder,
                       "test_accuracy": model["accuracy"], "test_macro_f1": model["macro_f1"],
                       "baseline_accuracy": baseline["accuracy"], "baseline_macro_f1": baseline["macro_f1"],
                       "seconds": seconds, "epochs_trained": eval_metrics["epochs_trained"],
                       "trainer_flags": trainer_flags}, f, indent=2)


if __name__ == "__main__":
    main()
