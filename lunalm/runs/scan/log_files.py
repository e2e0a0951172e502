"""A log file read into attempts: one per run it holds (``restarts``), each with the file's time stamps,
and LLaMA-Factory's results and config (``llamafactory``) beside its ``trainer_log.jsonl``."""

from __future__ import annotations

import hashlib
import os

from lunalm.runs.attempt import Attempt, fingerprint
from lunalm.runs.scan import hf_trainer, llamafactory
from lunalm.runs.scan.logs import LogParser, time_stamp
from lunalm.runs.scan.reading import ScanStats, TextLines
from lunalm.runs.scan.walk import FileEntry

PROBE_LINES = 20_000  # a .txt/.jsonl file with no training signal in this many lines ...
PROBE_BYTES = 4 << 20  # ... or bytes (a file without line breaks) is not a log
MARKDOWN_LOSS_LINES = 10  # losses at numbered steps that make a .md file a log
TEXT_DIGEST = "text_digest"  # extra key of a log's first attempt: its decoded text's digest (``distinct``)


def read_log(entry: FileEntry, stats: ScanStats, probe: bool = False, markdown: bool = False) -> list[Attempt]:
    """The attempts a log file records (one per run: see ``restarts``), none when it holds no training signal.

    ``probe``: give up after PROBE_LINES lines or PROBE_BYTES bytes without a signal (for ``.txt``/``.jsonl``
    and extensionless files, which are usually corpora or other text, not logs). ``markdown``: a ``.md``
    file is a log only with MARKDOWN_LOSS_LINES or more losses at numbered steps (``log.md`` holding a
    run's console output); notes that quote a loss or a traceback are not.
    """
    lines = TextLines(entry.path, stats)
    parser = LogParser(entry.name)
    before = stats.bytes_read
    text = hashlib.blake2b(digest_size=16)  # of the decoded lines: the same text in UTF-16 or CRLF is a copy
    for number, line in lines:
        if line:  # "\r\n" leaves an empty segment (``TextLines``): blank lines say nothing
            text.update(line.encode("utf-8", "surrogatepass") + b"\n")
        parser.feed(number, line)
        if probe and ((number or 0) > PROBE_LINES or stats.bytes_read - before > PROBE_BYTES) \
                and not parser.signals:
            return []
    runs = [*parser.runs, parser]
    if markdown and not (parser.real_steps and sum(len(run.train) + len(run.val) for run in runs)
                         >= MARKDOWN_LOSS_LINES):
        return []
    if not parser.signals:
        if not probe:  # a .log file, read whole: say why it is not an attempt (--verbose lists it)
            stats.skip(entry.path, "no training lines (no loss, error or end of training)")
        return []
    attempts = [_attempt(entry, run, index, len(runs)) for index, run in enumerate(runs, start=1)]
    if lines.skipped_bytes:
        attempts[-1].extra["skipped_middle_bytes"] = lines.skipped_bytes
    attempts[0].extra[TEXT_DIGEST] = text.hexdigest()
    if entry.name == "trainer_log.jsonl":  # LLaMA-Factory's output folder: the model and results beside it
        hf_trainer.folder_facts(attempts[-1], os.path.dirname(entry.path), stats)
        llamafactory.config_facts(attempts[-1], os.path.dirname(entry.path), stats)
    return attempts


def distinct(attempts: list[Attempt], seen: dict[str, Attempt], stats: ScanStats) -> list[Attempt]:
    """The attempts of logs whose text was not read before in this scan: a copy of a log (the same lines
    re-encoded as UTF-16, with CRLF line ends, or copied elsewhere) is the same run. The copy is listed as
    skipped, and in the first one's ``extra["copies"]`` when that one is not recorded yet."""
    kept, dropped = [], set()
    for attempt in attempts:
        digest = attempt.extra.pop(TEXT_DIGEST, None) if attempt.source == "log" else None
        first = seen.get(digest) if digest else None
        if first is not None:
            dropped.add(attempt.path)
            stats.skip(attempt.path, f"a copy of {first.path} (the same lines)")
            first.extra.setdefault("copies", []).append(attempt.path)
            continue
        if digest:
            seen[digest] = attempt
        if attempt.path not in dropped:
            kept.append(attempt)
    return kept


def _attempt(entry: FileEntry, run: LogParser, index: int, count: int) -> Attempt:
    """Run ``index`` of ``count`` in the file; the first keeps the file's own identity (and name)."""
    parent = os.path.basename(os.path.dirname(os.path.abspath(entry.path)))
    name = f"{parent}/{entry.name}" if parent else entry.name
    started = run.first_time if run.first_time is not None else time_stamp(entry.name)  # "2025-02-16 …log"
    attempt = Attempt(source="log", path=entry.path, fingerprint=run_fingerprint("log", entry.path, index),
                      name=name if count == 1 else f"{name} (run {index} of {count})",
                      started=started if started is not None else entry.mtime)
    run.fill(attempt)
    if run.first_time is not None and run.last_time is not None and attempt.wall_seconds is None \
            and run.last_time > run.first_time:
        attempt.wall_seconds = run.last_time - run.first_time
    if count > 1:
        attempt.extra["runs_in_file"] = {"run": index, "of": count}
    return attempt


def run_fingerprint(source: str, path: str, index: int) -> str:
    """The first run of a file is known by the file alone (as before files were split into runs); a later
    one by its place too, so a run appended later adds a record and changes none."""
    return fingerprint(source, path, "" if index == 1 else f"run {index}")
