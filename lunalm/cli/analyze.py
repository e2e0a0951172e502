"""``luna analyze``: run the corpus analysis and show it (tables, JSON, or a repaired copy on disk)."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from lunalm.config import CorpusConfig, TokenizerConfig
from lunalm.corpus import Corpus
from lunalm.corpus.analyze import Analysis, Stats, analyze
from lunalm.corpus.language import detect_language, language_name
from lunalm.errors import CorpusError
from lunalm.tokenizer import TextCount

SAMPLE_CHARS = 4_000_000  # the quick default tokenizer is trained on the first ~4 M characters


def run_analyze(config: CorpusConfig, show_files: bool, as_json: bool, fix_dir: str | None,
                tokenizer_path: str | None) -> int:
    from tqdm import tqdm

    corpus = Corpus(config, detect_non_prose=True)
    sample, count = _sample(corpus)
    language = detect_language(sample)
    tokenizer, tokenizer_name = _tokenizer(corpus, sample, count, tokenizer_path)
    writer = _FixWriter(fix_dir) if fix_dir else None
    size = _estimated_bytes(corpus)
    with tqdm(total=size, unit="B", unit_scale=True, desc="analyzing", file=sys.stderr,
              disable=as_json or not sys.stderr.isatty(), leave=False) as bar:
        def count(texts: list[str]) -> list[int]:
            if writer:
                writer.write(texts)
            return [len(ids) for ids in tokenizer.encode_batch(texts)]

        try:
            result = analyze(corpus, count, tokenizer_name, language, progress=bar.update)
        except BaseException:
            if writer:
                writer.abort()  # nothing half-written is left behind
            raise
    if writer:
        writer.finish()
    if as_json:
        print(json.dumps(result.to_json(), ensure_ascii=False, indent=2))
    else:
        _print_tables(result, show_files, [str(file) for file in corpus.files], config.filter_non_prose)
        from lunalm.corpus.discover import unread_notes

        for note in unread_notes(config.paths, config.include, config.exclude):
            print(f"note: {note}")
        if writer:
            folder = str(fix_dir).rstrip("/")
            print(f"\nrepaired corpus written to {folder}/ ({result.corpus.documents} documents, UTF-8)")
    return 0


def _estimated_bytes(corpus: Corpus) -> int:
    if not corpus.files:
        return 2_276_672 * 11 // 10  # the built-in corpus: 2.28 M characters, ~10 % multi-byte
    return corpus.bytes


def _sample(corpus: Corpus) -> tuple[list[str], TextCount]:
    """~SAMPLE_CHARS characters of documents for language detection and the tokenizer: the first ones, or
    for a few files the first of each in equal shares (an English file first must not make six Turkish
    ones "English")."""
    from lunalm.corpus import SAMPLE_MIN_FILES

    files = corpus.files if 1 < len(corpus.files) < SAMPLE_MIN_FILES else []
    readers = [Corpus(dataclasses.replace(corpus.config, paths=(str(file),))) for file in files] or \
        [Corpus(corpus.config)]
    sample, count = [], TextCount()
    count.complete = True
    for reader in readers:
        chars = 0
        try:
            for document in reader.documents():
                sample.append(document.text)
                count.add(document)
                chars += len(document.text)
                if chars >= SAMPLE_CHARS // len(readers):
                    count.complete = False
                    break
        except CorpusError:  # a file with no text of its own: the whole corpus's reading says what matters
            if len(readers) == 1:
                raise
    return sample, count


def _tokenizer(corpus: Corpus, sample: list[str], count: TextCount, path: str | None):
    """The given tokenizer, else the BPE ``luna train`` builds for this corpus by default (same vocabulary
    rule and minimum frequency; trained on the sample, which is the whole corpus up to 4 M characters)."""
    from lunalm import tokenizer as tok

    if path:
        loaded = tok.Tokenizer.load(path)
        return loaded, f"{path} ({loaded.kind}, vocab {loaded.vocab_size})"
    vocab = tok.corpus_vocab_size(corpus.files, count)
    trained = tok.train_bpe(sample, vocab_size=vocab, min_frequency=TokenizerConfig().min_frequency)
    chars = sum(map(len, sample))
    return trained, (f"BPE vocab {vocab:,}, the size `luna train` builds for this corpus "
                     f"(trained on {chars:,} characters; {trained.vocab_size:,} tokens learned)")


class _FixWriter:
    """Streams the cleaned documents to OUT/corpus.jsonl via a temporary folder renamed at the end."""

    def __init__(self, out: str):
        self.out = Path(out)
        if self.out.exists() and not self.out.is_dir():
            raise CorpusError(f"{out}: is a file; --fix writes a folder (OUT/corpus.jsonl): give a new folder's name")
        if self.out.exists() and any(self.out.iterdir()):
            raise CorpusError(f"{out}: folder exists and is not empty; choose a new folder for --fix")
        try:
            self.out.parent.mkdir(parents=True, exist_ok=True)  # "clean/tr/" inside a folder not made yet
        except OSError as error:
            raise CorpusError(f"{out}: cannot create its parent folder ({error.strerror}); choose another "
                              "place for --fix") from None
        self.tmp = Path(tempfile.mkdtemp(prefix=".luna-fix-", dir=self.out.parent or Path(".")))
        self.handle = open(self.tmp / "corpus.jsonl", "w", encoding="utf-8")

    def write(self, texts: list[str]) -> None:
        for text in texts:
            self.handle.write(json.dumps({"text": text}, ensure_ascii=False) + "\n")

    def finish(self) -> None:
        self.handle.close()
        if self.out.exists():
            self.out.rmdir()
        os.replace(self.tmp, self.out)

    def abort(self) -> None:
        self.handle.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def _rows(stats: Stats, analysis: Analysis, dropped: tuple[int, int] = (0, 0)) -> list[tuple[str, str]]:
    s = stats.summary()
    capped = "≥" if stats.unique_words_capped else ""
    return [
        ("documents", f"{s['documents']:,}"), ("lines", f"{s['lines']:,}"), ("words", f"{s['words']:,}"),
        ("unique words", f"{capped}{s['unique_words']:,}"), ("characters", f"{s['characters']:,}"),
        ("bytes (UTF-8)", f"{s['bytes']:,}"), ("tokens", f"{s['tokens']:,}"),
        ("characters / token", f"{s['chars_per_token']}"), ("tokens / word", f"{s['tokens_per_word']}"),
        ("avg line", f"{s['avg_line_chars']} chars, {s['avg_line_tokens']} tokens"),
        ("avg word", f"{s['avg_word_chars']} chars"),
        ("longest document", f"{s['longest_document_chars']:,} chars ({s['longest_document_source']})"),
        ("duplicate lines", f"{s['duplicate_lines']:,}"),
        ("Turkish letters", f"{100 * s['turkish_letter_share']:.2f} % of letters (ç ğ ı İ ö ş ü)"),
        _not_prose(stats, *dropped),
    ]


def _not_prose(stats: Stats, dropped: int, dropped_chars: int) -> tuple[str, str]:
    """The non-prose row: the ``dropped`` documents --filter left nothing of count too (a file of page
    numbers alone vanished while the row said 0.00 %)."""
    chars, whole = stats.non_prose_chars + dropped_chars, stats.original_chars + dropped_chars
    share = chars / whole if whole else 0.0
    return ("not prose", f"{chars:,} chars ({100 * share:.2f} %)"
            + (f", {dropped:,} document(s) that held nothing else dropped whole" if dropped else ""))


def _print_tables(analysis: Analysis, show_files: bool, files: list[str] = (), filtered: bool = False) -> None:
    report = analysis.report
    print(f"corpus: {analysis.corpus.source}")
    rows = _rows(analysis.corpus, analysis, (report.total("filtered_documents"), report.total("filtered_chars")))
    encodings = sorted({f.encoding for f in report.files.values() if f.encoding})
    blank = [name for name in files if name not in report.files]  # no text at all: no document was read
    rows += [("duplicate documents", f"{report.total('duplicates'):,} dropped "
                                     f"(and {report.total('empty') + len(blank):,} empty ones)"),
             ("encoding", ", ".join(encodings)),
             ("repaired", f"{report.total('repaired_chars'):,} chars of mojibake "
                          f"({_repair_summary(report.files.values())}), "
                          f"{report.total('controls_removed'):,} control chars removed"
                          + (f", {report.total('references_decoded'):,} HTML references (&#351;, &ccedil;) "
                             "decoded" if report.total('references_decoded') else ""))]
    rows.insert(0, ("language", language_name(analysis.language)))
    _table(rows)
    for name, file_report in report.files.items():
        if file_report.unrecoverable_lines:
            print(f"  {name}: {len(file_report.unrecoverable_lines):,} lost-byte sites left as they were, "
                  f"lines {_lines(file_report.unrecoverable_lines)}")
        if file_report.replaced_letters:
            print(f"  {name}: {file_report.replaced_letters:,} letters a decoder had replaced by '\ufffd' or '?', "
                  f"{file_report.restored_letters:,} restored from words seen intact elsewhere in the corpus"
                  + (f"; {file_report.marks_left:,} '\ufffd' or '?' between letters left (no intact reading)"
                     if file_report.marks_left else ""))
    print(f"tokenizer: {analysis.tokenizer}")
    if skipped := report.skipped_note():
        print(f"note: {skipped}")
    if analysis.examples:
        print(f"\nnot prose (examples; {'dropped by --filter' if filtered else '--filter drops such text'}):")
        for example in analysis.examples:
            print(f"  [{example['reason']}, {example['chars']:,} chars] {example['text']}…")
    if show_files:
        for name in [name for name in report.files if name not in analysis.files] + blank:
            kept = report.files.get(name)
            why = (kept.no_text if kept and kept.no_text else
                   f"{kept.duplicates:,} duplicate document(s) of earlier ones" if kept and kept.duplicates else
                   "all of its text filtered out" if kept and not kept.empty else "no text (empty)")
            print(f"\nfile: {name}: nothing kept, {why}")
        for name, stats in analysis.files.items():
            file_report = report.files[name]
            print(f"\nfile: {name}")
            _table(_rows(stats, analysis, (file_report.filtered_documents, file_report.filtered_chars)) + [
                ("encoding", file_report.encoding),
                ("repaired", f"{file_report.repaired_chars:,} chars ({_repair_summary([file_report])})"),
                ("duplicate documents", f"{file_report.duplicates:,}")])


def _repair_summary(reports) -> str:
    reports = list(reports)
    sequences = sum(r.repaired_sequences for r in reports)
    recovered = sum(r.recovered_bytes for r in reports)
    unrecoverable = sum(len(r.unrecoverable_lines) for r in reports)
    replaced, restored = sum(r.replaced_letters for r in reports), sum(r.restored_letters for r in reports)
    left = sum(r.marks_left for r in reports)
    return (f"{sequences:,} sequences, {recovered:,} lost bytes rebuilt, "
            f"{unrecoverable:,} sites unrecoverable"
            + (f"; {restored:,} of {replaced:,} letters replaced by '\ufffd' or '?' restored" if replaced else "")
            + (f", {left:,} '\ufffd' or '?' between letters left where no intact word explains them" if left else ""))


def _lines(numbers: list[int], shown: int = 20) -> str:
    unique = sorted(set(numbers))
    more = f" … (+{len(unique) - shown:,} more)" if len(unique) > shown else ""
    return ", ".join(map(str, unique[:shown])) + more


def _table(rows: list[tuple[str, str]]) -> None:
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
