"""Encoding detection and mojibake repair on real Turkish prose (exact round trips)."""

from __future__ import annotations

import pytest

from lunalm.corpus.encoding import Decoded, decode_bytes, mojibake_score, repair_mojibake
from lunalm.errors import CorpusError

# Written for these tests: every Turkish letter (ğ ş ı İ ö ü ç Ğ Ş Ö Ü Ç), apostrophe suffixes, “quotes”.
PROSE = (
    "Türkiye'nin başkenti Ankara'dır; en kalabalık şehri ise İstanbul'dur. Ankara'da kışlar soğuk ve "
    "karlı geçer, yazın ise güneş bütün gün yakıcıdır.\n"
    "Öğretmenimiz “Ağaç yaşken eğilir” dedi ve çocuklar gülüştü. Işık sönünce Gökçe'nin küçük kardeşi "
    "Ömer uyudu.\n"
    "ŞUBAT AYINDA ÇIĞ DÜŞTÜ, ÖĞLEDEN SONRA ÜÇ KÖY YOLU KAPANDI. Ğ harfiyle başlayan Türkçe kelime yoktur.\n"
)
EMOJI = "Bayramınız kutlu olsun 😀 🇹🇷 ✨ — görüşmek üzere, İzmir'den sevgiler! 👍🏽\n"
TEXT = PROSE + EMOJI
UNDEFINED = {"cp1254": {0x81, 0x8D, 0x8E, 0x8F, 0x90, 0x9D, 0x9E}, "cp1252": {0x81, 0x8D, 0x8F, 0x90, 0x9D},
             "latin-1": set()}


def mojibake(text: str, *code_pages: str) -> str:
    """UTF-8 read through each code page in turn, undefined bytes kept as C1 controls (as Windows does)."""
    for code_page in code_pages:
        text = "".join(chr(b) if b in UNDEFINED[code_page] else bytes([b]).decode(code_page)
                       for b in text.encode("utf-8"))
    return text


@pytest.mark.parametrize(("encoding", "text", "detected"), [
    ("utf-8", TEXT, "utf-8"),
    ("utf-8-sig", TEXT, "utf-8-sig"),
    ("utf-16", TEXT, "utf-16"),
    ("utf-16-le", TEXT, "utf-16-le"),
    ("utf-16-be", TEXT, "utf-16-be"),
    ("utf-32", TEXT, "utf-32"),
    ("cp1254", PROSE, "cp1254"),  # “ ” are bytes 0x93 0x94: only the Windows page has them
    ("iso-8859-9", PROSE.replace("“", '"').replace("”", '"'), "iso-8859-9"),
    ("cp1252", "Schöne Grüße aus Köln, déjà vu à Paris – 5 € für ein Café.\n", "cp1252"),
    ("latin-1", "Schöne Grüße aus Köln, déjà vu à Paris, naïve façade.\n", "iso-8859-1"),
])
def test_round_trip_through_encodings(encoding: str, text: str, detected: str) -> None:
    assert decode_bytes(text.encode(encoding)) == Decoded(text, detected, 0, 0)


def test_short_turkish_cp1254_is_not_read_as_cp1252() -> None:
    # charset-normalizer's weak spot: a few words where ı ş ğ would become ý þ ð under cp1252
    assert decode_bytes("Işık, şişe, dağ.".encode("cp1254")).text == "Işık, şişe, dağ."


def test_dos_turkish_is_read_as_such_and_western_text_stays_western() -> None:
    """cp857 (old DOS editors, what a Turkish Windows console writes) was read as Mac Turkish: "Nasçlsçn?
    òyiyim, teüekkŞrler." for "Nasılsın? İyiyim, teşekkürler."; DOS's box drawing counts against a code page."""
    lines = ("Türkiye'nin başkenti Ankara'dır.\nÇocuklar okula gider, öğretmenler derse hazırlanır.\n"
             "Dün akşam yağmur yağdı ve sokaklar ıslandı.\n")
    assert decode_bytes(lines.encode("cp857")) == Decoded(lines, "cp857", 0, 0)
    for text in ("Nasılsın? İyiyim, teşekkürler.", "Ayşe Yılmaz", "Öğretmen çocuklara kitap okudu.", "Üç kuş uçtu.",
                 "Çok güzel bir gün."):  # the last has no ı ş ğ: as likely Mac Turkish, and DOS is the commoner
        assert decode_bytes(text.encode("cp857")).text == text
    for text in ("Ömer çöp kutusunu dışarı çıkardı.", "çok şükür", "Dün akşam yağmur yağdı ve sokaklar ıslandı."):
        assert decode_bytes(text.encode("mac_turkish")).text == text
        assert decode_bytes(text.encode("cp1254")).text == text
    for text in ("São Paulo é grande.", "Müller fährt über die Brücke.", "Hélène préfère les crêpes.",
                 "El niño comió paella en España."):
        assert decode_bytes(text.encode("cp1252")).text == text


def test_cyrillic_code_page_goes_to_charset_normalizer() -> None:
    russian = ("Москва — столица России и крупнейший город страны. Летом в парках много людей, "
               "а зимой все катаются на коньках.\n")
    decoded = decode_bytes(russian.encode("cp1251"))
    assert (decoded.text, decoded.encoding) == (russian, "cp1251")


def test_utf8_and_cp1254_lines_in_one_file() -> None:
    data = PROSE.encode("utf-8") + "Işık söndü, Gökçe'nin kardeşi uyudu.\n".encode("cp1254")
    decoded = decode_bytes(data)
    assert decoded.text == PROSE + "Işık söndü, Gökçe'nin kardeşi uyudu.\n"
    assert decoded.encoding == "utf-8+iso-8859-9"


@pytest.mark.parametrize("code_pages", [
    ("cp1254",), ("cp1252",), ("latin-1",),
    ("cp1254", "cp1254"), ("cp1252", "cp1252"), ("cp1254", "cp1252"), ("cp1252", "cp1254"),
    ("latin-1", "cp1252"),
])
def test_mojibake_layers_are_undone(code_pages: tuple[str, ...]) -> None:
    broken = mojibake(TEXT, *code_pages)
    assert mojibake_score(broken) > 0
    fixed, repaired_chars, layers = repair_mojibake(broken)
    assert fixed == TEXT
    assert layers == len(code_pages)
    assert repaired_chars > 0
    assert mojibake_score(fixed) == 0
    assert "\ufffd" not in fixed


@pytest.mark.parametrize("code_pages", [("cp1254",), ("cp1252", "cp1254")])
def test_decode_bytes_repairs_a_saved_mojibake_file(code_pages: tuple[str, ...]) -> None:
    decoded = decode_bytes(mojibake(TEXT, *code_pages).encode("utf-8"), source="x.txt")
    assert (decoded.text, decoded.encoding, decoded.mojibake_layers) == (TEXT, "utf-8", len(code_pages))


def test_mojibake_score_counts_sequences() -> None:
    assert mojibake_score("TÃ¼rkiye'nin baÅŸkenti ğŸ˜€") == 3
    assert mojibake_score(TEXT) == 0


def test_repaired_chars_counts_replaced_input_characters() -> None:
    assert repair_mojibake("TÃ¼rkiye") == ("Türkiye", 2, 1)
    assert repair_mojibake("DoÃ„Å¸u") == ("Doğu", 4, 2)


def test_clean_and_broken_lines_are_fixed_line_by_line() -> None:
    lines = TEXT.splitlines(keepends=True)
    broken = "".join(mojibake(line, "cp1254") if i % 2 else line for i, line in enumerate(lines))
    fixed, repaired_chars, layers = repair_mojibake(broken)
    assert (fixed, layers) == (TEXT, 1)
    assert repaired_chars == len(broken) - len(TEXT) + sum(1 for i, line in enumerate(lines) if i % 2
                                                            for c in line if not c.isascii())


def test_mixed_layers_in_one_line() -> None:
    line = "Doğu ve Güneş 😀"
    broken = mojibake("Doğu ve ", "cp1254") + mojibake("Güneş 😀", "cp1254", "cp1252")
    assert repair_mojibake(broken)[0] == line


@pytest.mark.parametrize("clean", [
    TEXT,
    "The quick brown fox jumps over the lazy dog.",
    "Schöne Grüße aus München! Straße, Äpfel, Öl, Übermut.",
    "C'est déjà l'été à Besançon ; naïve façade, cœur, « guillemets ».",
    "Portekizcede Ã harfi burun sesini gösterir; São Paulo'da ÃO diye yazılır.",
    "KOÇ’un, DAĞ’a, İŞ’te ve GÜÇ’ün: büyük harfle yazılmış kelimelerde kesme işareti.",
    "“HÂLÂ” dedi; “KÂR” ve “HÂKİM” şapkalı yazılır.",  # Â + ” would spell a C1 control: not mojibake
    "“Bekliyorum hâlâ…” dedi. “Ağaç…” diye fısıldadı.",  # letter + two punctuation marks: not mojibake
    "Fiyat: 5 €, sıcaklık 21 °C, © 2024 – “tırnak” ve ‘tek tırnak’… Ñandú, Ærø, Ðakovo, ÝBA.",
])
def test_clean_text_is_left_unchanged(clean: str) -> None:
    assert repair_mojibake(clean) == (clean, 0, 0)
    assert decode_bytes(clean.encode("utf-8")) == Decoded(clean, "utf-8", 0, 0)


def test_ftfy_alone_leaves_cp1254_mojibake_that_we_fix() -> None:
    ftfy = pytest.importorskip("ftfy")
    for word in ("Doğu", "şişe"):
        broken = mojibake(word, "cp1254")
        assert ftfy.fix_text(broken) != word
        assert repair_mojibake(broken)[0] == word


def test_damaged_utf16_names_source_and_byte() -> None:
    data = "Ankara'da".encode("utf-16") + b"\x00\xd8" + "kış".encode("utf-16-le")  # lone high surrogate
    with pytest.raises(CorpusError, match=r"corpus/x\.txt: byte 20 cannot be decoded as utf-16"):
        decode_bytes(data, source="corpus/x.txt")


def test_nul_byte_in_non_utf8_data_names_source_and_byte() -> None:
    data = "Işık söndü.".encode("cp1254") + b"\x00\x01\x02\x00" + " Gökçe uyudu.".encode("cp1254")
    with pytest.raises(CorpusError, match=r"corpus/x\.bin: byte 11 cannot be decoded as utf-8"):
        decode_bytes(data, source="corpus/x.bin")
