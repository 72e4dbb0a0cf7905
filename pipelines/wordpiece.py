"""Learning a WordPiece vocabulary from the corpus, inside the Beam pipeline.

`learn_wordpiece` is a tf.Transform analyzer: its Beam part counts words over the whole training
split (`pipelines.word_counts`, a combiner, so it scales out), learns the vocabulary with
tensorflow-text's learner, and writes two assets that end up inside transform_fn/ and every
exported model: the vocabulary (one token per line, `[PAD]` first so padding is id 0) and the
serialized FastWordpieceTokenizer model.
"""

from __future__ import annotations

import logging

import apache_beam as beam
import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tensorflow_text.core.pybinds import pywrap_fast_wordpiece_tokenizer_model_builder as model_builder
from tensorflow_text.tools.wordpiece_vocab import wordpiece_tokenizer_learner_lib as learner

from pipelines.word_counts import WordCounter
from schemas import features

RESERVED_TOKENS = (features.PAD_TOKEN, features.UNK_TOKEN)
TOKENIZER_MODEL_ASSET = "wordpiece_model"
MAX_BYTES_PER_WORD = 100


def build_tokenizer_model(vocabulary: list[str]) -> bytes:
    """The FastWordpieceTokenizer flatbuffer for `vocabulary` (words are pre-split by the caller)."""
    return model_builder.build_fast_wordpiece_model(
        vocabulary, MAX_BYTES_PER_WORD, features.WORDPIECE_SUFFIX, features.UNK_TOKEN,
        True,  # no_pretokenization: inputs are already words
        False,  # support_detokenization
    )


def learn_vocabulary(word_counts: dict[bytes, int], vocab_size: int) -> list[str]:
    """WordPiece tokens (reserved tokens first) for a target size, from (word, count) pairs."""
    counts = [(word.decode("utf-8"), count) for word, count in word_counts.items()]
    vocabulary = learner.learn(
        counts,
        vocab_size=vocab_size,
        reserved_tokens=list(RESERVED_TOKENS),
        lower_thresh=1,
        joiner=features.WORDPIECE_SUFFIX,
    )
    assert vocabulary[0] == features.PAD_TOKEN, "padding must be token id 0"
    return vocabulary


class LearnWordpieceVocabulary(tft_beam.experimental.PTransformAnalyzer):
    """Beam half of the analyzer: batches of words in, paths of the two asset files out."""

    def __init__(self, vocab_size: int):
        super().__init__()
        self._vocab_size = vocab_size

    def _write_assets(self, word_counts):
        vocabulary = learn_vocabulary(word_counts, self._vocab_size)
        logging.info("Learned a WordPiece vocabulary of %d tokens from %d distinct words.",
                     len(vocabulary), len(word_counts))
        tf.io.gfile.makedirs(self.base_temp_dir)
        vocabulary_path = f"{self.base_temp_dir}/{features.TOKEN_VOCABULARY}"
        model_path = f"{self.base_temp_dir}/{TOKENIZER_MODEL_ASSET}"
        with tf.io.gfile.GFile(vocabulary_path, "w") as f:
            f.write("".join(token + "\n" for token in vocabulary))
        with tf.io.gfile.GFile(model_path, "wb") as f:
            f.write(build_tokenizer_model(vocabulary))
        return np.array(vocabulary_path.encode(), dtype=object), np.array(model_path.encode(), dtype=object)

    def expand(self, word_batches):
        paths = (
            word_batches
            | "CountWords" >> beam.CombineGlobally(WordCounter())
            | "LearnAndWrite" >> beam.Map(self._write_assets)
        )
        return (paths | "VocabularyPath" >> beam.Map(lambda p: p[0]),
                paths | "ModelPath" >> beam.Map(lambda p: p[1]))


def learn_wordpiece(words: tf.Tensor, vocab_size: int) -> tuple[tf.Tensor, tf.Tensor]:
    """tf.Transform analyzer over all words (a 1-D string tensor): (vocabulary path, model path)."""
    placeholder_vocabulary = list(RESERVED_TOKENS)
    vocabulary_path, model_path = tft.experimental.ptransform_analyzer(
        inputs=[words],
        ptransform=LearnWordpieceVocabulary(vocab_size),
        output_dtypes=[tf.string, tf.string],
        output_shapes=[[], []],
        # Contents used only while tracing, before the real vocabulary exists.
        output_asset_default_values=[
            "".join(t + "\n" for t in placeholder_vocabulary).encode(),
            build_tokenizer_model(placeholder_vocabulary),
        ],
        name="learn_wordpiece",
    )
    return vocabulary_path, model_path
