"""A large corpus is cleaned and judged in worker processes: the documents and the report must be exactly
those of one process."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lunalm.config import CorpusConfig
from lunalm.corpus import Corpus, builtin, workers
from tests.corpus.test_replaced import DAMAGED, INTACT

BOILERPLATE = "PAYLAŞ Yorum yaz Abone ol\nTüm hakları saklıdır © 2024 Haber Sitesi\n"


@pytest.fixture(scope="module")
def mixed(tmp_path_factory) -> Path:
    """Real speeches with a site's boilerplate, exact duplicates, damaged text restored from the rest, control
    characters, an empty file, an index, a table and code, in two folders."""
    folder = tmp_path_factory.mktemp("mixed")
    (folder / "a").mkdir()
    (folder / "b").mkdir()
    (folder / "a" / "000-damaged.txt").write_text(DAMAGED + "\n", encoding="utf-8")
    for n, (speech_id, text) in enumerate(builtin.iter_speeches()):
        if n == 40:
            break
        body = text + "\n" + BOILERPLATE if n % 2 else BOILERPLATE + text
        (folder / "ab"[n % 2] / f"{speech_id}.txt").write_text(body, encoding="utf-8")
    first = BOILERPLATE + next(builtin.iter_speeches())[1]
    (folder / "b" / "copy.txt").write_text(first, encoding="utf-8")  # the first speech's file again
    (folder / "b" / "intact.txt").write_text(INTACT + "\n", encoding="utf-8")
    (folder / "b" / "controls.txt").write_text("Ankara\x0b'da\x07 bugün hava güzeldi.\r\nYarın yağmur var.\n")
    (folder / "b" / "empty.txt").write_text("  \n\n")
    (folder / "b" / "index.txt").write_text("Dizin: " + ", ".join(f"(C-II){n}" for n in range(100, 400)) + "\n")
    table, code = "| yıl | nüfus |\n|---|---|\n" + "| 1990 | 56 |\n" * 20, "def f(x):\n    return x + 1\n\n"
    (folder / "b" / "notes.txt").write_text(f"{INTACT}\n\n{table}\n{INTACT[:90]}\n\n{code}", encoding="utf-8")
    return folder


def documents(folder: Path, n_workers: int):
    corpus = Corpus(CorpusConfig(paths=(str(folder),), filter_non_prose=True))
    found = [(d.text, d.source, d.name, d.non_prose, d.original) for d in corpus.documents(workers=n_workers)]
    return found, corpus.report


def test_worker_processes_give_the_documents_and_report_of_one_process(mixed: Path, monkeypatch):
    monkeypatch.setattr(workers, "BATCH_CHARS", 20_000)  # many batches, several in flight at once
    alone, alone_report = documents(mixed, 1)
    shared, shared_report = documents(mixed, 2)
    assert shared == alone and shared_report == alone_report
    sources = [Path(source).name for _, source, *_ in alone]
    assert sources[-1] == "000-damaged.txt" and "copy.txt" not in sources and "empty.txt" not in sources
    assert alone[-1][0].startswith("Türk Telekom'un reklamları Bakanlığı'na")  # restored in the main process
    assert alone_report.total("duplicates") == 1 and alone_report.total("controls_removed") == 2
    assert all("PAYLAŞ" not in text for text, *_ in alone)  # the boilerplate counted across the workers' batches
    reasons = {span.reason for *_, spans, _ in alone for span in spans}
    assert {"repeated", "table", "code"} <= reasons


def test_closing_the_documents_early_stops_the_workers(mixed: Path, monkeypatch):
    import multiprocessing

    monkeypatch.setattr(workers, "BATCH_CHARS", 20_000)
    stream = Corpus(CorpusConfig(paths=(str(mixed),), filter_non_prose=True)).documents(workers=2)
    first = next(stream)
    assert multiprocessing.active_children()
    stream.close()
    assert first.text and not multiprocessing.active_children()


def test_only_a_large_corpus_starts_workers(mixed: Path, monkeypatch):
    corpus = Corpus(CorpusConfig(paths=(str(mixed),)))
    monkeypatch.setattr(workers, "worker_count", lambda: 3)
    monkeypatch.setattr("lunalm.corpus.worker_count", lambda: 3)
    assert corpus._workers(None) == 1  # a few hundred KB
    monkeypatch.setattr("lunalm.corpus.PARALLEL_BYTES", corpus.bytes)
    assert corpus._workers(None) == 3 and corpus._workers(1) == 1



def test_a_compressed_corpus_counts_its_text_not_its_size_on_disk(tmp_path: Path, monkeypatch):
    """74 MB of JSONL in a 16 MB .jsonl.zst was read in one process (by its size on disk), 1.9 times as long."""
    import gzip

    text = "".join(text for _, (_, text) in zip(range(20), builtin.iter_speeches()))
    (tmp_path / "speeches.txt.gz").write_bytes(gzip.compress(text.encode("utf-8")))
    corpus = Corpus(CorpusConfig(paths=(str(tmp_path),)))
    monkeypatch.setattr("lunalm.corpus.worker_count", lambda: 3)
    monkeypatch.setattr("lunalm.corpus.PARALLEL_BYTES", 2 * corpus.bytes)
    assert corpus._workers(None) == 3
    monkeypatch.setattr("lunalm.corpus.PARALLEL_BYTES", 4 * corpus.bytes)
    assert corpus._workers(None) == 1


def _dies_in_a_worker(texts, rules, parent=os.getpid()):
    """``workers.digest``, except that a worker process running it is killed (as the kernel's OOM killer
    would) when its batch holds the built-in corpus's first speech."""
    if os.getpid() != parent and any("Arkadaşlar, bu gece burada sizleri" in text for text in texts):
        os._exit(9)
    return workers.digest(texts, rules)


def test_a_killed_worker_or_no_processes_at_all_leave_the_documents_as_they_are(mixed: Path, monkeypatch):
    monkeypatch.setattr(workers, "BATCH_CHARS", 20_000)
    alone, alone_report = documents(mixed, 1)
    monkeypatch.setattr("lunalm.corpus.workers_digest", _dies_in_a_worker)
    assert documents(mixed, 2) == (alone, alone_report)  # the broken pool's batches are read here instead

    def refused(*args, **kwargs):
        raise OSError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(workers, "ProcessPoolExecutor", refused)
    assert documents(mixed, 2) == (alone, alone_report)
