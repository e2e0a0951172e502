"""CoNLL-U treebanks (Universal Dependencies: ``tr_imst-ud-train.conllu``, ``tr_boun-ud-dev.conllu``): their
sentences, not their annotation. A sentence is its ``# text =`` comment, or, where a file has none, its words
rebuilt from the token lines (a multiword token's surface form once, ``SpaceAfter=No`` kept). A ``# newdoc``
comment starts a new document and ``# newpar`` a new paragraph; sentences stand one per line. Read as plain
text, a treebank was tab-separated tags, lemmas and features (UD_Turkish-IMST's training file: 3.06 M
characters, 91 % judged not prose, around 0.23 M of sentences).

Format: https://universaldependencies.org/format.html
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from lunalm.corpus.read import RawDocument, decoded_blocks


def read_treebank(handle: BinaryIO, path: Path, head: bytes, max_chars: int, position) -> Iterator[RawDocument]:
    """A document per ``# newdoc`` (a file without them: documents of up to ``max_chars``, cut between
    sentences), paragraphs separated by a blank line, a sentence per line."""
    paragraphs: list[list[str]] = [[]]
    chars, encoding, sentence = 0, "utf-8", _Sentence()
    for decoded in decoded_blocks(handle, path, head):
        encoding = decoded.encoding
        for line in [*decoded.text.splitlines(), *([""] if decoded.text and not decoded.text.endswith("\n") else [])]:
            if line.startswith("# newdoc") and chars:
                yield _document(paragraphs, path, encoding, position())
                paragraphs, chars = [[]], 0
            elif line.startswith("# newpar") and paragraphs[-1]:
                paragraphs.append([])
            text = sentence.see(line)
            if text:
                paragraphs[-1].append(text)
                chars += len(text) + 1
                if chars > max_chars:
                    yield _document(paragraphs, path, encoding, position())
                    paragraphs, chars = [[]], 0
    if chars:
        yield _document(paragraphs, path, encoding, position())


def _document(paragraphs: list[list[str]], path: Path, encoding: str, read_bytes: int) -> RawDocument:
    text = "\n\n".join("\n".join(sentences) for sentences in paragraphs if sentences) + "\n"
    return RawDocument(text, str(path), encoding, read_bytes=read_bytes)


class _Sentence:
    """One sentence's lines as they come: ``see`` returns its text at the blank line that ends it."""

    def __init__(self):
        self.text, self.words, self.skip_to = None, [], 0

    def see(self, line: str) -> str | None:
        if not line.strip():
            text = self.text if self.text is not None else "".join(self.words).strip()
            self.__init__()
            return text or None
        if line.startswith("# text ="):
            self.text = line.split("=", 1)[1].strip()
        elif not line.startswith("#"):
            self._token(line.split("\t"))
        return None

    def _token(self, columns: list[str]) -> None:
        """A word's surface form; the words of a multiword token (``4-5 birisiyse``) are its parts, skipped."""
        if len(columns) < 10 or "." in columns[0]:  # an empty node (8.1) has no surface form
            return
        first, _, last = columns[0].partition("-")
        if not first.isdigit() or int(first) <= self.skip_to:
            return
        self.skip_to = int(last) if last.isdigit() else 0
        self.words.append(columns[1] + ("" if "SpaceAfter=No" in columns[9].split("|") else " "))
