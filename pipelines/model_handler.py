"""A Beam RunInference ModelHandler for this project's raw-text SavedModel exports.

Beam's TFModelHandlerTensor loads models with Keras; these exports are plain SavedModels whose
signatures take raw strings, so the handler loads them with `tf.saved_model.load` (after
`import tensorflow_text`, which registers the tokenizer ops) and calls one signature per batch:
the one the export's `export.json` names for the `score.padding` mode.
RunInference loads the model once per worker process and shares it across threads.

Every name the export and the scorer share (files, export.json keys, signature inputs and
outputs) comes from `schemas/export_contract.py`.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
from apache_beam.io.filesystems import FileSystems
from apache_beam.ml.inference.base import ModelHandler, PredictionResult

from schemas import config as config_lib
from schemas import export_contract
from schemas.errors import UserError

# Exports that record no signatures have only `serving_default`, padded to max_seq_length.
_SIGNATURES_OF_OLD_EXPORTS = {config_lib.PADDING_LONGEST: export_contract.DYNAMIC_SIGNATURE}


@dataclasses.dataclass(frozen=True)
class ExportMetadata:
    """What the trainer recorded in export.json: all the scorer needs besides the SavedModel."""

    version: str  # carried by every prediction as `model_version`
    label_names: tuple[str, ...]  # in the order of the probabilities
    multi_label: bool
    threshold: float  # multi-label: a label is predicted when its probability reaches it
    signatures: Mapping[str, str]  # score.padding mode → signature name


def resolve_export(model_path: str) -> str:
    """An export directory: `model_path` itself, or the newest numbered export under MODEL_DIR/export/."""
    model_path = model_path.rstrip("/")
    if "://" not in model_path:  # absolute: workers in other processes have their own working directory
        model_path = os.path.abspath(model_path)
    if FileSystems.exists(FileSystems.join(model_path, "saved_model.pb")):
        return model_path
    pattern = FileSystems.join(model_path, export_contract.EXPORT_DIR, "*", "saved_model.pb")
    matches = FileSystems.match([pattern])[0].metadata_list
    versions = [m.path[:-len("/saved_model.pb")].rsplit("/", 1)[-1] for m in matches]
    versions = sorted((v for v in versions if v.isdigit()), key=int)
    if not versions:
        raise UserError(f"No exported model in {model_path}: expected a SavedModel or "
                        f"MODEL_DIR/{export_contract.EXPORT_DIR}/<version>/.")
    return FileSystems.join(model_path, export_contract.EXPORT_DIR, versions[-1])


def parse_export_metadata(text: str, export_dir: str) -> ExportMetadata:
    """export.json's content as ExportMetadata; a UserError naming the file when it lacks a key."""
    path = FileSystems.join(export_dir, export_contract.EXPORT_METADATA)
    try:
        values = json.loads(text)
        return ExportMetadata(
            version=str(values[export_contract.METADATA_VERSION]),
            label_names=tuple(values[export_contract.METADATA_LABEL_NAMES]),
            multi_label=bool(values[export_contract.METADATA_MULTI_LABEL]),
            threshold=float(values[export_contract.METADATA_THRESHOLD]),
            signatures=dict(values.get(export_contract.METADATA_SIGNATURES, _SIGNATURES_OF_OLD_EXPORTS)),
        )
    except KeyError as e:
        raise UserError(f"{path} has no {e.args[0]!r}: export the model again with this version.") from None
    except (ValueError, TypeError, AttributeError) as e:
        raise UserError(f"{path} is not valid export metadata: {str(e).splitlines()[0]}") from None


def read_export_metadata(export_dir: str) -> ExportMetadata:
    """Version, label names, task and threshold the trainer recorded beside the SavedModel."""
    path = FileSystems.join(export_dir, export_contract.EXPORT_METADATA)
    try:
        with FileSystems.open(path) as f:
            text = f.read().decode("utf-8")
    except Exception as e:  # noqa: BLE001  any filesystem error means the same thing here
        raise UserError(f"{export_dir} is not an export of this project (cannot read "
                        f"{export_contract.EXPORT_METADATA}): {str(e).splitlines()[0]}") from None
    return parse_export_metadata(text, export_dir)


def signature_for(export_metadata: ExportMetadata, padding: str) -> str:
    """The export's signature for the `score.padding` mode, or a UserError when it has none."""
    signatures = export_metadata.signatures
    if padding not in signatures:
        raise UserError(f"This export has no signature for padding {padding!r} (it has: {', '.join(signatures)}). "
                        f"Export the model again, or score with --padding {next(iter(signatures))}.")
    return signatures[padding]


class SavedModelTextHandler(ModelHandler[str, PredictionResult, Any]):
    """Raw texts in, one PredictionResult per text with the signature's outputs for that row."""

    METRICS_NAMESPACE = "score"  # RunInference's metrics (model load and call latencies) land here

    def __init__(self, export_dir: str, batch_size: int = 64,
                 signature: str = export_contract.DYNAMIC_SIGNATURE):
        super().__init__()
        self._export_dir = export_dir
        self._batch_size = batch_size
        self._signature = signature

    def load_model(self):
        from schemas.runtime_defaults import apply_tensorflow_defaults

        apply_tensorflow_defaults()  # a worker that has not loaded TensorFlow yet gets the stages' settings
        import tensorflow as tf
        import tensorflow_text  # noqa: F401  registers the ops the transform graph uses

        model = tf.saved_model.load(self._export_dir)
        # The first call of a signature builds and optimizes its graph (a fraction of a second):
        # done here, it counts as loading, and the model-call latencies are those of scoring.
        model.signatures[self._signature](**{export_contract.TEXT_INPUT: tf.constant(["warm up"])})
        return model

    def run_inference(self, batch: Sequence[str], model, inference_args=None) -> Iterable[PredictionResult]:
        import tensorflow as tf

        texts = tf.constant(list(batch), dtype=tf.string)
        outputs = model.signatures[self._signature](**{export_contract.TEXT_INPUT: texts})
        columns = {name: tensor.numpy() for name, tensor in outputs.items()}
        for row, text in enumerate(batch):
            yield PredictionResult(text, {name: values[row] for name, values in columns.items()})

    def batch_elements_kwargs(self):
        return {"min_batch_size": self._batch_size, "max_batch_size": self._batch_size}

    def get_num_bytes(self, batch: Sequence[str]) -> int:
        return sum(len(text) for text in batch)

    def get_metrics_namespace(self) -> str:
        return self.METRICS_NAMESPACE


def prediction_values(inference: dict[str, np.ndarray]) -> dict[str, Any]:
    """Plain Python values of one row of the signature's outputs."""
    def plain(value):
        if isinstance(value, bytes):
            return value.decode("utf-8")
        if isinstance(value, np.ndarray):
            return value.tolist()
        return value.item() if hasattr(value, "item") else value

    return {name: plain(value) for name, value in inference.items()}
