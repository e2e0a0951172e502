"""WhatsApp's "Export chat" text (Android's ``WhatsApp Chat with Ayşe.txt``, iOS's ``_chat.txt``) read as the
conversation: one ``Name: text`` line a message, without the date and time before it.

Each message starts a line with its date and time, in the phone's own format, then its sender::

    2.01.2024 15:46 - Ayşe: Akşam geliyor musun?        Android, Turkish (", " after the date on some phones)
    1/2/24, 3:46 PM - Ayşe: Akşam geliyor musun?        Android, English (U+202F before PM on newer ones)
    [02.01.2024 15:46:30] Ayşe: Akşam geliyor musun?    iOS

and a message's further lines follow with no stamp. Read as plain text, every line began with ~20
characters of digits, and WhatsApp's own lines were trained on as if someone had written them. So:

- a stamped line with no ``Name:`` is WhatsApp's notice (encryption, "Ali gruba katıldı"): left out;
- a message that is only a placeholder is left out: media not exported (``<Medya dahil edilmedi>``, ``<Media
  omitted>``, iOS's ``<attached: …>`` and the notices it marks with U+200E, ``‎image omitted``), an attached
  file's name (``IMG-20240102-WA0001.jpg (dosya ekli)``; a caption on the next line stays), a deleted message;
- the mark of an edited message (``<Bu mesaj düzenlendi>``, ``<This message was edited>``) is taken off.

A file is taken for an export when most of its first lines carry such a stamp (``is_chat``).
"""

from __future__ import annotations

import re

CHECKED_LINES = 40  # first non-empty lines looked at
MIN_STAMPED = 3
STAMPED_SHARE = 0.6  # of the lines looked at: a message's further lines carry no stamp

_MARKS = "\u200e\u200f\u202a\u202b\u202c\u2068\u2069\ufeff"  # direction marks around names and notices
_NOTICE = "\u200e"  # iOS starts its notices (calls, joins, polls, "image omitted") with a left-to-right mark
_NAME_MARKS = "~ \u202f\u00a0"  # "~\u202fArthur": a sender not in the phone's contacts
_STAMP = re.compile(
    rf"^[{_MARKS}]?(?P<ios>\[)?\d{{1,4}}[./-]\d{{1,2}}[./-]\d{{2,4}},?\s\d{{1,2}}[:.]\d{{2}}(?:[:.]\d{{2}})?"
    r"(?:[\s\u202f\u00a0]?(?:[AaPp]\.?\s?[Mm]\.?|ÖÖ|ÖS|öö|ös))?"
    r"(?(ios)\]\s| [-\u2013] )")
_SENDER = re.compile(rf"[{_MARKS}]?(?P<name>[^:\n]{{1,80}}?): (?P<text>.*)")
_FILE = re.compile(r"[\w.-]+\.[A-Za-z0-9]{2,5} \([^()\n]{3,30}\)")  # IMG-20240102-WA0001.jpg (dosya ekli)
_PLACEHOLDER = re.compile(rf"<[^<>\n]+>|{_FILE.pattern}|null")
_QUOTES = re.compile('["\u201c\u201d]')
_EDITED = re.compile(r"\s*<[^<>\n]{6,40}>$")  # "<Bu mesaj düzenlendi>" after the text
DELETED = {"bu mesaj silindi", "bu mesajı sildiniz", "bu mesajı sildin", "this message was deleted",
           "you deleted this message", "данное сообщение удалено", "вы удалили данное сообщение"}  # Android's;
#            iOS marks its own as notices


def is_chat(head: str) -> bool:
    """Whether ``head`` (a file's first text) is a WhatsApp export: its first non-empty line stamped, and most
    of its first lines."""
    lines = [line for line in head.lstrip("\ufeff").split("\n", 4 * CHECKED_LINES)[:4 * CHECKED_LINES]
             if line.strip()][:CHECKED_LINES]  # not every line of a 4 MB block split
    stamped = sum(bool(_STAMP.match(line)) for line in lines)
    return bool(lines) and bool(_STAMP.match(lines[0])) and stamped >= min(MIN_STAMPED, len(lines)) \
        and stamped >= STAMPED_SHARE * len(lines)


def chat_lines(text: str) -> str:
    """``text`` (whole lines of an export) as ``Name: text`` lines, with the notices, placeholders and stamps
    left out (see the module docstring); a line with no stamp (a message's further line) is kept."""
    kept, captioned = [], None  # the sender of a file left out, whose caption may follow on the next line
    for line in text.split("\n"):
        stamp = _STAMP.match(line)
        if not stamp:
            kept.append(f"{captioned}: {line}" if captioned and line.strip() else line)
            captioned = None
            continue
        said, captioned = _SENDER.fullmatch(line[stamp.end():].rstrip("\r")), None
        if said is None or _QUOTES.search(said["name"]):
            continue  # WhatsApp's notice ('Ali changed the subject from "Gezi: Kaş" to "Gezi"')
        name, message = said["name"].strip(_MARKS + _NAME_MARKS), _EDITED.sub("", said["text"]).strip()
        bare = message.lstrip(_MARKS)
        if _PLACEHOLDER.fullmatch(bare):
            captioned = name if _FILE.fullmatch(bare) else None
            continue
        if not bare or message.startswith(_NOTICE) or bare.rstrip(".").casefold() in DELETED:
            continue  # nothing, iOS's notices (marked with U+200E), a deleted message
        kept.append(f"{name}: {message}")
    return "\n".join(kept)
