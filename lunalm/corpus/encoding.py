"""Detect a corpus file's text encoding and repair mojibake.

Why our own code: charset-normalizer often mislabels short Turkish text (cp1254 read as cp1252 turns
ı ş ğ into ý þ ð), and ftfy leaves short Turkish mojibake such as "DoÄŸu" or "ÅŸiÅŸe" alone. Turkish is
first-class here, so detection scores the Turkish and Western code pages itself and repair undoes UTF-8
that was read through cp1254 / cp1252 / latin-1 (once or twice).

Speed: valid UTF-8 without mojibake costs one ``bytes.decode`` plus one precompiled regex search; only
files or lines that look wrong take the slow paths.
"""

from __future__ import annotations

import codecs
import functools
import re
from dataclasses import dataclass

from lunalm.errors import CorpusError


@dataclass(frozen=True)
class Decoded:
    """One file's text after decoding and mojibake repair (not yet NFC-normalised)."""

    text: str
    encoding: str  # detected, e.g. "utf-8", "utf-16", "cp1254", "iso-8859-9", or "utf-8+cp1254" if mixed
    repaired_chars: int  # input characters replaced by mojibake repair (0 when none)
    mojibake_layers: int  # how many wrong decode/encode round trips were undone (0 = clean)


_C1 = "lunalm-c1"


def _c1_decode(error: UnicodeDecodeError) -> tuple[str, int]:
    """Decode a byte the code page leaves undefined (0x81 0x8D 0x8F 0x90 0x9D …) as the C1 control of
    the same number, as Windows and most editors do; real mojibake therefore contains U+0081 … U+009D."""
    return chr(error.object[error.start]), error.start + 1


codecs.register_error(_C1, _c1_decode)

# --- mojibake tables ---------------------------------------------------------------------------------
# Every character that a byte 0x80..0xFF becomes under cp1254, cp1252 or latin-1 (C1-preserving), mapped
# back to that byte. The three code pages never give one character two different bytes, so a single table
# reverses all of them at once -- including text that went through cp1254 first and cp1252 second.
_MOJIBAKE_CODE_PAGES = ("cp1254", "cp1252", "latin-1")
_TO_BYTE: dict[int, str] = {}
for _cp in _MOJIBAKE_CODE_PAGES:
    for _byte in range(0x80, 0x100):
        _char = bytes([_byte]).decode(_cp, _C1)
        assert _TO_BYTE.get(ord(_char), chr(_byte)) == chr(_byte), (_cp, _byte)
        _TO_BYTE[ord(_char)] = chr(_byte)


def _chars(byte_values: bytes, code_pages: tuple[str, ...] = _MOJIBAKE_CODE_PAGES) -> str:
    """A regex class body: every character these bytes become under the given code pages."""
    chars = {bytes([b]).decode(cp, _C1) for b in byte_values for cp in code_pages}
    return re.escape("".join(sorted(chars)))


def _span(first: int, last: int) -> bytes:
    return bytes(range(first, last + 1))


def _class(first: int, last: int) -> str:
    """A regex class: every character the bytes first..last become under the mojibake code pages."""
    return f"[{_chars(_span(first, last))}]"


# UTF-8 lead bytes of 2-byte characters whose mojibake is common: Latin-1 supplement and Latin Extended-A
# (Turkish, Western), Romanian / Azerbaijani letters, combining marks (decomposed İ), Greek, Cyrillic,
# Arabic. Read through cp1252 only: Ç Ö Ü and cp1254's Ğ İ Ş are left out, because a legitimate "KOÇ’un"
# or "DAĞ’a" would otherwise look like mojibake. All 3- and 4-byte leads count (punctuation, €, ✨, emoji).
_LEAD2 = _chars(bytes([0xC3, 0xC4, 0xC5, 0xC6, 0xC8, 0xC9, 0xCA, 0xCB, 0xCC, 0xCD, 0xCE, 0xCF, 0xD0, 0xD1,
                       0xD8, 0xD9]), ("cp1252",))
_CONT = _chars(_span(0x80, 0xBF))
# Valid UTF-8 only (RFC 3629 table 3-7), as (lookbehind over lead + second byte, continuation bytes after).
# "Â" + 0x80..0x9F spells a C1 control, which is never text: accept it only inside a deeper layer, where
# the previous sequence ends in a continuation character -- so "HÂLÂ”" stays as written.
_SHAPES = (
    (f"[{_CONT}]Â" + _class(0x80, 0x9F), 0), ("Â" + _class(0xA0, 0xBF), 0), (f"[{_LEAD2}][{_CONT}]", 0),
    (_class(0xE0, 0xE0) + _class(0xA0, 0xBF), 1), (_class(0xED, 0xED) + _class(0x80, 0x9F), 1),
    (_class(0xE1, 0xEC) + _class(0x80, 0xBF), 1), (_class(0xEE, 0xEF) + _class(0x80, 0xBF), 1),
    (_class(0xF0, 0xF0) + _class(0x90, 0xBF), 2), (_class(0xF1, 0xF3) + _class(0x80, 0xBF), 2),
    (_class(0xF4, 0xF4) + _class(0x80, 0x8F), 2),
)
_LEADS = "Â" + _LEAD2 + _chars(_span(0xE0, 0xF4))
# 3- and 4-byte leads are letters (â î ç é ğ …); followed only by punctuation they are far likelier clean
# prose ("hâlâ…”", "ağaç…”") than mojibake of a box-drawing sign or a CJK character: left alone.
_PUNCTUATION_AFTER_LETTER = re.escape("…”’“‘–—»«•°©®·\u00a0")


def _shape(behind: str, more: int) -> str:
    pattern = f"(?<={behind})[{_CONT}]{{{more}}}"
    return pattern + f"(?<!.[{_PUNCTUATION_AFTER_LETTER}]{{{more + 1}}})" if more else pattern


# Any lead, any continuation, then a lookbehind picks the shape. Leading with plain classes rather than
# an alternation matters: `re` scans for a class about 8x faster.
_MOJIBAKE_RE = re.compile(f"([{_LEADS}][{_CONT}](?:{'|'.join(_shape(*shape) for shape in _SHAPES)}))")
# The fast check: a continuation character right after a lead. Continuation characters are rare in clean
# prose (punctuation only), so this search costs about as much as the bytes.decode before it.
_HINT_RE = re.compile(f"[{_CONT}](?<=[{_LEADS}][{_CONT}])")
_MAX_LAYERS = 3


@functools.lru_cache(maxsize=1 << 16)  # a corpus repeats the same few hundred sequences
def _undo(sequence: str) -> str:
    """One mojibake sequence -> the character its code-page bytes spell (always valid UTF-8: see above)."""
    return sequence.translate(_TO_BYTE).encode("latin-1").decode("utf-8")


def mojibake_score(text: str) -> int:
    """Count the tell-tale mojibake sequences in ``text`` (e.g. "Ã¼", "ÅŸ", "ðŸ˜€"): character sequences
    whose cp1254 / cp1252 / latin-1 bytes form one valid UTF-8 character. 0 for clean text."""
    return len(_MOJIBAKE_RE.findall(text)) if _HINT_RE.search(text) else 0


def _undo_layer(text: str) -> tuple[str, int, int]:
    """Undo one layer everywhere in ``text``: (result, sequences undone, characters they replaced).
    The sequences undone are ``mojibake_score(text)``, so scoring costs no extra pass; each becomes one
    character, so the lengths give the characters replaced."""
    if not _HINT_RE.search(text):
        return text, 0, 0
    parts = _MOJIBAKE_RE.split(text)  # [text, sequence, text, sequence, …, text]: no Python call per match
    parts[1::2] = map(_undo, parts[1::2])
    fixed, undone = "".join(parts), len(parts) // 2
    return fixed, undone, len(text) - len(fixed) + undone


def _repair_line(line: str) -> tuple[str, int, int]:
    """Undo up to three layers in one line, keeping a layer only if it lowers the mojibake score.
    Only matched sequences change, so correct text beside a broken word is untouched."""
    candidate, score, replaced = _undo_layer(line)
    repaired_chars, layers = replaced, 0
    while score and layers < _MAX_LAYERS:
        next_candidate, next_score, replaced = _undo_layer(candidate)  # next_score = score of candidate
        if next_score >= score:
            break
        line, layers = candidate, layers + 1
        candidate, score = next_candidate, next_score
    return line, (repaired_chars if layers else 0), layers


def repair_mojibake(text: str) -> tuple[str, int, int]:
    """Undo UTF-8 that was wrongly decoded as cp1254 / cp1252 / latin-1 (and saved) once or twice.

    Visits only the lines that contain mojibake, each on its own, so a document mixing correct and broken
    lines keeps the correct ones as they are. Returns (fixed text, input characters replaced, layers
    undone -- the most any line needed).
    """
    if text.isascii() or not (hint := _HINT_RE.search(text)):
        return text, 0, 0
    pieces, done, repaired_chars, max_layers = [], 0, 0, 0
    while hint:
        start = text.rfind("\n", 0, hint.start()) + 1
        end = text.find("\n", hint.end())
        end = len(text) if end < 0 else end
        fixed, repaired, layers = _repair_line(text[start:end])
        pieces += [text[done:start], fixed]
        done, repaired_chars, max_layers = end, repaired_chars + repaired, max(max_layers, layers)
        hint = _HINT_RE.search(text, end)
    pieces.append(text[done:])
    return "".join(pieces), repaired_chars, max_layers


# --- encoding detection ------------------------------------------------------------------------------
_BOMS = (  # longest first: the UTF-32-LE BOM starts with the UTF-16-LE one
    (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"),
)
_LEGACY_CODE_PAGES = ("cp1252", "cp1254")  # on a tie (no Turkish-only byte present) Western wins
_ISO_NAMES = {"cp1254": "iso-8859-9", "cp1252": "iso-8859-1"}  # same bytes when 0x80..0x9F are absent
_LETTERS = "çğıöşüÇĞİÖŞÜâîûÂÎÛ" "àáäåæèéêëìíïñòóôõøùúÿßœšžÀÁÄÅÆÈÉÊËÌÍÏÑÒÓÔÕØÙÚŸŒŠŽ"  # Turkish, Western
_PUNCTUATION = "“”‘’‚„…–—€•«»‹›°·©®™§£\u00a0"
_ICELANDIC = "ðþýÐÞÝ"  # what cp1252 makes of Turkish ğ ş ı Ğ Ş İ: rare in real prose
_SAMPLE_SLICES, _SLICE_BYTES = 16, 1 << 14  # byte statistics from at most 256 KiB spread over the data


def _char_weight(char: str) -> int:
    """How plausible one non-ASCII character is in Turkish or Western European prose."""
    if char in _LETTERS:
        return 2
    if char in _PUNCTUATION:
        return 1
    if char in _ICELANDIC:
        return -2
    return -3 if 0x80 <= ord(char) <= 0x9F else 0


# Per code page: what each high byte decodes to, and how plausible that character is.
_HIGH_CHARS = {cp: [bytes([b]).decode(cp, _C1) for b in range(0x80, 0x100)] for cp in _LEGACY_CODE_PAGES}
_HIGH_WEIGHTS = {cp: [_char_weight(char) for char in chars] for cp, chars in _HIGH_CHARS.items()}


def _byte_counts(data: bytes) -> list[int]:
    """How often each byte value occurs in an evenly spread sample: enough to tell Turkish from Western
    (ı ş ğ are among the commonest Turkish letters) at a fixed cost for a 100 MB file."""
    import numpy as np

    step = max(len(data) // _SAMPLE_SLICES, _SLICE_BYTES)
    sample = b"".join(data[start:start + _SLICE_BYTES] for start in range(0, len(data), step))
    return np.bincount(np.frombuffer(sample, dtype=np.uint8), minlength=256).tolist()


def _is_utf8_mix(counts: list[int]) -> bool:
    """UTF-8 puts a continuation byte (0x80..0xBF) after every lead byte; 8-bit prose rarely uses them.
    (Misjudging a mix as pure 8-bit costs little: repair_mojibake then fixes the UTF-8 lines.)"""
    return sum(counts[0x80:0xC0]) > 0.2 * sum(counts[0x80:])


def _is_non_latin(counts: list[int], code_page: str) -> bool:
    """True when most letters are high bytes: Cyrillic, Greek, Arabic … rather than Latin prose."""
    high = sum(n for n, char in zip(counts[0x80:], _HIGH_CHARS[code_page]) if char.isalpha())
    return high > sum(counts[0x41:0x5B]) + sum(counts[0x61:0x7B])


def _guess_other_script(data: bytes) -> str | None:
    """Ask charset-normalizer, which knows many more code pages than we score ourselves."""
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    return codecs.lookup(best.encoding).name if best is not None else None


def _pick_code_page(data: bytes, counts: list[int]) -> str:
    """Score the Turkish and Western code pages by how plausible each decoding is; fall back to
    charset-normalizer for other scripts. Returns a Python codec name."""

    def plausibility(code_page: str) -> int:
        return sum(n * weight for n, weight in zip(counts[0x80:], _HIGH_WEIGHTS[code_page]))

    best = max(_LEGACY_CODE_PAGES, key=plausibility)  # max keeps the first on ties
    if _is_non_latin(counts, best):
        return _guess_other_script(data) or best
    return best


def _code_page_name(code_page: str, data: bytes) -> str:
    """Report cp1254 / cp1252 only when a byte 0x80..0x9F shows it; otherwise the ISO standard's name."""
    if code_page in _ISO_NAMES and not re.search(rb"[\x80-\x9f]", data):
        return _ISO_NAMES[code_page]
    return code_page


def _sniff_utf16(data: bytes) -> str | None:
    """BOM-less UTF-16: Latin text has a NUL in most high bytes and almost none in the low bytes."""
    pairs = len(data) // 2
    if pairs < 2 or len(data) % 2:  # UTF-16 always has an even length
        return None
    low, high = data[0::2].count(0) / pairs, data[1::2].count(0) / pairs  # NUL shares, little-endian view
    if high >= 0.3 and low <= 0.05:
        return "utf-16-le"
    return "utf-16-be" if low >= 0.3 and high <= 0.05 else None


def _decode_strict(data: bytes, encoding: str, source: str) -> str:
    """Decode in an encoding we are sure of (BOM / NUL pattern); failure means a damaged file."""
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as error:
        raise CorpusError(f"{source}: byte {error.start} cannot be decoded as {encoding} ({error.reason}); "
                          "re-save the file as UTF-8") from None


def _decode_mixed(data: bytes) -> tuple[str, str]:
    """A file that is UTF-8 in places: keep the UTF-8 lines, read the others in the best code page."""
    lines = data.splitlines(keepends=True)
    decoded = [_utf8_or_none(line) for line in lines]
    legacy = b"".join(line for line, text in zip(lines, decoded) if text is None)
    code_page = _pick_code_page(legacy, _byte_counts(legacy))
    text = "".join(line.decode(code_page, _C1) if t is None else t for line, t in zip(lines, decoded))
    return text, f"utf-8+{_code_page_name(code_page, legacy)}"


def _utf8_or_none(line: bytes) -> str | None:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _decode_legacy(data: bytes, source: str) -> tuple[str, str]:
    """Data that is not UTF-8: an 8-bit code page, or UTF-8 mixed with one."""
    nul = data.find(b"\x00")
    if nul >= 0:  # 8-bit text never holds NUL; this is a binary file or damaged UTF-16
        raise CorpusError(f"{source}: byte {nul} cannot be decoded as utf-8, utf-16 or any Turkish/Western "
                          "code page (a NUL byte: is this a binary file?); re-save the file as UTF-8")
    counts = _byte_counts(data)
    if _is_utf8_mix(counts):
        return _decode_mixed(data)
    code_page = _pick_code_page(data, counts)
    return data.decode(code_page, _C1), _code_page_name(code_page, data)


def _decode(data: bytes, source: str) -> tuple[str, str]:
    """BOM, then the UTF-16 NUL pattern, then strict UTF-8, then the 8-bit code pages."""
    if data.startswith(codecs.BOM_UTF8):  # a broken file with a UTF-8 BOM is still judged on its bytes
        text, encoding = _decode_unmarked(data[len(codecs.BOM_UTF8):], source)
        return text, "utf-8-sig" if encoding == "utf-8" else encoding
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return _decode_strict(data, encoding, source), encoding
    return _decode_unmarked(data, source)


def _decode_unmarked(data: bytes, source: str) -> tuple[str, str]:
    if b"\x00" in data and (utf16 := _sniff_utf16(data)):
        return _decode_strict(data, utf16, source), utf16
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return _decode_legacy(data, source)


def decode_bytes(data: bytes, source: str = "<bytes>") -> Decoded:
    """Decode one file's bytes whatever their encoding, then repair mojibake.

    Raises CorpusError naming ``source`` and the byte offset when the bytes are not text in any encoding
    we accept (a damaged UTF-16 file, a NUL byte in non-UTF-8 data).
    """
    text, encoding = _decode(data, source)
    fixed, repaired_chars, layers = repair_mojibake(text)
    return Decoded(fixed, encoding, repaired_chars, layers)
