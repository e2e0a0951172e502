"""Corpus language: Turkish, Azerbaijani, English told apart; casing follows the language."""

from __future__ import annotations

from pathlib import Path

import pytest

from lunalm.corpus import builtin
from lunalm.corpus.language import detect_language, lower

FIXTURE = (Path(__file__).parent / "data" / "tr_az_letters.txt").read_text(encoding="utf-8").splitlines()
TURKISH = FIXTURE[:5]  # speeches of the built-in corpus
AZERBAIJANI = FIXTURE[9:13]  # the Constitution of Azerbaijan
ENGLISH = ["It was the first time that the committee had met in Istanbul, and they were not sure "
           "which of the proposals would pass.", "In the end, it is the vote of the members that counts."]


def test_builtin_corpus_is_turkish() -> None:
    assert detect_language(text for _, text in builtin.iter_speeches()) == "tr"


@pytest.mark.parametrize(("texts", "code"), [(TURKISH, "tr"), (AZERBAIJANI, "az"), (ENGLISH, "en"),
                                             (["Der Hund und die Katze sind nicht im Haus."], "de"),
                                             (["12 345 678 — 90.12", ""], "und"),
                                             (["De minister zei dat het kabinet niet van plan is om de regels te "
                                               "veranderen.", "Het water in de haven staat hoog."], "nl")])
def test_detects_the_language(texts: list[str], code: str) -> None:
    assert detect_language(texts) == code


def test_one_azerbaijani_sentence_is_not_turkish() -> None:
    # the two share "bir", "bu", "da", "ki"; ə decides
    assert detect_language(["Bu, hər bir vətəndaşın borcudur."]) == "az"
    assert detect_language(["Bu, her bir vatandaşın borcudur."]) == "tr"


def test_casing_follows_the_language() -> None:
    assert lower("It Istanbul İzmir", "tr") == "ıt ıstanbul izmir"
    assert lower("It Istanbul", "az") == "ıt ıstanbul"
    assert lower("It Istanbul", "en") == "it istanbul"
