"""Detect a corpus file's text encoding and repair mojibake.

Why our own code: charset-normalizer often mislabels short Turkish text (cp1254 read as cp1252 turns
ı ş ğ into ý þ ð), and ftfy leaves short Turkish mojibake such as "DoÄŸu" or "ÅŸiÅŸe" alone. Turkish is
first-class here, so detection scores the Turkish and Western code pages itself and repair undoes UTF-8
that was read through cp1254 / cp1252 / latin-1 (once or twice): see ``mojibake``.

Speed: valid UTF-8 without mojibake costs one ``bytes.decode`` plus one precompiled regex search; only
files or lines that look wrong take the slow paths.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

from lunalm.corpus.mojibake import _C1, mojibake_score, repair_mojibake, repair_text  # noqa: F401
from lunalm.errors import CorpusError


@dataclass(frozen=True)
class Decoded:
    """One file's text after decoding and mojibake repair (not yet NFC-normalised)."""

    text: str
    encoding: str  # detected, e.g. "utf-8", "utf-16", "cp1254", "iso-8859-9", or "utf-8+cp1254" if mixed
    repaired_chars: int  # input characters replaced by mojibake repair (0 when none)
    mojibake_layers: int  # how many wrong decode/encode round trips were undone (0 = clean)
    repaired_sequences: int = 0  # mis-decoded sequences undone (lost-byte sites included)
    recovered_bytes: int = 0  # bytes the code page had dropped, rebuilt
    unrecoverable_lines: tuple[int, ...] = ()  # 1-based line of each lost-byte site left as it was


# --- encoding detection ------------------------------------------------------------------------------
_BOMS = (  # longest first: the UTF-32-LE BOM starts with the UTF-16-LE one
    (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"),
)
# On a tie (no Turkish-only byte present) Western wins; Mac Turkish (old Mac OS files) only where its
# letters are clearly likelier (ç ö ü are 0x8D 0x9A 0x9F there, C1 controls or rare letters elsewhere), and
# DOS Turkish (cp857: old DOS editors, text a Turkish Windows console wrote) where its ı ş ğ are (0x8D 0x9F
# 0xA7 there, ç ü ß in Mac Turkish).
_LEGACY_CODE_PAGES = ("cp1252", "cp1254", "cp857", "mac_turkish")
_ISO_NAMES = {"cp1254": "iso-8859-9", "cp1252": "iso-8859-1"}  # same bytes when 0x80..0x9F are absent
_LETTERS = "çğıöşüÇĞİÖŞÜâîûÂÎÛ" "àáâãäåæèéêëìíïñòóôõøùúÿßœšžÀÁÃÄÅÆÈÉÊËÌÍÏÑÒÓÔÕØÙÚŸŒŠŽ"  # Turkish, Western
_PUNCTUATION = "“”‘’‚„…–—€•«»‹›°·©®™§£\u00a0"
_ICELANDIC = "ðþýÐÞÝ"  # what cp1252 makes of Turkish ğ ş ı Ğ Ş İ: rare in real prose
_SAMPLE_SLICES, _SLICE_BYTES = 16, 1 << 14  # byte statistics from at most 256 KiB spread over the data


_TURKISH_ONLY = "ğıışŞĞİ"  # letters no Western language uses: where one code page reads them, it is Turkish


def _char_weight(char: str) -> int:
    """How plausible one non-ASCII character is in Turkish or Western European prose."""
    if char in _TURKISH_ONLY:
        return 3
    if char in _LETTERS:
        return 2
    if char in _PUNCTUATION:
        return 1
    if char in _ICELANDIC or "\u2500" <= char <= "\u259f":  # box drawing and blocks: DOS frames, not prose
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


def _is_utf8_mix(counts: list[int], data: bytes) -> bool:
    """UTF-8 puts a continuation byte (0x80..0xBF) after every lead byte; 8-bit prose rarely uses them,
    except Mac code pages (ç ö ü are 0x8D 0x9A 0x9F in Mac Turkish), so the lines must show it too: some of
    those with high bytes decode as UTF-8. (Misjudging a mix as pure 8-bit costs little: repair_mojibake
    then fixes the UTF-8 lines.)"""
    if sum(counts[0x80:0xC0]) <= 0.2 * sum(counts[0x80:]):
        return False
    step = max(len(data) // _SAMPLE_SLICES, _SLICE_BYTES)
    lines = [line for start in range(0, len(data), step)
             for line in data[start:start + _SLICE_BYTES].splitlines()[1:-1] if not line.isascii()]
    return not lines or sum(_utf8_or_none(line) is not None for line in lines) >= 0.05 * len(lines)


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
    if _is_utf8_mix(counts, data):
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


# What a page or an XML book says its encoding is: <?xml … encoding="…"?>, <meta charset="…">, or
# <meta http-equiv="Content-Type" content="text/html; charset=…">, within its first bytes.
_DECLARATION = re.compile(rb"<\?xml[^>]*?encoding\s*=\s*[\"']([\w.:-]{1,40})[\"']"
                          rb"|<meta[^>]*?charset\s*=\s*[\"']?([\w.:-]{1,40})", re.IGNORECASE)
_DECLARATION_BYTES = 4096
# Encodings whose choice the bytes themselves settle better than a label does: UTF-8 and UTF-16/32 decode
# strictly, and the Turkish and Western code pages are scored above (old Turkish pages often say
# iso-8859-1 of cp1254 text, which would read ı ş ğ as ý þ ð).
_DETECTED = {"utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be", "ascii", "cp1252",
             "iso8859-1", "latin-1", "cp1254", "iso8859-9", "mac-turkish"}


def declared_encoding(data: bytes) -> str | None:
    """The codec a page or XML file declares in its first bytes, where detection does not settle it better
    (a Cyrillic, Greek, Arabic, Central European or East Asian code page); None otherwise."""
    found = _DECLARATION.search(data[:_DECLARATION_BYTES])
    if not found:
        return None
    try:
        info = codecs.lookup((found.group(1) or found.group(2)).decode("ascii"))
    except (LookupError, UnicodeDecodeError):
        return None
    text_codec = getattr(info, "_is_text_encoding", True)  # not base64, hex or rot13
    return None if info.name in _DETECTED or not text_codec else info.name


def decode_markup(data: bytes, source: str = "<bytes>") -> Decoded:
    """Decode a web page or an XML book (FictionBook): in the code page it declares where that is one
    detection does not score and the bytes decode in it but not as UTF-8, else as ``decode_bytes``. A real
    windows-1251 FB2 book, its tags outnumbering its Cyrillic letters, was read as cp1254."""
    codec = declared_encoding(data)
    if codec and not _utf8_or_none(data):  # UTF-8 bytes under a wrong label are still UTF-8
        try:
            text = data.decode(codec)
        except (UnicodeDecodeError, LookupError):
            pass
        else:
            return _repaired(text, codec)
    return decode_bytes(data, source)


def decode_bytes(data: bytes, source: str = "<bytes>") -> Decoded:
    """Decode one file's bytes whatever their encoding, then repair mojibake.

    Raises CorpusError naming ``source`` and the byte offset when the bytes are not text in any encoding
    we accept (a damaged UTF-16 file, a NUL byte in non-UTF-8 data).
    """
    return _repaired(*_decode(data, source))


def _repaired(text: str, encoding: str) -> Decoded:
    repair = repair_text(text)
    return Decoded(repair.text, encoding, repair.repaired_chars, repair.layers, repair.sequences,
                   repair.recovered_bytes, repair.unrecoverable_lines)
