"""Importing published ALBERT checkpoints: parity with the reference implementation, refusals.

The reference outputs (tests/fixtures/albert/expected.json) were computed by Hugging Face
`transformers` on PyTorch (see make_albert_reference.py there); these tests need neither.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import safetensors.numpy
import sentencepiece
import tensorflow as tf

from model import import_checkpoint
from model.checkpoint_mapping import backbone_slots
from model.pretrained_encoder import load_backbone, load_encoder, read_encoder_config
from schemas import output_dirs
from schemas import pretrained as spec
from schemas.errors import UserError
from tests.conftest import REPO_ROOT

FIXTURES = REPO_ROOT / "tests" / "fixtures" / "albert"
EXPECTED = json.loads((FIXTURES / "expected.json").read_text())
TOLERANCE = 1e-5  # max abs difference to the reference
FFN_WEIGHT = "albert.encoder.albert_layer_groups.0.albert_layers.0.ffn.weight"


def reference_inputs() -> dict:
    return {"token_ids": np.array(EXPECTED["input_ids"], "int32"),
            "segment_ids": np.array(EXPECTED["token_type_ids"], "int32"),
            "padding_mask": np.array(EXPECTED["attention_mask"], "int32")}


def max_abs_diff(actual, expected) -> float:
    return float(np.max(np.abs(np.asarray(actual) - np.asarray(expected, dtype="float32"))))


def import_fixture(name: str, output_dir, *extra: str) -> str:
    return import_checkpoint.run(["--checkpoint", str(FIXTURES / name), "--output-dir", str(output_dir), *extra])


@pytest.fixture(scope="module")
def imported(tmp_path_factory) -> dict[str, str]:
    """{fixture name: its pretrained-encoder directory}, each imported once."""
    root = tmp_path_factory.mktemp("imported")
    return {name: import_fixture(name, root / name) for name in ("hf", "hf_no_prefix", "hf_masked_lm", "tf1")}


def hf_copy(tmp_path, name: str = "hf"):
    """A writable copy of a Hugging Face fixture directory."""
    return shutil.copytree(FIXTURES / name, tmp_path / f"src_{name}")


def edit_tensors(directory, edit) -> None:
    path = directory / "model.safetensors"
    tensors = safetensors.numpy.load_file(str(path))
    edit(tensors)
    safetensors.numpy.save_file(tensors, str(path))


def edit_config(directory, **changes) -> None:
    path = directory / "config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def assert_refused_leaving_nothing(tmp_path, argv, *fragments: str) -> str:
    """Runs the importer on `argv` (its --output-dir is tmp_path/out), expects a one-line UserError
    holding every fragment, and that nothing was written next to or at the output directory."""
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(UserError) as refusal:
        import_checkpoint.run([*argv, "--output-dir", str(tmp_path / "out")])
    message = str(refusal.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no out/, no out.staging-*
    return message


@pytest.mark.parametrize("name", ["hf", "hf_no_prefix", "tf1"])
def test_imported_backbone_reproduces_the_reference_hidden_states_and_pooled_output(imported, name):
    outputs = load_backbone(imported[name])(reference_inputs())
    assert max_abs_diff(outputs["sequence_output"], EXPECTED["last_hidden_state"]) <= TOLERANCE
    assert max_abs_diff(outputs["pooled_output"], EXPECTED["pooler_output"]) <= TOLERANCE


def test_a_checkpoint_without_pooler_imports_its_sequence_output_with_a_fresh_pooler_and_says_so(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        directory = import_fixture("hf_masked_lm", tmp_path / "mlm")
    assert "pooler" in caplog.text and "freshly initialized" in caplog.text
    assert read_encoder_config(directory)["provenance"]["pooler"] == spec.POOLER_INITIALIZED
    outputs = load_backbone(directory)(reference_inputs())
    assert max_abs_diff(outputs["sequence_output"], EXPECTED["last_hidden_state"]) <= TOLERANCE
    assert max_abs_diff(outputs["pooled_output"], EXPECTED["pooler_output"]) > 0.1  # not the reference's pooler


def test_the_projects_albert_encoder_built_from_an_import_pools_like_the_reference(imported):
    # Through the trainer's path (AlbertEncoder, cls pooling, segment ids and padding mask derived
    # from the ids): the tanh GELU and layer-norm epsilon 1e-12 are what a project-built backbone
    # computes. Rows 0-2 are single texts (segment 0), row 2 padded with <pad> = 0.
    encoder = load_encoder(imported["tf1"], pooling="cls", dropout=0.1)
    pooled = encoder(np.array(EXPECTED["input_ids"][:3], "int64"), training=False)
    assert max_abs_diff(pooled, EXPECTED["pooler_output"][:3]) <= TOLERANCE


def test_the_directory_records_architecture_tokenizer_and_provenance(imported):
    config = read_encoder_config(imported["hf"])
    reference = EXPECTED["config"]
    assert config["format_version"] == spec.FORMAT_VERSION and config["architecture"] == "albert"
    assert config["backbone"] == {
        "vocabulary_size": reference["vocab_size"], "num_layers": reference["num_hidden_layers"],
        "num_heads": reference["num_attention_heads"], "embedding_dim": reference["embedding_size"],
        "hidden_dim": reference["hidden_size"], "intermediate_dim": reference["intermediate_size"],
        "num_groups": reference["num_hidden_groups"], "num_inner_repetitions": reference["inner_group_num"],
        "max_sequence_length": reference["max_position_embeddings"], "num_segments": reference["type_vocab_size"],
        "dropout": 0.0}
    assert config["tokenizer"] == {
        "type": "sentencepiece", "model_file": "spiece.model", "lowercase": True, "vocabulary_size": 200,
        "sha256": EXPECTED["spiece_model"]["sha256"], "special_tokens": {"pad": 0, "unk": 1, "cls": 2, "sep": 3,
                                                                         "mask": 4}}
    provenance = config["provenance"]
    assert provenance["source_format"] == "huggingface" and provenance["pooler"] == spec.POOLER_IMPORTED
    assert provenance["tensors"] == 25  # 27 in the file, less the classifier's two
    assert provenance["sha256"] == hashlib.sha256((FIXTURES / "hf" / "model.safetensors").read_bytes()).hexdigest()
    assert read_encoder_config(imported["tf1"])["provenance"]["source_format"] == "tf1"
    assert (FIXTURES / "spiece.model").read_bytes() == Path(imported["hf"], "spiece.model").read_bytes()


def test_the_directory_is_marked_as_the_importers_and_finished(imported):
    directory = imported["hf_no_prefix"]
    with open(f"{directory}/{output_dirs.STAGE_MARKER}") as f:
        assert json.load(f)["stage"] == output_dirs.IMPORT
    assert sorted(tf.io.gfile.listdir(directory)) == sorted(
        [output_dirs.STAGE_MARKER, "_SUCCESS", spec.ENCODER_FILE, spec.WEIGHTS_FILE, spec.TOKENIZER_MODEL_FILE])


def test_cased_imports_record_no_lower_casing(tmp_path):
    directory = import_fixture("hf", tmp_path / "cased", "--cased")
    assert read_encoder_config(directory)["tokenizer"]["lowercase"] is False


def test_a_finished_import_is_replaced_only_with_overwrite(tmp_path, imported):
    target = tmp_path / "out"
    import_fixture("hf", target)
    with pytest.raises(UserError, match="already holds a finished import_checkpoint run; pass --overwrite"):
        import_fixture("tf1", target)
    assert read_encoder_config(str(target))["provenance"]["source_format"] == "huggingface"
    import_fixture("tf1", target, "--overwrite")
    assert read_encoder_config(str(target))["provenance"]["source_format"] == "tf1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no staging directory left


def test_a_folder_of_other_files_is_never_an_import_target(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="not written by this project"):
        import_fixture("hf", tmp_path / "out", "--overwrite")
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["notes.txt"]


def test_a_missing_tensor_is_refused_naming_it(tmp_path):
    source = hf_copy(tmp_path)
    edit_tensors(source, lambda tensors: tensors.pop(FFN_WEIGHT))
    assert_refused_leaving_nothing(tmp_path, ["--checkpoint", str(source)], f"has no tensor {FFN_WEIGHT}")


def test_a_missing_tf1_tensor_is_refused_naming_it(tmp_path):
    source = shutil.copytree(FIXTURES / "tf1", tmp_path / "src_tf1")
    reader = tf.train.load_checkpoint(str(FIXTURES / "tf1" / "model.ckpt"))
    dropped = "bert/encoder/transformer/group_0/inner_group_0/attention_1/self/key/kernel"
    names = sorted(name for name in reader.get_variable_to_shape_map() if name != dropped)
    for path in source.glob("model.ckpt.*"):
        path.unlink()
    tf.raw_ops.SaveV2(prefix=str(source / "model.ckpt"), tensor_names=names, shape_and_slices=[""] * len(names),
                      tensors=[reader.get_tensor(name) for name in names])
    assert_refused_leaving_nothing(tmp_path, ["--checkpoint", str(source / "model.ckpt")], f"has no tensor {dropped}")


def test_an_unknown_tensor_is_refused_naming_it(tmp_path):
    source = hf_copy(tmp_path)
    edit_tensors(source, lambda tensors: tensors.update({"albert.encoder.adapter.weight": np.zeros((2, 2), "float32")}))
    assert_refused_leaving_nothing(tmp_path, ["--checkpoint", str(source)], "albert.encoder.adapter.weight",
                                   "does not know")


def test_a_shape_other_than_the_config_implies_is_refused_naming_the_tensor_and_both_shapes(tmp_path):
    source = hf_copy(tmp_path)
    edit_config(source, intermediate_size=40)
    assert_refused_leaving_nothing(tmp_path, ["--checkpoint", str(source)],
                                   f"Tensor {FFN_WEIGHT}", "shape [37, 32]", "config.json implies [40, 32]")


def test_a_vocabulary_other_than_the_sentencepiece_models_is_refused_naming_both(tmp_path):
    source = hf_copy(tmp_path)
    other_model = tmp_path / "other.model"
    with open(other_model, "wb") as writer:
        sentencepiece.SentencePieceTrainer.train(
            sentence_iterator=iter(["the match was won by the home team", "profits grew at the bank"] * 50),
            model_writer=writer, vocab_size=25, pad_id=0, unk_id=1, bos_id=-1, eos_id=-1,
            control_symbols=["[CLS]", "[SEP]", "[MASK]"], minloglevel=2)
    assert_refused_leaving_nothing(tmp_path, ["--checkpoint", str(source), "--sentencepiece-model", str(other_model)],
                                   "vocab_size 200", "has 25 pieces", str(other_model))


def test_a_tokenizer_file_that_is_no_sentencepiece_model_is_refused(tmp_path):
    source = hf_copy(tmp_path)
    (source / "spiece.model").write_bytes(b"not a model")
    assert_refused_leaving_nothing(tmp_path, ["--checkpoint", str(source)], "is not a SentencePiece model")


def test_a_weights_file_that_is_no_safetensors_file_is_refused_naming_it(tmp_path):
    source = hf_copy(tmp_path)
    (source / "model.safetensors").write_bytes(b"\x00" * 64)
    assert_refused_leaving_nothing(tmp_path, ["--checkpoint", str(source)], f"Cannot read {source}/model.safetensors")


def test_an_unknown_format_is_refused(tmp_path):
    assert_refused_leaving_nothing(tmp_path, ["--checkpoint", str(FIXTURES / "hf"), "--format", "onnx"],
                                   "--format", "'onnx'")


@pytest.mark.parametrize("layout", ["empty_dir", "text_file", "missing"])
def test_an_unrecognizable_source_is_refused(tmp_path, layout):
    source = tmp_path / "src"
    if layout == "empty_dir":
        source.mkdir()
    elif layout == "text_file":
        source.write_text("hello")
    assert_refused_leaving_nothing(tmp_path, ["--checkpoint", str(source)], str(source))


def test_a_format_that_does_not_match_the_source_is_refused(tmp_path):
    assert_refused_leaving_nothing(tmp_path, ["--checkpoint", str(FIXTURES / "tf1"), "--format", "huggingface"],
                                   "has no config.json")


def test_an_activation_the_backbone_does_not_compute_is_refused_naming_the_setting(tmp_path):
    source = hf_copy(tmp_path)
    edit_config(source, hidden_act="relu")
    assert_refused_leaving_nothing(tmp_path, ["--checkpoint", str(source)], "hidden_act 'relu'")


def test_a_hugging_face_exact_gelu_config_imports_as_the_tanh_gelu_and_says_so(tmp_path, caplog):
    # Hugging Face's converted albert-*-v1 configs say "gelu" (exact); the original code, which
    # trained them, computed the tanh form, as the backbone does.
    source = hf_copy(tmp_path)
    edit_config(source, hidden_act="gelu")
    with caplog.at_level(logging.WARNING):
        directory = import_fixture(str(source), tmp_path / "out")
    assert "hidden_act 'gelu'" in caplog.text and "tanh approximation" in caplog.text
    outputs = load_backbone(directory)(reference_inputs())
    assert max_abs_diff(outputs["sequence_output"], EXPECTED["last_hidden_state"]) <= TOLERANCE


def test_every_backbone_variable_has_one_tensor_in_each_format_whatever_the_sharing():
    import keras_hub

    backbone = keras_hub.models.AlbertBackbone(vocabulary_size=10, num_layers=4, num_heads=2, embedding_dim=4,
                                               hidden_dim=8, intermediate_dim=6, num_groups=2, num_inner_repetitions=2,
                                               max_sequence_length=5)
    slots, pooler = backbone_slots(backbone)
    assert sorted(id(slot.variable) for slot in slots + pooler) == sorted(id(v) for v in backbone.weights)
    for source_format in ("huggingface", "tf1"):
        assert len({slot.source_name(source_format) for slot in slots + pooler}) == len(backbone.weights)
    last = backbone.get_layer("group_1_inner_layer_1")._feedforward_output_dense.kernel
    (slot,) = [slot for slot in slots if slot.variable is last]
    assert slot.huggingface == "encoder.albert_layer_groups.1.albert_layers.1.ffn_output.weight"
    assert slot.tf1 == "bert/encoder/transformer/group_1/inner_group_1/ffn_1/intermediate/output/dense/kernel"
    assert slot.source_shape("huggingface") == (8, 6) and slot.source_shape("tf1") == (6, 8)


def test_the_command_exits_2_with_one_error_line_and_leaves_no_directory(tmp_path):
    source = hf_copy(tmp_path)
    edit_tensors(source, lambda tensors: tensors.pop(FFN_WEIGHT))
    result = subprocess.run([sys.executable, "-m", "model.import_checkpoint", "--checkpoint", str(source),
                             "--output-dir", str(tmp_path / "out")], cwd=REPO_ROOT, capture_output=True, text=True)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and FFN_WEIGHT in errors[0] and "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src_hf"]
