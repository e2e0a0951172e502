"""WhatsApp's "Export chat" text read as the conversation (``lunalm.corpus.whatsapp``): a ``Name: text`` line a
message, without stamps, WhatsApp's notices, placeholders of media left out, and deleted messages."""

from __future__ import annotations

from pathlib import Path

from lunalm.config import DEFAULT_INCLUDE, CorpusConfig
from lunalm.corpus import Corpus
from lunalm.corpus.discover import unread_notes
from lunalm.corpus.whatsapp import chat_lines, is_chat

LRM, NNBSP = "\u200e", "\u202f"

ANDROID_TR = ("\ufeff2.01.2024 15:45 - Mesajlar ve aramalar uçtan uca şifrelidir. Bu sohbetin dışındaki hiç kimse, "
              "WhatsApp bile bu mesajları okuyamaz ve dinleyemez.\n"
              "2.01.2024 15:46 - Ali Veli: bu akşam geliyor musun\n"
              "2.01.2024 15:47 - Caner Saka: gelirim ya\n"
              "saat 8 gibi orada olurum\n"
              "2.01.2024 15:48 - Ali Veli: <Medya dahil edilmedi>\n"
              f"2.01.2024 15:49 - {LRM}Ayşe 🌸: {LRM}IMG-20240102-WA0001.jpg (dosya ekli)\n"
              "manzaraya bak\n"
              "2.01.2024 15:50 - Caner Saka: Bu mesaj silindi\n"
              "2.01.2024 15:51 - Ali Veli gruba Ayşe 🌸 kişisini ekledi\n"
              "13.01.2024 9:10 - Ayşe 🌸: tamam görüşürüz <Bu mesaj düzenlendi>\n"
              "13.01.2024 09:11 - +90 532 000 00 00: saat: 10:30, yer: Kadıköy\n")
ANDROID_TR_TEXT = ("Ali Veli: bu akşam geliyor musun\n"
                   "Caner Saka: gelirim ya\n"
                   "saat 8 gibi orada olurum\n"
                   "Ayşe 🌸: manzaraya bak\n"
                   "Ayşe 🌸: tamam görüşürüz\n"
                   "+90 532 000 00 00: saat: 10:30, yer: Kadıköy")

ANDROID_EN = (f"1/2/24, 3:45{NNBSP}PM - Messages and calls are end-to-end encrypted. No one outside of this chat, "
              "not even WhatsApp, can read or listen to them. Tap to learn more.\n"
              f"1/2/24, 3:46{NNBSP}PM - Leyla: salam, necəsən?\n"
              f"1/2/24, 3:47{NNBSP}PM - Murad: yaxşıyam, sən necəsən?\n"
              f"1/2/24, 3:48{NNBSP}PM - Murad: <Media omitted>\n"
              f"1/2/24, 3:49{NNBSP}PM - Leyla: This message was deleted\n"
              f"1/2/24, 3:50{NNBSP}PM - Leyla: sabah görüşək <This message was edited>\n"
              f'1/2/24, 3:51{NNBSP}PM - Leyla changed the subject from "Bakı: səfər" to "Səfər"\n'
              "1/2/24, 10:05 am - Murad: null\n")

IOS = (f"[02.01.2024, 15:45:13] Gezi: {LRM}Mesajlar ve aramalar uçtan uca şifrelidir.\n"
       f"[02.01.2024, 15:45:20] Gezi: {LRM}Ali grubu oluşturdu\n"
       "[02.01.2024, 15:46:00] Ali: yarın kaçta çıkıyoruz?\n"
       "[02.01.2024, 15:46:30] Zeynep: sabah yedide\n"
       "erken olsun\n"
       f"[02.01.2024, 15:47:00] Ali: {LRM}görüntü dahil edilmedi\n"
       "[02.01.2024, 15:48:00] Zeynep: <ekli: 00000005-PHOTO-2024-01-02-15-48-00.jpg>\n"
       f"[13.01.2024, 09:05:00] ~{NNBSP}Deniz: tamam\n"
       f"[13.01.2024, 09:06:00] Ali: {LRM}Sesli arama, {LRM}2 dk\n")


def test_exports_of_android_and_ios_are_their_conversation():
    assert is_chat(ANDROID_TR) and is_chat(ANDROID_EN) and is_chat(IOS)
    assert chat_lines(ANDROID_TR.lstrip("\ufeff")).strip("\n") == ANDROID_TR_TEXT
    assert chat_lines(ANDROID_EN).strip("\n") == "Leyla: salam, necəsən?\nMurad: yaxşıyam, sən necəsən?\n" \
                                                 "Leyla: sabah görüşək"
    assert chat_lines(IOS).strip("\n") == "Ali: yarın kaçta çıkıyoruz?\nZeynep: sabah yedide\nerken olsun\nDeniz: tamam"


def test_text_with_dates_in_it_is_no_chat():
    diary = ("12.03.2024 tarihinde toplantı yapıldı.\n"
             "12.03.2024 14:00 - 15:00 arası sunum, ardından soru cevap.\n"
             "Katılımcılar: Ali, Veli, Ayşe.\n"
             "Toplantı notları aşağıdadır.\n"
             "13.03.2024 10:00 - Ali: rapor hazır\n")
    assert not is_chat(diary)
    assert not is_chat("Ali: merhaba\nVeli: selam\nAli: nasılsın\n")


def test_a_folder_of_exports_trains_on_the_conversation_and_a_note_says_so(tmp_path: Path):
    (tmp_path / "WhatsApp Sohbeti - Caner.txt").write_text(ANDROID_TR, encoding="utf-8")
    (tmp_path / "notlar.txt").write_text("2.01.2024 günü yazıldı.\nBu bir günlük.\n", encoding="utf-8")
    documents = Corpus(CorpusConfig(paths=(str(tmp_path),))).documents()
    assert sorted(document.text.strip("\n") for document in documents) == sorted(
        ["2.01.2024 günü yazıldı.\nBu bir günlük.", ANDROID_TR_TEXT])
    notes = [note for note in unread_notes([str(tmp_path)], DEFAULT_INCLUDE, ()) if "WhatsApp" in note]
    assert len(notes) == 1 and "1 file(s) (WhatsApp Sohbeti - Caner.txt)" in notes[0]
