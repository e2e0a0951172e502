"""Undoing mojibake: UTF-8 that was read through cp1254 / cp1252 / latin-1 (once or twice) and saved.

Every mis-decoded character sequence is mapped back to its bytes and decoded as UTF-8 again; bytes the
code page dropped are rebuilt by ``lunalm.corpus.lostbytes``. Only matched sequences change, so correct
text beside a broken word is untouched.
"""

from __future__ import annotations

import codecs
import functools
import re
from dataclasses import dataclass

from lunalm.corpus import lostbytes

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


# A lead followed by too few continuation characters, or by U+FFFD where one was: bytes the code page
# dropped or replaced (see lostbytes). "Â" is left out: its completions are C1 controls, never text.
_L3, _L4 = _chars(_span(0xE0, 0xEF)), _chars(_span(0xF0, 0xF4))
_ORPHAN_RE = re.compile(
    f"[{_LEAD2}]\ufffd|[{_L3}](?:[{_CONT}]\ufffd|\ufffd[{_CONT}\ufffd])"
    f"|[{_L4}](?=[{_CONT}\ufffd]{{0,2}}\ufffd)[{_CONT}\ufffd]{{3}}"
    f"|[{_LEAD2}](?![{_CONT}])|[{_L3}][{_CONT}](?![{_CONT}])|[{_L4}][{_CONT}]{{1,2}}(?![{_CONT}])")
_LETTER_ORPHAN_RE = re.compile(f"[{_LEAD2}](?![{_CONT}])")  # what text without other mojibake is searched for
# What a mis-decoding never produces: the bytes UTF-8 never uses (C0 C1 F5..FF: ı ş ö ü ÷ …). A line
# holding one, or a letter outside the code pages (ə, Cyrillic), was written correctly: nothing is lost there.
_NEVER_IN_MOJIBAKE = frozenset(bytes([b]).decode(cp, _C1) for cp in _MOJIBAKE_CODE_PAGES
                               for b in (0xC0, 0xC1, *range(0xF5, 0x100)))


@dataclass(frozen=True)
class Repair:
    """What mojibake repair did to one text."""

    text: str
    repaired_chars: int = 0  # input characters replaced
    layers: int = 0  # wrong decode/encode round trips undone (the most any line needed)
    sequences: int = 0  # mis-decoded sequences undone (each layer counted), lost-byte sites included
    recovered_bytes: int = 0  # bytes the code page had dropped, rebuilt
    unrecoverable_lines: tuple[int, ...] = ()  # 1-based line of each site left as it was (one per site)


@dataclass(frozen=True)
class _Recovery:
    lost: bytes  # the bytes that may have been dropped
    language: str  # chooses between letter completions
    seen: frozenset[str]  # symbols the text holds intact
    orphans_only: bool = False  # no mojibake left besides lost-byte sites (repaired by another tool)
    only: frozenset[str] = frozenset()  # when given, the only characters a site may be rebuilt as


@dataclass(frozen=True)
class _Layer:
    text: str
    score: int  # sequences undone + lost-byte sites rebuilt
    replaced: int  # input characters replaced
    recovered_bytes: int = 0
    unrecoverable: int = 0


@functools.lru_cache(maxsize=1 << 16)  # a corpus repeats the same few hundred sequences
def _undo(sequence: str) -> str:
    """One mojibake sequence -> the character its code-page bytes spell (always valid UTF-8: see above)."""
    return sequence.translate(_TO_BYTE).encode("latin-1").decode("utf-8")


def mojibake_score(text: str) -> int:
    """Count the tell-tale mojibake sequences in ``text`` (e.g. "Ã¼", "ÅŸ", "ðŸ˜€"): character sequences
    whose cp1254 / cp1252 / latin-1 bytes form one valid UTF-8 character. 0 for clean text."""
    return len(_MOJIBAKE_RE.findall(text)) if _HINT_RE.search(text) else 0


def _written_correctly(line: str) -> bool:
    return any(c in _NEVER_IN_MOJIBAKE or (c.isalpha() and not c.isascii() and ord(c) not in _TO_BYTE)
               for c in line)


def _deeper_char(before: str, candidate: str, after: str) -> str | None:
    """In text mis-decoded twice, a lost byte's completion is itself a mis-decoded character ("„" of
    "ðŸ”„"): the character the deeper layer spells with it and its neighbours, if they form one UTF-8
    sequence (a lead and at least one continuation before it, the rest after)."""
    for start in range(max(0, len(before) - 3), len(before) - 1):
        chars = before[start:] + candidate
        if any(ord(c) not in _TO_BYTE and not c.isascii() for c in chars):
            continue
        data = chars.translate(_TO_BYTE).encode("latin-1", "replace")
        missing = lostbytes.needed_length(data[0]) - len(data)
        if missing >= 0 and all(0x80 <= b <= 0xBF for b in data[1:]):
            rest = after[:missing].translate(_TO_BYTE).encode("latin-1", "replace")
            try:
                return (data + rest).decode("utf-8")
            except UnicodeDecodeError:
                return None
    return None


def _choose_deeper(candidates: tuple[str, ...], before: str, after: str, recovery: _Recovery) -> str | None:
    """Choose by what each candidate becomes one layer deeper, when the neighbours are themselves
    mis-decoded (see _deeper_char); None when they are not."""
    deeper = {c: d for c in candidates if (d := _deeper_char(before, c, after)) is not None}
    best = lostbytes.choose(tuple(deeper.values()), "", "", recovery.language, recovery.seen) if deeper else None
    return next((c for c, d in deeper.items() if d == best), None)


def _recover(parts: list[str], index: int, recovery: _Recovery) -> _Layer:
    """Rebuild the lost bytes of every orphaned lead in ``parts[index]`` (text between undone sequences,
    which are the neighbours ``parts[index ± 1]``)."""
    part, pieces, done = parts[index], [], 0
    sites = recovered = unrecoverable = replaced = 0
    for match in _ORPHAN_RE.finditer(part):
        present = match.group().replace("\ufffd", "\x00").translate(_TO_BYTE).encode("latin-1")
        before = ("".join(parts[max(0, index - 4):index]) + "".join(pieces[-6:]) + part[done:match.start()])[-20:]
        after = part[match.end():match.end() + 20] + (parts[index + 1] if index + 1 < len(parts) else "")
        candidates = lostbytes.completions(present, recovery.lost)
        choice = _choose_deeper(candidates, before, after, recovery) or lostbytes.choose(
            candidates, before, after, recovery.language, recovery.seen)
        if recovery.orphans_only and not (choice and lostbytes.fits_word(choice, before, after, recovery.language)
                                          and (not recovery.only or choice in recovery.only)):
            continue  # without other mojibake around, only a letter that makes a native word is evidence
        if choice is None:
            unrecoverable += 1
            continue
        pieces += [part[done:match.start()], choice]
        done = match.end()
        sites, replaced = sites + 1, replaced + len(match.group())
        recovered += lostbytes.needed_length(present[0]) - len(present) + present.count(0)
    pieces.append(part[done:])
    return _Layer("".join(pieces), sites, replaced, recovered, unrecoverable)


def _undo_layer(text: str, recovery: _Recovery | None) -> _Layer:
    """Undo one layer everywhere in ``text`` (and rebuild lost bytes when ``recovery`` is given)."""
    hint = _HINT_RE.search(text)
    if not hint and recovery is None:
        return _Layer(text, 0, 0)
    parts = _MOJIBAKE_RE.split(text) if hint else [text]  # [text, sequence, text, …]: no call per match
    replaced = sum(map(len, parts[1::2]))
    parts[1::2] = map(_undo, parts[1::2])
    score, recovered, unrecoverable = len(parts) // 2, 0, 0
    if recovery is not None and (recovery.orphans_only or not _written_correctly(text)):
        for index in range(0, len(parts), 2):
            layer = _recover(parts, index, recovery)
            parts[index] = layer.text
            score, replaced = score + layer.score, replaced + layer.replaced
            recovered, unrecoverable = recovered + layer.recovered_bytes, unrecoverable + layer.unrecoverable
    return _Layer("".join(parts), score, replaced, recovered, unrecoverable)


def _repair_line(line: str, recovery: _Recovery | None) -> tuple[str, list[_Layer]]:
    """Undo up to three layers in one line, keeping a layer only if it lowers the mojibake score.
    Returns the repaired line and the layers undone, outermost first."""
    candidate, accepted = _undo_layer(line, recovery), []
    while candidate.score and len(accepted) < _MAX_LAYERS:
        deeper = _undo_layer(candidate.text, recovery)  # deeper.score = score of candidate.text
        if deeper.score >= candidate.score:
            # Twice mis-decoded with a byte lost the first time ("Ã…u" -> "Åu" -> "Şu"): undoing the outer
            # layer leaves as many sites as it undid, and only the layer below comes out clean.
            if not (recovery is not None and deeper.recovered_bytes and len(accepted) + 2 <= _MAX_LAYERS
                    and deeper.score == candidate.score and _undo_layer(deeper.text, recovery).score == 0):
                break
            accepted.append(candidate)
            candidate = deeper
            continue
        accepted.append(candidate)
        candidate = deeper
    return (accepted[-1].text if accepted else line), accepted or [candidate]


def _suspect_lines(text: str, recovery: _Recovery | None):
    """(start, end) of each line that may hold mojibake, in order."""
    pattern = _HINT_RE if recovery is None else re.compile(f"{_HINT_RE.pattern}|{_ORPHAN_RE.pattern}")
    hint = pattern.search(text)
    while hint:
        start = text.rfind("\n", 0, hint.start()) + 1
        end = text.find("\n", hint.end())
        end = len(text) if end < 0 else end
        yield start, end
        hint = pattern.search(text, end)


def _repair(text: str, recovery: _Recovery | None) -> Repair:
    pieces, done, line_number = [], 0, 1
    repaired_chars = max_layers = sequences = recovered = 0
    unrecoverable: list[int] = []
    for start, end in _suspect_lines(text, recovery):
        line_number += text.count("\n", done, start)
        fixed, layers = _repair_line(text[start:end], recovery)
        pieces += [text[done:start], fixed]
        done = end
        if fixed != text[start:end]:
            repaired_chars += layers[0].replaced
            max_layers = max(max_layers, len(layers))
            sequences += sum(layer.score for layer in layers)
            recovered += sum(layer.recovered_bytes for layer in layers)
        unrecoverable += [line_number] * sum(layer.unrecoverable for layer in layers)
    pieces.append(text[done:])
    return Repair("".join(pieces), repaired_chars, max_layers, sequences, recovered, tuple(unrecoverable))


def repair_text(text: str) -> Repair:
    """Undo UTF-8 that was wrongly decoded as cp1254 / cp1252 / latin-1 (and saved) once or twice, and
    rebuild the bytes such a code page dropped.

    Visits only the lines that contain mojibake, each on its own, so a document mixing correct and broken
    lines keeps the correct ones as they are. Lost bytes are rebuilt in text that shows mojibake elsewhere
    too; in Turkish or Azerbaijani text that shows none (another tool repaired the rest: "BAÅARISIZ",
    "Ævvəlki"), only letters that make a native word are. Clean text ("Åse", "Ærø", "São Paulo") is never
    touched.
    """
    if text.isascii():
        return Repair(text)
    first = _repair(text, None) if _HINT_RE.search(text) else Repair(text)
    from lunalm.corpus.language import UNDETERMINED

    if not first.layers:
        if not _LETTER_ORPHAN_RE.search(text):
            return first
        language = _language(text)
        if language in ("tr", "az"):
            return _repair(text, _Recovery(lostbytes.LOST, language, frozenset(), orphans_only=True))
        if language != UNDETERMINED:
            return first
        # A line of a subtitle or a title ("Åu anda evlenmeyi hayal edemiyorum."): too short to tell its
        # language, so only the Turkish capitals cp1254 drops (Ş, Ğ) are rebuilt, and only into native words
        return _repair(text, _Recovery(lostbytes.LOST, "tr", frozenset(), orphans_only=True, only=frozenset("ŞĞ")))
    seen = frozenset(c for c in first.text if ord(c) > 0x2000 and ord(c) not in _TO_BYTE)
    language = _language(first.text)
    if language == UNDETERMINED and not ({c for c in first.text if c.isalpha() and not c.isascii()} - _ORPHAN_LEADS):
        language = "tr"  # mis-decoded through cp125x and no letter to tell its language by: Turkish is likeliest
    return _repair(text, _Recovery(lostbytes.LOST, language, seen))


_TURKISH_ALPHABET = frozenset("çöüğışâîûÇÖÜĞİŞÂÎÛ")
_TURKISH_ONLY = frozenset("ğışĞİŞ")  # letters no Western language writes
_ORPHAN_LEADS = frozenset(re.sub(r"\\(.)", r"\1", _LEAD2)) - _TURKISH_ALPHABET


def _language(text: str) -> str:
    """The language that chooses between letter completions. A short text (a poem's title, a line of
    verse) has too few function words to be detected; when every non-ASCII letter it holds intact belongs
    to the Turkish alphabet ("çizgilerden geçiyorum, gönlüm"), it is taken as Turkish (Azerbaijani with
    ə), so a lost Ş is not rebuilt as the Polish Ł."""
    from lunalm.corpus.language import UNDETERMINED, detect_language

    detected = detect_language([text])
    if detected in ("tr", "az"):
        return detected
    letters = {c for c in text if c.isalpha() and not c.isascii()} - _ORPHAN_LEADS  # the broken sites' leads
    if "ə" in letters or "Ə" in letters:
        return "az"
    if letters and letters <= _TURKISH_ALPHABET and (detected == UNDETERMINED or letters & _TURKISH_ONLY):
        return "tr"  # ı ğ ş İ outweigh a short text's function words ("Takımlar havalıdır. Şekil A.": "a")
    return detected


def repair_mojibake(text: str) -> tuple[str, int, int]:
    """``repair_text`` as (fixed text, input characters replaced, layers undone)."""
    repair = repair_text(text)
    return repair.text, repair.repaired_chars, repair.layers
