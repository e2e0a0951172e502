"""WikiExtractor output (attardi/wikiextractor), the commonest Wikipedia corpus: folders ``text/AA/wiki_00``,
``wiki_01``, … of files with no suffix, each holding many articles. By default each article is wrapped in
tags::

    <doc id="10" url="https://tr.wikipedia.org/wiki?curid=10" title="Cengiz Han">
    Cengiz Han

    Cengiz Han (…), Moğol komutan, hükümdar ve Moğol İmparatorluğu'nun kurucusudur. …
    </doc>

and is read here as one document (tag lines dropped); with ``--json`` each line is a record
``{"id", "revid", "url", "title", "text"}``, read as JSONL (``lunalm.corpus.read``). A file is recognised by
its first line, whatever its name; a folder's files with no suffix are read by default when they are such
output (``extractor_output``), and only then: a LICENSE or a Makefile beside them stays out.
"""

from __future__ import annotations

import html
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from lunalm.config import DEFAULT_INCLUDE
from lunalm.corpus.compressed import READ_ERRORS, inner_suffix
from lunalm.corpus.discover import _wanted, folder_files
from lunalm.corpus.read import (_MAGIC, EncodingLabel, RawDocument, _looks_utf16, _open, _paragraph_cut, _Repairs,
                                decoded_blocks)
from lunalm.errors import CorpusError

# The opening tag as WikiExtractor writes it (some versions add revid=""). A title may hold quotes, which
# WikiExtractor does not escape, never ">" (MediaWiki forbids it): it ends at the quote before the next
# attribute or the tag's end.
_DOC_TAG = re.compile(r'<doc id="([^"\n]*)"[^\n]*>[ \t\r]*')
_TITLE = re.compile(r' title="(.*?)"(?=\s+[\w-]+="|>[ \t\r]*$)')
_END_TAG = "</doc>"
# Pages that older WikiExtractor versions wrote beside the articles: the wiki's interface messages (256 of the
# 309 pages of a real Turkish extract: "MediaWiki:Watchthis", each a button's label), templates and modules.
_NOT_ARTICLES = re.compile(r"(MediaWiki|Template|Şablon|Module|Modül|Modul):")
HEAD_BYTES = 4096  # enough for the first line: a tag, or a record's keys before its "text"


@dataclass
class _Article:
    """The lines of the article being read (or of text outside any tag, ``title`` None)."""

    title: str | None = None
    key: str = ""  # what names it: the title, else the id, else the line it starts on
    lines: list[str] = field(default_factory=list)
    chars: int = 0
    skipped: bool = False  # a page of a namespace that holds no articles (_NOT_ARTICLES): not read

    def add(self, line: str) -> None:
        self.lines.append(line)
        self.chars += len(line) + 1

    def cut(self, max_chars: int) -> str:
        """Its text up to the last paragraph break before ``max_chars``, kept no longer."""
        text = "\n".join(self.lines)
        cut = _paragraph_cut(text, max_chars)
        self.lines, self.chars = [text[cut:]], len(text) - cut
        return text[:cut]

    def text(self) -> str:
        """The article's text, its title line first. The title is kept: it is the article's heading (as a
        Markdown file's is), and with it the model learns that an article opens with its subject, so a
        title given as a prompt writes an article about it; it also tells apart stubs whose sentences are the
        same but for a name the title alone holds. It costs the few characters the lead sentence repeats.
        An article of its title alone (an emptied page, an interface message left blank) holds no text."""
        text = "\n".join(self.lines).strip("\r\n")  # the blank line before </doc> is WikiExtractor's
        if self.title is not None and text.strip() in (self.title.strip(), html.unescape(self.title).strip()):
            return ""
        return text + "\n" if text else ""


def head_kind(head: bytes, suffix: str) -> str | None:
    """What the first bytes of a file say it is: ``"doc"``, WikiExtractor's tagged articles (any suffix);
    for a file with no suffix, ``"json"`` for JSON records with a ``"text"`` field, one per line
    (WikiExtractor's ``--json``), or ``"records"`` for other JSON lines; else None (read as it is named)."""
    text = _head_text(head).lstrip("\ufeff \t\r\n")
    line, newline, _ = text.partition("\n")
    if _DOC_TAG.fullmatch(line):
        return "doc"
    if suffix or not line.startswith('{"'):
        return None
    if newline:  # the whole first line is here: it must be a JSON object (a pretty-printed file is not JSONL)
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            return None
        if not isinstance(record, dict):
            return None
        return "json" if "text" in record else "records"
    return "json" if '"text":' in line else "records"  # a long first record: its keys come first


def _head_text(head: bytes) -> str:
    if _looks_utf16(head):
        if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
            return head.decode("utf-16", "ignore")
        return head.decode("utf-16-le" if head[1::2].count(0) > head[0::2].count(0) else "utf-16-be", "ignore")
    return head.decode("utf-8", "replace")


def read_articles(handle: BinaryIO, path: Path, head: bytes, max_chars: int, position) -> Iterator[RawDocument]:
    """One document per ``<doc>`` article of a WikiExtractor file, streamed block by block (decoded and
    repaired as any text file); an article longer than ``max_chars`` is cut at paragraphs, and text outside
    the tags is a document of its own."""
    articles = _Articles(path, max_chars)
    lines_before, before = 0, 0
    for decoded in decoded_blocks(handle, path, head):
        articles.label.see(decoded)
        articles.repairs.add(decoded, lines_before)
        after = position()
        per_char = (after - before) / max(1, len(decoded.text))  # bytes on disk per character of this block
        lines = decoded.text.split("\n")
        if decoded.text.endswith("\n"):
            lines.pop()  # a block ends at a newline (the last one of a file may not)
        offset = 0
        for number, line in enumerate(lines, start=lines_before + 1):
            offset += len(line) + 1
            read = before + round(min(offset, len(decoded.text)) * per_char)  # bytes read by this line's end
            yield from articles.feed(line, number, read, round((len(line) + 1) * per_char))
        lines_before += decoded.text.count("\n")
        before = after
    yield from articles.close(position())  # the file ended inside an article


class _Articles:
    """A WikiExtractor file's lines, in order, made into documents."""

    def __init__(self, path: Path, max_chars: int):
        self.path, self.max_chars = path, max_chars
        self.label, self.repairs, self.article = EncodingLabel(), _Repairs(), _Article()

    def feed(self, line: str, number: int, read: int, line_bytes: int) -> Iterator[RawDocument]:
        """Take line ``number`` of the file (``read``: bytes of the file read by its end, ``line_bytes`` of
        them its own)."""
        if line.startswith("<doc ") and (tag := _DOC_TAG.fullmatch(line)):
            yield from self.close(read - line_bytes)  # an article left unclosed, or text outside the tags
            title = _TITLE.search(line)
            self.article = _Article(title.group(1) if title else "", (title and title.group(1)) or tag.group(1))
            self.article.skipped = bool(title and _NOT_ARTICLES.match(title.group(1)))
        elif line.rstrip() == _END_TAG:
            yield from self.close(read)
            self.article = _Article()
        elif line or self.article.lines:
            if self.article.title is None and not self.article.lines:
                self.article.key = str(number)  # text outside the tags: named by the line it starts on
            self.article.add(line)
            if self.article.chars > self.max_chars and not self.article.skipped:
                yield self._document(self.article.cut(self.max_chars), read)

    def close(self, read: int) -> Iterator[RawDocument]:
        """The article read so far as a document: an empty one where it holds no text (counted as such), none
        for blank lines between the tags."""
        text = self.article.text()
        if (self.article.title is not None or text) and not self.article.skipped:
            yield self._document(text, read)

    def _document(self, text: str, read: int) -> RawDocument:
        return RawDocument(text, str(self.path), self.label.encoding, name=f"{self.path}:{self.article.key}",
                           read_bytes=read, **self.repairs.take())


def extractor_output(file: Path) -> bool:
    """Whether ``file``, a file with no suffix (``.gz`` aside), is WikiExtractor output: tagged articles or
    JSON records with a text field. Such files are read with the default --include."""
    return not inner_suffix(file) and _head_kind(file) in ("doc", "json")


def _head_kind(file: Path) -> str | None:
    head = _head(file)
    return None if head is None else head_kind(head, inner_suffix(file))


def _head(file: Path) -> bytes | None:
    """The first bytes of ``file`` (decompressed as reading does); None where they cannot be read: reading it,
    if it is read, says what is wrong."""
    try:
        with _open(file) as handle:
            return handle.read(HEAD_BYTES)
    except (CorpusError, *READ_ERRORS):
        return None


# Files with no suffix that belong to a project, not to a corpus: never suggested for reading.
_PROJECT_FILES = {"license", "licence", "copying", "notice", "authors", "contributors", "changelog", "changes",
                  "readme", "makefile", "gnumakefile", "dockerfile", "containerfile", "procfile", "vagrantfile",
                  "gemfile", "rakefile", "jenkinsfile", "codeowners", "manifest", "install", "version", "todo"}
CHECKED_FILES = 50  # files with no suffix whose first bytes a hint looks at


def suffixless_hint(root: Path, files: list[Path]) -> str | None:
    """For a folder nothing in which matches --include: what its ``files`` with no suffix hold, if text, and
    the --include that reads them (``wiki_*`` for WikiExtractor's wiki_00, wiki_01, …); None when none
    holds text. A project's own files (LICENSE, Makefile, scripts) are not suggested."""
    candidates = [f for f in files if f.name.lower() not in _PROJECT_FILES]
    heads = {f: _head(f) for f in candidates[:CHECKED_FILES]}
    texts = [f for f, head in heads.items() if _holds_text(head)]
    if not texts:
        return None
    extracted = all(head_kind(heads[f], "") in ("doc", "json") for f in texts)
    return (f"it holds {_some(texts, root, len(candidates) - CHECKED_FILES)} with no suffix that hold "
            + ("WikiExtractor output" if extracted else "text")
            + f"; to read them add --include '{_pattern(texts)}'"
            + (" (one document per article)" if extracted else ""))


def unread_extracts(paths, include: tuple[str, ...], exclude: tuple[str, ...]) -> str | None:
    """A note naming the WikiExtractor files inside the given folders that an --include other than the
    default leaves out (the default reads them), and the --include that adds them; None when there are none."""
    if tuple(include) == DEFAULT_INCLUDE:
        return None
    left: list[Path] = []
    unchecked = 0
    for root, files in folder_files(paths):
        candidates = [f for f in files if not inner_suffix(f)
                      and _wanted(f, root, ("*",), exclude) and not _wanted(f, root, include, exclude)]
        found = [f for f in candidates[:CHECKED_FILES] if extractor_output(f)]
        left += found
        unchecked += max(0, len(candidates) - CHECKED_FILES) if found else 0  # the rest of a dump's files
    if not left:
        return None
    return (f"not read: {_some(left, None, unchecked)} of WikiExtractor output that --include leaves out; to read "
            f"them, one document per article, add --include '{_pattern(left)}'")


def _holds_text(head: bytes | None) -> bool:
    """First bytes of text: no known binary format, no NUL (UTF-16 aside), no script (#!)."""
    if not head or head.startswith(b"#!") or any(head.startswith(magic) for magic, _ in _MAGIC):
        return False
    return b"\x00" not in head or _looks_utf16(head)


def _some(files: list[Path], root: Path | None, unchecked: int) -> str:
    """``"2 file(s) (text/AA/wiki_00, text/AA/wiki_01)"``: a count and the first three names (below
    ``root``, else as given); ``unchecked``: files past those looked at, counted as more of the same."""
    names = [(f.relative_to(root).as_posix() if root else str(f)) for f in files[:3]]
    more = len(files) - 3 + max(0, unchecked)
    return f"{len(files) + max(0, unchecked)} file(s) ({', '.join(names)}{f' and {more} more' if more > 0 else ''})"


def _pattern(files: list[Path]) -> str:
    """The glob that reads ``files``: their names' common start less its digits (``wiki_*`` for wiki_00 …
    wiki_57, so the next file is read too), the name itself for one file without digits, else ``*``."""
    names = [f.name for f in files]
    prefix = os.path.commonprefix(names).rstrip("0123456789")
    if len(names) == 1 and prefix == names[0]:
        return prefix
    return f"{prefix}*" if len(prefix) >= 2 else "*"
