"""Telegram Desktop's JSON export (``result.json``) read as the text people wrote (``lunalm.corpus.telegram``)."""

from __future__ import annotations

import json
from pathlib import Path

from lunalm.config import DEFAULT_INCLUDE, CorpusConfig
from lunalm.corpus import Corpus
from lunalm.corpus.discover import discover, unread_notes
from lunalm.corpus.read import read_file

NOT_INCLUDED = "(File not included. Change data exporting settings to download.)"


def message(number: int, sender: str | None, text, **extra) -> dict:
    """A message as Telegram Desktop writes it (its field order and companions)."""
    return {"id": number, "type": "message", "date": f"2024-03-0{1 + number // 10}T10:{number:02d}:00",
            "date_unixtime": str(1709287200 + 60 * number), "from": sender, "from_id": f"user{len(sender or '')}",
            **extra, "text": text,
            "text_entities": [{"type": "plain", "text": text}] if isinstance(text, str) and text else []}


CHAT = {"name": "Ayşe", "type": "personal_chat", "id": 5012345678, "messages": [
    {"id": 1, "type": "service", "date": "2024-03-01T10:00:00", "date_unixtime": "1709287200", "actor": "Ayşe",
     "actor_id": "user501", "action": "phone_call", "duration_seconds": 42, "text": "", "text_entities": []},
    message(2, "Ayşe", "Merhaba, akşam geliyor musun?"),
    message(3, "Mehmet", ["Evet, şu adrese bak: ", {"type": "link", "text": "https://ornek.com.tr/yol"},
                          " ve ", {"type": "bold", "text": "saat 8'de"}, " orada ol."]),
    message(4, "Mehmet", "", file=NOT_INCLUDED, media_type="sticker", sticker_emoji="😀", width=512, height=512),
    message(5, "Ayşe", "Şu fotoğrafa bak", photo=NOT_INCLUDED, width=1280, height=960),
    message(6, None, "Bu hesap silinmiş."),
    message(7, "Ayşe", "İlk satır\nikinci satır", reply_to_message_id=6, forwarded_from="Kanal"),
]}

CHAT_TEXT = ("Ayşe: Merhaba, akşam geliyor musun?\n"
             "Mehmet: Evet, şu adrese bak: https://ornek.com.tr/yol ve saat 8'de orada ol.\n"
             "Ayşe: Şu fotoğrafa bak\n"
             "Deleted Account: Bu hesap silinmiş.\n"
             "Ayşe: İlk satır\nikinci satır")

CHANNEL = {"name": "Şiir Kanalı", "type": "public_channel", "id": 1234567890, "messages": [
    {"id": 1, "type": "service", "date": "2021-01-31T21:00:00", "actor": "Şiir Kanalı",
     "actor_id": "channel1234567890", "action": "create_channel", "title": "Şiir Kanalı", "text": "", "text_entities": []},
    message(2, "Şiir Kanalı", "Sessizce akşam iner,\nyüreğime bir serinlik."),
    message(3, "Şiir Kanalı", [{"type": "italic", "text": "Yol"}, "\n\nGittikçe uzar yollar, ", {
        "type": "hashtag", "text": "#şiir"}]),
    message(4, "Şiir Kanalı", "", photo=NOT_INCLUDED, width=496, height=625),
]}


def write(path: Path, value) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


def test_a_chat_export_is_its_conversation_and_a_channel_its_posts(tmp_path: Path):
    chat = list(read_file(write(tmp_path / "chat" / "result.json", CHAT)))
    assert [document.text for document in chat] == [CHAT_TEXT]
    assert chat[0].name.endswith("result.json: Ayşe #2")
    channel = list(read_file(write(tmp_path / "channel" / "result.json", CHANNEL)))
    assert [document.text for document in channel] == ["Sessizce akşam iner,\nyüreğime bir serinlik.",
                                                        "Yol\n\nGittikçe uzar yollar, #şiir"]
    assert [document.name.rsplit(": ", 1)[1] for document in channel] == ["Şiir Kanalı #2", "Şiir Kanalı #3"]


def test_an_account_export_reads_every_chat_and_a_long_chat_is_cut_between_messages(tmp_path: Path):
    group = {"name": "Aile", "type": "private_supergroup", "id": 77, "messages": [
        message(number, "Ali" if number % 2 else "Zeynep", f"{number}. mesaj: " + "söz " * 20)
        for number in range(1, 31)]}
    account = {"about": "Here is the data you requested. Remember: Telegram is ad free, it doesn't use your data "
                        "for ad targeting and doesn't sell it to others.",
               "personal_information": {"user_id": 501, "first_name": "Ayşe", "phone_number": "+90 555 000 0000"},
               "profile_pictures": [{"date": "2020-01-01T00:00:00", "photo": NOT_INCLUDED}],
               "contacts": {"about": "...", "list": [{"first_name": "Mehmet", "phone_number": "+90 555 111 1111"}]},
               "chats": {"about": "...", "list": [CHAT, CHANNEL]}, "left_chats": {"about": "...", "list": [group]}}
    path = write(tmp_path / "DataExport_2024-03-10" / "result.json", account)
    documents = list(read_file(path, max_document_chars=1000))
    assert [document.text for document in documents[:3]] == [CHAT_TEXT, *[d.text for d in read_file(
        write(tmp_path / "channel.json", CHANNEL))]]
    # lines of 94-99 characters (a newline each): ten fit in 1,000, an eleventh does not
    pieces = [document.text.split("\n") for document in documents[3:]]
    assert [len(lines) for lines in pieces] == [10, 10, 10]
    assert [lines[0].split(" söz")[0] for lines in pieces] == ["Ali: 1. mesaj:", "Ali: 11. mesaj:", "Ali: 21. mesaj:"]
    assert pieces[0][1] == "Zeynep: 2. mesaj: " + " ".join(["söz"] * 20)
    assert [document.name.rsplit("#", 1)[1] for document in documents[3:]] == ["1", "11", "21"]


def test_a_folder_with_an_export_reads_it_and_leaves_other_json_out(tmp_path: Path):
    folder = tmp_path / "ChatExport_2024-03-10"
    write(folder / "result.json", CHAT)
    (folder / "photos").mkdir()
    (folder / "photos" / "photo_1@01-03-2024_10-05-00.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(64))
    write(folder / "settings.json", {"theme": "dark", "items": [{"text": "not a chat"}]})
    assert discover([str(folder)], DEFAULT_INCLUDE, ()) == [folder / "result.json"]
    assert [document.text for document in Corpus(CorpusConfig(paths=(str(folder),))).documents()] == [CHAT_TEXT]
    notes = unread_notes([str(folder)], DEFAULT_INCLUDE, ())
    assert [note for note in notes if "result.json" in note] == []
    assert any("settings.json" in note for note in notes)


def test_a_json_data_set_with_messages_of_its_own_is_not_taken_for_telegram(tmp_path: Path):
    data = {"messages": [{"role": "user", "text": "Soru nedir?"}, {"role": "assistant", "text": "Cevap budur."}]}
    path = write(tmp_path / "dialog.json", data)
    assert [document.text for document in read_file(path)] == ["Soru nedir?", "Cevap budur."]


PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"/><title>Exported Data</title>
<link href="css/style.css" rel="stylesheet"/><script src="js/script.js" type="text/javascript"></script></head>
<body onload="CheckLocation();">
<div class="page_wrap">
 <div class="page_header"><div class="content"><div class="text bold">Aile</div></div></div>
 <div class="page_body chat_page">
  <div class="history">
   <div class="message service" id="message-1"><div class="body details">2 January 2024</div></div>
   <div class="message default clearfix" id="message2">
    <div class="pull_left userpic_wrap"><div class="userpic userpic2" style="width: 42px; height: 42px">
     <div class="initials" style="line-height: 42px">AY</div></div></div>
    <div class="body">
     <div class="pull_right date details" title="02.01.2024 15:46:00 UTC+03:00">15:46</div>
     <div class="from_name">
Ayşe Yılmaz
     </div>
     <div class="text">
Merhaba, akşam geliyor musun?<br>Saat <strong>8</strong>'de &amp; <a href="https://ornek.com">burada</a>.
     </div>
    </div>
   </div>
   <div class="message default clearfix joined" id="message3">
    <div class="body">
     <div class="pull_right date details" title="02.01.2024 15:47:00 UTC+03:00">15:47</div>
     <div class="media_wrap clearfix"><div class="media clearfix pull_left media_photo"><div class="fill pull_left">
      </div><div class="body"><div class="title bold">Photo</div><div class="description">Not included, change data
      exporting settings to download.</div><div class="status details">1280x960, 120.5 KB</div></div></div></div>
     <div class="text">
manzara
     </div>
    </div>
   </div>
   <div class="message default clearfix" id="message4">
    <div class="pull_left forwarded userpic_wrap"><div class="userpic userpic5"><div class="initials">M</div>
     </div></div>
    <div class="body">
     <div class="pull_right date details" title="02.01.2024 15:48:00 UTC+03:00">15:48</div>
     <div class="from_name">
Mehmet <span class="details"> via @bot</span>
     </div>
     <div class="reply_to details">In reply to <a href="#go_to_message2" onclick="return GoToMessage(2)">this
      message</a></div>
     <div class="forwarded body">
      <div class="from_name">Haber Kanalı<span class="date details" title="01.01.2024 10:00:00"> 01.01.2024
       10:00:00</span></div>
      <div class="text">İletilen haber metni</div>
     </div>
    </div>
   </div>
   <div class="message service" id="message-5"><div class="body details">Ayşe Yılmaz pinned this message</div></div>
   <div class="message default clearfix" id="message6">
    <div class="body">
     <div class="from_name">Ayşe Yılmaz</div>
     <div class="media_wrap clearfix"><div class="media clearfix pull_left media_sticker"><div class="body">
      <div class="title bold">Sticker</div><div class="status details">😀, 512x512</div></div></div></div>
    </div>
   </div>
  </div>
 </div>
</div>
</body></html>"""


def test_the_html_export_reads_as_the_json_one(tmp_path: Path):
    folder = tmp_path / "ChatExport_2024-01-10"
    folder.mkdir()
    (folder / "messages.html").write_text(PAGE, encoding="utf-8")
    for part in ("css/style.css", "js/script.js", "images/back.png"):
        (folder / part).parent.mkdir(exist_ok=True)
        (folder / part).write_bytes(b"body { margin: 0 }" if part.endswith(".css") else b"\x89PNG\r\n" + bytes(32))
    documents = Corpus(CorpusConfig(paths=(str(folder),))).documents()
    assert [document.text for document in documents] == [
        "Ayşe Yılmaz: Merhaba, akşam geliyor musun?\nSaat 8'de & burada.\nAyşe Yılmaz: manzara\n"
        "Mehmet: İletilen haber metni"]
    channel = PAGE.replace("Mehmet <span", "Ayşe Yılmaz <span")
    (folder / "messages.html").write_text(channel, encoding="utf-8")
    assert [document.text for document in Corpus(CorpusConfig(paths=(str(folder),))).documents()] == [
        "Merhaba, akşam geliyor musun?\nSaat 8'de & burada.\n\nmanzara\n\nİletilen haber metni"]
