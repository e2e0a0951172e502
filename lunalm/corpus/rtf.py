"""Rich Text (``.rtf``, WordPad's default format) read as its text.

A Turkish WordPad file keeps its letters as code-page escapes (``T\\'fcrk\\'e7e`` in ``\\ansicpg1254``) or as
``\\uN`` escapes; read as text, it was control words with the letters split into escapes. Paragraphs
(``\\par``) and line breaks are lines; font, colour and style tables, pictures, headers, footers, footnotes
and other ``{\\*…}`` destinations are left out.
"""

from __future__ import annotations

import codecs
import re

_TOKEN = re.compile(r"\\([a-zA-Z]+)(-?\d+)? ?|\\'([0-9a-fA-F]{2})|\\(.)|([{}])|([^\\{}\r\n]+)|[\r\n]+", re.S)
_SKIPPED = {"fonttbl", "colortbl", "stylesheet", "info", "pict", "header", "headerl", "headerr", "headerf",
            "footer", "footerl", "footerr", "footerf", "footnote", "listtable", "listoverridetable", "rsidtbl",
            "generator", "xmlnstbl", "themedata", "colorschememapping", "latentstyles", "datastore", "object",
            "filetbl", "revtbl", "pgdsctbl"}
_BREAKS = {"par": "\n", "line": "\n", "sect": "\n", "page": "\n", "row": "\n", "cell": "\t", "tab": "\t",
           "emdash": "—", "endash": "–", "lquote": "‘", "rquote": "’", "ldblquote": "“", "rdblquote": "”",
           "bullet": "•", "emspace": " ", "enspace": " ", "qmspace": " "}
_SYMBOLS = {"~": "\u00a0", "-": "\u00ad", "_": "\u2011", "\\": "\\", "{": "{", "}": "}",
            "\n": "\n", "\r": "\n"}  # a backslash ending a line is a line break (macOS TextEdit writes them)


def looks_rtf(head: bytes) -> bool:
    return head.lstrip(b"\xef\xbb\xbf").startswith(b"{\\rtf")


def rtf_text(data: bytes) -> str:
    """The text of an RTF document (its bytes: RTF is 7-bit, with its code page declared inside)."""
    raw = data.decode("latin-1")
    code_page = re.search(r"\\ansicpg(\d+)", raw[:4096])
    encoding = _encoding(f"cp{code_page.group(1)}" if code_page else "cp1252")
    out: list[str] = []
    pending = bytearray()  # \'hh bytes, decoded together (a multi-byte code page spreads a letter over two)
    stack: list[tuple[bool, int]] = []
    skip, uc, drop = False, 1, 0  # in a left-out group; chars after \uN to skip; of them still to skip
    for word, number, hexbyte, symbol, brace, text in _TOKEN.findall(raw):
        if hexbyte:
            if drop:
                drop -= 1
            elif not skip:
                pending += bytes.fromhex(hexbyte)
            continue
        if pending:
            out.append(pending.decode(encoding, "replace"))
            pending.clear()
        if brace == "{":
            stack.append((skip, uc))
        elif brace == "}":
            skip, uc = stack.pop() if stack else (skip, uc)
        elif symbol:
            if symbol == "*":
                skip = True
            elif drop:
                drop -= 1
            elif not skip:
                out.append(_SYMBOLS.get(symbol, ""))
        elif word:
            skip, uc, drop = _control(word, number, skip, uc, out)
        elif text:
            if drop:
                text, drop = text[drop:], max(0, drop - len(text))
            if not skip:  # 8-bit text outside escapes (writers other than Word's) is in the declared code page
                out.append(text if text.isascii() else text.encode("latin-1").decode(encoding, "replace"))
    if pending:
        out.append(pending.decode(encoding, "replace"))
    text = "".join(out).encode("utf-16", "surrogatepass").decode("utf-16", "replace")  # \uN pairs: one emoji
    return "\n".join(line.rstrip() for line in text.split("\n")).strip("\n")


def _control(word: str, number: str, skip: bool, uc: int, out: list[str]) -> tuple[bool, int, int]:
    """A control word's effect: (in a left-out group, \\uc, characters to drop after it)."""
    if word in _SKIPPED:
        return True, uc, 0
    if word == "uc" and number:
        return skip, int(number), 0
    if word == "u" and number:
        if not skip:
            out.append(chr(int(number) % 65536))
        return skip, uc, uc  # the next uc characters are the escape's stand-in for old readers
    if word in _BREAKS and not skip:
        out.append(_BREAKS[word])
    return skip, uc, 0


def _encoding(name: str) -> str:
    try:
        return codecs.lookup(name).name
    except LookupError:
        return "cp1252"
