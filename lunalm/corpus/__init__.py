"""Corpus: files (or the built-in corpus) -> clean, de-duplicated documents, with a report of what was done.

    corpus = Corpus(CorpusConfig(paths=("my_texts/",)))
    for document in corpus.documents():   # streams; fills corpus.report as it goes
        ...

Stages per document: read + decode + repair mojibake (``read``/``encoding``) -> newline/control/NFC
cleaning (``clean``) -> letters replaced by "�" restored from the corpus's own words (``replaced``; such
documents come last) -> exact-duplicate drop -> non-prose detection and optional removal (``prose``).
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from lunalm.config import CorpusConfig, to_dict
from lunalm.corpus import builtin
from lunalm.corpus.prose import RULES_VERSION, Judged, ProseDetector, Span, judge, remove_spans
from lunalm.corpus.compressed import is_compressed
from lunalm.corpus.discover import discover
from lunalm.corpus.read import RawDocument, read_file
from lunalm.corpus.replaced import HOLD_CHARS, Restorer, marks_left
from lunalm.corpus.workers import PARALLEL_BYTES, first_keys, in_order, text_digest, worker_count
from lunalm.corpus.workers import digest as workers_digest
from lunalm.errors import CorpusError, NoTextError

COMPRESSION_RATIO = 3  # text is 3-5 times its gzip, zstd or xz size; the low end, so a guess starts no workers
#                        that its text does not need
PRIME_CHARS = 20_000_000  # boilerplate is counted over the first ~20 M characters before judging
# Bumped when reading gives other text for the same files (caches keyed by the fingerprint are rebuilt):
# 2: CSV/TSV decoded and quoted as the file is; letters replaced by U+FFFD restored (lunalm.corpus.replaced).
# 3: HTML character references (&#8210;, &#351;, &ccedil;) decoded (lunalm.corpus.clean).
# 4: a restored first letter's case: names keep their capital, a lost "ə" before a word starts no sentence.
# 5: a "?" in a web address or its query is not a replaced letter (such text is no longer restored).
# 6: lines of only spaces are empty; pandoc-escaped tag lines ("\</Grid\>") are markup.
# 7: WikiExtractor output (any name) is a document per article, its <doc> tags dropped (lunalm.corpus.wiki);
#    JSON lines in a file with no suffix are records.
# 8: CoNLL-U files are their sentences (lunalm.corpus.conllu), not their annotation.
# 9: WikiExtractor's interface, template and module pages are not read.
# 10: ID<TAB>text lines (Leipzig sentences, ParlaMint) lose their IDs, numbered ones each a document; a Leipzig
#     download's lists are not read.
#     TEI and other XML, and vertical files (.vert), are refused (lunalm.corpus.markup), not read as text.
#     Dutch is told from Turkish (a repair chooses its letters by the language); a .csv may be tab-separated.
# 11: a Telegram export (result.json) is its chats' conversations and channels' posts (lunalm.corpus.telegram),
#     not a document per message; a WhatsApp export (.txt) is its messages as "Name: text" lines, without their
#     stamps, WhatsApp's notices and placeholders (lunalm.corpus.whatsapp).
READ_VERSION = 11
SAMPLE_MIN_FILES = 20  # fewer files than this: a sample reads the first documents instead of a spread


@dataclass
class FileReport:
    """What happened to one file (or the built-in database)."""

    source: str
    encoding: str = ""
    documents: int = 0
    duplicates: int = 0  # exact-duplicate documents dropped
    repaired_chars: int = 0  # characters changed by mojibake repair
    repaired_sequences: int = 0  # mojibake sequences undone (lost-byte sites included)
    recovered_bytes: int = 0  # bytes a code page had dropped, rebuilt
    unrecoverable_lines: list[int] = field(default_factory=list)  # line of each lost-byte site left as it was
    controls_removed: int = 0  # control characters dropped
    references_decoded: int = 0  # HTML character references (&#351;, &ccedil;) decoded to their characters
    replaced_letters: int = 0  # "�" inside words (letters a decoder replaced), and "?" restored as "ə"
    restored_letters: int = 0  # of those, restored from the corpus's own words (lunalm.corpus.replaced)
    marks_left: int = 0  # "�" and "?" between letters still in its damaged documents after restoration
    empty: int = 0  # documents with no text (skipped)
    non_prose_chars: int = 0  # characters flagged as not prose (removed with filter_non_prose)
    filtered_documents: int = 0  # documents filter_non_prose left nothing of (not read on)
    filtered_chars: int = 0  # their characters
    no_text: str = ""  # why the file gave no text to read (a scanned PDF): skipped (CorpusReport.skipped_note)


@dataclass
class CorpusReport:
    files: dict[str, FileReport] = field(default_factory=dict)

    def file(self, source: str) -> FileReport:
        return self.files.setdefault(source, FileReport(source))

    def total(self, name: str) -> int:
        return sum(getattr(report, name) for report in self.files.values())

    def skipped_note(self) -> str | None:
        """The files skipped for holding no text to read, each with why; None when there are none."""
        skipped = [report.no_text for report in self.files.values() if report.no_text]
        if not skipped:
            return None
        more = f"; and {len(skipped) - 3} more" if len(skipped) > 3 else ""
        return f"skipped {len(skipped)} file(s) with no text to read: " + "; ".join(skipped[:3]) + more


@dataclass
class Document:
    text: str  # cleaned (and, with filter_non_prose, filtered) text
    source: str  # the file it came from
    name: str  # finer label: "file:line" (JSONL), speech id (built-in), else the file
    non_prose: list[Span]  # spans of ``original`` judged not prose
    original: str  # the cleaned text before any non-prose filtering (same object when not filtering)
    read_bytes: int | None = None  # bytes of its file read by then (RawDocument.read_bytes)


class Corpus:
    """A configured corpus; ``documents()`` streams it and fills ``report``."""

    def __init__(self, config: CorpusConfig, detect_non_prose: bool = False):
        self.config = config
        self.detect_non_prose = detect_non_prose or config.filter_non_prose
        self.report = CorpusReport()
        self.files = discover(config.paths, config.include, config.exclude) if config.paths else []
        self._sizes: dict[Path, int] | None = None
        self.stop_bytes: int | None = None  # set by ``sample``: ``documents`` stops once it has read this much
        self.read_bytes = 0  # bytes of the files read when ``documents`` stopped there (0: it read everything)

    @property
    def name(self) -> str:
        return builtin.NAME if not self.config.paths else ", ".join(self.config.paths)

    def fingerprint(self) -> str:
        """Changes when any input file or any cleaning setting changes (keys the token cache)."""
        digest = hashlib.sha256(json.dumps(to_dict(self.config), sort_keys=True).encode())
        digest.update(f"read {READ_VERSION}".encode())
        if self.config.filter_non_prose:  # the filter's rules decide which text is kept
            digest.update(f"prose rules {RULES_VERSION}".encode())
        if not self.config.paths:
            digest.update(f"{builtin.NAME}:{builtin.DB_SHA256}".encode())
        for file in self.files:
            stat = file.stat()
            digest.update(f"{file.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode())
        return digest.hexdigest()[:16]

    def sample(self, max_bytes: int) -> Corpus:
        """A fresh reader of ~``max_bytes`` of this corpus: a spread of its files, taken in the order of a
        hash of their name and size (the same files every time, from every folder alike) and read in corpus
        order; where that spread is every file (fewer than SAMPLE_MIN_FILES of them: one large text or JSONL
        file), their first ``max_bytes``, after which ``documents`` stops and sets ``read_bytes``. The whole
        corpus when it is no larger. What needs only a sample (a tokenizer, the plan's averages) reads a
        300 MB folder, or a 300 MB file, in a fraction of the time. ``max_bytes`` counts text: a compressed
        file COMPRESSION_RATIO times its size (64 MB of a .jsonl.zst had read ~250 MB of text)."""
        sampled = copy.copy(self)
        sampled.report = CorpusReport()
        sizes = [self.sizes[file] for file in self.files]
        text = [self._text_size(file) for file in self.files]  # what max_bytes counts
        if sum(text) <= max_bytes:
            return sampled
        if len(self.files) >= SAMPLE_MIN_FILES:
            order = sorted(range(len(self.files)),  # by name and size: the same sample wherever the folder lies
                           key=lambda i: hashlib.sha1(f"{self.files[i].name}:{sizes[i]}".encode()).digest())
            chosen, taken = [], 0
            for i in order:
                chosen.append(i)
                taken += text[i]
                if taken >= max_bytes:
                    break
            sampled.files = [self.files[i] for i in sorted(chosen)]
        if len(sampled.files) == len(self.files):  # documents count their position in bytes on disk
            sampled.stop_bytes = max(1, round(max_bytes * sum(sizes) / sum(text)))
        return sampled

    @property
    def sizes(self) -> dict[Path, int]:
        """Each corpus file's size in bytes, looked up once."""
        if self._sizes is None:
            self._sizes = {file: file.stat().st_size for file in self.files}
        return self._sizes

    @property
    def bytes(self) -> int:
        """Size of the corpus files (0 for the built-in corpus)."""
        return sum(self.sizes[file] for file in self.files)

    def raw_documents(self) -> Iterator[RawDocument]:
        if not self.config.paths:
            for speech_id, text in builtin.iter_speeches():
                yield RawDocument(text, builtin.NAME, "utf-8 (sqlite)", name=f"{builtin.NAME}/{speech_id}")
            return
        for file in self.files:
            try:
                yield from read_file(file, self.config.text_field, self.config.max_document_chars)
            except NoTextError as exc:  # a scanned PDF among the books: the others are read
                self.report.file(str(file)).no_text = str(exc)

    def documents(self, workers: int | None = None) -> Iterator[Document]:
        """``workers``: processes that clean and judge documents (None: ``worker_count()`` for a corpus of
        PARALLEL_BYTES or more, else none); the documents are the same either way."""
        seen: set[bytes] = set()
        workers = self._workers(workers)
        detector = ProseDetector() if self.detect_non_prose else None
        if detector:
            detector.prime(self._first_keys(workers))
        restorer, held, held_chars = Restorer(), [], 0
        produced = 0
        rules = detector.rules if detector and workers > 1 else None  # in one process: judged after de-duplication
        position = _ReadPosition({str(file): self.sizes[file] for file in self.files}) if self.stop_bytes else None
        for raw, digest in in_order(self.raw_documents(), _raw_text, workers_digest, rules, workers):
            source = raw.source
            report = self.report.file(source)
            report.encoding = report.encoding or raw.encoding
            report.repaired_chars += raw.repaired_chars
            report.repaired_sequences += raw.repaired_sequences
            report.recovered_bytes += raw.recovered_bytes
            report.unrecoverable_lines += raw.unrecoverable_lines
            text = raw.text if digest.text is None else digest.text
            report.controls_removed += digest.removed
            report.references_decoded += digest.references
            if not text.strip():
                report.empty += 1
                continue
            if digest.damaged:  # letters replaced by "�": restored once the intact text's words are known
                if held_chars + len(text) <= HOLD_CHARS:
                    held.append((raw, text))
                    held_chars += len(text)
                    continue
                text = self._restored(restorer, report, text)
            else:
                restorer.learn(text)
            document = self._document(raw, text, seen, detector, report, digest.judged)
            if document is not None:
                produced += 1
                yield document
                if position is not None and position.update(document) >= self.stop_bytes:
                    self.read_bytes = position.bytes  # a sample's first bytes are read: the rest is not wanted
                    return
        for raw, text in held:
            report = self.report.file(raw.source)
            document = self._document(raw, self._restored(restorer, report, text), seen, detector, report)
            if document is not None:
                produced += 1
                yield document
        if produced == 0:
            skipped = self.report.skipped_note()
            raise CorpusError(f"{self.name}: no text found (every file empty, duplicate or filtered out); "
                              "check the path and --include patterns" + (f"; {skipped}" if skipped else ""))

    def _workers(self, workers: int | None) -> int:
        if workers is not None:
            return workers
        return worker_count() if self.text_bytes >= PARALLEL_BYTES else 1

    @property
    def text_bytes(self) -> int:
        """About how many bytes of text the files hold: a compressed file counts COMPRESSION_RATIO times its
        size. By the size on disk, 74 MB of JSONL as a 16 MB .jsonl.zst or a 3 MB .jsonl.xz was read in one
        process, 1.9 times as long as with two workers."""
        return sum(map(self._text_size, self.files))

    def _text_size(self, file: Path) -> int:
        return self.sizes[file] * (COMPRESSION_RATIO if is_compressed(file) else 1)

    @staticmethod
    def _restored(restorer: Restorer, report: FileReport, text: str) -> str:
        text, restored, _ = restorer.restore(text)
        left = marks_left(text)  # "?" too: Azerbaijani saved as cp1254 lost every "ə" to one
        report.replaced_letters += restored + left
        report.restored_letters += restored
        report.marks_left += left
        return text

    def _document(self, raw: RawDocument, text: str, seen: set[bytes], detector, report: FileReport,
                  judged: Judged | None = None) -> Document | None:
        """The cleaned text as a Document: None for a duplicate or, filtered, for text that is all non-prose.
        ``judged``: what the prose filter found in ``text`` on its own, when a worker worked it out."""
        if self.config.dedup and not _first_time(text_digest(text), seen):
            report.duplicates += 1
            return None
        spans = detector.judged_spans(judged or judge(text, detector.rules)) if detector else []
        report.non_prose_chars += sum(span.end - span.start for span in spans)
        original = text
        if self.config.filter_non_prose:
            text = remove_spans(text, spans)
            if not text.strip():
                report.filtered_documents += 1
                report.filtered_chars += len(original)
                return None
        report.documents += 1
        return Document(text, raw.source, raw.name or raw.source, spans, original, raw.read_bytes)

    def _first_keys(self, workers: int) -> Iterator[set[str]]:
        """The boilerplate keys of the cleaned, de-duplicated texts ``documents`` will judge first (up to
        PRIME_CHARS), in order: boilerplate shared by many documents is counted before the first one is
        judged."""
        seen: set[bytes] = set()
        chars = 0
        for _, keyed in in_order(self.raw_documents(), _raw_text, first_keys, None, workers):
            if keyed is None or (self.config.dedup and not _first_time(keyed[0], seen)):
                continue
            yield keyed[2]
            chars += keyed[1]
            if chars >= PRIME_CHARS:
                return


class _ReadPosition:
    """How many bytes of a corpus's files its documents so far were read from (``Document.read_bytes``, in
    corpus order): what stops a sample of a few large files part-way."""

    def __init__(self, sizes: dict[str, int]):
        self.sizes = sizes
        self.done, self.current, self.bytes = 0, None, 0

    def update(self, document: Document) -> int:
        if document.read_bytes is not None:
            if document.source != self.current:
                self.done += self.sizes.get(self.current, 0)
                self.current = document.source
            self.bytes = self.done + document.read_bytes
        return self.bytes


def _raw_text(raw: RawDocument) -> str:
    return raw.text


def _first_time(digest: bytes, seen: set[bytes]) -> bool:
    if digest in seen:
        return False
    seen.add(digest)
    return True
