"""Errors a user sees: each names the setting or input at fault."""


class ConfigError(ValueError):
    """Bad configuration, found before anything is read. The CLI prints it and exits 2."""


class FormatError(RuntimeError):
    """An internal record or state in a format the worker does not read, or a value its
    format cannot write (kstream/codec.py): the worker stops, with one line."""
