"""Each benchmark script runs end to end on a tiny input and reports what it promises.

These check that the scripts keep working (arguments, subprocesses, tables, --json-out), not
the speed or accuracy they measure on real corpora: see BENCHMARKS.md for those.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import REPO_ROOT, make_documents
from tests.model.conftest import TINY_MODEL_YAML

pytestmark = pytest.mark.slow


def run_benchmark(script: str, *args: str, timeout: int = 600) -> str:
    completed = subprocess.run([sys.executable, str(REPO_ROOT / "benchmarks" / script), *args], cwd=REPO_ROOT,
                               capture_output=True, text=True, timeout=timeout, check=False)
    assert completed.returncode == 0, completed.stderr[-3000:]
    return completed.stdout


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    """A directory shaped like ../shared/datasets/<name>: train.parquet and test.parquet."""
    directory = tmp_path_factory.mktemp("dataset")
    documents = make_documents(240)  # 240 + 4 duplicates
    pq.write_table(pa.Table.from_pylist(documents[:180]), directory / "train.parquet")
    pq.write_table(pa.Table.from_pylist(documents[180:]), directory / "test.parquet")  # 64 documents
    # No encoder named: the scripts that train take theirs from flags, or from the trainer's automatic choice.
    tiny_model = "\n".join(line for line in TINY_MODEL_YAML.splitlines() if not line.strip().startswith("encoder:"))
    (directory / "job.yaml").write_text(tiny_model + "\n  epochs: 1\npreprocess:\n  max_seq_length: 16\n"
                                        "  min_frequency: 1\n  eval_fraction: 0.2\n")
    return directory


def test_preprocess_bench_compares_the_pipeline_with_the_plain_python_floor(tiny_dataset, tmp_path):
    out = tmp_path / "preprocess.json"
    table = run_benchmark("preprocess_bench.py", "--input", str(tiny_dataset / "train.parquet"), "--num-docs", "100",
                          "--json-out", str(out))
    result = json.loads(out.read_text())
    assert f"pipeline / baseline throughput: {result['ratio']:.2f}x" in table
    pipeline, baseline = result["rows"]["pipeline (word)"], result["rows"]["plain Python baseline"]
    assert result["num_docs"] == pipeline["docs"] == baseline["docs"] == 100
    expected_ratio = pipeline["docs_per_second"] / baseline["docs_per_second"]
    assert result["ratio"] == pytest.approx(expected_ratio, rel=1e-2, abs=1e-3)  # rounded to 3 decimals


def test_train_bench_reports_examples_per_second_and_mfu_for_each_encoder(tiny_dataset, tmp_path):
    out = tmp_path / "train.json"
    table = run_benchmark("train_bench.py", "--config", str(tiny_dataset / "job.yaml"), "--seq-length", "16",
                          "--batch-sizes", "4", "--steps", "1", "--warmup-steps", "1", "--jit-compile", "off",
                          "--json-out", str(out))
    result = json.loads(out.read_text())
    assert "matmul peak" in table and "MFU" in table
    assert [(row["encoder"], row["batch_size"]) for row in result["results"]] == [("bilstm", 4), ("albert", 4)]
    assert all(row["examples_per_second"] > 0 and row["mfu"] > 0 and row["inference_examples_per_second"] > 0
               for row in result["results"])
    assert result["batch_sizes"] == [4] and result["steps"] == 1
    assert result["matmul_peak_gflops_per_second"]["float32"] > 0


def test_score_bench_compares_the_pipeline_with_direct_calls_and_fixed_padding(tiny_export, tiny_dataset, tmp_path):
    out = tmp_path / "score.json"
    table = run_benchmark("score_bench.py", "--input", str(tiny_dataset / "test.parquet"), "--model", tiny_export,
                          "--padding-baseline", "--json-out", str(out))
    result = json.loads(out.read_text())
    assert f"pipeline / direct throughput: {result['ratio']:.2f}x" in table
    docs_per_second = {name: row["docs_per_second"] for name, row in result["rows"].items()}
    assert result["docs"] == 64
    assert result["ratio"] == pytest.approx(
        docs_per_second["scoring pipeline"] / docs_per_second["direct export calls (ceiling)"],
        rel=1e-2, abs=1e-3)  # rounded to 3 decimals
    assert set(result["padding_speedup"]) == {"pipeline", "direct", "pipeline model calls"}
    assert all(result["rows"][name]["model_call_seconds"] > 0
               for name in ("scoring pipeline", "pipeline, --padding max_length"))


def test_quality_bench_runs_the_real_commands_beside_the_tfidf_baseline(tiny_dataset, tmp_path):
    out = tmp_path / "quality.json"
    table = run_benchmark("quality_bench.py", "--dataset", str(tiny_dataset), "--work-dir", str(tmp_path / "work"),
                          "--config", str(tiny_dataset / "job.yaml"), "--json-out", str(out))
    result = json.loads(out.read_text())
    assert "TF-IDF 1-2-gram + LR (baseline)" in table
    assert result["test_documents"] == 64
    # The reported accuracy is the scorer's, over the predictions it wrote for the 64 test documents.
    rows = [json.loads(line) for path in (tmp_path / "work" / tiny_dataset.name / "scored").glob("predictions-*.jsonl")
            for line in path.read_text().splitlines()]
    assert len(rows) == 64
    assert result["test_accuracy"] == pytest.approx(sum(r["label"] == r["true_label"] for r in rows) / 64)
    # The three topics use disjoint words: the baseline separates them.
    assert result["baseline"]["accuracy"] > 0.9
    assert set(result["seconds"]) == {"preprocess", "train", "score test"}
    # The job file names no encoder: the trainer's automatic choice for a small corpus of short texts,
    # words and word pairs, solved.
    assert result["encoder"] == "none" and result["ngrams"]["max_ngram"] == 2 and result["ngrams"]["fit"] == "solve"
    assert result["automatic_choices"]["train.encoder"]["value"] == "none"
    assert "none + 2-grams tfidf, solved" in table  # three topics: TF-IDF weighting

