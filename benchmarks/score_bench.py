"""Scoring throughput: the Beam pipeline against calling the same export directly, in one run.

    .venv/bin/python benchmarks/score_bench.py --input ../shared/datasets/imdb/test.parquet --num-docs 20000 \
        --model out/model

Both sides score the same documents with the same exported model, batch size and padding. The
direct side (the ceiling) reads the Parquet file and calls the export's signature batch after batch
in one process, on the documents in the order the pipeline gives the model (length-sorted windows,
from the same helper); the pipeline side runs `python -m pipelines.score` (reading, validation,
RunInference, writing the predictions, rejected records and the summary). Both use the default
`--padding longest`; with --padding-baseline both run again with `--padding max_length` (every
batch padded to max_seq_length, no sorting) and the speedup of dynamic padding is printed, end to
end and for the pipeline's time inside model calls (RunInference's latency metrics).
Without --model, a model is first trained for one epoch on --train-docs documents of
--train-input, so the benchmark needs nothing prepared.
Each side runs in its own process; the table shows docs/s, seconds and peak memory.
"""

from __future__ import annotations

import argparse
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

DYNAMIC, FIXED = "longest", "max_length"  # the scorer's --padding values


def write_subset(source: str, num_docs: int, path: str) -> str:
    """The first `num_docs` rows of `source`."""
    import pyarrow.parquet as pq

    table = pq.read_table(source)
    pq.write_table(table.slice(0, min(num_docs, table.num_rows)), path)
    return path


def write_spread_sample(source: str, num_docs: int, path: str) -> str:
    """`num_docs` rows evenly spaced over `source`: every class of a corpus sorted by class."""
    import numpy as np
    import pyarrow.parquet as pq

    table = pq.read_table(source)
    count = min(num_docs, table.num_rows)
    pq.write_table(table.take(np.linspace(0, table.num_rows - 1, count).astype(np.int64)), path)
    return path


def run_module(module: str, args: list[str]) -> None:
    completed = subprocess.run([sys.executable, "-m", module, *args], cwd=REPO_ROOT, capture_output=True, text=True,
                               check=False)
    if completed.returncode != 0:
        sys.stderr.write(completed.stderr[-5000:])
        raise SystemExit(f"{module} failed with exit status {completed.returncode}")


def train_quick_model(train_input: str, train_docs: int, max_seq_length: int, work_dir: str) -> str:
    """A one-epoch BiLSTM (default sizes) on a slice of the training corpus: compute, not accuracy, matters."""
    subset = write_spread_sample(train_input, train_docs, os.path.join(work_dir, "train.parquet"))
    run_module("pipelines.preprocess", ["--input", subset, "--id-field", "id", "--output-dir",
                                        os.path.join(work_dir, "prep"), "--max-seq-length", str(max_seq_length)])
    run_module("model.trainer", ["--data-dir", os.path.join(work_dir, "prep"), "--model-dir",
                                 os.path.join(work_dir, "model"), "--epochs", "1", "--batch-size", "64",
                                 "--encoder", "bilstm", "--max-ngram", "0"])
    return os.path.join(work_dir, "model")


def measure_direct(export_dir: str, input_path: str, batch_size: int, padding: str) -> dict:
    import numpy as np
    import pyarrow.parquet as pq
    import tensorflow as tf
    import tensorflow_text  # noqa: F401

    from pipelines.length_sort import length_sorted
    from pipelines.model_handler import read_export_metadata, signature_for
    from schemas.config import ScoreConfig
    from schemas.export_contract import LABEL_OUTPUT

    serve = tf.saved_model.load(export_dir).signatures[signature_for(read_export_metadata(export_dir), padding)]
    serve(text=tf.constant(["warm up"]))
    started = time.perf_counter()
    texts = pq.read_table(input_path, columns=["text"]).column("text").to_pylist()
    if padding == DYNAMIC:  # the order the scorer gives RunInference, as one bundle
        texts = list(length_sorted(texts, batch_size * ScoreConfig.sort_window_batches))
    labels = []
    for i in range(0, len(texts), batch_size):
        labels.append(serve(text=tf.constant(texts[i:i + batch_size]))[LABEL_OUTPUT].numpy())
    seconds = time.perf_counter() - started
    return {"docs": int(np.concatenate(labels).shape[0]), "seconds": seconds}


def measure_pipeline(model: str, input_path: str, batch_size: int, padding: str, output_dir: str,
                     beam_args: list[str]) -> dict:
    from pipelines import score

    started = time.perf_counter()
    summary = score.run(["--model", model, "--input", input_path, "--id-field", "id", "--output-dir", output_dir,
                         "--batch-size", str(batch_size), "--padding", padding, *beam_args])
    return {"docs": summary["scored"], "seconds": time.perf_counter() - started,
            "model_call_seconds": summary.get("model_call_seconds"),
            "model_load_seconds": summary.get("model_load_seconds")}


def child(args: argparse.Namespace) -> None:
    from pipelines.model_handler import resolve_export

    import tensorflow  # noqa: F401  imported before the clock starts, on both sides alike
    if args.side == "direct":
        result = measure_direct(resolve_export(args.model), args.input, args.batch_size, args.padding)
    else:
        from pipelines import score  # noqa: F401
        result = measure_pipeline(args.model, args.input, args.batch_size, args.padding, args.output_dir,
                                  args.beam_args)
    result["docs_per_second"] = result["docs"] / result["seconds"]
    # The largest process: this one, or a worker process the runner started.
    result["peak_memory_mib"] = max(resource.getrusage(who).ru_maxrss
                                    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)) / 1024
    print(json.dumps(result))


def run_side(side: str, model: str, input_path: str, args: argparse.Namespace, padding: str, output_dir: str) -> dict:
    command = [sys.executable, os.path.abspath(__file__), "--side", side, "--model", model, "--input", input_path,
               "--batch-size", str(args.batch_size), "--padding", padding, "--output-dir", output_dir]
    command += [f"--beam-arg={a}" for a in args.beam_args]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        sys.stderr.write(completed.stderr[-5000:])
        raise SystemExit(f"the {side} side failed with exit status {completed.returncode}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", required=True, help="Parquet documents with id and text columns.")
    parser.add_argument("--num-docs", type=int, default=20000)
    parser.add_argument("--model", help="Model or export directory (default: train a quick one).")
    parser.add_argument("--train-input", default=None, help="Parquet corpus for the quick model (default: --input).")
    parser.add_argument("--train-docs", type=int, default=2000)
    parser.add_argument("--max-seq-length", type=int, default=128,
                        help="The quick model's max_seq_length: what --padding max_length pads to.")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--beam-arg", dest="beam_args", action="append", default=[])
    parser.add_argument("--padding-baseline", action="store_true",
                        help="Also run both sides with --padding max_length and print the dynamic padding speedup.")
    parser.add_argument("--json-out")
    parser.add_argument("--side", choices=["direct", "pipeline"], help=argparse.SUPPRESS)
    parser.add_argument("--padding", choices=[DYNAMIC, FIXED], default=DYNAMIC, help=argparse.SUPPRESS)
    parser.add_argument("--output-dir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.side:
        child(args)
        return

    with tempfile.TemporaryDirectory(prefix="score-bench-") as work_dir:
        model = args.model or train_quick_model(args.train_input or args.input, args.train_docs,
                                                       args.max_seq_length, work_dir)
        input_path = write_subset(args.input, args.num_docs, os.path.join(work_dir, "score.parquet"))
        rows = {
            "direct export calls (ceiling)": run_side("direct", model, input_path, args, DYNAMIC, ""),
            "scoring pipeline": run_side("pipeline", model, input_path, args, DYNAMIC,
                                         os.path.join(work_dir, "scored")),
        }
        if args.padding_baseline:
            rows["direct calls, max_length"] = run_side("direct", model, input_path, args, FIXED, "")
            rows["pipeline, --padding max_length"] = run_side("pipeline", model, input_path, args, FIXED,
                                                              os.path.join(work_dir, "scored-fixed"))
    docs_per_second = {name: row["docs_per_second"] for name, row in rows.items()}
    # Rounded once: the table and the JSON show the same number.
    ratio = round(docs_per_second["scoring pipeline"] / docs_per_second["direct export calls (ceiling)"], 3)
    docs = rows["scoring pipeline"]["docs"]
    print(f"\nScoring {docs} documents, batch size {args.batch_size}, --padding longest unless named "
          f"({os.cpu_count()} cores)")
    print(f"{'':<32}{'docs':>8}{'seconds':>10}{'docs/s':>10}{'peak MiB':>10}{'model-call s':>14}")
    for name, row in rows.items():
        model_seconds = row.get("model_call_seconds")
        print(f"{name:<32}{row['docs']:>8}{row['seconds']:>10.1f}{row['docs_per_second']:>10.1f}"
              f"{row['peak_memory_mib']:>10.0f}{'' if model_seconds is None else f'{model_seconds:.2f}':>14}")
    print(f"pipeline / direct throughput: {ratio:.2f}x")
    summary = {"benchmark": "score", "docs": docs, "batch_size": args.batch_size, "rows": rows,
               "ratio": ratio, "cores": os.cpu_count()}
    if args.padding_baseline:
        speedup = {  # docs/s with dynamic padding over docs/s with every batch padded to max_seq_length
            "pipeline": docs_per_second["scoring pipeline"] / docs_per_second["pipeline, --padding max_length"],
            "direct": docs_per_second["direct export calls (ceiling)"] / docs_per_second["direct calls, max_length"],
        }
        dynamic_calls = rows["scoring pipeline"].get("model_call_seconds")
        fixed_calls = rows["pipeline, --padding max_length"].get("model_call_seconds")
        if dynamic_calls and fixed_calls:  # the pipeline's time inside the model, from RunInference's metrics
            speedup["pipeline model calls"] = fixed_calls / dynamic_calls
        print("--padding longest / max_length throughput: "
              + ", ".join(f"{side} {value:.2f}x" for side, value in speedup.items()))
        summary["padding_speedup"] = {side: round(value, 3) for side, value in speedup.items()}
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(summary, f, indent=2)


if __name__ == "__main__":
    main()
