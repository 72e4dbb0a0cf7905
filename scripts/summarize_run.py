"""Prints the short summary at the end of ./run_pipeline.sh from the stages' own reports."""

import json
import sys

from apache_beam.io.filesystems import FileSystems


def read_json(path: str) -> dict:
    with FileSystems.open(path) as f:
        return json.load(f)


def main(work_dir: str, seconds: str, scored_corpus: str = "held-out") -> None:
    """`scored_corpus` is "training" when the scored documents are the training corpus itself."""
    stats = read_json(FileSystems.join(work_dir, "preprocessed", "stats.json"))
    metrics = read_json(FileSystems.join(work_dir, "model", "metrics.json"))
    print(f"\nDone in {seconds}s.")
    rejected = f" {stats['rejected_by_reason']}" if stats["rejected"] else ""
    print(f"  preprocess: {stats['read']} documents read, {stats['accepted']} accepted "
          f"(train {stats['train']}, eval {stats['eval']}), {stats['rejected']} rejected{rejected}; "
          f"{stats['num_labels']} labels, {stats['tokenizer']} vocabulary of {stats['vocab_size']} ids")
    baseline = metrics.get("majority_baseline_accuracy")
    epochs = metrics["epochs_trained"]
    print(f"  train: {metrics['encoder']}, {epochs} epoch{'' if epochs == 1 else 's'}, "
          f"eval accuracy {metrics['accuracy']:.3f}"
          + (f" (majority baseline {baseline:.3f})" if baseline is not None else "")
          + f", macro-F1 {metrics['macro_f1']:.3f}")
    print(f"  model: {metrics['export']}  (metrics.json, plots/, logs/ beside it)")
    summary = read_json(FileSystems.join(work_dir, "predictions", "summary.json"))
    evaluation = summary.get("evaluation")
    print(f"  score: {summary['read']} documents read, {summary['scored']} scored, {summary['rejected']} rejected, "
          f"{summary['docs_per_second']} docs/s"
          + (f"; accuracy on their labels {evaluation['accuracy']:.3f}" if evaluation else "")
          + (" (the model trained on most of these documents: score held-out ones with --score-input)"
             if evaluation and scored_corpus == "training" else ""))
    print(f"  predictions: {FileSystems.join(work_dir, 'predictions')}/predictions-*")


if __name__ == "__main__":
    main(*sys.argv[1:])
