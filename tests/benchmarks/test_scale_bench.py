"""The scale benchmark: its corpus and arithmetic, and one end-to-end run on a tiny input."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from benchmarks.scale_bench import marginal_rate, same_predictions, summarize, write_scaled_corpus
from tests.benchmarks.test_benchmark_scripts import run_benchmark
from tests.conftest import make_documents


def test_the_scaled_corpus_repeats_the_input_with_each_copy_rotated_one_more_word(tmp_path):
    source = tmp_path / "source.parquet"
    pq.write_table(pa.table({"text": ["a b c", "d e", "f"], "label": ["x", "y", "x"]}), source)

    rows = pq.read_table(write_scaled_corpus(str(source), 8, str(tmp_path / "scaled.parquet"))).to_pylist()

    assert [row["id"] for row in rows] == [str(i) for i in range(8)]
    assert [row["text"] for row in rows] == ["a b c", "d e", "f", "b c a", "e d", "f", "c a b", "d e"]
    assert [row["label"] for row in rows] == ["x", "y", "x"] * 2 + ["x", "y"]


def row(docs, seconds, peak):
    return {"docs": docs, "seconds": seconds, "peak_memory_mib": peak}


def test_marginal_rates_leave_out_the_fixed_cost_both_sizes_pay():
    # 10 s of start-up, then 1,000 and 500 docs/s: the slopes, whatever the start-up.
    small = {"preprocess floor": row(1000, 11, 100), "preprocess pipeline": row(1000, 12, 200),
             "score ceiling": row(1000, 11, 300), "score pipeline": row(1000, 14, 300)}
    large = {"preprocess floor": row(10000, 20, 400), "preprocess pipeline": row(10000, 30, 210),
             "score ceiling": row(10000, 20, 300), "score pipeline": row(10000, 32, 330)}

    result = summarize({1000: small, 10000: large})

    assert marginal_rate(small["preprocess floor"], large["preprocess floor"]) == pytest.approx(1000)
    assert marginal_rate(large["score ceiling"], small["score ceiling"]) is None  # the larger run was faster
    assert result["marginal_docs_per_second"]["preprocess pipeline"] == pytest.approx(500)
    assert result["preprocess_marginal_ratio"] == pytest.approx(0.5)
    assert result["score_marginal_ratio"] == pytest.approx(0.5)
    assert result["peak_memory_growth"] == {"preprocess floor": 4.0, "preprocess pipeline": 1.05,
                                            "score ceiling": 1.0, "score pipeline": 1.1}


def test_predictions_are_the_same_when_every_label_matches_and_scores_agree_to_float_noise(tmp_path):
    def write(directory, rows):
        directory.mkdir()
        (directory / "predictions-00000-of-00001.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))

    write(tmp_path / "a", [{"id": "1", "label": "x", "score": 0.9}, {"id": "2", "label": "y", "score": 0.6}])
    write(tmp_path / "b", [{"id": "2", "label": "y", "score": 0.60001}, {"id": "1", "label": "x", "score": 0.9}])
    write(tmp_path / "c", [{"id": "1", "label": "x", "score": 0.9}, {"id": "2", "label": "x", "score": 0.6}])

    assert same_predictions(str(tmp_path / "a"), str(tmp_path / "b"))
    assert not same_predictions(str(tmp_path / "a"), str(tmp_path / "c"))


@pytest.mark.slow
def test_scale_bench_reports_marginal_rates_and_memory_growth_of_every_side(tiny_export, tmp_path):
    source = tmp_path / "source.parquet"
    pq.write_table(pa.Table.from_pylist(make_documents(50)), source)
    out = tmp_path / "scale.json"
    table = run_benchmark("scale_bench.py", "--input", str(source), "--sizes", "40", "80",
                          "--model", tiny_export, "--work-dir", str(tmp_path / "work"), "--no-padding-baseline",
                          "--shards", "2", "--pipeline-tf-threads", "1", "--json-out", str(out))
    result = json.loads(out.read_text())
    assert "preprocess pipeline / floor (marginal)" in table and "score pipeline / ceiling (marginal)" in table
    small, large = result["rows"]["40"], result["rows"]["80"]
    # Every side saw every document of its size, from the two shards: the corpus is the input repeated and rotated.
    assert sorted(path.name for path in (tmp_path / "work" / "80" / "corpus").iterdir()) == [
        "part-0.parquet", "part-1.parquet"]
    assert {row["docs"] for row in small.values()} == {40} and {row["docs"] for row in large.values()} == {80}
    # At these sizes the slopes are noise, and one may not exist (the larger run no slower): the ratio is
    # then None. Either way it is the one of the rates reported beside it.
    rates = result["marginal_docs_per_second"]
    pipeline, floor = rates["preprocess pipeline"], rates["preprocess floor"]
    assert result["preprocess_marginal_ratio"] == (
        pytest.approx(pipeline / floor, rel=1e-2, abs=1e-3) if pipeline and floor else None)
    assert set(result["peak_memory_growth"]) == {"preprocess floor", "preprocess pipeline", "score ceiling",
                                                 "score pipeline"}
    # The --padding max_length runs, left out here, are score_bench.py's children (test_benchmark_scripts.py).
    assert "padding_speedup_end_to_end" not in result
