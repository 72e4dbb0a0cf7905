"""StagedOutputDir: an output directory appears whole, with _SUCCESS, or not at all, and a stage
replaces only its own finished output."""

import json
import os
import time

import pytest

from pipelines import outputs
from pipelines.outputs import StagedOutputDir
from schemas import features, output_dirs
from schemas.errors import UserError

STAGE = output_dirs.PREPROCESS
MARKERS = [output_dirs.STAGE_MARKER, features.SUCCESS_MARKER]


def names_in(directory):
    return sorted(os.listdir(directory))


def make_finished_run(final_dir, files=("old.txt",), stage=STAGE):
    final_dir.mkdir()
    for name in files:
        (final_dir / name).write_text("old run")
    (final_dir / output_dirs.STAGE_MARKER).write_text(output_dirs.stage_marker(stage))
    (final_dir / features.SUCCESS_MARKER).write_text("")


def run_stage(final_dir, overwrite=False, files=("x.txt",), stage=STAGE, **inputs):
    with StagedOutputDir(str(final_dir), overwrite, stage, **inputs) as staging:
        for name in files:
            outputs.write_text(staging.join(name), f"content of {name}")
        staging.commit()
    return staging


class Boom(Exception):
    pass


def test_successful_run_leaves_the_final_dir_with_its_files_and_success_marker(tmp_path):
    final_dir = tmp_path / "out"

    run_stage(final_dir, files=("x.txt", "y.json"))

    assert names_in(final_dir) == sorted(["x.txt", "y.json", *MARKERS])
    assert (final_dir / "x.txt").read_text() == "content of x.txt"
    assert json.loads((final_dir / output_dirs.STAGE_MARKER).read_text())["stage"] == STAGE
    assert outputs.is_finished(str(final_dir))
    assert names_in(tmp_path) == ["out"]  # no staging directory left beside it


def test_files_are_written_into_a_staging_dir_beside_the_final_dir_until_commit(tmp_path):
    final_dir = tmp_path / "out"

    with StagedOutputDir(str(final_dir), False, STAGE) as staging:
        assert names_in(staging.path) == [output_dirs.STAGE_MARKER]  # the marker comes first
        outputs.write_text(staging.join("x.txt"), "hi")
        assert os.path.dirname(staging.path) == str(tmp_path)
        assert os.path.basename(staging.path).startswith("out.staging-")
        assert os.path.isfile(os.path.join(staging.path, "x.txt"))
        assert not final_dir.exists()
        staging.commit()

    assert (final_dir / "x.txt").read_text() == "hi"


def test_a_trailing_slash_on_the_final_dir_is_ignored(tmp_path):
    run_stage(f"{tmp_path / 'out'}/")

    assert names_in(tmp_path) == ["out"]
    assert outputs.is_finished(str(tmp_path / "out"))


def test_subdirectories_of_the_staging_dir_are_moved_too(tmp_path):
    final_dir = tmp_path / "out"

    with StagedOutputDir(str(final_dir), False, STAGE) as staging:
        outputs.write_text(staging.join("train", "part-0.txt"), "rows")
        staging.commit()

    assert (final_dir / "train" / "part-0.txt").read_text() == "rows"


def test_an_exception_inside_the_block_leaves_neither_final_nor_staging_dir(tmp_path):
    with pytest.raises(Boom):
        with StagedOutputDir(str(tmp_path / "out"), False, STAGE) as staging:
            outputs.write_text(staging.join("x.txt"), "partial")
            raise Boom()

    assert names_in(tmp_path) == []


def test_leaving_the_block_without_commit_leaves_nothing(tmp_path):
    with StagedOutputDir(str(tmp_path / "out"), False, STAGE) as staging:
        outputs.write_text(staging.join("x.txt"), "never committed")

    assert names_in(tmp_path) == []


def test_a_failed_run_does_not_touch_a_previous_finished_run(tmp_path):
    final_dir = tmp_path / "out"
    make_finished_run(final_dir)

    with pytest.raises(Boom):
        with StagedOutputDir(str(final_dir), True, STAGE) as staging:
            outputs.write_text(staging.join("x.txt"), "partial")
            raise Boom()

    assert names_in(final_dir) == sorted(["old.txt", *MARKERS])
    assert names_in(tmp_path) == ["out"]


def test_a_finished_dir_is_refused_without_overwrite(tmp_path):
    final_dir = tmp_path / "out"
    make_finished_run(final_dir)

    with pytest.raises(UserError, match="--overwrite"):
        run_stage(final_dir, overwrite=False)

    assert names_in(final_dir) == sorted(["old.txt", *MARKERS])
    assert names_in(tmp_path) == ["out"]


def test_a_finished_dir_is_replaced_with_overwrite(tmp_path):
    final_dir = tmp_path / "out"
    make_finished_run(final_dir, files=("old.txt", "stale.json"))

    run_stage(final_dir, overwrite=True, files=("new.txt",))

    assert names_in(final_dir) == sorted(["new.txt", *MARKERS])
    assert (final_dir / "new.txt").read_text() == "content of new.txt"
    assert names_in(tmp_path) == ["out"]


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_non_empty_dir_without_success_marker_is_refused_and_left_untouched(tmp_path, overwrite):
    final_dir = tmp_path / "precious"
    final_dir.mkdir()
    (final_dir / "thesis.tex").write_text("years of work")

    with pytest.raises(UserError, match="not written by this project") as raised:
        run_stage(final_dir, overwrite=overwrite)

    assert "--overwrite" not in str(raised.value)  # it would not help, and must not be suggested
    assert names_in(final_dir) == ["thesis.tex"]
    assert (final_dir / "thesis.tex").read_text() == "years of work"
    assert names_in(tmp_path) == ["precious"]


def test_an_existing_file_as_final_dir_is_refused_and_left_untouched(tmp_path):
    final_path = tmp_path / "out"
    final_path.write_text("a file, not a directory")

    with pytest.raises(UserError, match="is a file"):
        run_stage(final_path, overwrite=True)

    assert final_path.read_text() == "a file, not a directory"


def test_an_empty_existing_dir_is_accepted(tmp_path):
    final_dir = tmp_path / "out"
    final_dir.mkdir()

    run_stage(final_dir, overwrite=False)

    assert names_in(final_dir) == sorted(["x.txt", *MARKERS])
    assert names_in(tmp_path) == ["out"]


def test_a_destination_that_became_non_empty_during_the_run_is_not_replaced(tmp_path):
    final_dir = tmp_path / "out"

    with pytest.raises(UserError, match="not written by this project"):
        with StagedOutputDir(str(final_dir), True, STAGE) as staging:
            outputs.write_text(staging.join("x.txt"), "mine")
            final_dir.mkdir()
            (final_dir / "theirs.txt").write_text("someone else's")
            staging.commit()

    assert names_in(final_dir) == ["theirs.txt"]
    assert names_in(tmp_path) == ["out"]  # the refused staging dir was removed


@pytest.mark.parametrize("final_dir", ["", None])
def test_no_output_dir_is_a_user_error(final_dir):
    with pytest.raises(UserError, match="--output-dir"):
        StagedOutputDir(final_dir, False, STAGE)


def test_write_text_and_read_text_round_trip_unicode(tmp_path):
    path = str(tmp_path / "note.txt")

    outputs.write_text(path, "naïve — 日本語\n")

    assert outputs.read_text(path) == "naïve — 日本語\n"


# --- what a stage may replace ------------------------------------------------------------------


@pytest.mark.parametrize("overwrite", [False, True])
def test_another_stages_finished_output_is_refused_without_suggesting_overwrite(tmp_path, overwrite):
    final_dir = tmp_path / "model"
    make_finished_run(final_dir, files=("saved_model.pb",), stage=output_dirs.TRAIN)

    with pytest.raises(UserError, match=f"output of the {output_dirs.TRAIN} stage") as raised:
        run_stage(final_dir, overwrite=overwrite)

    assert "--overwrite" not in str(raised.value)
    assert names_in(final_dir) == sorted(["saved_model.pb", *MARKERS])
    assert names_in(tmp_path) == ["model"]


def test_a_finished_dir_without_a_stage_marker_is_refused_even_with_overwrite(tmp_path):
    final_dir = tmp_path / "out"
    final_dir.mkdir()
    (final_dir / "old.txt").write_text("someone's run")
    (final_dir / features.SUCCESS_MARKER).write_text("")

    with pytest.raises(UserError) as raised:
        run_stage(final_dir, overwrite=True)

    assert "--overwrite" not in str(raised.value)
    assert names_in(final_dir) == sorted(["old.txt", features.SUCCESS_MARKER])


@pytest.mark.parametrize("output, inputs", [
    pytest.param("corpus", {"input_dirs": ["{tmp}/corpus"]}, id="output_is_the_text_dirs_corpus"),
    pytest.param("corpus/out", {"input_dirs": ["{tmp}/corpus"]}, id="output_inside_the_text_dirs_corpus"),
    pytest.param("data", {"input_patterns": ["{tmp}/data/*.jsonl"]}, id="output_is_the_directory_of_the_inputs"),
    pytest.param("data", {"input_patterns": ["{tmp}/data/part/*.jsonl"]}, id="output_holds_the_inputs"),
])
def test_an_output_dir_overlapping_the_inputs_is_refused_before_anything_is_written(tmp_path, output, inputs):
    (tmp_path / "corpus" / "pos").mkdir(parents=True)
    (tmp_path / "corpus" / "pos" / "1.txt").write_text("a document")
    inputs = {kind: [p.format(tmp=tmp_path) for p in paths] for kind, paths in inputs.items()}
    before = sorted(str(p) for p in tmp_path.rglob("*"))

    with pytest.raises(UserError, match="overlaps the input") as raised:
        run_stage(tmp_path / output, overwrite=True, **inputs)

    assert "--overwrite" not in str(raised.value)
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before


def test_an_output_dir_beside_the_inputs_is_accepted(tmp_path):
    run_stage(tmp_path / "out", input_dirs=[str(tmp_path / "corpus")],
              input_patterns=[str(tmp_path / "data" / "*.jsonl")])

    assert outputs.is_finished(str(tmp_path / "out"))


# --- directories that cannot be written ----------------------------------------------------------


def test_an_output_dir_under_a_file_is_one_user_error_naming_the_given_path(tmp_path):
    (tmp_path / "a_file").write_text("not a directory")
    final_dir = tmp_path / "a_file" / "out"

    with pytest.raises(UserError) as raised:
        run_stage(final_dir)

    message = str(raised.value)
    assert str(final_dir) in message and ".staging-" not in message and "\n" not in message
    assert names_in(tmp_path) == ["a_file"]


def test_a_parent_without_write_permission_is_a_user_error_naming_the_given_path(tmp_path, monkeypatch):
    def refuse(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(outputs.os, "makedirs", refuse)  # root may write anywhere: simulate the refusal
    final_dir = tmp_path / "locked" / "out"

    with pytest.raises(UserError, match="Permission denied") as raised:
        run_stage(final_dir)

    assert str(final_dir) in str(raised.value) and ".staging-" not in str(raised.value)


# --- keep_failed ----------------------------------------------------------------------------------


def test_keep_failed_keeps_the_output_beside_the_final_dir_never_finished(tmp_path):
    final_dir = tmp_path / "out"

    with StagedOutputDir(str(final_dir), False, STAGE) as staging:
        outputs.write_text(staging.join(features.REJECTED_DIR, "rejected-0.jsonl"), '{"reason": "empty_text"}\n')
        failed = staging.keep_failed("every document was rejected")

    assert failed == f"{final_dir}.failed-{staging.path.rsplit('-', 1)[1]}"
    assert names_in(tmp_path) == [os.path.basename(failed)]  # no final dir, no staging dir
    assert names_in(failed) == sorted([output_dirs.STAGE_MARKER, features.REJECTED_DIR])
    assert not outputs.is_finished(failed)


def test_keep_failed_leaves_a_previous_finished_run_untouched_and_a_rerun_can_replace_it(tmp_path):
    final_dir = tmp_path / "out"
    make_finished_run(final_dir)

    with StagedOutputDir(str(final_dir), True, STAGE) as staging:
        failed = staging.keep_failed("empty input")

    assert names_in(final_dir) == sorted(["old.txt", *MARKERS])
    run_stage(final_dir, overwrite=True, files=("new.txt",))
    assert names_in(final_dir) == sorted(["new.txt", *MARKERS])
    assert os.path.isdir(failed)


# --- stale staging directories ------------------------------------------------------------------


def make_staging_dir(path, age_seconds, marker=True):
    path.mkdir()
    (path / "part-0").write_text("rows")
    if marker:
        (path / output_dirs.STAGE_MARKER).write_text(output_dirs.stage_marker(STAGE))
    past = time.time() - age_seconds
    for file in path.iterdir():
        os.utime(file, (past, past))
    return path


def test_staging_dirs_of_runs_killed_over_a_day_ago_are_removed_by_the_next_run(tmp_path):
    day = outputs.STALE_STAGING_SECONDS
    killed = make_staging_dir(tmp_path / "out.staging-0123abcd", age_seconds=2 * day)
    running = make_staging_dir(tmp_path / "out.staging-4567abcd", age_seconds=60)
    not_ours = make_staging_dir(tmp_path / "out.staging-89abcdef", age_seconds=2 * day, marker=False)
    other_output = make_staging_dir(tmp_path / "other.staging-0123abcd", age_seconds=2 * day)
    other_name = make_staging_dir(tmp_path / "out.staging-backup", age_seconds=2 * day)

    run_stage(tmp_path / "out")

    assert not killed.exists()
    assert running.exists() and not_ours.exists() and other_output.exists() and other_name.exists()
    assert outputs.is_finished(str(tmp_path / "out"))
