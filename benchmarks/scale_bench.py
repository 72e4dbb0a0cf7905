"""Large runs: preprocessing and scoring at two corpus sizes, against their floor and ceiling.

    .venv/bin/python benchmarks/scale_bench.py --input ../shared/datasets/sst2/train.parquet \
        --sizes 100000 1000000 --work-dir /tmp/scale

The corpus is the input's rows repeated up to each size, each copy with its words rotated by one
more place (so the copies are mostly distinct texts, with the input's vocabulary and lengths) and
its own id, written as one Parquet file per size (or --shards files). At every size:
- preprocessing: `pipelines.preprocess` against preprocess_bench.py's plain-Python floor;
- scoring: `pipelines.score` against score_bench.py's direct export calls (the ceiling), both
  with `--padding longest`; at the smallest size also both with `--padding max_length` (unless
  --no-padding-baseline).
Every side runs in its own process and reports its wall time, docs/s and peak memory (the process
and any worker processes it started). The table adds the marginal rates between the smallest and
the largest size (the slope, so fixed start-up costs drop out), each pipeline's marginal rate over
its baseline's, and the growth of each side's peak memory from the smallest size to the largest.
Without --model, a one-epoch BiLSTM is first trained on 2,000 rows of the input (as in
score_bench.py). --json-out writes the same numbers as JSON. The pipelines on two worker
processes, one TensorFlow thread each:

    .venv/bin/python benchmarks/scale_bench.py --input ../shared/datasets/sst2/train.parquet \
        --sizes 100000 1000000 --work-dir /tmp/scale --shards 8 --pipeline-tf-threads 1 \
        --beam-arg=--direct_running_mode=multi_processing --beam-arg=--direct_num_workers=2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCHMARKS = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, REPO_ROOT)  # run from a checkout: the project's packages without installing it
sys.path.insert(0, BENCHMARKS)  # the sibling scripts whose floor, ceiling and children are reused

import score_bench  # noqa: E402  (needs the path above)

DYNAMIC, FIXED = score_bench.DYNAMIC, score_bench.FIXED


def write_scaled_corpus(source: str, num_docs: int, path: str, shards: int = 1) -> str:
    """`num_docs` rows (id, text, label): the source's rows over and over, copy k with its words
    rotated by k places. Written in row groups, as a large Parquet file would be; with `shards`
    above 1, into that many files `path/part-K.parquet` (`path` a directory)."""
    if shards > 1:
        os.makedirs(path, exist_ok=True)
        per_shard = -(-num_docs // shards)
        scaled = write_scaled_corpus(source, num_docs, os.path.join(path, "all.parquet"))
        import pyarrow.parquet as pq

        table = pq.read_table(scaled)
        for shard in range(shards):
            pq.write_table(table.slice(shard * per_shard, per_shard), os.path.join(path, f"part-{shard}.parquet"))
        os.remove(scaled)
        return path
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(source, columns=["text", "label"])
    texts, labels = table.column("text").to_pylist(), table.column("label").to_pylist()
    schema = pa.schema([("id", pa.string()), ("text", pa.string()), ("label", pa.string())])
    chunk = 50_000
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, num_docs, chunk):
            ids, rotated, chunk_labels = [], [], []
            for i in range(start, min(start + chunk, num_docs)):
                copy, row = divmod(i, len(texts))
                words = texts[row].split()
                shift = copy % max(len(words), 1)
                ids.append(str(i))
                rotated.append(" ".join(words[shift:] + words[:shift]))
                chunk_labels.append(str(labels[row]))
            writer.write_table(pa.table({"id": ids, "text": rotated, "label": chunk_labels}, schema=schema))
    return path


def run_child(command: list[str], env: dict | None = None) -> dict:
    """Runs one measured side; its last stdout line is its JSON result."""
    completed = subprocess.run([sys.executable, *command], cwd=REPO_ROOT, capture_output=True, text=True,
                               check=False, env=env)
    if completed.returncode != 0:
        sys.stderr.write(completed.stderr[-5000:])
        raise SystemExit(f"{command[0]} {command[1:3]} failed with exit status {completed.returncode}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def pipeline_env(args: argparse.Namespace) -> dict | None:
    """The pipelines' environment: with --pipeline-tf-threads, TensorFlow's pools of that size in
    each of their processes (the baselines keep TensorFlow's defaults)."""
    if not args.pipeline_tf_threads:
        return None
    threads = str(args.pipeline_tf_threads)
    return {**os.environ, "TF_NUM_INTRAOP_THREADS": threads, "TF_NUM_INTEROP_THREADS": threads}


def pipeline_input(corpus: str) -> str:
    """The stages' --input for a corpus file or a directory of shards."""
    return os.path.join(corpus, "*.parquet") if os.path.isdir(corpus) else corpus


def preprocess_side(stage: str, input_path: str, work_dir: str, args: argparse.Namespace) -> dict:
    pipeline = stage == "pipeline"
    return run_child([os.path.join(BENCHMARKS, "preprocess_bench.py"), "--stage", stage,
                      "--input", pipeline_input(input_path) if pipeline else input_path,
                      "--work-dir", work_dir, "--vocab-size", str(args.vocab_size),
                      "--max-seq-length", str(args.max_seq_length), "--tokenizer", "word",
                      *[f"--beam-arg={a}" for a in args.beam_args]], pipeline_env(args) if pipeline else None)


def score_side(side: str, model: str, input_path: str, padding: str, output_dir: str,
               args: argparse.Namespace) -> dict:
    pipeline = side == "pipeline"
    return run_child([os.path.join(BENCHMARKS, "score_bench.py"), "--side", side, "--model", model,
                      "--input", pipeline_input(input_path) if pipeline else input_path,
                      "--batch-size", str(args.batch_size), "--padding", padding,
                      "--output-dir", output_dir, *[f"--beam-arg={a}" for a in args.beam_args]],
                     pipeline_env(args) if pipeline else None)


def measure_size(num_docs: int, model: str, args: argparse.Namespace, with_padding_baseline: bool) -> dict:
    directory = os.path.join(args.work_dir, str(num_docs))
    os.makedirs(directory, exist_ok=True)
    corpus = write_scaled_corpus(args.input, num_docs, os.path.join(directory, "corpus" if args.shards > 1
                                                                    else "corpus.parquet"), args.shards)
    rows = {
        "preprocess floor": preprocess_side("baseline", corpus, directory, args),
        "preprocess pipeline": preprocess_side("pipeline", corpus, directory, args),
        "score ceiling": score_side("direct", model, corpus, DYNAMIC, "", args),
        "score pipeline": score_side("pipeline", model, corpus, DYNAMIC, os.path.join(directory, "scored"), args),
    }
    if with_padding_baseline:
        rows["score ceiling, max_length"] = score_side("direct", model, corpus, FIXED, "", args)
        rows["score pipeline, max_length"] = score_side("pipeline", model, corpus, FIXED,
                                                        os.path.join(directory, "scored-fixed"), args)
        rows["score pipeline, max_length"]["same_predictions"] = same_predictions(
            os.path.join(directory, "scored"), os.path.join(directory, "scored-fixed"))
    for row in rows.values():
        row["docs_per_second"] = round(row["docs"] / row["seconds"], 1)
        row["seconds"] = round(row["seconds"], 2)
    return rows


def same_predictions(first_dir: str, second_dir: str) -> bool:
    """Whether two scoring outputs gave every document the same label (scores within float noise)."""
    def predicted(directory):
        rows = {}
        for name in os.listdir(directory):
            if name.startswith("predictions-") and name.endswith(".jsonl"):
                with open(os.path.join(directory, name)) as f:
                    for line in f:
                        row = json.loads(line)
                        rows[row["id"]] = (row["label"], row["score"])
        return rows

    first, second = predicted(first_dir), predicted(second_dir)
    return first.keys() == second.keys() and all(
        first[k][0] == second[k][0] and abs(first[k][1] - second[k][1]) < 1e-4 for k in first)


def marginal_rate(small: dict, large: dict) -> float | None:
    """Documents per second between two sizes: the slope, without the fixed cost both pay. None
    when the larger run was not slower (sizes too close for the noise): no slope to measure."""
    seconds = large["seconds"] - small["seconds"]
    return round((large["docs"] - small["docs"]) / seconds, 1) if seconds > 0 else None


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    return round(numerator / denominator, 3) if numerator and denominator else None


def summarize(by_size: dict[int, dict]) -> dict:
    small, large = by_size[min(by_size)], by_size[max(by_size)]
    marginal = {name: marginal_rate(small[name], large[name]) for name in large if name in small}
    result = {
        "marginal_docs_per_second": marginal,
        "preprocess_marginal_ratio": _ratio(marginal["preprocess pipeline"], marginal["preprocess floor"]),
        "score_marginal_ratio": _ratio(marginal["score pipeline"], marginal["score ceiling"]),
        "peak_memory_growth": {name: round(large[name]["peak_memory_mib"] / small[name]["peak_memory_mib"], 3)
                               for name in large if name in small},
    }
    if "score pipeline, max_length" in small:
        result["padding_speedup_end_to_end"] = round(
            small["score pipeline"]["docs_per_second"] / small["score pipeline, max_length"]["docs_per_second"], 3)
        result["padding_same_predictions"] = small["score pipeline, max_length"]["same_predictions"]
    return result


def _shown(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def print_table(by_size: dict[int, dict], result: dict) -> None:
    print(f"\nLarge runs ({os.cpu_count()} cores); peak MiB: the process and its workers")
    print(f"{'':<28}{'docs':>10}{'seconds':>10}{'docs/s':>10}{'peak MiB':>10}")
    for size, rows in by_size.items():
        for name, row in rows.items():
            print(f"{name:<28}{row['docs']:>10}{row['seconds']:>10.1f}{row['docs_per_second']:>10.1f}"
                  f"{row['peak_memory_mib']:>10.0f}")
    sizes = f"{min(by_size):,} → {max(by_size):,} documents"
    print(f"\nMarginal docs/s, {sizes}:")
    for name, rate in result["marginal_docs_per_second"].items():
        print(f"  {name:<26}{_shown(rate, '.1f'):>10}   peak memory x{result['peak_memory_growth'][name]:.2f}")
    print(f"preprocess pipeline / floor (marginal): {_shown(result['preprocess_marginal_ratio'], '.2f')}x")
    print(f"score pipeline / ceiling (marginal): {_shown(result['score_marginal_ratio'], '.2f')}x")
    if "padding_speedup_end_to_end" in result:
        print(f"--padding longest / max_length, pipeline end to end at {min(by_size):,}: "
              f"{result['padding_speedup_end_to_end']:.2f}x (same predictions: {result['padding_same_predictions']})")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", required=True, help="Parquet corpus with text and label columns.")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--work-dir", required=True, help="Where the corpora and outputs are written (kept).")
    parser.add_argument("--model", help="Model or export directory (default: train a quick BiLSTM).")
    parser.add_argument("--train-docs", type=int, default=2000)
    parser.add_argument("--max-seq-length", type=int, default=128)
    parser.add_argument("--vocab-size", type=int, default=20000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--shards", type=int, default=1, help="Parquet files per corpus (default: one file).")
    parser.add_argument("--beam-arg", dest="beam_args", action="append", default=[],
                        help="A Beam option for both pipelines, e.g. --beam-arg=--direct_num_workers=2.")
    parser.add_argument("--pipeline-tf-threads", type=int,
                        help="TensorFlow's intra- and inter-op threads in the pipelines' processes (default: "
                             "TensorFlow's, sized to every core); the baselines keep the defaults.")
    parser.add_argument("--no-padding-baseline", dest="padding_baseline", action="store_false",
                        help="Skip the --padding max_length runs at the smallest size.")
    parser.add_argument("--json-out")
    args = parser.parse_args(argv)
    if len(set(args.sizes)) < 2:
        parser.error("--sizes needs two different sizes: the marginal rates are the slope between them")

    os.makedirs(args.work_dir, exist_ok=True)
    model = args.model or score_bench.train_quick_model(args.input, args.train_docs, args.max_seq_length,
                                                        args.work_dir)
    sizes = sorted(set(args.sizes))
    by_size = {size: measure_size(size, model, args, with_padding_baseline=args.padding_baseline and size == sizes[0])
               for size in sizes}
    result = summarize(by_size)
    print_table(by_size, result)
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump({"benchmark": "scale", "cores": os.cpu_count(), "sizes": sizes,
                       "rows": {str(size): rows for size, rows in by_size.items()}, **result}, f, indent=2)


if __name__ == "__main__":
    main()
