"""The pretrained-encoder directory: one format for imported checkpoints and for pretraining.

`python -m model.import_checkpoint` (a published Hugging Face or TF1 ALBERT checkpoint) and
`python -m model.pretrain` (the user's own corpus) write it; `pipelines.preprocess --pretrained
DIR` reads its tokenizer, text normalization and longest sequence, and `model.trainer
--init-from DIR` its architecture and weights.

    DIR/
      encoder.json            ENCODER_FILE: format version, architecture, tokenizer, provenance
      encoder.weights.h5      WEIGHTS_FILE: the keras-hub AlbertBackbone's weights (Keras format)
      spiece.model            TOKENIZER_MODEL_FILE: the SentencePiece model (serialized proto)
      _STAGE.json, _SUCCESS   which stage wrote it; written whole or not at all

encoder.json:

    {"format_version": 1,
     "architecture": "albert",
     "backbone": {vocabulary_size, num_layers, num_heads, embedding_dim, hidden_dim,
                  intermediate_dim, num_groups, num_inner_repetitions, max_sequence_length,
                  num_segments, dropout},                    # keras-hub AlbertBackbone arguments
     "tokenizer": {"type": "sentencepiece", "model_file": "spiece.model", "lowercase": true,
                   "vocabulary_size": 30000, "sha256": "<of spiece.model>",
                   "special_tokens": {"pad": 0, "unk": 1, "cls": 2, "sep": 3, "mask": 4}},
     "provenance": {"source": "<path given>", "source_format": "huggingface" | "tf1" | "pretrain",
                    "tensors": <count read>, "sha256": "<of the source weights file(s)>",
                    "created": "<UTC ISO time>", "pooler": "imported" | "initialized" | "trained",
                    "project_version": "0.2.0"}}

Readers refuse a `format_version` newer than FORMAT_VERSION (written by a newer release).
"""

from __future__ import annotations

FORMAT_VERSION = 1
ENCODER_FILE = "encoder.json"
WEIGHTS_FILE = "encoder.weights.h5"
TOKENIZER_MODEL_FILE = "spiece.model"

ARCHITECTURE_ALBERT = "albert"
TOKENIZER_SENTENCEPIECE = "sentencepiece"

SOURCE_HUGGINGFACE = "huggingface"
SOURCE_TF1 = "tf1"
SOURCE_PRETRAIN = "pretrain"
SOURCE_FORMATS = (SOURCE_HUGGINGFACE, SOURCE_TF1, SOURCE_PRETRAIN)

POOLER_IMPORTED = "imported"
POOLER_INITIALIZED = "initialized"  # the checkpoint had none (e.g. a masked-LM-only save)
POOLER_TRAINED = "trained"  # model.pretrain: the sentence-order objective trained it

# ALBERT's special pieces, as in the published SentencePiece models (albert-base-v2: <pad> 0,
# <unk> 1, [CLS] 2, [SEP] 3, [MASK] 4). Padding must be id 0: the encoders mask features.PAD_ID.
PAD_PIECE = "<pad>"
UNK_PIECE = "<unk>"
CLS_PIECE = "[CLS]"
SEP_PIECE = "[SEP]"
MASK_PIECE = "[MASK]"
SPECIAL_PIECES = {"pad": PAD_PIECE, "unk": UNK_PIECE, "cls": CLS_PIECE, "sep": SEP_PIECE, "mask": MASK_PIECE}
