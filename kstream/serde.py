"""Serializers by name. Unknown names are configuration errors that name the setting."""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from typing import Any

from kstream.errors import ConfigError

Serializer = Callable[[Any], bytes | None]
Deserializer = Callable[[bytes], Any]
# json.dumps with separators builds an encoder per call: one, built once, writes the same
_json = json.JSONEncoder(separators=(",", ":")).encode


def _auto(value: Any) -> bytes | None:
    """bytes as they are, str as UTF-8, None as a null value, anything else as JSON."""
    if value is None or isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    if type(value) is int:  # a count, the commonest value: its JSON is its digits
        return str(value).encode()
    return _json(value).encode()


def _int_from(raw: bytes) -> int:
    return int(raw.decode())


_SERIALIZERS: dict[str, Serializer] = {
    "auto": _auto,
    "str": lambda v: None if v is None else str(v).encode(),
    "bytes": lambda v: v,
    "json": lambda v: _json(v).encode(),
    "int": lambda v: None if v is None else str(int(v)).encode(),
    "pickle": pickle.dumps,
}

_DESERIALIZERS: dict[str, Deserializer] = {
    "str": bytes.decode,
    "bytes": bytes,
    "json": json.loads,
    "int": _int_from,
    "pickle": pickle.loads,
}


def _named(table: dict[str, Any], name: str, setting: str) -> Any:
    if name not in table:
        raise ConfigError(
            f"{setting}={name!r} is not a known serde; choose one of {', '.join(table)}"
        )
    return table[name]


def serializer(name: str, setting: str) -> Serializer:
    return _named(_SERIALIZERS, name, setting)


def deserializer(name: str, setting: str) -> Deserializer:
    return _named(_DESERIALIZERS, name, setting)
