"""The parts of benchmarks/pretrain_bench.py that decide what is measured: the labelled sample and
the pretraining steps that fit the time budget. (The whole script runs for an hour on real data;
its results are in BENCHMARKS.md.)"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from benchmarks.pretrain_bench import steps_within, write_labelled_sample


@pytest.fixture
def train_parquet(tmp_path):
    rows = [{"id": f"train/{i}", "text": f"review {i}", "label": "pos" if i % 2 else "neg"} for i in range(50)]
    path = tmp_path / "train.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    return str(path)


def test_the_labelled_sample_is_fixed_by_its_seed_and_its_ids_are_written_down(train_parquet, tmp_path):
    first, again, other = (tmp_path / name for name in ("a", "b", "c"))
    for directory in (first, again, other):
        directory.mkdir()
    sample = pq.read_table(write_labelled_sample(train_parquet, 10, 0, str(first))).to_pylist()
    assert sample == pq.read_table(write_labelled_sample(train_parquet, 10, 0, str(again))).to_pylist()
    assert sample != pq.read_table(write_labelled_sample(train_parquet, 10, 1, str(other))).to_pylist()
    assert len({row["id"] for row in sample}) == 10
    assert (first / "labelled_sample.txt").read_text().split() == [row["id"] for row in sample]


def test_a_sample_larger_than_the_training_split_is_refused(train_parquet, tmp_path):
    with pytest.raises(SystemExit, match="more than the 50 training documents"):
        write_labelled_sample(train_parquet, 51, 0, str(tmp_path))


@pytest.mark.parametrize("seconds, step_seconds, per_checkpoint, expected", [
    (1000, 0.5, 200, 2000),  # exactly 10 intervals
    (1000, 0.6, 200, 1600),  # 1666 steps fit: whole intervals only, never more than the budget
    (10, 0.5, 200, 200),  # at least one interval
])
def test_pretraining_steps_fill_the_budget_in_whole_checkpoint_intervals(seconds, step_seconds, per_checkpoint,
                                                                         expected):
    assert steps_within(seconds, step_seconds, per_checkpoint) == expected
