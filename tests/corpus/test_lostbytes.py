"""Lost-byte recovery: UTF-8 read through a code page that drops bytes, then saved (once or twice).

The fixture holds real Turkish (the built-in corpus' speeches) and Azerbaijani (the Constitution) sentences,
upper-cased copies (every letter of both alphabets in both cases) and note lines with emoji, variation
selectors, skin tones, flags and a ZWJ family.
"""

from __future__ import annotations

import difflib
import unicodedata
from pathlib import Path

import pytest

from lunalm.corpus.encoding import decode_bytes
from lunalm.corpus.mojibake import Repair, repair_text

FIXTURE = (Path(__file__).parent / "data" / "tr_az_letters.txt").read_text(encoding="utf-8")
DROPPED = {"cp1254": bytes([0x81, 0x8D, 0x8E, 0x8F, 0x90, 0x9D, 0x9E]),
           "cp1252": bytes([0x81, 0x8D, 0x8F, 0x90, 0x9D]),
           "iso-8859-9": b""}  # defines every byte (0x80..0x9F as C1 controls): nothing is lost
CHAINS = [("cp1254",), ("cp1252",), ("iso-8859-9",), ("cp1254", "cp1254"), ("cp1252", "cp1254"),
          ("cp1254", "cp1252"), ("iso-8859-9", "iso-8859-9")]


def lose_bytes(text: str, *code_pages: str, replace: bool = False) -> str:
    """UTF-8 decoded through each code page in turn, the bytes it does not define dropped (or, with
    ``replace``, decoded as U+FFFD as Python's errors="replace" does)."""
    for code_page in code_pages:
        if replace:
            text = text.encode("utf-8").decode(code_page, errors="replace")
            continue
        data = bytes(b for b in text.encode("utf-8") if b not in DROPPED[code_page])
        text = data.decode(code_page)
    return text


def _is_emoji_part(char: str) -> bool:
    return unicodedata.category(char) == "So" or char in "\u200d\ufe0f" or 0x1F3FB <= ord(char) <= 0x1F3FF \
        or 0x1F1E6 <= ord(char) <= 0x1F1FF


def recovered_shares(original: str, repaired: str) -> tuple[float, float]:
    """(share of non-ASCII letters, share of emoji code points) of ``original`` that ``repaired`` holds
    in the same place."""
    kept = [False] * len(original)
    for block in difflib.SequenceMatcher(None, original, repaired, autojunk=False).get_matching_blocks():
        kept[block.a:block.a + block.size] = [True] * block.size
    letters = [i for i, c in enumerate(original) if c.isalpha() and not c.isascii()]
    emoji = [i for i, c in enumerate(original) if _is_emoji_part(c)]
    return sum(kept[i] for i in letters) / len(letters), sum(kept[i] for i in emoji) / len(emoji)


@pytest.mark.parametrize("chain", CHAINS, ids="+".join)
def test_letters_all_and_emoji_nearly_all_come_back(chain: tuple[str, ...]) -> None:
    broken = lose_bytes(FIXTURE, *chain)
    repair = repair_text(broken)
    letters, emoji = recovered_shares(FIXTURE, repair.text)
    assert letters == 1.0
    # Measured 0.9375 through cp1254/cp1252 once and twice (1.0 through ISO-8859-9, which drops nothing): the
    # misses are the rarer of two emoji with the same surviving bytes (👏/👍, 🏖/🖐, 🍵/🎵, 🤝/🤞, 😎/😍)
    assert emoji >= 0.93
    assert (repair.recovered_bytes > 0) == any(DROPPED[code_page] for code_page in chain)


def test_the_issue_examples_are_rebuilt() -> None:
    line = "BAŞARISIZ: Şimdi Əvvəlki planı 🎯 bırakıyoruz ❌ ⚠️ çünkü “yeni” olan daha iyi."
    assert repair_text(lose_bytes(line, "cp1254")).text == line


@pytest.mark.parametrize("chain", [c for c in CHAINS if "iso-8859-9" not in c], ids="+".join)
def test_bytes_replaced_by_u_fffd_come_back_too(chain: tuple[str, ...]) -> None:
    repair = repair_text(lose_bytes(FIXTURE, *chain, replace=True))
    letters, emoji = recovered_shares(FIXTURE, repair.text)
    assert (letters, "\ufffd" in repair.text) == (1.0, False)
    assert emoji >= 0.95  # measured 0.95: the position of each lost byte is known here


def test_twice_mis_decoded_emoji_is_chosen_by_what_the_deeper_layer_spells() -> None:
    # 🔄 = F0 9F 94 84: its cp1254 reading "ğŸ”„" loses the last bytes of ” and „ the second time; the
    # completion is chosen by the emoji each candidate makes one layer down (🔄, not 🔔)
    line = "Sonuç: 🔄 tekrar, 📌 not"
    assert repair_text(lose_bytes(line, "cp1254", "cp1254")).text == line


def test_report_counts_sequences_bytes_and_unrecoverable_lines() -> None:
    text = "Türkçe ve doğru.\nBAŞARISIZ oldu.\nÇok güzel 乍.\n"  # 乍 = E4 B9 8D: no table knows CJK letters
    repair = repair_text(lose_bytes(text, "cp1254"))
    assert repair.recovered_bytes == 1  # Ş's 0x9E
    assert repair.unrecoverable_lines == (3,)
    assert repair.text == text.replace("乍", "ä¹")
    assert repair.sequences == 6  # ü ç ğ, Ş (rebuilt), Ç ü


@pytest.mark.parametrize("clean", ["Åse bor i Ærø, São Paulo'da ÃO yazılır.", "Åse", "Ærø ve Åland",
                                   FIXTURE])
def test_clean_text_is_never_changed(clean: str) -> None:
    assert repair_text(clean).text == clean
    assert decode_bytes(clean.encode("utf-8")).text == clean


@pytest.mark.parametrize(("broken", "fixed"), [
    ("Bu rapor BAÅARISIZ oldu, şimdi yeniden deneyeceğiz.", "Bu rapor BAŞARISIZ oldu, şimdi yeniden deneyeceğiz."),
    ("Åimdi gidiyoruz ve bu çok güzel bir gün.", "Şimdi gidiyoruz ve bu çok güzel bir gün."),
    ("Ævvəlki qərar ləğv edildi və yeni qərar qəbul olundu.", "Əvvəlki qərar ləğv edildi və yeni qərar qəbul olundu."),
])
def test_lost_bytes_left_by_another_repair_tool_are_rebuilt_in_turkic_text(broken: str, fixed: str) -> None:
    # the issue's sites as a user sees them after ftfy or an older lunalm: no other mojibake is left
    assert repair_text(broken).text == fixed


@pytest.mark.parametrize("clean", [
    "Åse'nin evi Ærø adasında, Ålesund'a yakın; São Paulo'dan SÃO PAULO diye yazıldı ve çok güzel.",
    "“Bekliyorum hâlâ…” dedi ve hâlâ” diye yazdı; bu çok güzel bir gün.",
    "Åse and Ærø are names; Ã is a letter in Portuguese and Ålesund is a town in Norway.",
])
def test_foreign_names_in_clean_text_are_not_mistaken_for_lost_bytes(clean: str) -> None:
    assert repair_text(clean) == Repair(clean)


def test_builtin_corpus_is_left_exactly_as_it_is() -> None:
    from lunalm.corpus import builtin

    for _, text in builtin.iter_speeches():
        assert repair_text(text) == Repair(text)


def test_a_clean_line_beside_mojibake_keeps_its_letters() -> None:
    clean = "Åse bor i Ærø, São Paulo'da kış."
    broken = lose_bytes("Türkiye'nin başkenti Ankara.\n", "cp1254") + clean
    assert repair_text(broken).text == "Türkiye'nin başkenti Ankara.\n" + clean


# Lines of verse, each a document of its own: too few function words for the language detector
VERSE = ["AŞK ŞARKISI\nŞu beyaz çizgilerden geçiyorum, gönlüm.", "Ellerini ver, öpeceğim. Şimdi gidiyorum.",
         "Şu kuytu, cinlerin mi; Perilerin yurdu mu?"]


@pytest.mark.parametrize("chain", [("cp1254",), ("cp1254", "cp1254"), ("cp1252", "cp1254")], ids="+".join)
def test_a_short_turkish_text_gets_its_lost_s_back_not_a_polish_l(chain: tuple[str, ...]) -> None:
    for line in VERSE:
        assert repair_text(lose_bytes(line, *chain)).text == line
    polish = "Łódź jest piękna, Świat"  # Polish stays Polish
    assert repair_text(lose_bytes(polish, "cp1254")).text == polish


def test_a_mac_turkish_file_is_read_as_mac_turkish() -> None:
    text = "\n".join(["Ne hasta bekler sabahı,", "Ne taze ölüyü mezar.", "Ne de şeytan, bir günahı,",
                      "Seni beklediğim kadar.", "Geçti istemem gelmeni,", "Yokluğunda buldum seni;",
                      "Bırak vehmimde gölgeni", "Gelme, artık neyleyim?"] * 20)
    decoded = decode_bytes(text.encode("mac_turkish"), "siir.txt")
    assert (decoded.encoding, decoded.text) == ("mac_turkish", text)
    mixed = (text.encode("utf-8") + b"\n" + text.encode("cp1254"))  # a real UTF-8/cp1254 mix stays one
    assert decode_bytes(mixed, "mix.txt").encoding == "utf-8+iso-8859-9"  # no byte 0x80..0x9F in the cp1254 part


SUBTITLES = ["Şu anda evlenmeyi hayal edemiyorum.", "Şirin penisine benziyor.", "FLAŞ HABER", "Şans dileyin.",
             "Takımlar havalıdır. Şekil A."]


@pytest.mark.parametrize("chain", [("cp1254",), ("cp1254", "cp1254")], ids="+".join)
def test_subtitle_cues_each_a_record_get_their_s_back(chain: tuple[str, ...]) -> None:
    """A subtitle file's cues as JSONL records: too short for their language to be told (one reads as
    English for its "A."), and often the lost byte is their only damage."""
    for cue in SUBTITLES:
        assert repair_text(lose_bytes(cue, *chain)).text == cue
        assert repair_text(lose_bytes(cue, "cp1254", replace=True)).text == cue
    for clean in ("Åse og Åke bor i Århus.", "Æble", "Ærø"):  # Scandinavian stays as written
        assert repair_text(clean).text == clean
