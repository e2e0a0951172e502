"""Which language a corpus is written in, and the casing rules that go with it.

Our own small detector rather than a dependency: the corpora here are Turkish, Azerbaijani or English
first, and the two Turkic languages share most letters and many short words, which general detectors
(trained on Wikipedia-sized profiles) confuse on short text. Each language gets a list of its commonest
function words; a text scores the share of its words found in each list, and Azerbaijani's ə (about one
letter in eleven, absent from Turkish) and Turkish's dotless ı settle the close cases.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

UNDETERMINED = "und"  # ISO 639-2 code for "could not tell"
SAMPLE_CHARS = 200_000  # enough words to decide; more only costs time
MIN_SHARE = 0.08  # at least this share of words must be function words of the winner

# The commonest function words of each language (the words themselves, not copied from a list).
FUNCTION_WORDS = {
    "tr": "ve bir bu da de için ile çok ne o gibi daha olarak ama en kadar ki sonra mi var olan her şey ben "
          "biz onlar değil ise veya yani nasıl şu diye olduğu kendi büyük",
    "az": "və bir bu ki ilə üçün da də o çox olan kimi daha isə deyil onun bütün sonra qədər amma hər mən "
          "biz nə həm olaraq görə lakin edir oldu",
    "en": "the and of to a in is that it for was on with as be this are by not but have from at or his "
          "they which you he we",
    "de": "der die und das ist nicht ein eine zu den mit sich des auf für im dem von auch es",
    "fr": "le la les et des un une est que pour dans du pas qui sur au avec il elle",
    "es": "el la los las y que en un una es por con para del se no al lo",
    "nl": "de het een en van is dat op te zijn voor met niet aan er maar ook als bij dit om naar",  # its "de"
    #     and "en" are Turkish words too: the Leipzig Dutch news sentences were taken for Turkish
}
_WORDS = {language: frozenset(words.split()) for language, words in FUNCTION_WORDS.items()}
_WORD = re.compile(r"[^\W\d_]+")


NAMES = {"tr": "Turkish", "az": "Azerbaijani", "en": "English", "de": "German", "fr": "French",
         "es": "Spanish", "nl": "Dutch", UNDETERMINED: "undetermined"}


def language_name(code: str) -> str:
    """"tr" -> "tr (Turkish)"."""
    return f"{code} ({NAMES.get(code, code)})"


def lower(text: str, language: str) -> str:
    """Lower-case with the language's rules: Turkish and Azerbaijani map I -> ı and İ -> i."""
    if language in ("tr", "az"):
        return text.replace("I", "ı").replace("İ", "i").lower()
    return text.lower()


def _sample(texts: Iterable[str]) -> str:
    """Up to SAMPLE_CHARS characters; of a list, an equal share of each text (at least 1,000 characters
    each), so the first of several files does not decide alone."""
    share = max(SAMPLE_CHARS // len(texts), 1000) if isinstance(texts, (list, tuple)) and texts else SAMPLE_CHARS
    pieces, chars = [], 0
    for text in texts:
        pieces.append(text[:min(share, SAMPLE_CHARS - chars)])
        chars += len(pieces[-1])
        if chars >= SAMPLE_CHARS:
            break
    return "\n".join(pieces)


def language_scores(text: str) -> dict[str, float]:
    """Share of the words of ``text`` that are function words of each language (plus letter evidence)."""
    words = Counter(lower(word, "tr") for word in _WORD.findall(text))
    total = sum(words.values())
    if not total:
        return {language: 0.0 for language in _WORDS}
    scores = {language: sum(n for word, n in words.items() if word in vocabulary) / total
              for language, vocabulary in _WORDS.items()}
    letters = max(sum(c.isalpha() for c in text), 1)
    schwa, dotless = (text.count("ə") + text.count("Ə")) / letters, text.count("ı") / letters
    if schwa > 0.01:  # ə is ~9 % of Azerbaijani letters and absent from Turkish
        scores["az"] += scores["tr"] + 0.1
    elif dotless > 0.005:  # ı: Turkish (or Azerbaijani without ə, which real Azerbaijani never is)
        scores["tr"] += scores["az"] + 0.1
    return scores


def detect_language(texts: Iterable[str]) -> str:
    """ISO 639-1 code of the language of ``texts`` ("tr", "az", "en", "de", "fr", "es", "nl"), or "und"."""
    scores = language_scores(_sample(texts))
    best = max(scores, key=scores.__getitem__)
    return best if scores[best] >= MIN_SHARE else UNDETERMINED
