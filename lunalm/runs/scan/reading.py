"""Reading files that ``luna scan`` does not trust: size caps, binary sniffing, JSON with a size limit, and
a streaming line reader whose memory does not depend on the file's size.

Nothing here executes or unpickles anything; every open goes through :func:`open_binary` (one place to
audit, and the one place tests patch to simulate an unreadable file when they run as root).
"""

from __future__ import annotations

import codecs
import hashlib
import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

SNIFF_BYTES = 8192  # enough to tell text from binary, as file(1) does
CHUNK_BYTES = 1 << 20  # logs are read 1 MB at a time
MAX_LINE_CHARS = 16_384  # a longer line is cut to its start (a minified blob is not a log line)
LOG_HEAD_BYTES = 8 << 20  # a huge log is read at its start ...
LOG_TAIL_BYTES = 8 << 20  # ... and at its end (where a crash is); the middle is skipped
MAX_SKIPPED_LISTED = 1000  # ScanStats.skipped keeps this many entries; skipped_total counts them all
SECONDS_PER_FILE = 20.0  # a file that takes longer to read is given up (the scan goes on with the next)
_CHECK_EVERY = 4096  # lines between two looks at the clock

# Bytes that occur in text: printable ASCII and every byte >= 0x80 (UTF-8 and code pages), plus
# BEL, BS, TAB, LF, FF, CR, ESC (ANSI colours in logs). Whatever is left after deleting them is binary.
_NUL_RUNS = re.compile(rb"\0+")
MAX_NUL_RUNS = 4  # more separate runs of NUL bytes than this in the first 8 KB: binary (or UTF-16 without BOM)
_TEXT_BYTES = bytes({7, 8, 9, 10, 12, 13, 27} | set(range(0x20, 0x100)) - {0x7F})


class Unreadable(Exception):
    """A file the scan skips; ``str()`` is the reason recorded in ``ScanStats.skipped``."""


@dataclass
class ScanStats:
    """What a scan looked at; the CLI prints it, the benchmark divides by it."""

    files_seen: int = 0  # regular files met in the walk (opened or not)
    bytes_read: int = 0  # bytes actually read from disk
    attempts: int = 0  # attempts yielded
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason), the first 1000
    skipped_total: int = 0  # all skips, including those beyond the list
    dirs_seen: int = 0
    deadline: float | None = None  # time.monotonic() by which the file being read must be done

    def check_time(self) -> None:
        """Raise ``Unreadable`` when the file being read has used up its time (see ``SECONDS_PER_FILE``)."""
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise Unreadable("gave up: reading it took too long (a hostile or pathological file?)")

    def skip(self, path: str, reason: str) -> None:
        self.skipped_total += 1
        if len(self.skipped) < MAX_SKIPPED_LISTED:
            self.skipped.append((path, reason))


def open_binary(path: str):
    """Open ``path`` for reading bytes (the only way this package opens a scanned file)."""
    return open(path, "rb")


def sniff_encoding(head: bytes) -> str:
    """The codec for a file starting with ``head``; raises ``Unreadable`` for binary content.

    UTF-16 is accepted only with a BOM (PowerShell's ``Tee-Object`` writes such logs); without one its
    NUL bytes make it look binary, which is the safe side.
    """
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if b"\0" in head:
        # A log cut by a crash or a full disk can hold a run of NUL bytes where the file system had
        # reserved space (217 of them in a real GPT-2 fine-tuning log, then the next run's lines): a few
        # runs of NULs in otherwise plain text are read as text, without them (``_decoded``).
        text = head.replace(b"\0", b"")
        if len(_NUL_RUNS.findall(head)) > MAX_NUL_RUNS or not text or \
                len(text.translate(None, _TEXT_BYTES)) > len(text) // 10:
            raise Unreadable("binary file (NUL bytes)")
        head = text
    if head and len(head.translate(None, _TEXT_BYTES)) > len(head) // 10:
        raise Unreadable("binary file (control bytes)")
    return "utf-8"


def read_bytes(path: str, stats: ScanStats, max_bytes: int, what: str) -> bytes:
    """The whole file, refusing one larger than ``max_bytes`` (JSON and Python must be parsed whole)."""
    size = os.path.getsize(path)
    if size > max_bytes:
        raise Unreadable(f"too large for a {what} ({size / 1e6:.1f} MB > {max_bytes / 1e6:.0f} MB)")
    with open_binary(path) as handle:
        data = handle.read(max_bytes + 1)
    stats.bytes_read += len(data)
    return data


def content_digest(paths: list[str], stats: ScanStats) -> str | None:
    """A folder run's identity by content, not by path: a digest of its record files (size, first and
    last MB of each that exists), so that a run folder renamed or moved is known again (the registry's
    ``_forget_moved``). None when none of ``paths`` can be read."""
    digest, found = hashlib.sha256(), False
    for path in paths:
        try:
            with open_binary(path) as handle:
                size = os.fstat(handle.fileno()).st_size
                head = handle.read(CHUNK_BYTES)
                handle.seek(max(size - CHUNK_BYTES, len(head)))
                tail = handle.read(CHUNK_BYTES)
        except OSError:
            continue
        stats.bytes_read += len(head) + len(tail)
        digest.update(f"{os.path.basename(path)}\0{size}\0".encode() + head + tail)
        found = True
    return digest.hexdigest()[:16] if found else None


def read_json(path: str, stats: ScanStats, max_bytes: int, what: str = "JSON file"):
    """Parsed JSON (``NaN``/``Infinity`` accepted: Hugging Face writes them); ``Unreadable`` if invalid."""
    data = read_bytes(path, stats, max_bytes, what)
    if b"\0" in data[:SNIFF_BYTES] and not data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise Unreadable("binary file (NUL bytes)")
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise Unreadable(f"invalid JSON: {str(error)[:200]}") from None


class TextLines:
    """Lines of a text file, streamed: its first ``head_bytes`` and last ``tail_bytes`` (the middle of a
    bigger file is skipped and counted in ``skipped_bytes``).

    Iterating yields ``(line_number, text)``; line numbers count "\\n" as an editor does, so the
    "\\r"-separated updates of one tqdm bar share a number. Lines read from the tail have number ``None``
    (how many lines the skipped middle held is unknown). Memory stays at about one chunk plus one line.
    """

    def __init__(self, path: str, stats: ScanStats, head_bytes: int = LOG_HEAD_BYTES,
                 tail_bytes: int = LOG_TAIL_BYTES):
        self.path, self.stats = path, stats
        self.head_bytes, self.tail_bytes = head_bytes, tail_bytes
        self.skipped_bytes = 0

    def __iter__(self) -> Iterator[tuple[int | None, str]]:
        with open_binary(self.path) as handle:
            head = handle.read(SNIFF_BYTES)
            self.stats.bytes_read += len(head)
            encoding = sniff_encoding(head)
            size = os.fstat(handle.fileno()).st_size
            whole = size <= self.head_bytes + self.tail_bytes
            first = self.head_bytes if not whole else size
            yield from _timed(_numbered(_decoded(head, handle, first - len(head), encoding, self.stats)),
                              self.stats)
            if whole:
                return
            start = size - self.tail_bytes
            start += start % 2 if encoding == "utf-16" else 0  # stay on a code-unit boundary
            self.skipped_bytes = start - self.head_bytes
            handle.seek(start)
            lines = _numbered(_decoded(b"", handle, size - start, encoding.replace("-sig", ""), self.stats))
            next(lines, None)  # the first tail line starts somewhere inside a line
            yield from ((None, text) for _, text in _timed(lines, self.stats))


def _timed(lines: Iterator[tuple[int, str]], stats: ScanStats) -> Iterator[tuple[int, str]]:
    """``lines``, looking at the clock every few thousand of them (see ``ScanStats.check_time``)."""
    for count, item in enumerate(lines):
        if count % _CHECK_EVERY == 0:
            stats.check_time()
        yield item


def _decoded(first: bytes, handle, limit: int, encoding: str, stats: ScanStats) -> Iterator[str]:
    """Text of ``first`` then up to ``limit`` more bytes of ``handle``, decoded chunk by chunk."""
    decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
    if first:
        yield decoder.decode(first).replace("\0", "")
    while limit > 0:
        chunk = handle.read(min(CHUNK_BYTES, limit))
        if not chunk:
            break
        limit -= len(chunk)
        stats.bytes_read += len(chunk)
        yield decoder.decode(chunk).replace("\0", "")  # NUL padding left by a crash (see sniff_encoding)
    yield decoder.decode(b"", final=True)


def _numbered(pieces: Iterator[str]) -> Iterator[tuple[int, str]]:
    """Split decoded text into lines with their 1-based line numbers; "\r" splits a line into segments
    that share its number ("\r\n" leaves an empty one, ignored). A line longer than MAX_LINE_CHARS is
    yielded cut as soon as it is that long, and the rest of it is skipped."""
    number, pending, dropping = 1, "", False
    for piece in pieces:
        if dropping:  # inside an overlong line: skip to its end
            end = piece.find("\n")
            if end < 0:
                yield number, ""  # nothing to read, but the caller may want to stop (see logs.read_log)
                continue
            piece, number, dropping = piece[end + 1:], number + 1, False
        lines = (pending + piece).split("\n")
        pending = lines.pop()
        for line in lines:
            if "\r" in line:
                for segment in line.split("\r"):
                    yield number, segment[:MAX_LINE_CHARS]
            else:
                yield number, line[:MAX_LINE_CHARS]
            number += 1
        if len(pending) > MAX_LINE_CHARS:  # no "\n" for a long while: a progress bar, or not text at all
            done, separator, pending = pending.rpartition("\r")
            for segment in done.split("\r") if separator else ():
                yield number, segment[:MAX_LINE_CHARS]
            if len(pending) > MAX_LINE_CHARS:
                yield number, pending[:MAX_LINE_CHARS]
                pending, dropping = "", True
    if pending:
        for segment in pending.split("\r"):
            yield number, segment
