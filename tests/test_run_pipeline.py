"""./run_pipeline.sh, the README's first command, on the sample corpus."""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.slow


def test_run_pipeline_preprocesses_trains_and_scores_the_sample_and_prints_a_summary(tmp_path):
    work_dir = tmp_path / "job"
    result = subprocess.run(["./run_pipeline.sh", "--work-dir", str(work_dir), "--epochs", "1"], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=900, check=False,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))

    assert result.returncode == 0, result.stderr[-3000:]
    stats = json.loads((work_dir / "preprocessed" / "stats.json").read_text())
    metrics = json.loads((work_dir / "model" / "metrics.json").read_text())
    assert stats["read"] == 2000 and stats["rejected"] == 0
    assert metrics["epochs_trained"] == 1  # --epochs overrides the job file's 6
    assert f"eval accuracy {metrics['accuracy']:.3f}" in result.stdout
    assert "majority baseline" in result.stdout
    # The trainer's progress line for the epoch (Keras prints no "Epoch 1/1" header for a single epoch).
    assert [line for line in result.stdout.splitlines() if re.match(r"\d+/\d+ - .*/step", line)], result.stdout
    assert (work_dir / "model" / "export").is_dir()
    summary = json.loads((work_dir / "predictions" / "summary.json").read_text())
    assert summary["read"] == summary["scored"] == 500  # sample/holdout.jsonl, which training never saw
    assert f"{summary['scored']} scored" in result.stdout
    assert f"accuracy on their labels {summary['evaluation']['accuracy']:.3f}" in result.stdout
    assert "the model trained on" not in result.stdout
    # Known-harmless library lines are silenced; warnings are not filtered out wholesale.
    assert "Resource module is not available" not in result.stderr
    assert "Your input ran out of data" not in result.stderr
    assert list((work_dir / "predictions").glob("predictions-*.jsonl"))


def test_run_pipeline_help_describes_the_stages_and_options():
    result = subprocess.run(["./run_pipeline.sh", "--help"], cwd=REPO_ROOT, capture_output=True, text=True,
                            check=True)
    for word in ("preprocess", "train", "score", "--input", "--score-input", "--config", "--work-dir", "--encoder",
                 "DataflowRunner"):
        assert word in result.stdout
