"""Letters a decoder replaced by U+FFFD, restored from the words the rest of the corpus holds intact."""

from __future__ import annotations

from pathlib import Path

from lunalm.config import CorpusConfig
from lunalm.corpus import Corpus
from lunalm.corpus.replaced import Restorer, is_damaged, marks_left, skeleton

INTACT = ("Sanayi ve Ticaret Bakanlığı, Türk Telekom'un reklamlarını durdurdu. Genel Müdürlüğü bünyesindeki "
          "kurul, Türk Telekom'a ceza verdi; reklamları durdu. Bakanlığın kararı yürürlüğe girdi.")
# As a real file of the 1150haber news has it: cp1254 read as UTF-8 with replacement, then saved.
DAMAGED = "T\ufffdrk Telekom'un reklamlar\ufffd Bakanl\ufffd\ufffd\ufffd'na tak\ufffdld\ufffd. Genel M\ufffdd\ufffdrl\ufffd\ufffd\ufffd."


def test_each_damaged_word_becomes_the_word_the_damage_came_from():
    assert skeleton("Bakanlığı") == "Bakanl\ufffd\ufffd\ufffd" and skeleton("Ankara") == "Ankara"
    restorer = Restorer()
    restorer.learn(INTACT)
    text, restored, left = restorer.restore(DAMAGED)
    # "takıldı" was never seen intact: left as it was, and counted
    assert text == "Türk Telekom'un reklamları Bakanlığı'na tak\ufffdld\ufffd. Genel Müdürlüğü."
    assert (restored, left) == (1 + 1 + 3 + 5, 2)
    assert restorer.restore("fiyat 5 \ufffd ve \ufffd\ufffd") == ("fiyat 5 \ufffd ve \ufffd\ufffd", 0, 0)  # not words
    assert is_damaged(DAMAGED) and not is_damaged("fiyat 5 \ufffd") and not is_damaged(INTACT)


def test_a_word_keeps_the_letters_that_survived():
    """Where some letters survived, only seen words with those letters in place are readings."""
    restorer = Restorer()
    restorer.learn("çok çok çok şok")  # "çok" is the most frequent reading of "�ok" ...
    assert restorer.restore("\ufffdok")[0] == "çok"
    restorer.learn("üçü üçü öçü")
    assert restorer.restore("ö\ufffd\ufffd")[0] == "öçü"  # ... but "ö" survived here: "üçü" cannot be it


def test_the_corpus_restores_damaged_files_from_its_other_files(tmp_path: Path):
    """The damaged file comes first on disk; it is held back until the intact ones were read."""
    folder = tmp_path / "haber"
    folder.mkdir()
    (folder / "1.txt").write_text(DAMAGED + "\n", encoding="utf-8")
    for n in range(2, 5):
        (folder / f"{n}.txt").write_text(f"{n}. haber. {INTACT}\n", encoding="utf-8")
    corpus = Corpus(CorpusConfig(paths=(str(folder),)))
    documents = list(corpus.documents())
    assert [Path(d.source).name for d in documents] == ["2.txt", "3.txt", "4.txt", "1.txt"]
    assert documents[-1].text.startswith("Türk Telekom'un reklamları Bakanlığı'na")
    report = corpus.report.files[str(folder / "1.txt")]
    assert (report.replaced_letters, report.restored_letters) == (12, 10)
    alone = Corpus(CorpusConfig(paths=(str(folder / "1.txt"),)))  # nothing intact to learn from
    assert [d.text for d in alone.documents()] == [DAMAGED + "\n"] and alone.report.total("restored_letters") == 0


def test_question_marks_left_count_among_the_letters_replaced(tmp_path: Path):
    """Azerbaijani saved as cp1254 turns every "ə" into "?": the report said "4 of 4 letters restored" while
    7 were still "?" (they were not counted as replaced at all)."""
    folder = tmp_path / "az"
    folder.mkdir()
    (folder / "1.txt").write_text("Bu m?kt?b çox g?z?ldir v? ticar?t m?rk?zi yaxınlığındadır. M?ll?m g?ldi.\n",
                                  encoding="utf-8")
    (folder / "2.txt").write_text("Bu məktəb çox gözəldir və məktəbdə hər gün dərs keçirilir. Müəllim məktəbə "
                                  "gəldi.\n", encoding="utf-8")
    corpus = Corpus(CorpusConfig(paths=(str(folder),)))
    assert list(corpus.documents())[-1].text == ("Bu məktəb çox g?z?ldir və ticar?t m?rk?zi yaxınlığındadır. "
                                                 "M?ll?m gəldi.\n")
    report = corpus.report.files[str(folder / "1.txt")]
    assert (report.replaced_letters, report.restored_letters, report.marks_left) == (11, 4, 7)


def test_past_the_hold_limit_damaged_text_is_restored_with_the_words_so_far(tmp_path: Path, monkeypatch):
    import lunalm.corpus as corpus_module

    monkeypatch.setattr(corpus_module, "HOLD_CHARS", 10)  # nothing is held back
    folder = tmp_path / "haber"
    folder.mkdir()
    (folder / "1.txt").write_text(INTACT + "\n", encoding="utf-8")
    (folder / "2.txt").write_text(DAMAGED + "\n", encoding="utf-8")
    documents = list(Corpus(CorpusConfig(paths=(str(folder),))).documents())
    assert [Path(d.source).name for d in documents] == ["1.txt", "2.txt"]  # in order: 1.txt was read first
    assert documents[1].text.startswith("Türk Telekom'un reklamları Bakanlığı'na")


def test_azerbaijani_saved_in_cp1254_gets_its_schwa_back_and_question_marks_stay():
    """cp1254 has every Azerbaijani letter but ə/Ə, which it writes as "?"; a "?" between letters of a word
    with an intact reading is that letter, any other "?" stays (questions, a URL's query)."""
    intact = "Azərbaycan Respublikasının paytaxtı Bakı şəhəridir. Əli məktəbə getdi. Bu nədir? Şəhər böyükdür."
    damaged = intact.encode("cp1254", errors="replace").decode("cp1254")
    assert damaged.startswith("Az?rbaycan Respublikas") and "Bu n?dir?" in damaged
    restorer = Restorer()
    restorer.learn(intact)
    url = " Bax: site.az/x.php?id=5 ya da a?b."  # no "ə": the whole text went through cp1254
    text, restored, left = restorer.restore(damaged + url)
    assert text == intact + url and left == 0
    assert restored == damaged.count("?") - 1  # all but the question mark that ends "Bu nədir?"
    assert skeleton("şəhər") == "\ufffd?h?r"  # both damages at once: cp1254 "?", then UTF-8 "�"
    assert restorer.restore("\ufffd?h?ridir")[0] == "şəhəridir"
    assert is_damaged(damaged) and not is_damaged(intact) and not is_damaged("Nə? Bax: site.az/x.php?id=5")


def test_a_damaged_first_letter_takes_its_case_from_where_the_word_stands():
    """"?li" is "Əli" at the start of a line or sentence and "əli" inside one, whichever the intact text
    holds more often; a word whose first letter survived keeps it."""
    restorer = Restorer()
    restorer.learn("əli əli əli Əli. Şehir şehir")
    assert restorer.restore("?li getdi, ?li qaldı.\n?li getdi, \"?li\" dedi. \"?li!\"")[0] == (
        "Əli getdi, əli qaldı.\nƏli getdi, \"əli\" dedi. \"Əli!\"")
    assert restorer.restore("Bu \ufffdehir. \ufffdehir")[0] == "Bu şehir. Şehir"
    assert restorer.restore("Bu \ufffdstanbul")[0] == "Bu \ufffdstanbul"  # never seen intact: left as it is


def test_a_name_keeps_its_capital_inside_a_sentence():
    """The intact text writes "Əli" (a name) far more often than "əli" ("his hand"): "?li" inside a sentence
    is the name; where the small word is the more frequent, the small word."""
    restorer = Restorer()
    restorer.learn("Dostu Əli gəldi. Heydər ilə Əli danışdı, sonra Əli getdi. Onun əli yaralandı.")
    assert restorer.restore("Sonra ?li getdi.")[0] == "Sonra Əli getdi."
    restorer = Restorer()
    restorer.learn("Dostu Əli gəldi. Onun əli yaralandı, əli ağrıyır, əli sarılıb.")
    assert restorer.restore("Sonra ?li getdi.")[0] == "Sonra əli getdi."


def test_a_damaged_letter_after_the_first_is_small_unless_the_word_shouts():
    restorer = Restorer()
    restorer.learn("MEYVƏ VƏ TƏRƏVƏZ. VƏ VƏ VƏ. Və sonra meyvə və tərəvəz.")
    assert restorer.restore("Bu V? o")[0] == "Bu Və o"  # headings' "VƏ" is the more frequent reading
    assert restorer.restore("MEYV? V? T?R?V?Z")[0] == "MEYVƏ Və TƏRƏVƏZ"  # "V?" alone cannot tell


def test_a_lost_schwa_ending_a_word_starts_no_sentence():
    """In Azerbaijani that lost its "ə" to "?", "ş?h?r? ?n" is "şəhərə ən", not a question and a new sentence;
    after a full stop the word takes a capital even where the intact text has it only small."""
    restorer = Restorer()
    restorer.learn("Bu şəhərə ən çox turist gəlir. Ən böyük şəhər. Onun əhalisi artır, əhalisi çoxdur.")
    assert restorer.restore("Bakı ş?h?r? ?n çox turist g?lir. ?halisi artır.")[0] == (
        "Bakı şəhərə ən çox turist gəlir. Əhalisi artır.")


def test_text_that_kept_its_schwa_keeps_its_question_marks(tmp_path: Path):
    """Azerbaijani lyrics in UTF-8 (a real scrape): "?" glued to the next word is a question mark, not a lost
    "ə"; restoring it turned "sənə iz?" into "sənə izə" and "göz? Nə" into "gözə Nə"."""
    lyrics = ("Necə oğlandı?Nə işdiyir?\nNə qalar məndən sənə iz?\nNə qədər göz? Nə qədər dil?\n"
              "Bir izə baxdım, gözə, dilə.\n")
    assert not is_damaged(lyrics) and is_damaged("Az?rbaycan ş?h?rl?ri")
    (tmp_path / "lyrics.txt").write_text(lyrics, encoding="utf-8")
    corpus = Corpus(CorpusConfig(paths=(str(tmp_path),)))
    assert [d.text for d in corpus.documents()] == [lyrics] and corpus.report.total("replaced_letters") == 0
    restorer = Restorer()
    restorer.learn("gözə izə dilə")
    assert restorer.restore("g\ufffdz? ə iz?")[0] == "g\ufffdz? ə iz?"  # with "ə" intact, no "?" is a letter


def test_what_restoration_could_not_explain_is_counted(tmp_path: Path):
    folder = tmp_path / "haber"
    folder.mkdir()
    (folder / "1.txt").write_text(DAMAGED + " Kararı \ufffd\ufffd ay içinde verdi.\n", encoding="utf-8")
    (folder / "2.txt").write_text(INTACT + "\n", encoding="utf-8")
    corpus = Corpus(CorpusConfig(paths=(str(folder),)))
    list(corpus.documents())
    report = corpus.report.files[str(folder / "1.txt")]
    assert (report.restored_letters, report.marks_left) == (10, 2 + 2)  # "tak�ld�" and the lone "��"


def test_web_addresses_and_their_queries_are_not_damage(tmp_path: Path):
    """A real Turkish blog post (pandoc Markdown) with download links ``details.aspx?familyid=…`` and
    ``join?id=GFRH8M&role=attend``: its "?" between letters are queries, not letters a decoder replaced,
    and the report said "12 letters a decoder had replaced"."""
    post = ("**Silverlight'a Giriş - 8 Haziran, 21.00** için kayıt: "
            "[katıl](https://www.livemeeting.com/cc/usergroups/join?id=GFRH8M&role=attend) ve "
            "[indir](http://www.microsoft.com/downloads/details.aspx?familyid=0856eacb-436) ya da "
            "www.example.com/a?b=c veya sayfa.aspx?FamilyId=44FA7F93 adresinden.\n")
    assert not is_damaged(post) and marks_left(post) == 0
    assert is_damaged(post + "Az?rbaycan ş?h?rl?ri\n") and marks_left("Az?rbaycan ş?h?r") == 3
    (tmp_path / "post.md").write_text(post * 3, encoding="utf-8")
    corpus = Corpus(CorpusConfig(paths=(str(tmp_path),)))
    list(corpus.documents())
    assert corpus.report.total("replaced_letters") == 0 and corpus.report.total("marks_left") == 0
