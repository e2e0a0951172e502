"""Finding corpus files in the folders given (``discover``), and the notes on what a folder holds that will
not be read: tables and JSON arrays --include leaves out, tables saved as text, links to missing files,
WikiExtractor files, and what training runs wrote inside the corpus.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Iterator
from pathlib import Path

from lunalm.config import DEFAULT_INCLUDE
from lunalm.corpus.compressed import COMPRESSED, inner_suffix, patterns_text
from lunalm.corpus.idlines import first_ids, id_column, leipzig_side_file, numbered
from lunalm.errors import CorpusError


def discover(paths: list[str] | tuple[str, ...], include: tuple[str, ...], exclude: tuple[str, ...]) -> list[Path]:
    """Expand files and directories (recursively) into a sorted list of files to read."""
    from lunalm.corpus.archives import is_archive, unpack

    files: list[Path] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.exists():
            if path.is_symlink():
                raise CorpusError(f"{raw}: a link to {os.readlink(path)}, which does not exist; point it at the "
                                  "moved file or pass the file itself")
            raise CorpusError(f"{raw}: no such file or directory; pass an existing text file or folder")
        what = "directory"
        if path.is_file() and is_archive(path):  # a zip or tar: read as the folder of its unpacked members
            path, what = unpack(path, include), "archive"
        elif path.is_file():
            files.append(path)
            continue
        outputs: dict[Path, bool] = {}
        default = tuple(include) == DEFAULT_INCLUDE  # the default also reads WikiExtractor's suffix-less files
        #                                             and Telegram's exports (result.json)
        found = [f for f in sorted(path.rglob("*")) if (_wanted(f, path, include, exclude, outputs)
                 or default and _extracted(f, path, exclude, outputs)) and not leipzig_side_file(f)]
        if not found:
            raise _no_files(raw, path, include, exclude, what)
        files.extend(found)
    return files


def _no_files(raw: str, root: Path, include: tuple[str, ...], exclude: tuple[str, ...],
              what: str = "directory") -> CorpusError:
    """The error for a folder with no file to read: what it holds instead, and the flags that read it."""
    from lunalm.corpus.documents import DOCUMENT_SUFFIXES
    from lunalm.corpus.wiki import suffixless_hint

    held = [f for f in sorted(root.rglob("*")) if _wanted(f, root, ("*",), exclude)]
    others = sorted({f.suffix.lower() for f in held if f.suffix and not _archive(f) and not leipzig_side_file(f)})
    readable = [suffix for suffix in others if suffix in (".csv", ".tsv", ".json", ".parquet", ".arrow", ".jsonl",
                                                          ".txt", ".md", ".conllu", *COMPRESSED, *DOCUMENT_SUFFIXES)]
    flags = " ".join(f"--include '*{suffix}'" for suffix in readable)
    side = [f for f in held if _wanted(f, root, include, exclude) and leipzig_side_file(f)]
    if side:
        return CorpusError(f"{raw}: its only files matching {patterns_text(include)} are a Leipzig Corpora Collection "
                           f"download's lists ({_names(side)}: {LEIPZIG_LISTS}); pass the download's -sentences.txt "
                           "file, or the folder it is in")
    archives = [f for f in held if _archive(f)]
    hints = [suffixless_hint(root, [f for f in held if not inner_suffix(f)]),
             archives and f"{_names(archives)}: archive(s), pass each one itself to read it "
                          f"(luna train {archives[0].name})"]
    hint = "; ".join(filter(None, hints))
    return CorpusError(
        f"{raw}: {what} has no files matching {patterns_text(include)}"
        + (f" (excluding {', '.join(exclude)})" if exclude else "")
        + (f"; it holds {', '.join(others[:8])} files" if others else "")
        + (f"; to read them add {flags} (tables and JSON arrays also need --text-field COLUMN)" if readable
           else "" if hint else "; add text files or change --include")
        + (f"; {hint}" if hint else "")
    )


def folder_files(paths: list[str] | tuple[str, ...]) -> Iterator[tuple[Path, list[Path]]]:
    """Each of ``paths`` that is a folder (or an archive ``discover`` unpacked), with every path below it,
    sorted: what the notes look through."""
    from lunalm.corpus.archives import unpacked_folder

    for raw in paths:
        root = Path(raw).expanduser()
        root = (unpacked_folder(root) or root) if root.is_file() else root
        if root.is_dir():
            yield root, sorted(root.rglob("*"))


def _archive(file: Path) -> bool:
    """A zip or tar archive by its name (a Leipzig download is tur_news_2020_10K.tar.gz); a ``.fb2.zip`` is a book."""
    name = file.name.lower()
    return ".tar" in [suffix.lower() for suffix in file.suffixes[-2:]] or name.endswith(".tgz") \
        or name.endswith(".zip") and not name.endswith(".fb2.zip")


def _extracted(file: Path, root: Path, exclude: tuple[str, ...], outputs: dict[Path, bool]) -> bool:
    """A file inside ``root`` that the default patterns miss but that is read by its content: WikiExtractor
    output with no suffix (``lunalm.corpus.wiki``), or a Telegram export (``lunalm.corpus.telegram``)."""
    from lunalm.corpus.telegram import is_export
    from lunalm.corpus.wiki import extractor_output

    suffix = inner_suffix(file)
    if suffix not in ("", ".json") or not _wanted(file, root, ("*",), exclude, outputs):
        return False
    return extractor_output(file) if not suffix else is_export(file)


def broken_links(paths: list[str] | tuple[str, ...], include: tuple[str, ...], exclude: tuple[str, ...]) -> str | None:
    """A note naming the links inside the given folders that ``include`` would read but that point at no
    file (the file was moved or deleted); None when there are none. They were left out without a word."""
    broken = []
    for root, files in folder_files(paths):
        broken += [f for f in files if f.is_symlink() and not f.exists() and _matches(f, root, include, exclude)]
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
    from lunalm.corpus.hf_dataset import METADATA_FILES
    from lunalm.corpus.tables import TABLE_SUFFIXES
    from lunalm.corpus.telegram import is_export

    left, used = [], set()
    default = tuple(include) == DEFAULT_INCLUDE  # which reads Telegram's exports
    for root, files in folder_files(paths):
        left += [f for f in files if f.suffix.lower() in TABLE_SUFFIXES + (".json",) and f.name not in
                 METADATA_FILES and not _METADATA_TABLE.fullmatch(f.name) and _wanted(f, root, ("*",), exclude)
                 and not _wanted(f, root, include, exclude) and not (default and is_export(f))]
        used |= {pattern for pattern in include for f in files if _wanted(f, root, (pattern,), exclude)}
    if not left:
        return None
    size = sum(f.stat().st_size for f in left)
    names = _names(left)
    patterns = " ".join(f"--include '*{suffix}'" for suffix in sorted({f.suffix for f in left}))
    kept = " ".join(f"--include '{pattern}'" for pattern in include if pattern in used)
    also = (f" and, to keep the {len(used)} kind(s) of file read now (--include replaces the default list), "
            f"{kept}") if kept else ""
    kind = "table or JSON" if any(f.suffix.lower() == ".json" for f in left) else "table"
    return (f"not read: {len(left)} {kind} file(s) ({names}; {size / 1e6:.1f} MB) that --include leaves out; "
            f"to train on their rows add {patterns} --text-field COLUMN{also}")


# ParlaMint's ParlaMint-TR_2018-11-01-tbmm-T27-meta.tsv (and -meta-en.tsv, -ana-meta.tsv) beside each session's
# .txt: speaker, party and date per utterance, no text; the note said to train on their rows.
_METADATA_TABLE = re.compile(r".+-meta(?:-[a-z]{2})?\.tsv", re.IGNORECASE)


def unread_notes(paths: list[str] | tuple[str, ...], include: tuple[str, ...], exclude: tuple[str, ...]) -> list[str]:
    """What plan, train and analyze say about the given folders' files they will not read: tables, JSON
    arrays and WikiExtractor output ``include`` leaves out, formats it cannot read, links to missing files."""
    from lunalm.corpus.hf_dataset import splits_read_together
    from lunalm.corpus.wiki import unread_extracts

    if not paths:
        return []
    heads = list(_heads(paths, include, exclude))  # the text files' first lines, read once for three notes
    return [note for note in (*unpacked_notes(paths), unread_archives(paths, include, exclude),
                              unread_tables(paths, include, exclude), unread_extracts(paths, include, exclude),
                              unread_formats(paths, exclude), broken_links(paths, include, exclude),
                              unread_outputs(paths), unread_leipzig(paths, include, exclude),
                              id_lines(paths, include, exclude, heads), chats(paths, include, exclude, heads),
                              tables_as_text(paths, include, exclude, heads),
                              splits_read_together(paths, include, exclude))
            if note]


def unpacked_notes(paths: list[str] | tuple[str, ...]) -> list[str]:
    """Where the archives given were read from (``lunalm.corpus.archives``)."""
    from lunalm.corpus.archives import describe, unpacked_folder

    return [describe(path, folder) for raw in paths if (path := Path(raw).expanduser()).is_file()
            and (folder := unpacked_folder(path)) is not None]


def unread_archives(paths: list[str] | tuple[str, ...], include: tuple[str, ...],
                    exclude: tuple[str, ...]) -> str | None:
    """A note naming the zip and tar archives inside the given folders, which are not opened there (an archive
    beside the text may be anything); None when there are none."""
    left = []
    for root, files in folder_files(paths):
        left += [f for f in files if _archive(f) and not _wanted(f, root, include, exclude)
                 and _wanted(f, root, ("*",), exclude)]
    if not left:
        return None
    return (f"not read: {len(left)} archive(s) inside the folder ({_names(left)}); to read one, pass it itself "
            f"(luna train {left[0].name}) or extract it into the folder")


# Files that hold text in a form lunalm does not read, and how to get it.
_UNREADABLE = {".doc": "old Word files: save them as .docx",
               ".mobi": "Kindle books: convert them to .epub (calibre: ebook-convert BOOK.mobi BOOK.epub)",
               ".azw": "Kindle books: convert them to .epub (calibre: ebook-convert BOOK.azw BOOK.epub)",
               ".azw3": "Kindle books: convert them to .epub (calibre: ebook-convert BOOK.azw3 BOOK.epub)",
               ".djvu": "scanned pages: run OCR on them first", ".pages": "Apple Pages files: export them as .docx"}


def unread_formats(paths: list[str] | tuple[str, ...], exclude: tuple[str, ...]) -> str | None:
    """A note naming the files inside the given folders that hold text lunalm cannot read (an old ``.doc``,
    a Kindle book), and how to convert them; None when there are none. They were left out without a word."""
    left = []
    for root, files in folder_files(paths):
        left += [f for f in files if f.suffix.lower() in _UNREADABLE and _wanted(f, root, ("*",), exclude)]
    if not left:
        return None
    how = "; ".join(dict.fromkeys(_UNREADABLE[f.suffix.lower()] for f in left))
    return f"not read: {len(left)} file(s) in formats lunalm cannot read ({_names(left)}): {how}"


def unread_leipzig(paths: list[str] | tuple[str, ...], include: tuple[str, ...], exclude: tuple[str, ...]) -> str | None:
    """A note naming the files of a Leipzig Corpora Collection download that are not read: all but its
    sentences (``lunalm.corpus.idlines.leipzig_side_file``); None when there are none."""
    left = []
    for root, files in folder_files(paths):
        left += [f for f in files if _wanted(f, root, include, exclude) and leipzig_side_file(f)]
    if not left:
        return None
    return (f"not read: {len(left)} file(s) of a Leipzig Corpora Collection download ({_names(left)}: "
            f"{LEIPZIG_LISTS}); its -sentences.txt file holds the text")


LEIPZIG_LISTS = ("word lists, co-occurrence counts, inverse lists, sources and meta data, numbers and URLs, no "
                 "running text")


def _names(files: list[Path], shown: int = 3) -> str:
    return ", ".join(f.name for f in files[:shown]) + (f" and {len(files) - shown} more" if len(files) > shown else "")


def id_lines(paths: list[str] | tuple[str, ...], include: tuple[str, ...], exclude: tuple[str, ...],
             heads: list[tuple[Path, str]] | None = None) -> str | None:
    """A note naming the text files read as ``ID<TAB>text`` lines (``lunalm.corpus.idlines``), whose IDs are
    left out; None when there are none."""
    found = [(file, head) for file, head in _heads_of(paths, include, exclude, heads) if id_column(head)]
    if not found:
        return None
    ids = ", ".join(repr(found_id) for found_id in first_ids(found[0][1]))
    apart = ", each numbered line a document of its own" if any(numbered(head) for _, head in found) else ""
    return (f"read as 'ID<TAB>text' lines, the ID before each line left out{apart}: {len(found)} file(s) "
            f"({_names([file for file, _ in found])}; its first IDs: {ids})")


def chats(paths: list[str] | tuple[str, ...], include: tuple[str, ...], exclude: tuple[str, ...],
          heads: list[tuple[Path, str]] | None = None) -> str | None:
    """A note naming the text files read as WhatsApp exports (``lunalm.corpus.whatsapp``); None when there are
    none."""
    from lunalm.corpus.whatsapp import is_chat

    found = [file for file, head in _heads_of(paths, include, exclude, heads)
             if not id_column(head) and is_chat(head)]
    if not found:
        return None
    return (f"read as WhatsApp chat exports, a 'Name: text' line a message, without the date and time before each, "
            f"WhatsApp's notices, media left out of the export and deleted messages: {len(found)} file(s) "
            f"({_names(found)})")


_COLUMN_NAME = re.compile(r"(\"?)[^\W\d](?:[\w.-]{0,39}[\w-])?\1")  # poem_text, "rank": no spaces (prose
#                                                                       has them), no full stop at the end ("Hi.")
TABLE_CHECKED_FILES = 200  # text files whose first line is looked at


def tables_as_text(paths: list[str] | tuple[str, ...], include: tuple[str, ...], exclude: tuple[str, ...],
                   heads: list[tuple[Path, str]] | None = None) -> str | None:
    """A note naming the text files (``.txt``, ``.md``) that are tables saved under a text name: a first line
    of column names with a comma, tab or semicolon between them, and a second line with as many; None when
    there are none. Yunyus/Turkish-Poem-GPT's turkish_poems.txt (poem_name,poet_name,poem_text,rank) was read
    as one document, its header and quotes kept."""
    found = []
    for file, head in _heads_of(paths, include, exclude, heads):
        lines = head.splitlines()
        if len(lines) < 2 or id_column(head):
            continue
        for delimiter in (",", "\t", ";"):
            names = lines[0].rstrip().split(delimiter)
            if len(names) >= 2 and all(_COLUMN_NAME.fullmatch(name) for name in names) \
                    and lines[1].count(delimiter) >= len(names) - 1:
                found.append((file, [name.strip('"') for name in names],
                              {",": ".csv", "\t": ".tsv", ";": ".csv"}[delimiter]))
                break
        else:
            if _tab_columns(lines):
                found.append((file, lines[0].rstrip("\r").split("\t"), None))
    if not found:
        return None
    file, names, suffix = found[0]
    more = f" (and {len(found) - 1} more such file(s))" if len(found) > 1 else ""
    if suffix is None:  # no header row: its columns go by number
        first = ", ".join(f"{number} ({value[:30]!r})" for number, value in enumerate(names, start=1))
        return (f"{file} looks like a table saved as text, without a header row ({len(names)} tab-separated "
                f"columns; its first row: {first}){more}: it is read as one text, every column included. To train "
                f"on one column, rename it to {file.stem}.tsv and add --include '*.tsv' --text-field NUMBER")
    text = next((name for name in names if any(word in name.lower() for word in _TEXT_WORDS)), "COLUMN")
    return (f"{file} looks like a table saved as text (columns: {', '.join(names)}){more}: it is read as one text, "
            f"its header and quotes included. To train on its rows, rename it to {file.stem}{suffix} and add "
            f"--include '*{suffix}' --text-field {text}")


def _heads(paths: list[str] | tuple[str, ...], include: tuple[str, ...], exclude: tuple[str, ...]):
    """(file, its first 64 KB as text) for the first TABLE_CHECKED_FILES text files (``.txt``, ``.md``) read."""
    try:
        files = [f for f in discover(paths, include, exclude) if f.suffix.lower() in (".txt", ".md")]
    except CorpusError:
        return  # reading the corpus says what is wrong
    for file in files[:TABLE_CHECKED_FILES]:
        try:
            with open(file, "rb") as handle:
                yield file, handle.read(1 << 16).decode("utf-8", "replace").lstrip("\ufeff")
        except OSError:
            continue


def _heads_of(paths, include, exclude, heads: list[tuple[Path, str]] | None):
    """``heads`` where the caller read them already, else ``_heads``."""
    return _heads(paths, include, exclude) if heads is None else heads


def _tab_columns(lines: list[str]) -> bool:
    """Whether the lines are rows of a tab-separated table without a header: at least three, each with the
    same number of tabs, at least one (the last line read may be cut short)."""
    rows = [line for line in lines[:-1] if line.strip()]
    return len(rows) >= 3 and rows[0].count("\t") >= 1 and all(row.count("\t") == rows[0].count("\t") for row in rows)


_TEXT_WORDS = ("text", "metin", "content", "body", "icerik", "içerik", "mətn", "tweet", "sentence", "cümle")


def unread_outputs(paths: list[str] | tuple[str, ...]) -> str | None:
    """A note naming the folders inside the given ones that a training run wrote (``output_folder``: runs,
    checkpoints, exported models) and the pages `luna report` wrote (``report_file``), which are not read;
    None when there are none."""
    found, reports = [], []
    for raw in paths:
        root = Path(raw).expanduser()
        if not root.is_dir():
            continue
        for folder, subfolders, files in os.walk(root):
            subfolders[:] = sorted(name for name in subfolders if not name.startswith("."))
            if Path(folder) != root and output_folder(Path(folder)):
                found.append(Path(folder))
                subfolders[:] = []  # the top-most one names what is left out
                continue
            reports += [Path(folder, name) for name in sorted(files) if report_file(Path(folder, name))]
    notes = []
    if found:
        names = ", ".join(str(folder) for folder in found[:3]) + (f" and {len(found) - 3} more" if len(found) > 3 else "")
        notes.append(f"not read: {len(found)} folder(s) a training run wrote ({names}: runs, checkpoints or exported "
                     "models, whose logs and samples are no corpus)")
    if reports:
        notes.append(f"not read: {len(reports)} page(s) `luna report` wrote ({_names(reports)}): tables of past runs, "
                     "no corpus")
    return "; ".join(notes) or None


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
    if report_file(file):
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


# The first bytes of the pages `luna report` writes (report.md, and report.html with --html): in the folder
# the command ran in, which is the corpus folder when the corpus is ".", so the next run trained on its tables.
REPORT_TITLE = "lunalm learnings report"
_REPORT_HEADS = {".md": f"# {REPORT_TITLE}\n".encode(), ".html": f"<title>{REPORT_TITLE}</title>".encode()}


def report_file(file: Path) -> bool:
    """Whether ``file`` is a page `luna report` wrote (``_REPORT_HEADS``), read from its first bytes."""
    head = _REPORT_HEADS.get(file.suffix.lower())
    if head is None:
        return False
    try:
        with open(file, "rb") as handle:
            return head in handle.read(200)
    except OSError:
        return False


def output_folder(folder: Path) -> bool:
    """Whether ``folder`` is one a training run wrote (``_OUTPUT_MARKS``)."""
    return any(all((folder / name).exists() for name in names) for names in _OUTPUT_MARKS)
