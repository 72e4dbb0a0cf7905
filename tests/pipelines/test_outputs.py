"""StagedOutputDir: an output directory appears whole, with _SUCCESS, or not at all."""

import os

import pytest

from pipelines import outputs
from pipelines.outputs import StagedOutputDir
from schemas import features
from schemas.errors import UserError


def names_in(directory):
    return sorted(os.listdir(directory))


def make_finished_run(final_dir, files=("old.txt",)):
    final_dir.mkdir()
    for name in files:
        (final_dir / name).write_text("old run")
    (final_dir / features.SUCCESS_MARKER).write_text("")


def run_stage(final_dir, overwrite=False, files=("x.txt",)):
    with StagedOutputDir(str(final_dir), overwrite) as staging:
        for name in files:
            outputs.write_text(staging.join(name), f"content of {name}")
        staging.commit()
    return staging


class Boom(Exception):
    pass


def test_successful_run_leaves_the_final_dir_with_its_files_and_success_marker(tmp_path):
    final_dir = tmp_path / "out"

    run_stage(final_dir, files=("x.txt", "y.json"))

    assert names_in(final_dir) == sorted(["x.txt", "y.json", features.SUCCESS_MARKER])
    assert (final_dir / "x.txt").read_text() == "content of x.txt"
    assert outputs.is_finished(str(final_dir))
    assert names_in(tmp_path) == ["out"]  # no staging directory left beside it


def test_files_are_written_into_a_staging_dir_beside_the_final_dir_until_commit(tmp_path):
    final_dir = tmp_path / "out"

    with StagedOutputDir(str(final_dir), overwrite=False) as staging:
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

    with StagedOutputDir(str(final_dir), overwrite=False) as staging:
        outputs.write_text(staging.join("train", "part-0.txt"), "rows")
        staging.commit()

    assert (final_dir / "train" / "part-0.txt").read_text() == "rows"


def test_an_exception_inside_the_block_leaves_neither_final_nor_staging_dir(tmp_path):
    with pytest.raises(Boom):
        with StagedOutputDir(str(tmp_path / "out"), overwrite=False) as staging:
            outputs.write_text(staging.join("x.txt"), "partial")
            raise Boom()

    assert names_in(tmp_path) == []


def test_leaving_the_block_without_commit_leaves_nothing(tmp_path):
    with StagedOutputDir(str(tmp_path / "out"), overwrite=False) as staging:
        outputs.write_text(staging.join("x.txt"), "never committed")

    assert names_in(tmp_path) == []


def test_a_failed_run_does_not_touch_a_previous_finished_run(tmp_path):
    final_dir = tmp_path / "out"
    make_finished_run(final_dir)

    with pytest.raises(Boom):
        with StagedOutputDir(str(final_dir), overwrite=True) as staging:
            outputs.write_text(staging.join("x.txt"), "partial")
            raise Boom()

    assert names_in(final_dir) == sorted(["old.txt", features.SUCCESS_MARKER])
    assert names_in(tmp_path) == ["out"]


def test_a_finished_dir_is_refused_without_overwrite(tmp_path):
    final_dir = tmp_path / "out"
    make_finished_run(final_dir)

    with pytest.raises(UserError, match="--overwrite"):
        run_stage(final_dir, overwrite=False)

    assert names_in(final_dir) == sorted(["old.txt", features.SUCCESS_MARKER])
    assert names_in(tmp_path) == ["out"]


def test_a_finished_dir_is_replaced_with_overwrite(tmp_path):
    final_dir = tmp_path / "out"
    make_finished_run(final_dir, files=("old.txt", "stale.json"))

    run_stage(final_dir, overwrite=True, files=("new.txt",))

    assert names_in(final_dir) == sorted(["new.txt", features.SUCCESS_MARKER])
    assert names_in(tmp_path) == ["out"]


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_non_empty_dir_without_success_marker_is_refused_and_left_untouched(tmp_path, overwrite):
    final_dir = tmp_path / "precious"
    final_dir.mkdir()
    (final_dir / "thesis.tex").write_text("years of work")

    with pytest.raises(UserError, match="not a finished run"):
        run_stage(final_dir, overwrite=overwrite)

    assert names_in(final_dir) == ["thesis.tex"]
    assert (final_dir / "thesis.tex").read_text() == "years of work"
    assert names_in(tmp_path) == ["precious"]


def test_an_existing_file_as_final_dir_is_refused_and_left_untouched(tmp_path):
    final_path = tmp_path / "out"
    final_path.write_text("a file, not a directory")

    with pytest.raises(UserError):
        run_stage(final_path, overwrite=True)

    assert final_path.read_text() == "a file, not a directory"


def test_an_empty_existing_dir_is_accepted(tmp_path):
    final_dir = tmp_path / "out"
    final_dir.mkdir()

    run_stage(final_dir, overwrite=False)

    assert names_in(final_dir) == sorted(["x.txt", features.SUCCESS_MARKER])
    assert names_in(tmp_path) == ["out"]


def test_a_destination_that_became_non_empty_during_the_run_is_not_replaced(tmp_path):
    final_dir = tmp_path / "out"

    with pytest.raises(UserError):
        with StagedOutputDir(str(final_dir), overwrite=True) as staging:
            outputs.write_text(staging.join("x.txt"), "mine")
            final_dir.mkdir()
            (final_dir / "theirs.txt").write_text("someone else's")
            staging.commit()

    assert names_in(final_dir) == ["theirs.txt"]
    assert names_in(tmp_path) == ["out"]  # the refused staging dir was removed


@pytest.mark.parametrize("final_dir", ["", None])
def test_no_output_dir_is_a_user_error(final_dir):
    with pytest.raises(UserError, match="--output-dir"):
        StagedOutputDir(final_dir, overwrite=False)


def test_write_text_and_read_text_round_trip_unicode(tmp_path):
    path = str(tmp_path / "note.txt")

    outputs.write_text(path, "naïve — 日本語\n")

    assert outputs.read_text(path) == "naïve — 日本語\n"
