"""FictionBook books (``.fb2``, ``.fb2.zip``) read as their main body's text (``lunalm.corpus.fictionbook``),
and pages and books decoded in the code page they declare (``lunalm.corpus.encoding.decode_markup``)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from lunalm.config import CorpusConfig
from lunalm.corpus import Corpus
from lunalm.corpus.discover import unread_notes
from lunalm.corpus.encoding import decode_markup
from lunalm.corpus.read import read_file
from lunalm.errors import CorpusError, NoTextError

BOOK = """<?xml version="1.0" encoding="{encoding}"?>
<FictionBook xmlns="http://www.gribuser.ru/xml/fictionbook/2.0" xmlns:l="http://www.w3.org/1999/xlink">
<description><title-info><genre>prose</genre><author><first-name>Sabahattin</first-name>
<last-name>Ali</last-name></author><book-title>Kürk Mantolu Madonna</book-title>
<annotation><p>Kitabın tanıtım yazısı.</p></annotation><coverpage><image l:href="#kapak.jpg"/></coverpage>
</title-info></description>
<body><image l:href="#kapak.jpg"/><title><p>Sabahattin Ali</p><p>Kürk Mantolu Madonna</p></title>
<epigraph><p>Bir söz.</p><text-author>Biri</text-author></epigraph>
<section><title><p>Birinci bölüm</p></title>
<p>Ankara'ya geldiğim <emphasis>ilk</emphasis> gün<a l:href="#n1" type="note">[1]</a> yağmur   yağıyordu.</p>
<p>İkinci <style name="kalin">&amp;</style> son paragraf.</p><empty-line/><p>Boşluktan sonra.</p>
<poem><stanza><v>Birinci dize,</v><v>ikinci dize.</v></stanza><stanza><v>Üçüncü dize.</v></stanza></poem>
</section>
<section><title><p>İkinci bölüm</p></title><subtitle>* * *</subtitle><p>Son.</p></section>
</body>
<body name="notes"><section id="n1"><title><p>1</p></title><p>Bir dipnot.</p></section></body>
<binary id="kapak.jpg" content-type="image/jpeg">/9j/4AAQSkZJRgABAQEASABIAAD=</binary>
</FictionBook>"""

TEXT = ("Sabahattin Ali\nKürk Mantolu Madonna\n\nBir söz.\nBiri\n\nBirinci bölüm\n\n"
        "Ankara'ya geldiğim ilk gün yağmur yağıyordu.\nİkinci & son paragraf.\n\nBoşluktan sonra.\n\n"
        "Birinci dize,\nikinci dize.\n\nÜçüncü dize.\n\nİkinci bölüm\n\n* * *\nSon.")


def text_of(path: Path, **config) -> list[str]:
    return [document.text for document in read_file(path, **config)]


def book(path: Path, encoding: str = "utf-8", text: str = BOOK) -> Path:
    path.write_bytes(text.format(encoding=encoding).encode(encoding))
    return path


def test_a_book_is_its_main_body_without_description_notes_note_marks_or_images(tmp_path: Path):
    assert text_of(book(tmp_path / "madonna.fb2")) == [TEXT]


def test_a_book_whose_tags_carry_a_namespace_prefix_reads_the_same(tmp_path: Path):
    prefixed = BOOK.replace("<", "<fb:").replace("<fb:/", "</fb:").replace("<fb:?xml", "<?xml")
    assert text_of(book(tmp_path / "onekli.fb2", text=prefixed)) == [TEXT]


def test_a_book_in_a_declared_cyrillic_code_page_is_read_in_it(tmp_path: Path):
    """A real windows-1251 book (Bulgakov's, 295 KB) was read as cp1254: its tags outnumber its letters."""
    russian = "<p>Если человек не ездил на лошадях по глухим проселочным дорогам, то рассказывать нечего.</p>"
    markup = ('<?xml version="1.0" encoding="{encoding}"?><FictionBook xmlns:l="http://www.w3.org/1999/xlink">'
              '<description><title-info><genre>prose_rus_classic</genre><book-title>Записки</book-title>'
              '</title-info></description><body><section><title><p>Полотенце с петухом</p></title>'
              f'<image l:href="#cover.jpg"/>{russian}</section></body></FictionBook>')
    for encoding in ("windows-1251", "koi8-r"):
        path = book(tmp_path / f"{encoding}.fb2", encoding, markup)
        [document] = read_file(path)
        assert "Полотенце с петухом\n\nЕсли человек не ездил на лошадях" in document.text
        assert document.encoding == {"windows-1251": "cp1251", "koi8-r": "koi8-r"}[encoding]
    page = tmp_path / "sayfa.html"  # so is a page: its menu's links outnumber its Cyrillic letters
    links = "".join(f'<li><a href="/category/section-{n}/index.html" class="menu-item">{n}</a></li>' for n in range(20))
    page.write_bytes(f'<html><head><meta charset="windows-1251"></head><body><ul>{links}</ul>{russian}</body></html>'
                     .encode("cp1251"))
    assert text_of(page)[0].endswith("Если человек не ездил на лошадях по глухим проселочным дорогам, то "
                                     "рассказывать нечего.")
    plain = tmp_path / "plain.fb2"  # no declaration: the bytes are judged as any text file's
    plain.write_bytes(markup.replace('<?xml version="1.0" encoding="{encoding}"?>', "").encode("utf-8"))
    assert "Если человек" in text_of(plain)[0]


def test_a_declaration_does_not_overrule_what_the_bytes_show_for_turkish_and_utf_8():
    """Old Turkish pages say iso-8859-1 of cp1254 text; the byte statistics read ı ş ğ, not ý þ ð."""
    page = '<html><head><meta http-equiv="Content-Type" content="text/html; charset=iso-8859-1"></head>' \
           "<body><p>Işığı söndürmüş, şişeyi kırmış; ağır bir gün.</p></body></html>"
    assert "Işığı söndürmüş" in decode_markup(page.encode("cp1254")).text
    utf8 = '<meta charset="windows-1251"><p>Ağır ağır yürüdü.</p>'  # a wrong label on UTF-8 bytes
    assert "Ağır ağır" in decode_markup(utf8.encode("utf-8")).text
    greek = '<meta charset="windows-1253"><p>Καλημέρα κόσμε</p>'
    assert decode_markup(greek.encode("cp1253")).encoding == "cp1253"


def test_a_zipped_book_reads_as_the_book_and_a_damaged_or_empty_one_is_named(tmp_path: Path):
    inner = book(tmp_path / "madonna.fb2")
    for name in ("madonna.fb2.zip", "madonna.fbz"):
        with zipfile.ZipFile(tmp_path / name, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.write(inner, "madonna.fb2")
        assert text_of(tmp_path / name) == [TEXT]
    with zipfile.ZipFile(tmp_path / "bos.fb2.zip", "w") as archive:
        archive.writestr("okubeni.txt", "yok")
    with pytest.raises(CorpusError, match=r"bos\.fb2\.zip: holds no \.fb2 book \(it holds okubeni\.txt\)"):
        text_of(tmp_path / "bos.fb2.zip")
    (tmp_path / "yarim.fb2.zip").write_bytes((tmp_path / "madonna.fb2.zip").read_bytes()[:200])
    with pytest.raises(CorpusError, match=r"yarim\.fb2\.zip: not a readable zipped FictionBook"):
        text_of(tmp_path / "yarim.fb2.zip")


def test_a_damaged_book_is_read_and_one_that_is_no_book_is_named(tmp_path: Path):
    """Books in the wild: HTML entities, tags left open, a file cut short; each reads without a traceback."""
    damaged = BOOK.replace('İkinci <style name="kalin">&amp;</style> son', "İkinci&nbsp;son").replace("</section>", "", 1)
    assert "İkinci son paragraf." in text_of(book(tmp_path / "bozuk.fb2", text=damaged))[0]
    cut = BOOK.format(encoding="utf-8")[:900]
    (tmp_path / "kesik.fb2").write_text(cut, encoding="utf-8")
    assert text_of(tmp_path / "kesik.fb2")[0].startswith("Sabahattin Ali\nKürk Mantolu Madonna\n\nBir söz.")
    (tmp_path / "duz.fb2").write_text("Sadece düz bir metin.", encoding="utf-8")
    with pytest.raises(CorpusError, match=r"duz\.fb2: not a FictionBook book \(no <FictionBook> element\)"):
        text_of(tmp_path / "duz.fb2")
    (tmp_path / "bos.fb2").write_text(BOOK.split("<body>")[0] + "<body></body></FictionBook>", encoding="utf-8")
    with pytest.raises(NoTextError, match=r"bos\.fb2: a FictionBook file with no text in its body"):
        text_of(tmp_path / "bos.fb2")


def test_a_folder_of_books_is_read_by_default_without_a_note_to_convert_them(tmp_path: Path):
    folder = tmp_path / "kitaplar"
    folder.mkdir()
    book(folder / "madonna.fb2")
    other = BOOK.replace("Ankara'ya geldiğim", "İstanbul'a vardığım")
    with zipfile.ZipFile(folder / "ikinci.fb2.zip", "w") as archive:
        archive.writestr("ikinci.fb2", other.format(encoding="utf-8").encode("utf-8"))
    documents = list(Corpus(CorpusConfig(paths=(str(folder),))).documents())
    assert sorted(Path(document.source).name for document in documents) == ["ikinci.fb2.zip", "madonna.fb2"]
    assert not [note for note in unread_notes([str(folder)], CorpusConfig().include, ()) if "formats" in note]
