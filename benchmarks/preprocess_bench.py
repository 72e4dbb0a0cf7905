"""Preprocessing throughput: the tf.Transform pipeline against a plain-Python floor, in one run.

    .venv/bin/python benchmarks/preprocess_bench.py --input ../shared/datasets/imdb/train.parquet \
        --num-docs 20000

Both sides do the same work on the same documents: lowercase + split into words, a vocabulary
over the corpus, ids padded to --max-seq-length, gzip TFRecords of tf.Example. The baseline is a
single Python loop with no validation, no split, no Beam; it is the floor a pipeline pays to beat.
Each side runs in its own process so its peak memory is its own. Prints a table; --json-out
writes the same numbers as JSON.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)  # run from a checkout: the project's packages without installing it

from schemas.runtime_defaults import apply_tensorflow_defaults  # noqa: E402  (needs the path above)

apply_tensorflow_defaults()  # as the stages: before TensorFlow loads


def prepare_input(source: str, num_docs: int, directory: str) -> str:
    """The first `num_docs` rows (id, text, label) of a Parquet corpus, as the benchmark input."""
    import pyarrow.parquet as pq

    table = pq.read_table(source, columns=["id", "text", "label"])
    table = table.slice(0, min(num_docs, table.num_rows))
    path = os.path.join(directory, "input.parquet")
    pq.write_table(table, path)
    return path


def run_baseline(input_path: str, output_dir: str, vocab_size: int, max_seq_length: int) -> int:
    """Plain Python: split, count, keep the top words, pad, write gzip tf.Example TFRecords."""
    import pyarrow.parquet as pq
    import tensorflow as tf  # imported before timing starts (see measure_stage)

    table = pq.read_table(input_path, columns=["text", "label"])
    texts = table.column("text").to_pylist()
    labels = table.column("label").to_pylist()
    tokenized = [text.lower().split() for text in texts]
    counts = collections.Counter(word for words in tokenized for word in words)
    word_ids = {w: i + 1 for i, (w, _) in enumerate(counts.most_common(vocab_size - 2))}
    oov_id = vocab_size - 1
    label_ids = {label: i for i, label in enumerate(sorted(set(labels)))}
    os.makedirs(output_dir, exist_ok=True)
    options = tf.io.TFRecordOptions(compression_type="GZIP")
    with tf.io.TFRecordWriter(os.path.join(output_dir, "part-00000.tfrecord.gz"), options) as writer:
        for words, label in zip(tokenized, labels):
            ids = [word_ids.get(w, oov_id) for w in words[:max_seq_length]]
            ids += [0] * (max_seq_length - len(ids))
            example = tf.train.Example(features=tf.train.Features(feature={
                "token_ids": tf.train.Feature(int64_list=tf.train.Int64List(value=ids)),
                "label_id": tf.train.Feature(int64_list=tf.train.Int64List(value=[label_ids[label]])),
            }))
            writer.write(example.SerializeToString())
    return len(texts)


def run_pipeline(input_path: str, output_dir: str, vocab_size: int, max_seq_length: int,
                 tokenizer: str, beam_args: list[str]) -> int:
    from pipelines import preprocess  # imported before timing starts (see measure_stage)

    stats = preprocess.run([
        "--input", input_path, "--output-dir", output_dir, "--id-field", "id",
        "--tokenizer", tokenizer, "--vocab-size", str(vocab_size), "--max-seq-length", str(max_seq_length),
        "--min-frequency", "1", *beam_args,
    ])
    return stats["read"]


def measure_stage(args: argparse.Namespace) -> dict:
    """Runs one side in this process; returns docs, seconds and peak memory.

    Library imports (TensorFlow, Beam: several seconds) happen before the clock starts, on both
    sides alike, so the seconds are the work itself.
    """
    import tensorflow  # noqa: F401
    if args.stage == "pipeline":
        from pipelines import preprocess  # noqa: F401
    output_dir = os.path.join(args.work_dir, args.stage)
    started = time.perf_counter()
    if args.stage == "baseline":
        docs = run_baseline(args.input, output_dir, args.vocab_size, args.max_seq_length)
    else:
        docs = run_pipeline(args.input, output_dir, args.vocab_size, args.max_seq_length, args.tokenizer,
                            args.beam_args)
    seconds = time.perf_counter() - started
    # The largest process: this one, or a worker process the runner started.
    peak_mib = max(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)) / 1024
    return {"docs": docs, "seconds": round(seconds, 2), "docs_per_second": round(docs / seconds, 1),
            "peak_memory_mib": round(peak_mib, 1)}


def run_in_subprocess(stage: str, input_path: str, work_dir: str, args: argparse.Namespace) -> dict:
    command = [sys.executable, os.path.abspath(__file__), "--stage", stage, "--input", input_path,
               "--work-dir", work_dir, "--vocab-size", str(args.vocab_size),
               "--max-seq-length", str(args.max_seq_length), "--tokenizer", args.tokenizer]
    command += [f"--beam-arg={a}" for a in args.beam_args]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        sys.stderr.write(completed.stderr[-5000:])
        raise SystemExit(f"{stage} failed with exit status {completed.returncode}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def print_table(rows: dict[str, dict], ratio: float, num_docs: int) -> None:
    print(f"\nPreprocessing {num_docs} documents ({os.cpu_count()} cores)")
    print(f"{'':<22}{'docs':>8}{'seconds':>10}{'docs/s':>10}{'peak MiB':>10}")
    for name, row in rows.items():
        print(f"{name:<22}{row['docs']:>8}{row['seconds']:>10.2f}{row['docs_per_second']:>10.1f}"
              f"{row['peak_memory_mib']:>10.0f}")
    print(f"pipeline / baseline throughput: {ratio:.2f}x")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", required=True, help="Parquet corpus with id, text, label columns.")
    parser.add_argument("--num-docs", type=int, default=20000)
    parser.add_argument("--vocab-size", type=int, default=20000)
    parser.add_argument("--max-seq-length", type=int, default=128)
    parser.add_argument("--tokenizer", default="word", choices=["word", "wordpiece"])
    parser.add_argument("--beam-arg", dest="beam_args", action="append", default=[],
                        help="A Beam option for the pipeline side, e.g. --beam-arg=--direct_num_workers=2.")
    parser.add_argument("--json-out", help="Also write the results as JSON here.")
    parser.add_argument("--stage", choices=["baseline", "pipeline"], help=argparse.SUPPRESS)
    parser.add_argument("--work-dir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.stage:  # child process: measure one side
        print(json.dumps(measure_stage(args)))
        return

    with tempfile.TemporaryDirectory(prefix="preprocess-bench-") as work_dir:
        input_path = prepare_input(args.input, args.num_docs, work_dir)
        rows = {
            "plain Python baseline": run_in_subprocess("baseline", input_path, work_dir, args),
            f"pipeline ({args.tokenizer})": run_in_subprocess("pipeline", input_path, work_dir, args),
        }
    pipeline_row = rows[f"pipeline ({args.tokenizer})"]
    # Rounded once: the table and the JSON show the same number.
    ratio = round(pipeline_row["docs_per_second"] / rows["plain Python baseline"]["docs_per_second"], 3)
    print_table(rows, ratio, pipeline_row["docs"])
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump({"benchmark": "preprocess", "num_docs": pipeline_row["docs"], "cores": os.cpu_count(),
                       "rows": rows, "ratio": ratio, "tokenizer": args.tokenizer}, f, indent=2)


if __name__ == "__main__":
    main()
