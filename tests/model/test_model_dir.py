"""The model directory guard: what a training run may write, resume or replace (no training here)."""

from __future__ import annotations

import json

import pytest
import tensorflow as tf

from model.model_dir import NEW, REPLACE, RESUME, check_model_dir, prepare_model_dir
from schemas import output_dirs
from schemas.config_loader import load_job_config
from schemas.errors import UserError


def job_for(data_dir, model_dir, **overrides):
    return load_job_config(None, {"train.data_dir": str(data_dir), "train.model_dir": str(model_dir), **overrides})


def trainer_output(model_dir, job, finished: bool):
    """A model directory as a trainer run leaves it: marker, settings, some state, maybe _SUCCESS."""
    model_dir.mkdir(parents=True)
    (model_dir / output_dirs.STAGE_MARKER).write_text(output_dirs.stage_marker(output_dirs.TRAIN))
    (model_dir / "config.json").write_text(job.to_json())
    (model_dir / "history.csv").write_text("epoch,loss\n0,1.0\n")
    if finished:
        (model_dir / "_SUCCESS").write_text("")
    return model_dir


def names(directory) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_a_new_model_dir_is_marked_as_the_trainers_with_its_settings_before_anything_else(tmp_path):
    job = job_for(tmp_path / "prep", tmp_path / "m")
    decision = check_model_dir(job)
    assert decision == NEW and not (tmp_path / "m").exists()  # deciding writes nothing

    prepare_model_dir(job, decision)

    assert names(tmp_path / "m") == ["_STAGE.json", "config.json"]
    assert json.loads((tmp_path / "m" / "_STAGE.json").read_text())["stage"] == output_dirs.TRAIN
    assert json.loads((tmp_path / "m" / "config.json").read_text()) == json.loads(job.to_json())


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_folder_of_other_files_is_refused_without_suggesting_overwrite_and_left_alone(tmp_path, overwrite):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "thesis.tex").write_text("years of work")
    with pytest.raises(UserError, match="not empty and was not written by this project") as refusal:
        check_model_dir(job_for(tmp_path / "prep", tmp_path / "m", **{"train.overwrite": overwrite}))
    assert "--overwrite" not in str(refusal.value)
    assert names(tmp_path / "m") == ["thesis.tex"]


@pytest.mark.parametrize("stage", [output_dirs.PREPROCESS, output_dirs.SCORE])
def test_another_stages_output_is_refused_even_with_overwrite(tmp_path, stage):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / output_dirs.STAGE_MARKER).write_text(output_dirs.stage_marker(stage))
    (tmp_path / "out" / "_SUCCESS").write_text("")
    with pytest.raises(UserError, match=f"output of the {stage} stage") as refusal:
        check_model_dir(job_for(tmp_path / "prep", tmp_path / "out", **{"train.overwrite": True}))
    assert "--overwrite" not in str(refusal.value)
    assert names(tmp_path / "out") == ["_STAGE.json", "_SUCCESS"]


@pytest.mark.parametrize("model_dir", ["prep", "prep/model", "."], ids=["equal", "inside", "around"])
@pytest.mark.parametrize("overwrite", [False, True])
def test_a_model_dir_equal_to_inside_or_around_the_data_dir_is_refused(tmp_path, model_dir, overwrite):
    # A preprocessing output of an older version: finished, but without _STAGE.json.
    (tmp_path / "prep").mkdir()
    (tmp_path / "prep" / "_SUCCESS").write_text("")
    with pytest.raises(UserError, match="overlaps the input") as refusal:
        check_model_dir(job_for(tmp_path / "prep", tmp_path / model_dir, **{"train.overwrite": overwrite}))
    assert "--overwrite" not in str(refusal.value)
    assert names(tmp_path / "prep") == ["_SUCCESS"]


def test_word_vectors_inside_the_model_dir_are_refused(tmp_path):
    with pytest.raises(UserError, match="overlaps the input"):
        check_model_dir(job_for(tmp_path / "prep", tmp_path / "m",
                                **{"train.word_vectors": str(tmp_path / "m" / "glove.txt")}))


def test_a_finished_run_is_replaced_only_with_overwrite(tmp_path):
    job = job_for(tmp_path / "prep", tmp_path / "m")
    trainer_output(tmp_path / "m", job, finished=True)
    with pytest.raises(UserError, match="pass --overwrite to replace it"):
        check_model_dir(job)

    overwriting = job_for(tmp_path / "prep", tmp_path / "m", **{"train.overwrite": True})
    prepare_model_dir(overwriting, check_model_dir(overwriting))

    assert names(tmp_path / "m") == ["_STAGE.json", "config.json"]  # the old run is gone


def test_an_unfinished_run_resumes_when_only_files_and_hardware_settings_changed(tmp_path):
    started = job_for(tmp_path / "prep", tmp_path / "m", **{"train.encoder": "bilstm", "albert.num_layers": 2})
    trainer_output(tmp_path / "m", started, finished=False)
    resumed = job_for(f"{tmp_path / 'prep'}/", tmp_path / "m", **{
        "train.encoder": "bilstm", "train.keep_checkpoints": 0, "train.strategy": "mirrored",
        "train.mixed_precision": "off", "albert.num_layers": 4,  # the BiLSTM run does not use the albert section
        "score.batch_size": 7})

    decision = check_model_dir(resumed)
    prepare_model_dir(resumed, decision)

    assert decision == RESUME
    assert (tmp_path / "m" / "history.csv").read_text() == "epoch,loss\n0,1.0\n"
    assert json.loads((tmp_path / "m" / "config.json").read_text()) == json.loads(started.to_json())


@pytest.mark.parametrize("setting, value", [
    ("train.encoder", "albert"), ("bilstm.lstm_units", 64), ("head.hidden_units", [32]),
    ("train.epochs", 3), ("train.learning_rate", 0.1), ("train.data_dir", "elsewhere"), ("ngrams.max_ngram", 1),
    ("albert.num_layers", 3)])  # an auto encoder may resolve to either
def test_resuming_with_a_setting_of_the_state_changed_is_refused_naming_it(tmp_path, setting, value):
    trainer_output(tmp_path / "m", job_for(tmp_path / "prep", tmp_path / "m"), finished=False)
    changed = job_for(tmp_path / "prep", tmp_path / "m", **{setting: value})
    with pytest.raises(UserError, match=rf"was started with other settings: {setting} was .*--overwrite to start over"):
        check_model_dir(changed)
    assert (tmp_path / "m" / "history.csv").exists()


def test_a_changed_unfinished_run_starts_over_with_overwrite(tmp_path):
    trainer_output(tmp_path / "m", job_for(tmp_path / "prep", tmp_path / "m"), finished=False)
    changed = job_for(tmp_path / "prep", tmp_path / "m", **{"train.encoder": "albert", "train.overwrite": True})

    decision = check_model_dir(changed)
    prepare_model_dir(changed, decision)

    assert decision == REPLACE and names(tmp_path / "m") == ["_STAGE.json", "config.json"]
    assert json.loads((tmp_path / "m" / "config.json").read_text())["train"]["encoder"] == "albert"


def test_a_model_dir_whose_parent_cannot_hold_it_is_one_error_naming_the_path_given(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    given = str(tmp_path / "file" / "m")
    job = job_for(tmp_path / "prep", given)
    with pytest.raises(UserError) as failure:
        prepare_model_dir(job, check_model_dir(job))
    assert str(failure.value).startswith(f"Cannot write the model directory {given}: ")
    assert "\n" not in str(failure.value)


def test_a_model_dir_on_another_filesystem_is_marked_there():
    job = job_for("ram://guard/prep", "ram://guard/m")
    prepare_model_dir(job, check_model_dir(job))
    assert sorted(tf.io.gfile.listdir("ram://guard/m")) == ["_STAGE.json", "config.json"]
    assert check_model_dir(job) == RESUME


def test_a_model_dir_that_is_a_file_is_refused_and_kept(tmp_path):
    (tmp_path / "m").write_text("notes")
    with pytest.raises(UserError, match="is a file"):
        check_model_dir(job_for(tmp_path / "prep", tmp_path / "m", **{"train.overwrite": True}))
    assert (tmp_path / "m").read_text() == "notes"
