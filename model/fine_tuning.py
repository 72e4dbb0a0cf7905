"""Fitting ALBERT to the data: the pooling for the data's framing, and whether a pretrained encoder
(`train.init_from`) fits the preprocessed data it is about to be fine-tuned on."""

from __future__ import annotations

from model.albert_encoder import POOLING_CLS, POOLING_MEAN
from model.data import FRAMING_CLS_SEP, PreprocessedData
from model.pretrained_encoder import read_encoder_config
from schemas.errors import UserError

SHOWN_HASH_CHARS = 12  # of a SentencePiece model's sha256, in messages


def resolve_pooling(pooling: str, data: PreprocessedData) -> str:
    """albert.pooling for `data`: "auto" is "cls" when every sequence starts with [CLS], else "mean"."""
    framed = data.framing == FRAMING_CLS_SEP
    if pooling == "auto":
        return POOLING_CLS if framed else POOLING_MEAN
    if pooling == POOLING_CLS and not framed:
        raise UserError(f"albert.pooling cls needs sequences framed [CLS] … [SEP] (the sentencepiece tokenizer); "
                        f"the data in {data.data_dir} was tokenized with {data.tokenizer} without them. "
                        f"Use pooling mean or auto.")
    return pooling


def check_pretrained_fits_data(directory: str, data: PreprocessedData) -> dict:
    """encoder.json of `directory`, once its tokenizer, vocabulary and position table fit `data`.

    Raises UserError naming both sides: another tokenizer or SentencePiece model, another
    vocabulary size, or a max_seq_length beyond the encoder's position embeddings.
    """
    config = read_encoder_config(directory)
    tokenizer, backbone = config["tokenizer"], config["backbone"]
    if data.tokenizer != tokenizer["type"] or data.tokenizer_sha256 != tokenizer["sha256"]:
        raise UserError(f"The data in {data.data_dir} was tokenized with {_describe_data_tokenizer(data)}, but the "
                        f"encoder in {directory} expects {tokenizer['type']} {tokenizer['sha256'][:SHOWN_HASH_CHARS]} "
                        f"(vocabulary {tokenizer['vocabulary_size']}); preprocess with --pretrained {directory}.")
    if data.vocab_size != backbone["vocabulary_size"]:
        raise UserError(f"The data in {data.data_dir} has a vocabulary of {data.vocab_size} ids, but the encoder in "
                        f"{directory} has {backbone['vocabulary_size']}.")
    if data.max_seq_length > backbone["max_sequence_length"]:
        raise UserError(f"The data in {data.data_dir} has max_seq_length {data.max_seq_length}, more than the "
                        f"encoder in {directory} has positions for (max_sequence_length "
                        f"{backbone['max_sequence_length']}); preprocess with --max-seq-length "
                        f"{backbone['max_sequence_length']} or less.")
    return config


def _describe_data_tokenizer(data: PreprocessedData) -> str:
    sha = f" {data.tokenizer_sha256[:SHOWN_HASH_CHARS]}" if data.tokenizer_sha256 else ""
    return f"{data.tokenizer}{sha} (vocabulary {data.vocab_size})"
