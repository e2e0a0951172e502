"""Subtitle files read as their dialogue (``lunalm.corpus.subtitles``)."""

from __future__ import annotations

from pathlib import Path

from lunalm.config import CorpusConfig
from lunalm.corpus import Corpus
from lunalm.corpus.read import read_file
from lunalm.corpus.subtitles import subtitle_text

SRT = """1
00:00:00,660 --> 00:00:02,780
İnternet kullanmaya <i>çok</i> alıştık.

2
00:00:03,120 --> 00:00:07,700
Sürekli kendimiz ve
özel hayatımız hakkındaki bilgileri paylaşıyoruz:

3
00:00:08,000 --> 00:00:09,960
{\\an8}- Evet.
4
00:00:10,000 --> 00:00:11,000
- Evet.

"""


def test_a_subrip_file_is_a_line_per_cue_without_numbers_times_or_tags():
    """A cue's two lines are one (they break at the screen's width); a cue the file forgot to end with an
    empty line loses the next cue's number, not its text; the same line said twice stays twice."""
    assert subtitle_text(SRT, ".srt") == ("İnternet kullanmaya çok alıştık.\nSürekli kendimiz ve özel hayatımız "
                                          "hakkındaki bilgileri paylaşıyoruz:\n- Evet.\n- Evet.")


def test_a_subrip_file_in_cp1254_with_crlf_reads_as_its_text(tmp_path: Path):
    path = tmp_path / "film.srt"
    path.write_bytes(SRT.replace("\n", "\r\n").encode("cp1254"))
    assert [d.text for d in read_file(path)] == [subtitle_text(SRT, ".srt")]


YOUTUBE_VTT = """WEBVTT
Kind: captions
Language: tr

NOTE made by a downloader

STYLE
::cue { color: white }

00:00:00.000 --> 00:00:02.310 align:start position:0%
 
merhaba<00:00:00.510><c> arkadaşlar</c>

00:00:02.310 --> 00:00:02.320 align:start position:0%
merhaba arkadaşlar
 

00:00:02.320 --> 00:00:05.000 align:start position:0%
merhaba arkadaşlar
bugün<00:00:02.800><c> size</c><00:00:03.100><c> bir</c><00:00:03.400><c> tarif</c>

00:00:05.000 --> 00:00:05.010 align:start position:0%
bugün size bir tarif
 
"""


def test_youtube_captions_keep_each_line_once_and_drop_word_times():
    """YouTube's captions roll: each cue shows the last one's line again above the new one, and every word
    carries its own time."""
    assert subtitle_text(YOUTUBE_VTT, ".vtt") == "merhaba arkadaşlar\nbugün size bir tarif"


ASS = """[Script Info]
Title: Bölüm 1
ScriptType: v4.00+

[V4+ Styles]
Format: Name, Fontname, Fontsize, PrimaryColour
Style: Default,Arial,20,&H00FFFFFF

[Events]
Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text
Comment: 0,0:00:00.00,0:00:01.00,Default,,0,0,0,,çevirmen notu
Dialogue: 0,0:00:01.00,0:00:03.00,Default,,0,0,0,,{\\i1}Merhaba,{\\i0} dünya!\\NNasılsın?
Dialogue: 0,0:00:03.00,0:00:05.00,Default,Ali,0,0,0,,İyiyim, sağ ol.
"""


def test_a_fansub_file_is_its_dialogue_events():
    assert subtitle_text(ASS, ".ass") == "Merhaba, dünya! Nasılsın?\nİyiyim, sağ ol."


def test_a_folder_of_subtitles_is_read_by_default(tmp_path: Path):
    """It was "directory has no files matching … it holds .srt files"."""
    (tmp_path / "bolum1.srt").write_text(SRT, encoding="utf-8")
    (tmp_path / "bolum2.vtt").write_text(YOUTUBE_VTT, encoding="utf-8")
    (tmp_path / "bolum3.ass").write_text(ASS, encoding="utf-8")
    documents = list(Corpus(CorpusConfig(paths=(str(tmp_path),))).documents())
    assert [Path(d.source).name for d in documents] == ["bolum1.srt", "bolum2.vtt", "bolum3.ass"]
    assert documents[2].text == "Merhaba, dünya! Nasılsın?\nİyiyim, sağ ol."
