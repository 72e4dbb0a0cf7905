"""When a text has something to tokenize: the one rule that validation and the tokenizer share.

Whitespace, control and format characters (zero-width space, direction marks, byte order mark,
soft hyphen, ...) and the other code points Unicode marks as default-ignorable render as nothing,
and `<br>` tags are markup. A text made only of those has no token: validation rejects it as
`empty_text` (`has_tokens`, used by preprocessing and scoring alike), and the tokenizer
(`preprocessing_fn.normalize_text`) removes the same characters before it splits words, so an
accepted document never gets a `sequence_length` of 0. Both spell the same character classes, built from one table
(Python's `unicodedata`): once for Python's `re`, once for RE2 (TensorFlow).
"""

from __future__ import annotations

import functools
import re
import sys
import unicodedata

# Become a space: they separate words.
SPACE_CATEGORIES = ("Cc", "Zs", "Zl", "Zp")
# Removed: they shape or join what is around them (zero-width joiner, soft hyphen, bidi marks).
FORMAT_CATEGORIES = ("Cf",)
# Removed too: Unicode's Default_Ignorable_Code_Point (DerivedCoreProperties.txt), which case
# folding (NFKC_Casefold) deletes anyway: variation selectors, Hangul fillers, reserved ranges.
DEFAULT_IGNORABLE_RANGES = (
    (0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C), (0x115F, 0x1160), (0x17B4, 0x17B5),
    (0x180B, 0x180F), (0x200B, 0x200F), (0x202A, 0x202E), (0x2060, 0x206F), (0x3164, 0x3164),
    (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF), (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A), (0xE0000, 0xE0FFF),
)
BR_TAG = r"(?i)<br\s*/?>"  # applied after the classes below, when the only whitespace left is ' '


SPACES = "spaces"  # the class of characters that become ' '
REMOVED = "removed"  # the class of characters that are deleted


@functools.cache
def _ranges() -> dict[str, tuple[tuple[int, int], ...]]:
    """Contiguous code point ranges of each class, from one scan of the code space (once per process)."""
    default_ignorable = bytearray(sys.maxunicode + 1)
    for low, high in DEFAULT_IGNORABLE_RANGES:
        default_ignorable[low: high + 1] = b"\x01" * (high - low + 1)
    ranges: dict[str, list[list[int]]] = {SPACES: [], REMOVED: []}
    for code_point in range(sys.maxunicode + 1):
        category = unicodedata.category(chr(code_point))
        if category in SPACE_CATEGORIES:
            kind = SPACES
        elif category in FORMAT_CATEGORIES or default_ignorable[code_point]:
            kind = REMOVED
        else:
            continue
        if ranges[kind] and ranges[kind][-1][1] == code_point - 1:
            ranges[kind][-1][1] = code_point
        else:
            ranges[kind].append([code_point, code_point])
    return {kind: tuple((low, high) for low, high in spans) for kind, spans in ranges.items()}


def _character_class(kind: str, escape) -> str:
    return "[" + "".join(escape(low) if low == high else f"{escape(low)}-{escape(high)}"
                         for low, high in _ranges()[kind]) + "]"


def re2_class(kind: str) -> str:
    """The class SPACES or REMOVED for TensorFlow's regex ops (RE2): `[\\x{...}-\\x{...}...]`."""
    return _character_class(kind, lambda code_point: f"\\x{{{code_point:X}}}")


@functools.cache
def _python_pattern(kind: str) -> re.Pattern:
    return re.compile(_character_class(kind, lambda code_point: f"\\U{code_point:08X}"))


_BR_TAG = re.compile(BR_TAG)
# Printable ASCII outside `<br/>` is visible whatever surrounds it: most texts are decided by it at once.
_PLAINLY_VISIBLE = re.compile(r"(?![<>/bBrR])[!-~]")


def has_tokens(text: str) -> bool:
    """False when the text is only whitespace, control, format or default-ignorable characters
    and `<br>` tags: exactly when `preprocessing_fn.split_words` would find no word in it."""
    if _PLAINLY_VISIBLE.search(text):
        return True
    text = _python_pattern(SPACES).sub(" ", _python_pattern(REMOVED).sub("", text))
    text = unicodedata.normalize("NFKC", text)
    return bool(_BR_TAG.sub(" ", text).strip())
