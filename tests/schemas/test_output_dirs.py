"""What a stage may do with an output directory: create, replace its own finished output, resume, or refuse."""

from __future__ import annotations

import json
import re

import pytest

from schemas import output_dirs
from schemas.errors import UserError
from tests.conftest import REPO_ROOT


class InMemoryFilesystem:
    """Paths → file contents; a directory exists when a file lies under it."""

    def __init__(self, files: dict[str, str] | None = None):
        self.files = dict(files or {})

    def exists(self, path: str) -> bool:
        path = path.rstrip("/")
        return path in self.files or any(name.startswith(path + "/") for name in self.files)

    def list_names(self, path: str) -> list[str]:
        prefix = path.rstrip("/") + "/"
        return sorted({name[len(prefix):].split("/")[0] for name in self.files if name.startswith(prefix)})

    def read_text(self, path: str) -> str:
        return self.files[path]


def finished(stage: str, directory: str = "out") -> dict[str, str]:
    return {f"{directory}/{output_dirs.STAGE_MARKER}": output_dirs.stage_marker(stage),
            f"{directory}/{output_dirs.SUCCESS_MARKER}": "", f"{directory}/data.txt": "x"}


def test_absent_or_empty_directory_is_new():
    assert output_dirs.check_output_dir(InMemoryFilesystem(), "out", output_dirs.SCORE, overwrite=False) == "new"


def test_own_finished_output_is_replaced_only_with_overwrite():
    fs = InMemoryFilesystem(finished(output_dirs.SCORE))
    assert output_dirs.check_output_dir(fs, "out", output_dirs.SCORE, overwrite=True) == "replace"
    with pytest.raises(UserError, match="already holds a finished score run; pass --overwrite"):
        output_dirs.check_output_dir(fs, "out", output_dirs.SCORE, overwrite=False)


@pytest.mark.parametrize("overwrite", [False, True])
def test_another_stages_output_is_refused_without_suggesting_overwrite(overwrite):
    fs = InMemoryFilesystem(finished(output_dirs.TRAIN))
    with pytest.raises(UserError, match="holds the output of the train stage") as refused:
        output_dirs.check_output_dir(fs, "out", output_dirs.SCORE, overwrite=overwrite)
    assert "--overwrite" not in str(refused.value)


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_folder_of_other_files_is_refused_without_suggesting_overwrite(overwrite):
    fs = InMemoryFilesystem({"out/notes.txt": "mine", "out/_SUCCESS": ""})
    with pytest.raises(UserError, match="nothing was changed") as refused:
        output_dirs.check_output_dir(fs, "out", output_dirs.TRAIN, overwrite=overwrite)
    assert "--overwrite" not in str(refused.value)


def test_unfinished_own_output_resumes_where_the_stage_can_and_is_replaced_with_overwrite():
    fs = InMemoryFilesystem({"out/_STAGE.json": output_dirs.stage_marker(output_dirs.TRAIN), "out/ckpt": "1"})
    assert output_dirs.check_output_dir(fs, "out", output_dirs.TRAIN, overwrite=False, resumable=True) == "resume"
    assert output_dirs.check_output_dir(fs, "out", output_dirs.TRAIN, overwrite=True, resumable=True) == "replace"
    with pytest.raises(UserError, match="unfinished train run"):
        output_dirs.check_output_dir(fs, "out", output_dirs.TRAIN, overwrite=False)


def test_an_unreadable_stage_marker_counts_as_someone_elses_directory():
    fs = InMemoryFilesystem({"out/_STAGE.json": "{not json", "out/_SUCCESS": ""})
    assert output_dirs.stage_of(fs, "out") is None
    with pytest.raises(UserError, match="older version or another tool"):
        output_dirs.check_output_dir(fs, "out", output_dirs.SCORE, overwrite=True)


def test_stage_marker_names_the_stage_and_the_project_version():
    assert json.loads(output_dirs.stage_marker(output_dirs.PREPROCESS)) == {
        "stage": "preprocess", "version": output_dirs.PROJECT_VERSION}
    with pytest.raises(ValueError, match="Received: stage='nope'"):
        output_dirs.stage_marker("nope")


def test_project_version_is_the_one_setup_py_installs():
    setup_py = (REPO_ROOT / "setup.py").read_text()
    assert re.search(r'version="([^"]+)"', setup_py).group(1) == output_dirs.PROJECT_VERSION


@pytest.mark.parametrize("output_dir, input_dirs", [
    ("data/prep", ["data/prep"]),  # the same directory
    ("data/prep/model", ["data/prep"]),  # inside an input directory
    ("data", ["data/prep"]),  # holds an input directory
    ("gs://b/prep/../prep/m", ["gs://b/prep"]),  # other filesystems, normalized
    ("./data/prep/", ["data/prep"]),
])
def test_output_overlapping_an_input_directory_is_refused(output_dir, input_dirs):
    with pytest.raises(UserError, match="overlaps the input"):
        output_dirs.check_not_overlapping(output_dir, input_dirs)


@pytest.mark.parametrize("output_dir, pattern", [
    ("data", "data/*.jsonl"),  # replacing the output would delete the inputs
    ("corpus", "corpus/2024/*.csv"),
    ("data/scored", "data/**/*.jsonl"),  # a recursive pattern would read the output back
])
def test_output_overlapping_an_input_pattern_is_refused(output_dir, pattern):
    with pytest.raises(UserError, match="overlaps the input"):
        output_dirs.check_not_overlapping(output_dir, [], [pattern])


@pytest.mark.parametrize("output_dir, input_dirs, patterns", [
    ("data/scored", [], ["data/*.jsonl"]),  # beside its inputs, not among them
    ("runs/model", ["runs/prep"], []),
    ("gs://b/prep2", ["gs://b/prep"], []),  # a shared name prefix is not nesting
])
def test_outputs_beside_their_inputs_are_allowed(output_dir, input_dirs, patterns):
    output_dirs.check_not_overlapping(output_dir, input_dirs, patterns)


@pytest.mark.parametrize("pattern, root", [
    ("data/*.jsonl", "data"), ("gs://b/x/part-?.csv", "gs://b/x"), ("corpus.jsonl", "corpus.jsonl"),
    ("a/b[12]/c.txt", "a"),
])
def test_input_root_is_the_pattern_prefix_without_glob_characters(pattern, root):
    assert output_dirs.input_root(pattern) == root
