"""Test accuracy on a real corpus through the real commands, beside a TF-IDF + logistic-regression
baseline fitted on the same split in the same run.

    .venv/bin/python benchmarks/quality_bench.py --dataset ../shared/datasets/trec --work-dir /tmp/qb \
        [--config job.yaml] [--encoder bilstm|albert] [--json-out FILE] [-- extra trainer flags]

DATASET holds train.parquet and test.parquet (columns id, text, label). The pipeline side runs
`python -m pipelines.preprocess` on the training split, `python -m model.trainer` on its output and
`python -m pipelines.score` on the test split, and reads the scorer's evaluation.json. The
baseline is scikit-learn's TfidfVectorizer (word 1-2-grams, sublinear tf, min_df 2) and
LogisticRegression, its C chosen on 10% of the training split held out, then refitted on all
of it. Both are scored on the same test documents with the same metric code. Prints accuracy,
macro-F1 and the wall time of every stage; --json-out writes the same numbers as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)  # run from a checkout: the project's packages without installing it

BASELINE_C_GRID = (1.0, 4.0, 16.0)


def run_stage(module: str, args: list[str]) -> float:
    started = time.perf_counter()
    completed = subprocess.run([sys.executable, "-m", module, *args], cwd=REPO_ROOT, capture_output=True,
                               text=True, check=False)
    if completed.returncode != 0:
        sys.stderr.write(completed.stderr[-5000:])
        raise SystemExit(f"{module} failed with exit status {completed.returncode}")
    return time.perf_counter() - started


def read_split(path: str) -> tuple[list[str], list[str]]:
    import pyarrow.parquet as pq

    table = pq.read_table(path, columns=["text", "label"])
    return table.column("text").to_pylist(), table.column("label").to_pylist()


def tfidf_baseline(train_path: str, test_path: str, label_names: list[str], seed: int = 0) -> dict:
    """Accuracy and macro-F1 of TF-IDF (1-2-grams) + logistic regression, and its wall times."""
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from model.evaluation import classification_metrics

    train_texts, train_labels = read_split(train_path)
    test_texts, test_labels = read_split(test_path)

    def fit(texts, labels, c):
        return make_pipeline(TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True),
                             LogisticRegression(C=c, max_iter=2000)).fit(texts, labels)

    started = time.perf_counter()
    order = np.random.default_rng(seed).permutation(len(train_texts))
    held_out = set(order[: len(order) // 10].tolist())
    fit_texts = [t for i, t in enumerate(train_texts) if i not in held_out]
    fit_labels = [y for i, y in enumerate(train_labels) if i not in held_out]
    check_texts = [train_texts[i] for i in sorted(held_out)]
    check_labels = [train_labels[i] for i in sorted(held_out)]
    held_out_accuracy = {c: float(np.mean(fit(fit_texts, fit_labels, c).predict(check_texts) == np.array(check_labels)))
                         for c in BASELINE_C_GRID}
    best_c = max(BASELINE_C_GRID, key=lambda c: (held_out_accuracy[c], -c))
    classifier = fit(train_texts, train_labels, best_c)
    train_seconds = time.perf_counter() - started

    started = time.perf_counter()
    probabilities = classifier.predict_proba(test_texts)
    score_seconds = time.perf_counter() - started
    # Reorder the columns from scikit-learn's class order to the model's label order.
    columns = {name: i for i, name in enumerate(classifier.classes_)}
    aligned = np.zeros((len(test_texts), len(label_names)))
    for j, name in enumerate(label_names):
        if name in columns:
            aligned[:, j] = probabilities[:, columns[name]]
    index = {name: i for i, name in enumerate(label_names)}
    metrics = classification_metrics(np.array([index[y] for y in test_labels]), aligned, label_names)
    return {"accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"], "C": best_c,
            "held_out_accuracy_by_C": held_out_accuracy,
            "seconds": {"train": train_seconds, "score test": score_seconds}}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", required=True, help="A directory with train.parquet and test.parquet.")
    parser.add_argument("--work-dir", required=True)
    parser.add_argument("--encoder", choices=["auto", "bilstm", "albert", "none"],
                        help="Overrides the job file's train.encoder (default: the job file's, else the trainer's "
                             "automatic choice).")
    parser.add_argument("--config", help="Job file for every stage (default: the project's defaults).")
    parser.add_argument("--skip-baseline", action="store_true", help="Run the pipeline side only.")
    parser.add_argument("--json-out")
    args, trainer_flags = parser.parse_known_args(argv)
    name = os.path.basename(os.path.normpath(args.dataset))
    train_path, test_path = os.path.join(args.dataset, "train.parquet"), os.path.join(args.dataset, "test.parquet")
    prep_dir = os.path.join(args.work_dir, name, "prep")
    model_dir = os.path.join(args.work_dir, name, "model")
    scored_dir = os.path.join(args.work_dir, name, "scored")
    config = ["--config", args.config] if args.config else []
    encoder_flag = ["--encoder", args.encoder] if args.encoder else []

    seconds = {
        "preprocess": run_stage("pipelines.preprocess", [
            "--input", train_path, "--id-field", "id", "--output-dir", prep_dir, "--overwrite", *config]),
        "train": run_stage("model.trainer", [
            "--data-dir", prep_dir, "--model-dir", model_dir, "--overwrite", *config, *encoder_flag, *trainer_flags]),
        "score test": run_stage("pipelines.score", [
            "--model", model_dir, "--input", test_path, "--id-field", "id", "--label-field", "label",
            "--output-dir", scored_dir, "--overwrite", *config]),
    }
    with open(os.path.join(model_dir, "metrics.json")) as f:
        train_metrics = json.load(f)
    with open(os.path.join(model_dir, "config.json")) as f:
        encoder = json.load(f)["train"]["encoder"]  # as resolved by the trainer: flag, job file or its choice
    ngrams = train_metrics.get("ngrams")
    model_name = encoder + (f" + {ngrams['max_ngram']}-grams {ngrams['weighting']}"
                            f"{', solved' if ngrams.get('fit') == 'solve' else ''}" if ngrams else "")
    with open(os.path.join(scored_dir, "evaluation.json")) as f:
        model = json.load(f)
    label_names = train_metrics["label_names"]
    baseline = None if args.skip_baseline else tfidf_baseline(train_path, test_path, label_names)

    print(f"\n{name}: test split, {model['num_examples']} documents ({os.cpu_count()} cores)")
    print(f"{'':<38}{'accuracy':>10}{'macro-F1':>10}{'train s':>10}{'score s':>10}")
    if baseline:
        print(f"{'TF-IDF 1-2-gram + LR (baseline)':<38}{baseline['accuracy']:>10.4f}{baseline['macro_f1']:>10.4f}"
              f"{baseline['seconds']['train']:>10.0f}{baseline['seconds']['score test']:>10.1f}")
    print(f"{model_name:<38}{model['accuracy']:>10.4f}{model['macro_f1']:>10.4f}"
          f"{seconds['train']:>10.0f}{seconds['score test']:>10.1f}")
    if baseline:
        print(f"accuracy ratio pipeline/baseline: {model['accuracy'] / baseline['accuracy']:.3f}")
    print(f"pipeline wall time: preprocess {seconds['preprocess']:.0f}s, train {seconds['train']:.0f}s, "
          f"score {seconds['score test']:.0f}s; epochs trained {train_metrics['epochs_trained']}, "
          f"eval accuracy {train_metrics['accuracy']:.4f}")
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump({"benchmark": "quality", "dataset": name, "encoder": encoder, "ngrams": ngrams,
                       "automatic_choices": train_metrics.get("automatic_choices"), "config": args.config,
                       "trainer_flags": trainer_flags, "test_documents": model["num_examples"],
                       "test_accuracy": model["accuracy"], "test_macro_f1": model["macro_f1"],
                       "seconds": seconds, "epochs_trained": train_metrics["epochs_trained"],
                       "eval_accuracy": train_metrics["accuracy"], "baseline": baseline}, f, indent=2)


if __name__ == "__main__":
    main()
