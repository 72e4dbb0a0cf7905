"""Low-label text classification with and without pretraining on the corpus's unlabelled text.

    .venv/bin/python benchmarks/pretrain_bench.py --dataset ../shared/datasets/imdb --work-dir /tmp/pb \
        [--labels 1000] [--seed 0] [--pretrain-minutes 60] [--config benchmarks/configs/pretrain_reviews.yaml] \
        [--full-labels] [--json-out FILE]

DATASET holds train.parquet and test.parquet (id, text, label) and unsup.parquet (id, text). In one
run, through the real commands:

1. a fixed sample of --labels labelled training documents (numpy's default_rng(--seed) permutation
   of train.parquet's rows, the first N; their ids are written to labelled_sample.txt);
2. `pipelines.preprocess --task pretrain` on the texts of unsup.parquet and train.parquet (labels
   not read) and `model.pretrain` for at most --pretrain-minutes: a short calibration run measures
   the step time, and the real run gets the steps that fit the budget;
3. on the N labelled documents: ALBERT pretrained here (`--init-from`), the same ALBERT from scratch
   on the same token ids, the default BiLSTM, and TF-IDF + logistic regression;
4. each scored on every document of test.parquet (`pipelines.score`, evaluation.json);
5. with --full-labels, ALBERT with and without the pretraining on all of train.parquet.

Prints one table (test accuracy, macro-F1, wall times) and the pretraining's held-out masked-LM and
sentence-order accuracy, examples/s and model-FLOPs utilization; --json-out writes it all as JSON.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)  # run from a checkout: the project's packages without installing it

from benchmarks.quality_bench import run_stage, tfidf_baseline  # noqa: E402
from schemas.config_loader import load_job_config  # noqa: E402

CALIBRATION_STEPS = 20


def write_labelled_sample(train_path: str, count: int, seed: int, work_dir: str) -> str:
    """The first `count` rows of a seeded permutation of train_path, as parquet; their ids listed."""
    import numpy as np
    import pyarrow.parquet as pq

    table = pq.read_table(train_path, columns=["id", "text", "label"])
    if count > table.num_rows:
        raise SystemExit(f"--labels {count} is more than the {table.num_rows} training documents")
    rows = np.sort(np.random.default_rng(seed).permutation(table.num_rows)[:count])
    sample = table.take(rows)
    path = os.path.join(work_dir, f"labelled_{count}.parquet")
    pq.write_table(sample, path)
    with open(os.path.join(work_dir, "labelled_sample.txt"), "w") as f:
        f.write("\n".join(sample.column("id").to_pylist()) + "\n")
    return path


def read_json(*parts: str) -> dict:
    with open(os.path.join(*parts)) as f:
        return json.load(f)


def pretrain_steps(work_dir: str, prep_dir: str, budget_seconds: float, config: list[str],
                   steps_per_checkpoint: int) -> tuple[int, float]:
    """Steps that fit `budget_seconds` of model.pretrain, and the seconds per step, from a short run:
    its median examples/s over the checkpoint intervals (the first one traces the graph) and its
    fixed cost (start-up, matmul peak, held-out evaluation, writing)."""
    calibration_dir = os.path.join(work_dir, "pretrain_calibration")
    intervals = 3
    seconds = run_stage("model.pretrain", [
        "--data-dir", prep_dir, "--output-dir", calibration_dir, "--overwrite", *config,
        "--steps", str(intervals * CALIBRATION_STEPS), "--steps-per-checkpoint", str(CALIBRATION_STEPS)])
    metrics = read_json(calibration_dir, "metrics.json")
    step_seconds = read_json(calibration_dir, "config.json")["pretrain"]["batch_size"] / metrics["examples_per_second"]
    fixed_seconds = max(seconds - intervals * CALIBRATION_STEPS * step_seconds, 0.0)
    return steps_within(budget_seconds - fixed_seconds, step_seconds, steps_per_checkpoint), step_seconds


def steps_within(seconds: float, step_seconds: float, steps_per_checkpoint: int) -> int:
    """The most steps that fit `seconds`, in whole checkpoint intervals (model.pretrain rounds up)."""
    intervals = max(1, math.floor(seconds / step_seconds / steps_per_checkpoint))
    return intervals * steps_per_checkpoint


def classify(name: str, prep_dir: str, model_dir: str, scored_dir: str, test_path: str, trainer_flags: list[str],
             config: list[str]) -> dict:
    """Trains on prep_dir, scores the test split; accuracy, macro-F1 and wall times."""
    train_seconds = run_stage("model.trainer", ["--data-dir", prep_dir, "--model-dir", model_dir, "--overwrite",
                                                *config, *trainer_flags])
    score_seconds = run_stage("pipelines.score", [
        "--model", model_dir, "--input", test_path, "--id-field", "id", "--label-field", "label",
        "--output-dir", scored_dir, "--overwrite"])
    evaluation = read_json(scored_dir, "evaluation.json")
    metrics = read_json(model_dir, "metrics.json")
    return {"name": name, "accuracy": evaluation["accuracy"], "macro_f1": evaluation["macro_f1"],
            "test_documents": evaluation["num_examples"], "epochs_trained": metrics["epochs_trained"],
            "seconds": {"train": train_seconds, "score test": score_seconds}, "trainer_flags": trainer_flags}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", required=True, help="A directory with train, test and unsup parquet files.")
    parser.add_argument("--work-dir", required=True)
    parser.add_argument("--labels", type=int, default=1000, help="Labelled training documents in the sample.")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the labelled sample.")
    parser.add_argument("--pretrain-minutes", type=float, default=60.0, help="Budget of model.pretrain.")
    parser.add_argument("--config", help="Job file shared by every stage (sizes, lengths, epochs).")
    parser.add_argument("--fine-tuning-learning-rate", type=float, default=1e-4,
                        help="Peak learning rate of the pretrained ALBERT's fine-tuning.")
    parser.add_argument("--full-labels", action="store_true", help="Also fine-tune and train on every label.")
    parser.add_argument("--full-labels-epochs", type=int, default=2, help="Epochs of the --full-labels runs.")
    parser.add_argument("--json-out")
    args = parser.parse_args(argv)
    os.makedirs(args.work_dir, exist_ok=True)
    work = functools.partial(os.path.join, args.work_dir)
    config = ["--config", args.config] if args.config else []
    train_path, test_path = os.path.join(args.dataset, "train.parquet"), os.path.join(args.dataset, "test.parquet")
    unsup_path = os.path.join(args.dataset, "unsup.parquet")
    seconds = {}

    labelled_path = write_labelled_sample(train_path, args.labels, args.seed, args.work_dir)
    seconds["preprocess pretrain"] = run_stage("pipelines.preprocess", [
        "--task", "pretrain", "--input", unsup_path, "--input", train_path, "--id-field", "id",
        "--output-dir", work("prep_pretrain"), "--overwrite", *config])
    steps_per_checkpoint = load_job_config(args.config).pretrain.steps_per_checkpoint
    steps, step_seconds = pretrain_steps(args.work_dir, work("prep_pretrain"), 60 * args.pretrain_minutes, config,
                                         steps_per_checkpoint)
    seconds["pretrain"] = run_stage("model.pretrain", [
        "--data-dir", work("prep_pretrain"), "--output-dir", work("encoder"), "--overwrite", *config,
        "--steps", str(steps)])
    pretraining = read_json(work("encoder"), "metrics.json")
    pretrain_stats = read_json(work("prep_pretrain"), "stats.json")

    # Both ALBERTs read the same ids: the pretrained encoder's tokenizer, learned from the unlabelled text.
    seconds["preprocess labelled (sentencepiece)"] = run_stage("pipelines.preprocess", [
        "--input", labelled_path, "--id-field", "id", "--output-dir", work("prep_labelled_sp"), "--overwrite",
        *config, "--pretrained", work("encoder")])
    seconds["preprocess labelled (word)"] = run_stage("pipelines.preprocess", [
        "--input", labelled_path, "--id-field", "id", "--output-dir", work("prep_labelled_word"), "--overwrite"])
    fine_tuning = ["--encoder", "albert", "--init-from", work("encoder"),
                   "--learning-rate", str(args.fine_tuning_learning_rate)]
    results = [
        classify("ALBERT, pretrained here", work("prep_labelled_sp"), work("albert_pretrained"),
                 work("scored_albert_pretrained"), test_path, fine_tuning, config),
        classify("ALBERT, from scratch", work("prep_labelled_sp"), work("albert_scratch"),
                 work("scored_albert_scratch"), test_path, ["--encoder", "albert"], config),
        # The project's default encoder with its default settings: no job file.
        classify("BiLSTM (defaults)", work("prep_labelled_word"), work("bilstm"), work("scored_bilstm"), test_path,
                 [], []),
    ]
    baseline = tfidf_baseline(labelled_path, test_path, read_json(work("bilstm"), "metrics.json")["label_names"])
    results.append({"name": "TF-IDF 1-2-gram + LR", "accuracy": baseline["accuracy"],
                    "macro_f1": baseline["macro_f1"], "seconds": baseline["seconds"]})
    results[-1]["test_documents"] = results[0]["test_documents"]

    full = []
    if args.full_labels:
        seconds["preprocess all labels (sentencepiece)"] = run_stage("pipelines.preprocess", [
            "--input", train_path, "--id-field", "id", "--output-dir", work("prep_all_sp"), "--overwrite",
            *config, "--pretrained", work("encoder")])
        full_epochs = ["--epochs", str(args.full_labels_epochs)]
        full = [
            classify("ALBERT, pretrained here, all labels", work("prep_all_sp"), work("albert_pretrained_all"),
                     work("scored_albert_pretrained_all"), test_path,
                     [*fine_tuning, *full_epochs], config),
            classify("ALBERT, from scratch, all labels", work("prep_all_sp"), work("albert_scratch_all"),
                     work("scored_albert_scratch_all"), test_path, ["--encoder", "albert", *full_epochs], config),
        ]

    name = os.path.basename(os.path.normpath(args.dataset))
    print(f"\n{name}: {args.labels} labelled training documents (seed {args.seed}), "
          f"{results[0]['test_documents']} test documents, {os.cpu_count()} cores")
    print(f"{'':<40}{'accuracy':>10}{'macro-F1':>10}{'train s':>10}{'score s':>10}")
    for row in results + full:
        print(f"{row['name']:<40}{row['accuracy']:>10.4f}{row['macro_f1']:>10.4f}"
              f"{row['seconds']['train']:>10.0f}{row['seconds']['score test']:>10.1f}")
    pretrained, scratch, tfidf = results[0]["accuracy"], results[1]["accuracy"], results[3]["accuracy"]
    print(f"pretrained - scratch: {100 * (pretrained - scratch):+.1f} points; "
          f"pretrained - TF-IDF: {100 * (pretrained - tfidf):+.1f} points")
    print(f"pretraining: {pretrain_stats['pairs']['train']} pairs from {pretrain_stats['train']} documents, "
          f"{steps} steps ({step_seconds:.2f} s/step calibrated) in {seconds['pretrain']:.0f} s; held-out "
          f"masked-LM accuracy {pretraining['mlm_accuracy']:.3f} (unigram baseline "
          f"{pretraining['mlm_unigram_baseline_accuracy']:.3f}), sentence-order accuracy "
          f"{pretraining['sop_accuracy']:.3f}, {pretraining['examples_per_second']:.1f} examples/s, "
          f"MFU {pretraining['mfu']:.1%} of a {pretraining['matmul_peak_gflops_per_second']:.1f} GFLOP/s matmul peak")
    print("wall time: " + ", ".join(f"{stage} {value:.0f}s" for stage, value in seconds.items()))
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump({"benchmark": "pretrain", "dataset": name, "labels": args.labels, "seed": args.seed,
                       "config": args.config, "pretrain_minutes": args.pretrain_minutes, "pretrain_steps": steps,
                       "fine_tuning_learning_rate": args.fine_tuning_learning_rate,
                       "pretraining": pretraining, "pretrain_data": pretrain_stats, "results": results,
                       "full_labels": full, "seconds": seconds}, f, indent=2)


if __name__ == "__main__":
    main()
