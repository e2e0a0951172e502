"""Flagging text that is not prose: indexes, tables, lists of names, boilerplate.

A language model learns whatever it is fed; a 20 KB page-number index ("(C-II)103, (C-II)108, …", which
the built-in corpus contains inside one speech) teaches it nothing useful and skews every statistic.
Text is cut into *units* (lines; long lines into sentences; long sentences into ~400-character
pieces, so an index inside a paragraph is still found) and each unit is judged by simple, explainable
rules. A sentence is removed whole or not at all: its pieces vote. ``--filter`` removes the flagged units.
Boilerplate is a unit (a line, or a sentence inside one) that many documents share; ``prime`` counts them
over a sample first, so even the first documents lose theirs. A shared unit that is a whole sentence of
prose (a syndicated news story's, a headline with its full stop) is duplicated text, not boilerplate: its
first copy stays, as de-duplication keeps one. Measured by ``bench/bench_prose.py``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from lunalm.corpus.clean import BLANK_LINE

MAX_UNIT = 400  # characters: longer sentences are judged piece by piece
RULES_VERSION = 14  # part of the corpus fingerprint: a change of these rules re-tokenises cached corpora
# Front matter of a Markdown page (Jekyll, Hugo, a blog's posts): "---" (YAML) or "+++" (TOML) lines around
# "key: value" lines at the very start. A real blog of Turkish stories had "---\ntitle: …\ndate:\ndp: \n---"
# on every page, which training would learn as text.
_FRONT_MATTER = re.compile(r"\A(---|\+\+\+)[ \t]*\n((?:[^\n]*\n){0,20000}?)\1[ \t]*(?:\n|\Z)")
_BLOCK_SCALAR = re.compile(r":[ \t]*[|>][-+0-9]*[ \t]*$")  # "entry_content: |": the indented lines below are text
_FRONT_MATTER_LINE = re.compile(r"^(?:\s*$|\s*[\w.-]+\s*[:=]|\s*-\s|[ \t])")
# A block of code in Markdown or HTML: a fenced block (``` or ~~~), <pre>…</pre>, Jekyll's {% highlight %}.
# Removed whole: judged line by line, a PHP class in a real blog lost its code and kept "{", "{ }" and
# "{ // Form doğrulaması }" between its Turkish paragraphs.
_CODE_BLOCK = re.compile(r"^[ \t]{0,3}(```|~~~)[^\n]*\n(?:[^\n]*\n)*?[ \t]{0,3}\1[ \t]*$\n?|"
                         r"<pre\b[^>]*>(?s:.*?)</pre>\n?|"
                         r"\{%-?[ \t]*highlight\b(?s:.*?)\{%-?[ \t]*endhighlight[ \t]*-?%\}\n?",
                         re.MULTILINE | re.IGNORECASE)
# A line of HTML tags and nothing else: <div align="center">, </div>, <br>, <details><summary>…</summary>
# keeps its text ("Ayrıntılar" stays: only whole lines of tags go). Pandoc's Markdown escapes them, with a
# backslash ending a line it breaks: "\</Grid\>", "\<Button x:Name="Dugme"\>\</Button\>\" (a converted blog).
_TAGS_LINE = re.compile(r"^[ \t]*(?:\\?</?[A-Za-z][\w:-]*(?:\s[^<>]*)?/?\\?>[ \t]*)+\\?[ \t]*$\n?", re.MULTILINE)
# An HTML tag inside a line of text, of an element HTML defines (so "<Ali>" or "x<y" are left alone) or a
# namespaced one (Word's "<o:p>"): the tag goes and the text it marks stays ("<b>Ankara</b>'da" ->
# "Ankara'da"). Scraped pages keep them: a dataset of Turkish forum entries had "<br/>" and "<a href=…>"
# through its text, RSS news items "<a href=""><img src=… alt='…' /></a>" before their first sentence. A tag
# that breaks the line in a browser becomes a line break where it stood between two words ("dize<br>dize").
# Attributes are HTML's: names, then values quoted (where a ">" or a line break may stand: alt texts hold
# whole summaries) or bare; OCR'd text "<a cl ahem RCM … hamedans''," is no tag.
_BREAKING = ("br|p|div|li|ul|ol|dl|dt|dd|tr|td|th|table|tbody|thead|tfoot|h[1-6]|hr|blockquote|section|article|"
             "center|header|footer|nav|aside|main|figure|figcaption|caption|details|summary|address|form|fieldset|"
             "iframe|video|audio|object|embed|picture|svg|canvas|map|area|frame|frameset|body|html|head|title|meta|"
             "link|base")
_INLINE = ("a|abbr|b|bdi|bdo|big|blink|button|cite|code|data|del|dfn|em|font|i|img|input|ins|kbd|label|legend|"
           "mark|marquee|nobr|option|optgroup|param|q|ruby|rp|rt|s|samp|select|small|source|span|strike|strong|sub|"
           "sup|textarea|time|track|tt|u|var|wbr|ref|[a-z][a-z0-9]{0,9}:[a-z][\\w.-]{0,30}")
_ATTRIBUTES = (r"""(?:\s+[A-Za-z_:@][\w:.@-]{0,60}"""
               r"""(?:\s*=\s*(?:"[^"]{0,2000}"|'[^']{0,2000}'|[^\s"'<>=`]{1,2000}))?){0,40}""")
_INLINE_TAG = re.compile(rf"</?(?:({_BREAKING})|{_INLINE})(?=[\s/>]){_ATTRIBUTES}\s*/?>", re.IGNORECASE)
# An element with no content (an image, a form field, a media source) ends at its first ">" whatever its
# quotes: a Turkish alt text breaks them with its apostrophes (alt='KOSGEB'den aldığı destekle …'), and 68 of
# 1,634 news items of a real crawl kept their image tags for it.
_VOID_TAG = re.compile(r"<(?:img|input|source|embed|param|track|area|meta|link|base)(?=[\s/>])[^<>]{0,3000}>",
                       re.IGNORECASE)
# A page's wikitext (a Wikipedia dump read as it is, not extracted): a link keeps the words it shows
# ("[[vəziyyəti|vəziyyəti]]" -> "vəziyyəti"), a file or category link and a template ("{{Məlumat qutusu
# …}}", one level of nesting) go whole, bold and italic quotes and a heading's "==" go. Only in a text that
# has wiki links: "''" alone is an OCR'd quotation mark (the English Nutuk's "hamedans''").
_WIKI_LINK = re.compile(r"\[\[(?:([^\[\]|\n]{1,200})\|)?([^\[\]\n]{1,300})\]\]")
_WIKI_NAMESPACE = re.compile(r"(?:file|image|category|media|dosya|resim|kategori|şəkil|fayl|kateqoriya)\s*:",
                             re.IGNORECASE)
_WIKI_TEMPLATE = re.compile(r"\{\{(?:[^{}]|\{\{[^{}]{0,2000}\}\}){0,5000}\}\}")
_WIKI_QUOTES = re.compile(r"(?<!')('{2,5})(?=[^\s'])([^'\n]{1,300}?)(?<=[^\s'])\1(?!')")
_WIKI_HEADING = re.compile(r"^(={1,6})[ \t]*(?=\S)(.{1,200}?)[ \t]*\1[ \t]*$", re.MULTILINE)
# Elements whose content is no text of the page, removed with it: scripts, styles, what a page shows
# without scripts, a wiki's footnotes (<ref>{{Kitab istinadı|…}}</ref>), and comments ("<!-- reklam -->").
_HIDDEN = re.compile(rf"<(script|style|noscript|ref)(?=[\s/>]){_ATTRIBUTES}\s*>(?s:.){{0,20000}}?</\1\s*>|"
                     r"<!--(?s:.){0,20000}?-->", re.IGNORECASE)
# A line that is only a number, a page's ("37", "- 328 -", "[12]"): a book converted from PDF keeps them
_PAGE_NUMBER = re.compile(r"^[ \t]*[-–—(\[]?[ \t]*\d{1,4}[ \t]*[-–—)\]]?\.?[ \t]*$\n?", re.MULTILINE)
# A sentence ends at . ! ? … followed by a space or the end ("json.decoder" and "3.14" are not ends), or at
# a newline.
_SENTENCE = re.compile(r"[^\n]*?(?:[.!?…]+(?:\s+|\Z)|\n|\Z)")
_KEYWORD_START = re.compile(r"^(?:def|class|return|import|from|if|elif|else|for|while|try|except|finally|with|"
                            r"raise|yield|lambda|assert|pass|break|continue|const|let|var|function|public|private|"
                            r"static)\b")
_CODE_SIGNS = (
    _KEYWORD_START,
    re.compile(r"[\w\])]\s*(?:[-+*/%|&^]|//|<<|>>)?=\s*[^=\s]"),  # assignment (not ==)
    # a call or definition: name( without a space, the name in ASCII ("Başkan(Guvernör)" is a statute
    # missing its space, not a call)
    re.compile(r"(?<![^\W\d_])[A-Za-z0-9_]+\("),
    re.compile(r"\b[a-z]+_\w+|\b__\w+|\w\.\w+\(|\bself\.|\bthis\."),  # snake_case, dotted calls
    re.compile(r"[\[\]{};]|[:({,\\]$"),  # brackets, braces, a line ending like code
    # dotted names: re.VERBOSE, zlib.crc32; ASCII, and no letter either side: "düzenlenecek.Toplantı" is a
    # sentence end missing its space (a real news text), not code, and so is a lower-case word glued to a
    # capitalised one ("verilir.Hizmet", a statute's article)
    re.compile(r"(?<![^\W\d_])(?![a-z]+\.[A-Z][a-z]+(?![^\W\d_]))[A-Za-z_][A-Za-z0-9_]+\.[A-Za-z_][A-Za-z0-9_]+"
               r"(?![^\W\d_])"),
    re.compile(r"^[a-z_][^.!?…]*$"),  # starts in lower case and never ends a sentence
)
_TERMINAL = ".!?…:;\"'”’»)"
_PLAIN_WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*|\d+")  # a word of letters, or a number
PLAIN_PROSE_WORDS = 6  # a line of this many plain words is prose even if it starts like code ("for a time")
_QUOTES = "\"'“”‘’«»"  # quotation marks are ordinary in prose, never count them as symbols
# Plain words (_PLAIN_WORD with quotes or punctuation at either end) joined by single spaces: one match
# judges a whole line instead of one match per word (the code test runs on every sentence of a corpus).
_WORD_ENDS = "[" + re.escape(_QUOTES + ".,;:!?…()-") + "]*"
_PLAIN_LINE = re.compile(f"{_WORD_ENDS}(?:{_PLAIN_WORD.pattern}){_WORD_ENDS}"
                         f"(?: {_WORD_ENDS}(?:{_PLAIN_WORD.pattern}){_WORD_ENDS})*")


@dataclass(frozen=True, kw_only=True)
class ProseRules:
    """Thresholds for non-prose units (shares of the unit's non-space characters)."""

    max_digit_share: float = 0.25  # more digits than this: a number table or an index
    max_symbol_share: float = 0.25  # more punctuation/symbols than this: markup, tables, separators
    min_letter_share: float = 0.5  # fewer letters than this: not language
    max_numbered_words: float = 0.3  # more words holding a digit than this ("(C-II)248,"): an index
    min_numbered_words: int = 8  # ... but only once there are this many (short dated sentences are prose)
    table_separators: int = 3  # this many '|' or 2 tabs in one line: a table row
    short_words: int = 3  # a line of at most this many words without final punctuation is "short"
    short_run: int = 3  # this many short lines in a row: a list or an index
    repeat_limit: int = 3  # a unit found in this many documents: boilerplate ...
    repeat_min_sentence: int = 25  # ... if it has no final punctuation, or is at least this long
    repeat_memory: int = 200_000  # distinct units remembered for repeat counting (bounds memory)
    code_signs: int = 2  # this many signs of code (assignment, call, snake_case, keyword start …): code


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    reason: str  # "digits" | "symbols" | "no-letters" | "references" | "table" | "list" | "repeated" | "code"
    #             | "front-matter" | "markup" | "markup-break" (an HTML tag in a line; the latter breaks it)


def sentences(text: str) -> Iterator[tuple[int, int]]:
    """Yield (start, end) of sentences (or lines) that tile ``text`` exactly."""
    for match in _SENTENCE.finditer(text):
        if match.start() < match.end():
            yield match.span()


def _pieces(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    """One sentence in pieces of at most MAX_UNIT characters, cut at spaces."""
    while end - start > MAX_UNIT:
        cut = text.rfind(" ", start + MAX_UNIT // 2, start + MAX_UNIT) + 1 or start + MAX_UNIT
        yield start, cut
        start = cut
    yield start, end


def units(text: str) -> Iterator[tuple[int, int]]:
    """Yield (start, end) of units (sentences, long ones in pieces) that tile ``text`` exactly."""
    position = 0
    for start, end in sentences(text):
        for piece in _pieces(text, start, end):
            yield piece
        position = end
    assert position == len(text) or not text, "units must tile the text"


def _sentence_like(unit: str, words: list[str]) -> bool:
    """Ends like a sentence and is mostly words: prose, however many numbers it holds
    ("Yen 144'ten 131'e yükseldi.", "1 milyon 376 bin 588'i kadın.")."""
    alphabetic = sum(sum(c.isalpha() for c in w) >= 2 and not any(c.isdigit() for c in w) for w in words)
    ending = unit.rstrip().rstrip(_QUOTES + ")")
    return ending.endswith(tuple(".!?…")) and len(words) >= 4 and alphabetic >= 0.5 * len(words)


def _verse_line(words: list[str]) -> bool:
    """A line of a poem or a song, not an item of a list: a word after the first starts in lower case ("ay
    ışığına batmış", "Qəlbim indi yox"); names, titles and index entries capitalise theirs."""
    return any(word[:1].islower() for word in words[1:])


def _plain_words(words: list[str]) -> bool:
    """Two or more words, each letters (an apostrophe or hyphen inside allowed) or a number, apart from
    punctuation at their ends: a line of verse that starts in lower case and ends in a comma ("vazgeçtim
    toprak olmaktan,"), or a hard-wrapped line of prose, has no sign of code in it."""
    words = [word for word in words if word.strip(_LOOSE_MARKS)]  # a comma or dash standing alone ("… ) , …")
    return len(words) >= 2 and _PLAIN_LINE.fullmatch(" ".join(words)) is not None


_LOOSE_MARKS = ",;:-–—"


def _is_code(unit: str, words: list[str], rules: ProseRules) -> bool:
    line = unit.strip()
    keyword = _KEYWORD_START.search(line)
    if _plain_words(words) and (len(words) >= PLAIN_PROSE_WORDS or not keyword or not line.isascii()
                                or (keyword.group() in ("var", "let") and len(words) >= 3)):
        return False  # a keyword start ("from os import path") counts only in a short ASCII line: "for a time,
        #               he" is English, "var git yokluğa haydi," Turkish ("var": there is), neither is code, nor
        #               a tweet's "var oyuna gelmeyelim" (JavaScript's "var x" names one variable, then "=")
    if len(words) == 1 and not keyword and _PLAIN_LINE.fullmatch(line):
        return False  # one word of verse ("bileklerimizi,", "kıvranıyor;"): no sign of code in it
    signs = 0
    for sign in _CODE_SIGNS:
        signs += bool(sign.search(line))
        if signs >= rules.code_signs + 1:
            return True
    return signs >= rules.code_signs and not _sentence_like(line, words)


def _judge(unit: str, rules: ProseRules, whole: bool = True) -> str | None:
    """Why ``unit`` is not prose, or None. ``whole``: the unit is a whole sentence or line (a piece of a
    long sentence starts in lower case and ends anywhere, so it is not judged as code)."""
    words = unit.split()
    # Characters that count: neither space nor quotation mark (neither is a letter or a digit). Counted
    # with C-level loops: this function judges every sentence of the corpus, and a 300 MB folder has ~3M.
    counted = sum(map(len, words)) - sum(map(unit.count, _QUOTES))
    if whole and counted >= 8 and _is_code(unit, words, rules):
        return "code"
    if counted < 20:
        return None  # too little to judge ("“Oku” dedi."); runs of short lines are caught as lists
    letters = sum(map(str.isalpha, unit))
    digits = sum(map(str.isdigit, unit))
    if unit.count("|") >= rules.table_separators or unit.strip().count("\t") >= 2:  # not an indent
        return "table"
    if digits > rules.max_digit_share * counted and not _sentence_like(unit, words):
        return "digits"
    if counted - letters - digits > rules.max_symbol_share * counted:
        return "symbols"
    if letters < rules.min_letter_share * counted:
        return "no-letters"
    numbered = sum(any(c.isdigit() for c in word) for word in words) if digits else 0
    if numbered >= rules.min_numbered_words and numbered > rules.max_numbered_words * len(words) \
            and not _sentence_like(unit, words):
        return "references"
    return None


@dataclass
class Judged:
    """What one document's text says about itself, apart from the corpus's counts: worked out on its own
    (in a worker process, for a large corpus) and handed to ``ProseDetector.judged_spans`` in corpus order."""

    spans: list[Span]  # sentences and lines judged on their own
    front: list[Span]  # the page's front matter
    keys: set[str]  # the document's sentences as counted for boilerplate (4 to 300 characters)
    lines: list[tuple[int, int, list[tuple[int, int, str]], bool, bool]]  # each non-empty line: start, end,
    #     its sentences (start, end, key), whether it has 3 or more words, whether the next line goes on
    #     with the line's last sentence (it starts with a small letter: hard-wrapped text)


def judge(text: str, rules: ProseRules) -> Judged:
    """Everything about ``text`` that needs no other document: the stateless half of ``ProseDetector.spans``."""
    markup = _markup(text)  # found once: removed below, and blanked for judging
    bare = _blanked(text, markup)  # judged as a reader sees it; the spans' offsets are the text's
    units = _after_blanks(bare, sentences(bare)) if markup else sentences(bare)
    flagged = [span for start, end in units for span in _judge_sentence(bare, start, end, rules)]
    lines, position = [], 0
    for line in text.splitlines(keepends=True):  # boilerplate is counted on the words a reader sees
        start, position = position, position + len(line)
        shown = bare[start:position]
        if shown.strip():
            following = bare[position:position + 40].lstrip(" \t")[:1]
            lines.append((start, position, [(start + s, start + e, _key(shown[s:e])) for s, e in sentences(shown)],
                          len(shown.split()) >= 3, following.isalpha() and following.islower()))
    blocks = _blocks(bare) + (_emptied_lines(text, bare) if markup else [])  # lines of tags once the tags go
    return Judged(flagged + _line_spans(bare, rules) + blocks + markup, _front_matter(text), _keys(bare), lines)


def _emptied_lines(text: str, bare: str) -> list[Span]:
    """Lines that only markup kept from being blank (``<span style="color: gray">\u00a0\u00a0</span>``, a
    converted blog's coloured code listing): whole, with their line break."""
    found, position = [], 0
    for line in bare.splitlines(keepends=True):
        start, position = position, position + len(line)
        if not line.strip() and text[start:position].strip():
            found.append(Span(start, position, "markup"))
    return found


def _wiki_markup(text: str) -> list[tuple[int, int]]:
    """(start, end) of the wikitext markup in ``text`` (``_WIKI_LINK`` and the rest); [] for a text without
    wiki links."""
    if "[[" not in text or "]]" not in text:
        return []
    found = []
    for match in _WIKI_LINK.finditer(text):
        if _WIKI_NAMESPACE.match(match.group(1) or match.group(2)):  # with the space after it
            found.append((match.start(), match.end() + (text[match.end():match.end() + 1] in (" ", "\t"))))
        else:  # "[[target|" and "]]": the shown words stay
            found += [(match.start(), match.start(2)), (match.end(2), match.end())]
    found += [(match.start(), match.end()) for match in _WIKI_TEMPLATE.finditer(text)]
    for pattern in (_WIKI_QUOTES, _WIKI_HEADING):
        for match in pattern.finditer(text):
            found += [(match.start(1), match.start(2)), (match.end(2), match.end())]
    return found


def _after_blanks(text: str, units) -> Iterator[tuple[int, int]]:
    """Each unit from its first character that is no space: a tag blanked before a sentence made it look
    longer than it is (a news item's 200-character image tag sent its first sentence to be judged in pieces,
    and a piece full of numbers was dropped as a list of references)."""
    for start, end in units:
        stripped = len(text[start:end]) - len(text[start:end].lstrip())
        if start + stripped < end:
            yield start + stripped, end


# An image's options left in text extracted from a wiki ("250px|thumb|left|1060–1072-ci illərdə …", 38 in
# 150 KB of Azerbaijani Wikipedia sentences): the options go, the caption after them stays. A run of them
# counts only with a size or a thumbnail in it ("left|right" alone may be a table's).
_IMAGE_OPTION = r"(?:thumb(?:nail)?|frame(?:less)?|border|left|right|cent(?:er|re)|none|upright(?:=[\d.]+)?|mini|" \
                r"miniatur|küçükresim|sol|sağ|orta|\d+(?:x\d+)?px)\|[ \t]*"
_IMAGE_OPTIONS = re.compile(rf"(?<![^\s(\[])(?=(?:{_IMAGE_OPTION})*?(?:thumb|mini|küçükresim|\d+px))"
                            rf"(?:{_IMAGE_OPTION})+")


def _markup(text: str) -> list[Span]:
    """Wikitext markup (``_wiki_markup``), hidden elements (``_HIDDEN``) and HTML tags (``_VOID_TAG``,
    ``_INLINE_TAG``; those that break a line are "markup-break") in ``text``."""
    found = [Span(start, end, "markup") for start, end in _wiki_markup(text)]
    if "|" in text and ("thumb" in text or "px|" in text or "mini|" in text or "küçükresim" in text):
        found += [Span(m.start(), m.end(), "markup") for m in _IMAGE_OPTIONS.finditer(text)]
    if "<" in text:
        found += [Span(m.start(), m.end(), "markup")
                  for pattern in (_HIDDEN, _VOID_TAG) for m in pattern.finditer(text)]
        found += [Span(m.start(), m.end(), "markup-break" if m.group(1) else "markup")
                  for m in _INLINE_TAG.finditer(text)]
    return found


def _blanked(text: str, spans: list[Span]) -> str:
    """``text`` with ``spans`` blanked to spaces of their length: the characters of "<a href=…>" made its
    sentence look like code."""
    if not spans:
        return text
    pieces, position = [], 0
    for span in sorted(spans, key=lambda span: span.start):
        start = max(span.start, position)
        if span.end > start:
            pieces += [text[position:start], " " * (span.end - start)]
            position = span.end
    return "".join(pieces) + text[position:]


def _blocks(text: str) -> list[Span]:
    """Code blocks, whole, lines holding only a (page) number, and lines of HTML tags alone (a README's
    ``<div align="center">``, ``</details>``)."""
    found = []
    if "<" in text:
        found += [Span(m.start(), m.end(), "symbols") for m in _TAGS_LINE.finditer(text)]
    if "```" in text or "~~~" in text or "<pre" in text or "<PRE" in text or "highlight" in text:
        found += [Span(m.start(), m.end(), "code") for m in _CODE_BLOCK.finditer(text)]
    found += [Span(m.start(), m.end(), "digits") for m in _PAGE_NUMBER.finditer(text) if m.group().strip()]
    return found


def _judge_sentence(text: str, start: int, end: int, rules: ProseRules) -> list[Span]:
    """A sentence is flagged whole when at least half of it (by characters) is, else not at all."""
    if end - start <= MAX_UNIT:  # one piece (most sentences): its verdict is the sentence's
        reason = _judge(text[start:end], rules)
        return [Span(start, end, reason)] if reason else []
    pieces = list(_pieces(text, start, end))
    verdicts = [(s, e, reason) for s, e in pieces
                if (reason := _judge(text[s:e], rules, whole=len(pieces) == 1))]
    if 2 * sum(e - s for s, e, _ in verdicts) < end - start:
        return []
    weights = Counter()
    for s, e, reason in verdicts:
        weights[reason] += e - s
    return [Span(start, end, weights.most_common(1)[0][0])]  # the reason covering most of it


def _line_spans(text: str, rules: ProseRules) -> list[Span]:
    found: list[Span] = []
    short: list[tuple[int, int]] = []
    tabbed: list[tuple[int, int]] = []
    position = 0
    for line in text.splitlines(keepends=True):
        start, end = position, position + len(line)
        position = end
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("|") and stripped.endswith("|"):
            found.append(Span(start, end, "table"))  # a Markdown table row
        if "\t" in stripped:
            tabbed.append((start, end))
        else:
            found += _run(tabbed, "table", rules)
            tabbed = []
        words = stripped.split()
        if len(words) <= rules.short_words and not stripped.endswith(tuple(_TERMINAL)) \
                and not _verse_line(words):
            short.append((start, end))
            continue
        found += _run(short, "list", rules)
        short = []
    return found + _run(short, "list", rules) + _run(tabbed, "table", rules)


def _run(run: list[tuple[int, int]], reason: str, rules: ProseRules) -> list[Span]:
    return [Span(s, e, reason) for s, e in run] if len(run) >= rules.short_run else []


class ProseDetector:
    """Finds non-prose spans; counts units across documents to spot boilerplate."""

    def __init__(self, rules: ProseRules | None = None):
        self.rules = rules or ProseRules()
        self.unit_documents: Counter[str] = Counter()  # unit -> documents holding it
        self.kept_copies: set[str] = set()  # shared sentences of prose whose first copy has been kept
        self._primed = 0  # documents counted by ``prime`` that ``spans`` must not count again

    def prime(self, texts: Iterable[str | set[str]]) -> None:
        """Count shared units over the corpus' first documents (the same ones, in the same order, that
        ``spans`` will see first), so boilerplate is known before the first document is judged. A set
        stands for a text's ``Judged.keys``."""
        for text in texts:
            self._count(text if isinstance(text, set) else judge_keys(text))
            self._primed += 1

    def spans(self, text: str) -> list[Span]:
        """Non-prose spans of one document (call once per document, in corpus order)."""
        return self.judged_spans(judge(text, self.rules))

    def judged_spans(self, judged: Judged) -> list[Span]:
        """``spans`` of the text that ``judged`` was worked out from (once per document, in corpus order)."""
        return _merge(judged.spans + self._repeated_spans(judged) + judged.front)

    def _count(self, keys: set[str]) -> None:
        for key in keys:
            if key in self.unit_documents or len(self.unit_documents) < self.rules.repeat_memory:
                self.unit_documents[key] += 1

    def _repeated_spans(self, judged: Judged) -> list[Span]:
        """Boilerplate: a line whose every sentence many documents share, or a shared sentence inside a line
        ("… yükseldi. PAYLAŞ Yorum yaz A"); one- or two-word salutations ("Efendiler,", "Teşekkür
        ederim."), exclamations and a line's last words that the next line goes on with are spared."""
        if self._primed:
            self._primed -= 1
        else:
            self._count(judged.keys)
        found = []
        for start, end, pieces, many_words, continued in judged.lines:
            shared = [(s, e, key) for s, e, key in pieces if self._dropped(key)]
            if continued and shared and shared[-1] == pieces[-1] and not shared[-1][2].endswith(tuple(".!?…")):
                # A sentence's first words at the end of a hard-wrapped line ("… gireceğim. Böylece⏎konuyu …")
                # are shared by many documents too: a real blog of 1,038 posts lost them at 1,084 line ends.
                shared.pop()
            if not shared:
                continue
            if len(shared) == len(pieces) and many_words:
                found.append(Span(start, end, "repeated"))
                continue
            for s, e, key in shared:
                if len(key) >= self.rules.repeat_min_sentence or len(key.split()) >= 3 \
                        or not key.endswith(tuple(".!?…,;:")):
                    found.append(Span(s, e, "repeated"))
        return found

    def _dropped(self, key: str) -> bool:
        """Whether this unit goes as boilerplate: many documents share it (``_shared``), and it is no
        sentence of prose whose first copy this is. A wire agency's story that five news sites carry ("ABD
        Başkanı Donald Trump, Dışişleri Bakanı Rex Tillerson'ı görevden aldı.") went from all five copies,
        and the corpus lost it; now the first stays. Lines without a full stop (menus, bylines, "İşte
        detaylar") go from every copy. Kept copies of repeated sentences are remembered (``kept_copies``,
        bounded like the counts), so a sentence found shared only from its third document on keeps none
        after the two it already had."""
        count = self.unit_documents.get(key, 0)
        if count < 2:
            return False
        sentence = (len(key) >= self.rules.repeat_min_sentence and len(key.split()) >= 4
                    and key.rstrip(_QUOTES + ")").endswith((".", "?", "…")))
        first = sentence and key not in self.kept_copies and len(self.kept_copies) < self.rules.repeat_memory
        if first:
            self.kept_copies.add(key)
        return self._shared(key) and not first

    def _shared(self, key: str) -> bool:
        """Many documents hold this unit (a ``_key``), and it is no exclamation: "Muhterem Milletvekilleri!"
        opens speeches."""
        return self.unit_documents.get(key, 0) >= self.rules.repeat_limit and not key.endswith("!")


def judge_keys(text: str) -> set[str]:
    """``Judged.keys`` alone: what priming counts."""
    return _keys(_blanked(text, _markup(text)))


def _keys(bare: str) -> set[str]:
    """The sentences of ``bare`` (a text with its markup blanked) that boilerplate counting keys on: a
    sentence inside an image's alt text (a news item's caption repeating its story) is no copy of it."""
    return {key for s, e in sentences(bare) if 4 <= len(key := _key(bare[s:e])) <= 300}


def _front_matter(text: str) -> list[Span]:
    """The page's front matter, when ``text`` starts with one whose every line is a key, a list item, an
    indented continuation or blank: its lines, except the text of block scalars (``entry_content: |`` and
    the lines indented below it), which is judged as any line is. A page whose entries live in its front
    matter (a Jekyll post of 30 forum entries, 400 lines) keeps their text and loses its keys."""
    match = _FRONT_MATTER.match(text)
    if not (match and all(_FRONT_MATTER_LINE.match(line) for line in match.group(2).splitlines())):
        return []
    spans, position, block = [], 0, None  # block: the indent of the key whose block scalar is being read
    for line in text[:match.end()].splitlines(keepends=True):
        indent = len(line) - len(line.lstrip(" \t"))
        if block is not None and (not line.strip() or indent > block):
            if indent and line.strip():  # the block scalar's text stays, its YAML indent goes
                spans.append(Span(position, position + indent, "front-matter"))
            position += len(line)
            continue
        block = indent if _BLOCK_SCALAR.search(line.rstrip("\n")) else None
        if spans and spans[-1].end == position:
            spans[-1] = Span(spans[-1].start, position + len(line), "front-matter")
        else:
            spans.append(Span(position, position + len(line), "front-matter"))
        position += len(line)
    return spans


def _key(unit: str) -> str:
    """A sentence as boilerplate counting keys it: spaces collapsed and, in one of 4 or more words, every
    number "0": a footer with each post's date ("Bu yazi … adresinde, 2008-10-30 tarihinde yayinlanmistir.")
    or a running header with its page number ("A Speech By Mustafa Kemal Atatiirk 24") is one sentence in
    every post, while a dateline ("19th October, 1919.") or a reference ("(Document 45.)") stays itself."""
    key = " ".join(unit.split())
    if any(character.isdigit() for character in key) and len(_LETTERS_WORD.findall(key)) >= 4:
        return _NUMBER.sub("0", key)
    return key


_NUMBER = re.compile(r"\d+")
_LETTERS_WORD = re.compile(r"(?<![\w])[^\W\d_]{2,}(?![\w])")  # a word of letters only ("19th" is none)


def _merge(spans: list[Span]) -> list[Span]:
    """Sort and merge overlapping spans (the first reason wins)."""
    merged: list[Span] = []
    for span in sorted(spans, key=lambda s: s.start):
        if merged and span.start < merged[-1].end:
            last = merged[-1]
            merged[-1] = Span(last.start, max(last.end, span.end), last.reason)
        else:
            merged.append(span)
    return merged


def _break_line(kept: list[str], paragraph: bool = False) -> None:
    """End the line that ``kept`` (pieces of text) ends with, its trailing blanks dropped (``paragraph``: and
    leave a blank line after it); nothing when it is empty or ends one already."""
    last = next((i for i in range(len(kept) - 1, -1, -1) if kept[i]), None)
    if last is None:
        return
    if not kept[last].endswith("\n"):
        kept[last] = kept[last].rstrip(" \t")
        kept.append("\n")
    if paragraph and not "".join(kept[max(0, last - 1):]).endswith("\n\n"):
        kept.append("\n")


def remove_spans(text: str, spans: list[Span]) -> str:
    """Text without the flagged spans; lines left holding only spaces are empty, and runs of 3+ newlines
    left behind collapse to one blank line. A span that ends a line ends the kept text before it on that
    line too: two entries' lines are never joined. A line-breaking HTML tag between two words leaves a line
    break."""
    if not spans:
        return text
    kept, position, breaks = [], 0, 0
    for span in spans:
        piece = text[position:span.start]
        if "\n" in text[span.start:span.end]:  # the span ends a line: so does what is kept before it on that
            piece = piece.rstrip(" \t")       # line (an entry's last sentence kept, a dropped line's indent not)
            piece += "\n" if piece and not piece.endswith("\n") else ""
        kept.append(piece)
        # line-breaking tags in a row ("<br><br>", "</p><p>") with only spaces between them end a paragraph
        breaks = breaks + 1 if span.reason == "markup-break" and (breaks == 0 or not piece.strip()) else \
            int(span.reason == "markup-break")
        if span.reason == "markup-break" and span.end < len(text) and not text[span.end].isspace():
            _break_line(kept, paragraph=breaks >= 2)
        position = span.end
    kept.append(text[position:])
    joined = BLANK_LINE.sub("", "".join(kept))  # a line of no-break spaces whose tags went is an empty one
    return re.sub(r"\n{3,}", "\n\n", joined).strip("\n") + ("\n" if text.endswith("\n") else "")

