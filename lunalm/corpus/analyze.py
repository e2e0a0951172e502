"""``luna analyze``: streaming corpus statistics, per corpus and per file.

One pass over ``Corpus.documents()``; memory is bounded (unique words and duplicate lines are tracked
exactly up to a cap, after which the figures are marked as lower bounds) so a 1 GB corpus analyses in
flat memory.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields

from lunalm.corpus import Corpus, Document
from lunalm.corpus.language import lower

_WORD = re.compile(r"\w+(?:['’]\w+)*")
TURKISH_LETTERS = frozenset("çÇğĞıİöÖşŞüÜ")
UNIQUE_CAP = 2_000_000  # distinct words tracked exactly
LINE_CAP = 5_000_000  # distinct lines tracked for duplicate counting
EXAMPLES = 5


@dataclass
class Stats:
    """Counters for one file or for the whole corpus."""

    source: str
    documents: int = 0
    lines: int = 0
    words: int = 0
    word_chars: int = 0
    characters: int = 0
    bytes: int = 0
    tokens: int = 0
    letters: int = 0
    turkish_letters: int = 0
    longest_document_chars: int = 0
    longest_document_source: str = ""
    duplicate_lines: int = 0
    non_prose_chars: int = 0
    original_chars: int = 0  # characters before non-prose was removed (= characters without --filter)
    vocabulary: set[str] = field(default_factory=set, repr=False)
    unique_words_closed: int = field(default=0, repr=False)  # distinct words of a file already closed
    unique_words_capped: bool = False
    language: str = field(default="tr", repr=False)  # casing rules for unique words (Turkish only for tr/az)

    def add(self, document: Document, n_tokens: int, words: list[str]) -> None:
        text = document.text
        self.documents += 1
        self.lines += text.count("\n") + (0 if text.endswith("\n") else 1)
        self.words += len(words)
        self.word_chars += sum(map(len, words))
        self.characters += len(text)
        self.bytes += len(text.encode("utf-8"))
        self.tokens += n_tokens
        self.letters += sum(1 for c in text if c.isalpha()) if len(text) < 50_000 else _letters(text)
        self.turkish_letters += sum(text.count(c) for c in TURKISH_LETTERS)
        self.non_prose_chars += sum(s.end - s.start for s in document.non_prose)
        self.original_chars += len(document.original)  # before --filter took the non-prose out
        if len(text) > self.longest_document_chars:
            self.longest_document_chars, self.longest_document_source = len(text), document.name
        if len(self.vocabulary) < UNIQUE_CAP:
            self.vocabulary.update(lower(w, self.language) for w in words)
        else:
            self.unique_words_capped = True

    def close(self) -> None:
        """Keep the number of distinct words, not the words: a file is done. A folder of 20,077 files held a
        set of words for each until the end, 3.5 GB for 300 MB of text. (A damaged document, restored and
        read last, reopens its file: its words then count as new ones.)"""
        self.unique_words_closed += len(self.vocabulary)
        self.vocabulary = set()

    def summary(self) -> dict:
        """Derived figures, JSON-ready."""
        out = {f.name: getattr(self, f.name) for f in fields(self)
               if f.name not in ("vocabulary", "unique_words_closed", "language")}
        out["unique_words"] = self.unique_words_closed + len(self.vocabulary)
        out["chars_per_token"] = _ratio(self.characters, self.tokens)
        out["tokens_per_word"] = _ratio(self.tokens, self.words)
        out["avg_line_chars"] = _ratio(self.characters, self.lines)
        out["avg_line_tokens"] = _ratio(self.tokens, self.lines)
        out["avg_word_chars"] = _ratio(self.word_chars, self.words)
        out["turkish_letter_share"] = _ratio(self.turkish_letters, self.letters, 4)
        out["non_prose_share"] = _ratio(self.non_prose_chars, self.original_chars, 4)  # of the text as read
        del out["word_chars"], out["letters"], out["turkish_letters"], out["original_chars"]
        return out


def _letters(text: str) -> int:
    # Long texts: count non-letters with a regex (C speed) instead of a Python loop.
    return len(text) - len(re.findall(r"[\W\d_]", text))


def _ratio(a: float, b: float, digits: int = 3) -> float:
    return round(a / b, digits) if b else 0.0


@dataclass
class Analysis:
    corpus: Stats
    files: dict[str, Stats]
    report: dict  # per-file encoding / repair / duplicate figures from Corpus.report
    examples: list[dict]  # non-prose examples: source, reason, text
    tokenizer: str
    language: str  # ISO 639-1 code of the corpus language ("und" when undetermined)

    def to_json(self) -> dict:
        files = {name: {**stats.summary(), **asdict(self.report.files[name])}
                 for name, stats in self.files.items()}
        totals = self.corpus.summary()
        for key in ("duplicates", "repaired_chars", "repaired_sequences", "recovered_bytes", "controls_removed",
                    "references_decoded", "filtered_documents", "empty", "replaced_letters", "restored_letters", "marks_left"):
            totals[{"duplicates": "duplicate_documents", "empty": "empty_documents"}.get(key, key)] = \
                self.report.total(key)
        totals["language"] = self.language
        totals["unrecoverable_sites"] = sum(len(f.unrecoverable_lines) for f in self.report.files.values())
        totals["skipped_files"] = {f.source: f.no_text for f in self.report.files.values() if f.no_text}
        return {"corpus": totals, "files": files, "non_prose_examples": self.examples,
                "tokenizer": self.tokenizer}


def analyze(corpus: Corpus, count_tokens: Callable[[list[str]], list[int]], tokenizer_name: str,
            language: str, progress: Callable[[int], None] | None = None) -> Analysis:
    """Stream the corpus once; ``count_tokens`` maps a batch of texts to their token counts; ``language``
    (see ``lunalm.corpus.language``) sets the casing rules of unique-word counts."""
    total = Stats(corpus.name, language=language)
    files: dict[str, Stats] = {}
    line_hashes: set[bytes] = set()
    examples: list[dict] = []
    batch: list[Document] = []

    current: Stats | None = None  # the file being read

    def flush() -> None:
        nonlocal current
        for document, n_tokens in zip(batch, count_tokens([d.text for d in batch])):
            words = _WORD.findall(document.text)
            total.add(document, n_tokens, words)
            stats = files.setdefault(document.source, Stats(document.source, language=language))
            if current is not None and current is not stats:
                current.close()
            current = stats
            stats.add(document, n_tokens, words)
            duplicates = _count_duplicate_lines(document.text, line_hashes)
            total.duplicate_lines += duplicates
            files[document.source].duplicate_lines += duplicates
            _collect_examples(document, examples)
            if progress:
                progress(len(document.text.encode("utf-8")))
        batch.clear()

    for document in corpus.documents():
        batch.append(document)
        if len(batch) >= 256:
            flush()
    flush()
    total.unique_words_capped = total.unique_words_capped or len(total.vocabulary) >= UNIQUE_CAP
    return Analysis(total, files, corpus.report, examples, tokenizer_name, language)


def _count_duplicate_lines(text: str, seen: set[bytes]) -> int:
    duplicates = 0
    for line in text.split("\n"):
        line = line.strip()
        if len(line) < 20:  # short lines ("Arkadaşlar!") repeat naturally
            continue
        digest = hashlib.blake2b(line.encode(), digest_size=8).digest()
        if digest in seen:
            duplicates += 1
        elif len(seen) < LINE_CAP:
            seen.add(digest)
    return duplicates


def _collect_examples(document: Document, examples: list[dict]) -> None:
    if len(examples) >= EXAMPLES or not document.non_prose:
        return
    reasons = {e["reason"] for e in examples}
    for span in sorted(document.non_prose, key=lambda s: s.start - s.end):  # longest first
        if span.reason not in reasons or len(examples) < EXAMPLES - 1:
            snippet = " ".join(document.original[span.start:span.end].split())
            examples.append({"source": document.name, "reason": span.reason,
                             "chars": span.end - span.start, "text": snippet[:100]})
            return

