"""Subtitle files read as their dialogue: SubRip ``.srt``, WebVTT ``.vtt`` (YouTube's captions) and Advanced
SubStation ``.ass``/``.ssa`` (fansubs). A cue's lines are one line of text; cue numbers, time codes, styling
tags, WebVTT's notes and styles, and the repeated lines of rolling captions are left out. Read as text
before, an ``.srt`` was one time code for every line of dialogue.
"""

from __future__ import annotations

import re

SUBTITLE_SUFFIXES = (".srt", ".vtt", ".ass", ".ssa")

_TIMING = re.compile(r"^\s*(\d+:)?\d{1,2}:\d{2}[,.]\d{1,3}\s*-->\s*(\d+:)?\d{1,2}:\d{2}[,.]\d{1,3}")
_TAG = re.compile(r"<[^>\n]*>|\{\\[^}\n]*\}")  # <i>, <font …>, <c.colour>, <00:00:01.500>; {\an8}, {\i1}


def subtitle_text(text: str, suffix: str) -> str:
    """The dialogue of a subtitle file (``suffix``: one of SUBTITLE_SUFFIXES), a cue per line."""
    cues = _ass_cues(text) if suffix in (".ass", ".ssa") else _timed_cues(text, rolling=suffix == ".vtt")
    return "\n".join(line for line in (" ".join(_TAG.sub("", cue).split()) for cue in cues) if line)


def _timed_cues(text: str, rolling: bool) -> list[str]:
    """SubRip and WebVTT: the lines after each time code up to an empty line, joined (a cue's line breaks
    are the screen's width, not the sentence's). ``rolling``: WebVTT captions as YouTube writes them show
    the last cue's lines again above the new one, and only the new lines are kept."""
    cues: list[str] = []
    current: list[str] | None = None
    shown: set[str] = set()
    for line in text.splitlines():
        if _TIMING.match(line):
            if current:  # no empty line before it; a SubRip cue number then ends the cue before
                shown = _close(cues, current[:-1] if current[-1].strip().isdigit() else current, shown, rolling)
            current = []
        elif current is None:
            continue  # a cue number, the WEBVTT header, a NOTE or STYLE block
        elif not line:  # a line of spaces is a caption's (YouTube's first line is one)
            shown = _close(cues, current, shown, rolling)
            current = None
        else:
            current.append(line)
    if current:
        _close(cues, current, shown, rolling)
    return cues


def _close(cues: list[str], lines: list[str], shown: set[str], rolling: bool) -> set[str]:
    """Add a cue's lines (those not on screen already, where ``rolling``); returns what it shows."""
    plain = [_TAG.sub("", line).strip() for line in lines]
    fresh = [line for line, bare in zip(lines, plain) if not (rolling and bare in shown)]
    if fresh:
        cues.append(" ".join(fresh))
    return set(plain)


def _ass_cues(text: str) -> list[str]:
    """Advanced SubStation: the text field of each ``Dialogue:`` event (the tenth; commas after it are
    the text's own), ``\\N`` line breaks made spaces."""
    cues = []
    for line in text.splitlines():
        if line.startswith("Dialogue:"):
            fields = line.split(",", 9)
            if len(fields) == 10:
                cues.append(re.sub(r"\\[Nnh]", " ", fields[9]))
    return cues
