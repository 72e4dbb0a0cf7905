"""Initialising word embeddings from a GloVe / word2vec text file, aligned to the vocabulary."""

from __future__ import annotations

import logging

import keras
import numpy as np
import tensorflow as tf

from model.data import PreprocessedData
from schemas.errors import UserError


def embedding_matrix(path: str, vocabulary: list[str], id_offset: int, vocab_size: int, dim: int,
                     seed: int = 0) -> tuple[np.ndarray, float]:
    """(matrix [vocab_size, dim], coverage): rows of known words from the file, the rest random.

    `vocabulary[i]` has token id `i + id_offset` (the word tokenizer reserves id 0 for padding).
    The file has one word per line followed by its `dim` numbers; a word2vec header line
    ("count dim") is skipped. Coverage is the share of vocabulary words found in the file.
    """
    wanted = {word: i + id_offset for i, word in enumerate(vocabulary) if i + id_offset < vocab_size}
    rng = np.random.default_rng(seed)
    matrix = rng.normal(0.0, 0.05, size=(vocab_size, dim)).astype(np.float32)
    matrix[0] = 0.0  # padding
    found = 0
    try:
        with tf.io.gfile.GFile(path) as f:
            for line_number, line in enumerate(f, start=1):
                parts = line.rstrip().split(" ")
                if line_number == 1 and len(parts) == 2:
                    continue  # word2vec header
                if parts[0] not in wanted:
                    continue
                if len(parts) - 1 != dim:
                    raise UserError(f"{path}:{line_number} has {len(parts) - 1} numbers per word; the model's "
                                    f"embedding_dim is {dim}. Set bilstm.embedding_dim/albert.embedding_dim to match.")
                matrix[wanted.pop(parts[0])] = np.asarray(parts[1:], dtype=np.float32)
                found += 1
    except (tf.errors.NotFoundError, FileNotFoundError):
        raise UserError(f"Word vector file not found: {path}") from None
    coverage = found / max(len(wanted) + found, 1)
    logging.info("Word vectors: %d of %d vocabulary words found in %s (coverage %.1f%%).",
                 found, found + len(wanted), path, 100 * coverage)
    return matrix, coverage


def load_word_vectors(model: keras.Model, path: str, data: PreprocessedData) -> float:
    """Copies pretrained vectors into the classifier's encoder's token embedding; returns the coverage."""
    if data.tokenizer != "word":
        raise UserError("--word-vectors needs a corpus preprocessed with --tokenizer word.")
    encoder = model.get_layer(index=1)  # after the token-ids input (model.classifier.build_classifier)
    embeddings = encoder.token_embedding.embeddings
    matrix, coverage = embedding_matrix(path, data.token_vocabulary(), id_offset=1, vocab_size=data.vocab_size,
                                        dim=int(embeddings.shape[-1]))
    embeddings.assign(matrix)
    return coverage
