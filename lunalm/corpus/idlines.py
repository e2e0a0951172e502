"""Line corpora that put an ID before each line's text: ``ID<TAB>text``.

The Leipzig Corpora Collection's ``tur_news_2020_10K-sentences.txt`` numbers its sentences
(``1<TAB>sentence``), ParlaMint's ``.txt`` files name each utterance
(``tbmm-2018-11-01sit01spe0001par0001<TAB>text``). Read as text, every line began with its ID, and the model
learned to write them. A file is taken for one only when every non-empty line of its head is an ID (one field
with a digit and no space, all of them different: a label column repeats its values), a tab and text with a
letter; prose indented with tabs, a two-column poem or word list, and a table of labels are read as they are.
"""

from __future__ import annotations

import re
from pathlib import Path

_ID = r"\d+|[^\W_][\w.:/#-]*\d[\w.:/#-]*[^\W_]"  # 1, tbmm-2018-11-01sit01spe0001par0001; not "1." or "a)"
_LINE = re.compile(rf"({_ID})\t([^\t]*[^\W\d_][^\t]*)")  # the text: one field, with a letter
_STRIP = re.compile(rf"^(?:{_ID})\t(?=[^\t\n]*$)", re.MULTILINE)
MIN_LINES = 3
HEAD_CHARS = 1 << 16  # of a file's text looked at


def id_column(head: str) -> bool:
    """Whether ``head`` (a file's text, or its first part, whose last line may be cut short) is ``ID<TAB>text``
    lines."""
    rows = [line.rstrip("\r") for line in head[:HEAD_CHARS].split("\n")[:-1] if line.strip()]
    matches = [_LINE.fullmatch(row) for row in rows]
    if len(rows) < MIN_LINES or not all(matches):
        return False
    return len({match.group(1) for match in matches}) == len(rows)


def numbered(head: str) -> bool:
    """Whether the ``ID<TAB>text`` lines of ``head`` are numbered (``1<TAB>…``): Leipzig's sentences, each one
    on its own and sorted by its first letters, so each is a document (``numbered_lines``). Named lines
    (ParlaMint's utterances) follow one another in a session and stay one text."""
    return all(line.split("\t", 1)[0].isdigit() for line in head[:HEAD_CHARS].split("\n")[:-1] if line.strip())


def numbered_lines(text: str) -> list[tuple[str, str]]:
    """(number, text) of each non-empty line of ``text``; a line without a number is its own text."""
    rows = []
    for line in text.split("\n"):
        number, tab, rest = line.rstrip("\r").partition("\t")
        if tab and number.isdigit() and rest.strip():
            rows.append((number, rest))
        elif line.strip():
            rows.append(("", line.rstrip("\r")))
    return rows


def strip_ids(text: str) -> str:
    """``text`` with the ID and tab taken off the start of each ``ID<TAB>text`` line (whole lines: a block ends at
    a newline); other lines are kept as they are."""
    return _STRIP.sub("", text)


def first_ids(head: str, count: int = 2) -> list[str]:
    """The IDs of the first ``count`` lines, for a note."""
    return [line.split("\t", 1)[0] for line in head.split("\n") if line.strip()][:count]


# The files of a Leipzig Corpora Collection download beside its ``-sentences.txt``: the word list (id, word,
# frequency), co-occurrences (word ids and counts), inverse lists (word or source id, sentence id), the sources
# (id, URL, date) and the meta data (``8<TAB>build date<TAB>2024-12-05``). All are named .txt; read as text, they
# were 80 % of nld_news_2023_10K's characters, numbers and URLs.
_LEIPZIG_SIDE = re.compile(r".+-(words|co_n|co_s|inv_w(?:_\d+)?|inv_so|sources|meta)\.txt", re.IGNORECASE)
_NUMBERED = re.compile(rb"\d+\t")


def leipzig_side_file(path: Path) -> bool:
    """Whether ``path`` is one of a Leipzig download's files other than its sentences: by its name, and by its
    first line starting with a number and a tab (a ``my-words.txt`` of prose is read)."""
    if not _LEIPZIG_SIDE.fullmatch(path.name):
        return False
    try:
        with open(path, "rb") as handle:
            return _NUMBERED.match(handle.readline(256).lstrip(b"\xef\xbb\xbf")) is not None
    except OSError:
        return False  # reading it says what is wrong
