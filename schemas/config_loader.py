"""Building the `JobConfig` from a YAML job file and flag overrides, with one-line errors.

A job file has one mapping per stage section::

    corpus:
      inputs: [data/*.jsonl]
      text_field: body
    preprocess:
      tokenizer: wordpiece
      vocab_size: 8000

Flags override the file ("section.key" → value). Unknown sections or keys are an error naming
the key; every value is checked against its field's declared type (an integer is accepted where
a float is declared, a single string where a list of strings is) before the section's own checks.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Mapping

import yaml

from schemas.config import ConfigError, JobConfig, check, shown


def _coerce(value: Any, annotation: Any, key: str) -> Any:
    """Converts a YAML/flag value to the field's declared type, or raises ConfigError."""
    hint = annotation
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None:
            return None
        hint = options[0]
        origin = typing.get_origin(hint)
    if origin is tuple:
        if isinstance(value, str):
            value = [value]
        check(isinstance(value, (list, tuple)), f"{key} must be a list. Received: {key}={shown(value)}")
        (item_type, _) = typing.get_args(hint)
        return tuple(_coerce(v, item_type, key) for v in value)
    if hint is bool:
        check(isinstance(value, bool), f"{key} must be true or false. Received: {key}={shown(value)}")
        return value
    if hint is int:
        check(isinstance(value, int) and not isinstance(value, bool),
              f"{key} must be an integer. Received: {key}={shown(value)}")
        return value
    if hint is float:
        check(isinstance(value, (int, float)) and not isinstance(value, bool),
              f"{key} must be a number. Received: {key}={shown(value)}")
        return float(value)
    if hint is str:
        check(isinstance(value, str), f"{key} must be a string. Received: {key}={shown(value)}")
        return value
    raise TypeError(f"Unsupported config field type {hint!r} for {key}")


def _build_section(section_type: type, values: Mapping[str, Any], section: str):
    field_types = typing.get_type_hints(section_type)
    known = {f.name for f in dataclasses.fields(section_type)}
    unknown = sorted(set(values) - known, key=str)
    check(not unknown, f"Unknown config key {shown(f'{section}.{unknown[0]}' if unknown else '')}. "
                       f"Known keys in '{section}': {', '.join(sorted(known))}")
    kwargs = {name: _coerce(value, field_types[name], f"{section}.{name}") for name, value in values.items()}
    return section_type(**kwargs)


def read_job_file(path: str) -> dict[str, Any]:
    """Reads a YAML job file into a plain mapping of sections, with clear errors."""
    try:
        with open(path, encoding="utf-8") as f:
            document = yaml.safe_load(f)
    except FileNotFoundError:
        raise ConfigError(f"Config file not found: {path}") from None
    except yaml.YAMLError as e:
        first_line = (str(e).splitlines() or [""])[0]
        raise ConfigError(f"Config file {path} is not valid YAML: {first_line[:200]}") from None
    if document is None:
        return {}
    check(isinstance(document, dict), f"Config file {path} must hold a mapping of sections.")
    return document


def load_job_config(path: str | None = None, overrides: Mapping[str, Any] | None = None) -> JobConfig:
    """Builds the JobConfig from an optional YAML file, then `overrides` ("section.key" → value)."""
    document = read_job_file(path) if path else {}
    sections = {f.name: f.type for f in dataclasses.fields(JobConfig)}
    unknown = sorted(set(document) - set(sections), key=str)
    check(not unknown, f"Unknown config section {shown(unknown[0]) if unknown else ''}. "
                       f"Known sections: {', '.join(sections)}")
    merged: dict[str, dict[str, Any]] = {}
    for name in sections:
        values = document.get(name) or {}
        check(isinstance(values, dict), f"Config section '{name}' must be a mapping. Received: {shown(values)}")
        merged[name] = dict(values)
    for dotted, value in (overrides or {}).items():
        section, _, key = dotted.partition(".")
        check(section in merged and bool(key), f"Unknown config key '{dotted}'. Known sections: {', '.join(sections)}")
        merged[section][key] = value
    hints = typing.get_type_hints(JobConfig)
    return JobConfig(**{name: _build_section(hints[name], merged[name], name) for name in sections})
