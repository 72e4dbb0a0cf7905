"""The preprocessing command's refusals: one `error:` line, exit status 2, nothing written.

Each mistake is caught before any pipeline runs, so these call the entry point in-process; one
subprocess (slow) proves the real command prints no traceback.
"""

from __future__ import annotations

import os

import pytest

from pipelines import preprocess
from schemas import config as config_lib
from schemas import features, output_dirs
from tests.conftest import make_documents, run_cli, write_corpus


@pytest.fixture
def paths(tmp_path) -> dict[str, str]:
    """Inputs and directories the arguments below may name as {corpus}, {out}, ..."""
    corpus = write_corpus(make_documents(6), tmp_path, "jsonl")
    (tmp_path / "bad_config.yaml").write_text("preprocess:\n  tokeniser: word\n")
    (tmp_path / "corpus.xml").write_text("<docs/>")
    (tmp_path / "a_file").write_text("not a directory")
    aliases = ["a: &a [" + ", ".join(["'xxxxxxxxxxxxxxxxxxxx'"] * 10) + "]"]
    for level in "bcdef":  # each level repeats the previous ten times: ~2 MB once printed
        aliases.append(f"{level}: &{level} [" + ", ".join([f"*{chr(ord(level) - 1)}"] * 10) + "]")
    (tmp_path / "aliases.yaml").write_text("corpus:\n  text_field:\n" + "".join(
        f"    - {line[3:]}\n" for line in aliases))
    textdirs = write_corpus(make_documents(6), tmp_path / "textdirs", "textdirs")
    model = tmp_path / "model"
    model.mkdir()
    (model / output_dirs.STAGE_MARKER).write_text(output_dirs.stage_marker(output_dirs.TRAIN))
    (model / features.SUCCESS_MARKER).write_text("")
    finished = tmp_path / "finished"
    finished.mkdir()
    (finished / output_dirs.STAGE_MARKER).write_text(output_dirs.stage_marker(output_dirs.PREPROCESS))
    (finished / features.SUCCESS_MARKER).write_text("")
    return {"tmp": str(tmp_path), "corpus": corpus, "bad_config": str(tmp_path / "bad_config.yaml"),
            "xml": str(tmp_path / "corpus.xml"), "aliases": str(tmp_path / "aliases.yaml"), "textdirs": textdirs,
            "out": str(tmp_path / "out"), "model": str(model), "finished": str(finished),
            "under_file": str(tmp_path / "a_file" / "out")}


def error_line(capsys, argv: list[str]) -> str:
    with pytest.raises(SystemExit) as raised:
        preprocess.main(argv)
    assert raised.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    (line,) = [line for line in err.splitlines() if line.startswith("error:")]
    return line


@pytest.mark.parametrize("args, message", [
    (["--input", "{tmp}/does/not/exist/*.jsonl"], "No files match"),
    (["--input", "{corpus}", "--format", "xml"], "invalid choice"),
    (["--input", "{corpus}", "--vocab-size", "many"], "invalid int value"),
    (["--input", "{corpus}", "--eval-fraction", "1.5"], "eval_fraction"),
    (["--input", "{corpus}", "--config", "{bad_config}"], "Unknown config key 'preprocess.tokeniser'"),
    (["--input", "{corpus}", "--frobnicate=1"], "Unknown option --frobnicate"),
    (["--input", "{xml}"], "Cannot tell the format"),
])
def test_user_mistakes_exit_2_with_one_clear_line_and_write_nothing(capsys, paths, args, message):
    line = error_line(capsys, [a.format(**paths) for a in args] + ["--output-dir", paths["out"]])

    assert message in line
    assert not os.path.exists(paths["out"])


def test_a_config_value_is_quoted_in_at_most_a_few_hundred_characters(capsys, paths):
    line = error_line(capsys, ["--input", paths["corpus"], "--config", paths["aliases"], "--output-dir", paths["out"]])

    assert "corpus.text_field must be a string" in line
    assert len(line) < config_lib.MAX_SHOWN_CHARS + 100


def test_an_output_dir_whose_parent_cannot_be_written_is_named_as_given(capsys, paths):
    line = error_line(capsys, ["--input", paths["corpus"], "--output-dir", paths["under_file"]])

    assert paths["under_file"] in line and ".staging-" not in line


@pytest.mark.parametrize("output, inputs, message", [
    ("{model}", ["{corpus}"], "output of the train stage"),
    ("{textdirs}/out", ["{textdirs}"], "overlaps the input"),
    ("{tmp}", ["{corpus}"], "overlaps the input"),
])
def test_an_output_dir_the_stage_must_not_replace_is_refused_without_suggesting_overwrite(
        capsys, paths, output, inputs, message):
    output = output.format(**paths)
    before = sorted(os.listdir(paths["tmp"]))
    argv = [arg for path in inputs for arg in ("--input", path.format(**paths))] + ["--output-dir", output]

    line = error_line(capsys, argv + ["--overwrite"])

    assert message in line and "--overwrite" not in line
    assert sorted(os.listdir(paths["tmp"])) == before


def test_a_finished_preprocessing_output_is_refused_without_overwrite(capsys, paths):
    line = error_line(capsys, ["--input", paths["corpus"], "--output-dir", paths["finished"]])

    assert "--overwrite" in line
    assert sorted(os.listdir(paths["finished"])) == [output_dirs.STAGE_MARKER, features.SUCCESS_MARKER]


@pytest.mark.slow
def test_the_command_reports_a_mistake_in_one_line_without_a_traceback(paths):
    result = run_cli("pipelines.preprocess", "--input", paths["corpus"], "--config", paths["bad_config"],
                     "--output-dir", paths["out"])

    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 2
    assert len(error_lines) == 1 and "Unknown config key 'preprocess.tokeniser'" in error_lines[0]
    assert "Traceback" not in result.stderr
