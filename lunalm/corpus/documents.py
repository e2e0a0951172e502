"""Web pages, e-books, office documents and subtitles read as their text: ``.html``/``.htm`` (a saved or
scraped page), ``.epub`` (its chapters in reading order), ``.docx`` (Word), ``.odt`` (LibreOffice), ``.pdf``
(its text layer, through ``pypdf``), ``.rtf`` (WordPad, ``lunalm.corpus.rtf``) and ``.srt``/``.vtt``/``.ass``
(``lunalm.corpus.subtitles``); ``.fb2`` (FictionBook, ``lunalm.corpus.fictionbook``). One file is one
document, cut at paragraph breaks past ``max_document_chars`` like a long text file.

A page keeps what a reader sees as its text: paragraphs, headings, list items and table cells on lines of
their own; scripts, styles, navigation, forms and footers are dropped, and a page with an ``<article>`` or
``<main>`` element keeps only that where it holds most of the page's text. Until these were read, a folder
of e-books or Word files was passed over without a word, and a page named alone was read with its tags.
"""

from __future__ import annotations

import logging
import posixpath
import re
import zipfile
import zlib
from collections import OrderedDict
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from xml.etree import ElementTree

from lunalm.corpus.encoding import Decoded, decode_bytes, decode_markup
from lunalm.corpus.fictionbook import FB2_SUFFIXES, fb2_suffix, fb2_text
from lunalm.corpus.read import RawDocument, _paragraph_cut, _Repairs, read_failed
from lunalm.corpus.subtitles import SUBTITLE_SUFFIXES, subtitle_text
from lunalm.corpus.telegram import export_page_text, is_export_page
from lunalm.errors import CorpusError, NoTextError

PAGE_SUFFIXES = (".html", ".htm", ".xhtml")
DOCUMENT_SUFFIXES = (*PAGE_SUFFIXES, ".epub", ".docx", ".odt", ".rtf", ".pdf", ".fb2", ".fbz", *SUBTITLE_SUFFIXES)  # and
#                     .fb2.zip, which document_suffix tells by the whole name

# --- web pages -----------------------------------------------------------------------------------------
_SKIPPED = {"script", "style", "noscript", "template", "svg", "math", "head", "nav", "footer", "aside", "form",
            "button", "select", "textarea", "iframe", "object", "canvas", "figure"}
_BLOCKS = {"p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "li", "tr", "td", "th", "blockquote", "pre",
           "section", "article", "main", "header", "table", "ul", "ol", "dl", "dd", "dt", "figcaption", "hr",
           "address", "caption", "body", "center"}
_VOID = {"br", "hr", "img", "meta", "link", "input", "wbr", "area", "base", "col", "embed", "source", "track"}
PART_BYTES = 1 << 30  # the most a part of an .epub, .docx or .odt may unpack to
MAIN_SHARE = 0.3  # an <article>/<main> holding at least this share of a page's text is the page's text


class _PageText(HTMLParser):
    """The visible text of a page, a block element per line; and apart, that of its <article>/<main>."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.lines: list[list[str]] = [[]]
        self.main: list[list[str]] = [[]]
        self.open: list[str] = []  # skipped, <pre> and article/main elements open now
        self.skipping = self.in_main = self.in_pre = 0

    def handle_starttag(self, tag, attrs):
        if tag == "body" and "head" in self.open:  # HTML lets a page leave </head> out
            self.handle_endtag("head")
        if tag in _VOID:
            if tag in ("br", "hr"):
                self._break()
            return
        if tag in _SKIPPED:
            self.skipping += 1
        elif tag in ("article", "main"):
            self.in_main += 1
        elif tag == "pre":
            self.in_pre += 1
        else:
            if tag in _BLOCKS:
                self._break()
            return
        self.open.append(tag)
        self._break()

    def handle_endtag(self, tag):
        if tag in self.open:  # and what the page left open inside it
            while self.open:
                closed = self.open.pop()
                self.skipping -= closed in _SKIPPED
                self.in_main -= closed in ("article", "main")
                self.in_pre -= closed == "pre"
                if closed == tag:
                    break
            self._break()
        elif tag in _BLOCKS:
            self._break()

    def handle_startendtag(self, tag, attrs):
        if tag in ("br", "hr") or tag in _BLOCKS:
            self._break()

    def handle_data(self, data):
        if self.skipping:
            return
        if self.in_pre:
            for n, line in enumerate(data.split("\n")):
                if n:
                    self._break()
                self._add(line)
        else:
            self._add(re.sub(r"\s+", " ", data))

    def _add(self, text: str):
        self.lines[-1].append(text)
        if self.in_main:
            self.main[-1].append(text)

    def _break(self):
        for lines in (self.lines, self.main):
            if lines[-1]:
                lines.append([])

    def text(self) -> str:
        page, main = _joined(self.lines), _joined(self.main)
        return main if main and len(main) >= MAIN_SHARE * len(page) else page


def _joined(lines: list[list[str]]) -> str:
    kept = (" ".join("".join(parts).split()) for parts in lines)
    return "\n".join(line for line in kept if line)


def page_text(markup: str) -> str:
    try:
        return _parsed(markup)
    except AssertionError:  # Python's parser gives up on a damaged "<![" section (an old IE conditional comment)
        return _parsed(markup.replace("<![", ""))


def _parsed(markup: str) -> str:
    parser = _PageText()
    parser.feed(markup)
    parser.close()
    return parser.text()


# --- e-books and office files ----------------------------------------------------------------------------
_CONTAINER = "{urn:oasis:names:tc:opendocument:xmlns:container}"
_OPF = "{http://www.idpf.org/2007/opf}"


def _epub_text(book: zipfile.ZipFile, path: Path) -> str:
    names = set(book.namelist())
    chapters = _spine(book, names, path) or sorted(n for n in names if n.lower().endswith(PAGE_SUFFIXES))
    if _encrypted(book, names, path) & set(chapters):  # fonts alone are often obfuscated, the text readable
        raise NoTextError(f"{path}: an e-book locked by DRM; its text cannot be read")
    return "\n\n".join(text for text in (page_text(_decoded(_part(book, name, path))) for name in chapters) if text)


_XMLENC = "{http://www.w3.org/2001/04/xmlenc#}"


def _encrypted(book: zipfile.ZipFile, names: set[str], path: Path) -> set[str]:
    """The parts of an e-book its META-INF/encryption.xml lists as encrypted."""
    if "META-INF/encryption.xml" not in names:
        return set()
    listed = ElementTree.fromstring(_part(book, "META-INF/encryption.xml", path)).iter(f"{_XMLENC}CipherReference")
    return {posixpath.normpath(reference.get("URI", "")) for reference in listed}


def _spine(book: zipfile.ZipFile, names: set[str], path: Path) -> list[str]:
    """The chapters in reading order, as the package file's spine lists them (nothing when it is missing)."""
    if "META-INF/container.xml" not in names:
        return []
    rootfile = ElementTree.fromstring(_part(book, "META-INF/container.xml", path)).find(f".//{_CONTAINER}rootfile")
    opf = rootfile.get("full-path", "") if rootfile is not None else ""
    if opf not in names:
        return []
    package, folder = ElementTree.fromstring(_part(book, opf, path)), posixpath.dirname(opf)
    items = {item.get("id"): item for item in package.iter(f"{_OPF}item")}
    chapters = []
    for ref in package.iter(f"{_OPF}itemref"):
        item = items.get(ref.get("idref"))
        if item is None or ref.get("linear") == "no" or "nav" in (item.get("properties") or "").split():
            continue
        name = posixpath.normpath(posixpath.join(folder, item.get("href", "").split("#")[0]))
        if name in names and name not in chapters:
            chapters.append(name)
    return chapters


_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_ODF_TEXT = "{urn:oasis:names:tc:opendocument:xmlns:text:1.0}"


def _docx_text(book: zipfile.ZipFile, path: Path) -> str:
    """Word's paragraphs a line each (tables' cells too); deleted tracked changes and notes left out."""
    lines = []
    for paragraph in ElementTree.fromstring(_part(book, "word/document.xml", path)).iter(f"{_W}p"):
        parts = []
        for node in paragraph.iter():
            if node.tag == f"{_W}t":
                parts.append(node.text or "")
            elif node.tag == f"{_W}tab":
                parts.append("\t")
            elif node.tag in (f"{_W}br", f"{_W}cr"):
                parts.append("\n")
        lines.append("".join(parts))
    return "\n".join(lines)


def _odt_text(book: zipfile.ZipFile, path: Path) -> str:
    """LibreOffice's paragraphs and headings a line each; footnotes left out."""
    return "\n".join(map(_odf_line, _odf_paragraphs(ElementTree.fromstring(_part(book, "content.xml", path)))))


def _odf_paragraphs(node) -> Iterator:
    for child in node:
        if child.tag in (f"{_ODF_TEXT}p", f"{_ODF_TEXT}h"):
            yield child
        elif child.tag != f"{_ODF_TEXT}note":  # lists, tables, sections hold paragraphs; a note's are left out
            yield from _odf_paragraphs(child)


def _odf_line(node) -> str:
    parts = [node.text or ""]
    for child in node:
        if child.tag == f"{_ODF_TEXT}s":
            count = child.get(f"{_ODF_TEXT}c", "1")
            parts.append(" " * (min(int(count), 1000) if count.isdigit() else 1))
        elif child.tag == f"{_ODF_TEXT}tab":
            parts.append("\t")
        elif child.tag == f"{_ODF_TEXT}line-break":
            parts.append("\n")
        elif child.tag not in (f"{_ODF_TEXT}note", f"{_ODF_TEXT}p", f"{_ODF_TEXT}h"):  # a span, a link
            parts.append(_odf_line(child))
        parts.append(child.tail or "")
    return "".join(parts)


def _part(book: zipfile.ZipFile, name: str, path: Path) -> bytes:
    """A part of a zipped document, refused past PART_BYTES unpacked (a zip bomb named .docx)."""
    try:
        info = book.getinfo(name)
    except KeyError:
        raise CorpusError(f"{path}: no {name} inside, so not a {path.suffix[1:]} document; "
                          "save it again from its editor, or remove it") from None
    if info.file_size > PART_BYTES:
        raise CorpusError(f"{path}: its {name} unpacks to {info.file_size / 1e9:.1f} GB, more than any "
                          f"document's text ({PART_BYTES / 1e9:.1f} GB at most); remove it or --exclude it")
    return book.read(info)


_HYPHENATED = re.compile(r"(\w)-\n(?=[a-zçğıöşüâîûəа-я])")  # a word broken across lines of a PDF page


def _pdf_text(path: Path) -> str:
    try:
        from pypdf import PdfReader
    except ImportError:
        raise CorpusError(f"{path}: reading PDF needs pypdf: pip install pypdf") from None
    logging.getLogger("pypdf").setLevel(logging.ERROR)  # its warnings on damaged files would go to stderr
    try:
        reader = PdfReader(path)
        if reader.is_encrypted and not reader.decrypt(""):
            raise NoTextError(f"{path}: a password-protected PDF; save an unlocked copy to read it")
        pages = [page.extract_text() or "" for page in reader.pages]
    except CorpusError:
        raise
    except Exception as exc:  # pypdf's parser fails on a damaged file in many ways (PyPdfError, ValueError, …)
        raise CorpusError(f"{path}: not a readable PDF ({type(exc).__name__}: {exc}); is the file complete?") from None
    text = "\n".join(page.strip() for page in pages if page.strip())
    if not text:
        raise NoTextError(f"{path}: a PDF with no text layer (scanned pages are images); run OCR on it "
                          "(e.g. ocrmypdf) to read it")
    return _HYPHENATED.sub(r"\1", text)


_ZIPPED = {".epub": _epub_text, ".docx": _docx_text, ".odt": _odt_text}


def _decoded(data: bytes):
    return decode_bytes(data).text


def document_suffix(path: Path) -> str | None:
    """Which of the readers here reads ``path`` (one of DOCUMENT_SUFFIXES, or ``.fb2.zip``), or None."""
    suffix = path.suffix.lower()
    return fb2_suffix(path) or (suffix if suffix in DOCUMENT_SUFFIXES else None)


def read_document(path: Path, suffix: str, max_chars: int) -> Iterator[RawDocument]:
    """The text of a page, e-book or office file (``suffix``: from ``document_suffix``) as documents."""
    repairs, encoding = _Repairs(), suffix[1:]
    if suffix in FB2_SUFFIXES or suffix in PAGE_SUFFIXES or suffix in SUBTITLE_SUFFIXES:  # text files: decoded
        decoded, text = _decoded_text(path, suffix)
        repairs.add(decoded, 0)
        encoding = decoded.encoding
    else:
        text = _extracted(path, suffix)
    while len(text) > max_chars:
        cut = _paragraph_cut(text, max_chars)
        yield RawDocument(text[:cut], str(path), encoding, **repairs.take())
        text = text[cut:]
    if text.strip():
        yield RawDocument(text, str(path), encoding, **repairs.take())


def _decoded_text(path: Path, suffix: str) -> tuple[Decoded, str]:
    """A FictionBook's, a page's or a subtitle file's bytes decoded, and the text read from them."""
    if suffix in FB2_SUFFIXES:
        data = _bytes(path) if suffix == ".fb2" else _unzipped(path, suffix, _fb2_member)
        decoded = decode_markup(data, str(path))
        return decoded, fb2_text(decoded.text, path)
    if suffix in PAGE_SUFFIXES:
        decoded = decode_markup(_bytes(path), str(path))
        chat = is_export_page(decoded.text)  # Telegram's HTML export (lunalm.corpus.telegram)
        return decoded, export_page_text(decoded.text) if chat else page_text(decoded.text)
    decoded = decode_bytes(_bytes(path), source=str(path))
    return decoded, subtitle_text(decoded.text, suffix)


def _rtf(path: Path) -> str:
    from lunalm.corpus.rtf import looks_rtf, rtf_text

    data = _bytes(path)
    if not looks_rtf(data[:16]):
        raise CorpusError(f"{path}: not Rich Text (it does not begin with {{\\rtf}}); name it for what it holds, "
                          "or remove it")
    return rtf_text(data)


# A corpus is read more than once (Corpus.documents primes its boilerplate counts on the first documents, then
# reads them; training samples the tokenizer's text before it encodes): the text of PDFs, e-books, Word and
# Rich Text files, slow to take out (a 300-page PDF ~0.8 s), is kept for the next read, up to EXTRACTED_CHARS.
EXTRACTED_CHARS = 24_000_000


class _Kept:
    """The texts taken out most recently, by file (path, size, modification time), oldest dropped first."""

    def __init__(self, limit: int):
        self.limit, self.chars, self.texts = limit, 0, OrderedDict()

    def text(self, path: Path, extract) -> str:
        try:
            stat = path.stat()
            key = (str(path), stat.st_size, stat.st_mtime_ns)
        except OSError:
            return extract()  # reading it says what is wrong
        if key in self.texts:
            self.texts.move_to_end(key)
            return self.texts[key]
        text = extract()
        if len(text) <= self.limit:
            self.texts[key], self.chars = text, self.chars + len(text)
            while self.chars > self.limit:
                self.chars -= len(self.texts.popitem(last=False)[1])
        return text


_kept = _Kept(EXTRACTED_CHARS)


def _extracted(path: Path, suffix: str) -> str:
    return _kept.text(path, lambda: _pdf_text(path) if suffix == ".pdf" else _rtf(path) if suffix == ".rtf"
                      else _zipped_text(path, suffix))


def _bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CorpusError(f"{path}: cannot be read ({exc.strerror or exc}); make it readable or exclude it") from None


def _zipped_text(path: Path, suffix: str) -> str:
    return _unzipped(path, suffix, _ZIPPED[suffix])


def _fb2_member(book: zipfile.ZipFile, path: Path) -> bytes:
    """The book inside a ``.fb2.zip``/``.fbz`` (its first ``.fb2`` member)."""
    names = [name for name in book.namelist() if name.lower().endswith(".fb2")]
    if not names:
        raise CorpusError(f"{path}: holds no .fb2 book (it holds {', '.join(book.namelist()[:3]) or 'nothing'}); "
                          "extract it and pass what it holds, or remove it")
    return _part(book, names[0], path)


def _unzipped(path: Path, suffix: str, reader):
    """``reader(archive, path)`` on the zip archive at ``path``; a damaged archive is a CorpusError naming it."""
    try:
        with zipfile.ZipFile(path) as book:
            return reader(book, path)
    except PermissionError:
        raise CorpusError(f"{path}: permission denied; make it readable (chmod +r) or exclude it") from None
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, OSError) as exc:  # a
        #      damaged or encrypted zip member, an odd method, an offset past the end (EINVAL)
        if suffix in FB2_SUFFIXES:
            raise CorpusError(f"{path}: not a readable zipped FictionBook ({exc}); is it complete? download it "
                              "again, or remove it") from None
        raise CorpusError(f"{path}: not a readable {suffix[1:]} file (a {suffix[1:]} is a zip archive; {exc}); "
                          "is it complete? save it again, or remove it") from None
    except ElementTree.ParseError as exc:
        raise read_failed(path, exc) from None
