"""Tabular corpus files: Parquet, Arrow (``datasets``' own files), CSV and TSV; one row = one document.

Every reader streams: Parquet in row batches of the one text column (``ParquetFile.iter_batches``),
Arrow record batch by record batch from a memory map (both the IPC file format and the stream format
that ``datasets.Dataset.save_to_disk`` writes), CSV/TSV row by row with the standard library. Memory
stays at one batch whatever the file's size. Parquet and Arrow need ``pyarrow`` (``pip install
pyarrow``, or ``lunalm[data]``); CSV/TSV need nothing.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
import sys
from pathlib import Path
from typing import Iterator

from lunalm.corpus.compressed import inner_suffix
from lunalm.corpus.read import (SNIFF_BYTES, _looks_utf16, _open, _read_blocks, decoded_blocks, join_fields,
                                text_fields)
from lunalm.errors import CorpusError

TABLE_SUFFIXES = (".parquet", ".arrow", ".csv", ".tsv")
BATCH_ROWS = 1024  # rows per Arrow/Parquet batch
TAB_CHECKED_LINES = 20  # first lines of a CSV whose tabs say it is tab-separated


def read_table(path: Path, text_field: str, label=None) -> Iterator[str]:
    """The non-empty texts of column ``text_field`` (several columns: "question,answer", joined by a blank
    line), row by row; ``label`` (``read.EncodingLabel``) sees each decoded block of a CSV/TSV file."""
    names = text_fields(text_field)
    layout = inner_suffix(path)  # a CSV/TSV may be compressed (rows.csv.gz)
    if layout in (".csv", ".tsv"):
        yield from _read_delimited(path, names, "\t" if layout == ".tsv" else csv_delimiter(path), label)
        return
    for batch in _parquet_batches(path, names) if path.suffix == ".parquet" else _arrow_batches(path):
        columns = [_column(batch, path, name).to_pylist() for name in names]
        for values in zip(*columns):
            text = join_fields(value for value in values if isinstance(value, str))
            if text:
                yield text


def csv_delimiter(path: Path) -> str:
    """"," or, for a CSV whose header holds more semicolons than commas, ";" (Excel on a Turkish or other
    European Windows, where the comma is the decimal mark, saves "soru;cevap"), or a tab where the first lines
    all hold as many tabs (Tatoeba's sentences.csv is "15921<TAB>tur<TAB>Bir şey deneyelim.", its sentences
    with commas of their own: read with commas, each line was one column)."""
    with _open(path) as handle:
        lines = [line for line in (handle.readline(1 << 16) for _ in range(TAB_CHECKED_LINES)) if line.strip()]
    header = lines[0] if lines else b""
    if header.count(b"\t") and all(line.count(b"\t") == header.count(b"\t") for line in lines):
        return "\t"
    return ";" if header.count(b";") > header.count(b",") else ","


def _read_delimited(path: Path, names: list[str], delimiter: str, label=None) -> Iterator[str]:
    """Rows of a CSV/TSV file in any encoding lunalm reads (UTF-8 with or without BOM, UTF-16, cp1254 as
    Excel on a Turkish Windows saves it; mojibake repaired), quoted as the file itself is.

    Files written by a spreadsheet or pandas quote fields that hold the delimiter, a quote or a line
    break. Files written by hand or by ``"\\t".join`` do not, and a stray quote in them (a tweet that
    opens a quotation and never closes it) would make a quoting reader swallow every row up to the next
    quote. So the file is first read without quoting: if every line then has the header's number of fields,
    no field can span lines or hold the delimiter, and the rows are read that way, a field wrapped whole
    in quotes unwrapped as a quoting reader would; else the file really uses quoting and is read with it."""
    csv.field_size_limit(sys.maxsize)  # a document may be longer than csv's 128 KB default
    kind = "TSV" if delimiter == "\t" else "CSV"
    try:
        plain = _plain_fields(path, delimiter)
        reader = csv.reader(_decoded_lines(path, label), delimiter=delimiter,
                            quoting=csv.QUOTE_NONE if plain else csv.QUOTE_MINIMAL)
        header = next(reader, [])
        if header and header[0].startswith("\ufeff"):  # a BOM inside a block (decoded as text) is not a name
            header[0] = header[0][1:]
        header = [_unquoted(name) for name in header] if plain else header
        first = None
        if header and not set(names) <= set(header) and not _names(header):  # no header row: the first row is
            # data, the columns go by number (a header of long questions, as a form's export has, that names
            # the columns asked for stays one)
            first, header = header, [str(number) for number in range(1, len(header) + 1)]
        for name in names:
            _check_field(path, name, header, first)
        columns = [header.index(name) for name in names]
        rows = numbers = 0
        for row in itertools.chain([first] if first else [], reader):
            text = join_fields((_unquoted(row[column]) if plain else row[column]) for column in columns
                               if column < len(row))
            if text:
                rows += 1
                numbers += _NUMBER.fullmatch(text.strip()) is not None
                yield text
        if rows and numbers == rows:
            raise CorpusError(f"{path}: column {', '.join(names)!s} holds only numbers ({rows:,} rows), no text; "
                              f"pass the text column with --text-field (columns: {', '.join(header)})")
    except csv.Error as error:
        raise CorpusError(f"{path}: not a readable {kind} file ({error})") from None


_NUMBER = re.compile(r"[-+]?\d+(?:[.,]\d+)*%?")  # "23163", "1", "3,5", "1.250.000"


def _names(header: list[str]) -> bool:
    """Whether a table's first row names its columns: a name is short, no number and no sentence. A TSV written
    without one (JAK-OffensEval's dev.tsv: "23163", a tweet, "1") took its first tweet for a column's name, and
    Tatoeba's English-Turkish pairs (tur.txt: "Hi.<TAB>Merhaba.") their first pair for the names."""
    return all(not _NUMBER.fullmatch(name.strip()) and len(name) <= 60 and len(name.split()) <= 5
               and not name.rstrip().endswith((".", "!", "?")) for name in header)


def _decoded_lines(path: Path, label=None) -> Iterator[str]:
    """The file's lines (ends kept), decoded and repaired block by block as text files are."""
    with _open(path) as handle:
        for decoded in decoded_blocks(handle, path, _head(handle)):
            if label is not None:
                label.see(decoded)
            yield from io.StringIO(decoded.text, newline="")  # lines as csv reads a file opened with newline=""


def _plain_fields(path: Path, delimiter: str) -> bool:
    """Whether every non-empty line holds as many delimiters as the header. Counted on the bytes (the
    delimiter is ASCII in every encoding but UTF-16), so this pass decodes and repairs nothing."""
    with _open(path) as handle:
        head = _head(handle)
        if _looks_utf16(head):
            lines = (line.encode("utf-8") for line in _decoded_lines(path))
        else:
            lines = (line for block in _read_blocks(handle, path) for line in block.split(b"\n"))
        widths = set()
        for line in lines:
            if line.strip():
                widths.add(line.count(delimiter.encode("ascii")))
                if len(widths) > 1:
                    return False
    return True


def _head(handle) -> bytes:
    return handle.peek(SNIFF_BYTES)[:SNIFF_BYTES] if hasattr(handle, "peek") else b""


def _unquoted(field: str) -> str:
    """A field wrapped whole in quotes, as a quoting reader returns it (doubled quotes inside made single)."""
    if len(field) >= 2 and field[0] == field[-1] == '"':
        inner = field[1:-1]
        if '"' not in inner.replace('""', ""):
            return inner.replace('""', '"')
    return field


def _pyarrow(path: Path):
    try:
        import pyarrow
    except ImportError:
        raise CorpusError(f"{path}: reading {path.suffix} files needs pyarrow: pip install pyarrow "
                          "(or pip install \"lunalm[data]\")") from None
    return pyarrow


def _parquet_batches(path: Path, names: list[str]):
    pa = _pyarrow(path)
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(str(path))
    except (pa.ArrowException, OSError) as error:
        raise CorpusError(f"{path}: not a readable Parquet file ({error})") from None
    for name in names:
        _check_field(path, name, parquet.schema_arrow.names)
    yield from parquet.iter_batches(batch_size=BATCH_ROWS, columns=names)


def _arrow_batches(path: Path):
    """Record batches of an Arrow IPC file, or of an IPC stream (what ``datasets`` writes)."""
    pa = _pyarrow(path)
    try:
        source = pa.memory_map(str(path))
        try:
            reader = pa.ipc.open_file(source)
            batches = (reader.get_batch(i) for i in range(reader.num_record_batches))
        except pa.ArrowInvalid:
            source.seek(0)
            batches = iter(pa.ipc.open_stream(source))
    except (pa.ArrowException, OSError) as error:
        raise CorpusError(f"{path}: not a readable Arrow file ({error})") from None
    yield from batches


def _column(batch, path: Path, text_field: str):
    _check_field(path, text_field, batch.schema.names)
    column = batch.column(batch.schema.get_field_index(text_field))
    if not str(column.type) in ("string", "large_string", "string_view"):
        raise CorpusError(f"{path}: column {text_field!r} holds {column.type}, not text; pass the text "
                          "column with --text-field")
    return column


def _check_field(path: Path, text_field: str, names: list[str], first: list[str] | None = None) -> None:
    """``first``: the first row, when the file has no header row (its columns go by number)."""
    if text_field in names:
        return
    if first is None:
        raise CorpusError(f"{path}: no column {text_field!r}; columns: {', '.join(names) or 'none'}; "
                          "pass the text column with --text-field")
    shown = ", ".join(f"{name} ({value[:30]!r}{'…' if len(value) > 30 else ''})" for name, value in zip(names, first))
    raise CorpusError(f"{path}: no column {text_field!r}; its first row reads as data, not names, so the columns "
                      f"go by number: {shown}; pass the text column's number with --text-field (or, if that row "
                      "does name the columns, the name)")
