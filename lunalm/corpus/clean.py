"""Cleaning decoded text: HTML character references, newlines, control characters, NFC.

Turkish text arrives both precomposed (``ş`` U+015F) and decomposed (``s`` + U+0327); NFC makes the two
identical so the tokenizer and the duplicate detector see one spelling. Text scraped from web pages keeps
HTML's character references: a statute collection on GitHub writes its dashes as ``&#8210;``, old Turkish
sites write ``ş`` as ``&#351;`` and ``ç`` as ``&ccedil;``. They are the characters they name.
"""

from __future__ import annotations

import html
import html.entities
import re
import unicodedata
from typing import NamedTuple

# C0 controls except \t and \n, DEL, C1 controls, stray byte-order marks, and the invisible breaks a web
# page hides inside words: soft hyphens, zero-width spaces and word joiners ("Cumhur\u00adbaşkanı" would be
# a word of its own to the tokenizer). Zero-width joiners and variation selectors stay: emoji need them.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ufeff\ufffe\u00ad\u200b\u2060]")


# A complete reference: decimal, hexadecimal, or a name with its semicolon ("AT&T" and "R&D;" stay as
# written: only names HTML defines are decoded); or one of the names old pages wrote without it ("&ccedil",
# "&nbsp"), as browsers read them, where no letter or digit follows ("&nothing" stays).
_LEGACY = sorted((name for name in html.entities.html5 if not name.endswith(";")), key=len, reverse=True)
_REFERENCE = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{2,6}|[A-Za-z][A-Za-z0-9]{1,31});|"
                        rf"&(?:{'|'.join(_LEGACY)})(?![A-Za-z0-9;])")


# A line of nothing but spaces, tabs or no-break spaces (a converted blog had 882 between its paragraphs):
# an empty line to a reader, and to the model
BLANK_LINE = re.compile(r"^[^\S\n]+$", re.MULTILINE)


class Cleaned(NamedTuple):
    text: str
    removed: int  # control characters dropped
    references: int  # HTML character references decoded


def decode_references(text: str) -> tuple[str, int]:
    """``text`` with its HTML character references (``&#351;``, ``&#x15F;``, ``&scedil;``, ``&ccedil``)
    decoded, and how many; ``&nbsp;`` is a plain space, and a text escaped twice (``&amp;quot;``) is decoded
    twice. A reference to no character (``&#0;``, a surrogate, beyond U+10FFFF) or an unknown name stays."""
    if "&" not in text:
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

    decoded = _REFERENCE.sub(decode, text)
    if count and "&amp;" in text:  # escaped twice ("&amp;quot;"): the page meant the character
        decoded = _REFERENCE.sub(decode, decoded)
    return decoded, count


def clean_text(text: str) -> Cleaned:
    """Return ``(cleaned, removed, references)``: HTML character references decoded, CRLF/CR -> LF, control
    characters dropped, lines of only spaces emptied, NFC applied."""
    text, references = decode_references(text)
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    text, removed = _CONTROL.subn("", text)
    text = BLANK_LINE.sub("", text)
    if not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    return Cleaned(text, removed, references)
