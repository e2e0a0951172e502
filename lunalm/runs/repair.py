"""``luna runs repair``: rebuild a damaged registry from what it still holds and from the runs' side logs.

A run that cannot write the registry (a garbage file, a corrupt page, a locked or read-only disk) keeps
training and appends each write it could not make to ``RUN_DIR/registry-pending.jsonl`` (the side log).
Repair moves the damaged file aside (never deletes it), copies every row that can still be read into a
fresh registry, then replays the side logs found under the runs folder, oldest write first.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from lunalm.runs.registry import COLUMNS, JSON_COLUMNS, Registry

SIDE_LOG = "registry-pending.jsonl"


@dataclass(frozen=True, kw_only=True)
class RepairReport:
    path: Path  # the rebuilt registry
    moved_to: Path | None  # where the damaged file went (None: there was none)
    rows_salvaged: int  # runs rows read back from the damaged file
    metrics_salvaged: int  # metric rows read back from it
    writes_replayed: int  # side-log entries applied
    side_logs: int  # side-log files found


def append_side_log(run_dir: Path, run_id: str, values: dict) -> None:
    """Remember one registry write that failed (JSON values as given; the registry encodes them)."""
    record = {"id": run_id, "time": time.time(), "values": values}
    with open(Path(run_dir) / SIDE_LOG, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")


def repair_registry(path: Path, runs_dir: Path) -> RepairReport:
    path = Path(path)
    rows, metrics = _salvage(path) if path.exists() else ([], [])
    moved_to = _move_aside(path) if path.exists() else None
    registry = Registry(path)
    try:
        for row in rows:
            registry.upsert(row.pop("id"), **row)
        if metrics:
            with registry._write():
                registry.db.executemany("INSERT OR REPLACE INTO metrics (id, step, split, loss) VALUES (?, ?, ?, ?)",
                                        metrics)
        logs = sorted(Path(runs_dir).glob(f"*/{SIDE_LOG}"))
        replayed = sum(_replay(registry, log) for log in logs)
    finally:
        registry.close()
    return RepairReport(path=path, moved_to=moved_to, rows_salvaged=len(rows), metrics_salvaged=len(metrics),
                        writes_replayed=replayed, side_logs=len(logs))


def _salvage(path: Path) -> tuple[list[dict], list[tuple]]:
    """Every runs and metrics row still readable, reading from both ends past a damaged page."""
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error:
        return [], []
    db.row_factory = sqlite3.Row
    try:
        runs = _readable(db, "SELECT * FROM runs ORDER BY rowid {}")
        metrics = _readable(db, "SELECT id, step, split, loss FROM metrics ORDER BY rowid {}")
    finally:
        db.close()
    known = {row["id"]: {k: _decoded(k, row[k]) for k in row.keys() if k == "id" or k in COLUMNS} for row in runs}
    return list(known.values()), list({(m["id"], m["step"], m["split"]): tuple(m) for m in metrics}.values())


def _decoded(column: str, value):
    """A JSON column's stored text as the value ``Registry.upsert`` takes (it encodes JSON columns itself: the
    text as it was would be stored as a JSON string, and ``runs compare`` could no longer read the config)."""
    if column in JSON_COLUMNS and isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _readable(db: sqlite3.Connection, query: str) -> list[sqlite3.Row]:
    rows = []
    for order in ("ASC", "DESC"):
        try:
            for row in db.execute(query.format(order)):
                rows.append(row)
        except sqlite3.DatabaseError:
            continue  # a damaged page: what came before it is kept, the other direction reads past it
        if order == "ASC":
            break  # read to the end: nothing was missed
    return rows


def _move_aside(path: Path) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = path.with_name(f"{path.name}.damaged-{stamp}")
    for suffix in ("", "-wal", "-shm"):
        part = Path(f"{path}{suffix}")
        if part.exists():
            part.rename(Path(f"{target}{suffix}"))
    return target


def _replay(registry: Registry, log: Path) -> int:
    """Apply one side log, then rename it (``.replayed``) so a later repair cannot apply old values again."""
    count = 0
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
            values = {k: v for k, v in record["values"].items() if k in COLUMNS}
            registry.upsert(str(record["id"]), **values)
        except (ValueError, KeyError, TypeError, AttributeError):
            continue  # a line cut short by a crash
        count += 1
    log.rename(log.with_name(f"{log.name}.replayed-{time.strftime('%Y%m%d-%H%M%S')}"))
    return count
