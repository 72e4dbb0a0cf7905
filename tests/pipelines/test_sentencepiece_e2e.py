"""The preprocessing stage with the sentencepiece tokenizer: a given model file, a model learned
in the pipeline, and a pretrained-encoder directory. One run each, shared by the tests.

Expected ids are computed independently: the reference text preparation in plain Python (as
transformers' AlbertTokenizer.preprocess_text) and the `sentencepiece` package's encoder.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
import unicodedata

import pytest
import sentencepiece

from pipelines import preprocess
from pipelines.sentencepiece_model import LEARNED_LAYOUT, MODEL_ASSET
from schemas import features
from tests.conftest import make_documents, write_corpus
from tests.pipelines.albert_fixtures import SPIECE, write_pretrained_dir
from tests.pipelines.fresh_process import token_ids_in_fresh_process
from tests.pipelines.test_preprocess_e2e import read_split

pytestmark = pytest.mark.slow

MAX_SEQ_LENGTH = 16
ALBERT_LAYOUT = {"pad": 0, "unk": 1, "cls": 2, "sep": 3, "mask": 4}
EXTRA_TEXTS = [
    "Café «naïve» ``quoted'' Zoë — 3.0, 1,000.5 ☺",
    "\u0301\u0308",  # combining marks only: visible, so accepted, but nothing is left to tokenize
    "ÉCOLE   über\tSTRASSE",
]


def reference_prepare(text: str, lowercase: bool) -> str:
    """transformers' AlbertTokenizer.preprocess_text (remove_space, keep_accents=False)."""
    text = " ".join(text.strip().split()).replace("``", '"').replace("''", '"')
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return text.lower() if lowercase else text


def expected_rows(texts, model: bytes, lowercase: bool, max_seq_length: int) -> list[tuple[int, ...]]:
    """Sorted `[CLS] pieces… [SEP]` + padding rows of `texts` (one <unk> where nothing is left)."""
    processor = sentencepiece.SentencePieceProcessor(model_proto=model)
    rows = []
    for text in texts:
        pieces = processor.encode(reference_prepare(text, lowercase)) or [processor.unk_id()]
        framed = [2, *pieces[: max_seq_length - 2], 3]
        rows.append(tuple(framed + [0] * (max_seq_length - len(framed))))
    return sorted(rows)


def all_examples(output) -> list[dict]:
    return read_split(output, features.TRAIN_SPLIT) + read_split(output, features.EVAL_SPLIT)


def documents() -> list[dict]:
    extra = [{"id": f"extra-{i}", "text": text, "label": "sports"} for i, text in enumerate(EXTRA_TEXTS)]
    return make_documents(40) + extra


def run(tmp_path, *flags: str) -> tuple[dict, str]:
    output = str(tmp_path / "out")
    stats = preprocess.run(["--input", write_corpus(documents(), tmp_path / "raw", "jsonl"), "--output-dir", output,
                            "--eval-fraction", "0.25", *flags])
    return stats, output


# --- a given model file ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def given(tmp_path_factory):
    """(stats, output dir, the model path used): a run with a copy of the fixture's spiece.model."""
    tmp_path = tmp_path_factory.mktemp("given")
    model_path = str(tmp_path / "models" / "albert.model")
    os.makedirs(os.path.dirname(model_path))
    shutil.copy(SPIECE, model_path)
    stats, output = run(tmp_path, "--sentencepiece-model", model_path, "--max-seq-length", str(MAX_SEQ_LENGTH))
    return stats, output, model_path


def test_stats_describe_the_given_model_and_its_framing(given):
    stats, output, _ = given
    with open(os.path.join(output, features.STATS_FILE), encoding="utf-8") as f:
        on_disk = json.load(f)
    assert on_disk == stats
    assert {k: stats[k] for k in ("tokenizer", "vocab_size", "framing", "special_tokens", "tokenizer_sha256",
                                  "pretrained", "max_seq_length")} == {
        "tokenizer": "sentencepiece", "vocab_size": 200, "framing": "cls_sep", "special_tokens": ALBERT_LAYOUT,
        "tokenizer_sha256": hashlib.sha256(SPIECE.read_bytes()).hexdigest(), "pretrained": None,
        "max_seq_length": MAX_SEQ_LENGTH}


def test_every_example_is_cls_pieces_sep_then_padding(given):
    stats, output, _ = given
    examples = all_examples(output)
    assert len(examples) == stats["accepted"] == len(documents())
    for example in examples:
        ids, length = example[features.TOKEN_IDS], example[features.SEQUENCE_LENGTH]
        kept = min(length, MAX_SEQ_LENGTH)
        assert length >= 3
        assert ids[0] == 2 and ids[kept - 1] == 3
        assert 0 not in ids[:kept] and set(ids[kept:]) <= {0}
    assert stats["token_length"]["max"] > MAX_SEQ_LENGTH  # some were cut


def test_pipeline_ids_equal_the_reference_tokenizer(given):
    _, output, _ = given
    pipelined = sorted(tuple(e[features.TOKEN_IDS]) for e in all_examples(output))
    texts = [d["text"] for d in documents()]
    assert pipelined == expected_rows(texts, SPIECE.read_bytes(), lowercase=True, max_seq_length=MAX_SEQ_LENGTH)




def test_the_saved_transform_needs_no_model_file_in_a_fresh_process(given):
    _, output, model_path = given
    os.remove(model_path)  # the graph holds the model's bytes
    texts = [d["text"] for d in documents()]
    served = sorted(token_ids_in_fresh_process(output, texts))
    assert served == sorted(tuple(e[features.TOKEN_IDS]) for e in all_examples(output))
    assert os.listdir(os.path.join(output, "transform_fn", "assets")) == [features.LABEL_VOCABULARY]


# --- a model learned in the pipeline ------------------------------------------------------------


@pytest.fixture(scope="module")
def learned(tmp_path_factory):
    return run(tmp_path_factory.mktemp("learned"), "--tokenizer", "sentencepiece", "--vocab-size", "60",
               "--max-seq-length", str(MAX_SEQ_LENGTH))


def learned_model(output) -> bytes:
    (path,) = glob.glob(os.path.join(output, "transform_fn", "assets", MODEL_ASSET))
    with open(path, "rb") as f:
        return f.read()


def test_a_learned_model_has_the_albert_layout_and_is_an_asset_of_the_transform(learned):
    stats, output = learned
    model = learned_model(output)
    processor = sentencepiece.SentencePieceProcessor(model_proto=model)
    assert stats["special_tokens"] == LEARNED_LAYOUT == ALBERT_LAYOUT
    assert [processor.id_to_piece(i) for i in range(5)] == ["<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]"]
    assert stats["vocab_size"] == processor.get_piece_size() <= 60
    assert stats["tokenizer_sha256"] == hashlib.sha256(model).hexdigest()
    assert (stats["framing"], stats["pretrained"]) == ("cls_sep", None)


def test_the_saved_transform_tokenizes_with_the_learned_model(learned):
    stats, output = learned
    examples = all_examples(output)
    assert max(i for e in examples for i in e[features.TOKEN_IDS]) < stats["vocab_size"]
    texts = [d["text"] for d in documents()]
    assert sorted(tuple(e[features.TOKEN_IDS]) for e in examples) == expected_rows(
        texts, learned_model(output), lowercase=True, max_seq_length=MAX_SEQ_LENGTH)


# --- a pretrained-encoder directory -------------------------------------------------------------


@pytest.fixture(scope="module")
def from_pretrained(tmp_path_factory):
    """A run with --pretrained: an encoder of 24 positions, cased; no --max-seq-length given."""
    tmp_path = tmp_path_factory.mktemp("pretrained")
    directory = write_pretrained_dir(tmp_path / "encoder", max_sequence_length=24, lowercase=False)
    stats, output = run(tmp_path, "--pretrained", directory)
    return stats, output, directory


def test_a_pretrained_directory_sets_the_model_the_case_and_the_sequence_bound(from_pretrained):
    stats, output, directory = from_pretrained
    assert {k: stats[k] for k in ("tokenizer", "vocab_size", "pretrained", "max_seq_length", "tokenizer_sha256")} == {
        "tokenizer": "sentencepiece", "vocab_size": 200, "pretrained": directory, "max_seq_length": 24,
        "tokenizer_sha256": hashlib.sha256(SPIECE.read_bytes()).hexdigest()}
    with open(os.path.join(output, features.CONFIG_FILE), encoding="utf-8") as f:
        settings = json.load(f)["preprocess"]
    assert (settings["max_seq_length"], settings["lowercase"], settings["tokenizer"]) == (24, False, "sentencepiece")
    texts = [d["text"] for d in documents()]
    assert sorted(tuple(e[features.TOKEN_IDS]) for e in all_examples(output)) == expected_rows(
        texts, SPIECE.read_bytes(), lowercase=False, max_seq_length=24)
