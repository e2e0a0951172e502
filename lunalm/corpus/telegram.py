"""Telegram Desktop's JSON export (``result.json``: "Export chat history" of one chat, or "Export Telegram
data" of a whole account) read as the text people wrote.

The export is one JSON object: a chat (``name``, ``type``, ``id``, ``messages``), or an account whose chats
are listed under ``chats.list`` and ``left_chats.list``. A message's ``text`` is a string, or a list mixing
strings and entities (``{"type": "link", "text": "..."}``, bold, hashtags, mentions) whenever it holds any
formatting; service messages (joins, pins, calls), and stickers, photos and voice notes without a caption,
have no text. Read as any JSON data set, the first formatted message stopped the whole read ("field 'text'
is a JSON array"), and an account's export was "a JSON object with 2 arrays".

What each chat becomes:
- a channel (``public_channel``, ``private_channel``): one document a post, its text alone (a channel of
  poems or news is a collection of texts, each written whole);
- any other chat (personal, group, bot, saved messages): the conversation, one line a message as
  ``Name: text`` (a message's own line breaks kept), cut into documents of at most ``max_chars`` between
  messages, so that a model learns who answers whom.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
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
    listed = [chat for key in ("chats", "left_chats") for chat in _listed(data.get(key))]
    if listed and all(_is_chat(chat) for chat in listed):
        return listed
    if not listed and isinstance(data.get("chats"), dict) and "personal_information" in data:
        return []  # an account's export with no chat chosen (contacts or settings only)
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
    if path.suffix.lower() != ".json" or not path.is_file():
        return False
    try:
        with open(path, "rb") as handle:
            head = handle.read(_HEAD_BYTES).removeprefix(b"\xef\xbb\xbf").lstrip()
    except OSError:
        return False
    return head.startswith(b"{") and bool(_ACCOUNT.search(head)
                                          or _CHAT_TYPE.search(head) and _MESSAGES.search(head))
