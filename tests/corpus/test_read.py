"""Reading files and folders: formats, encodings, bad input."""

from __future__ import annotations

import gzip
import json
import os
import re
from pathlib import Path

import pytest

from lunalm.config import CorpusConfig
from lunalm.corpus import Corpus
from lunalm.corpus.clean import clean_text
from lunalm.errors import CorpusError
from tests.conftest import TURKISH


def texts(paths, **options) -> list[str]:
    return [d.text for d in Corpus(CorpusConfig(paths=tuple(map(str, paths)), **options)).documents()]


def test_txt_md_jsonl_gz_are_read(tmp_path: Path):
    (tmp_path / "a.txt").write_text(TURKISH[0], encoding="utf-8")
    (tmp_path / "b.md").write_text(TURKISH[1], encoding="utf-8")
    with gzip.open(tmp_path / "c.txt.gz", "wt", encoding="utf-8") as handle:
        handle.write(TURKISH[2])
    lines = [json.dumps({"content": TURKISH[3], "id": 1}, ensure_ascii=False)]
    (tmp_path / "d.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (tmp_path / "skip.csv").write_text("a,b\n", encoding="utf-8")
    assert texts([tmp_path], text_field="content") == TURKISH


def test_encodings_are_detected_per_file(tmp_path: Path):
    for name, encoding in [("a.txt", "utf-8-sig"), ("b.txt", "utf-16"), ("c.txt", "cp1254")]:
        (tmp_path / name).write_bytes(TURKISH[0].encode(encoding))
    corpus = Corpus(CorpusConfig(paths=(str(tmp_path),), dedup=False))
    assert [d.text for d in corpus.documents()] == [TURKISH[0]] * 3
    found = {Path(k).name: v.encoding for k, v in corpus.report.files.items()}
    assert found["a.txt"].startswith("utf-8") and found["b.txt"].startswith("utf-16")
    assert found["c.txt"] in ("cp1254", "iso-8859-9")


def test_mojibake_file_is_repaired_and_counted(tmp_path: Path):
    broken = TURKISH[0].encode("utf-8").decode("cp1254")
    (tmp_path / "moji.txt").write_text(broken, encoding="utf-8")
    corpus = Corpus(CorpusConfig(paths=(str(tmp_path),)))
    assert [d.text for d in corpus.documents()] == [TURKISH[0]]
    assert corpus.report.total("repaired_chars") > 0


def test_duplicates_dropped_and_counted(tmp_path: Path):
    for name in ("a.txt", "b.txt", "c.txt"):
        (tmp_path / name).write_text(TURKISH[0], encoding="utf-8")
    corpus = Corpus(CorpusConfig(paths=(str(tmp_path),)))
    assert len(list(corpus.documents())) == 1
    assert corpus.report.total("duplicates") == 2


def test_include_exclude_and_hidden(tmp_path: Path):
    (tmp_path / "keep.txt").write_text(TURKISH[0], encoding="utf-8")
    (tmp_path / "drop.txt").write_text(TURKISH[1], encoding="utf-8")
    (tmp_path / ".hidden.txt").write_text(TURKISH[2], encoding="utf-8")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "deep.md").write_text(TURKISH[3], encoding="utf-8")
    assert texts([tmp_path], exclude=("drop.txt",)) == [TURKISH[0], TURKISH[3]]
    assert texts([tmp_path], include=("*.md",)) == [TURKISH[3]]


def test_large_file_is_split_at_paragraphs(tmp_path: Path):
    paragraph = TURKISH[1] + "\n"
    (tmp_path / "big.txt").write_text(paragraph * 200, encoding="utf-8")
    documents = texts([tmp_path], max_document_chars=5000, dedup=False)
    assert len(documents) > 1 and all(len(d) <= 5000 for d in documents)
    assert "".join(documents) == paragraph * 200


def test_clean_text_nfc_controls_newlines():
    decomposed = "s\u0327eker\r\nI\u0307stanbul\x00\x07\ufeff\tson"
    cleaned, removed, references = clean_text(decomposed)
    assert cleaned == "şeker\nİstanbul\tson"
    assert removed == 3 and references == 0


def test_html_character_references_are_the_characters_they_name(tmp_path: Path):
    # As a statute collection scraped from the web and old Turkish sites write them
    scraped = ("Ek Madde 1 &#8210; (Ek: 17/4/2014) Ba&#351;bakan&#305;n &ccedil;a&#287;r&#x131;s&#x131; "
               "&quot;&Ouml;nemli&quot;&nbsp;dedi &amp; AT&T R&D; &foo; &#0; &nothing")
    cleaned, removed, references = clean_text(scraped)
    assert cleaned == ('Ek Madde 1 \u2012 (Ek: 17/4/2014) Başbakanın çağrısı "Önemli" dedi & AT&T R&D; &foo; '
                       "&#0; &nothing")
    assert (removed, references) == (0, 12)
    # as old pages and double escaping leave them; invisible breaks inside words go
    assert clean_text("&ccedil ve &ouml, &amp;quot;Merhaba&amp;quot; &amp;#351;ehre Cumhur&shy;başkanı "
                      "gaze\u200bteciler") == ('ç ve ö, "Merhaba" şehre Cumhurbaşkanı gazeteciler', 2, 9)
    assert clean_text("&#1;x") == ("x", 0, 1)  # a reference to a control character: nothing, as in a browser
    (tmp_path / "haber.txt").write_text("Ba&#351;kan &ccedil;ok konu&#351;tu.\n", encoding="utf-8")
    corpus = Corpus(CorpusConfig(paths=(str(tmp_path),)))
    assert [d.text for d in corpus.documents()] == ["Başkan çok konuştu.\n"]
    assert corpus.report.total("references_decoded") == 3


@pytest.mark.parametrize("content, expected", [
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, "PNG image"),
    (b"PK\x03\x04" + b"\x00" * 100, "zip archive"),
    (b"\x80\x02}q\x00.", "pickle"),
    (b"abc\x00\x01\x02def\x00\x00\x00\x00ghi" * 10, "binary"),
])
def test_binary_files_are_refused(tmp_path: Path, content: bytes, expected: str):
    path = tmp_path / "x.txt"
    path.write_bytes(content)
    with pytest.raises(CorpusError, match=expected) as error:
        texts([path])
    assert str(path) in str(error.value)


def test_an_archive_or_a_document_says_how_to_get_its_text(tmp_path: Path):
    """A zipped data set passed as it was downloaded was only told to be removed. (A .pdf, .docx or .epub is
    read as its text: tests/corpus/test_documents.py.)"""
    for name, content, hint in (("veri.zip", b"PK\x03\x04" + bytes(100), "extract it (unzip veri.zip) and pass"),
                                ("tez.txt", b"%PDF-1.7" + bytes(100), "PDF document, not text; remove it from the "
                                                                      "corpus or --exclude it; name it tez.pdf"),
                                ("tablo.xlsx", b"PK\x03\x04" + bytes(100), "save it as .csv from its editor")):
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(CorpusError, match=re.escape(hint)):
            texts([path])


def test_missing_path_empty_dir_and_empty_file(tmp_path: Path):
    with pytest.raises(CorpusError, match="no such file"):
        texts([tmp_path / "nope"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorpusError, match="no files matching"):
        texts([tmp_path / "empty"])
    (tmp_path / "blank.txt").write_text("  \n\n", encoding="utf-8")
    with pytest.raises(CorpusError, match="no text found"):
        texts([tmp_path / "blank.txt"])


def test_links_to_missing_files_are_named_not_skipped_silently(tmp_path: Path):
    from lunalm.corpus.discover import broken_links
    from tests.conftest import run_luna

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text(TURKISH[0] + "\n", encoding="utf-8")
    (corpus / "b.txt").symlink_to(tmp_path / "moved" / "b.txt")
    (corpus / "c.csv").symlink_to(tmp_path / "moved" / "c.csv")  # --include leaves it out anyway
    assert texts([corpus]) == [TURKISH[0] + "\n"]
    note = broken_links([str(corpus)], ("*.txt",), ())
    assert note == (f"not read: 1 link(s) to a file that does not exist ({corpus / 'b.txt'} -> "
                    f"{tmp_path / 'moved' / 'b.txt'}); point them at the moved files or delete them")
    assert broken_links([str(corpus)], ("*.txt",), ("b.*",)) is None
    proc = run_luna("analyze", str(corpus))  # in a process of its own: the tokenizer's threads and fork
    assert proc.returncode == 0 and f"note: {note}" in proc.stdout
    with pytest.raises(CorpusError, match=r"b.txt: a link to .*moved/b.txt, which does not exist"):
        texts([corpus / "b.txt"])


def test_jsonl_errors_name_the_line(tmp_path: Path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"text": "merhaba"}\n{"text": broken\n', encoding="utf-8")
    with pytest.raises(CorpusError, match=r"d.jsonl:2: malformed JSON"):
        texts([path])
    path.write_text('{"text": "merhaba"}\n{"body": "x"}\n', encoding="utf-8")
    with pytest.raises(CorpusError, match=r"d.jsonl:2: no field 'text' \(found: body\)"):
        texts([path])


def test_jsonl_lines_that_are_json_strings_are_documents(tmp_path: Path):
    """As in turkish-nlp-suite's Corona-mini-dataset: each line a bare JSON string, no object around it."""
    path = tmp_path / "d.jsonl"
    path.write_text('"Koronavirüs salgını \\u00e7ok yayıldı."\n\n"İkinci satır: \\"alıntı\\""\n', encoding="utf-8")
    assert texts([path]) == ["Koronavirüs salgını çok yayıldı.", 'İkinci satır: "alıntı"']
    path.write_text('"metin"\n[1, 2]\n', encoding="utf-8")
    with pytest.raises(CorpusError, match=r"d.jsonl:2: a JSON array where a record was expected: an object with "
                                          r"the text in its 'text' field \(--text-field\), or a string"):
        texts([path])


def test_a_field_that_lists_its_lines_is_one_document(tmp_path: Path):
    """imawss/turkish-poems-api stores each poem as a list of its lines ("poem": ["Sen sabahlar …", …]):
    `--text-field poem` stopped at "field 'poem' is a JSON array, expected a string"."""
    path = tmp_path / "poetry.json"
    path.write_text('[{"poemName": "Aşk Mönüsü", "poem": ["Sen sabahlar ve şafaklar kadar güzelsin", '
                    '"Sen ülkemin yaz geceleri gibisin"]}]', encoding="utf-8")
    assert texts([path], text_field="poemName,poem") == \
        ["Aşk Mönüsü\n\nSen sabahlar ve şafaklar kadar güzelsin\nSen ülkemin yaz geceleri gibisin"]
    path.write_text('[{"poem": ["bir", {"dize": "iki"}]}]', encoding="utf-8")
    with pytest.raises(CorpusError, match="field 'poem' is a JSON array, expected a string"):
        texts([path], text_field="poem")


def test_null_texts_are_empty_documents_not_errors(tmp_path: Path):
    """Exported data sets write a missing value as `null` (a row, or a field of one): no text, as a blank line
    or a parquet null, not a stop of the whole run."""
    path = tmp_path / "d.jsonl"
    path.write_text('{"text": "Birinci belge."}\n{"text": null}\nnull\n{"text": "İkinci belge."}\n', encoding="utf-8")
    assert texts([path]) == ["Birinci belge.", "İkinci belge."]
    path.write_text('{"q": "Soru?", "a": null}\n', encoding="utf-8")
    assert texts([path], text_field="q,a") == ["Soru?"]


def test_unreadable_file(tmp_path: Path, monkeypatch):
    path = tmp_path / "secret.txt"
    path.write_text("gizli", encoding="utf-8")
    path.chmod(0)
    if os.geteuid() == 0:  # root reads anything: make open() fail as it would for a normal user
        def denied(*args, **kwargs):
            raise PermissionError(13, "Permission denied")
        monkeypatch.setattr("lunalm.corpus.read.open", denied, raising=False)
    with pytest.raises(CorpusError, match="permission denied"):
        texts([path])


def test_boilerplate_is_dropped_from_the_first_document_too(tmp_path: Path):
    bodies = ["Yen 144'ten 131'e yükseldi.", "Kentte 1 milyon 376 bin 588'i kadın.", "Dolar 32,41 oldu.",
              "Maç 1-1 bitti."]
    for number, body in enumerate(bodies):
        (tmp_path / f"{number}.txt").write_text(f"SON DAKİKA\n{body} PAYLAŞ Yorum yaz A\n", encoding="utf-8")
    corpus = Corpus(CorpusConfig(paths=(str(tmp_path),), filter_non_prose=True))
    assert [d.text.strip() for d in corpus.documents()] == bodies


def test_json_arrays_of_records_or_strings_are_documents(tmp_path: Path):
    """``.json`` data sets as people export them: an array of records, of strings, or an object holding one
    array; anything else is named with what was expected."""
    path = tmp_path / "d.json"
    path.write_text('[{"baslik": "A", "metin": "Birinci haber."}, {"metin": "  "}, {"metin": "İkinci haber."}]',
                    encoding="utf-8")
    assert texts([path], text_field="metin") == ["Birinci haber.", "İkinci haber."]
    path.write_text('{"version": 1, "data": ["Bir.", "İki."]}', encoding="utf-8")
    assert texts([path]) == ["Bir.", "İki."]
    path.write_bytes('[{"text": "Şişli\'de güneşli bir gün."}]'.encode("cp1254"))  # saved by a Turkish Windows
    assert texts([path]) == ["Şişli'de güneşli bir gün."]
    for content, error in (('{"a": [], "b": []}', "a JSON object with 2 arrays (a, b); expected an array"),
                           ('[{"body": "x"}]', "record 1: no field 'text' (found: body)"),
                           ('[{"text": 3}]', "record 1: field 'text' is a JSON number, expected a string"),
                           ('[{"text": "x"', "malformed JSON")):
        path.write_text(content, encoding="utf-8")
        with pytest.raises(CorpusError, match=re.escape(error)):
            texts([path])


def test_json_lines_under_a_json_name_are_read_line_by_line(tmp_path: Path):
    """mC4 ships JSON Lines as c4-tr.tfrecord-00000-of-01024.json.gz, and a Datastore export of Turkish news
    (selimfirat/turkish-news-analytics, news.json) is JSON Lines with a BOM: both were "malformed JSON (Extra
    data: line 2 column 1)". A JSON array on one line, or pretty-printed, stays an array."""
    rows = [{"text": t, "timestamp": "2020-01-01T00:00:00Z", "url": f"https://ornek.com.tr/{n}"}
            for n, t in enumerate(TURKISH)]
    lines = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode()
    (tmp_path / "c4-tr.tfrecord-00000-of-01024.json.gz").write_bytes(gzip.compress(lines))
    (tmp_path / "news.json").write_bytes(b"\xef\xbb\xbf" + lines.replace(b"\n", b"\r\n"))
    assert texts([tmp_path / "c4-tr.tfrecord-00000-of-01024.json.gz"]) == TURKISH
    assert texts([tmp_path / "news.json"], dedup=False) == TURKISH
    (tmp_path / "news.json").write_text(json.dumps(rows, ensure_ascii=False, indent=1), encoding="utf-8")
    assert texts([tmp_path / "news.json"]) == TURKISH
    (tmp_path / "news.json").write_text(json.dumps(rows, ensure_ascii=False) + "\n\n", encoding="utf-8")
    assert texts([tmp_path / "news.json"]) == TURKISH


@pytest.mark.parametrize("name", ["data/train-00000-of-00002.parquet", "corpus.txt", "rows.jsonl.zst"])
def test_a_git_lfs_pointer_says_to_fetch_the_data(tmp_path: Path, name: str):
    """A Hugging Face dataset repository cloned without git-lfs (a3kc74/toxic-comment-detection at 51b148b:
    data/train-00000-of-00002.parquet is this pointer) was "Parquet magic bytes not found"; a pointer named
    .txt was read as a three-line text."""
    path = tmp_path / name
    path.parent.mkdir(exist_ok=True)
    path.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:c18ede4f36384c32f1506298d957bda46d47e66c3e"
                    "e48c22e7e853974c2620fd\nsize 227534898\n", encoding="ascii")
    with pytest.raises(CorpusError, match=re.escape(f"{path}: a Git LFS pointer to 227.5 MB, not the data itself") +
                       ".*git lfs pull"):
        texts([tmp_path])
    path.write_text("version https://git-lfs.github.com/spec/v1 is a line of text\n", encoding="ascii")
    if name.endswith(".txt"):
        assert texts([tmp_path]) == ["version https://git-lfs.github.com/spec/v1 is a line of text\n"]


def test_a_conllu_treebank_is_read_as_its_sentences(tmp_path: Path):
    """data/tr_boun_dev_2.conllu: the first two sentences of UD_Turkish-BOUN's tr_boun-ud-dev.conllu (CC BY-SA
    4.0, commit f828b02). Read as text, a treebank was mostly tags and features; now a sentence per line, from
    its `# text` comment or, without one, from its words (a multiword token once, SpaceAfter=No kept); a
    `# newdoc` starts a document, a `# newpar` a paragraph. In a folder it says which --include reads it."""
    sentences = "Fakülteyi bitirenler en uçtan göreve başlıyorlarmış.\nEşeklerin sırtlarına yüklenmiş sepetlerle " \
                "taşınırdı üzümler.\n"
    treebank = (Path(__file__).parent / "data" / "tr_boun_dev_2.conllu").read_text(encoding="utf-8")
    (tmp_path / "tr.conllu").write_text(treebank, encoding="utf-8")
    assert texts([tmp_path / "tr.conllu"]) == [sentences]
    words_only = "".join(line for line in treebank.splitlines(keepends=True) if not line.startswith("# text"))
    (tmp_path / "tr.conllu").write_text(words_only.rstrip("\n"), encoding="utf-8")  # no blank line at the end
    assert texts([tmp_path / "tr.conllu"]) == [sentences]
    first, second = treebank.split("\n\n")[:2]
    documents = f"# newdoc id = a\n{first}\n\n# newdoc id = b\n# newpar\n{first}\n\n# newpar\n{second}\n\n"
    (tmp_path / "tr.conllu.gz").write_bytes(gzip.compress(documents.encode()))
    first_line, second_line = sentences.splitlines()
    assert texts([tmp_path / "tr.conllu.gz"]) == [first_line + "\n", f"{first_line}\n\n{second_line}\n"]
    with pytest.raises(CorpusError, match=re.escape("it holds .conllu, .gz files; to read them add --include "
                                                    "'*.conllu' --include '*.gz'")):
        texts([tmp_path])


def test_a_field_inside_objects_is_named_with_dots(tmp_path: Path):
    """A Datastore export of Turkish news (selimfirat/turkish-news-analytics, news.json; records shortened
    here) holds its text in properties.description.stringValue: the error named only "key, properties",
    and --text-field properties was "a JSON object", with no way to reach the text."""
    records = [{"key": {"partitionId": {"projectId": "news-197916"}},
                "properties": {"description": {"stringValue": text, "excludeFromIndexes": True},
                               "title": {"stringValue": f"Haber {n}"}}} for n, text in enumerate(TURKISH)]
    path = tmp_path / "news.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    assert texts([path], text_field="properties.description.stringValue") == TURKISH
    with pytest.raises(CorpusError, match=re.escape("no field 'text' (found: key, properties; text inside objects: "
                                                    "key.partitionId.projectId, properties.description.stringValue, "
                                                    "properties.title.stringValue)")):
        texts([path])
    with pytest.raises(CorpusError, match=re.escape("field 'properties' is a JSON object, expected a string (or a "
                                                    "list of strings, its lines); text inside objects: "
                                                    "properties.description.stringValue, properties.title.stringValue")):
        texts([path], text_field="properties")
    with pytest.raises(CorpusError, match="no field 'properties.body.stringValue'"):
        texts([path], text_field="properties.body.stringValue")


def test_each_document_says_how_much_of_its_file_was_read(tmp_path: Path):
    """``read_bytes``: where the reader is in the file (compressed bytes for .gz) when the document is made;
    a text file cut into documents counts the text it still holds back, so it is the document's end."""
    from lunalm.corpus.read import read_file

    paragraphs = [TURKISH[n % 4].strip() + f" ({n})" for n in range(400)]
    text = "\n\n".join(paragraphs) + "\n"
    (tmp_path / "long.txt").write_text(text, encoding="utf-8")
    documents = list(read_file(tmp_path / "long.txt", max_document_chars=5_000))
    ends = [len("".join(d.text for d in documents[:i + 1]).encode("utf-8")) for i in range(len(documents))]
    assert len(documents) > 10 and documents[-1].read_bytes == ends[-1] == (tmp_path / "long.txt").stat().st_size
    assert all(abs(d.read_bytes - end) < 200 for d, end in zip(documents, ends))  # ~the document's last byte
    lines = [json.dumps({"text": p}, ensure_ascii=False) for p in paragraphs]
    (tmp_path / "rows.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with gzip.open(tmp_path / "rows.jsonl.gz", "wt", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    for name in ("rows.jsonl", "rows.jsonl.gz"):
        read = [d.read_bytes for d in read_file(tmp_path / name)]
        assert len(read) == 400 and read == sorted(read) and read[-1] == (tmp_path / name).stat().st_size


def test_a_files_encoding_is_named_by_its_text_not_its_first_line(tmp_path: Path):
    """A real 1150haber news file: an ASCII title line, a cp1254 body, no final newline (so two blocks)."""
    from lunalm.corpus.read import read_file

    body = "Sosyetik güzeller, son dönemlerde İtalyanların ünlü triko markasına ilgi gösterdi. Işık yandı."
    (tmp_path / "186.txt").write_bytes(b"Missoni tutkunu    \n \n\n\n" + (body + "\n" + body).encode("cp1254"))
    [document] = list(read_file(tmp_path / "186.txt"))
    assert document.encoding in ("cp1254", "iso-8859-9") and document.text.endswith(body)
    (tmp_path / "213.txt").write_bytes(("Hande görüntü vermek istemedi \n\n" + body).encode("cp1254"))
    assert [d.encoding for d in read_file(tmp_path / "213.txt")] == [document.encoding]  # "ü" alone: any Latin page


def test_a_folder_of_only_tables_says_what_it_holds_and_how_to_read_it(tmp_path: Path):
    (tmp_path / "a.csv").write_text('text,label\n"Merhaba dünya",1\n', encoding="utf-8")
    (tmp_path / "b.json").write_text('[{"text": "Merhaba"}]', encoding="utf-8")
    with pytest.raises(CorpusError) as error:
        Corpus(CorpusConfig(paths=(str(tmp_path),)))
    assert "it holds .csv, .json files" in str(error.value)
    assert "--include '*.csv' --include '*.json'" in str(error.value) and "--text-field" in str(error.value)


def test_a_csvs_encoding_a_line_too_long_and_a_corpus_of_a_few_files_in_two_languages(tmp_path: Path):
    from lunalm.cli.analyze import _sample
    from lunalm.corpus.language import detect_language

    rows = "".join(f'"{sentence.strip()}."\n' for text in TURKISH for sentence in text.split(". ") if sentence.strip())
    (tmp_path / "siir.csv").write_bytes(("poem_text\n" + rows).encode("cp1254"))
    from lunalm.corpus.read import read_file

    assert {raw.encoding for raw in read_file(tmp_path / "siir.csv", "poem_text")} == {"iso-8859-9"}  # was "csv"
    long_line = ("sağlayacak yararlanabilirler " * 40_000).strip()  # 1.16M characters, no line break
    (tmp_path / "oneline.txt").write_text(long_line, encoding="utf-8")
    docs = list(Corpus(CorpusConfig(paths=(str(tmp_path / "oneline.txt"),))).documents())
    words = {"sağlayacak", "yararlanabilirler"}  # cut between words, not inside one
    assert len(docs) == 2 and docs[0].text.split()[-1] in words and docs[1].text.split()[0] in words
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    english = "Researchers of the university published the results, and the council discussed them in public. "
    (mixed / "a_english.txt").write_text(english * 3000, encoding="utf-8")  # 300,000 characters, read first
    for n in range(3):  # 3 x ~430,000 characters: 82 % of the corpus
        (mixed / f"b_turkce_{n}.txt").write_text(f"{n}. " + "".join(TURKISH) * 700, encoding="utf-8")
    assert detect_language(_sample(Corpus(CorpusConfig(paths=(str(mixed),))))[0]) == "tr"


def test_a_footer_with_each_posts_date_is_boilerplate_and_a_dateline_is_not(tmp_path: Path):
    """A real blog (1,038 pandoc-converted posts) ends every post "Bu yazi http://… adresinde, 2008-10-30
    tarihinde yayinlanmistir." with its own date: one sentence to boilerplate counting; an OCR'd
    book's running header "A Speech By … 24" goes with it. A short dateline ("19th October, 1919.") is text."""
    bodies = [f"{n + 1}. yazının gövdesi: Silverlight ile {word} bir form hazırladık ve denedik." for n, word in
              enumerate(["basit", "karmaşık", "yeni", "eski", "güzel", "hızlı"])]
    for number, body in enumerate(bodies):
        (tmp_path / f"{number}.md").write_text(
            f"{body}\n\n19th October, 19{10 + number}.\n\nA Speech By Mustafa Kemal Atatiirk {3 * number + 1}\n\n"
            f"*Bu yazi http://daron.yondem.com adresinde, 2008-10-{10 + number} tarihinde yayinlanmistir.*\n",
            encoding="utf-8")
    texts = [d.text for d in Corpus(CorpusConfig(paths=(str(tmp_path),), filter_non_prose=True)).documents()]
    assert [text.split("\n")[0] for text in texts] == bodies
    assert all(f"19th October, 19{10 + number}." in text for number, text in enumerate(texts))
    assert not any("A Speech By" in text for text in texts)
    assert not any("yayinlanmistir" in text for text in texts)  # in emphasis ("….*"): no sentence of prose


def test_what_a_training_run_wrote_inside_the_corpus_folder_is_not_read(tmp_path: Path):
    """`luna train data/` run from inside data/ puts runs/ there; the next `luna analyze data/` stopped at
    "runs/azwiki1/events.jsonl:1: no field 'text'" and read the run's samples.md as a document."""
    from lunalm.corpus.discover import discover, unread_notes

    (tmp_path / "metin.txt").write_text(TURKISH[0], encoding="utf-8")
    run = tmp_path / "runs" / "azwiki1"
    (run / "checkpoints" / "best").mkdir(parents=True)
    (tmp_path / "runs" / "registry.sqlite").write_bytes(b"")
    for name, text in (("events.jsonl", '{"event": "start"}\n'), ("config.yaml", "train: {}\n"),
                       ("samples.md", "# samples\nBir model yazısı.\n")):
        (run / name).write_text(text, encoding="utf-8")
    (run / "checkpoints" / "best" / "lunalm.json").write_text("{}", encoding="utf-8")
    (run / "checkpoints" / "best" / "config.json").write_text("{}", encoding="utf-8")
    export = tmp_path / "az-hf"  # `luna export … --to hf az-hf`: weights and a model card
    export.mkdir()
    (export / "model.safetensors").write_bytes(b"")
    (export / "README.md").write_text("# az model\n", encoding="utf-8")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "oku.md").write_text(TURKISH[1], encoding="utf-8")  # a plain subfolder is read
    include = ("*.txt", "*.md", "*.jsonl")
    assert [f.relative_to(tmp_path).as_posix() for f in discover([str(tmp_path)], include, ())] == \
        ["metin.txt", "notes/oku.md"]
    assert texts([tmp_path]) == [TURKISH[0], TURKISH[1]]
    notes = unread_notes([str(tmp_path)], include, ())
    assert len(notes) == 1 and notes[0].startswith("not read: 2 folder(s) a training run wrote (") \
        and str(export) in notes[0] and str(tmp_path / "runs") in notes[0] and "*.json" not in notes[0]


def test_the_pages_luna_report_wrote_in_the_corpus_folder_are_not_read(tmp_path: Path):
    """`luna report --html` run in the corpus folder (the corpus is ".") writes report.md and report.html
    there; the next run read its tables of past runs as documents."""
    from lunalm.corpus.discover import discover, unread_notes
    from tests.conftest import run_luna

    (tmp_path / "metin.txt").write_text(TURKISH[0], encoding="utf-8")
    (tmp_path / "okuma.md").write_text("# lunalm learnings report, read by a person\n" + TURKISH[1], encoding="utf-8")
    from lunalm.runs.registry import Registry

    Registry(tmp_path / ".reg" / "registry.sqlite").close()  # an empty registry: a report of no runs
    proc = run_luna("report", "--html", "--registry", str(tmp_path / ".reg" / "registry.sqlite"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "report.md").read_text(encoding="utf-8").startswith("# lunalm learnings report\n")
    include = ("*.txt", "*.md", "*.html")
    assert [f.name for f in discover([str(tmp_path)], include, ())] == ["metin.txt", "okuma.md"]
    assert unread_notes([str(tmp_path)], include, ()) == \
        ["not read: 2 page(s) `luna report` wrote (report.html, report.md): tables of past runs, no corpus"]


def _compress(data: bytes, suffix: str) -> bytes:
    import bz2
    import lzma

    import zstandard

    if suffix == ".zst":  # two frames, as `zstd` writes for concatenated or streamed input
        half = len(data) // 2
        packer = zstandard.ZstdCompressor()
        return packer.compress(data[:half]) + packer.compress(data[half:])
    return {".gz": gzip.compress, ".bz2": bz2.compress, ".xz": lzma.compress}[suffix](data)


@pytest.mark.parametrize("suffix", [".gz", ".bz2", ".xz", ".zst"])
def test_compressed_text_and_jsonl_read_as_their_plain_files(tmp_path: Path, suffix: str):
    """OSCAR ships .jsonl.zst, Wikipedia dumps .bz2, many crawls .xz: each read as the plain file is,
    by default in a folder, with progress counted in the bytes on disk."""
    from lunalm.corpus.read import read_file

    text = "\n\n".join(TURKISH * 50) + "\n"
    rows = "".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in TURKISH)
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "a.txt").write_text(text, encoding="utf-8")
    (tmp_path / "plain" / "b.jsonl").write_text(rows, encoding="utf-8")
    (tmp_path / "packed").mkdir()
    (tmp_path / "packed" / f"a.txt{suffix}").write_bytes(_compress(text.encode(), suffix))
    (tmp_path / "packed" / f"b.jsonl{suffix}").write_bytes(_compress(rows.encode(), suffix))
    assert texts([tmp_path / "packed"]) == texts([tmp_path / "plain"]) and len(texts([tmp_path / "plain"])) == 5
    stored = tmp_path / "packed" / f"b.jsonl{suffix}"
    assert [d.read_bytes for d in read_file(stored)][-1] == stored.stat().st_size


@pytest.mark.parametrize("layout", [".txt", ".jsonl"])
@pytest.mark.parametrize("suffix", [".gz", ".bz2", ".xz", ".zst"])
def test_a_truncated_compressed_file_is_a_clear_error(tmp_path: Path, suffix: str, layout: str):
    """A download of OSCAR's .jsonl.zst stopped half-way was an EOFError traceback before."""
    rows = [json.dumps({"text": t}, ensure_ascii=False) if layout == ".jsonl" else t.strip() for t in TURKISH]
    data = _compress(("\n".join(rows * 2000) + "\n").encode(), suffix)  # past the 1 MB read ahead at the sniff
    path = tmp_path / f"cut{layout}{suffix}"
    path.write_bytes(data[: len(data) * 3 // 4])  # inside the second of .zst's two frames
    with pytest.raises(CorpusError, match=re.escape(str(path)) + ".*(complete|cannot be read)"):
        texts([path])


@pytest.mark.parametrize("suffix,what", [(".gz", "gzip"), (".bz2", "bzip2"), (".xz", "xz"), (".zst", "zstd")])
def test_a_compressed_file_under_a_plain_name_says_how_to_read_it(tmp_path: Path, suffix: str, what: str):
    (tmp_path / "corpus.txt").write_bytes(_compress(("\n".join(TURKISH) * 20).encode(), suffix))
    with pytest.raises(CorpusError, match=f"corpus.txt: this file is {what}-compressed, not plain text; name it "
                                          f"corpus.txt{re.escape(suffix)}"):
        texts([tmp_path])
    (tmp_path / "corpus.txt").write_bytes(b"BZh bir kelime oyunu\n")  # "BZh" alone is text
    assert texts([tmp_path]) == ["BZh bir kelime oyunu\n"]


def test_the_default_patterns_are_named_in_short():
    from lunalm.config import DEFAULT_INCLUDE
    from lunalm.corpus.compressed import patterns_text

    assert patterns_text(DEFAULT_INCLUDE) == "*.txt, *.md, *.jsonl, *.parquet, *.arrow, *.html, *.htm, *.epub, " \
                                             "*.docx, *.odt, *.rtf, *.pdf, *.srt, *.vtt, *.ass, *.fb2, *.fb2.zip, *.fbz (*.txt *.md " \
                                             "*.jsonl also as .gz " \
                                             ".bz2 .xz .zst)"
    assert patterns_text(("*.txt", "*.txt.gz")) == "*.txt, *.txt.gz"


def test_a_compressed_csv_is_read_by_rows(tmp_path: Path):
    rows = "soru,cevap\n" + "".join(f'"{t.strip()}",{n}\n' for n, t in enumerate(TURKISH))
    (tmp_path / "plain.csv").write_text(rows, encoding="utf-8")
    (tmp_path / "packed.csv.xz").write_bytes(_compress(rows.encode(), ".xz"))
    assert texts([tmp_path / "packed.csv.xz"], text_field="soru") == texts([tmp_path / "plain.csv"], text_field="soru")
    assert len(texts([tmp_path / "plain.csv"], text_field="soru")) == len(TURKISH)


def test_a_wikipedia_xml_dump_says_to_extract_its_articles_first(tmp_path: Path):
    """`luna train trwiki-latest-pages-articles.xml.bz2` would have trained on XML and wiki markup."""
    dump = ('<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.11/" version="0.11" xml:lang="tr">\n'
            "  <siteinfo>\n    <sitename>Vikipedi</sitename>\n  </siteinfo>\n  <page>\n    <title>Ankara</title>\n"
            "    <revision><text>'''Ankara''', [[Türkiye]]'nin başkentidir.</text></revision>\n  </page>\n</mediawiki>\n")
    path = tmp_path / "trwiki-latest-pages-articles.xml.bz2"
    path.write_bytes(_compress(dump.encode(), ".bz2"))
    with pytest.raises(CorpusError, match=re.escape(f"{path}: a MediaWiki XML dump") + ".*wikiextractor"):
        texts([path])
