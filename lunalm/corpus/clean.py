"""Cleaning decoded text: HTML character references, newlines, control characters, NFC.

Turkish text arrives both precomposed (``ş`` U+015F) and decomposed (``s`` + U+0327); NFC makes the two
identical so the tokenizer and the duplicate detector see one spelling. Text scraped from web pages keeps
HTML's character references: a statute collection on GitHub writes its dashes as ``&#8210;``, old Turkish
sites write ``ş`` as ``&#351;`` and ``ç`` as ``&ccedil;``. They are the characters they name.
"""

from __future__ import annotations

import html
import re
import unicodedata
from typing import NamedTuple

# C0 controls except \t and \n, DEL, C1 controls, and stray byte-order marks. Zero-width joiners and
# variation selectors stay: emoji sequences need them.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ufeff\ufffe]")


# A complete reference: decimal, hexadecimal, or a name, always with its semicolon ("AT&T" and
# "R&D;" stay as written: only names HTML defines are decoded).
_REFERENCE = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{2,6}|[A-Za-z][A-Za-z0-9]{1,31});")


class Cleaned(NamedTuple):
    text: str
    removed: int  # control characters dropped
    references: int  # HTML character references decoded


def decode_references(text: str) -> tuple[str, int]:
    """``text`` with its HTML character references (``&#351;``, ``&#x15F;``, ``&scedil;``) decoded, and how
    many; ``&nbsp;`` is a plain space. A reference to no character (``&#0;``, a surrogate, beyond U+10FFFF)
    or an unknown name stays."""
    if "&" not in text or ";" not in text:
        return text, 0
    count = 0

    def decode(match: re.Match) -> str:
        nonlocal count
        reference = match.group()
        character = html.unescape(reference)
        if character == reference or "\ufffd" in character:
            return reference
        count += 1
        return " " if character == "\xa0" else character  # &nbsp; between words is a space to a reader

    return _REFERENCE.sub(decode, text), count


def clean_text(text: str) -> Cleaned:
    """Return ``(cleaned, removed, references)``: HTML character references decoded, CRLF/CR -> LF, control
    characters dropped, NFC applied."""
    text, references = decode_references(text)
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    text, removed = _CONTROL.subn("", text)
    if not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    return Cleaned(text, removed, references)
