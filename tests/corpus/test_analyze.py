"""Corpus statistics: Turkish-aware casing where case is touched (unique words)."""

from __future__ import annotations

import json
from pathlib import Path

from lunalm.corpus.language import lower


def turkish_lower(text: str) -> str:
    return lower(text, "tr")
from tests.conftest import run_luna


def test_turkish_lower_maps_dotted_and_dotless_i():
    assert turkish_lower("IŞIK İstanbul ILIK İĞNE") == "ışık istanbul ılık iğne"
    assert turkish_lower("IŞIK") != "IŞIK".lower()  # str.lower gives "işik" (and İ -> i + combining dot)
    assert len(turkish_lower("İ")) == 1


def test_analyze_counts_unique_words_with_turkish_casing(tmp_path: Path):
    text = tmp_path / "words.txt"
    text.write_text("IŞIK ışık Işık. İSTANBUL İstanbul istanbul. ILIK ılık.\n", encoding="utf-8")
    result = run_luna("analyze", str(text), "--json")
    assert result.returncode == 0, result.stderr
    corpus = json.loads(result.stdout)["corpus"]
    assert corpus["words"] == 8 and corpus["unique_words"] == 3  # ışık, istanbul, ılık


def test_each_file_keeps_its_count_of_distinct_words_not_the_words(tmp_path: Path):
    """A folder of many files held a set of words per file until the end (3.5 GB for 20,077 files)."""
    from lunalm.config import CorpusConfig
    from lunalm.corpus import Corpus
    from lunalm.corpus.analyze import analyze

    (tmp_path / "a.txt").write_text("bir iki üç. Bir iki dört.\n", encoding="utf-8")
    (tmp_path / "b.txt").write_text("beş altı. beş yedi sekiz dokuz on.\n", encoding="utf-8")
    result = analyze(Corpus(CorpusConfig(paths=(str(tmp_path),))), lambda texts: [1] * len(texts), "t", "tr")
    a, b = (result.files[str(tmp_path / name)] for name in ("a.txt", "b.txt"))
    assert a.vocabulary == set() and a.summary()["unique_words"] == 4  # closed when b.txt began
    assert b.summary()["unique_words"] == 6 and result.corpus.summary()["unique_words"] == 10


def test_files_nothing_was_kept_from_are_listed_with_the_reason(tmp_path):
    (tmp_path / "a.txt").write_text("Merhaba dünya, bugün hava çok güzel ve güneşli.\n", encoding="utf-8")
    (tmp_path / "b kopya.txt").write_bytes((tmp_path / "a.txt").read_bytes())
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "blank.txt").write_text("  \n", encoding="utf-8")
    (tmp_path / "c.txt").write_text("Başka bir metin burada duruyor, o da Türkçe.\n", encoding="utf-8")
    done = run_luna("analyze", str(tmp_path), "--files")
    assert done.returncode == 0, done.stderr
    assert "1 dropped (and 2 empty ones)" in done.stdout
    assert f"file: {tmp_path / 'b kopya.txt'}: nothing kept, 1 duplicate document(s) of earlier ones" in done.stdout
    assert f"file: {tmp_path / 'empty.txt'}: nothing kept, no text (empty)" in done.stdout
    assert f"file: {tmp_path / 'blank.txt'}: nothing kept, no text (empty)" in done.stdout


def test_the_non_prose_share_is_of_the_text_as_read_with_or_without_filter(tmp_path):
    (tmp_path / "a.txt").write_text("Bu bir cümle ve düzgün bir Türkçe metin olarak yazıldı.\n37\n| a | b | c | d |\n"
                                    "| 1 | 2 | 3 | 4 |\nBaşka bir düzgün cümle de burada yer alıyor, okunuyor.\n",
                                    encoding="utf-8")
    shares = []
    for flags in ((), ("--filter",)):
        done = run_luna("analyze", str(tmp_path), "--json", *flags)
        assert done.returncode == 0, done.stderr
        shares.append(json.loads(done.stdout)["corpus"]["non_prose_share"])
    assert shares[0] == shares[1] == round(39 / 150, 4)  # was 39 / 111 (the kept text) with --filter


def test_a_document_the_filter_drops_whole_counts_as_not_prose(tmp_path: Path):
    """A file of page numbers alone vanished under --filter while the summary said "not prose 0 chars
    (0.00 %)" and the examples' heading said --filter "drops" such text."""
    corpus = tmp_path / "c"
    corpus.mkdir()
    prose = "Bugün Ankara'da hava çok güzeldi ve herkes sokaktaydı. Akşam yağmur yağdı.\n" * 3
    index = "".join(f"{n}\n" for n in range(1, 200))
    (corpus / "a.txt").write_text(prose, encoding="utf-8")
    (corpus / "index.txt").write_text(index, encoding="utf-8")
    proc = run_luna("analyze", str(corpus), "--filter")
    assert proc.returncode == 0, proc.stderr
    share = 100 * len(index) / (len(index) + len(prose))
    assert (f"not prose            {len(index):,} chars ({share:.2f} %), 1 document(s) that held nothing else "
            "dropped whole") in proc.stdout
    assert "examples; --filter drops" not in proc.stdout
    report = json.loads(run_luna("analyze", str(corpus), "--filter", "--json").stdout)
    assert report["corpus"]["filtered_documents"] == 1 and report["corpus"]["documents"] == 1
