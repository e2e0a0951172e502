"""Non-prose detection: indexes, tables, lists, boilerplate are flagged; prose is not."""

from __future__ import annotations

from lunalm.corpus.prose import ProseDetector, remove_spans, units
from tests.conftest import TURKISH

INDEX = ", ".join(f"(C-II){n}" for n in range(100, 180)) + ", Türkiye (C-I)23, (C-I)24."


def test_units_tile_the_text():
    text = TURKISH[0] + INDEX + "\n\nSon söz.\n"
    assert "".join(text[s:e] for s, e in units(text)) == text
    assert all(e - s <= 400 for s, e in units(text))


def test_prose_is_not_flagged():
    detector = ProseDetector()
    for text in TURKISH:
        assert detector.spans(text) == []


def test_index_inside_a_paragraph_is_flagged_and_removed():
    text = TURKISH[0].strip() + " " + INDEX + " " + TURKISH[1]
    spans = ProseDetector().spans(text)
    flagged = sum(s.end - s.start for s in spans)
    assert {s.reason for s in spans} <= {"digits", "symbols"}
    assert flagged >= 0.9 * len(INDEX)
    cleaned = remove_spans(text, spans)
    assert "(C-II)" not in cleaned and "Ankara'da" in cleaned and "Işıklar" in cleaned


def test_name_index_with_page_references_is_flagged_but_dated_prose_is_not():
    # Names dilute the digit and symbol shares; the share of words carrying a number gives it away.
    names = ["Abbasiler", "Acemistan", "Refet Bey", "Vasıf Bey", "Amerika Birleşik Devletleri", "Afgan"]
    index = " ".join(f"{name} (C-II){40 + 7 * i}, (C-I){12 + i}" for i, name in enumerate(names * 3))
    spans = ProseDetector().spans(TURKISH[0].strip() + " " + index)
    assert {s.reason for s in spans} <= {"references", "symbols"}  # the reason covering most of the index
    assert sum(s.end - s.start for s in spans) >= 0.9 * len(index)
    dated = "19 Mayıs 1919'da Samsun'a çıktı; 23 Nisan 1920'de Meclis açıldı ve 1923'te Cumhuriyet kuruldu."
    assert ProseDetector().spans(dated) == []


def test_table_list_and_repeated_lines():
    table = "| il | nüfus | bölge |\n| Ankara | 5 | İç Anadolu |\n"
    names = "Adana\nAdıyaman\nAfyon\nAğrı\nAmasya\n"
    detector = ProseDetector()
    reasons = {s.reason for s in detector.spans(table + TURKISH[0] + names)}
    assert reasons == {"table", "list"}
    footer = "Bu metin otomatik olarak oluşturulmuştur, lütfen yanıtlamayınız.\n"
    flagged = [bool(detector.spans(TURKISH[2] + footer)) for _ in range(6)]
    assert flagged == [False, False, True, True, True, True]  # from the third document holding it


def test_sentences_with_numbers_stay():
    # the examples: real news sentences the old digit-share rule removed
    news = ["Yen 144'ten 131'e yükseldi.", "1 milyon 376 bin 588'i kadın.",
            "Borsa İstanbul'da BIST 100 endeksi günü yüzde 1,12 düşüşle 9.845,32 puandan tamamladı.",
            "Enflasyon ağustosta aylık bazda yüzde 2,47, yıllık bazda yüzde 51,97 oldu."]
    detector = ProseDetector()
    assert [detector.spans(line + "\n") for line in news] == [[], [], [], []]


def test_boilerplate_shared_by_documents_is_flagged_even_inside_a_line():
    articles = [f"{sentence} PAYLAŞ Yorum yaz A\nSON DAKİKA\n" for sentence in TURKISH]
    detector = ProseDetector()
    detector.prime(articles)  # Corpus primes with its first documents, so even the first loses its bar
    for article, sentence in zip(articles, TURKISH):
        cleaned = remove_spans(article, detector.spans(article))
        assert "PAYLAŞ" not in cleaned and "SON DAKİKA" not in cleaned and sentence.strip() in cleaned


def test_a_hard_wrapped_line_keeps_the_sentence_opening_at_its_end():
    # A blog converted by pandoc wraps at 72 columns: "Böylece" ends a line in many posts and the sentence
    # goes on below. It was removed as shared furniture (a real blog lost such openings at 1,084 line ends).
    pages = [f"{town} örneğini anlatacağım ve ayrıntılarına gireceğim. Böylece\n{town} konusunu anlayacağız.\n"
             "PAYLAŞ Yorum yaz A\n" for town in ("kars", "van", "muş", "rize")]
    detector = ProseDetector()
    detector.prime(pages)
    cleaned = [remove_spans(page, detector.spans(page)) for page in pages]
    assert [text for text in cleaned] == [page.replace("PAYLAŞ Yorum yaz A\n", "") for page in pages]


def test_a_syndicated_story_keeps_its_first_copy_and_boilerplate_keeps_none():
    # A wire agency's story that several news sites print word for word is duplicated text, not boilerplate:
    # it went from every copy, and the corpus lost it. A menu line (no full stop) still goes from all.
    story = "ABD Başkanı Donald Trump, Dışişleri Bakanı Rex Tillerson'ı görevden aldı."
    menu = "Ana Sayfa Gündem Spor Ekonomi"
    own = ["Kars'ta kar kalınlığı bir metreyi aştı.", "İzmir'de fuar kapılarını açtı.",
           "Bursa'da yeni tramvay hattı hizmete girdi.", "Van Gölü'nde su seviyesi yükseldi."]
    pages = [f"{sentence}\n{story}\n{menu}\n" for sentence in own]
    detector = ProseDetector()
    detector.prime(pages)
    cleaned = [remove_spans(page, detector.spans(page)) for page in pages]
    assert [story in text for text in cleaned] == [True, False, False, False]
    assert not any(menu in text for text in cleaned)
    assert all(sentence in text for sentence, text in zip(own, cleaned))


def test_a_sentence_inside_a_tag_is_no_copy_of_it():
    # An RSS item's image repeats its first sentence in its alt text; the tag goes, so the copy that stays
    # must be the first one a reader sees, not the one inside the tag.
    story = "Vatandaşlar bu hafta sonu 30 saat boyunca susuz kalacak."
    pages = [f"<img src='a.jpg' alt='{story}' /> Belediye açıklama yaptı ve uyarıda bulundu.\n"]
    pages += [f"{town} için arıza onarımı sürüyor.\n{story}\n" for town in ("Konya", "Sivas", "Rize")]
    detector = ProseDetector()
    detector.prime(pages)
    cleaned = [remove_spans(page, detector.spans(page)) for page in pages]
    assert [story in text for text in cleaned] == [False, True, False, False]
    assert "Belediye açıklama yaptı" in cleaned[0] and "<img" not in cleaned[0]


def test_a_long_sentence_is_removed_whole_or_not_at_all():
    numbers = ", ".join(f"{n} ({n * 7})" for n in range(70))  # a digit-heavy stretch mid-sentence
    sentence = ("The committee, which had met in the spring and again in the autumn, listed the figures "
                f"{numbers} and then, after a long debate about what they meant for the towns along the river "
                "and for the farmers who depended on the spring floods, decided to publish them in full.")
    assert len(sentence) > 2 * 400  # judged in pieces
    for text in (sentence, "A short opening sentence stays. " + sentence + " A closing sentence stays too."):
        spans = ProseDetector().spans(text)
        flagged = {text[s.start:s.end].strip() for s in spans}
        assert flagged <= {sentence}  # the whole sentence or nothing, never a piece of it


def test_code_and_tab_separated_rows_are_flagged():
    code = ("def decode(self, s, _w=WHITESPACE.match):\n    obj, end = self.raw_decode(s, idx=_w(s, 0).end())\n"
            "    end = _w(s, end).end()\n    if end != len(s):\n        raise JSONDecodeError(\"Extra data\", s, end)\n"
            "    return obj\n")
    rows = "TR\tTurkey\nAZ\tAzerbaijan\nGB\tBritain (UK)\n"
    spans = ProseDetector().spans(TURKISH[0] + code + rows)
    assert remove_spans(TURKISH[0] + code + rows, spans) == TURKISH[0]


def test_verse_and_lyrics_are_prose_but_lists_of_names_and_code_are_not():
    verse = ("yağmur yağıyor yine sokaklara,\n"  # lower case, a comma at the end: verse, not code
             "sen yoksun bu akşam\n"  # short lines without final punctuation: verse, not a list
             "kapının önünde bekledim\n"
             "Gece uzun olur\n"
             "\t\trüzgâr eser durur uzaktan\n"  # indented by tabs: not a table row
             "Gece uzun olur\n"
             "bir ses, bir ışık,\n\n")
    detector = ProseDetector()
    assert detector.spans(verse) == []
    wrapped = ("The delegates had come from every province, and they had waited\n"  # prose wrapped by
               "for a long time in the hall of the assembly, on the 11 September,\n"  # hand: a line may start
               "with the consent of the council's members;\n"  # with "for" or "with" and end in a comma
               "if the answer came late, nobody would blame them.\n\n")
    assert detector.spans(wrapped) == []
    names = "Ahmet Yılmaz\nMehmet Demir\nAyşe Kaya\nFatma Şahin\n"  # every word capitalised: a list
    code = "from os import path\nfor item in items:\n"  # plain words, but short and starting with a keyword
    spans = detector.spans(verse + names + code)
    assert {span.reason for span in spans} == {"list", "code"}
    assert remove_spans(verse + names + code, spans) == verse.rstrip("\n") + "\n"


def test_new_rules_give_a_filtered_corpus_a_new_fingerprint_so_no_stale_tokens_are_reused(tmp_path, monkeypatch):
    import lunalm.corpus as corpus_module
    from lunalm.config import CorpusConfig
    from lunalm.corpus import Corpus

    (tmp_path / "a.txt").write_text(TURKISH[0], encoding="utf-8")
    filtered = Corpus(CorpusConfig(paths=(str(tmp_path),), filter_non_prose=True))
    unfiltered = Corpus(CorpusConfig(paths=(str(tmp_path),), filter_non_prose=False))
    before = filtered.fingerprint(), unfiltered.fingerprint()
    monkeypatch.setattr(corpus_module, "RULES_VERSION", corpus_module.RULES_VERSION + 1)
    assert filtered.fingerprint() != before[0]  # the token cache is keyed by it
    assert unfiltered.fingerprint() == before[1]  # the rules do not touch unfiltered text


def test_front_matter_of_a_markdown_page_is_flagged_and_a_rule_before_prose_is_not():
    """As on every page of a real blog of Turkish stories: YAML front matter (empty values included), and
    Hugo's TOML; a "---" rule above prose is not front matter."""
    story = "Kafam ölüm ve aşkla meşgul. Hangi ölüm, hangi aşk?\n"
    for front in ("---\ntitle: Abdurrahman bin Yafes\ndate:\ndp: \ntags:\n  - hikaye\n---\n\n",
                  '+++\ntitle = "Düğüm"\ndraft = false\n+++\n'):
        text, detector = front + story, ProseDetector()  # one page each: nothing shared between them
        spans = detector.spans(text)
        assert [(span.start, span.end) for span in spans if span.reason == "front-matter"] == [
            (0, len(front.rstrip("\n")) + 1)]
        assert remove_spans(text, spans).strip() == story.strip()
    rule = "---\nBir varmış bir yokmuş, evvel zaman içinde.\n---\n" + story
    assert not [span for span in ProseDetector().spans(rule) if span.reason == "front-matter"]


def test_code_blocks_go_whole_and_page_numbers_go():
    """Real cases: a Jekyll blog's <pre><code> PHP class left "{", "{ }" and "{ // Form doğrulaması }"
    between paragraphs when judged line by line; Fuzuli's divan, converted from PDF, kept 472 page-number
    lines; a news sentence missing a space ("düzenlenecek.Toplantı … şöyle:") was taken for code."""
    prose = ["Bu yazıda try catch yapısını anlatıyorum ve örneklerle açıklıyorum.\n",
             "Gördüğünüz gibi kod basittir ve anlaşılır bir yapıdadır.\n",
             "Sonra bir paragraf daha yazıyoruz ki okuyucu ne olduğunu anlasın.\n",
             "Toplantı Ankara Binası' nda düzenlenecek.Toplantı programı ise şöyle:\n"]
    blocks = ['<pre><code class="language-php">class UserInsertController {\n  public function provider() {\n'
              '    // Form doğrulaması\n  }\n}\n</code></pre>\n',
              "```js\nalert(\"Hata! Tip: \" + strError);\nend loop;\n```\n",
              "{% highlight ruby %}\ndef foo\n  puts 'x'\nend\n{% endhighlight %}\n", "37\n", "- 328 -\n"]
    text = prose[0] + blocks[0] + prose[1] + blocks[1] + blocks[2] + prose[2] + blocks[3] + prose[3] + blocks[4]
    spans = ProseDetector().spans(text)
    assert remove_spans(text, spans) == "".join(prose)
    assert [text[s.start:s.end] for s in spans if s.reason == "code"] == [b.rstrip("\n") + "\n" for b in blocks[:3]]
    unclosed = prose[0] + "```\n" + prose[1]  # an unclosed fence is no block: its lines are judged one by one
    assert remove_spans(unclosed, ProseDetector().spans(unclosed)) == unclosed


def test_statutes_verse_and_html_tag_lines():
    """Real cases: Turkish statutes (an article's sentence glued to the next, "verilir.Hizmet", then a line
    ending in ":") and poems ("var git yokluğa haydi,": Turkish "var", not JavaScript's; one-word verse
    lines) were dropped as code; a README's lines of bare HTML tags were kept."""
    prose = ["Bu ikramiye, öğretmenliğin yapıldığı ayın sonunda verilir.Hizmet müddetinin hesabı:\n",
             "var git yokluğa haydi,\n", "bileklerimizi,\n", "kıvranıyor;\n", "yorulmuşsundur;\n",
             "Bende hiç kimse yok, yalnızım bu gece.\n"]
    tags = ['<div align="center">\n', "</div>\n", "<br>\n", "  </details>\n"]
    code = ["var total = items.length;\n", "import os\n", "x = foo(1)\n"]
    text = prose[0] + tags[0] + prose[1] + prose[2] + prose[3] + tags[1] + prose[4] + tags[2] + prose[5] + tags[3] \
        + "".join(code)
    spans = ProseDetector().spans(text)
    assert remove_spans(text, spans) == "".join(prose)
    assert sorted(text[s.start:s.end] for s in spans) == sorted(tags + code)


def test_turkish_var_and_a_stray_comma_or_dash_are_no_code():
    """Real cases: a tweet (JAK-OffensEval) "parma?? var oyuna gelmeyelim" lost its second sentence as
    JavaScript; a line of a poem "mahvetsin) , boşuna yorulmasın; …" and the English Nutuk's OCR'd lines
    ending in a loose ":" or "—" were code for the comma or dash standing alone. Code stays code."""
    for text in ("@USER Sen bu işi bilmiyorsun parma?? var oyuna gelmeyelim\n",
                 "mahvetsin) , boşuna yorulmasın; çünkü bin gül bahçesine\n",
                 "action on these two points: :\n",
                 "for Refet Pasa's troops, they retired and halted on the line Aydemir —\n"):
        assert ProseDetector().spans(text) == [], text
    for code in ("var total = items.length;\n", "import os\n", "from os import path\n",
                 "for (i = 0; i < n; i++) {\n"):
        assert [span.reason for span in ProseDetector().spans(code)] == ["code"], code


def test_pandoc_escaped_tag_lines_go_and_blank_looking_lines_are_empty():
    """A real pandoc-converted Turkish blog: XAML escaped as "\\<Grid …\\>\\" kept its closing "\\</Grid\\>"
    between two paragraphs, and lines of spaces and no-break spaces stood between paragraphs; escaped angle
    brackets inside a sentence stay."""
    from lunalm.corpus.clean import clean_text

    before = "İlk olarak sayfamıza bir düğme ve bir metin kutusu ekleyelim.\n\n"
    after = "Düğmeye basıldığında metin kutusundaki yazıyı değiştireceğiz.\n"
    xaml = ('\\<Grid x:Name="LayoutRoot" Background="White"\\>\\\n'
            '    \\<Button x:Name="Dugme" Content="Tıkla"\\>\\</Button\\>\\\n\\</Grid\\>\n')
    text = clean_text(before + xaml + " \u00a0\t\n" + after).text
    assert remove_spans(text, ProseDetector().spans(text)) == before + after
    coloured = before + '<span style="color: gray">\u00a0\u00a0\u00a0 </span>\n' + after  # a listing's line
    assert remove_spans(coloured, ProseDetector().spans(coloured)) == before + after
    sentence = "Etiketi \\<b\\> ile yazın, sonra kapatın.\n"
    assert remove_spans(sentence, ProseDetector().spans(sentence)) == sentence
    assert clean_text("  şiir\n\u00a0\n\tdize\n").text == "  şiir\n\n\tdize\n"  # indented verse keeps its indent


def test_a_wiki_images_options_go_and_its_caption_stays():
    """Azerbaijani Wikipedia sentences (Kamal578/CSCI-6515-NLP-Projects) kept 38 runs of image options
    ("250px|thumb|left|") before their captions; "left|right" alone is left as it is."""
    for text, kept in (("Hökmdarlığın erkən dövrü 250px|thumb|left|1060–1072-ci illərdə IV Baqratın pulları.\n",
                        "Hökmdarlığın erkən dövrü 1060–1072-ci illərdə IV Baqratın pulları.\n"),
                       ("thumb|200px|left|Atollun kosmosdan təsviri.\n", "Atollun kosmosdan təsviri.\n"),
                       ("Sütunlar left|right olarak hizalanır.\n", "Sütunlar left|right olarak hizalanır.\n")):
        assert remove_spans(text, ProseDetector().spans(text)) == kept


def test_html_tags_inside_lines_go_and_their_text_stays():
    """Real cases: a blog post's link (<a href=…>Stanford Üniversitesi'ni</a>) and a forum entry's numbered
    lines joined by <br/> were kept tags and all; a tag that breaks the line leaves a line break, two in a row
    ("<br/><br/>", "</p><p>") a paragraph break (a Corona comment's "<br><br>" became one line break)."""
    text = ("Bu konuda keşke <a href=\"http://online.stanford.edu/courses\">Stanford Üniversitesi'ni</a> örnek "
            "alan kurumlarımız çoğalsa. <b>Ankara</b>'da <SPAN class=\"x\">durum</SPAN> böyle.\n"
            "Serbest bırakılıyor. <br/><br/>1) öncelikle isimleri neden gizli?<br/>2) ceza verilmeyecek mi?<br />\n"
            "<p>Birinci paragraf burada.</p><p>İkinci paragraf da burada.</p>\n"
            "Ali <Ali> dedi ki x<y ve y>z olur; bu da bir cümledir.\n")
    spans = ProseDetector().spans(text)
    assert remove_spans(text, spans) == (
        "Bu konuda keşke Stanford Üniversitesi'ni örnek alan kurumlarımız çoğalsa. Ankara'da durum böyle.\n"
        "Serbest bırakılıyor.\n\n1) öncelikle isimleri neden gizli?\n2) ceza verilmeyecek mi?\n\n"
        "Birinci paragraf burada.\n\nİkinci paragraf da burada.\n"
        "Ali <Ali> dedi ki x<y ve y>z olur; bu da bir cümledir.\n")
    assert {s.reason for s in spans} == {"markup", "markup-break"}


def test_tags_of_scraped_news_go_whole_and_the_sentences_beside_them_stay():
    """Real RSS items (a Turkish news crawl): an image tag before the first sentence had the sentence judged
    in pieces and dropped; an alt text over 400 characters, or over two lines, kept the tag. Scripts,
    comments, iframes, buttons, Word's <o:p> and wiki footnotes go with what they hold."""
    alt = "Hepsi küçük girişimcilerken ihracata başladı. " * 12
    text = ("İnternet vergi dairesi kullanıcı sayısı 5 yılda ikiye katladı\n"
            '<a href=""><img src="http://www.oncevatan.com.tr/images/haberler/thumbs2/2018/03/internet_vergi_dairesi'
            '_kullanici_sayisi_h121869_fc450.jpg" align="left" width="194" border="0"  /></a>Türkiye\'deki ilk '
            "e-devlet uygulamalarından internet vergi dairesinin kullanıcı sayısı, 2013-2017 dönemini kapsayan 5 "
            "yılda yüzde 100 artışla 1 milyon 844 bin 197'den 3 milyon 705 bin 566'ya ulaştı.\n"
            f"<img src='http://im.haberturk.com/a.jpg' alt='{alt}' align='left' style='padding-right:5px;' />Ordu"
            "'dan 40 ülkeye gönderiliyor ve herkes bunu konuşuyor.\n"
            "<img src='b.jpg' alt='Temelli, seçim ittifakı\ndüzenlemesine eleştiri' />Temelli konuştu ve "
            "yasayı eleştirdi.\n"
            "<img src='k.jpg' alt='KOSGEB'den aldığı destekle serada' align='left' border='0' />KOSGEB'den aldığı "
            "destekle üretime başladı.\n"
            "Hakem kararları tartışmalıydı.<script type=\"text/javascript\">var googletag = googletag || {};"
            "</script> Yine de oyun keyifliydi.<!-- reklam alanı --> Maç bitti.\n"
            '<iframe height="500" src="http://www.dha.com.tr/dhayayin/dhafeed.asp" width="645"></iframe>\n'
            '<button class="btn">Paylaş</button> <a href="/ara?q=a&b" title="Ara > Sonuçlar">tıklayarak</a> '
            "sonuçlara ulaşabilirsiniz.<o:p></o:p>\n"
            "Kurultay bu kararı kabul etmişdir.<ref>{{Kitab istinadı|müəllif=X|il=1990}}</ref> Sonra dağıldı.\n")
    kept = remove_spans(text, ProseDetector().spans(text))
    assert kept == ("İnternet vergi dairesi kullanıcı sayısı 5 yılda ikiye katladı\n"
                    "Türkiye'deki ilk e-devlet uygulamalarından internet vergi dairesinin kullanıcı sayısı, "
                    "2013-2017 dönemini kapsayan 5 yılda yüzde 100 artışla 1 milyon 844 bin 197'den 3 milyon 705 "
                    "bin 566'ya ulaştı.\n"
                    "Ordu'dan 40 ülkeye gönderiliyor ve herkes bunu konuşuyor.\n"
                    "Temelli konuştu ve yasayı eleştirdi.\n"
                    "KOSGEB'den aldığı destekle üretime başladı.\n"
                    "Hakem kararları tartışmalıydı. Yine de oyun keyifliydi. Maç bitti.\n"
                    "Paylaş tıklayarak sonuçlara ulaşabilirsiniz.\n"
                    "Kurultay bu kararı kabul etmişdir. Sonra dağıldı.\n")
    ocr = "<a cl ahem RCM IR eS IC ca a ah\n\nhamedans'', as previously communicated. We reminded him > then.\n"
    assert remove_spans(ocr, ProseDetector().spans(ocr)) == ocr  # no tag: words with quotes are no attributes


def test_wikitext_keeps_the_words_its_links_show_and_loses_its_markup():
    """Azerbaijani Wikipedia articles read as wikitext kept "[[vəziyyəti|vəziyyəti]]" and "''elanının''" and
    lost sentences that ended in a footnote; "''" outside a page with wiki links is left as it is."""
    text = ("{{Məlumat qutusu şəxs\n| ad = Nümunə\n| doğum_tarixi = 1918\n}}\n"
            "'''Azərbaycan''' hökumətinin çağırışı ilə D. Rzayev 1991-ci ilə qədər Komitədə çalışır."
            "<ref>{{Kitab istinadı|müəllif=Əliyev|il=2001}}</ref>\n== Həyatı ==\n"
            "Bir [[İmperatorluğun]] ''elanının'' əhəmiyyəti, [[vəziyyəti|vəziyyəti]] anlayan dövlət idi.<ref name=\"a\" />\n"
            "[[Şəkil:Bakı.jpg|thumb|200px|Bakı]] Şəhər böyüdü və [[Kateqoriya:Şəhərlər]] yeni məhəllələr salındı.\n")
    assert remove_spans(text, ProseDetector().spans(text)) == (
        "Azərbaycan hökumətinin çağırışı ilə D. Rzayev 1991-ci ilə qədər Komitədə çalışır.\nHəyatı\n"
        "Bir İmperatorluğun elanının əhəmiyyəti, vəziyyəti anlayan dövlət idi.\n"
        "Şəhər böyüdü və yeni məhəllələr salındı.\n")
    ocr = "They called themselves Mohamedans'', as previously communicated, and ''so'' it went on.\n"
    assert remove_spans(ocr, ProseDetector().spans(ocr)) == ocr


def test_a_name_glued_to_a_bracket_outside_ascii_is_not_a_call():
    text = ("Başkan(Guvernör) yardımcıları, Banka Meclisi toplantılarına oy hakkı olmaksızın katılır.\n"
            "result = compute(x)\n")
    spans = ProseDetector().spans(text)
    assert [text[s.start:s.end] for s in spans] == ["result = compute(x)\n"]


def test_a_page_whose_entries_live_in_its_long_front_matter_keeps_their_text_and_loses_the_keys():
    """A real Jekyll post of forum entries: ~400 lines of front matter, each entry's text a block scalar.
    Before, front matter over 60 lines was not recognised and its "---" became the first sample prompt."""
    entries = "".join(f"- entry_name: |\n    başlık numarası {n} için güzel bir ad\n  entry_id:  8496{n:04d}\n"
                      f"  entry_writer: yazar{n}\n  entry_content: |\n    Bu {n}. entrinin metni, düz bir Türkçe "
                      "cümle olarak yazıldı.\n\n    İkinci paragrafı da burada duruyor.\n" for n in range(60))
    text = f"---\nlayout: post\ntitle: 01 Ocak 2019 Debe\ndata:\n{entries}---\n"
    kept = remove_spans(text, ProseDetector().spans(text))
    assert "entry_id" not in kept and "---" not in kept and "layout" not in kept
    assert kept.startswith("başlık numarası 0 için güzel bir ad\nBu 0. entrinin metni, düz bir Türkçe cümle olarak "
                           "yazıldı.\n\nİkinci paragrafı da burada duruyor.\nbaşlık numarası 1")
