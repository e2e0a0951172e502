"""Rebuilding the bytes a code page dropped when UTF-8 was mis-decoded.

cp1254 leaves 0x81 0x8D 0x8E 0x8F 0x90 0x9D 0x9E undefined (cp1252 five of them); a program that decodes
UTF-8 through it and saves the result drops those bytes. What survives is a lead byte with too few continuation bytes:
"BAÅARISIZ" (Ş = C5 9E), "Ævvəlki" (Ə = C6 8F), "âŒ" (❌ = E2 9D 8C).

A site is rebuilt from the few completions that give valid UTF-8 (every lost byte at every position),
chosen by the text's language (letter frequencies) or, for symbols, by a frequency table of emoji and
punctuation, each checked against its neighbours (a zero-width joiner only between two emoji, a closing
quote only after a word). A site where no completion fits is left as it is and reported.
"""

from __future__ import annotations

import functools
import itertools
import re
import unicodedata

LOST = bytes([0x81, 0x8D, 0x8E, 0x8F, 0x90, 0x9D, 0x9E])  # cp1254's holes (cp1252's are a subset)

# Relative frequency (per 100 letters, rounded) of the non-ASCII letters a completion can give. Turkish
# and Azerbaijani from their alphabets' usual counts; "other" knows Western European letters as well.
_TURKISH = {"ı": 5.1, "ü": 1.9, "ş": 1.8, "ç": 1.2, "ğ": 1.1, "ö": 0.8, "â": 0.1, "î": 0.05, "û": 0.02}
_AZERBAIJANI = {"ə": 9.0, "ı": 5.0, "ü": 1.5, "ş": 2.0, "ç": 1.2, "ğ": 0.4, "ö": 0.6}
_WESTERN = {"é": 1.5, "è": 0.3, "à": 0.4, "ä": 0.5, "ö": 0.3, "ü": 0.6, "ß": 0.2, "ç": 0.1, "ñ": 0.3,
            "á": 0.4, "í": 0.4, "ó": 0.4, "ú": 0.2, "ê": 0.2, "ô": 0.1, "ã": 0.3, "õ": 0.1, "å": 0.3,
            "ø": 0.2, "æ": 0.1, "ł": 0.3, "ś": 0.1, "ń": 0.1, "ő": 0.1, "ű": 0.05, "č": 0.1, "ř": 0.1}
_TURKIC = _TURKISH | _AZERBAIJANI


def _scaled(table: dict[str, float], factor: float) -> dict[str, float]:
    return {letter: weight * factor for letter, weight in table.items()}


# The text's own language first; then the other Turkic letters (an Azerbaijani name in Turkish text), and
# Western letters last.
LETTER_FREQUENCY = {"tr": {**_scaled(_WESTERN, 0.01), **_scaled(_TURKIC, 0.1), **_TURKISH},
                    "az": {**_scaled(_WESTERN, 0.01), **_scaled(_TURKIC, 0.1), **_AZERBAIJANI},
                    "other": {**_scaled(_TURKIC, 0.1), **_WESTERN}}

# Emoji and symbols, commonest first: a written-down ranking of everyday use (chat, notes, READMEs),
# which the choice between completions such as 🎯 🐯 🍯 🏯 needs.
_EMOJI_BY_FREQUENCY = (
    "😂❤🤣👍😭🙏😘🥰😍😊🎉😁💕🥺😅🔥☺🤦♥🤷🙄😆🤗😉🎂🤔👏🙂😳🥳😎👌💜😔💪✨💖👀😋😏😢👉💗😩💯🌹💞🎈💙"
    "😃😡💐😜🙈🤞😄🤤🙌🤪❣😀💋💀👇💔😌💓🤩🙃😬😱😴🤭😐🌞😒😇🌸😈🎶✌🎊🥵😞💚☀🖤💰😚👑🎁💥🙋☹😑🥴👈"
    "💩✅❌⚠🚀🎯📌💡📊📝📈📉🔍🔗📎📁📂📅⏰⭐🌟⚡🔴🟢🟡🔵⚪⚫🟠🟣🔶🔷➡⬅⬆⬇↩🔄🆕🆗🆙🏆🥇🥈🥉🏁🚩🎓📚📖✏"
    "📱💻🖥⌨🖨📷🎥📺📻🎤🎧🎵🎬🎮🧩🧠🫶🤝🙏🏻👋🤚✋🖐👊✊🤛🤜🤲🫡🧿🇹🇷🌍🌎🌏🗺🏠🏡🏢🏫🏥🕌⛪🌙🌈☔❄⛄🍀"
    "🌺🌻🌼🌷🍎🍕🍔🍰☕🍵🍷🍺🥂🐶🐱🐯🦁🐻🐼🐸🐝🦋🌿🍃🍂🍁🌳🌲💧🌊🎄🎃🎆🎇🧨🎀🎗🏅⚽🏀🏐🎾🚗✈🚂⛵🕐⌛⏳"
    "🔒🔓🔑🛠⚙🔧🔨🧪🧬💊🩺🚨🚫⛔❗❓❕❔‼⁉💬💭🗨📣📢🔔🔕☑✔✖➕➖➗♻™©®〽🔝🔜🆓🈯🉐"
    "🏖🏝🏔⛰🌋🏕🏟🏛🏗🏘🏚🏙🌅🌄🌠🎑🏞🌃🌆🌇🌉🌌🎠🎡🎢💈🎪🚂🚃🚄🚅🚆🚇🚈🚉🚊🚝🚞🚋🚌🚍🚎🚐🚑🚒🚓🚔🚕🚖🚘🚙"
    "🍏🍐🍊🍋🍌🍉🍇🍓🫐🍈🍒🍑🥭🍍🥥🥝🍅🍆🥑🥦🥬🥒🌶🌽🥕🧄🧅🥔🍠🥐🥯🍞🥖🥨🧀🥚🍳🧈🥞🧇🥓🥩🍗🍖🌭🍟🥪🌮🌯"
    "🍜🍝🍣🍱🍛🍚🍙🍘🍥🥠🍢🍡🍧🍨🍦🥧🧁🍮🍭🍬🍫🍿🍩🍪🌰🥜🍯🥛🍼🫖🍶🍾🍸🍹🍻🥃🥤🧋🧃🧉🧊"
    "🐭🐹🐰🦊🐨🐮🐷🐽🐵🙉🙊🐒🐔🐧🐦🐤🐣🐥🦆🦅🦉🦇🐺🐗🐴🦄🐛🐌🐞🐜🪲🐢🐍🦎🐙🦑🦐🦀🐡🐠🐟🐬🐳🐋🦈🐊🐅🐆"
    "🐘🦏🐪🐫🦒🐃🐂🐄🐎🐖🐏🐑🐐🦌🐕🐩🐈🐓🦃🕊🐇🐁🐀🐿🦔🐾🐉🐲🌵🎋🎍🍄🐚🌾💮🏵🥀🌑🌒🌓🌔🌕🌖🌗🌘🌚🌛🌜🌝"
    "🏯🏰🏤🏦🏨🏩🏪🏬🏭🗼🗽🕍🕋⛲⛺🏃🚶💃🕺👯🧘🏋🚴🏊🏄🎿⛷🏂🏌🏇🤺🤸🤼🤽🤾🤹🎭🎨🎰🎲🎳🎴🀄🃏🎷🎸🎹🎺🎻🥁"
    "🏵🎖🎫🎟🎤🎙🎚🎛🏹🔫🗡⚔🛡🔮📿💎💍👓🕶👔👕👖👗👘👙👚👛👜👝🎒👞👟👠👡👢🎩🧢⛑💄"
)
_SYMBOL_WEIGHT = {char: 1.0 / (10 + rank) for rank, char in enumerate(dict.fromkeys(_EMOJI_BY_FREQUENCY))}
_ZWJ, _VS16, _VS15 = "\u200d", "\ufe0f", "\ufe0e"
_SKIN_TONES = "🏻🏼🏽🏾🏿"
_CONTEXT_WEIGHT = 10.0  # a joiner or quote that its neighbours call for beats any table entry
_SEEN_WEIGHT = 1.0  # a symbol the text uses intact elsewhere beats any table entry, not a context rule


_NATIVE_LETTERS = frozenset("abcçdefgğhıijklmnoöprsştuüvyzâîûəqxw")  # Turkish and Azerbaijani
_VOWELS = frozenset("aeıioöuüâîûə")
_SURE_LETTER = 0.5  # per 100 letters: Ş Ğ Ə and the like, not the rare Î


def fits_word(char: str, before: str, after: str, language: str) -> bool:
    """In Turkish or Azerbaijani text with no other mojibake, is ``char`` (a rebuilt letter) evidence on its
    own? Only if it is a common letter of the language and makes a native word: native letters only, no
    word-initial ğ, no two consonants at the start ("BAŞARISIZ", "Əvvəlki"; not "Şse" from "Åse")."""
    from lunalm.corpus.language import lower

    if LETTER_FREQUENCY.get(language, {}).get(lower(char, language), 0.0) < _SURE_LETTER:
        return False
    head = re.search(r"[^\W\d_]*$", before).group()
    word = lower(head + char + re.match(r"[^\W\d_]*", after).group(), language)
    if not set(word) <= _NATIVE_LETTERS:
        return False
    start = word[:2]
    return bool(head) or (start[0] != "ğ" and (len(start) < 2 or bool(set(start) & _VOWELS)))


def needed_length(lead: int) -> int:
    """How many bytes a UTF-8 sequence with this lead byte has (0 for a byte that cannot lead)."""
    return 2 if 0xC2 <= lead <= 0xDF else 3 if 0xE0 <= lead <= 0xEF else 4 if 0xF0 <= lead <= 0xF4 else 0


@functools.lru_cache(maxsize=1 << 14)
def completions(present: bytes, lost: bytes) -> tuple[str, ...]:
    """Every character that ``present`` (a lead byte and the continuation bytes that survived, in order)
    spells once the missing bytes, drawn from ``lost``, are put back at any position. A byte 0x00 in
    ``present`` marks a byte that was replaced (U+FFFD) rather than dropped: only that position is filled."""
    missing = needed_length(present[0]) - len(present)
    if 0 in present:
        holes = [tuple(i for i, b in enumerate(present) if b == 0)] if missing == 0 else []
        template = present
    else:
        holes = list(itertools.combinations(range(1, len(present) + missing), missing))
        template = None
    found: dict[str, None] = {}
    for positions in holes:
        base = template or _with_holes(present, positions)
        for fill in itertools.product(lost, repeat=len(positions)):
            sequence = bytearray(base)
            for position, byte in zip(positions, fill):
                sequence[position] = byte
            try:
                found[bytes(sequence).decode("utf-8")] = None
            except UnicodeDecodeError:
                continue
    return tuple(found)


def _with_holes(present: bytes, positions: tuple[int, ...]) -> bytes:
    """``present`` widened with a 0x00 at each position (in the widened sequence)."""
    rest = iter(present[1:])
    return present[:1] + bytes(0 if index in positions else next(rest)
                               for index in range(1, len(present) + len(positions)))


def _is_pictograph(char: str) -> bool:
    return bool(char) and (unicodedata.category(char) == "So" or char in _SKIN_TONES or char in (_VS16, _ZWJ))


def _context_weight(char: str, before: str, after: str) -> float:
    """Characters whose use depends on their neighbours (joiners, selectors, quotes)."""
    if char in _SKIN_TONES:
        return _CONTEXT_WEIGHT if unicodedata.category(before or " ") == "So" else 0.0
    if char == _ZWJ:
        return _CONTEXT_WEIGHT if _is_pictograph(before) and _is_pictograph(after) else 0.0
    if char in (_VS16, _VS15):  # emoji presentation (VS16) is far commoner than text presentation
        return (_CONTEXT_WEIGHT if char == _VS16 else _CONTEXT_WEIGHT / 10) if _is_pictograph(before) else 0.0
    if char == "”":
        return _CONTEXT_WEIGHT if before and not before.isspace() else 0.0
    if char == "„":
        return _CONTEXT_WEIGHT / 2 if (not before or before.isspace()) and after and not after.isspace() else 0.0
    return 0.0


def _weight(char: str, before: str, after: str, language: str) -> float:
    if char.isalpha():
        letters = LETTER_FREQUENCY.get(language, LETTER_FREQUENCY["other"])
        return letters.get(char.lower(), 0.0)
    return _context_weight(char, before, after) or _SYMBOL_WEIGHT.get(char, 0.0)


def choose(candidates: tuple[str, ...], before: str, after: str, language: str,
           seen: frozenset[str] = frozenset()) -> str | None:
    """The completion that fits best, or None when none is plausible here. ``before``/``after``: the
    neighbouring text (a few characters, already repaired where possible); ``seen``: symbols the same
    text holds intact elsewhere (a text's own emoji outweigh the general table)."""
    weights = {c: _weight(c, before[-1:], after[:1], language) + (_SEEN_WEIGHT if c in seen else 0.0)
               for c in candidates}
    best = max(candidates, key=weights.__getitem__, default=None)
    return None if best is None or weights[best] <= 0 else best
