"""WikiExtractor output: one document per article, whatever the file is called, found in a folder by default."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from lunalm.config import CorpusConfig
from lunalm.corpus import Corpus
from lunalm.corpus.discover import unread_notes
from lunalm.corpus.read import read_file
from lunalm.errors import CorpusError
from tests.conftest import TURKISH

# Real extracts (tests/corpus/data/wikiextractor/README.md): six Turkish Wikipedia articles in WikiExtractor's
# <doc> format from github.com/isacolak/P-W-P-D-S wiki_00, and two English records written with --json from
# github.com/yunan4nlp/Wikipedia_Json2conll text/AA/wiki_00. CC BY-SA, Wikipedia contributors.
DATA = Path(__file__).parent / "data" / "wikiextractor"


def documents(*paths, **options) -> list:
    return list(Corpus(CorpusConfig(paths=tuple(map(str, paths)), **options)).documents())


def article(number: int, title: str | None = None, attributes: str = "") -> str:
    title = title or f"Madde {number}"
    url = f"https://tr.wikipedia.org/wiki?curid={number}"
    return f'<doc id="{number}"{attributes} url="{url}" title="{title}">\n{title}\n\n{TURKISH[number % 4]}\n</doc>\n'


def test_a_real_extract_is_one_document_per_article_without_its_tags():
    corpus = Corpus(CorpusConfig(paths=(str(DATA / "tr"),)))
    read = list(corpus.documents())
    titles = [d.name.rsplit(":", 1)[1] for d in read]
    assert titles == ["Film (anlam ayrımı)", "GIMP", "Cinepaint", "InDesign", "Spor"]
    assert read[0].text == "Film (anlam ayrımı)\n\nFilm şu anlamlara gelebilir:\n"
    assert read[2].text == ("Cinepaint\n\nCinepaint, eski adı Film Gimp olan projenin yeni adıdır. GNU/GPL bir "
                            "proje olan Gimp'in video için özelleştirilmesi ile oluşmuştur.\n")
    assert not any("<doc" in d.text or "</doc>" in d.text for d in read)
    assert corpus.report.total("empty") == 0  # MediaWiki:Helppage, an interface page, is not read at all
    source = (DATA / "tr" / "AA" / "wiki_00").read_text(encoding="utf-8")
    body = [line for line in source.splitlines() if line.strip() and not line.startswith(("<doc ", "</doc>"))]
    assert [line for d in read for line in d.text.splitlines() if line.strip()] == body[:-1]  # all but that title


def test_a_real_json_extract_is_a_document_per_record():
    file = DATA / "en-json" / "AA" / "wiki_00"
    records = [json.loads(line) for line in file.read_text(encoding="utf-8").splitlines()]
    assert [d.text for d in documents(DATA / "en-json")] == [record["text"] for record in records]
    assert [d.text for d in documents(file)] == [record["text"] for record in records]  # the file named alone too


@pytest.mark.parametrize("name", ["wiki_00", "wiki_00.txt", "wiki_00.gz", "dump.md"])
def test_the_first_line_not_the_name_says_it_is_extractor_output(tmp_path: Path, name: str):
    text = "".join(article(n) for n in range(3))
    path = tmp_path / name
    if name.endswith(".gz"):
        with gzip.open(path, "wt", encoding="utf-8") as handle:
            handle.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    read = list(read_file(path))
    assert [d.text for d in read] == [f"Madde {n}\n\n{TURKISH[n % 4]}" for n in range(3)]
    assert [d.name for d in read] == [f"{path}:Madde {n}" for n in range(3)]
    assert [d.text for d in documents(tmp_path)] == [d.text for d in read]  # its folder reads it by default


def test_titles_with_quotes_other_attributes_crlf_and_a_legacy_code_page(tmp_path: Path):
    text = article(1, 'Bir "Kitap"', ' revid="99"') + article(2)
    (tmp_path / "wiki_00").write_bytes(text.replace("\n", "\r\n").encode("cp1254"))
    read = list(read_file(tmp_path / "wiki_00"))
    assert [d.name.split(":", 1)[1] for d in read] == ['Bir "Kitap"', "Madde 2"]
    assert read[0].encoding in ("cp1254", "iso-8859-9") and TURKISH[1].split("\n")[0] in read[0].text
    assert [d.text for d in documents(tmp_path)] == [f'Bir "Kitap"\n\n{TURKISH[1]}', f"Madde 2\n\n{TURKISH[2]}"]


def test_blocks_and_long_articles_change_no_text(tmp_path: Path, monkeypatch):
    """Read in blocks of a few bytes (a 1 GB file is read in 4 MB ones) the articles are the same; an article
    longer than max_document_chars is cut at paragraphs, its pieces the whole of it."""
    import lunalm.corpus.read as read_module

    long_text = "\n\n".join(TURKISH * 10)
    text = article(1) + f'<doc id="2" url="u" title="Uzun">\nUzun\n\n{long_text}\n</doc>\n' + article(3)
    (tmp_path / "wiki_00").write_text(text, encoding="utf-8")
    whole = [d.text for d in read_file(tmp_path / "wiki_00")]
    monkeypatch.setattr(read_module, "BLOCK_BYTES", 50)
    read = list(read_file(tmp_path / "wiki_00", max_document_chars=1000))
    assert [d.text for d in read[:1] + read[-1:]] == [whole[0], whole[2]]
    pieces = [d.text for d in read[1:-1]]
    assert len(pieces) > 2 and all(len(piece) <= 1000 for piece in pieces) and "".join(pieces) == whole[1]
    ends = [d.read_bytes for d in read]
    assert ends == sorted(ends) and ends[-1] == (tmp_path / "wiki_00").stat().st_size


def test_an_unclosed_article_and_text_outside_the_tags_are_kept(tmp_path: Path):
    text = article(1) + "Etiketsiz bir satır.\n\n" + article(2).replace("</doc>\n", "") + article(3)
    (tmp_path / "wiki_00").write_text(text, encoding="utf-8")
    read = list(read_file(tmp_path / "wiki_00"))
    assert [d.text for d in read] == [f"Madde 1\n\n{TURKISH[1]}", "Etiketsiz bir satır.\n", f"Madde 2\n\n{TURKISH[2]}",
                                      f"Madde 3\n\n{TURKISH[3]}"]
    line = text.split("\n").index("Etiketsiz bir satır.") + 1
    assert [d.name.rsplit(":", 1)[1] for d in read] == ["Madde 1", str(line), "Madde 2", "Madde 3"]


def test_a_folder_reads_extractor_output_by_default_and_no_other_file_without_a_suffix(tmp_path: Path):
    (tmp_path / "text" / "AA").mkdir(parents=True)
    (tmp_path / "text" / "AA" / "wiki_00").write_text(article(1) + article(2), encoding="utf-8")
    records = [{"id": "3", "revid": "1", "url": "u", "title": "Üç", "text": TURKISH[3]}]
    (tmp_path / "text" / "AA" / "wiki_01").write_text(json.dumps(records[0], ensure_ascii=False) + "\n",
                                                        encoding="utf-8")
    (tmp_path / "a.txt").write_text(TURKISH[0], encoding="utf-8")
    for name in ("LICENSE", "Makefile", "notlar"):
        (tmp_path / name).write_text("Bu dosya okunmamalı: " + name + "\n", encoding="utf-8")
    (tmp_path / "data").write_text('{"id": 1, "label": "x"}\n', encoding="utf-8")  # JSON lines with no text
    read = documents(tmp_path)
    assert [d.text for d in read] == [TURKISH[0], f"Madde 1\n\n{TURKISH[1]}", f"Madde 2\n\n{TURKISH[2]}", TURKISH[3]]
    assert [d.text for d in documents(tmp_path, include=("*.txt",))] == [TURKISH[0]]  # a chosen --include is kept
    note = unread_notes([str(tmp_path)], ("*.txt",), ())
    assert (f"not read: 2 file(s) ({tmp_path / 'text/AA/wiki_00'}, {tmp_path / 'text/AA/wiki_01'}) of WikiExtractor "
            "output that --include leaves out; to read them, one document per article, add --include 'wiki_*'") in note
    assert not any("WikiExtractor" in n for n in unread_notes([str(tmp_path)], CorpusConfig().include, ()))


def test_a_folder_of_text_files_without_a_suffix_says_which_include_reads_them(tmp_path: Path):
    (tmp_path / "LICENSE").write_text("MIT License\n", encoding="utf-8")
    (tmp_path / "run.sh").write_text("#!/bin/sh\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=r"directory has no files matching .*; it holds \.sh files; add text "
                                          r"files or change --include$"):
        documents(tmp_path)  # a project's files: the message is what it was
    for name in ("kitap1", "kitap2", "kitap10"):
        (tmp_path / name).write_text(TURKISH[0], encoding="utf-8")
    (tmp_path / "image").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    with pytest.raises(CorpusError) as error:
        documents(tmp_path)
    assert str(error.value).endswith("it holds 3 file(s) (kitap1, kitap10, kitap2) with no suffix that hold text; "
                                     "to read them add --include 'kitap*'")
    assert [d.text for d in documents(tmp_path, include=("kitap*",), dedup=False)] == [TURKISH[0]] * 3


def test_extractor_output_an_include_leaves_out_is_named_in_the_error(tmp_path: Path):
    (tmp_path / "AA").mkdir()
    for number in range(12):
        (tmp_path / "AA" / f"wiki_{number:02d}").write_text(article(number), encoding="utf-8")
    with pytest.raises(CorpusError) as error:
        documents(tmp_path, include=("*.txt",))
    assert str(error.value) == (f"{tmp_path}: directory has no files matching *.txt; it holds 12 file(s) (AA/wiki_00, "
                                "AA/wiki_01, AA/wiki_02 and 9 more) with no suffix that hold WikiExtractor output; "
                                "to read them add --include 'wiki_*' (one document per article)")
    assert len(documents(tmp_path, include=("wiki_*",), dedup=False)) == 12


def test_luna_analyze_counts_articles_of_a_folder_named_alone():
    from tests.conftest import run_luna

    proc = run_luna("analyze", str(DATA / "tr"), "--json")  # in a process of its own: the tokenizer's threads
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["corpus"]["documents"] == 5 and report["corpus"]["empty_documents"] == 0
    assert report["corpus"]["longest_document_source"].endswith("wiki_00:GIMP")


def test_a_damaged_compressed_file_with_no_suffix_is_not_a_traceback_when_a_folder_is_looked_at(tmp_path: Path):
    """Discovery looks at the first bytes of suffix-less files (wiki_01.xz): a damaged .xz raised LZMAError
    there, which the hand-made error list of that look left out; it now shares reading's list."""
    from lunalm.config import DEFAULT_INCLUDE
    from lunalm.corpus.discover import discover
    from lunalm.errors import CorpusError

    (tmp_path / "wiki_01.xz").write_bytes(b"\xfd7zXZ\x00garbage")
    with pytest.raises(CorpusError, match="directory has no files matching"):
        discover([str(tmp_path)], DEFAULT_INCLUDE, ())


def test_interface_pages_templates_and_modules_are_not_articles(tmp_path: Path):
    """Older WikiExtractor versions wrote the wiki's interface messages beside the articles: 256 of the 309
    pages of a real Turkish extract were "MediaWiki:…" labels. A title with a colon elsewhere is an article."""
    pages = [article(1), article(2, "MediaWiki:Watchthis"), article(3, "Şablon:Bilgi kutusu"),
             article(4, "Modül:Arguments"), article(5, "Star Wars: Bölüm I"), article(6, "Vikipedi:Hakkında")]
    (tmp_path / "wiki_00").write_text("".join(pages), encoding="utf-8")
    assert [d.name.split(":", 1)[1] for d in read_file(tmp_path / "wiki_00")] == \
        ["Madde 1", "Star Wars: Bölüm I", "Vikipedi:Hakkında"]
