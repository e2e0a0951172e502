"""Telegram Desktop's JSON export (``result.json``: "Export chat history" of one chat, or "Export Telegram
data" of a whole account) read as the text people wrote.

The export is one JSON object: a chat (``name``, ``type``, ``id``, ``messages``), or an account whose chats
are listed under ``chats.list`` and ``left_chats.list``. A message's ``text`` is a string, or a list mixing
strings and entities (``{"type": "link", "text": "..."}``, bold, hashtags, mentions) whenever it holds any
formatting; service messages (joins, pins, calls), and stickers, photos and voice notes without a caption,
have no text. Read as any JSON data set, the first formatted message stopped the whole read ("field 'text'
is a JSON array"), and an account's export was read as its list of profile pictures.

What each chat becomes:
- a channel (``public_channel``, ``private_channel``): one document a post, its text alone (a channel of
  poems or news is a collection of texts, each written whole);
- any other chat (personal, group, bot, saved messages): the conversation, one line a message as
  ``Name: text`` (a message's own line breaks kept), cut into documents of at most ``max_chars`` between
  messages, so that a model learns who answers whom.

The HTML export (``messages.html``, Telegram Desktop's default) is read the same way, a page a document
(``export_page_text``).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

CHANNELS = {"public_channel", "private_channel"}
CHAT_TYPES = CHANNELS | {"personal_chat", "bot_chat", "private_group", "private_supergroup", "public_supergroup",
                         "saved_messages", "replies", "verification_codes"}
UNNAMED = "Deleted Account"  # what Telegram shows for a sender whose account is gone (``"from": null``)


def telegram_chats(data) -> list[dict] | None:
    """The chats of a parsed Telegram export (one chat's, or an account's), or None when ``data`` is none."""
    if not isinstance(data, dict):
        return None
    if _is_chat(data):
        return [data]
    listed = [chat for key in ("chats", "left_chats") for chat in _listed(data.get(key)) if _is_chat(chat)]
    if listed or isinstance(data.get("chats"), dict) and "personal_information" in data:
        return listed  # an account's export, maybe with no chat chosen (contacts or settings only)
    return None


def _listed(section) -> list:
    return section.get("list", []) if isinstance(section, dict) and isinstance(section.get("list"), list) else []


def _is_chat(value) -> bool:
    """A chat object: a list of messages beside a Telegram chat type, or messages shaped like Telegram's."""
    if not isinstance(value, dict) or not isinstance(value.get("messages"), list):
        return False
    messages = value["messages"]
    if value.get("type") in CHAT_TYPES:
        return True
    head = messages[:20]
    return bool(head) and all(isinstance(message, dict) and message.get("type") in ("message", "service")
                              and "id" in message for message in head)


def message_text(message: dict) -> str:
    """A message's text: its string, or its entities' texts joined (links, bold, hashtags as they read)."""
    text = message.get("text")
    if text is None or text == [] and message.get("text_entities"):
        text = message.get("text_entities")
    if isinstance(text, list):
        text = "".join(part if isinstance(part, str) else part.get("text", "") if isinstance(part, dict) else ""
                       for part in text)
    return text.strip() if isinstance(text, str) else ""


def chat_documents(chat: dict, max_chars: int) -> Iterator[tuple[str, str]]:
    """(label, text) of each document of one chat (see the module docstring); messages with no text (service
    messages, stickers and media without a caption) are left out."""
    name = str(chat.get("name") or chat.get("type") or "chat")
    said = [(message, message_text(message)) for message in chat["messages"]
            if isinstance(message, dict) and message.get("type", "message") == "message"]
    said = [(message, text) for message, text in said if text]
    if chat.get("type") in CHANNELS:
        for message, text in said:
            yield f"{name} #{message.get('id', '?')}", text
        return
    lines: list[str] = []
    size, first = 0, None
    for message, text in said:
        line = f"{message.get('from') or UNNAMED}: {text}"
        if lines and size + len(line) + 1 > max_chars:
            yield f"{name} #{first}", "\n".join(lines)
            lines, size = [], 0
        if not lines:
            first = message.get("id", "?")
        lines.append(line)
        size += len(line) + 1
    if lines:
        yield f"{name} #{first}", "\n".join(lines)


_HEAD_BYTES = 8192
_ACCOUNT = re.compile(rb'"about"\s*:\s*"Here is the data you requested')
_CHAT_TYPE = re.compile(rb'"type"\s*:\s*"(' + "|".join(sorted(CHAT_TYPES)).encode() + rb')"')
_MESSAGES = re.compile(rb'"messages"\s*:\s*\[')


def is_export(path: Path) -> bool:
    """Whether ``path`` (a ``.json`` file in a folder) begins as Telegram's export does: an account's note
    ("Here is the data you requested"), or a chat's type beside its messages. A folder is read with such a
    file in it; other JSON files there are left out by default (settings, configs) and named in a note."""
    if path.suffix.lower() != ".json":
        return False
    try:
        stat = path.stat()
    except OSError:
        return False
    return stat.st_size > 0 and _export_head(str(path), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=4096)
def _export_head(path: str, size: int, mtime_ns: int) -> bool:
    """``is_export``'s look at a file's first bytes, once per version of the file: a folder is discovered
    several times over (reading, then each note on what is left unread)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(_HEAD_BYTES).removeprefix(b"\xef\xbb\xbf").lstrip()
    except OSError:
        return False
    return head.startswith(b"{") and bool(_ACCOUNT.search(head)
                                          or _CHAT_TYPE.search(head) and _MESSAGES.search(head))


# --- the HTML export ---------------------------------------------------------------------------------------
# Telegram Desktop exports HTML unless JSON is chosen: messages.html, messages2.html, … (a thousand messages a
# page) beside css/, js/ and images/. Read as web pages, each message gave its initials, time, sender and
# text on lines of their own, and media gave "Photo", "Not included, change data exporting settings to
# download." and its size.
_HISTORY = re.compile(r'<div class="history">')
_MESSAGE = re.compile(r'<div class="message (?:default|service)')


def is_export_page(markup: str) -> bool:
    """Whether a page is one of Telegram's HTML export (``messages.html``)."""
    return bool(_HISTORY.search(markup[:1 << 16])) and bool(_MESSAGE.search(markup))


class _ExportPage(HTMLParser):
    """(sender, text) of each message of an HTML export page. A message joined to the one before (the same
    sender, a ``joined`` class) has no name of its own; a service message (a date, a pin) breaks that chain.
    Only a message's ``text`` and its sender's ``from_name`` are read: not its time, reply link, media,
    reactions or signature, nor the "via @bot" and date spans inside a name."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.messages: list[tuple[list[str | None], list[str]]] = []  # ([sender], text parts)
        self.divs = 0  # <div>s open
        self.sender: str | None = None  # of the last message with a name
        self.reading: str | None = None  # "name" or "text", while inside one ...
        self.depth = 0  # ... opened at this many <div>s
        self.forwarded = 0  # <div>s open at a forwarded message's body, else 0
        self.spans = 0  # elements open inside a name
        self.name: list[str] = []

    def handle_starttag(self, tag, attrs):
        if self.reading == "text" and tag == "br":
            self.messages[-1][1].append("\n")
        elif self.reading == "name" and tag != "div":
            self.spans += 1
        if tag != "div":
            return
        self.divs += 1
        classes = (dict(attrs).get("class") or "").split()
        if "message" in classes and ("default" in classes or "service" in classes):
            self.sender = self.sender if "joined" in classes else None
            self.messages.append(([self.sender], []))
            self.reading, self.forwarded = None, 0
        elif "forwarded" in classes and "body" in classes:
            self.forwarded = self.divs
        elif self.messages and self.reading is None and classes in (["from_name"], ["text"]):
            self.reading = "name" if classes == ["from_name"] else "text"
            self.depth, self.spans, self.name = self.divs, 0, []

    def handle_endtag(self, tag):
        if self.reading == "name" and tag != "div":
            self.spans = max(0, self.spans - 1)
        if tag != "div" or not self.divs:
            return
        if self.reading and self.divs == self.depth:
            if self.reading == "name" and not self.forwarded:  # a forwarded message's author is not its sender
                self.sender = " ".join("".join(self.name).split()) or None
                self.messages[-1][0][0] = self.sender
            self.reading = None
        if self.divs == self.forwarded:
            self.forwarded = 0
        self.divs -= 1

    def handle_data(self, data):
        if self.reading == "name" and not self.spans:
            self.name.append(data)
        elif self.reading == "text":  # line breaks are <br>s; the markup's own are layout
            self.messages[-1][1].append(re.sub(r"\s+", " ", data))


def export_page_text(markup: str) -> str:
    """The messages of an HTML export page as ``Name: text`` lines (a message's own line breaks kept), as the
    JSON export's chats; where one sender wrote them all (a channel), its posts alone, a blank line between."""
    parser = _ExportPage()
    parser.feed(markup)
    parser.close()
    said = [(sender[0], text) for sender, parts in parser.messages
            if (text := "\n".join(" ".join(line.split()) for line in "".join(parts).strip().split("\n")))]
    if len({sender for sender, _ in said}) == 1:
        return "\n\n".join(text for _, text in said)
    return "\n".join(f"{sender}: {text}" if sender else text for sender, text in said)
