"""``luna scan DIR…`` (import past training attempts by reading files) and ``luna report``."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path


def run_scan(args) -> int:
    from tqdm import tqdm

    from lunalm.cli.runs import open_registry
    from lunalm.runs.scan import Scanner

    registry = open_registry(args, create=True)
    scanner = Scanner()
    outcomes, new = Counter(), 0
    with tqdm(unit=" files", file=sys.stderr, disable=args.quiet, desc="scanning") as bar:
        def progress(path: str, size: int) -> None:
            bar.update(1)

        for attempt in scanner.scan(args.paths, progress=progress):
            new += registry.upsert_attempt(attempt)
            outcomes[attempt.outcome] += 1
    stats = scanner.stats
    registry.record_scan([str(Path(p).resolve()) for p in args.paths], stats.files_seen, stats.bytes_read,
                         stats.attempts, new, stats.skipped_total)
    print(f"scanned {stats.files_seen:,} files ({stats.bytes_read / 1e6:,.1f} MB): {stats.attempts:,} training "
          f"attempts ({new:,} new) — {outcomes['success']:,} success, {outcomes['failure']:,} failure, "
          f"{outcomes['unknown']:,} unknown")
    if stats.skipped:
        reasons = Counter(reason.split(":")[0] for _, reason in stats.skipped)
        print(f"skipped {stats.skipped_total:,} files: " + ", ".join(f"{r} {n}" for r, n in reasons.most_common()))
        for path, reason in stats.skipped[: 5 if not args.verbose else None]:
            print(f"  {path}: {reason}")
    print(f"registry: {registry.path}  (see `luna runs list --source log`, `luna report`)")
    return 0


def run_report(args) -> int:
    from lunalm.cli.runs import open_registry
    from lunalm.corpus.discover import REPORT_TITLE
    from lunalm.runs.report import build_report, to_html, to_markdown

    registry = open_registry(args)
    rows = registry.find()
    out = Path(args.out)
    sections = build_report(rows, registry.scans(), out.parent)
    title = REPORT_TITLE  # its first bytes tell the corpus readers not to train on it (lunalm.corpus.discover)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(to_markdown(sections, title), encoding="utf-8")
    tmp.replace(out)
    print(f"wrote {out} ({len(rows):,} attempts)")
    if args.html:
        page = out.with_suffix(".html")
        page.write_text(to_html(sections, title), encoding="utf-8")
        print(f"wrote {page}")
    return 0
