"""Tabular corpus files: Parquet, Arrow (``datasets``' own files), CSV and TSV; one row = one document.

Every reader streams: Parquet in row batches of the one text column (``ParquetFile.iter_batches``),
Arrow record batch by record batch from a memory map (both the IPC file format and the stream format
that ``datasets.Dataset.save_to_disk`` writes), CSV/TSV row by row with the standard library. Memory
stays at one batch whatever the file's size. Parquet and Arrow need ``pyarrow`` (``pip install
pyarrow``, or ``lunalm[data]``); CSV/TSV need nothing.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Iterator

from lunalm.errors import CorpusError

TABLE_SUFFIXES = (".parquet", ".arrow", ".csv", ".tsv")
BATCH_ROWS = 1024  # rows per Arrow/Parquet batch


def read_table(path: Path, text_field: str) -> Iterator[str]:
    """The non-empty strings of column ``text_field``, row by row."""
    if path.suffix in (".csv", ".tsv"):
        yield from _read_delimited(path, text_field, "\t" if path.suffix == ".tsv" else ",")
        return
    for batch in _parquet_batches(path, text_field) if path.suffix == ".parquet" else _arrow_batches(path):
        column = _column(batch, path, text_field)
        for value in column.to_pylist():
            if isinstance(value, str) and value.strip():
                yield value


def _read_delimited(path: Path, text_field: str, delimiter: str) -> Iterator[str]:
    csv.field_size_limit(sys.maxsize)  # a document may be longer than csv's 128 KB default
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:  # -sig: Excel's UTF-8 BOM
            reader = csv.DictReader(handle, delimiter=delimiter)
            _check_field(path, text_field, reader.fieldnames or [])
            for row in reader:
                value = row.get(text_field)
                if value and value.strip():
                    yield value
    except UnicodeDecodeError as error:
        raise CorpusError(f"{path}: not UTF-8 text (byte {error.start}); save it as UTF-8 CSV") from None
    except csv.Error as error:
        raise CorpusError(f"{path}: not a readable {'TSV' if delimiter == chr(9) else 'CSV'} file ({error})") from None


def _pyarrow(path: Path):
    try:
        import pyarrow
    except ImportError:
        raise CorpusError(f"{path}: reading {path.suffix} files needs pyarrow: pip install pyarrow "
                          "(or pip install \"lunalm[data]\")") from None
    return pyarrow


def _parquet_batches(path: Path, text_field: str):
    pa = _pyarrow(path)
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(str(path))
    except (pa.ArrowException, OSError) as error:
        raise CorpusError(f"{path}: not a readable Parquet file ({error})") from None
    _check_field(path, text_field, parquet.schema_arrow.names)
    yield from parquet.iter_batches(batch_size=BATCH_ROWS, columns=[text_field])


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


def _check_field(path: Path, text_field: str, names: list[str]) -> None:
    if text_field not in names:
        raise CorpusError(f"{path}: no column {text_field!r}; columns: {', '.join(names) or 'none'}; "
                          "pass the text column with --text-field")
