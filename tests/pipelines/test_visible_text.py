"""What the tokenizer sees: the rule for texts with nothing to tokenize, its agreement with
`split_words` on every character, and the normalization before words are split."""

import sys

import numpy as np
import pytest
import tensorflow as tf

from pipelines import visible_text
from pipelines.preprocessing_fn import split_words

PLANES = (0, 1, 14)  # where every control, format and default-ignorable character lives


def code_points_of(planes) -> list[int]:
    return [c for plane in planes for c in range(plane << 16, (plane + 1) << 16)
            if not 0xD800 <= c <= 0xDFFF and c <= sys.maxunicode]


@pytest.mark.parametrize("text", ["", " \t\n", "\u200b", "\u200e\u200f", "\ufeff", "\u2060\u00ad", "\x00\x7f\x85",
                                  "\u3000\u00a0\u2028\u2029", "\ufe0f\u3164\U000E0041", "<br />", "<BR>\u200b<br/>",
                                  "\uff1c\uff42\uff52\uff1e"])  # the last: a full-width <br> (NFKC makes it one)
def test_texts_of_invisible_characters_and_line_break_tags_have_no_tokens(text):
    assert not visible_text.has_tokens(text)


@pytest.mark.parametrize("text", ["a", " x ", "\u200bword\u200b", "\u05e9\u200e", "\u0301", "\U0001F600", "<br>.",
                                  "<b>", "br", "<", "\uff41"])
def test_texts_with_a_visible_character_have_tokens(text):
    assert visible_text.has_tokens(text)


@pytest.mark.parametrize("lowercase", [True, False])
def test_the_tokenizer_finds_a_word_in_a_character_exactly_when_validation_does(lowercase):
    code_points = code_points_of(PLANES)
    texts = [chr(c) for c in code_points]

    tokenized = split_words(tf.constant(texts), lowercase).row_lengths().numpy() > 0

    validated = np.array([visible_text.has_tokens(text) for text in texts])
    disagreeing = [f"U+{code_points[i]:04X}" for i in np.nonzero(tokenized != validated)[0]]
    assert disagreeing == []
    assert 0 < validated.sum() < len(texts)


def test_the_tokenizer_finds_no_word_in_texts_validation_rejects():
    texts = ["\u200b \u200e", "<br />\u2060<BR>", "\uff1c\uff42\uff52\uff1e\u3000", "\x00\t\u00ad"]

    assert split_words(tf.constant(texts), lowercase=True).row_lengths().numpy().tolist() == [0, 0, 0, 0]
    assert not any(visible_text.has_tokens(text) for text in texts)


def test_invisible_characters_inside_words_are_removed_and_separators_split_words():
    words = split_words(tf.constant(["co\u00adop\u200bera\u2060tion", "one\u3000two\u2028three\u00a0four"]),
                        lowercase=False)

    assert words.to_list() == [[b"cooperation"], [b"one", b"two", b"three", b"four"]]


# --- split_words without tf.Transform: normalization the word and wordpiece tokenizers share ---


def test_without_lowercasing_case_is_kept_and_nfkc_still_applies():
    words = split_words(tf.constant(["\uff28\uff45\uff4c\uff4c\uff4f World.", "cat<br />dog"]), lowercase=False)
    assert words.to_list() == [[b"Hello", b"World", b"."], [b"cat", b"dog"]]


def test_html_line_breaks_are_removed_in_any_case_without_lowercasing():
    words = split_words(tf.constant(["cat<BR />dog", "cat<Br>dog"]), lowercase=False)
    assert words.to_list() == [[b"cat", b"dog"], [b"cat", b"dog"]]
