"""Non-prose detection measured: precision and recall of ``lunalm.corpus.prose`` on a labelled set.

The set is built from real text where it can be, labelled by where each line comes from:

| kind | label | source |
|---|---|---|
| speeches | prose | sentences of the built-in corpus (Atatürk's speeches), 10 to a paragraph |
| index | non-prose | the built-in corpus' own place-name index (DİZİN), in 200-character pieces |
| news | prose | ``bench/data/news_tr.txt``: Turkish news sentences full of numbers, one per line |
| boilerplate | non-prose | ``bench/data/boilerplate_tr.txt``: the site furniture around each news article, on its own lines and glued to an article's last line; repeated across documents as on a real site |
| syndicated | prose | ``bench/data/syndicated_tr.txt``: wire-agency stories, each printed by four news sites (four documents); this is the first copy |
| syndicated copy | non-prose | the same stories' later copies: duplicates, which the filter removes while it keeps the first |
| tables | non-prose | ``/usr/share/zoneinfo/zone1970.tab`` and ``iso3166.tab`` rows, this repository's Markdown table rows |
| code | non-prose | lines of code (not comments or docstrings) of Python's standard library |
| english | prose | paragraphs of the Python Language Reference (``pydoc_data.topics``) that are prose |

Each document goes through one ``ProseDetector`` in order (so boilerplate repeated across documents is
learnt as it would be in a real corpus); a line counts as flagged when at least half its characters are
inside flagged spans, and a sentence as *cut* when some but not all of it is (the filter must never remove
half a sentence). Prints per kind, precision and recall of both classes. Goals: precision on prose >= 0.97,
recall on non-prose >= 0.9, no sentence cut.

    python bench/bench_prose.py
"""

from __future__ import annotations

import io
import random
import re
import sys
import tokenize
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

from lunalm.corpus import builtin  # noqa: E402
from lunalm.corpus.prose import ProseDetector, sentences  # noqa: E402

DATA = Path(__file__).resolve().parent / "data"
SEED = 15


@dataclass
class Document:
    text: str
    items: list[tuple[int, int, str, bool]]  # (start, end, kind, is_prose)


def _document(pieces: list[tuple[str, str, bool]], separator: str = "\n") -> Document:
    text, items = "", []
    for piece, kind, prose in pieces:
        if text and not text.endswith(("\n", " ")):
            text += separator
        items.append((len(text), len(text) + len(piece), kind, prose))
        text += piece
    return Document(text + "\n", items)


def _fixture(name: str) -> list[str]:
    lines = (DATA / name).read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line.strip() and not line.startswith("#")]


def speech_documents(rng: random.Random, count: int = 40) -> list[Document]:
    texts = [text for _, text in builtin.iter_speeches() if text]
    sentences = [s for text in texts for s in re.findall(r"[^.!?]*[.!?]", text.split("DİZİN")[0])
                 if 6 <= len(s.split()) and len(s) <= 600]
    chosen = rng.sample(sentences, count * 10)
    return [_document([(s.strip(), "speeches", True) for s in chosen[i:i + 10]], " ")
            for i in range(0, len(chosen), 10)]


def index_documents() -> list[Document]:
    text = next(t for _, t in builtin.iter_speeches() if "DİZİN" in t)
    index = text[text.index("DİZİN"):]
    pieces, start = [], 0
    while start < len(index) and len(pieces) < 300:
        end = index.rfind(" ", start, start + 200) if start + 200 < len(index) else len(index)
        pieces.append(index[start:end].strip())
        start = end + 1
    return [_document([(p, "index", False) for p in pieces[i:i + 30]], " ") for i in range(0, len(pieces), 30)]


def news_documents(rng: random.Random) -> list[Document]:
    """Articles of 1-3 news sentences (each sentence in one article only); five in six end with the site's
    share bar glued to the last line (81 of 98 in the issue's corpus), and every article carries a header
    and footer of site furniture."""
    news, furniture = _fixture("news_tr.txt"), _fixture("boilerplate_tr.txt")
    glued = [line[1:] for line in furniture if line.startswith(">")]
    lines = [line for line in furniture if not line.startswith(">")]
    rng.shuffle(news)
    articles, start = [], 0
    while start < len(news):
        size = rng.randint(1, 3)
        articles.append(news[start:start + size])
        start += size
    documents = []
    for number, article in enumerate(articles):
        body = [(s, "news", True) for s in article]
        header = [(line, "boilerplate", False) for line in rng.sample(lines[:6], 2)]
        footer = [(line, "boilerplate", False) for line in rng.sample(lines[6:], 3)]
        document = _document(header + body + footer)
        if number % 6:  # glue the share bar to the end of the article's last sentence
            start, end, _kind, _prose = document.items[len(header) + len(body) - 1]
            tail = " " + glued[number % len(glued)]
            document = Document(document.text[:end] + tail + document.text[end:],
                                _shift(document.items, end, tail, len(header) + len(body)))
        documents.append(document)
    return documents


def syndicated_documents(rng: random.Random, copies: int = 4) -> list[Document]:
    """Each story in ``copies`` documents, as news sites print a wire agency's text word for word, each
    site's copy between a line of its furniture above and below: the first copy is prose, the others
    duplicates."""
    stories, furniture = _fixture("syndicated_tr.txt"), _fixture("boilerplate_tr.txt")
    lines = [line for line in furniture if not line.startswith(">")]
    documents = []
    for copy in range(copies):
        for story in stories:
            kind = "syndicated" if copy == 0 else "syndicated copy"
            documents.append(_document([(rng.choice(lines[:6]), "boilerplate", False), (story, kind, copy == 0),
                                        (rng.choice(lines[6:]), "boilerplate", False)]))
    return documents


def _shift(items: list, at: int, tail: str, index: int) -> list:
    """Insert the glued boilerplate as its own item after item ``index - 1``; later items move."""
    moved = [(s + len(tail) if s >= at else s, e + len(tail) if e > at else e, k, p) for s, e, k, p in items]
    return moved[:index] + [(at + 1, at + len(tail), "boilerplate", False)] + moved[index:]


def table_documents() -> list[Document]:
    rows = []
    for name in ("zone1970.tab", "iso3166.tab"):
        path = Path("/usr/share/zoneinfo") / name
        if path.is_file():
            rows += [r for r in path.read_text(encoding="utf-8").splitlines() if r and not r.startswith("#")]
    readme = Path(__file__).resolve().parent.parent / "README.md"
    rows += [r for r in readme.read_text(encoding="utf-8").splitlines() if r.startswith("|") and "---" not in r]
    rows = rows[:200] + rows[-60:]
    return [_document([(r, "tables", False) for r in rows[i:i + 20]]) for i in range(0, len(rows), 20)]


def _code_lines(source: str) -> list[str]:
    """Lines holding code tokens (not only comments or strings) of one Python file."""
    keep: set[int] = set()
    skip = {tokenize.COMMENT, tokenize.STRING, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT,
            tokenize.DEDENT, tokenize.ENCODING, tokenize.ENDMARKER}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type not in skip:
            keep.add(token.start[0])
    lines = source.splitlines()
    return [lines[n - 1].strip() for n in sorted(keep) if len(lines[n - 1].strip()) >= 12]


def code_documents() -> list[Document]:
    import json.decoder
    import textwrap
    import zipfile

    lines: list[str] = []
    for module in (json.decoder, textwrap, zipfile):
        lines += _code_lines(Path(module.__file__).read_text(encoding="utf-8"))[:100]
    return [_document([(line, "code", False) for line in lines[i:i + 25]]) for i in range(0, len(lines), 25)]


def english_documents(count: int = 150) -> list[Document]:
    from pydoc_data.topics import topics

    paragraphs = []
    for text in topics.values():
        for block in text.split("\n\n"):
            if block.startswith((" ", "\t")) or ">>>" in block or "::" in block:
                continue
            joined = " ".join(block.split())
            if len(joined.split()) >= 12 and joined.endswith(".") and joined[:1].isupper():
                paragraphs.append(joined)
    paragraphs = paragraphs[:count]
    return [_document([(p, "english", True) for p in paragraphs[i:i + 5]]) for i in range(0, len(paragraphs), 5)]


def measure(documents: list[Document]) -> tuple[dict, list]:
    detector = ProseDetector()
    detector.prime(document.text for document in documents)  # as Corpus does over its first documents
    per_kind: dict[str, list[int]] = {}  # kind -> [lines, flagged, sentences cut]
    mistakes = []
    for document in documents:
        spans = detector.spans(document.text)
        for start, end, kind, prose in document.items:
            share = _covered(spans, start, end) / max(1, end - start)
            counts = per_kind.setdefault(kind, [0, 0, 0])
            counts[0] += 1
            counts[1] += share >= 0.5
            counts[2] += _cut_sentences(document.text, spans, start, end)
            if (share >= 0.5) == prose:
                mistakes.append((kind, f"{share:.2f}", document.text[start:end][:150]))
    return per_kind, mistakes


def _cut_sentences(text: str, spans, start: int, end: int) -> int:
    """Sentences of the line [start, end) that flagged spans cover in part only."""
    cut = 0
    for s, e in sentences(text[start:end]):
        if text[start + s:start + e].strip():
            cut += 0 < _covered(spans, start + s, start + e) < e - s
    return cut


def _covered(spans, start: int, end: int) -> int:
    """Characters of [start, end) that flagged spans cover."""
    return sum(max(0, min(end, span.end) - max(start, span.start)) for span in spans)


def scores(per_kind: dict, prose_kinds: set[str]) -> dict:
    prose_total = sum(v[0] for k, v in per_kind.items() if k in prose_kinds)
    prose_flagged = sum(v[1] for k, v in per_kind.items() if k in prose_kinds)
    other_total = sum(v[0] for k, v in per_kind.items() if k not in prose_kinds)
    other_flagged = sum(v[1] for k, v in per_kind.items() if k not in prose_kinds)
    kept_prose, kept_other = prose_total - prose_flagged, other_total - other_flagged
    return {
        "lines": prose_total + other_total, "prose_lines": prose_total, "non_prose_lines": other_total,
        "prose_precision": kept_prose / max(1, kept_prose + kept_other),
        "prose_recall": kept_prose / max(1, prose_total),
        "non_prose_precision": other_flagged / max(1, other_flagged + prose_flagged),
        "non_prose_recall": other_flagged / max(1, other_total),
        "cut_sentences": sum(v[2] for v in per_kind.values()),
    }


def main() -> None:
    rng = random.Random(SEED)
    documents = (speech_documents(rng) + index_documents() + news_documents(rng) + table_documents()
                 + code_documents() + english_documents() + syndicated_documents(random.Random(SEED)))
    per_kind, mistakes = measure(documents)
    result = scores(per_kind, {"speeches", "news", "english", "syndicated"})
    print(f"{'kind':<16} {'lines':>6} {'flagged':>8} {'cut sentences':>14}")
    for kind, (total, flagged, cut) in per_kind.items():
        print(f"{kind:<16} {total:>6} {flagged:>8} {cut:>14}")
    print()
    for key, value in result.items():
        print(f"{key:<20} {value:.3f}" if isinstance(value, float) else f"{key:<20} {value}")
    goal = result["prose_precision"] >= 0.97 and result["non_prose_recall"] >= 0.9 and not result["cut_sentences"]
    print(f"goal (prose precision >= 0.97, non-prose recall >= 0.9, no sentence cut): {'met' if goal else 'NOT met'}")
    if "--mistakes" in sys.argv:
        for kind, share, text in mistakes:
            print(f"  [{kind} {share}] {text}")
    common.write_json("prose", {"per_kind": per_kind, **result, "goal_met": goal})


if __name__ == "__main__":
    main()
