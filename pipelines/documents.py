"""Validation: a raw record becomes a `Document`, or a `Rejection` that says why not."""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

from pipelines.formats import RawRecord, Rejection, excerpt, utf8_codec_ok
from pipelines.visible_text import has_tokens
from schemas import rejections
from schemas.config import CorpusConfig


@dataclasses.dataclass(frozen=True)
class Document:
    id: str
    text: str
    labels: tuple[str, ...]  # one label, or several for multi-label corpora; empty when unlabelled
    source: str
    kept_fields: tuple[tuple[str, str | None], ...] = ()  # input fields passed through to outputs


def text_fingerprint(text: str) -> str:
    """A stable content hash: the id of a document without an id field, and the duplicate key."""
    return hashlib.blake2b(text.encode("utf-8"), digest_size=12).hexdigest()


class _Invalid(Exception):
    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def _as_string(value: Any, field: str, missing_reason: str, allow_numbers: bool) -> str:
    """The field's text. Numbers: an integer is taken as its decimal string where `allow_numbers`
    (labels, ids); booleans, floats, lists and mappings are `wrong_type` everywhere."""
    if value is None:
        raise _Invalid(missing_reason, f"field '{field}' is missing")
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError as e:
            raise _Invalid(rejections.INVALID_UTF8, f"field '{field}' is not valid UTF-8: {e}") from None
    elif isinstance(value, int) and not isinstance(value, bool) and allow_numbers:
        value = str(value)
    elif not isinstance(value, str):
        raise _Invalid(rejections.WRONG_TYPE, f"field '{field}' must be a string, found {type(value).__name__}")
    if not utf8_codec_ok(value):
        raise _Invalid(rejections.INVALID_UTF8, f"field '{field}' is not valid UTF-8")
    return value


def _labels(value: Any, config: CorpusConfig) -> tuple[str, ...]:
    field = config.label_field
    if config.multi_label and isinstance(value, (list, tuple)):
        parts = [_as_string(v, field, rejections.MISSING_LABEL, allow_numbers=True) for v in value]
    else:
        label = _as_string(value, field, rejections.MISSING_LABEL, allow_numbers=True)
        parts = label.split(config.label_separator) if config.multi_label else [label]
    labels = tuple(dict.fromkeys(p.strip() for p in parts if p.strip()))  # ordered, de-duplicated
    if not labels:
        raise _Invalid(rejections.MISSING_LABEL, f"field '{field}' is empty")
    return labels


def to_document(record: RawRecord, config: CorpusConfig, require_label: bool = True,
                keep_fields: tuple[str, ...] = ()) -> Document | Rejection:
    """Checks one raw record against the raw schema: a usable text, label(s) and id.

    `keep_fields` are copied, as strings (None when absent), into `Document.kept_fields`.
    """
    fields = record.fields
    try:
        if config.text_field not in fields:
            raise _Invalid(rejections.MISSING_TEXT, f"field '{config.text_field}' is missing")
        text = _as_string(fields[config.text_field], config.text_field, rejections.MISSING_TEXT,
                          allow_numbers=False)
        if not has_tokens(text):
            raise _Invalid(rejections.EMPTY_TEXT,
                           f"field '{config.text_field}' is empty or holds only invisible characters")
        label_value = fields.get(config.label_field)
        if require_label or not _is_blank(label_value):
            labels = _labels(label_value, config)
        else:
            labels = ()
        if config.id_field:
            doc_id = _as_string(fields.get(config.id_field), config.id_field, rejections.MISSING_ID,
                                allow_numbers=True)
            if not doc_id.strip():
                raise _Invalid(rejections.MISSING_ID, f"field '{config.id_field}' is empty")
        else:
            doc_id = text_fingerprint(text)
    except _Invalid as e:
        return Rejection(e.reason, record.source, e.detail, excerpt(_printable(fields)))
    kept = tuple((name, _kept_value(fields.get(name))) for name in keep_fields)
    return Document(id=doc_id, text=text, labels=labels, source=record.source, kept_fields=kept)


def _kept_value(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def _is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, (str, bytes)) and not value.strip())


def _printable(fields: dict[str, Any]) -> str:
    shown = {k: (v.decode("utf-8", errors="backslashreplace") if isinstance(v, bytes) else v)
             for k, v in fields.items()}
    return repr(shown)
