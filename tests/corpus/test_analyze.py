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
