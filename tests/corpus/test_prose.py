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
    assert "references" in {s.reason for s in spans}
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
    assert flagged == [False, False, False, False, True, True]
