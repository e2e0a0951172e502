"""Letters that a decoder replaced by U+FFFD, restored from the corpus's own words.

A Turkish file saved in cp1254 and once opened as UTF-8 with replacement, then saved again, has every
letter outside ASCII as "�": ``T�rk Telekom'un indirim reklamlar� Sanayi ve Ticaret Bakanl���'na``
(a real file among the 1150haber news; its 749 neighbours are intact). The bytes are gone, so no decoder
can bring them back, but the corpus usually holds the same words intact: ``Bakanl���`` has one reading
among the words seen elsewhere, ``Bakanlığı``. Each damaged word (letters and "�") becomes the most
frequent seen word that the damage turns into it: the same word with every letter of ``LETTERS`` as "�"
(looked up by that skeleton, so a word with many "�" costs no more), its intact letters in place. Words
with no such reading stay as they are and are counted, so the report says how much is left.

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
HOLD_CHARS = 50_000_000  # damaged text held back for the end at most; past it, restored with the words so far
LEARN_CHARS = 20_000_000  # intact text whose words are counted: ~3 s at 7M characters/s, bounded memory
_DAMAGED = re.compile(rf"(?:[^\W\d_]|{REPLACEMENT})*{REPLACEMENT}(?:[^\W\d_]|{REPLACEMENT})*")
_WORD_WITH_LETTER = re.compile(rf"[^\W\d_]*[{LETTERS}][^\W\d_]*")
_SKELETON = str.maketrans({letter: REPLACEMENT for letter in LETTERS})


def is_damaged(text: str) -> bool:
    """Whether ``text`` holds a word with "�" in it (not a lone "�" between spaces or digits)."""
    return REPLACEMENT in text and any(len(m.group()) > m.group().count(REPLACEMENT)
                                       for m in _DAMAGED.finditer(text))


def skeleton(word: str) -> str:
    """``word`` as the damage leaves it: every letter of LETTERS replaced by "�" (``Bakanlığı`` ->
    ``Bakanl���``)."""
    return word.translate(_SKELETON)


class Restorer:
    """Words with Turkish letters seen in intact text, and the restoration of damaged words from them."""

    def __init__(self) -> None:
        self.words: Counter[str] = Counter()
        self.learned_chars = 0
        self._index: dict[str, list[tuple[int, str]]] | None = None  # skeleton -> (count, word), most seen first
        self._cache: dict[str, str | None] = {}

    def learn(self, text: str) -> None:
        if self.learned_chars < LEARN_CHARS:
            self.words.update(_WORD_WITH_LETTER.findall(text))
            self.learned_chars += len(text)
            self._index = None

    def restore(self, text: str) -> tuple[str, int, int]:
        """(text with damaged words restored, "�" restored, "�" left inside words)."""
        if self._index is None:
            self._index, self._cache = {}, {}
            for word, count in self.words.items():
                self._index.setdefault(skeleton(word), []).append((count, word))
            for readings in self._index.values():
                readings.sort(key=lambda reading: (-reading[0], reading[1]))
        restored = left = 0

        def replace(match: re.Match) -> str:
            nonlocal restored, left
            word = match.group()
            count = word.count(REPLACEMENT)
            if count == len(word):  # no letter around it: not a word
                return word
            reading = self._reading(word)
            if reading is None:
                left += count
                return word
            restored += count
            return reading

        return _DAMAGED.sub(replace, text), restored, left

    def _reading(self, word: str) -> str | None:
        """The most frequent seen word that the damage turns into ``word`` (letters left intact must match)."""
        if word not in self._cache:
            self._cache[word] = next(
                (seen for _, seen in self._index.get(skeleton(word), ())
                 if all(a == b for a, b in zip(word, seen) if a != REPLACEMENT)), None)
        return self._cache[word]
