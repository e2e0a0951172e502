"""Line corpora with an ID before each line (Leipzig, ParlaMint) and the files of a Leipzig download that hold
no text."""

from __future__ import annotations

import re
import tarfile
from pathlib import Path

import pytest

from lunalm.corpus.discover import tables_as_text, unread_notes
from lunalm.errors import CorpusError
from tests.corpus.test_read import texts

# Lines in the formats of nld_news_2023_10K.tar.gz (richardvanthof/Enigmini-cracker, src/data), written anew in
# Turkish: the sentences numbered, and the files beside them.
SENTENCES = ["Ankara'da bugün hava güneşli olacak.", "Borsa günü yüzde 2 yükselişle tamamladı.",
             "Cumhurbaşkanı yarın İzmir'e gidecek.", "Dolar 32,5 liradan işlem görüyor."]
LEIPZIG_SIDES = {
    "words": "1\t!\t124\n2\t\"\t529\n101\tve\t4333\n102\tbir\t2004\n",
    "co_n": "465\t101\t5\t4.55\n631\t142\t5\t33.7\n149\t776\t4\t28.09\n",
    "co_s": "541\t107\t13\t8.04\n3058\t109\t4\t10.17\n120\t179\t29\t10.93\n",
    "inv_w": "101\t4333\t12\n313\t2738\t2\n14\t3137\t3\n",
    "inv_so": "5998\t1\n689\t2\n220\t3\n",
    "sources": "1\thttps://www.haber.com.tr/ekonomi/borsa/\t2020-02-02\n2\thttps://www.haber.com.tr/hava/\t2020-03-16\n",
    "meta": "8\tbuild date\t2024-12-05\n22\tWORD_TYPES\t26891\n33\tSENTENCES\t10000\n",
}


def _leipzig(folder: Path) -> Path:
    folder.mkdir()
    name = folder.name
    (folder / f"{name}-sentences.txt").write_text(
        "".join(f"{number}\t{sentence}\n" for number, sentence in enumerate(SENTENCES, start=1)), encoding="utf-8")
    for kind, lines in LEIPZIG_SIDES.items():
        (folder / f"{name}-{kind}.txt").write_text(lines, encoding="utf-8")
    (folder / f"{name}-import.sql").write_text("-- MySQL dump 10.9\n", encoding="utf-8")
    return folder


def test_a_leipzig_download_trains_on_its_sentences_without_their_numbers(tmp_path):
    """nld_news_2023_10K read as 10 documents of 4,827,631 characters: every sentence after its number, and the
    word list, co-occurrences, inverse lists, sources and meta data as text (80 % of it numbers and URLs). Each
    sentence is a document: they are sorted by their first letters, and as one text the last tenth held out
    would be the sentences from "T" on, and every window would run through sentences opening alike."""
    folder = _leipzig(tmp_path / "tur_news_2020_10K")
    assert texts([folder]) == SENTENCES
    notes = unread_notes([str(folder)], ("*.txt",), ())
    assert notes == [
        "not read: 7 file(s) of a Leipzig Corpora Collection download (tur_news_2020_10K-co_n.txt, "
        "tur_news_2020_10K-co_s.txt, tur_news_2020_10K-inv_so.txt and 4 more: word lists, co-occurrence counts, "
        "inverse lists, sources and meta data, numbers and URLs, no running text); its -sentences.txt file holds "
        "the text",
        "read as 'ID<TAB>text' lines, the ID before each line left out, each numbered line a document of its own: "
        "1 file(s) (tur_news_2020_10K-sentences.txt; its first IDs: '1', '2')"]


def test_a_leipzig_download_still_packed_or_without_its_sentences_says_what_to_pass(tmp_path, monkeypatch):
    """nld_news_2023_10K.tar.gz given as it was downloaded was "contains NUL bytes, so it is binary" (then "extract
    it", now read: tests/corpus/test_archives.py); a folder holding it said to --include '*.gz', which read it as
    that; a folder holding only the word list (as NB11/anki_italian keeps ita_news_2024_10K-words.txt) was read
    as the corpus."""
    monkeypatch.setenv("LUNALM_CACHE", str(tmp_path / "cache"))
    folder = _leipzig(tmp_path / "tur_news_2020_10K")
    archive = tmp_path / "indirilen" / "tur_news_2020_10K.tar.gz"
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as packed:
        packed.add(folder, arcname=folder.name)
    assert [text.strip() for text in texts([archive])] == [text.strip() for text in texts([folder])]
    with pytest.raises(CorpusError, match=re.escape("; tur_news_2020_10K.tar.gz: archive(s), pass each one itself "
                                                    "to read it (luna train tur_news_2020_10K.tar.gz)")):
        texts([archive.parent])
    (folder / "tur_news_2020_10K-sentences.txt").unlink()
    with pytest.raises(CorpusError, match=re.escape(f"{folder}: its only files matching *.txt are a Leipzig Corpora "
                                                    "Collection download's lists (tur_news_2020_10K-co_n.txt,")
                       + ".*; pass the download's -sentences.txt file, or the folder it is in"):
        texts([folder], include=("*.txt",))


def test_a_file_named_as_a_leipzig_list_that_holds_prose_is_read(tmp_path):
    (tmp_path / "benim-words.txt").write_text("Sözcükler üzerine bir deneme.\nİkinci satır.\n", encoding="utf-8")
    assert texts([tmp_path]) == ["Sözcükler üzerine bir deneme.\nİkinci satır.\n"]
    assert unread_notes([str(tmp_path)], ("*.txt",), ()) == []


def test_parlamint_lines_lose_their_utterance_ids(tmp_path):
    """ParlaMint-TR_2018-11-01-tbmm-T27.txt (clarin-eric/ParlaMint, Samples/ParlaMint-TR/2018): 5,491 characters
    read, 140 of them the four utterance IDs."""
    ids = ["tbmm-2018-11-01sit01spe0001par0001", "tbmm-2018-11-01sit01spe0002par0011",
           "tbmm-2018-11-01sit01spe0122par0609", "tbmm-2018-11-01sit01spe0126par0610"]
    said = ["Türkiye Büyük Millet Meclisinin 13’üncü Birleşimini açıyorum.", "Sayın Başkan, değerli milletvekilleri;",
            "Etik mesele dedim Sayın Başkan, etik.", "Etik değil, hukuk kuralları var; etiğe gerek kalmıyor."]
    (tmp_path / "ParlaMint-TR_2018-11-01-tbmm-T27.txt").write_text(
        "".join(f"{utterance}\t{text}\r\n" for utterance, text in zip(ids, said)), encoding="utf-8")
    assert texts([tmp_path]) == ["".join(f"{text}\n" for text in said)]
    assert tables_as_text([str(tmp_path)], ("*.txt",), ()) is None
    (tmp_path / "ParlaMint-TR_2018-11-01-tbmm-T27-meta.tsv").write_text(  # its utterances' speakers: no text
        "Text_ID\tID\tSpeaker_name\nParlaMint-TR_2018-11-01-tbmm-T27\ttbmm-2018-11-01sit01spe0001par0001\t"
        "Şentop, Mustafa\n", encoding="utf-8")
    (tmp_path / "yorumlar.tsv").write_text("metin\nÇok güzel.\n", encoding="utf-8")
    tables = [note for note in unread_notes([str(tmp_path)], ("*.txt",), ()) if "table file" in note]
    assert tables == [f"not read: 1 table file(s) (yorumlar.tsv; 0.0 MB) that --include leaves out; to train on their "
                      "rows add --include '*.tsv' --text-field COLUMN and, to keep the 1 kind(s) of file read now "
                      "(--include replaces the default list), --include '*.txt'"]


def test_text_with_tabs_that_is_no_id_column_is_read_whole(tmp_path):
    """Tabs in prose, poems and tables of labels: every character stays."""
    files = {
        "siir.txt": "Sessiz Gemi\n\tArtık demir almak günü gelmişse zamandan,\n\tMeçhule giden bir gemi kalkar.\n"
                    "\tSanki yolcusu yokmuş gibi\n",
        "iki.txt": "Gül\tBülbül\nDağ\tDeniz\nYaz\tKış\n",  # two columns, no IDs
        "etiket.txt": "1\tçok güzel bir film\n0\tberbat\n1\tharika\n0\tsıkıcı\n",  # a label column repeats
        "madde.txt": "1.\tBirinci madde\n2.\tİkinci madde\n3.\tÜçüncü madde\n",  # a numbered list
        "karisik.txt": "1\tBir cümle.\n2\tİki cümle.\nBaşlıksız bir satır.\n3\tÜç cümle.\n",  # one line without an ID
        "iki_satir.txt": "1\tBir.\n2\tİki.\n",  # too few lines to tell
        "sayi.txt": "1\t2020\n2\t2021\n3\t2022\n",  # no letter: a table of numbers
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    read = {Path(name).name: text for name, text in zip(sorted(files), texts([tmp_path], dedup=False))}
    assert read == files
    assert not any("ID<TAB>text" in note for note in unread_notes([str(tmp_path)], ("*.txt",), ()))
