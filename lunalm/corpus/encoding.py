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


def _chars_for(byte_values: bytes, code_pages: tuple[str, ...] = _MOJIBAKE_CODE_PAGES) -> str:
    """The regex-escaped set of characters these bytes become under the given code pages."""
    chars = {bytes([b]).decode(cp, _C1) for b in byte_values for cp in code_pages}
    return re.escape("".join(sorted(chars)))


_CONT = _chars_for(bytes(range(0x80, 0xC0)))
# UTF-8 lead bytes whose mojibake is common: Latin-1 supplement / Latin Extended-A (Turkish, Western),
# Romanian and Azerbaijani letters, combining marks (decomposed İ), Greek, Cyrillic, Arabic, all 3-byte
# leads (punctuation, €, ✨, BOM) and 4-byte leads (emoji). Deliberately absent: Ç Ö Ü and cp1254's Ğ İ Ş,
# because a legitimate "KOÇ’un" or "DAĞ’a" would otherwise look like mojibake.
_LEAD2 = _chars_for(bytes([0xC2, 0xC3, 0xC4, 0xC5, 0xC6, 0xC8, 0xC9, 0xCA, 0xCB, 0xCC, 0xCD, 0xCE, 0xCF,
                          0xD0, 0xD1, 0xD8, 0xD9]), ("cp1252",))
_LEAD3 = _chars_for(bytes(range(0xE0, 0xF0)))
_LEAD4 = _chars_for(bytes(range(0xF0, 0xF5)))
_MOJIBAKE_RE = re.compile(f"[{_LEAD4}][{_CONT}]{{3}}|[{_LEAD3}][{_CONT}]{{2}}|[{_LEAD2}][{_CONT}]")
# A run of characters that could all be mojibake; every layer of one wrong round trip stays inside it.
_RUN_RE = re.compile(f"[{re.escape(''.join(sorted(map(chr, _TO_BYTE))))}]{{2,}}")
_MAX_LAYERS = 3


def _undo(match: re.Match[str]) -> str:
    """One mojibake sequence back to the character its bytes spell in UTF-8 (unchanged if they don't)."""
    sequence = match.group()
    try:
        return sequence.translate(_TO_BYTE).encode("latin-1").decode("utf-8")
    except UnicodeDecodeError:
        return sequence


def mojibake_score(text: str) -> int:
    """Count the tell-tale mojibake sequences in ``text`` (e.g. "Ã¼", "ÅŸ", "ðŸ˜€"): each one is a
    character sequence whose code-page bytes form valid UTF-8. 0 for clean text."""
    return sum(1 for match in _MOJIBAKE_RE.finditer(text) if _undo(match) != match.group())


def _repair_run(run: str) -> tuple[str, int]:
    """Undo up to three layers within one run, keeping a layer only if it lowers the mojibake score."""
    score, layers = mojibake_score(run), 0
    while score and layers < _MAX_LAYERS:
        candidate = _MOJIBAKE_RE.sub(_undo, run)
        candidate_score = mojibake_score(candidate)
        if candidate_score >= score:
            break
        run, score, layers = candidate, candidate_score, layers + 1
    return run, layers


def _changed_span(before: str, after: str) -> int:
    """How many characters of ``before`` lie between the first and last difference from ``after``."""
    prefix = 0
    while prefix < min(len(before), len(after)) and before[prefix] == after[prefix]:
        prefix += 1
    suffix = 0
    while suffix < min(len(before), len(after)) - prefix and before[-1 - suffix] == after[-1 - suffix]:
        suffix += 1
    return len(before) - prefix - suffix


def repair_mojibake(text: str) -> tuple[str, int, int]:
    """Undo UTF-8 that was wrongly decoded as cp1254 / cp1252 / latin-1 (and saved) once or twice.

    Works run by run on lines that contain mojibake, so correct text beside a broken part is untouched.
    Returns (fixed text, repaired input characters, layers undone -- the most any run needed).
    """
    if text.isascii() or not _MOJIBAKE_RE.search(text):
        return text, 0, 0
    repaired, max_layers = 0, 0

    def fix(match: re.Match[str]) -> str:
        nonlocal repaired, max_layers
        fixed, layers = _repair_run(match.group())
        repaired += _changed_span(match.group(), fixed)
        max_layers = max(max_layers, layers)
        return fixed

    lines = [_RUN_RE.sub(fix, line) if _MOJIBAKE_RE.search(line) else line for line in text.split("\n")]
    return "\n".join(lines), repaired, max_layers


# --- encoding detection ------------------------------------------------------------------------------
_BOMS = (  # longest first: the UTF-32-LE BOM starts with the UTF-16-LE one
    (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"),
)
_LEGACY_CODE_PAGES = ("cp1252", "cp1254")  # on a tie (no Turkish-only byte present) Western wins
_ISO_NAMES = {"cp1254": "iso-8859-9", "cp1252": "iso-8859-1"}  # same bytes when 0x80..0x9F are absent
_TURKISH_LETTERS = "çğıöşüÇĞİÖŞÜâîûÂÎÛ"
_WESTERN_LETTERS = "àáäåæèéêëìíïñòóôõøùúÿßœšžÀÁÄÅÆÈÉÊËÌÍÏÑÒÓÔÕØÙÚŸŒŠŽ"
_PUNCTUATION = "“”‘’‚„…–—€•«»‹›°·©®™§£\u00a0"
_ICELANDIC = "ðþýÐÞÝ"  # what cp1252 makes of Turkish ğ ş ı Ğ Ş İ: rare in real prose
_UTF8_MULTIBYTE = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")
_C1_RANGE = re.compile(rb"[\x80-\x9f]")


def _char_weight(char: str) -> int:
    """How plausible one non-ASCII character is in Turkish or Western European prose."""
    if char in _TURKISH_LETTERS or char in _WESTERN_LETTERS:
        return 2
    if char in _PUNCTUATION:
        return 1
    if char in _ICELANDIC:
        return -2
    return -3 if 0x80 <= ord(char) <= 0x9F else 0


def _byte_histogram(data: bytes):
    """Counts of each byte value; numpy keeps this at memory speed for 100 MB files."""
    import numpy as np

    return np.bincount(np.frombuffer(data, dtype=np.uint8), minlength=256)


def _is_non_latin(histogram, code_page: str) -> bool:
    """True when most letters are high bytes: Cyrillic, Greek, Arabic … rather than Latin prose."""
    high = sum(int(histogram[b]) for b in range(0x80, 0x100) if bytes([b]).decode(code_page, _C1).isalpha())
    ascii_letters = int(histogram[0x41:0x5B].sum() + histogram[0x61:0x7B].sum())
    return high > ascii_letters


def _guess_other_script(data: bytes) -> str | None:
    """Ask charset-normalizer, which knows many more code pages than we score ourselves."""
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    return codecs.lookup(best.encoding).name if best is not None else None


def _pick_code_page(data: bytes) -> str:
    """Score the Turkish and Western code pages by how plausible each decoding is; fall back to
    charset-normalizer for other scripts. Returns a Python codec name."""
    histogram = _byte_histogram(data)

    def plausibility(code_page: str) -> int:
        return sum(int(histogram[b]) * _char_weight(bytes([b]).decode(code_page, _C1)) for b in range(0x80, 0x100))

    best = max(_LEGACY_CODE_PAGES, key=plausibility)  # max keeps the first on ties
    if _is_non_latin(histogram, best):
        return _guess_other_script(data) or best
    return best


def _code_page_name(code_page: str, data: bytes) -> str:
    """Report cp1254 / cp1252 only when a byte 0x80..0x9F shows it; otherwise the ISO standard's name."""
    if code_page in _ISO_NAMES and not _C1_RANGE.search(data):
        return _ISO_NAMES[code_page]
    return code_page


def _sniff_utf16(data: bytes) -> str | None:
    """BOM-less UTF-16: Latin text has a NUL in most high bytes and almost none in the low bytes."""
    pairs = len(data) // 2
    if pairs < 2 or len(data) % 2:  # UTF-16 always has an even length
        return None
    even_nuls, odd_nuls = data[0::2].count(0), data[1::2].count(0)
    if odd_nuls >= 0.3 * pairs and even_nuls <= 0.05 * pairs:
        return "utf-16-le"
    if even_nuls >= 0.3 * pairs and odd_nuls <= 0.05 * pairs:
        return "utf-16-be"
    return None


def _decode_strict(data: bytes, encoding: str, source: str) -> str:
    """Decode in an encoding we are sure of (BOM / NUL pattern); failure means a damaged file."""
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as error:
        raise CorpusError(
            f"{source}: byte {error.start} cannot be decoded as {encoding} ({error.reason}); "
            "re-save the file as UTF-8"
        ) from None


def _decode_mixed(data: bytes) -> tuple[str, str]:
    """A file that is UTF-8 in places: keep the UTF-8 lines, read the others in the best code page."""
    lines = data.splitlines(keepends=True)
    decoded: list[str | None] = []
    for line in lines:
        try:
            decoded.append(line.decode("utf-8"))
        except UnicodeDecodeError:
            decoded.append(None)
    legacy = b"".join(line for line, text in zip(lines, decoded) if text is None)
    code_page = _pick_code_page(legacy)
    text = "".join(t if t is not None else line.decode(code_page, _C1) for line, t in zip(lines, decoded))
    return text, f"utf-8+{_code_page_name(code_page, legacy)}"


def _decode_legacy(data: bytes, source: str) -> tuple[str, str]:
    """Data that is not UTF-8: an 8-bit code page, or UTF-8 mixed with one."""
    nul = data.find(b"\x00")
    if nul >= 0:  # 8-bit text never holds NUL; this is a binary file or damaged UTF-16
        raise CorpusError(
            f"{source}: byte {nul} cannot be decoded as utf-8, utf-16 or any Turkish/Western code page "
            "(a NUL byte: is this a binary file?); re-save the file as UTF-8"
        )
    if _UTF8_MULTIBYTE.search(data):
        return _decode_mixed(data)
    code_page = _pick_code_page(data)
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
