"""Web pages, e-books, Word, LibreOffice and PDF files read as their text (``lunalm.corpus.documents``)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from lunalm.config import CorpusConfig
from lunalm.corpus import Corpus
from lunalm.corpus.documents import page_text
from lunalm.corpus.read import read_file
from lunalm.errors import CorpusError

PAGE = """<!DOCTYPE html><html lang="tr"><head><title>Site adı</title><style>p {color: red}</style>
<script>var menu = "Anasayfa";</script></head><body>
<nav><ul><li><a href="/">Anasayfa</a></li><li>Haberler</li></ul></nav>
<div class="content"><h1>Yağmur &amp; güneş</h1>
<p>Bugün hava   çok
güzeldi; &quot;yarın&quot; da öyle olacak.</p><p>İkinci paragraf<br>yeni satırda.</p>
<ul><li>bir</li><li>iki</li></ul><table><tr><td>hücre 1</td><td>hücre 2</td></tr></table>
<form><input name="q"><button>Ara</button></form></div>
<footer>© 2024 Tüm hakları saklıdır</footer></body></html>"""


def text_of(path: Path, **config) -> list[str]:
    return [document.text for document in read_file(path, **config)]


def test_a_page_is_its_visible_text_a_block_per_line():
    assert page_text(PAGE) == ("Yağmur & güneş\nBugün hava çok güzeldi; \"yarın\" da öyle olacak.\nİkinci paragraf\n"
                               "yeni satırda.\nbir\niki\nhücre 1\nhücre 2")


def test_a_page_with_an_article_keeps_the_article_where_it_holds_most_of_the_text():
    body = "Makalenin metni burada uzun uzun anlatılıyor. " * 5
    page = f"<body><div>Çok okunanlar: birinci haber, ikinci haber</div><article><h2>Başlık</h2><p>{body}</p></article>" \
           "<div>Yorum yazın</div></body>"
    assert page_text(page) == f"Başlık\n{body.strip()}"
    teaser = "<body><p>" + "Sayfanın asıl metni burada duruyor. " * 10 + "</p><article>Kısa bir kutu</article></body>"
    assert page_text(teaser).endswith("Kısa bir kutu") and page_text(teaser).startswith("Sayfanın asıl metni")


def test_a_page_that_leaves_its_head_open_is_read():
    assert page_text("<html><head><title>x</title><meta charset=utf-8><body><p>Metin burada.<p>İkinci") == \
        "Metin burada.\nİkinci"


def test_a_page_in_cp1254_and_one_left_open_are_read(tmp_path: Path):
    page = tmp_path / "eski.htm"
    page.write_bytes("<html><body><p>Şişli'de ılık bir öğleden sonra</p><pre>kod  satırı\n  ikinci</pre>"
                     "<nav>menü".encode("cp1254"))
    assert text_of(page) == ["Şişli'de ılık bir öğleden sonra\nkod satırı\nikinci"]


def write_zip(path: Path, parts: dict[str, str | bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in parts.items():
            archive.writestr(name, data)
    return path


CONTAINER = """<?xml version="1.0"?><container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">
<rootfiles><rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/></rootfiles></container>"""


def epub(path: Path, chapters: int, *, encrypted: str | None = None) -> Path:
    items = "".join(f'<item id="c{n}" href="text/chapter-{n}.xhtml" media-type="application/xhtml+xml"/>'
                    for n in range(1, chapters + 1))
    spine = "".join(f'<itemref idref="c{n}"/>' for n in range(1, chapters + 1))
    opf = f"""<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" version="3.0"><manifest>
<item id="nav" href="nav.xhtml" properties="nav" media-type="application/xhtml+xml"/>
<item id="notes" href="text/notes.xhtml" media-type="application/xhtml+xml"/>{items}</manifest>
<spine><itemref idref="nav"/>{spine}<itemref idref="notes" linear="no"/></spine></package>"""
    parts = {"mimetype": "application/epub+zip", "META-INF/container.xml": CONTAINER, "OEBPS/content.opf": opf,
             "OEBPS/nav.xhtml": "<html><body><nav><ol><li>İçindekiler</li></ol></nav><p>Dizin</p></body></html>",
             "OEBPS/text/notes.xhtml": "<html><body><p>Dipnotlar</p></body></html>"}
    for n in range(1, chapters + 1):
        parts[f"OEBPS/text/chapter-{n}.xhtml"] = (f'<?xml version="1.0" encoding="utf-8"?><html xmlns="http://www.w3.org/1999/xhtml">'
                                                  f"<body><section><h2>Bölüm {n}</h2><p>Metin {n}.</p></section></body></html>")
    if encrypted is not None:
        parts["META-INF/encryption.xml"] = (
            '<encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container" '
            'xmlns:enc="http://www.w3.org/2001/04/xmlenc#"><enc:EncryptedData><enc:CipherData>'
            f'<enc:CipherReference URI="{encrypted}"/></enc:CipherData></enc:EncryptedData></encryption>')
    return write_zip(path, parts)


def test_an_epub_is_its_chapters_in_the_spine_s_order(tmp_path: Path):
    """chapter-10 after chapter-9 (not after chapter-1 as the names sort); the table of contents and the
    out-of-line notes left out."""
    expected = "\n\n".join(f"Bölüm {n}\nMetin {n}." for n in range(1, 11))
    assert text_of(epub(tmp_path / "kitap.epub", 10)) == [expected]


def test_an_epub_locked_by_drm_is_refused_by_name_and_one_with_obfuscated_fonts_is_read(tmp_path: Path):
    with pytest.raises(CorpusError, match=r"kilitli\.epub: an e-book locked by DRM"):
        text_of(epub(tmp_path / "kilitli.epub", 2, encrypted="OEBPS/text/chapter-2.xhtml"))
    assert text_of(epub(tmp_path / "yazi.epub", 1, encrypted="OEBPS/fonts/font.otf")) == ["Bölüm 1\nMetin 1."]


W = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'


def test_a_word_file_is_its_paragraphs_and_cells_a_line_each(tmp_path: Path):
    body = (f'<w:document {W}><w:body>'
            '<w:p><w:r><w:t>Birinci </w:t></w:r><w:r><w:t>paragraf</w:t><w:tab/><w:t>sekmeyle</w:t></w:r></w:p>'
            '<w:p><w:r><w:t>Satır</w:t><w:br/><w:t>kırıldı</w:t></w:r><w:del><w:r><w:delText>silindi</w:delText></w:r></w:del></w:p>'
            '<w:tbl><w:tr><w:tc><w:p><w:r><w:t>hücre</w:t></w:r></w:p></w:tc></w:tr></w:tbl></w:body></w:document>')
    path = write_zip(tmp_path / "rapor.docx", {"word/document.xml": body})
    assert text_of(path) == ["Birinci paragraf\tsekmeyle\nSatır\nkırıldı\nhücre"]
    with pytest.raises(CorpusError, match=r"bozuk\.docx: no word/document\.xml inside"):
        text_of(write_zip(tmp_path / "bozuk.docx", {"other.xml": "<a/>"}))
    (tmp_path / "kesik.docx").write_bytes(b"PK\x03\x04" + b"\x00" * 40)
    with pytest.raises(CorpusError, match=r"kesik\.docx: not a readable docx file"):
        text_of(tmp_path / "kesik.docx")


def test_a_libreoffice_file_is_its_paragraphs_without_footnotes(tmp_path: Path):
    ns = 'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"'
    content = (f'<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" {ns}>'
               '<office:body><office:text><text:h>Başlık</text:h>'
               '<text:p>Bir<text:s text:c="3"/>boşluk <text:span>ve yayılım</text:span>'
               '<text:note><text:note-body><text:p>dipnot</text:p></text:note-body></text:note> sonu</text:p>'
               '</office:text></office:body></office:document-content>')
    assert text_of(write_zip(tmp_path / "yazi.odt", {"content.xml": content})) == \
        ["Başlık\nBir   boşluk ve yayılım sonu"]


def pdf(pages: list[str]) -> bytes:
    """A PDF of one line of Helvetica text per line of each page (ASCII: the standard font's encoding)."""
    objects = ["<< /Type /Catalog /Pages 2 0 R >>", "", "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    kids = []
    for page in pages:
        lines = "".join(f"({line}) Tj 0 -14 Td " for line in page.split("\n"))
        stream = f"BT /F1 12 Tf 72 720 Td {lines}ET"
        objects.append(f"<< /Length {len(stream)} >>\nstream\n{stream}\nendstream")
        kids.append(len(objects) + 1)
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> "
                       f"/Contents {len(objects)} 0 R >>")
    objects[1] = f"<< /Type /Pages /Kids [{' '.join(f'{k} 0 R' for k in kids)}] /Count {len(kids)} >>"
    out, offsets = b"%PDF-1.4\n", []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{offset:010d} 00000 n \n" for offset in offsets).encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return out


def test_a_pdf_is_the_text_of_its_pages_with_words_broken_at_line_ends_joined(tmp_path: Path):
    path = tmp_path / "kitap.pdf"
    path.write_bytes(pdf(["The first page ends in a hyphen-\nated word.", "Second page. Well-\nKnown stays."]))
    assert text_of(path) == ["The first page ends in a hyphenated word.\nSecond page. Well-\nKnown stays."]


def test_a_pdf_with_no_text_or_cut_short_is_an_error_naming_it(tmp_path: Path):
    scan = tmp_path / "tarama.pdf"
    scan.write_bytes(pdf([""]))
    with pytest.raises(CorpusError, match=r"tarama\.pdf: a PDF with no text layer .* OCR"):
        text_of(scan)
    cut = tmp_path / "yarim.pdf"
    cut.write_bytes(pdf(["Some text here."])[:60])
    with pytest.raises(CorpusError, match=r"yarim\.pdf: not a readable PDF"):
        text_of(cut)


def test_a_folder_reads_pages_books_and_office_files_by_default_and_cuts_long_ones(tmp_path: Path):
    folder = tmp_path / "kitaplik"
    folder.mkdir()
    (folder / "sayfa.html").write_text(PAGE, encoding="utf-8")
    epub(folder / "kitap.epub", 3)
    (folder / "not.pdf").write_bytes(pdf(["A page of a PDF."]))
    corpus = Corpus(CorpusConfig(paths=(str(folder),)))
    assert sorted(Path(document.source).name for document in corpus.documents()) == ["kitap.epub", "not.pdf", "sayfa.html"]
    assert text_of(folder / "kitap.epub", max_document_chars=30) == ["Bölüm 1\nMetin 1.\n\n", "Bölüm 2\nMetin 2.\n\n",
                                                                      "Bölüm 3\nMetin 3."]


def test_an_old_word_file_is_refused_with_the_way_to_read_it(tmp_path: Path):
    old = tmp_path / "eski.doc"
    old.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100)
    with pytest.raises(CorpusError, match=r"eski\.doc: this is an old Microsoft Office file .* save it as \.docx"):
        text_of(old)


def test_a_folder_s_files_in_formats_it_cannot_read_are_named_with_the_way_to_read_them(tmp_path: Path):
    from lunalm.corpus.discover import unread_notes

    (tmp_path / "a.txt").write_text("Bir metin.", encoding="utf-8")
    for name in ("eski.doc", "kitap.mobi", "ikinci.doc"):
        (tmp_path / name).write_bytes(b"\xd0\xcf\x11\xe0")
    notes = [note for note in unread_notes([str(tmp_path)], ("*.txt",), ()) if "formats" in note]
    assert notes == ["not read: 3 file(s) in formats lunalm cannot read (eski.doc, ikinci.doc, kitap.mobi): old Word "
                     "files: save them as .docx; Kindle books: convert them to .epub (calibre: ebook-convert "
                     "BOOK.mobi BOOK.epub)"]
    assert not [note for note in unread_notes([str(tmp_path)], ("*.txt",), ("*.doc", "*.mobi")) if "formats" in note]


def test_a_zip_bomb_named_docx_is_refused_before_it_is_unpacked(tmp_path: Path, monkeypatch):
    from lunalm.corpus import documents

    monkeypatch.setattr(documents, "PART_BYTES", 10_000)
    body = f'<w:document {W}><w:body><w:p><w:r><w:t>{"a" * 20_000}</w:t></w:r></w:p></w:body></w:document>'
    path = write_zip(tmp_path / "bomba.docx", {"word/document.xml": body})
    with pytest.raises(CorpusError, match=r"bomba\.docx: its word/document\.xml unpacks to 0\.0 GB, more than"):
        text_of(path)


def test_a_scanned_pdf_in_a_folder_is_skipped_and_named_while_the_others_are_read(tmp_path: Path):
    """One scan among the books stopped the whole corpus; a folder of scans alone still says why."""
    (tmp_path / "kitap.pdf").write_bytes(pdf(["A page of a PDF with words."]))
    for name in ("tarama1.pdf", "tarama2.pdf"):
        (tmp_path / name).write_bytes(pdf([""]))
    corpus = Corpus(CorpusConfig(paths=(str(tmp_path),)))
    assert [Path(d.source).name for d in corpus.documents()] == ["kitap.pdf"]
    assert corpus.report.skipped_note() == (
        f"skipped 2 file(s) with no text to read: {tmp_path / 'tarama1.pdf'}: a PDF with no text layer (scanned pages "
        f"are images); run OCR on it (e.g. ocrmypdf) to read it; {tmp_path / 'tarama2.pdf'}: a PDF with no text "
        "layer (scanned pages are images); run OCR on it (e.g. ocrmypdf) to read it")
    (tmp_path / "kitap.pdf").unlink()
    with pytest.raises(CorpusError, match=r"no text found .* skipped 2 file\(s\) with no text to read: .*tarama1\.pdf"):
        list(Corpus(CorpusConfig(paths=(str(tmp_path),))).documents())


def test_a_page_with_a_damaged_marked_section_is_read_not_a_traceback():
    """Python's HTML parser raised AssertionError ("expected name token") on a damaged old IE comment."""
    assert page_text('<p>Bir</p><![</ndif]--> <p>İki</p>') == "Bir\nİki"


def test_a_damaged_zip_member_is_an_error_naming_the_file_not_a_traceback(tmp_path: Path):
    """Bytes changed inside a deflated part raised zlib.error, and an offset past the end OSError, from zipfile."""
    body = f'<w:document {W}><w:body>' + "".join(f"<w:p><w:r><w:t>Satır {n}</w:t></w:r></w:p>" for n in range(500)) + \
        "</w:body></w:document>"
    path = tmp_path / "hasarli.docx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("word/document.xml", body)
    data = bytearray(path.read_bytes())
    for offset in range(60, 400, 7):  # inside the deflated stream
        data[offset] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CorpusError, match=r"hasarli\.docx: not a readable docx file \(a docx is a zip archive; "):
        text_of(path)


WORDPAD = rb"""{\rtf1\ansi\ansicpg1254\deff0\nouicompat\deflang1055{\fonttbl{\f0\fnil\fcharset162 Calibri;}}
{\colortbl ;\red255\green0\blue0;}
{\*\generator Riched20 10.0.19041}\viewkind4\uc1 
\pard\sa200\sl276\slmult1\f0\fs22\lang31 T\'fcrk\'e7e bir metin: \'fe\'f0\'fd\'dd \'c7\'d6\'dc.\par
\b Kal\'fdn\b0  yaz\'fd ve \cf1 renkli\cf0  yaz\'fd.\line Yeni sat\'fdr\tab sekme\par
{\header gizli ba\'fel\'fdk}\u246\'f6rnek \u351?ey\par
}"""

TEXTEDIT = rb"""{\rtf1\ansi\ansicpg1254\cocoartf2867
\cocoatextscaling0\cocoaplatform0{\fonttbl\f0\fswiss\fcharset0 Helvetica;}
{\*\expandedcolortbl;;}
\f0\fs24 \cf0 Deste\uc0\u287 i T\'fcrk\'e7e\
    girintili \{ayra\'e7\}\
\uc0\u55357 \u56523  pano}"""


def test_rich_text_from_wordpad_and_textedit_is_its_text_in_its_code_page(tmp_path: Path):
    """WordPad's Turkish letters are cp1254 escapes (\\'fd is ı), or \\uN with a stand-in character after it;
    macOS TextEdit ends its lines with a backslash and writes an emoji as two \\uN halves. Read as text, such a
    file was its control words."""
    (tmp_path / "wordpad.rtf").write_bytes(WORDPAD)
    (tmp_path / "textedit.rtf").write_bytes(TEXTEDIT)
    assert text_of(tmp_path / "wordpad.rtf") == [
        "Türkçe bir metin: şğıİ ÇÖÜ.\nKalın yazı ve renkli yazı.\nYeni satır\tsekme\nörnek şey"]
    assert text_of(tmp_path / "textedit.rtf") == ["Desteği Türkçe\n    girintili {ayraç}\n📋 pano"]
    (tmp_path / "sahte.rtf").write_text("düz metin", encoding="utf-8")
    with pytest.raises(CorpusError, match=r"sahte\.rtf: not Rich Text"):
        text_of(tmp_path / "sahte.rtf")


def test_a_pdf_is_taken_apart_once_though_the_corpus_is_read_twice(tmp_path: Path, monkeypatch):
    """Corpus.documents primes its boilerplate counts on the first documents and then reads them: each PDF
    went through pypdf twice per pass. A changed file is taken out again."""
    from lunalm.corpus import documents

    calls = []
    original = documents._pdf_text
    monkeypatch.setattr(documents, "_pdf_text", lambda path: calls.append(path.name) or original(path))
    monkeypatch.setattr(documents, "_kept", documents._Kept(documents.EXTRACTED_CHARS))
    for name in ("a.pdf", "b.pdf"):
        (tmp_path / name).write_bytes(pdf([f"The page of {name} with words."]))
    corpus = Corpus(CorpusConfig(paths=(str(tmp_path),), filter_non_prose=True))
    assert [d.text for d in corpus.documents()] == ["The page of a.pdf with words.", "The page of b.pdf with words."]
    assert calls == ["a.pdf", "b.pdf"]
    (tmp_path / "a.pdf").write_bytes(pdf(["A new first page, longer than it was."]))
    assert text_of(tmp_path / "a.pdf") == ["A new first page, longer than it was."] and calls[-1] == "a.pdf"


def test_the_texts_kept_stay_within_their_limit_oldest_dropped_first(tmp_path: Path):
    from lunalm.corpus.documents import _Kept

    kept = _Kept(10)
    for name, text in (("a", "1234"), ("b", "5678"), ("c", "90ab")):
        (tmp_path / name).write_text("x")
        kept.text(tmp_path / name, lambda text=text: text)
    assert kept.chars == 8 and [key[0] for key in kept.texts] == [str(tmp_path / "b"), str(tmp_path / "c")]
