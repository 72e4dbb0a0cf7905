"""The Beam stages read and write through Beam's FileSystems only: a non-local scheme works end to end."""

from __future__ import annotations

import json

import pytest
from apache_beam.io.filesystems import FileSystems

from pipelines import outputs, score
from schemas import output_dirs
from tests import other_filesystem
from tests.conftest import make_documents


@pytest.fixture
def remote(tmp_path, monkeypatch):
    """`remote://` stored under tmp_path/root; the working directory is tmp_path/cwd, to catch local writes."""
    (tmp_path / "root").mkdir()
    (tmp_path / "cwd").mkdir()
    monkeypatch.setenv(other_filesystem.ROOT_ENVIRONMENT_VARIABLE, str(tmp_path / "root"))
    monkeypatch.chdir(tmp_path / "cwd")
    yield tmp_path
    assert not list((tmp_path / "cwd").iterdir()), "something was written to a local path"


def write_remote(path: str, text: str) -> None:
    with FileSystems.create(path) as f:
        f.write(text.encode("utf-8"))


def names_under(path: str) -> set[str]:
    prefix = path.rstrip("/") + "/"
    return {m.path[len(prefix):] for m in FileSystems.match([prefix + "**"])[0].metadata_list}


def test_staged_output_commits_and_replaces_only_its_own_stage_on_another_filesystem(remote):
    with outputs.StagedOutputDir("remote://out", overwrite=False, stage=output_dirs.SCORE) as staging:
        write_remote(staging.join("part-0.txt"), "first")
        staging.commit()
    assert names_under("remote://out") == {"part-0.txt", output_dirs.STAGE_MARKER, output_dirs.SUCCESS_MARKER}

    with outputs.StagedOutputDir("remote://out", overwrite=True, stage=output_dirs.SCORE) as staging:
        write_remote(staging.join("part-1.txt"), "second")
        staging.commit()
    assert names_under("remote://out") == {"part-1.txt", output_dirs.STAGE_MARKER, output_dirs.SUCCESS_MARKER}
    with pytest.raises(Exception, match="holds the output of the score stage"):
        outputs.StagedOutputDir("remote://out", overwrite=True, stage=output_dirs.PREPROCESS).__enter__()
    assert sorted(p.name for p in (remote / "root").iterdir()) == ["out"]  # no staging or failed directory left


def test_a_failed_run_is_kept_beside_the_output_on_another_filesystem(remote):
    with outputs.StagedOutputDir("remote://out", overwrite=False, stage=output_dirs.SCORE) as staging:
        write_remote(staging.join("rejected", "rejected-0.jsonl"), "{}\n")
        failed = staging.keep_failed("nothing scored")
    assert failed.startswith("remote://out.failed-")
    assert names_under(failed) == {"rejected/rejected-0.jsonl", output_dirs.STAGE_MARKER}
    assert not FileSystems.exists("remote://out")


@pytest.mark.slow
def test_scoring_reads_and_writes_another_filesystem(remote, tiny_export):
    documents = make_documents(30)
    write_remote("remote://in/docs.jsonl", "".join(json.dumps(d) + "\n" for d in documents))

    summary = score.run(["--model", tiny_export, "--input", "remote://in/*.jsonl", "--id-field", "id",
                         "--output-dir", "remote://job/predictions"])

    assert summary["read"] == summary["scored"] == len(documents)
    written = names_under("remote://job/predictions")
    assert {"summary.json", "config.json", output_dirs.SUCCESS_MARKER} <= written
    rows = [json.loads(line) for name in sorted(written) if name.startswith("predictions-")
            for line in FileSystems.open(f"remote://job/predictions/{name}").read().decode().splitlines()]
    assert sorted(r["id"] for r in rows) == sorted(d["id"] for d in documents)
    assert all(r["source"].startswith("remote://in/docs.jsonl:") for r in rows)

