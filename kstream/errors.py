"""Errors a user sees: each names the setting or input at fault."""


class ConfigError(ValueError):
    """Bad configuration, found before anything is read. The CLI prints it and exits 2."""
