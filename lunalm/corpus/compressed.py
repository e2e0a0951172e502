"""Compressed corpus files, read as streams: ``.gz``, ``.bz2`` and ``.xz`` through the standard library,
``.zst`` through ``zstandard`` (OSCAR and many crawl dumps ship ``.jsonl.zst``). The inner suffix
(``notes.txt.xz``, ``part-01.jsonl.zst``) says how the decompressed bytes are read.

A compressed file under a plain name (``corpus.txt`` that is really gzip) and archives of many files
(zip, 7-Zip, RAR, tar) are named by their magic numbers (``what_is``), so the error says what to do
instead of "contains NUL bytes".
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import zlib
from pathlib import Path
from typing import BinaryIO

from lunalm.config import COMPRESSED_SUFFIXES as COMPRESSED
from lunalm.errors import CorpusError

BUFFER_BYTES = 1 << 20

# What a broken or truncated compressed stream raises besides OSError/EOFError (zstandard's error is
# added where the package is installed).
READ_ERRORS: tuple[type[BaseException], ...] = (OSError, EOFError, lzma.LZMAError, zlib.error)
try:
    import zstandard

    READ_ERRORS += (zstandard.ZstdError,)
except ImportError:  # pragma: no cover - a dependency; only .zst files need it
    zstandard = None

# Magic numbers of compressed files and archives: (prefix, what it is, the suffix lunalm reads it by or
# None for an archive of several files).
_MAGIC = (
    (b"\x1f\x8b", "gzip-compressed", ".gz"), (b"BZh", "bzip2-compressed", ".bz2"),
    (b"\xfd7zXZ\x00", "xz-compressed", ".xz"), (b"\x28\xb5\x2f\xfd", "zstd-compressed", ".zst"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive", None), (b"Rar!\x1a\x07", "a RAR archive", None),
)


def patterns_text(include: tuple[str, ...]) -> str:
    """``include`` for a message, each pattern's compressed forms folded into one note: "*.txt, *.md (also
    .gz .bz2 .xz .zst)" rather than twelve patterns."""
    packed = {p for p in include if any(p.endswith(suffix) for suffix in COMPRESSED)}
    plain = [p for p in include if p not in packed]
    folded = [p for p in plain if all(p + suffix in packed for suffix in COMPRESSED)]
    if not folded or packed - {p + suffix for p in folded for suffix in COMPRESSED}:
        return ", ".join(include)
    return ", ".join(plain) + f" ({' '.join(folded)} also as {' '.join(COMPRESSED)})"


def is_compressed(path: Path) -> bool:
    return path.suffix.lower() in COMPRESSED


def inner_suffix(path: Path) -> str:
    """The suffix that says how the text is laid out: ``.jsonl`` for ``rows.jsonl.zst``."""
    return Path(path.stem).suffix.lower() if is_compressed(path) else path.suffix.lower()


class _Stream(io.BufferedReader):
    """The decompressed bytes, buffered (``peek`` for sniffing); ``stored`` is the file on disk, whose
    position is the progress through it; closing closes both."""

    def __init__(self, inner, stored: BinaryIO):
        super().__init__(inner, BUFFER_BYTES)
        self.stored = stored

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.stored.close()


def open_compressed(path: Path, stored: BinaryIO) -> BinaryIO:
    """``stored`` (the file opened in binary) decompressed by ``path``'s suffix."""
    kind = path.suffix.lower()
    if kind == ".gz":
        inner = gzip.GzipFile(fileobj=stored, mode="rb")
    elif kind == ".bz2":
        inner = bz2.BZ2File(stored)
    elif kind == ".xz":
        inner = lzma.LZMAFile(stored)
    elif zstandard is None:
        stored.close()
        raise CorpusError(f"{path}: reading .zst files needs the zstandard package (pip install zstandard), "
                          f"or decompress it first: zstd -d '{path}'")
    else:
        inner = _ZstdFrames(stored)
    return _Stream(inner, stored)


class _ZstdFrames(io.RawIOBase):
    """The frames of a .zst file one after another (``zstd`` writes several for streamed input), and an
    error for a file cut inside a frame: zstandard's stream reader returns what it has, silently."""

    def __init__(self, stored: BinaryIO):
        self.stored, self.frame, self.pending = stored, None, b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self.pending:
            packed = self.stored.read(BUFFER_BYTES)
            if not packed:
                if self.frame is not None and not self.frame.eof:
                    raise EOFError("the file ends inside a zstd frame")
                return 0
            self.pending = self._unpack(packed)
        size = min(len(buffer), len(self.pending))
        buffer[:size], self.pending = self.pending[:size], self.pending[size:]
        return size

    def _unpack(self, packed: bytes) -> bytes:
        out = []
        while packed:
            if self.frame is None or self.frame.eof:
                self.frame = zstandard.ZstdDecompressor().decompressobj()
            out.append(self.frame.decompress(packed))
            packed = self.frame.unused_data if self.frame.eof else b""
        return b"".join(out)


def what_is(head: bytes, path: Path) -> str | None:
    """Why a file read as plain text is not: a compressed file or archive by its magic number, with
    what to do; None otherwise."""
    for magic, what, suffix in _MAGIC:
        if head.startswith(magic) and (magic != b"BZh" or (head[3:4].isdigit() and head[4:10] == b"1AY&SY")):
            if suffix is None:
                return f"{path}: this is {what}, not text; extract it and pass the extracted folder"
            return (f"{path}: this file is {what}, not plain text; name it {path.name}{suffix} "
                    f"(lunalm reads {', '.join(COMPRESSED)} files as they are) or decompress it")
    if head[257:262] == b"ustar":  # a tar header's magic (POSIX), after the decompression of a .tar.gz
        return (f"{path}: this is a tar archive of several files, not text; extract it (tar xf {path.name}) and "
                "pass the extracted folder")
    return None
