"""Letters that a decoder replaced by U+FFFD (or cp1254 by "?"), restored from the corpus's own words.

A Turkish file saved in cp1254 and once opened as UTF-8 with replacement, then saved again, has every
letter outside ASCII as "�": ``T�rk Telekom'un indirim reklamlar� Sanayi ve Ticaret Bakanl���'na``
(a real file among the 1150haber news; its 749 neighbours are intact). The bytes are gone, so no decoder
can bring them back, but the corpus usually holds the same words intact: ``Bakanl���`` has one reading
among the words seen elsewhere, ``Bakanlığı``. Each damaged word (letters and "�") becomes the most
frequent seen word that the damage turns into it: the same word with every letter of ``LETTERS`` as "�"
(looked up by that skeleton, so a word with many "�" costs no more), its intact letters in place. Words
with no such reading stay as they are and are counted, so the report says how much is left.

Azerbaijani saved in cp1254 loses only "ə" and "Ə", as "?" (``Az?rbaycan``, ``ş?h?r``), and the same
lookup restores it: the skeleton makes "ə"/"Ə" "?". A "?" is taken for a letter only between letters and
only in a word that has an intact reading, so a URL's ``page.php?id`` stays as it is.

``Corpus.documents`` learns the words of the intact documents as it streams and holds damaged documents
back (up to ``HOLD_CHARS``) until the end, when the most words are known.
"""

from __future__ import annotations

import re
from collections import Counter

REPLACEMENT = "\ufffd"
# The letters of cp1254 / ISO-8859-9 outside ASCII that Turkish text uses: each is one byte there, and one
# "�" after a UTF-8 decoder has replaced it (ASCII letters are valid UTF-8 and survive).
LETTERS = "çğıöşüâîûÇĞİÖŞÜÂÎÛ"
# Azerbaijani saved in cp1254 (Windows' Turkish code page, which has every Azerbaijani letter but ə): "ə"
# and "Ə" become "?" ("Azərbaycan" -> "Az?rbaycan", "şəhər" -> "ş?h?r"; ç ğ ı ö ş ü survive).
QUESTION_LETTERS = "əƏ"
HOLD_CHARS = 50_000_000  # damaged text held back for the end at most; past it, restored with the words so far
LEARN_CHARS = 20_000_000  # intact text whose words are counted: ~3 s at 7M characters/s, bounded memory
# A word: letters, "�" and "?", starting with a letter, "�", or a "?" before one ("?li" may be "Əli"). A
# "?" at its end may be "ə" ("m?kt?b?": məktəbə) or end a question ("n?dir?": nədir?): both are tried.
_WORD = re.compile(rf"(?:[^\W\d_]|{REPLACEMENT}|\?(?=[^\W\d_]|{REPLACEMENT}))(?:[^\W\d_]|{REPLACEMENT}|\?)*")
_LETTER_WORD = re.compile(rf"(?:[^\W\d_]|{REPLACEMENT})+")  # letters and "�" only
_DAMAGED = re.compile(rf"(?:[^\W\d_]|{REPLACEMENT})*{REPLACEMENT}(?:[^\W\d_]|{REPLACEMENT})*")
_INNER_QUESTION = re.compile(r"[^\W\d_]\?(?=[^\W\d_])")
# A web address, or a query ("details.aspx?familyid=…", "join?id=GFRH8M&role=attend"): its "?" is no letter
_URL = re.compile(r"(?:[a-z][a-z0-9+.-]*://|www\.)\S+|\S+\?[^\W\d_][\w.-]*=\S*", re.IGNORECASE)
_WORD_WITH_LETTER = re.compile(rf"[^\W\d_]*[{LETTERS}{QUESTION_LETTERS}][^\W\d_]*")
# A capitalised word inside a sentence (after a word or a comma and a space): a name ("dostu Əli")
_NAME_INSIDE = re.compile(r"(?<=[\w,;:] )[A-ZÇĞİÖŞÜƏÂÎÛ][^\W\d_]*")
_HAS_LETTER = re.compile(f"[{LETTERS}{QUESTION_LETTERS}]")
_SKELETON = str.maketrans({**{letter: REPLACEMENT for letter in LETTERS},
                           **{letter: "?" for letter in QUESTION_LETTERS}})


def is_damaged(text: str) -> bool:
    """Whether ``text`` holds a word with "�" in it (not a lone "�" between spaces or digits), or at least
    two words with "?" between letters (one is a URL's query as often as not) and no "ə" anywhere: text
    that kept its "ə" did not lose it to "?" (Azerbaijani lyrics in UTF-8 write "oğlandı?Nə işdiyir?")."""
    if REPLACEMENT in text and any(len(m.group()) > m.group().count(REPLACEMENT) for m in _DAMAGED.finditer(text)):
        return True
    return "?" in text and _inner_questions(text) >= 2 and not _has_schwa(text)


def marks_left(text: str) -> int:
    """"�" anywhere and "?" between letters in ``text`` after restoration: what no intact word explained
    (a "?" between letters may still be a missing space after a question)."""
    return text.count(REPLACEMENT) + (_inner_questions(text) if "?" in text else 0)


def _inner_questions(text: str) -> int:
    """The "?" between letters outside web addresses and their queries (a blog's two download links
    ``details.aspx?familyid=…`` made it look damaged)."""
    return len(_INNER_QUESTION.findall(_URL.sub(" ", text) if "=" in text or "/" in text else text))


def _has_schwa(text: str) -> bool:
    return "ə" in text or "Ə" in text


def _starts_sentence(text: str, start: int) -> bool:
    """Whether the word at ``start`` begins the text, a line or a sentence (quotes and brackets aside)."""
    window = text[max(0, start - 12):start]
    before = window.rstrip(" \t\"'«“(")
    if not before:
        return start == len(window)  # nothing but spaces and quotes since the start of the text
    return before[-1] == "\n" or before.rstrip("\"'»”)")[-1:] in (".", "!", "?", "…")


def _lost_schwa(before: str, end: int, questions: set[int]) -> bool:
    """Whether ``before`` (the text before a word, ending at ``end``) ends in a "?" glued to a letter that
    was an "ə": in Azerbaijani that lost its "ə", a word-final "ə" (2,790 in 175 KB of Wikipedia sentences)
    is far more common than a question (none there), so such a "?" is taken for one unless the word it ends
    was read as a question (``questions``: where those words end)."""
    return before.endswith("?") and before[-2:-1].isalpha() and end not in questions


def skeleton(word: str) -> str:
    """``word`` as the damage leaves it: every letter of LETTERS "�", "ə"/"Ə" "?" (``Bakanlığı`` ->
    ``Bakanl���``, ``şəhər`` -> ``�?h?r``)."""
    return word.translate(_SKELETON)


class Restorer:
    """Words with Turkish letters seen in intact text, and the restoration of damaged words from them."""

    def __init__(self) -> None:
        self.words: Counter[str] = Counter()
        self.names: Counter[str] = Counter()  # of those, capitalised inside a sentence (``_NAME_INSIDE``)
        self.learned_chars = 0
        self._index: dict[str, list[tuple[int, str]]] | None = None  # skeleton -> (count, word), most seen first
        self._cache: dict[str, str | None] = {}

    def learn(self, text: str) -> None:
        if self.learned_chars < LEARN_CHARS:
            self.words.update(_WORD_WITH_LETTER.findall(text))
            self.names.update(name for name in _NAME_INSIDE.findall(text) if _HAS_LETTER.search(name))
            self.learned_chars += len(text)
            self._index = None

    def restore(self, text: str) -> tuple[str, int, int]:
        """(text with damaged words restored, letters restored ("�" and "?"), "�" left inside words; a "?"
        left is not counted: it may be a URL's)."""
        if self._index is None:
            self._index, self._cache = {}, {}
            for word, count in self.words.items():
                self._index.setdefault(skeleton(word), []).append((count, word))
            for readings in self._index.values():
                readings.sort(key=lambda reading: (-reading[0], reading[1]))
        restored = left = 0
        words = _LETTER_WORD if _has_schwa(text) else _WORD  # with "ə" intact, every "?" is a question mark
        questions: set[int] = set()  # where a word whose final "?" its reading took for a question mark ends

        def replace(match: re.Match) -> str:
            nonlocal restored, left
            word = match.group()
            replaced = word.count(REPLACEMENT)
            if (not replaced and "?" not in word) or replaced == len(word):  # intact, or no letter around it
                return word
            core = word.rstrip("?")  # the word without a question's mark, tried second
            window = text[max(0, match.start() - 12):match.start()]
            before = window.rstrip(" \t\"'«“(")  # what the word follows, spaces and opening quotes aside
            # "ş?h?r? ?n" is "şəhərə ən": after a "?" that was an "ə", no sentence starts (_lost_schwa)
            capital = _starts_sentence(text, match.start()) and not (
                words is _WORD and _lost_schwa(before, match.start() - len(window) + len(before), questions))
            stop = capital and before[-1:] in tuple(".!?…")  # not a line's start: verse starts lines small
            for candidate in (word, core) if core != word else (word,):
                reading = self._reading(candidate, capital)
                if reading is not None and stop and reading[0].islower() and not candidate[0].isalpha():
                    reading = reading[0].upper() + reading[1:]  # seen only small: "edib. ?hali" is "Əhali"
                if reading is not None:
                    restored += candidate.count(REPLACEMENT) + candidate.count("?")
                    if candidate is core:
                        questions.add(match.end())
                    return reading + word[len(candidate):]
            left += replaced
            return word

        return words.sub(replace, text), restored, left

    def _reading(self, word: str, capital: bool) -> str | None:
        """The most frequent seen word that the damage turns into ``word`` (letters left intact must match);
        where the first letter is the damaged one, a capital one first at the start of a line or sentence
        (``capital``) and a small one elsewhere, as the text around it says, unless the intact text
        capitalises the word inside sentences more than twice as often as it writes it small (and at least
        three times): a name (``Əli``, against ``əli``, "his hand"), which keeps its capital inside a
        sentence too. A damaged letter after the first is small, as the word's intact letters are, unless
        they are all capitals ("V?" is "Və" where headings wrote "VƏ" more often; "MEYV?" is "MEYVƏ")."""
        key = (word, capital and not word[0].isalpha())
        if key not in self._cache:
            counted = [(count, seen) for count, seen in self._index.get(skeleton(word), ())
                       if all(a == b for a, b in zip(word, seen) if a not in (REPLACEMENT, "?"))]
            intact = [letter for letter in word[1:] if letter.isalpha()]
            shouting = len(intact) >= 2 and all(letter.isupper() for letter in intact)  # "MEYV?" is "MEYVƏ"
            counted.sort(key=lambda reading: any(seen.isupper() != shouting for damaged, seen
                                                 in zip(word[1:], reading[1][1:]) if not damaged.isalpha()))
            if counted and not word[0].isalpha():
                names = sum(self.names[seen] for _, seen in counted if seen[0].isupper())
                small = sum(count for count, seen in counted if not seen[0].isupper())
                capital = capital or (names >= 3 and names > 2 * small)
                counted.sort(key=lambda reading: reading[1][0].isupper() != capital)  # stable: most seen first
            self._cache[key] = counted[0][1] if counted else None
        return self._cache[key]
