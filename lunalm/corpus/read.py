"""Reading corpus files as raw (decoded, repaired, not yet cleaned) documents (finding them, and the notes on
what is left unread: ``lunalm.corpus.discover``).

A ``.txt``/``.md`` file is one document; a file longer than ``max_document_chars`` is cut at paragraph
breaks so memory stays flat on a 1 GB file. A ``.jsonl`` line is one document (its ``text_field``, or the
line itself where it is a JSON string), so is a record of a ``.json`` array, and
so is a row of a ``.parquet``/``.arrow``/``.csv``/``.tsv`` file (``lunalm.corpus.tables``).
``.gz``, ``.bz2``, ``.xz`` and ``.zst`` files are decompressed as they are read
(``lunalm.corpus.compressed``). Files are read in blocks ending at a newline, each block decoded and
repaired by ``lunalm.corpus.encoding``. WikiExtractor's output is known by its first line, whatever the
file's name: one document per article (``lunalm.corpus.wiki``). Web pages, e-books, Word, LibreOffice and
PDF files are read as their text (``lunalm.corpus.documents``). Chat exports are read as their conversations:
Telegram's ``result.json`` and ``messages.html`` (``lunalm.corpus.telegram``), WhatsApp's text
(``lunalm.corpus.whatsapp``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from lunalm.corpus.compressed import READ_ERRORS, inner_suffix, is_compressed, open_compressed, what_is
from lunalm.corpus.encoding import Decoded, decode_bytes, repair_text
from lunalm.corpus.idlines import id_column, numbered, numbered_lines, strip_ids
from lunalm.corpus.markup import markup_error
from lunalm.corpus.telegram import chat_documents, telegram_chats
from lunalm.corpus.whatsapp import chat_lines, is_chat
from lunalm.errors import CorpusError

BLOCK_BYTES = 4 << 20  # decode in ~4 MB blocks cut at a newline
SNIFF_BYTES = 8192

# Magic numbers of files people drop into corpus folders by mistake.
_MAGIC = (
    (b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"), (b"GIF8", "a GIF image"),
    (b"PK\x03\x04", "a zip archive (also .pt checkpoints, .docx, .xlsx)"), (b"%PDF", "a PDF document"),
    (b"\x7fELF", "an executable"), (b"\x80\x02", "a Python pickle"), (b"\x80\x03", "a Python pickle"),
    (b"\x80\x04", "a Python pickle"), (b"\x80\x05", "a Python pickle"), (b"SQLite format 3", "an SQLite database"),
    (b"\xd0\xcf\x11\xe0", "an old Microsoft Office file (.doc, .xls)"),
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
            elif magic == b"PK\x03\x04" and path.suffix.lower() == ".xlsx":
                hint = "; save it as .csv from its editor and pass that with --text-field COLUMN"
            elif magic == b"\xd0\xcf\x11\xe0":
                hint = "; save it as .docx (or .txt) from its editor and pass that"
            elif magic == b"%PDF":
                hint = f"; name it {path.stem}.pdf to read its text"
            raise CorpusError(f"{path}: this is {what}, not text; remove it from the corpus or --exclude it{hint}")
    markup = markup_error(head, path, inner_suffix(path))
    if markup:
        raise CorpusError(markup)
    if b"\x00" in head and not _looks_utf16(head):
        raise CorpusError(f"{path}: contains NUL bytes, so it is binary, not text; "
                          "remove it from the corpus or --exclude it")


LFS_POINTER = b"version https://git-lfs.github.com/spec/v1\n"
LFS_POINTER_BYTES = 1024  # Git LFS pointer files are smaller than this (the spec's limit)


def _refuse_lfs_pointer(path: Path) -> None:
    """A Git LFS pointer file in the data's place: a Hugging Face dataset repository cloned without
    ``git lfs`` holds ``data/train-00000-of-00002.parquet`` files of three lines, which read as "Parquet magic
    bytes not found", and a pointer named ``.txt`` or ``.jsonl`` was read as text, or as malformed JSON."""
    try:
        if path.stat().st_size >= LFS_POINTER_BYTES:
            return
        with open(path, "rb") as handle:
            head = handle.read(LFS_POINTER_BYTES)
    except OSError:
        return  # reading it says what is wrong
    if head.startswith(LFS_POINTER):
        size = next((line.split()[1] for line in head.splitlines() if line.startswith(b"size ")), b"")
        to = f" to {int(size) / 1e6:,.1f} MB" if size.isdigit() else ""
        raise CorpusError(f"{path}: a Git LFS pointer{to}, not the data itself: the repository was cloned without Git LFS; "
                          "run `git lfs install` and `git lfs pull` inside it, or download the files themselves "
                          "(huggingface-cli download --repo-type dataset NAME, or --hf-dataset NAME)")


def _looks_utf16(head: bytes) -> bool:
    if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return True
    sample = head[: len(head) // 2 * 2]
    even, odd = sample[0::2].count(0), sample[1::2].count(0)
    return max(even, odd) > 0.3 * (len(sample) // 2) and min(even, odd) < 0.05 * (len(sample) // 2)


def read_file(path: Path, text_field: str = "text", max_document_chars: int = 1_000_000) -> Iterator[RawDocument]:
    """Yield the raw documents of one file (see module docstring)."""
    from lunalm.corpus.documents import document_suffix, read_document
    from lunalm.corpus.tables import TABLE_SUFFIXES, read_table

    _refuse_lfs_pointer(path)
    layout = inner_suffix(path)
    suffix = document_suffix(path)
    if suffix:  # a web page, an e-book, a Word, LibreOffice or PDF file
        yield from read_document(path, suffix, max_document_chars)
        return
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
        if layout == ".jsonl" or kind in ("json", "records") or layout == ".json" and _json_lines(path):
            #  WikiExtractor --json writes no suffix; mC4 names its JSON Lines c4-tr.tfrecord-00000-of-01024.json.gz
            yield from _read_jsonl(handle, path, text_field, _position(handle))
        elif layout == ".json":
            yield from _read_json(handle, path, text_field, max_document_chars)
        elif kind == "doc":
            yield from read_articles(handle, path, head, max_document_chars, _position(handle))
        elif layout == ".conllu":
            from lunalm.corpus.conllu import read_treebank

            yield from read_treebank(handle, path, head, max_document_chars, _position(handle))
        else:
            yield from _read_text(handle, path, head, max_document_chars, _position(handle))


def read_failed(path: Path, exc: BaseException) -> CorpusError:
    """The error for a file whose bytes stop making sense partway (a download cut short, a damaged archive)."""
    return CorpusError(f"{path}: read failed ({exc}); is the file complete?")


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
        raise read_failed(path, exc) from None
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
    lines_before, read, ids, chat = 0, 0, None, False
    for decoded in decoded_blocks(handle, path, head):
        label.see(decoded)
        encoding = label.encoding
        repairs.add(decoded, lines_before)
        lines_before += decoded.text.count("\n")
        if ids is None:  # ID<TAB>text lines (lunalm.corpus.idlines); numbered ones are documents of their own
            ids = id_column(decoded.text) and ("numbered" if numbered(decoded.text) else "named")
            chat = not ids and is_chat(decoded.text)  # a WhatsApp export (lunalm.corpus.whatsapp)
        if ids == "numbered":
            for number, line in numbered_lines(decoded.text):
                yield RawDocument(line, str(path), encoding, name=f"{path}:{number}" if number else "",
                                  read_bytes=position(), **repairs.take())
            continue
        text = strip_ids(decoded.text) if ids else chat_lines(decoded.text) if chat else decoded.text
        pending.append(text)
        pending_chars += len(text)
        per_char, read = (position() - read) / max(1, len(text)), position()
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


def _json_lines(path: Path) -> bool:
    """Whether a ``.json`` file is JSON Lines: its first line a whole JSON object with more text after it.
    mC4's ``c4-tr.tfrecord-00000-of-01024.json.gz`` and Datastore exports are; parsed as one JSON value they
    were "malformed JSON (Extra data: line 2 column 1)", after the whole file had been read into memory."""
    with _open(path) as handle:
        try:
            first = handle.readline()
            more = any(line.strip() for line in iter(lambda: handle.readline(1 << 16), b""))
        except READ_ERRORS:
            return False  # reading it as JSON says what is wrong
    if not more or not first.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{"):
        return False
    try:
        return isinstance(json.loads(first), dict)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False


def _read_json(handle: BinaryIO, path: Path, text_field: str, max_document_chars: int) -> Iterator[RawDocument]:
    """A ``.json`` data set as people export them: an array of records (or of strings), or an object
    holding one such array (``{"data": [...]}``). Each record's ``text_field`` is one document. The file is
    parsed whole (a JSON array cannot be streamed with the standard library): fine for the data sets of a
    few hundred MB that are published this way; larger ones belong in JSONL. A Telegram export is read as
    its chats (``lunalm.corpus.telegram``), unless ``--text-field`` names another field."""
    try:
        decoded = decode_bytes(handle.read(), source=str(path))
        data = json.loads(decoded.text)
    except json.JSONDecodeError as exc:
        raise CorpusError(f"{path}: malformed JSON ({exc}); fix the file, or save one record per line as "
                          "JSONL") from None
    except READ_ERRORS as exc:
        raise read_failed(path, exc) from None
    chats = telegram_chats(data) if text_fields(text_field) == ["text"] else None
    if chats is not None:
        for chat in chats:
            for label, text in chat_documents(chat, max_document_chars):
                repair = repair_text(text)
                yield RawDocument(repair.text, str(path), decoded.encoding, repair.repaired_chars, f"{path}: {label}",
                                  repair.sequences, repair.recovered_bytes)
        return
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
        found, value = _field(record, name)
        if not found:
            keys = ", ".join(sorted(record)) or "no fields"
            raise CorpusError(f"{where}: no field '{name}' (found: {keys}{_nested(record)}); choose the field with "
                              "--text-field")
        if value is None:
            continue  # a missing value (exported data sets write `null`): no text, as parquet's nulls
        if isinstance(value, list) and all(isinstance(line, str) for line in value):
            values.append("\n".join(value))  # a poem or lyrics stored as a list of its lines
            continue
        if not isinstance(value, str):
            raise CorpusError(f"{where}: field '{name}' is a JSON {_json_kind(value)}, expected a string "
                              f"(or a list of strings, its lines){_nested({name: value})}")
        values.append(value)
    return join_fields(values)


def _field(record: dict, name: str) -> tuple[bool, object]:
    """Whether ``record`` has the field ``name``, and its value; ``a.b.c`` names a field inside objects (a
    Datastore export's text is ``properties.description.stringValue``)."""
    if name in record:
        return True, record[name]
    value = record
    for part in name.split("."):
        if not isinstance(value, dict) or part not in value:
            return False, None
        value = value[part]
    return True, value


def _nested(record: dict, prefix: str = "") -> str:
    """"; text inside objects: a.b, a.c" naming the string fields inside the record's objects, for a message."""
    def paths(value, path):
        if isinstance(value, dict):
            return [found for key, inner in value.items() for found in paths(inner, f"{path}.{key}" if path else key)]
        return [path] if isinstance(value, str) and "." in path else []
    found = paths(record, prefix)
    return f"; text inside objects: {', '.join(found[:8])}" if found else ""


def _json_kind(value) -> str:
    return {list: "array", dict: "object", bool: "true/false", int: "number", float: "number"}.get(type(value),
                                                                                                  "value")


def join_fields(values) -> str:
    """The non-blank texts of one record's fields as one document."""
    return FIELD_JOIN.join(value for value in values if value.strip())


def _read_jsonl(handle: BinaryIO, path: Path, text_field: str, position) -> Iterator[RawDocument]:
    for number, line in enumerate(_lines(handle, path), start=1):
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


def _lines(handle: BinaryIO, path: Path) -> Iterator[bytes]:
    """The file's lines; a compressed file cut short (a download stopped inside OSCAR's ``.jsonl.zst``) is a
    CorpusError naming it, not the decompressor's traceback."""
    try:
        yield from handle
    except READ_ERRORS as exc:
        raise read_failed(path, exc) from None
