"""Walking directory trees for ``luna scan``: one folder at a time, sorted (so a rescan meets files in the
same order), never following symlinks, and never listing a directory twice.

Why not ``os.walk``: it cannot report *why* it left something out, and we want the scan's report to say
"symlinked directory not followed" or "permission denied" for exactly those paths. A symlink loop cannot
hang the walk because symlinked directories are never entered, and the ``(st_dev, st_ino)`` set stops
bind-mount loops and overlapping roots (``luna scan a a/b``).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field

from lunalm.runs.scan.reading import ScanStats

# Tool state and installed packages: never training attempts, often huge. macOS's zip tool adds
# "__MACOSX/" of AppleDouble "._name" files (binary resource forks, not the files they are named after).
# Hidden directories (.git, .venv, .ipynb_checkpoints, ...) and "._" files are skipped too, and so is any
# virtualenv.
SKIP_DIRS = frozenset({"__pycache__", "node_modules", "site-packages", "dist-packages", "__MACOSX"})
_NOT_REGULAR = "not a regular file (FIFO, socket or device)"


@dataclass(frozen=True)
class FileEntry:
    name: str
    path: str
    size: int  # bytes
    mtime: float  # unix time


@dataclass
class Folder:
    """One directory's regular files and subdirectories, sorted by name.

    Like ``os.walk(topdown=True)``, a consumer may remove names from ``subdirs`` before asking for the
    next folder, to keep the walk out of them (a run directory's checkpoints, for instance).
    """

    path: str
    files: list[FileEntry] = field(default_factory=list)
    subdirs: list[str] = field(default_factory=list)

    def names(self) -> set[str]:
        return {entry.name for entry in self.files}

    def file(self, name: str) -> FileEntry | None:
        return next((entry for entry in self.files if entry.name == name), None)


def walk(root: str, stats: ScanStats, seen: set[tuple[int, int]]) -> Iterator[Folder]:
    """Folders under ``root`` (itself first), depth first in name order; ``seen`` is shared across roots."""
    stack = [root]
    while stack:
        path = stack.pop()
        folder = _list(path, stats, seen)
        if folder is None:
            continue
        yield folder
        stack.extend(os.path.join(path, name) for name in reversed(folder.subdirs))


def subdirs(path: str) -> list[str]:
    """The subdirectories of ``path`` the walk would enter (no links, hidden or tool folders), by name; one
    listing, for readers that look below a folder before the walk gets there."""
    try:
        with os.scandir(path) as entries:
            return sorted(entry.name for entry in entries if entry.is_dir(follow_symlinks=False)
                          and not entry.name.startswith(".") and entry.name not in SKIP_DIRS)
    except OSError:
        return []


def single_file(path: str, stats: ScanStats) -> Folder:
    """A folder holding just ``path`` (a file named on the command line is scanned alone); empty, with the
    reason in ``stats.skipped``, when ``path`` is not a regular file (opening a FIFO would block)."""
    info = os.stat(path)
    folder = Folder(os.path.dirname(path) or ".")
    if not stat.S_ISREG(info.st_mode):
        stats.skip(path, _NOT_REGULAR)
        return folder
    stats.files_seen += 1
    folder.files.append(FileEntry(os.path.basename(path), path, info.st_size, info.st_mtime))
    return folder


def _list(path: str, stats: ScanStats, seen: set[tuple[int, int]]) -> Folder | None:
    try:
        info = os.stat(path)
        if (info.st_dev, info.st_ino) in seen:
            return None
        seen.add((info.st_dev, info.st_ino))
        with os.scandir(path) as entries:
            items = sorted(entries, key=lambda entry: entry.name)
    except PermissionError:
        stats.skip(path, "permission denied")
        return None
    except OSError as error:  # vanished while scanning, not a directory any more, I/O error
        stats.skip(path, f"cannot list: {error.strerror or error}")
        return None
    stats.dirs_seen += 1
    folder = Folder(path)
    if any(entry.name == "pyvenv.cfg" for entry in items):  # a virtualenv, whatever it is called
        return folder
    for entry in items:
        _add(folder, entry, stats)
    if "latest-run" in folder.subdirs and any(name.startswith(("run-", "offline-run-")) for name in folder.subdirs):
        folder.subdirs.remove("latest-run")  # W&B's link to its newest run, committed as a copy of that folder
        stats.skip(os.path.join(path, "latest-run"), "a copy of the newest W&B run folder beside it")
    return folder


def _add(folder: Folder, entry: os.DirEntry, stats: ScanStats) -> None:
    """File it into ``folder`` (or record why not); symlinks are reported, never followed."""
    try:
        info = entry.stat(follow_symlinks=False)
    except OSError as error:
        stats.skip(entry.path, f"cannot stat: {error.strerror or error}")
        return
    if stat.S_ISLNK(info.st_mode):
        stats.skip(entry.path, f"symlinked {_link_kind(entry)} not followed")
    elif stat.S_ISDIR(info.st_mode):
        if not (entry.name.startswith(".") or entry.name in SKIP_DIRS):
            folder.subdirs.append(entry.name)
    elif stat.S_ISREG(info.st_mode) and entry.name.startswith("._"):
        return  # AppleDouble metadata beside a copied file (see SKIP_DIRS)
    elif stat.S_ISREG(info.st_mode):
        stats.files_seen += 1
        folder.files.append(FileEntry(entry.name, entry.path, info.st_size, info.st_mtime))
    else:  # opening a FIFO would block the scan forever
        stats.skip(entry.path, _NOT_REGULAR)


def _link_kind(entry: os.DirEntry) -> str:
    try:
        return "directory" if entry.is_dir() else "file"  # follows the link once, to name it
    except OSError:  # a link to itself (ELOOP) or another unresolvable target
        return "link (unresolvable)"
