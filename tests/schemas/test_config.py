"""Job configuration: YAML file, flag overrides, type checks, and the command-line plumbing."""

import dataclasses
import json

import pytest
import yaml

from pipelines import cli
from schemas import config as config_lib
from schemas.config import ConfigError, CorpusConfig, JobConfig, PreprocessConfig
from schemas.config_loader import load_job_config
from schemas.errors import UserError
from tests.conftest import REPO_ROOT


def write_yaml(tmp_path, document, name="job.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return str(path)


def write_text(tmp_path, text, name="job.yaml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def tuples_as_lists(value):
    """What JSON makes of a to_dict() value: tuples become lists."""
    if isinstance(value, dict):
        return {k: tuples_as_lists(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [tuples_as_lists(v) for v in value]
    return value


# --- load_job_config: defaults, file, overrides ------------------------------------------------


def test_without_file_or_overrides_every_setting_has_its_default():
    job = load_job_config()

    assert job == JobConfig()
    assert job.corpus.inputs == ()
    assert job.corpus.format == "auto"
    assert job.corpus.text_field == "text"
    assert job.corpus.label_field == "label"
    assert job.corpus.id_field is None
    assert job.corpus.multi_label is False
    assert job.preprocess.tokenizer == "word"
    assert job.preprocess.vocab_size == 50000
    assert job.preprocess.max_seq_length == 1024
    # Left to the data (model/automatic.py):
    assert job.train.encoder == "auto" and job.train.epochs is None and job.train.batch_size is None
    assert job.ngrams.max_ngram is None and job.ngrams.weighting == "auto"
    assert job.preprocess.eval_fraction == 0.1
    assert job.preprocess.lowercase is True
    assert job.preprocess.overwrite is False


def test_values_in_the_yaml_file_are_used(tmp_path):
    path = write_yaml(tmp_path, {
        "corpus": {"inputs": ["a/*.jsonl", "b.csv"], "text_field": "body", "id_field": "doc_id",
                   "multi_label": True, "label_separator": "|"},
        "preprocess": {"tokenizer": "wordpiece", "vocab_size": 8000, "eval_fraction": 0.25,
                       "lowercase": False, "output_dir": "out"},
    })

    job = load_job_config(path)

    assert job.corpus.inputs == ("a/*.jsonl", "b.csv")
    assert job.corpus.text_field == "body"
    assert job.corpus.id_field == "doc_id"
    assert job.corpus.multi_label is True
    assert job.corpus.label_separator == "|"
    assert job.preprocess.tokenizer == "wordpiece"
    assert job.preprocess.vocab_size == 8000
    assert job.preprocess.eval_fraction == 0.25
    assert job.preprocess.lowercase is False
    assert job.preprocess.output_dir == "out"
    # Keys the file does not name keep their defaults.
    assert job.corpus.label_field == "label"
    assert job.preprocess.max_seq_length == 1024


def test_overrides_beat_the_values_in_the_file(tmp_path):
    path = write_yaml(tmp_path, {"corpus": {"text_field": "body"}, "preprocess": {"vocab_size": 8000}})

    job = load_job_config(path, {"preprocess.vocab_size": 500, "corpus.label_field": "topic"})

    assert job.preprocess.vocab_size == 500
    assert job.corpus.label_field == "topic"
    assert job.corpus.text_field == "body"  # not overridden: the file's value stays


def test_overrides_apply_without_a_file():
    job = load_job_config(None, {"preprocess.max_seq_length": 64})

    assert job.preprocess.max_seq_length == 64


def test_an_empty_yaml_file_gives_the_defaults(tmp_path):
    assert load_job_config(write_text(tmp_path, "")) == JobConfig()


def test_an_empty_section_gives_that_sections_defaults(tmp_path):
    path = write_text(tmp_path, "corpus:\npreprocess:\n  vocab_size: 300\n")

    job = load_job_config(path)

    assert job.corpus == CorpusConfig()
    assert job.preprocess.vocab_size == 300


def test_a_single_string_for_inputs_becomes_a_one_element_tuple(tmp_path):
    path = write_yaml(tmp_path, {"corpus": {"inputs": "data/*.jsonl"}})

    assert load_job_config(path).corpus.inputs == ("data/*.jsonl",)


def test_a_single_string_override_for_inputs_becomes_a_one_element_tuple():
    assert load_job_config(None, {"corpus.inputs": "x.csv"}).corpus.inputs == ("x.csv",)


def test_an_integer_is_accepted_for_a_float_setting(tmp_path):
    path = write_yaml(tmp_path, {"preprocess": {"eval_fraction": 0}})

    value = load_job_config(path).preprocess.eval_fraction

    assert value == 0.0 and isinstance(value, float)


def test_id_field_may_be_null(tmp_path):
    path = write_text(tmp_path, "corpus:\n  id_field: null\n")

    assert load_job_config(path).corpus.id_field is None


# --- unknown names ---------------------------------------------------------------------------


def test_unknown_key_raises_config_error_naming_the_key(tmp_path):
    path = write_yaml(tmp_path, {"corpus": {"txt_field": "body"}})

    with pytest.raises(ConfigError, match=r"'corpus\.txt_field'"):
        load_job_config(path)


def test_unknown_key_in_overrides_raises_config_error_naming_the_key():
    with pytest.raises(ConfigError, match=r"'preprocess\.vocab'"):
        load_job_config(None, {"preprocess.vocab": 10})


def test_unknown_section_raises_config_error_naming_the_section(tmp_path):
    path = write_yaml(tmp_path, {"training": {"epochs": 3}})

    with pytest.raises(ConfigError, match="'training'"):
        load_job_config(path)


def test_unknown_section_in_overrides_raises_config_error_naming_the_section():
    with pytest.raises(ConfigError, match="training"):
        load_job_config(None, {"training.epochs": 3})


def test_config_error_is_a_user_error():
    assert issubclass(ConfigError, UserError)


# --- wrong types -----------------------------------------------------------------------------


@pytest.mark.parametrize("section, key, value, shown", [
    ("preprocess", "vocab_size", "abc", "'abc'"),          # string for int
    ("preprocess", "vocab_size", 12.5, "12.5"),            # float for int
    ("preprocess", "vocab_size", True, "True"),            # bool is not an int here
    ("preprocess", "lowercase", 1, "1"),                   # int for bool
    ("preprocess", "overwrite", "yes please", "'yes please'"),  # string for bool
    ("preprocess", "eval_fraction", "0.2", "'0.2'"),       # string for float
    ("corpus", "text_field", ["a", "b"], "['a', 'b']"),    # list for str
    ("corpus", "label_field", 5, "5"),                     # int for str
    ("corpus", "inputs", {"a": 1}, "{'a': 1}"),            # mapping for list
    ("corpus", "inputs", [1, 2], "1"),                     # list items must be strings
])
def test_wrong_type_raises_config_error_naming_key_and_value(tmp_path, section, key, value, shown):
    path = write_yaml(tmp_path, {section: {key: value}})

    with pytest.raises(ConfigError) as raised:
        load_job_config(path)

    message = str(raised.value)
    assert f"{section}.{key}" in message
    assert shown in message


def test_wrong_type_in_an_override_raises_config_error():
    with pytest.raises(ConfigError, match=r"preprocess\.max_seq_length.*'long'"):
        load_job_config(None, {"preprocess.max_seq_length": "long"})


def aliased_yaml(levels: int) -> str:
    """A few hundred bytes of YAML whose `corpus.text_field` is a list of 10**levels strings, by aliases."""
    lines = ["    - &a [" + ", ".join(["'xxxxxxxxxxxxxxxxxxxx'"] * 10) + "]"]
    for level in range(1, levels):
        previous, current = chr(ord("a") + level - 1), chr(ord("a") + level)
        lines.append(f"    - &{current} [" + ", ".join([f"*{previous}"] * 10) + "]")
    return "corpus:\n  text_field:\n" + "\n".join(lines) + "\n"


@pytest.mark.parametrize("key", ["text_field", "inputs"])
def test_a_huge_value_built_from_yaml_aliases_is_quoted_in_at_most_200_characters(tmp_path, key):
    path = write_text(tmp_path, aliased_yaml(levels=6).replace("text_field", key))
    assert len(open(path).read()) < 1000

    with pytest.raises(ConfigError, match=f"corpus.{key}") as raised:
        load_job_config(path)

    assert len(str(raised.value)) < config_lib.MAX_SHOWN_CHARS + 100


@pytest.mark.parametrize("value, shown", [
    pytest.param("abc", "'abc'", id="string"),
    pytest.param(["a", "b"], "['a', 'b']", id="list"),
    pytest.param({"a": 1}, "{'a': 1}", id="mapping"),
    pytest.param("x" * 10_000, None, id="long_string"),
    pytest.param(10 ** 5000, None, id="huge_integer"),  # str() of it raises in Python >= 3.11
    pytest.param([[[["deep"]]]] * 1000, None, id="long_nested_list"),
])
def test_shown_quotes_any_value_in_at_most_the_limit(value, shown):
    text = config_lib.shown(value)

    assert len(text) <= config_lib.MAX_SHOWN_CHARS
    if shown is not None:
        assert text == shown


def test_unknown_keys_that_are_not_strings_raise_config_error(tmp_path):
    path = write_text(tmp_path, "corpus:\n  1: a\n  text_fields: b\n  true: c\n")

    with pytest.raises(ConfigError, match="Unknown config key"):
        load_job_config(path)


def test_a_section_that_is_not_a_mapping_raises_config_error(tmp_path):
    path = write_yaml(tmp_path, {"corpus": ["a.csv"]})

    with pytest.raises(ConfigError, match="'corpus'"):
        load_job_config(path)


def test_a_file_that_is_not_a_mapping_of_sections_raises_config_error(tmp_path):
    path = write_text(tmp_path, "- corpus\n- preprocess\n")

    with pytest.raises(ConfigError, match="mapping of sections"):
        load_job_config(path)


# --- invalid values --------------------------------------------------------------------------


@pytest.mark.parametrize("dotted, value, named", [
    ("preprocess.tokenizer", "bpe", "tokenizer"),
    ("preprocess.eval_fraction", 1.5, "eval_fraction"),
    ("preprocess.eval_fraction", 1.0, "eval_fraction"),
    ("preprocess.eval_fraction", -0.1, "eval_fraction"),
    ("preprocess.max_seq_length", 0, "max_seq_length"),
    ("preprocess.vocab_size", 9, "vocab_size"),
    ("preprocess.min_frequency", 0, "min_frequency"),
    ("preprocess.num_oov_buckets", 0, "num_oov_buckets"),
    ("corpus.format", "xml", "format"),
    ("corpus.text_field", "", "text_field"),
    ("corpus.label_field", "", "label_field"),
    ("corpus.label_separator", "", "label_separator"),
    ("bilstm.num_lstm_layers", -1, "num_lstm_layers"),
    ("bilstm.lstm_units", 0, "lstm_units"),
    ("train.keep_checkpoints", -1, "keep_checkpoints"),
])
def test_invalid_value_raises_config_error_naming_the_setting(tmp_path, dotted, value, named):
    section, key = dotted.split(".")
    path = write_yaml(tmp_path, {section: {key: value}})

    with pytest.raises(ConfigError, match=named):
        load_job_config(path)


def test_a_bilstm_without_lstm_layers_is_a_valid_configuration():
    assert load_job_config(None, {"bilstm.num_lstm_layers": 0}).bilstm.num_lstm_layers == 0


@pytest.mark.parametrize("input_format", config_lib.INPUT_FORMATS)
def test_every_listed_input_format_is_accepted(input_format):
    assert load_job_config(None, {"corpus.format": input_format}).corpus.format == input_format


# --- unreadable files ------------------------------------------------------------------------


def test_missing_config_file_raises_config_error_naming_the_path(tmp_path):
    missing = str(tmp_path / "nope.yaml")

    with pytest.raises(ConfigError, match="not found") as raised:
        load_job_config(missing)

    assert missing in str(raised.value)


def test_invalid_yaml_raises_config_error_with_a_one_line_message(tmp_path):
    path = write_text(tmp_path, "corpus: [unclosed\n  text_field: body\n")

    with pytest.raises(ConfigError, match="not valid YAML") as raised:
        load_job_config(path)

    assert "\n" not in str(raised.value)


# --- the JobConfig object --------------------------------------------------------------------


def test_job_config_is_frozen():
    job = load_job_config()

    with pytest.raises(dataclasses.FrozenInstanceError):
        job.preprocess = PreprocessConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        job.preprocess.vocab_size = 5
    with pytest.raises(dataclasses.FrozenInstanceError):
        job.corpus.text_field = "body"


def _a_non_default_job(tmp_path):
    path = write_yaml(tmp_path, {
        "corpus": {"inputs": ["a.jsonl", "dir/"], "format": "jsonl", "id_field": "key", "multi_label": True},
        "preprocess": {"tokenizer": "wordpiece", "vocab_size": 1234, "eval_fraction": 0.2,
                       "lowercase": False, "output_dir": "out/prep"},
    }, name="source.yaml")
    return load_job_config(path)


def test_to_json_holds_every_setting_of_to_dict(tmp_path):
    job = _a_non_default_job(tmp_path)

    loaded = json.loads(job.to_json())

    # JSON has no tuples, so to_dict()'s tuples come back as lists; everything else is equal.
    assert loaded == tuples_as_lists(job.to_dict())
    assert loaded["corpus"]["inputs"] == ["a.jsonl", "dir/"]
    assert loaded["preprocess"]["vocab_size"] == 1234


def test_a_job_file_written_from_to_json_loads_back_to_an_equal_config(tmp_path):
    job = _a_non_default_job(tmp_path)

    path = write_yaml(tmp_path, json.loads(job.to_json()), name="roundtrip.yaml")

    assert load_job_config(path) == job


def test_the_default_config_round_trips_through_to_json(tmp_path):
    path = write_yaml(tmp_path, json.loads(JobConfig().to_json()), name="roundtrip.yaml")

    assert load_job_config(path) == JobConfig()


# --- pipelines/cli.py: parse_job_args and run_main -------------------------------------------


@pytest.fixture(scope="module")
def preprocess_module():
    from pipelines import preprocess

    return preprocess


@pytest.fixture
def parser(preprocess_module):
    return preprocess_module.build_parser()


def test_flags_override_the_config_file(tmp_path, parser):
    path = write_yaml(tmp_path, {"corpus": {"inputs": ["from_file.csv"], "text_field": "body"},
                                 "preprocess": {"vocab_size": 300, "max_seq_length": 32}})

    job, _ = cli.parse_job_args(parser, ["--config", path, "--vocab-size", "500", "--input", "a.jsonl",
                                         "--input", "b.jsonl", "--multi-label", "--no-lowercase"])

    assert job.preprocess.vocab_size == 500
    assert job.corpus.inputs == ("a.jsonl", "b.jsonl")
    assert job.corpus.multi_label is True
    assert job.preprocess.lowercase is False
    # Not given as flags: the file's values stand.
    assert job.corpus.text_field == "body"
    assert job.preprocess.max_seq_length == 32


def test_flags_not_given_leave_the_defaults(parser):
    job, _ = cli.parse_job_args(parser, ["--output-dir", "out"])

    assert job == JobConfig(preprocess=PreprocessConfig(output_dir="out"))


def test_beam_flags_land_in_the_pipeline_options(parser):
    from apache_beam.options.pipeline_options import DirectOptions, SetupOptions

    _, options = cli.parse_job_args(parser, ["--output-dir", "out", "--direct_num_workers=2",
                                             "--direct_running_mode=multi_threading"])

    assert options.view_as(DirectOptions).direct_num_workers == 2
    assert options.view_as(DirectOptions).direct_running_mode == "multi_threading"
    assert options.view_as(SetupOptions).save_main_session is False


def test_beam_flag_with_its_value_as_a_separate_argument_lands_in_the_pipeline_options(parser):
    from apache_beam.options.pipeline_options import DirectOptions

    _, options = cli.parse_job_args(parser, ["--output-dir", "out", "--direct_num_workers", "2"])

    assert options.view_as(DirectOptions).direct_num_workers == 2


@pytest.mark.parametrize("argv", [
    ["--frobnicate", "1"],
    ["--frobnicate=1"],
    ["stray_positional"],
])
def test_unknown_flag_or_argument_raises_user_error(parser, argv):
    with pytest.raises(UserError):
        cli.parse_job_args(parser, ["--output-dir", "out", *argv])


def test_unknown_flag_with_inline_value_is_named_in_the_error(parser):
    with pytest.raises(UserError, match="frobnicate"):
        cli.parse_job_args(parser, ["--frobnicate=1"])


def test_flag_prefixes_are_not_taken_as_abbreviations(parser):
    # '--vocab' must not silently mean '--vocab-size'.
    with pytest.raises(UserError):
        cli.parse_job_args(parser, ["--vocab", "500"])


@pytest.mark.parametrize("argv, named", [
    (["--vocab-size", "abc"], "abc"),
    (["--eval-fraction", "lots"], "lots"),
    (["--format", "xml"], "xml"),
    (["--tokenizer", "bpe"], "bpe"),
])
def test_bad_flag_value_raises_user_error_naming_it(parser, argv, named):
    with pytest.raises(UserError, match=named):
        cli.parse_job_args(parser, argv)


def test_flag_value_that_fails_config_validation_raises_config_error(parser):
    with pytest.raises(ConfigError, match="max_seq_length"):
        cli.parse_job_args(parser, ["--max-seq-length", "0"])


def test_missing_config_file_given_by_flag_raises_user_error(tmp_path, parser):
    with pytest.raises(UserError, match="not found"):
        cli.parse_job_args(parser, ["--config", str(tmp_path / "missing.yaml")])


def _raise_user_error(argv):
    raise UserError("Output directory out exists and is not a finished run of this stage.")


def test_run_main_turns_a_user_error_into_exit_status_2_and_one_error_line(capsys):
    with pytest.raises(SystemExit) as raised:
        cli.run_main(_raise_user_error, [])

    assert raised.value.code == 2
    err_lines = capsys.readouterr().err.splitlines()
    assert err_lines == ["error: Output directory out exists and is not a finished run of this stage."]


def test_run_main_reports_a_bad_flag_of_the_preprocess_stage_in_one_line(capsys, preprocess_module):
    with pytest.raises(SystemExit) as raised:
        cli.run_main(preprocess_module.run, ["--format", "xml"])

    assert raised.value.code == 2
    err_lines = capsys.readouterr().err.splitlines()
    assert len(err_lines) == 1
    assert err_lines[0].startswith("error:")
    assert "xml" in err_lines[0]


def test_run_main_passes_argv_to_the_entry_point_and_returns_normally(capsys):
    seen = []

    cli.run_main(seen.append, ["--input", "a.csv"])

    assert seen == [["--input", "a.csv"]]
    assert "error:" not in capsys.readouterr().err


def test_run_main_lets_other_exceptions_through():
    def crash(argv):
        raise RuntimeError("a bug, not a user mistake")

    with pytest.raises(RuntimeError):
        cli.run_main(crash, [])


BENCHMARK_JOB_FILES = sorted((REPO_ROOT / "benchmarks" / "configs").glob("*.yaml"))


@pytest.mark.parametrize("job_file", BENCHMARK_JOB_FILES, ids=lambda p: p.name)
def test_every_benchmark_job_file_is_a_valid_configuration(job_file):
    # A typo in a job file would otherwise surface only minutes into a benchmark run.
    job = load_job_config(str(job_file))
    assert job != JobConfig()  # each file changes something


def test_multi_worker_is_a_training_strategy_but_not_a_pretraining_one():
    assert config_lib.TrainConfig(strategy="multi_worker").strategy == "multi_worker"
    with pytest.raises(ConfigError, match="pretrain.strategy multi_worker is not supported"):
        config_lib.PretrainConfig(strategy="multi_worker")
