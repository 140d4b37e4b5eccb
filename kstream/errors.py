"""Errors a user sees: each names the setting or input at fault."""

from typing import Any


class ConfigError(ValueError):
    """Bad configuration, found before anything is read. The CLI prints it and exits 2."""


class FormatError(RuntimeError):
    """An internal record or state in a format the worker does not read, or a value its
    format cannot write (kstream/codec.py): the worker stops, with one line."""


def require_function(fn: Any, name: str, arg: str, optional: bool = False) -> None:
    """Refuse an operator argument that is not a function when the pipeline is built,
    not when its first batch runs."""
    if (fn is None and not optional) or (fn is not None and not callable(fn)):
        raise ConfigError(f"{name}: {arg}={fn!r}: give a function")
