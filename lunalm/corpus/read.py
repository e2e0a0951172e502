"""Finding corpus files and reading them as raw (decoded, repaired, not yet cleaned) documents.

A ``.txt``/``.md`` file is one document; a file longer than ``max_document_chars`` is cut at paragraph
breaks so memory stays flat on a 1 GB file. A ``.jsonl`` line is one document (its ``text_field``, or the
line itself where it is a JSON string), so is a record of a ``.json`` array, and
so is a row of a ``.parquet``/``.arrow``/``.csv``/``.tsv`` file (``lunalm.corpus.tables``).
``.gz``, ``.bz2``, ``.xz`` and ``.zst`` files are decompressed as they are read
(``lunalm.corpus.compressed``). Files are read in blocks ending at a newline, each block decoded and
repaired by ``lunalm.corpus.encoding``. WikiExtractor's output is known by its first line, whatever the
file's name: one document per article (``lunalm.corpus.wiki``).
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from lunalm.corpus.compressed import (COMPRESSED, READ_ERRORS, inner_suffix, is_compressed, open_compressed,
                                      patterns_text, what_is)
from lunalm.config import DEFAULT_INCLUDE
from lunalm.corpus.encoding import Decoded, decode_bytes, repair_text
from lunalm.errors import CorpusError

BLOCK_BYTES = 4 << 20  # decode in ~4 MB blocks cut at a newline
SNIFF_BYTES = 8192

# Magic numbers of files people drop into corpus folders by mistake.
_MAGIC = (
    (b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"), (b"GIF8", "a GIF image"),
    (b"PK\x03\x04", "a zip archive (also .pt checkpoints, .docx, .xlsx)"), (b"%PDF", "a PDF document"),
    (b"\x7fELF", "an executable"), (b"\x80\x02", "a Python pickle"), (b"\x80\x03", "a Python pickle"),
    (b"\x80\x04", "a Python pickle"), (b"\x80\x05", "a Python pickle"), (b"SQLite format 3", "an SQLite database"),
)


@dataclass
class RawDocument:
    """One document as read from disk, before cleaning."""

    text: str
    source: str  # the file path
    encoding: str
    repaired_chars: int = 0
    name: str = ""  # a finer label for reports: "file:line" for JSONL, the speech id for the built-in corpus
    repaired_sequences: int = 0  # mojibake sequences undone (lost-byte sites included)
    recovered_bytes: int = 0  # bytes a code page had dropped, rebuilt
    unrecoverable_lines: tuple[int, ...] = ()  # line in the file of each lost-byte site left as it was
    read_bytes: int | None = None  # bytes of the file (as stored: compressed for .gz) read by the time this
    #                                document was; None where unknown (tables, the built-in corpus)


def discover(paths: list[str] | tuple[str, ...], include: tuple[str, ...], exclude: tuple[str, ...]) -> list[Path]:
    """Expand files and directories (recursively) into a sorted list of files to read."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.exists():
            if path.is_symlink():
                raise CorpusError(f"{raw}: a link to {os.readlink(path)}, which does not exist; point it at the "
                                  "moved file or pass the file itself")
            raise CorpusError(f"{raw}: no such file or directory; pass an existing text file or folder")
        if path.is_file():
            files.append(path)
            continue
        outputs: dict[Path, bool] = {}
        default = tuple(include) == DEFAULT_INCLUDE  # the default also reads WikiExtractor's suffix-less files
        found = [f for f in sorted(path.rglob("*")) if _wanted(f, path, include, exclude, outputs)
                 or default and _extracted(f, path, exclude, outputs)]
        if not found:
            raise _no_files(raw, path, include, exclude)
        files.extend(found)
    return files


def _no_files(raw: str, root: Path, include: tuple[str, ...], exclude: tuple[str, ...]) -> CorpusError:
    """The error for a folder with no file to read: what it holds instead, and the flags that read it."""
    from lunalm.corpus.wiki import suffixless_hint

    others = sorted({f.suffix.lower() for f in root.rglob("*") if f.suffix and _wanted(f, root, ("*",), exclude)})
    readable = [suffix for suffix in others if suffix in (".csv", ".tsv", ".json", ".parquet", ".arrow",
                                                          ".jsonl", ".txt", ".md", *COMPRESSED)]
    flags = " ".join(f"--include '*{suffix}'" for suffix in readable)
    hint = suffixless_hint(root, [f for f in sorted(root.rglob("*")) if not inner_suffix(f)
                                  and _wanted(f, root, ("*",), exclude)])
    return CorpusError(
        f"{raw}: directory has no files matching {patterns_text(include)}"
        + (f" (excluding {', '.join(exclude)})" if exclude else "")
        + (f"; it holds {', '.join(others[:8])} files" if others else "")
        + (f"; to read them add {flags} (tables and JSON arrays also need --text-field COLUMN)" if readable
           else "" if hint else "; add text files or change --include")
        + (f"; {hint}" if hint else "")
    )


def _extracted(file: Path, root: Path, exclude: tuple[str, ...], outputs: dict[Path, bool]) -> bool:
    """A file with no suffix inside ``root`` that is WikiExtractor output (``lunalm.corpus.wiki``)."""
    from lunalm.corpus.wiki import extractor_output

    return not inner_suffix(file) and _wanted(file, root, ("*",), exclude, outputs) and extractor_output(file)


def broken_links(paths: list[str] | tuple[str, ...], include: tuple[str, ...], exclude: tuple[str, ...]) -> str | None:
    """A note naming the links inside the given folders that ``include`` would read but that point at no
    file (the file was moved or deleted); None when there are none. They were left out without a word."""
    broken = []
    for raw in paths:
        root = Path(raw).expanduser()
        if root.is_dir():
            broken += [f for f in sorted(root.rglob("*")) if f.is_symlink() and not f.exists()
                       and _matches(f, root, include, exclude)]
    if not broken:
        return None
    names = ", ".join(f"{f} -> {os.readlink(f)}" for f in broken[:3]) + \
        (f" and {len(broken) - 3} more" if len(broken) > 3 else "")
    return (f"not read: {len(broken)} link(s) to a file that does not exist ({names}); point them at the moved "
            "files or delete them")


def unread_tables(paths: list[str] | tuple[str, ...], include: tuple[str, ...], exclude: tuple[str, ...]) -> str | None:
    """A note naming the table files (CSV, TSV, Parquet, Arrow) and JSON arrays (``.json``) inside the given
    folders that ``include`` leaves out, and how to read them; None when there are none. A folder holding one
    ``.tsv`` and a ``README.txt`` would otherwise train on the README alone."""
    from lunalm.corpus.tables import TABLE_SUFFIXES

    left, used = [], set()
    for raw in paths:
        root = Path(raw).expanduser()
        if root.is_dir():
            files = sorted(root.rglob("*"))
            left += [f for f in files if f.suffix.lower() in TABLE_SUFFIXES + (".json",)
                     and _wanted(f, root, ("*",), exclude) and not _wanted(f, root, include, exclude)]
            used |= {pattern for pattern in include for f in files if _wanted(f, root, (pattern,), exclude)}
    if not left:
        return None
    size = sum(f.stat().st_size for f in left)
    names = ", ".join(f.name for f in left[:3]) + (f" and {len(left) - 3} more" if len(left) > 3 else "")
    patterns = " ".join(f"--include '*{suffix}'" for suffix in sorted({f.suffix for f in left}))
    kept = " ".join(f"--include '{pattern}'" for pattern in include if pattern in used)
    also = (f" and, to keep the {len(used)} kind(s) of file read now (--include replaces the default list), "
            f"{kept}") if kept else ""
    kind = "table or JSON" if any(f.suffix.lower() == ".json" for f in left) else "table"
    return (f"not read: {len(left)} {kind} file(s) ({names}; {size / 1e6:.1f} MB) that --include leaves out; "
            f"to train on their rows add {patterns} --text-field COLUMN{also}")


def unread_notes(paths: list[str] | tuple[str, ...], include: tuple[str, ...], exclude: tuple[str, ...]) -> list[str]:
    """What plan, train and analyze say about the given folders' files they will not read: tables, JSON
    arrays and WikiExtractor output ``include`` leaves out, links to missing files."""
    from lunalm.corpus.wiki import unread_extracts

    if not paths:
        return []
    return [note for note in (unread_tables(paths, include, exclude), unread_extracts(paths, include, exclude),
                              broken_links(paths, include, exclude), unread_outputs(paths),
                              tables_as_text(paths, include, exclude)) if note]


_COLUMN_NAME = re.compile(r"(\"?)[^\W\d][\w.-]{0,40}\1")  # poem_text, "rank": no spaces (prose has them)
TABLE_CHECKED_FILES = 200  # text files whose first line is looked at


def tables_as_text(paths: list[str] | tuple[str, ...], include: tuple[str, ...], exclude: tuple[str, ...]) -> str | None:
    """A note naming the text files (``.txt``, ``.md``) that are tables saved under a text name: a first line
    of column names with a comma, tab or semicolon between them, and a second line with as many; None when
    there are none. Yunyus/Turkish-Poem-GPT's turkish_poems.txt (poem_name,poet_name,poem_text,rank) was read
    as one document, its header and quotes kept."""
    try:
        files = [f for f in discover(paths, include, exclude) if f.suffix.lower() in (".txt", ".md")]
    except CorpusError:
        return None  # reading the corpus says what is wrong
    found = []
    for file in files[:TABLE_CHECKED_FILES]:
        try:
            with open(file, "rb") as handle:
                lines = handle.read(1 << 16).decode("utf-8", "replace").lstrip("\ufeff").splitlines()
        except OSError:
            continue
        if len(lines) < 2:
            continue
        for delimiter in (",", "\t", ";"):
            names = lines[0].rstrip().split(delimiter)
            if len(names) >= 2 and all(_COLUMN_NAME.fullmatch(name) for name in names) \
                    and lines[1].count(delimiter) >= len(names) - 1:
                found.append((file, [name.strip('"') for name in names],
                              {",": ".csv", "\t": ".tsv", ";": ".csv"}[delimiter]))
                break
    if not found:
        return None
    file, names, suffix = found[0]
    more = f" (and {len(found) - 1} more such file(s))" if len(found) > 1 else ""
    text = next((name for name in names if any(word in name.lower() for word in _TEXT_WORDS)), "COLUMN")
    return (f"{file} looks like a table saved as text (columns: {', '.join(names)}){more}: it is read as one text, "
            f"its header and quotes included. To train on its rows, rename it to {file.stem}{suffix} and add "
            f"--include '*{suffix}' --text-field {text}")


_TEXT_WORDS = ("text", "metin", "content", "body", "icerik", "içerik", "mətn", "tweet", "sentence", "cümle")


def unread_outputs(paths: list[str] | tuple[str, ...]) -> str | None:
    """A note naming the folders inside the given ones that a training run wrote (``output_folder``: runs,
    checkpoints, exported models), which are not read; None when there are none."""
    found = []
    for raw in paths:
        root = Path(raw).expanduser()
        if not root.is_dir():
            continue
        for folder, subfolders, _ in os.walk(root):
            subfolders[:] = sorted(name for name in subfolders if not name.startswith("."))
            if Path(folder) != root and output_folder(Path(folder)):
                found.append(Path(folder))
                subfolders[:] = []  # the top-most one names what is left out
    if not found:
        return None
    names = ", ".join(str(folder) for folder in found[:3]) + (f" and {len(found) - 3} more" if len(found) > 3 else "")
    return (f"not read: {len(found)} folder(s) a training run wrote ({names}: runs, checkpoints or exported "
            "models, whose logs and samples are no corpus)")


def _wanted(file: Path, root: Path, include: tuple[str, ...], exclude: tuple[str, ...],
            outputs: dict[Path, bool] | None = None) -> bool:
    return file.is_file() and _matches(file, root, include, exclude, outputs)


def _matches(file: Path, root: Path, include: tuple[str, ...], exclude: tuple[str, ...],
             outputs: dict[Path, bool] | None = None) -> bool:
    """``file``'s name (and path below ``root``) is one the patterns read: not hidden, included, not excluded,
    not in a folder a training run wrote (``output_folder``; ``outputs`` caches the verdicts per folder)."""
    relative = file.relative_to(root).as_posix()
    if any(part.startswith(".") for part in file.relative_to(root).parts):
        return False
    if not any(fnmatch.fnmatch(file.name, pattern) for pattern in include):
        return False
    if any(fnmatch.fnmatch(file.name, p) or fnmatch.fnmatch(relative, p) for p in exclude):
        return False
    outputs = {} if outputs is None else outputs
    for folder in file.parents:
        if folder == root or root not in folder.parents:
            break
        if folder not in outputs:
            outputs[folder] = output_folder(folder)
        if outputs[folder]:
            return False
    return True


# What marks a folder that a training run wrote: lunalm's runs folder (its registry), a run (its event log
# beside its config), a checkpoint or an exported model (weights), a Trainer's output. Their files
# (events.jsonl, samples.md, config.json, a model card) are no corpus: `luna train data/` puts runs/ inside
# data/, and the next `luna analyze data/` stopped at "runs/NAME/events.jsonl:1: no field 'text'".
_OUTPUT_MARKS = (("registry.sqlite",), ("events.jsonl", "config.yaml"), ("lunalm.json",), ("model.safetensors",),
                 ("pytorch_model.bin",), ("trainer_state.json",))


def output_folder(folder: Path) -> bool:
    """Whether ``folder`` is one a training run wrote (``_OUTPUT_MARKS``)."""
    return any(all((folder / name).exists() for name in names) for names in _OUTPUT_MARKS)


def _open(path: Path) -> BinaryIO:
    try:
        stored = open(path, "rb")
    except PermissionError:
        raise CorpusError(f"{path}: permission denied; make it readable (chmod +r) or exclude it") from None
    except IsADirectoryError:
        raise CorpusError(f"{path}: is a directory, expected a file") from None
    return open_compressed(path, stored) if is_compressed(path) else stored


def _sniff_binary(head: bytes, path: Path) -> None:
    compressed = what_is(head, path)
    if compressed:
        raise CorpusError(compressed)
    for magic, what in _MAGIC:
        if head.startswith(magic):
            hint = ""
            if magic == b"PK\x03\x04" and path.suffix.lower() == ".zip":
                hint = f"; if it holds the text, extract it (unzip {path.name}) and pass the extracted folder"
            elif magic == b"PK\x03\x04" and path.suffix.lower() in (".docx", ".odt"):
                hint = "; save it as plain text (.txt) from its editor and pass that"
            elif magic == b"%PDF":
                hint = "; extract its text first (pdftotext, or your reader's 'save as text')"
            raise CorpusError(f"{path}: this is {what}, not text; remove it from the corpus or --exclude it{hint}")
    if b"<mediawiki" in head[:4096] and b"<siteinfo>" in head:
        raise CorpusError(f"{path}: a MediaWiki XML dump (wiki markup inside XML), not text; extract its articles "
                          f"first: pip install wikiextractor, then `python -m wikiextractor.WikiExtractor {path.name} "
                          "--json -o wiki_text`, and pass the wiki_text folder")
    if b"\x00" in head and not _looks_utf16(head):
        raise CorpusError(f"{path}: contains NUL bytes, so it is binary, not text; "
                          "remove it from the corpus or --exclude it")


def _looks_utf16(head: bytes) -> bool:
    if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return True
    sample = head[: len(head) // 2 * 2]
    even, odd = sample[0::2].count(0), sample[1::2].count(0)
    return max(even, odd) > 0.3 * (len(sample) // 2) and min(even, odd) < 0.05 * (len(sample) // 2)


def read_file(path: Path, text_field: str = "text", max_document_chars: int = 1_000_000) -> Iterator[RawDocument]:
    """Yield the raw documents of one file (see module docstring)."""
    from lunalm.corpus.tables import TABLE_SUFFIXES, read_table

    layout = inner_suffix(path)
    if path.suffix in TABLE_SUFFIXES or layout in (".csv", ".tsv"):  # Parquet / Arrow / CSV / TSV (a CSV/TSV
        #                                                                    maybe compressed): one row, one document
        label = EncodingLabel()  # CSV/TSV: what decoding found so far (Parquet/Arrow hold UTF-8 strings)
        for row, text in enumerate(read_table(path, text_field, label)):
            yield RawDocument(text, str(path), label.encoding or path.suffix[1:], name=f"{path}:{row + 1}")
        return
    from lunalm.corpus.wiki import head_kind, read_articles

    with _open(path) as handle:
        try:
            head = handle.peek(SNIFF_BYTES)[:SNIFF_BYTES] if hasattr(handle, "peek") else b""
        except READ_ERRORS as exc:
            raise CorpusError(f"{path}: cannot be read ({exc}); is the {path.suffix} file complete?") from None
        _sniff_binary(head, path)
        kind = head_kind(head, layout) if layout not in (".jsonl", ".json") else None
        if layout == ".jsonl" or kind in ("json", "records"):  # WikiExtractor --json writes no suffix
            yield from _read_jsonl(handle, path, text_field, _position(handle))
        elif layout == ".json":
            yield from _read_json(handle, path, text_field)
        elif kind == "doc":
            yield from read_articles(handle, path, head, max_document_chars, _position(handle))
        else:
            yield from _read_text(handle, path, head, max_document_chars, _position(handle))


def _position(handle: BinaryIO):
    """How many bytes of the file on disk ``handle`` has read (read-ahead included): the compressed bytes
    of a compressed file."""
    stored = getattr(handle, "stored", None) or getattr(handle, "raw", None) or handle
    return stored.tell


def _read_blocks(handle: BinaryIO, path: Path) -> Iterator[bytes]:
    """~BLOCK_BYTES blocks, each ending at a newline (except the last)."""
    carry = b""
    try:
        while True:
            block = handle.read(BLOCK_BYTES)
            if not block:
                break
            data = carry + block
            cut = data.rfind(b"\n") + 1
            if cut == 0:
                carry = data
                continue
            carry = data[cut:]
            yield data[:cut]
    except READ_ERRORS as exc:
        raise CorpusError(f"{path}: read failed ({exc}); is the file complete?") from None
    if carry:
        yield carry


def decoded_blocks(handle: BinaryIO, path: Path, head: bytes) -> Iterator[Decoded]:
    """The file in blocks ending at a newline, each decoded and repaired (``lunalm.corpus.encoding``); a
    UTF-16 file as one block (its newline bytes are two wide; UTF-16 files are small)."""
    blocks = iter([handle.read()]) if _looks_utf16(head) else _read_blocks(handle, path)
    offset = 0
    for block in blocks:
        yield decode_bytes(block, source=f"{path} (block at byte {offset})")
        offset += len(block)


@dataclass
class EncodingLabel:
    """A file's encoding as its blocks show it: the block with the most letters outside ASCII names it (a
    first line "Missoni tutkunu" says nothing, and one with "ü" alone reads the same in ISO-8859-1 as in
    ISO-8859-9)."""

    encoding: str = ""
    most: int = -1

    def see(self, decoded: Decoded) -> None:
        beyond = 0 if decoded.text.isascii() else len(decoded.text.encode("utf-8", "surrogatepass")) - len(decoded.text)
        if beyond > self.most:
            self.encoding, self.most = decoded.encoding, beyond


def _read_text(handle: BinaryIO, path: Path, head: bytes, max_chars: int, position) -> Iterator[RawDocument]:
    pending: list[str] = []
    pending_chars, label, repairs = 0, EncodingLabel(), _Repairs()
    lines_before, read = 0, 0
    for decoded in decoded_blocks(handle, path, head):
        label.see(decoded)
        encoding = label.encoding
        repairs.add(decoded, lines_before)
        lines_before += decoded.text.count("\n")
        pending.append(decoded.text)
        pending_chars += len(decoded.text)
        per_char, read = (position() - read) / max(1, len(decoded.text)), position()
        while pending_chars > max_chars:
            text = "".join(pending)
            cut = _paragraph_cut(text, max_chars)
            pending, pending_chars = [text[cut:]], len(text) - cut
            yield RawDocument(text[:cut], str(path), encoding, **repairs.take(),
                              read_bytes=read - round(pending_chars * per_char))  # less the text still held
    text = "".join(pending)
    if text.strip():
        yield RawDocument(text, str(path), encoding, **repairs.take(), read_bytes=position())


@dataclass
class _Repairs:
    """Repair figures gathered over a file's blocks until the next document takes them."""

    chars: int = 0
    sequences: int = 0
    recovered: int = 0
    unrecoverable: tuple[int, ...] = ()

    def add(self, decoded: Decoded, lines_before: int) -> None:
        self.chars += decoded.repaired_chars
        self.sequences += decoded.repaired_sequences
        self.recovered += decoded.recovered_bytes
        self.unrecoverable += tuple(lines_before + line for line in decoded.unrecoverable_lines)

    def take(self) -> dict:
        taken = {"repaired_chars": self.chars, "repaired_sequences": self.sequences,
                 "recovered_bytes": self.recovered, "unrecoverable_lines": self.unrecoverable}
        self.__init__()
        return taken


def _paragraph_cut(text: str, max_chars: int) -> int:
    """Index just after the last paragraph break (else line break, else sentence end, else space, else
    max_chars) before max_chars: a line of a million characters is not cut inside a word."""
    for separator in ("\n\n", "\n", ". ", " "):
        position = text.rfind(separator, 0, max_chars)
        if position > 0:
            return position + len(separator)
    return max_chars


def _read_json(handle: BinaryIO, path: Path, text_field: str) -> Iterator[RawDocument]:
    """A ``.json`` data set as people export them: an array of records (or of strings), or an object
    holding one such array (``{"data": [...]}``). Each record's ``text_field`` is one document. The file is
    parsed whole (a JSON array cannot be streamed with the standard library): fine for the data sets of a
    few hundred MB that are published this way; larger ones belong in JSONL."""
    try:
        decoded = decode_bytes(handle.read(), source=str(path))
        data = json.loads(decoded.text)
    except json.JSONDecodeError as exc:
        raise CorpusError(f"{path}: malformed JSON ({exc}); fix the file, or save one record per line as "
                          "JSONL") from None
    except READ_ERRORS as exc:
        raise CorpusError(f"{path}: read failed ({exc}); is the file complete?") from None
    if isinstance(data, dict):
        arrays = [key for key, value in data.items() if isinstance(value, list)]
        if len(arrays) != 1:
            raise CorpusError(f"{path}: a JSON object with {len(arrays)} arrays ({', '.join(arrays) or 'none'}); "
                              "expected an array of records, or an object holding exactly one")
        data = data[arrays[0]]
    if not isinstance(data, list):
        raise CorpusError(f"{path}: JSON {type(data).__name__} at the top; expected an array of records")
    for number, record in enumerate(data, start=1):
        value = _record_text(record, text_field, f"{path}: record {number}")
        if value.strip():
            repair = repair_text(value)
            yield RawDocument(repair.text, str(path), decoded.encoding, repair.repaired_chars, f"{path}:{number}",
                              repair.sequences, repair.recovered_bytes)


def text_fields(text_field: str) -> list[str]:
    """``"question,answer"`` -> ``["question", "answer"]``: the fields (or columns) whose texts, joined by
    FIELD_JOIN, make one document (a question-and-answer data set trains on both)."""
    return [name.strip() for name in text_field.split(",") if name.strip()] or [text_field]


FIELD_JOIN = "\n\n"


def _record_text(record, text_field: str, where: str) -> str:
    """The text of one JSON record: its ``text_field`` (several joined), or the record itself where it is
    a string."""
    if isinstance(record, str):
        return record
    if record is None:
        return ""  # a `null` line: no text, as a blank one
    if not isinstance(record, dict):
        raise CorpusError(f"{where}: a JSON {_json_kind(record)} where a record was expected: an object with the "
                          f"text in its '{text_fields(text_field)[0]}' field (--text-field), or a string")
    values = []
    for name in text_fields(text_field):
        if name not in record:
            keys = ", ".join(sorted(record)) or "no fields"
            raise CorpusError(f"{where}: no field '{name}' (found: {keys}); choose the field with --text-field")
        if record[name] is None:
            continue  # a missing value (exported data sets write `null`): no text, as parquet's nulls
        if isinstance(record[name], list) and all(isinstance(line, str) for line in record[name]):
            values.append("\n".join(record[name]))  # a poem or lyrics stored as a list of its lines
            continue
        if not isinstance(record[name], str):
            raise CorpusError(f"{where}: field '{name}' is a JSON {_json_kind(record[name])}, expected a string "
                              "(or a list of strings, its lines)")
        values.append(record[name])
    return join_fields(values)


def _json_kind(value) -> str:
    return {list: "array", dict: "object", bool: "true/false", int: "number", float: "number"}.get(type(value),
                                                                                                  "value")


def join_fields(values) -> str:
    """The non-blank texts of one record's fields as one document."""
    return FIELD_JOIN.join(value for value in values if value.strip())


def _read_jsonl(handle: BinaryIO, path: Path, text_field: str, position) -> Iterator[RawDocument]:
    for number, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CorpusError(f"{path}:{number}: malformed JSON ({exc}); fix or delete that line") from None
        repair = repair_text(_record_text(record, text_field, f"{path}:{number}"))
        yield RawDocument(repair.text, str(path), "utf-8", repair.repaired_chars, f"{path}:{number}",
                          repair.sequences, repair.recovered_bytes, (number,) * len(repair.unrecoverable_lines),
                          position())
