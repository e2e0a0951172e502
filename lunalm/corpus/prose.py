"""Flagging text that is not prose: indexes, tables, lists of names, boilerplate.

A language model learns whatever it is fed; a 20 KB page-number index ("(C-II)103, (C-II)108, …", which
the built-in corpus contains inside one speech) teaches it nothing useful and skews every statistic.
Text is cut into *units* (lines; long lines into sentences; long sentences into ~400-character
pieces, so an index inside a paragraph is still found) and each unit is judged by simple, explainable
rules. ``--filter`` removes the flagged units.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

MAX_UNIT = 400  # characters: longer sentences are judged piece by piece
_SENTENCE = re.compile(r"[^.!?…\n]*(?:[.!?…]+\s*|\n|$)")
_TERMINAL = ".!?…:;\"'”’»)"
_QUOTES = "\"'“”‘’«»"  # quotation marks are ordinary in prose, never count them as symbols


@dataclass(frozen=True, kw_only=True)
class ProseRules:
    """Thresholds for non-prose units (shares of the unit's non-space characters)."""

    max_digit_share: float = 0.25  # more digits than this: a number table or an index
    max_symbol_share: float = 0.25  # more punctuation/symbols than this: markup, tables, separators
    min_letter_share: float = 0.5  # fewer letters than this: not language
    max_numbered_words: float = 0.3  # more words holding a digit than this ("(C-II)248,"): an index
    min_numbered_words: int = 8  # ... but only once there are this many (short dated sentences are prose)
    table_separators: int = 3  # this many '|' or 2 tabs in one line: a table row
    short_words: int = 3  # a line of at most this many words without final punctuation is "short"
    short_run: int = 3  # this many short lines in a row: a list or an index
    repeat_limit: int = 5  # a line (< 100 chars) seen this many times: boilerplate
    repeat_memory: int = 200_000  # distinct lines remembered for repeat counting (bounds memory)


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    reason: str  # "digits" | "symbols" | "no-letters" | "references" | "table" | "list" | "repeated"


def units(text: str) -> Iterator[tuple[int, int]]:
    """Yield (start, end) of units that tile ``text`` exactly."""
    position = 0
    for match in _SENTENCE.finditer(text):
        start, end = match.span()
        if start == end:
            continue
        while end - start > MAX_UNIT:
            cut = text.rfind(" ", start + MAX_UNIT // 2, start + MAX_UNIT) + 1 or start + MAX_UNIT
            yield start, cut
            start = cut
        yield start, end
        position = end
    assert position == len(text) or not text, "units must tile the text"


def _judge(unit: str, rules: ProseRules) -> str | None:
    chars = [c for c in unit if not c.isspace() and c not in _QUOTES]
    if len(chars) < 20:
        return None  # too little to judge ("“Oku” dedi."); runs of short lines are caught as lists
    letters = sum(c.isalpha() for c in chars)
    digits = sum(c.isdigit() for c in chars)
    if unit.count("|") >= rules.table_separators or unit.count("\t") >= 2:
        return "table"
    if digits > rules.max_digit_share * len(chars):
        return "digits"
    if len(chars) - letters - digits > rules.max_symbol_share * len(chars):
        return "symbols"
    if letters < rules.min_letter_share * len(chars):
        return "no-letters"
    words = unit.split()
    numbered = sum(any(c.isdigit() for c in word) for word in words)
    if numbered >= rules.min_numbered_words and numbered > rules.max_numbered_words * len(words):
        return "references"
    return None


class ProseDetector:
    """Finds non-prose spans; remembers line counts across documents to spot boilerplate."""

    def __init__(self, rules: ProseRules | None = None):
        self.rules = rules or ProseRules()
        self.line_counts: Counter[str] = Counter()

    def spans(self, text: str) -> list[Span]:
        flagged = [Span(s, e, r) for s, e in units(text) if (r := _judge(text[s:e], self.rules))]
        flagged += self._line_spans(text)
        return _merge(flagged)

    def _line_spans(self, text: str) -> list[Span]:
        found: list[Span] = []
        run: list[tuple[int, int]] = []
        position = 0
        for line in text.splitlines(keepends=True):
            start, end = position, position + len(line)
            position = end
            stripped = line.strip()
            if not stripped:
                continue
            if self._repeated(stripped):
                found.append(Span(start, end, "repeated"))
            if len(stripped.split()) <= self.rules.short_words and not stripped.endswith(tuple(_TERMINAL)):
                run.append((start, end))
                continue
            found += self._close_run(run)
            run = []
        return found + self._close_run(run)

    def _close_run(self, run: list[tuple[int, int]]) -> list[Span]:
        if len(run) >= self.rules.short_run:
            return [Span(s, e, "list") for s, e in run]
        return []

    def _repeated(self, line: str) -> bool:
        if not 25 <= len(line) < 100:  # short salutations ("Arkadaşlar!") repeat in honest prose
            return False
        if line in self.line_counts or len(self.line_counts) < self.rules.repeat_memory:
            self.line_counts[line] += 1
        return self.line_counts[line] >= self.rules.repeat_limit


def _merge(spans: list[Span]) -> list[Span]:
    """Sort and merge overlapping spans (the first reason wins)."""
    merged: list[Span] = []
    for span in sorted(spans, key=lambda s: s.start):
        if merged and span.start < merged[-1].end:
            last = merged[-1]
            merged[-1] = Span(last.start, max(last.end, span.end), last.reason)
        else:
            merged.append(span)
    return merged


def remove_spans(text: str, spans: list[Span]) -> str:
    """Text without the flagged spans; runs of 3+ newlines left behind collapse to one blank line."""
    if not spans:
        return text
    kept, position = [], 0
    for span in spans:
        kept.append(text[position:span.start])
        position = span.end
    kept.append(text[position:])
    return re.sub(r"\n{3,}", "\n\n", "".join(kept)).strip("\n") + ("\n" if text.endswith("\n") else "")
