"""Typed user-facing errors.

Anything the user can fix (a missing path, a bad config value, a corrupt input file) raises a
``LunaError`` subclass with one clear sentence naming the file / field / value, what was expected and how
to fix it. The CLI prints it on one line and exits with code 2; nothing else prints tracebacks for them.
"""


class LunaError(Exception):
    """A problem with the user's input or environment; the message says how to fix it."""

    exit_code = 2


class ConfigError(LunaError):
    """An invalid configuration value (the message names each bad field)."""


class CorpusError(LunaError):
    """A corpus path or file that cannot be read as text."""


class TokenizerError(LunaError):
    """A tokenizer that cannot be trained, loaded or saved."""


class DataError(LunaError):
    """Token data that cannot produce the requested batches (e.g. too small for one window)."""
