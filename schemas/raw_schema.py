"""The raw document schema: what a validated document looks like when it enters tf.Transform.

Documents travel into tf.Transform as Arrow RecordBatches (TFXIO's fast path). Each column is a
list of bytes per row, as TFXIO expects: `text` holds exactly one value; `label` one value, or
several for multi-label corpora.
"""

import pyarrow as pa
from tensorflow_metadata.proto.v0 import schema_pb2

from schemas import features

BYTES_LIST = pa.large_list(pa.large_binary())

RAW_ARROW_SCHEMA = pa.schema([(features.TEXT, BYTES_LIST), (features.LABEL, BYTES_LIST)])


def _dense_scalar(column: str) -> schema_pb2.TensorRepresentation:
    return schema_pb2.TensorRepresentation(
        dense_tensor=schema_pb2.TensorRepresentation.DenseTensor(column_name=column, shape=schema_pb2.FixedShape()))


def _variable_length(column: str) -> schema_pb2.TensorRepresentation:
    return schema_pb2.TensorRepresentation(
        varlen_sparse_tensor=schema_pb2.TensorRepresentation.VarLenSparseTensor(column_name=column))


def raw_tensor_representations(multi_label: bool) -> dict[str, schema_pb2.TensorRepresentation]:
    """How each raw column becomes a tensor in `preprocessing_fn`: text [B]; label [B] or sparse [B, None]."""
    return {
        features.TEXT: _dense_scalar(features.TEXT),
        features.LABEL: _variable_length(features.LABEL) if multi_label else _dense_scalar(features.LABEL),
    }
