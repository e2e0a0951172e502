"""Lost-byte recovery measured: letters and emoji rebuilt after UTF-8 went through cp1254 / cp1252 /
ISO-8859-9 (once and twice) with the undefined bytes dropped or replaced by U+FFFD.

Two inputs:

* ``tests/corpus/data/tr_az_letters.txt``: real Turkish and Azerbaijani sentences (every letter of both
  alphabets in both cases) and note lines with emoji, variation selectors, skin tones, flags, a ZWJ family;
* a sweep over every assigned pictographic symbol (category So, U+2600..U+27BF and U+1F300..U+1FAFF) whose
  UTF-8 holds a byte the code page loses, each alone in a Turkish sentence: how often the one lost byte is
  chosen right when nothing but the frequency table can tell the completions apart.

    python bench/bench_recovery.py
"""

from __future__ import annotations

import sys
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
import common  # noqa: E402

from lunalm.corpus.mojibake import repair_text  # noqa: E402
from tests.corpus.test_lostbytes import CHAINS, DROPPED, FIXTURE, lose_bytes, recovered_shares  # noqa: E402

SENTENCE = "Türkiye'nin başkenti Ankara, şehir güzel {} ve sonra.\n"


def fixture_rows() -> list[dict]:
    rows = []
    for replace in (False, True):
        for chain in CHAINS:
            if replace and "iso-8859-9" in chain:
                continue  # ISO-8859-9 defines every byte: nothing to replace
            repair = repair_text(lose_bytes(FIXTURE, *chain, replace=replace))
            letters, emoji = recovered_shares(FIXTURE, repair.text)
            rows.append({"chain": "+".join(chain), "lost as": "U+FFFD" if replace else "dropped",
                         "letters": 100 * letters, "emoji": 100 * emoji, "bytes rebuilt": repair.recovered_bytes,
                         "unrecoverable": len(repair.unrecoverable_lines)})
    return rows


def sweep_rows() -> list[dict]:
    symbols = [chr(c) for c in [*range(0x2600, 0x27C0), *range(0x1F300, 0x1FB00)]
               if unicodedata.category(chr(c)) == "So"]
    rows = []
    for code_page in ("cp1254", "cp1252"):
        for replace in (False, True):
            damaged = [s for s in symbols if set(s.encode("utf-8")) & set(DROPPED[code_page])]
            right = sum(repair_text(lose_bytes(SENTENCE.format(s), code_page, replace=replace)).text
                        == SENTENCE.format(s) for s in damaged)
            rows.append({"code page": code_page, "lost as": "U+FFFD" if replace else "dropped",
                         "damaged symbols": len(damaged), "rebuilt right": right,
                         "share": 100 * right / len(damaged)})
    return rows


def main() -> None:
    fixture, sweep = fixture_rows(), sweep_rows()
    common.print_table(fixture, [("chain", "chain", "s"), ("lost as", "lost as", "s"), ("letters", "letters %", ".2f"),
                                 ("emoji", "emoji %", ".2f"), ("bytes rebuilt", "bytes rebuilt", "d"),
                                 ("unrecoverable", "unrecoverable", "d")])
    print()
    common.print_table(sweep, [("code page", "code page", "s"), ("lost as", "lost as", "s"),
                               ("damaged symbols", "damaged symbols", "d"), ("rebuilt right", "rebuilt right", "d"),
                               ("share", "share %", ".1f")])
    common.write_json("recovery", {"fixture": fixture, "sweep": sweep})


if __name__ == "__main__":
    main()
