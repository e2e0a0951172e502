"""One process trains a run folder at a time: an exclusive ``flock`` on ``RUN_DIR/.lock``.

The lock is held until the process ends (the kernel drops it even after ``kill -9``), so a stale lock
file never blocks anyone. Where ``fcntl`` does not exist (Windows) runs are not locked.
"""

from __future__ import annotations

import os
from pathlib import Path

from lunalm.errors import LunaError

LOCK_FILE = ".lock"
_held: dict[str, object] = {}  # run folder -> its open, locked file (kept open for the process's life)


def hold_run_lock(run_dir: Path) -> None:
    """Take the run folder's lock for this process, or raise LunaError if another process holds it."""
    try:
        import fcntl
    except ImportError:  # Windows
        return
    key = str(Path(run_dir).resolve())
    if key in _held:
        return
    handle = open(Path(run_dir) / LOCK_FILE, "a+", encoding="utf-8")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise LunaError(f"{run_dir} is being trained right now by {holder}; two processes on one run folder "
                        "would overwrite each other's checkpoints. Wait for it to finish (or stop it), then "
                        f"`luna resume {run_dir}`") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()}\n")
    handle.flush()
    _held[key] = handle


def release_run_lock(run_dir: Path) -> None:
    """Drop the lock early (tests that train one run twice in a single process)."""
    handle = _held.pop(str(Path(run_dir).resolve()), None)
    if handle is not None:
        handle.close()
