"""The built wheel, installed outside the source tree, imports and runs the Beam stages.

That is how Dataflow workers (`--setup_file ./setup.py`) and Beam's multi-process workers see the
project: as an installed package, not as the checkout.
"""

from __future__ import annotations

import json
import sys

import pytest

from pipelines import score
from tests.conftest import make_documents, write_corpus
from tests.wheel_fixture import installed_only_env, installed_wheel, run  # noqa: F401  (installed_wheel: a fixture)

pytestmark = pytest.mark.slow


def test_wheel_installed_elsewhere_runs_preprocess_and_multi_process_scoring(tmp_path, tiny_export, installed_wheel):
    # Only the installed copy is importable: the checkout is neither the working directory nor on the path.
    env = installed_only_env(installed_wheel)
    where = run([sys.executable, "-c", "import json, model, pipelines, schemas; "
                 "print(json.dumps([m.__file__ for m in (model, pipelines, schemas)]))"], cwd=tmp_path, env=env)
    assert all(path.startswith(str(installed_wheel)) for path in json.loads(where.stdout))

    documents = make_documents(40)
    corpus = write_corpus(documents, tmp_path / "raw", "jsonl")
    run([sys.executable, "-m", "pipelines.preprocess", "--input", corpus, "--output-dir", str(tmp_path / "prep"),
         "--max-seq-length", "16"], cwd=tmp_path, env=env)
    assert json.loads((tmp_path / "prep" / "stats.json").read_text())["accepted"] == len(documents)
    run([sys.executable, "-m", "pipelines.score", "--model", tiny_export, "--input", corpus, "--id-field", "id",
         "--output-dir", str(tmp_path / "scored"), "--direct_running_mode=multi_processing",
         "--direct_num_workers=2"], cwd=tmp_path, env=env)
    summary = json.loads((tmp_path / "scored" / "summary.json").read_text())
    assert summary["read"] == summary["scored"] == len(documents)

    in_process = score.run(["--model", tiny_export, "--input", corpus, "--id-field", "id",
                            "--output-dir", str(tmp_path / "in_process")])
    assert in_process["scored"] == summary["scored"]
    assert predicted(tmp_path / "scored") == predicted(tmp_path / "in_process")


def predicted(output_dir) -> list[tuple]:
    rows = [json.loads(line) for path in sorted(output_dir.glob("predictions-*.jsonl")) for line in open(path)]
    return sorted((r["id"], r["label"], round(r["score"], 5)) for r in rows)
