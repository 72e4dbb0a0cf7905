"""The scale benchmark's own arithmetic and corpus (its end-to-end run: test_benchmark_scripts.py)."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from benchmarks.scale_bench import marginal_rate, same_predictions, summarize, write_scaled_corpus


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
