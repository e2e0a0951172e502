"""FictionBook (``.fb2``, and ``.fb2.zip``/``.fbz`` as libraries hand them out, unzipped by
``lunalm.corpus.documents`` like an e-book) read as the book's text.

An FB2 file is XML: a ``<description>`` of the book (authors, annotation, cover), one ``<body>`` holding the
book in ``<section>``s of ``<title>``, ``<p>``, ``<poem>``/``<stanza>``/``<v>``, ``<cite>``, ``<epigraph>``
and ``<empty-line/>``, more bodies for the notes (``name="notes"``, ``"comments"``), and ``<binary>`` images
in base64. The text is the main body's: a paragraph or verse line a line each, a blank line between
sections, stanzas and titles; the description, the notes, the images and the note marks inside the text
(``<a type="note">[1]</a>``) are left out. Until this was read, a folder of FB2 books, a form many
e-book libraries of the former Soviet countries offer, got only a note saying to convert them.

Files in the wild are often not well-formed XML (an HTML entity such as ``&nbsp;``, a stray ``<br>``), so the
markup is read by Python's forgiving HTML parser rather than an XML one. The bytes are decoded by
``lunalm.corpus.encoding.decode_markup``: in the code page the XML declaration names (``windows-1251``,
``koi8-r``) where the bytes decode in it, else as any text file.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

from lunalm.errors import CorpusError, NoTextError

FB2_SUFFIXES = (".fb2", ".fb2.zip", ".fbz")
_INLINE = {"emphasis", "strong", "style", "a", "strikethrough", "sub", "sup", "code", "image", "span", "b", "i",
           "u", "em"}
_SPACED = {"section", "title", "epigraph", "poem", "stanza", "cite", "empty-line", "annotation", "table", "body"}
_NOTES = {"notes", "comments", "footnotes"}


def fb2_suffix(path: Path) -> str | None:
    """The FictionBook suffix of ``path`` (``.fb2``, ``.fb2.zip``, ``.fbz``), or None."""
    name = path.name.lower()
    return next((suffix for suffix in FB2_SUFFIXES if name.endswith(suffix)), None)


def _local(tag: str) -> str:
    """A tag's name without its namespace prefix (some converters write ``<fb:p>``)."""
    return tag.rpartition(":")[2]


class _BookText(HTMLParser):
    """The main body's text, a block per line and a blank line between sections (see the module docstring)."""

    # HTML reads <style>'s content raw, and newer Pythons <title>'s too; FB2's <style> is an inline span and
    # its <title> holds paragraphs, so every element's content is parsed alike.
    CDATA_CONTENT_ELEMENTS = ()
    RCDATA_CONTENT_ELEMENTS = ()

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.lines: list[list[str]] = [[]]
        self.open: list[tuple[str, bool]] = []  # elements open now, and whether each is left out
        self.skipping = 0  # inside <description>, <binary>, a notes body or a note mark
        self.bodies = 0
        self.root = False  # a <FictionBook> element was seen

    def handle_starttag(self, tag, attrs):
        tag = _local(tag)
        if tag == "fictionbook":
            self.root = True
        if tag in ("image", "empty-line", "br"):  # empty elements, whether written <x/> or <x>
            if tag != "image":
                self._break(blank=tag == "empty-line")
            return
        attrs = dict(attrs)
        skip = (tag in ("description", "binary", "stylesheet")
                or tag == "body" and self._notes_body(attrs)
                or tag == "a" and (attrs.get("type") or "").lower() == "note")
        self.bodies += tag == "body"
        self.open.append((tag, skip))
        self.skipping += skip
        if tag not in _INLINE:
            self._break(blank=tag in _SPACED)

    def _notes_body(self, attrs: dict) -> bool:
        name = (attrs.get("name") or "").lower()
        return name in _NOTES or bool(name and self.bodies)  # a named body after the first holds notes

    def handle_endtag(self, tag):
        tag = _local(tag)
        if tag not in (open_tag for open_tag, _ in self.open):
            return
        while self.open:  # and what a damaged file left open inside it
            closed, skip = self.open.pop()
            self.skipping -= skip
            if closed == tag:
                break
        if tag not in _INLINE:
            self._break(blank=tag in _SPACED)

    def handle_startendtag(self, tag, attrs):
        tag = _local(tag)
        if tag in ("empty-line", "br") or tag not in _INLINE:
            self._break(blank=tag in _SPACED)

    def handle_data(self, data):
        if not self.skipping:
            self.lines[-1].append(re.sub(r"\s+", " ", data))

    def _break(self, blank: bool = False):
        if self.lines[-1]:
            self.lines.append([])
        if blank and (len(self.lines) < 2 or self.lines[-2] != ["\n"]):
            self.lines[-1].append("\n")
            self.lines.append([])

    def text(self) -> str:
        out: list[str] = []
        for parts in self.lines:
            line = "".join(parts)
            if line == "\n":
                if out and out[-1] != "":
                    out.append("")
                continue
            line = " ".join(line.split())
            if line:
                out.append(line)
        while out and out[-1] == "":
            out.pop()
        return "\n".join(out)


def fb2_text(markup: str, path: Path) -> str:
    """The text of an FB2 book's main body (see the module docstring)."""
    parser = _BookText()
    try:
        parser.feed(markup)
        parser.close()
    except AssertionError:  # Python's parser gives up on a damaged "<![" section
        parser = _BookText()
        parser.feed(markup.replace("<![", ""))
        parser.close()
    if not parser.root:
        raise CorpusError(f"{path}: not a FictionBook book (no <FictionBook> element); name it for what it holds, "
                          "or remove it")
    text = parser.text()
    if not text:
        raise NoTextError(f"{path}: a FictionBook file with no text in its body")
    return text
