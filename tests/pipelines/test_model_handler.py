"""Reading an export the way the scorer does: its directory, its export.json, its signatures."""

from __future__ import annotations

import json
import os

import pytest

from pipelines.model_handler import read_export_metadata, resolve_export, signature_for
from schemas import export_contract
from schemas.errors import UserError


def test_the_model_version_comes_from_export_json_not_from_the_directory_name(fake_export, tmp_path):
    export_dir = fake_export(version=42)
    renamed = str(tmp_path / "copied-elsewhere")
    os.rename(export_dir, renamed)
    assert read_export_metadata(renamed).version == "42"


def test_export_metadata_carries_the_task_labels_and_threshold(fake_export):
    metadata = read_export_metadata(fake_export(multi_label=True, threshold=0.3, label_names=["x", "y, z"]))
    assert (metadata.multi_label, metadata.threshold, metadata.label_names) == (True, 0.3, ("x", "y, z"))


def test_a_model_dir_resolves_to_its_numerically_newest_export(fake_export, tmp_path):
    for version in (9, 10):
        fake_export(version=version)
    os.makedirs(tmp_path / "model" / export_contract.EXPORT_DIR / ".staging-11")  # a trainer's unfinished export
    newest = os.path.join(str(tmp_path / "model"), export_contract.EXPORT_DIR, "10")
    assert resolve_export(str(tmp_path / "model")) == newest
    assert resolve_export(newest + "/") == newest


def test_a_directory_without_an_export_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="No exported model in"):
        resolve_export(str(tmp_path))
    with pytest.raises(UserError, match="is not an export of this project"):
        read_export_metadata(str(tmp_path))


def test_export_json_without_a_version_is_a_user_error_naming_the_file(fake_export):
    export_dir = fake_export()
    path = os.path.join(export_dir, export_contract.EXPORT_METADATA)
    values = json.load(open(path))
    del values[export_contract.METADATA_VERSION]
    json.dump(values, open(path, "w"))
    with pytest.raises(UserError, match=f"export.json has no '{export_contract.METADATA_VERSION}'"):
        read_export_metadata(export_dir)


def test_an_export_without_recorded_signatures_scores_only_with_its_default_signature(fake_export):
    export_dir = fake_export()
    path = os.path.join(export_dir, export_contract.EXPORT_METADATA)
    values = json.load(open(path))
    del values[export_contract.METADATA_SIGNATURES]
    json.dump(values, open(path, "w"))
    metadata = read_export_metadata(export_dir)
    assert signature_for(metadata, "longest") == export_contract.DYNAMIC_SIGNATURE
    with pytest.raises(UserError, match="no signature for padding 'max_length'.*--padding longest"):
        signature_for(metadata, "max_length")
