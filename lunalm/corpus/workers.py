"""Worker processes for the per-document work of reading a corpus: cleaning, the damage check and the
prose filter's judging of sentences and lines.

``Corpus.documents`` keeps everything that depends on the documents before (de-duplication, the restorer's
words, the boilerplate counts) in the main process, in corpus order; what a document gives on its own is
worked out here, in order too, by a pool of processes fed batches of ~``BATCH_CHARS``. The result is the
same as in one process (``tests/corpus/test_workers.py`` compares them); only corpora of ``PARALLEL_BYTES``
or more use the pool, since starting it costs a fraction of a second.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import signal
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

from lunalm.corpus.clean import clean_text
from lunalm.corpus.prose import Judged, ProseRules, judge, judge_keys
from lunalm.corpus.replaced import is_damaged

PARALLEL_BYTES = 16 * 2**20  # corpora of at least this many bytes are read with worker processes
BATCH_CHARS = 2**20  # characters of raw text sent to a worker at a time
MAX_WORKERS = 16  # past this, the main process (counts, de-duplication, encoding) is the bottleneck


@dataclass
class Digest:
    """One raw document, cleaned and judged on its own."""

    text: str | None  # the cleaned text; None: the raw text was clean already (saves sending it back)
    removed: int  # control characters dropped
    references: int  # HTML character references decoded
    damaged: bool  # letters replaced by "�" (lunalm.corpus.replaced): judged after restoration instead
    judged: Judged | None  # None when not judging, or the text is empty or damaged


def digest(texts: list[str], rules: ProseRules | None) -> list[Digest]:
    """Each raw text cleaned; judged by the prose filter's ``rules`` when given."""
    digests = []
    for raw in texts:
        text, removed, references = clean_text(raw)
        empty = not text.strip()
        damaged = not empty and is_damaged(text)
        judged = judge(text, rules) if rules is not None and not empty and not damaged else None
        digests.append(Digest(None if text == raw else text, removed, references, damaged, judged))
    return digests


def first_keys(texts: list[str], rules: ProseRules | None) -> list[tuple[bytes, int, set[str]] | None]:
    """For each raw text, cleaned: (``text_digest``, length, the sentences boilerplate priming counts), or
    None when it is empty (``rules`` unused)."""
    keyed = []
    for raw in texts:
        text = clean_text(raw)[0]
        keyed.append((text_digest(text), len(text), judge_keys(text)) if text.strip() else None)
    return keyed


def text_digest(text: str) -> bytes:
    """What de-duplication compares: 16 bytes of BLAKE2b of the text."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def worker_count() -> int:
    """Processes for a large corpus: the CPUs this process may use, up to MAX_WORKERS; 1 means none (also
    inside a daemon process, such as a data loader's worker, which may not start processes of its own)."""
    if multiprocessing.current_process().daemon:
        return 1
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cpus = os.cpu_count() or 1
    return min(cpus, MAX_WORKERS)


def in_order(items: Iterable, text_of: Callable, work: Callable, rules: ProseRules | None,
             workers: int) -> Iterator[tuple[object, object]]:
    """(item, result) for each item, in order, where the result is ``work([text_of(item)], rules)[0]``;
    computed by ``workers`` processes when more than one (a few batches ahead, so memory stays bounded).
    Closing the iterator early stops the processes."""
    if workers <= 1:
        for item in items:
            yield item, work([text_of(item)], rules)[0]
        return
    # The tokenizer library prints a warning in every forked child once it has used its threads; the
    # workers never use it, and the parent's setting is the library's default either way.
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")
    try:
        pool = ProcessPoolExecutor(workers, mp_context=_context(), initializer=_ignore_interrupts)
    except (OSError, ValueError, NotImplementedError):  # no processes to be had here: read in this one
        yield from in_order(items, text_of, work, rules, 1)
        return
    pending: deque = deque()

    def submit(batch: list):
        """The batch's future, or None once the pool is broken (a worker killed, for memory perhaps)."""
        try:
            return pool.submit(work, [text_of(item) for item in batch], rules)
        except (BrokenProcessPool, RuntimeError, OSError):  # OSError: no process could be forked
            return None

    def results(batch: list, future) -> Iterator:
        try:
            if future is not None:
                return zip(batch, future.result())
        except BrokenProcessPool:
            pass
        return zip(batch, work([text_of(item) for item in batch], rules))  # the same result, in this process

    try:
        batch, chars = [], 0
        for item in items:
            batch.append(item)
            chars += len(text_of(item))
            if chars >= BATCH_CHARS:
                pending.append((batch, submit(batch)))
                batch, chars = [], 0
                if len(pending) > 2 * workers:
                    yield from results(*pending.popleft())
        if batch:
            pending.append((batch, submit(batch)))
        while pending:
            yield from results(*pending.popleft())
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _context():
    """fork where it is safe (Linux: no re-import of the caller's script, as spawn would do with a script
    lacking ``if __name__ == "__main__"``), else the platform's default (spawn on macOS and Windows)."""
    if sys.platform.startswith("linux"):
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context()


def _ignore_interrupts() -> None:
    """Ctrl-C is the main process's to handle: it stops the pool (no traceback from every worker)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
