"""ALBERT's text preparation before SentencePiece, in the TensorFlow graph.

`normalize` is what the reference tokenizers do before SentencePiece (Hugging Face's
`AlbertTokenizer.preprocess_text` with `remove_space=True`, `keep_accents=False`, as
google-research/albert's `preprocess_text`), string for string:

1. strip, and collapse every run of whitespace (Python's `str.isspace`) into one space;
2. ```` `` ```` and `''` become `"`;
3. Unicode NFKD;
4. combining characters (canonical combining class ≠ 0, Python's `unicodedata.combining`) removed;
5. lower-cased (Unicode, as Python's `str.lower`) for uncased models.

The character classes of steps 1 and 4 are built from Python's `unicodedata`, the same tables
the reference uses, and written out for RE2 (TensorFlow's regex ops).
"""

from __future__ import annotations

import functools
import sys
import unicodedata
from collections.abc import Callable

import tensorflow as tf
import tensorflow_text as tf_text

_NUL = "\x00"


def _re2_class(belongs: Callable[[str], bool]) -> str:
    """`[\\x{..}-\\x{..}...]`: the code points for which `belongs(character)` holds."""
    ranges: list[list[int]] = []
    for code_point in range(sys.maxunicode + 1):
        if belongs(chr(code_point)):
            if ranges and ranges[-1][1] == code_point - 1:
                ranges[-1][1] = code_point
            else:
                ranges.append([code_point, code_point])
    escape = "\\x{{{:X}}}".format
    return "[" + "".join(escape(low) if low == high else f"{escape(low)}-{escape(high)}" for low, high in ranges) + "]"


@functools.cache
def whitespace_class() -> str:
    return _re2_class(str.isspace)


@functools.cache
def combining_class() -> str:
    return _re2_class(lambda character: unicodedata.combining(character) != 0)


def _lower(text: tf.Tensor) -> tf.Tensor:
    """Unicode lower-casing. tf.strings.lower(encoding="utf-8") ends a string at its first NUL, so
    the text is lower-cased piece by piece between NULs and put back together with them."""
    parts = tf.strings.split(text, sep=_NUL)  # [batch, (parts)], at least one part per string
    lowered = tf.strings.lower(parts.flat_values, encoding="utf-8")
    with_nul = parts.with_flat_values(tf.strings.join([lowered, tf.fill(tf.shape(lowered), _NUL)]))
    joined = tf.strings.reduce_join(with_nul, axis=-1)
    length = tf.strings.length(joined)
    return tf.strings.substr(joined, tf.zeros_like(length), length - 1)  # less the NUL after the last part


def normalize(text: tf.Tensor, lowercase: bool) -> tf.Tensor:
    """[batch] strings → [batch] strings prepared as the reference ALBERT tokenizer prepares them."""
    space = whitespace_class()
    text = tf.strings.regex_replace(text, f"^{space}+|{space}+$", "")
    text = tf.strings.regex_replace(text, f"{space}+", " ")
    text = tf.strings.regex_replace(text, "``", '"')
    text = tf.strings.regex_replace(text, "''", '"')
    text = tf_text.normalize_utf8(text, "NFKD")
    text = tf.strings.regex_replace(text, combining_class(), "")
    return _lower(text) if lowercase else text
