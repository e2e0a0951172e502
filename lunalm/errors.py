"""Typed user-facing errors.

Anything the user can fix (a missing path, a bad config value, a corrupt input file) raises a
``LunaError`` subclass with one clear sentence naming the file / field / value, what was expected and how
to fix it. The CLI prints it on one line and exits with code 2; nothing else prints tracebacks for them.
"""

import errno


class LunaError(Exception):
    """A problem with the user's input or environment; the message says how to fix it."""

    exit_code = 2


class ConfigError(LunaError):
    """An invalid configuration value (the message names each bad field)."""


class CorpusError(LunaError):
    """A corpus path or file that cannot be read as text."""


class NoTextError(CorpusError):
    """A file that holds no text to read (a scanned PDF, a locked one): inside a corpus it is skipped and
    named in a note (``CorpusReport.skipped_note``); the corpus stops only where no file gives text."""


class TokenizerError(LunaError):
    """A tokenizer that cannot be trained, loaded or saved."""


class DataError(LunaError):
    """Token data that cannot produce the requested batches (e.g. too small for one window)."""


class DiskFullError(LunaError):
    """The disk being written ran out of space: one line with the folder, its free space now and the fix."""

    def __init__(self, where, doing: str, fix: str):
        self.where, self.doing = where, doing
        super().__init__(f"no space left on the disk holding {where} ({_free_text(where)}) while {doing}; "
                         f"free some space there, then {fix}")


def _free_text(where) -> str:
    import shutil
    from pathlib import Path

    folder = Path(where)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return f"{shutil.disk_usage(folder).free / 2**20:,.1f} MB free now"
    except OSError:
        return "free space unknown"


_DISK_FULL_ERRNOS = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))  # no space; quota exceeded
_DISK_FULL_TEXT = ("no space left on device", "disk quota exceeded", "os error 28", "code: 28", "storagefull",
                   "database or disk is full")


def is_disk_full(error: BaseException | None) -> bool:
    """Whether ``error`` (or an error it was raised from) says the disk or quota is full.

    Libraries word it differently: OSError errno 28, safetensors' "IoError(Os { code: 28, kind: StorageFull
    ..."), SQLite's "database or disk is full"."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in _DISK_FULL_ERRNOS:
            return True
        if any(text in str(error).lower() for text in _DISK_FULL_TEXT):
            return True
        error = error.__cause__ or error.__context__
    return False

