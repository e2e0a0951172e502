"""Cleaning decoded text: newlines, control characters, NFC.

Turkish text arrives both precomposed (``ş`` U+015F) and decomposed (``s`` + U+0327); NFC makes the two
identical so the tokenizer and the duplicate detector see one spelling.
"""

from __future__ import annotations

import re
import unicodedata

# C0 controls except \t and \n, DEL, C1 controls, and stray byte-order marks. Zero-width joiners and
# variation selectors stay: emoji sequences need them.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ufeff\ufffe]")


def clean_text(text: str) -> tuple[str, int]:
    """Return ``(cleaned, removed)``: CRLF/CR -> LF, control characters dropped, NFC applied."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    text, removed = _CONTROL.subn("", text)
    if not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    return text, removed
