"""Zip and tar archives given as the corpus (``lunalm.corpus.archives``): a data set as it was downloaded, a
WhatsApp chat exported with its media, a Leipzig Corpora Collection download. Before, each was refused with
"extract it and pass the extracted folder"."""

from __future__ import annotations

import re
import tarfile
import zipfile
from pathlib import Path

import pytest

from lunalm.config import DEFAULT_INCLUDE, CorpusConfig
from lunalm.corpus import Corpus
from lunalm.corpus.discover import unread_notes
from lunalm.errors import CorpusError
from tests.conftest import run_luna

TEXTS = {"haberler/ekonomi.txt": "Merkez Bankası faiz kararını açıkladı. Piyasalar kararı olumlu karşıladı.\n",
         "haberler/spor.md": "Milli takım dün akşam oynadığı maçı iki sıfır kazandı.\n",
         "kayitlar.jsonl": '{"text": "Bir satırlık kayıt, JSON Lines biçiminde."}\n'}
CHAT = ("2.01.2024 15:46 - Ali Veli: bu akşam geliyor musun\n"
        "2.01.2024 15:47 - Caner Saka: gelirim ya\n"
        "2.01.2024 15:48 - Ali Veli: IMG-20240102-WA0001.jpg (dosya ekli)\n"
        "2.01.2024 15:49 - Caner Saka: tamam, görüşürüz\n")


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("LUNALM_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def read(path: Path, **options) -> tuple[list[str], Corpus]:
    corpus = Corpus(CorpusConfig(paths=(str(path),), **options))
    return [document.text for document in corpus.documents()], corpus


def test_a_zip_is_read_as_its_folder_and_unpacked_once(tmp_path: Path, cache: Path):
    archive = tmp_path / "veri.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as packed:
        for name, text in TEXTS.items():
            packed.writestr(name, text)
        packed.writestr("__MACOSX/haberler/._ekonomi.txt", "resource fork")
        packed.writestr("haberler/foto.jpg", b"\xff\xd8\xff" + bytes(5000))
        packed.writestr("../kacak.txt", "a member named outside the folder")
        packed.writestr("/etc/kacak.txt", "an absolute member name")
    texts, corpus = read(archive)
    plain = [text.strip() for name, text in TEXTS.items() if not name.endswith(".jsonl")]
    assert sorted(text.strip() for text in texts) == sorted([*plain, "Bir satırlık kayıt, JSON Lines biçiminde."])
    [folder] = (cache / "unpacked").iterdir()
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) == \
        ["haberler/ekonomi.txt", "haberler/spor.md", "kayitlar.jsonl"]  # no photo, no resource fork, no escape
    assert not (tmp_path / "kacak.txt").exists()
    first = corpus.fingerprint()
    stamp = (folder / "kayitlar.jsonl").stat().st_mtime_ns
    assert read(archive)[1].fingerprint() == first and (folder / "kayitlar.jsonl").stat().st_mtime_ns == stamp
    [note] = unread_notes((str(archive),), DEFAULT_INCLUDE, ())
    assert note == f"read veri.zip from its 3 unpacked file(s) in {folder} (members that are no text, such as " \
                   "photos, stay packed)"


def test_a_member_name_written_in_utf8_without_the_flag_keeps_its_letters(tmp_path: Path, cache: Path):
    archive = tmp_path / "siirler.zip"
    with zipfile.ZipFile(archive, "w") as packed:
        packed.writestr("Şiirler/Güz.txt", "Güz geldi, yapraklar düştü.\n")
    data = bytearray(archive.read_bytes())  # as 7-Zip and macOS write it: UTF-8 bytes, no UTF-8 flag
    for magic, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = data.index(magic) + offset + 1
        data[at] &= ~0x08 & 0xFF  # bit 11 of the flags is bit 3 of their second byte
    archive.write_bytes(bytes(data))
    assert zipfile.ZipFile(archive).namelist() != ["Şiirler/Güz.txt"]  # zipfile alone reads cp437
    assert [text.strip() for text in read(archive)[0]] == ["Güz geldi, yapraklar düştü."]
    assert [p.relative_to(cache / "unpacked").parts[1:] for p in (cache / "unpacked").rglob("*.txt")] == \
        [("Şiirler", "Güz.txt")]


def test_a_whatsapp_export_with_its_media_is_read_as_the_chat(tmp_path: Path, cache: Path):
    archive = tmp_path / "WhatsApp Chat - Ali Veli.zip"
    with zipfile.ZipFile(archive, "w") as packed:
        packed.writestr("WhatsApp Chat with Ali Veli.txt", CHAT)
        packed.writestr("IMG-20240102-WA0001.jpg", b"\xff\xd8\xff" + bytes(100))
        packed.writestr("PTT-20240102-WA0002.opus", b"OggS" + bytes(100))
    texts, _ = read(archive)
    assert [text.strip() for text in texts] == \
        ["Ali Veli: bu akşam geliyor musun\nCaner Saka: gelirim ya\nCaner Saka: tamam, görüşürüz"]
    assert [p.name for p in (cache / "unpacked").rglob("*") if p.is_file()] == ["WhatsApp Chat with Ali Veli.txt"]


def test_a_leipzig_download_is_read_as_downloaded(tmp_path: Path):
    folder = tmp_path / "tur_news_2020_10K"
    folder.mkdir()
    (folder / "tur_news_2020_10K-sentences.txt").write_text(
        "1\tAnkara'da bugün hava güneşli olacak.\n2\tİstanbul'da yağmur bekleniyor.\n3\tİzmir'de rüzgâr var.\n",
        encoding="utf-8")
    (folder / "tur_news_2020_10K-words.txt").write_text("1\tve\t500\n2\tbir\t400\n", encoding="utf-8")
    archive = tmp_path / "indirilen" / "tur_news_2020_10K.tar.gz"
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as packed:
        packed.add(folder, arcname=folder.name)
    texts, _ = read(archive)
    assert [text.strip() for text in texts] == \
        ["Ankara'da bugün hava güneşli olacak.", "İstanbul'da yağmur bekleniyor.", "İzmir'de rüzgâr var."]
    notes = unread_notes((str(archive.parent),), DEFAULT_INCLUDE, ())  # the folder holding it: pass it itself
    assert any(note.startswith("not read: 1 archive(s) inside the folder (tur_news_2020_10K.tar.gz); to read one, "
                               "pass it itself (luna train tur_news_2020_10K.tar.gz)") for note in notes)
    with pytest.raises(CorpusError, match=re.escape("tur_news_2020_10K.tar.gz: archive(s), pass each one itself to "
                                                    "read it (luna train tur_news_2020_10K.tar.gz)")):
        read(archive.parent)


def test_an_archive_without_text_or_with_a_locked_member_says_so(tmp_path: Path):
    tables = tmp_path / "kaggle.zip"
    with zipfile.ZipFile(tables, "w") as packed:
        packed.writestr("train.csv", "id,metin\n1,Bir cümle.\n")
    with pytest.raises(CorpusError, match=re.escape(f"{tables}: archive has no files matching") + ".*"
                       + re.escape("it holds .csv files; to read them add --include '*.csv'")):
        read(tables)
    assert [text.strip() for text in read(tables, include=("*.csv",), text_field="metin")[0]] == ["Bir cümle."]
    locked = tmp_path / "sifreli.zip"
    with zipfile.ZipFile(locked, "w") as packed:
        packed.writestr("gizli.txt", "şifreli metin")
    data = bytearray(locked.read_bytes())  # the encryption flag set in its local and central headers
    for magic, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        data[data.index(magic) + offset] |= 0x1
    locked.write_bytes(bytes(data))
    with pytest.raises(CorpusError, match=re.escape(f"{locked}: 1 member(s) are encrypted (gizli.txt); extract them "
                                                    "with their password")):
        read(locked)
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the cache folder should be")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LUNALM_CACHE", str(blocked))
        with pytest.raises(CorpusError, match=re.escape(f"{tables}: cannot unpack it into {blocked / 'unpacked'} (")
                           + ".*set LUNALM_CACHE to a folder you can write to"):
            read(tables, include=("*.csv",), text_field="metin")
    truncated = tmp_path / "yarim.zip"
    truncated.write_bytes(tables.read_bytes()[:-30])  # no central directory: no zip to open, the reader says so
    with pytest.raises(CorpusError, match=re.escape("extract it (unzip yarim.zip)")):
        read(truncated)


def test_luna_analyze_reads_a_zip(tmp_path: Path, cache: Path):
    archive = tmp_path / "veri.zip"
    with zipfile.ZipFile(archive, "w") as packed:
        for name, text in TEXTS.items():
            packed.writestr(name, text)
    result = run_luna("analyze", str(archive), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert re.search(r"documents\s+3\n", result.stdout) and "read veri.zip from its 3 unpacked file(s)" in \
        result.stdout + result.stderr
