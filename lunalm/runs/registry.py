"""The run registry: one SQLite file (WAL) with a row per training attempt and its loss series.

lunalm runs register themselves when they start, beat a heartbeat while they train and record how they
ended; ``luna scan`` imports foreign attempts into the same table. A row still ``running`` whose
heartbeat is stale and whose process is gone died silently (kill -9, power cut, OOM killer): the next
reader marks it ``crashed``.

Concurrency: WAL lets readers work while one process writes; every write is one short ``BEGIN IMMEDIATE``
transaction with a busy timeout, so two trainers (or a trainer and ``luna scan``) never lose a row.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import socket
import sqlite3
import time
from pathlib import Path

from lunalm.errors import ConfigError
from lunalm.runs.attempt import Attempt

STALE_AFTER_S = 600  # a running row silent this long, on another host or with a dead pid, has crashed
HEARTBEAT_EVERY_S = 30

COLUMNS = {  # column -> SQL type; the Attempt fields plus what live runs add
    "source": "TEXT", "path": "TEXT", "name": "TEXT", "status": "TEXT", "outcome": "TEXT", "evidence": "TEXT",
    "model": "TEXT", "corpus": "TEXT", "optimizer": "TEXT", "lr": "REAL", "batch_size": "INTEGER",
    "grad_accum": "INTEGER", "epochs": "REAL", "precision": "TEXT", "quantization": "TEXT", "lora": "TEXT",
    "device": "TEXT", "n_params": "INTEGER", "tokens_seen": "INTEGER", "steps": "INTEGER",
    "best_val_loss": "REAL", "best_val_bpb": "REAL", "final_train_loss": "REAL", "wall_seconds": "REAL",
    "tokens_per_s": "REAL", "error_kind": "TEXT", "error_message": "TEXT", "started": "REAL", "ended": "REAL",
    "heartbeat": "REAL", "pid": "INTEGER", "host": "TEXT", "config": "TEXT", "plan": "TEXT", "extra": "TEXT",
    "updated": "REAL",
}
JSON_COLUMNS = ("lora", "config", "plan", "extra")


def default_path(runs_dir: str | Path = "runs") -> Path:
    """$LUNALM_REGISTRY, else RUNS_DIR/registry.sqlite."""
    return Path(os.environ.get("LUNALM_REGISTRY") or Path(runs_dir) / "registry.sqlite")


class Registry:
    def __init__(self, path: str | Path, *, create: bool = True):
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise ConfigError(f"{self.path}: no run registry here yet; train a model (`luna train`) or import "
                              "past work (`luna scan DIR`), or point --registry at an existing file")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            self.db.row_factory = sqlite3.Row
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA busy_timeout=30000")
            self._create()
        except sqlite3.DatabaseError as error:
            raise ConfigError(f"{self.path}: not a usable lunalm registry ({error}); `luna runs repair` moves it "
                              "aside and rebuilds it") from None

    def close(self) -> None:
        self.db.close()

    def _create(self) -> None:
        columns = ", ".join(f"{name} {kind}" for name, kind in COLUMNS.items())
        with self._write():
            self.db.execute(f"CREATE TABLE IF NOT EXISTS runs (id TEXT PRIMARY KEY, {columns})")
            self.db.execute("CREATE TABLE IF NOT EXISTS metrics (id TEXT, step INTEGER, split TEXT, loss REAL, "
                            "PRIMARY KEY (id, step, split))")
            self.db.execute("CREATE INDEX IF NOT EXISTS runs_started ON runs (started)")
            self.db.execute("CREATE TABLE IF NOT EXISTS scans (time REAL, paths TEXT, files_seen INTEGER, "
                            "bytes_read INTEGER, attempts INTEGER, new INTEGER, skipped INTEGER)")

    def _write(self):
        return _Transaction(self.db)

    # --- writing ----------------------------------------------------------------------------------

    def upsert(self, run_id: str, **values) -> None:
        """Insert or update the row ``run_id`` with these columns (JSON columns take dicts)."""
        unknown = set(values) - set(COLUMNS)
        assert not unknown, f"unknown registry columns {unknown}"
        values = {k: json.dumps(v, ensure_ascii=False, default=str) if k in JSON_COLUMNS and v is not None
                  else v for k, v in values.items()}
        values["updated"] = time.time()
        names = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        updates = ", ".join(f"{k} = excluded.{k}" for k in values)
        with self._write():
            self.db.execute(f"INSERT INTO runs (id, {names}) VALUES (?, {marks}) "
                            f"ON CONFLICT(id) DO UPDATE SET {updates}", (run_id, *values.values()))

    def add_metrics(self, run_id: str, rows: list[tuple[int, str, float]]) -> None:
        """(step, split, loss) rows; the same step and split again replaces the value."""
        with self._write():
            self.db.executemany("INSERT OR REPLACE INTO metrics (id, step, split, loss) VALUES (?, ?, ?, ?)",
                                [(run_id, int(s), split, float(loss)) for s, split, loss in rows])

    def upsert_attempt(self, attempt: Attempt) -> bool:
        """Import a scanned attempt; True when it is new. Never overwrites a lunalm run's live fields."""
        existing = self.get(attempt.fingerprint, exact=True)
        if existing is not None and existing["source"] == "lunalm" and existing["pid"] is not None:
            return False  # registered live by the run itself: its own record is richer
        moved = existing is None and self._forget_moved(attempt)
        values = {f.name: getattr(attempt, f.name) for f in dataclasses.fields(Attempt)
                  if f.name not in ("fingerprint", "metrics") and f.name in COLUMNS}
        self.upsert(attempt.fingerprint, **values)
        if attempt.metrics:
            with self._write():
                self.db.execute("DELETE FROM metrics WHERE id = ?", (attempt.fingerprint,))
            self.add_metrics(attempt.fingerprint, attempt.metrics)
        return existing is None and not moved

    def _forget_moved(self, attempt: Attempt) -> bool:
        """Drop the record of this attempt from before its folder was moved or renamed (an attempt's id is
        its path): a row of the same source and figures whose path is gone, and whose file name is the same
        (a log, a notebook) or whose record files hold the same bytes (``extra["content"]`` of a Trainer,
        Lightning or W&B run folder, which a rename gives a new name)."""
        rows = self.db.execute(
            "SELECT id, path, extra FROM runs WHERE source = ? AND started IS ? AND steps IS ? "
            "AND final_train_loss IS ? AND best_val_loss IS ?",
            (attempt.source, attempt.started, attempt.steps, attempt.final_train_loss,
             attempt.best_val_loss)).fetchall()
        content = attempt.extra.get("content")
        gone = [row["id"] for row in rows if row["path"] and not os.path.exists(row["path"])
                and (os.path.basename(row["path"]) == os.path.basename(attempt.path)
                     or content is not None and _decode(row)["extra"].get("content") == content)]
        for run_id in gone:
            self.remove(run_id)
        return bool(gone)

    def record_scan(self, paths: list[str], files_seen: int, bytes_read: int, attempts: int, new: int,
                    skipped: int) -> None:
        with self._write():
            self.db.execute("INSERT INTO scans VALUES (?, ?, ?, ?, ?, ?, ?)",
                            (time.time(), json.dumps(paths), files_seen, bytes_read, attempts, new, skipped))

    def scans(self) -> list[dict]:
        """The latest scan of each distinct set of paths (rescans replace, they do not add up)."""
        rows = self.db.execute("SELECT * FROM scans ORDER BY time").fetchall()
        return list({row["paths"]: dict(row) for row in rows}.values())

    def remove(self, run_id: str) -> None:
        with self._write():
            self.db.execute("DELETE FROM metrics WHERE id = ?", (run_id,))
            self.db.execute("DELETE FROM runs WHERE id = ?", (run_id,))

    def mark_stale(self, now: float | None = None) -> int:
        """Mark silently dead runs crashed: stale heartbeat and (on this host) no live process."""
        now = now or time.time()
        rows = self.db.execute("SELECT id, pid, host, heartbeat, path, steps FROM runs "
                               "WHERE status = 'running'").fetchall()
        dead = [row for row in rows if _is_dead(row, now)]
        for row in dead:
            self.upsert(row["id"], status="crashed", outcome="failure", ended=now,
                        evidence="the process stopped without a word (killed, power cut or out of memory); "
                                 "`luna resume` continues it from its last checkpoint",
                        error_kind="killed", **_logged(row["path"], row["steps"]))
        return len(dead)

    # --- reading ----------------------------------------------------------------------------------

    def get(self, run_id: str, *, exact: bool = False) -> dict | None:
        """A row by id, or by a unique prefix of its id or its name."""
        row = self.db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None and not exact:
            rows = self.db.execute("SELECT * FROM runs WHERE id LIKE ? OR name LIKE ? OR path = ?",
                                   (run_id + "%", run_id + "%", str(Path(run_id).resolve()))).fetchall()
            if len(rows) > 1:
                raise ConfigError(f"{run_id!r} matches {len(rows)} runs: "
                                  + ", ".join(r["id"] for r in rows[:5]) + "; give more of the id")
            row = rows[0] if rows else None
        return _decode(row) if row is not None else None

    def find(self, *, status: str | None = None, model: str | None = None, corpus: str | None = None,
             source: str | None = None, since: float | None = None, outcome: str | None = None,
             limit: int | None = None) -> list[dict]:
        """Rows matching every given filter (model/corpus: substring), newest first."""
        clauses, params = [], []
        for column, value in (("status", status), ("source", source), ("outcome", outcome)):
            if value:
                clauses.append(f"{column} = ?")
                params.append(value)
        for column, value in (("model", model), ("corpus", corpus)):
            if value:
                clauses.append(f"{column} LIKE ?")
                params.append(f"%{value}%")
        if since:
            clauses.append("started >= ?")
            params.append(since)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        tail = f" LIMIT {int(limit)}" if limit else ""
        rows = self.db.execute(f"SELECT * FROM runs {where} ORDER BY started DESC, id{tail}", params)
        return [_decode(row) for row in rows.fetchall()]

    def metrics(self, run_id: str) -> list[tuple[int, str, float]]:
        rows = self.db.execute("SELECT step, split, loss FROM metrics WHERE id = ? ORDER BY step", (run_id,))
        return [(r["step"], r["split"], r["loss"]) for r in rows.fetchall()]


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``: takes the write lock up front so writers queue, never deadlock."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self):
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, kind, value, traceback):
        self.db.execute("ROLLBACK" if kind else "COMMIT")
        return False


def _decode(row: sqlite3.Row) -> dict:
    out = dict(row)
    for key in JSON_COLUMNS:
        if out.get(key):
            try:
                out[key] = json.loads(out[key])
            except ValueError:
                pass
    return out


def _logged(path: str | None, steps: int | None = None) -> dict:
    """What a lunalm run folder's metrics.jsonl says the run reached: its last step, best validation loss and
    last train loss (the heartbeat's figures are up to HEARTBEAT_EVERY_S old and hold no validation); the
    heartbeat's ``steps`` where they are further on."""
    from lunalm.train.metrics import loss_series, read_jsonl

    metrics = Path(path) / "metrics.jsonl" if path else None
    if metrics is None or not metrics.is_file():
        return {}
    try:
        series = loss_series(read_jsonl(metrics))
    except (OSError, ValueError):
        return {}
    train, val = series.get("train", ([], [])), series.get("val", ([], []))
    logged = {}
    if train[0]:
        logged.update(steps=max(train[0][-1], steps or 0), final_train_loss=train[1][-1])
    finite = [loss for loss in val[1] if math.isfinite(loss)]
    if finite:
        logged["best_val_loss"] = min(finite)
    return logged


def _is_dead(row, now: float) -> bool:
    if row["heartbeat"] is not None and now - row["heartbeat"] < STALE_AFTER_S:
        if row["host"] != socket.gethostname() or row["pid"] is None:
            return False
        return not _pid_alive(row["pid"])  # same host: we can tell at once
    return row["host"] != socket.gethostname() or row["pid"] is None or not _pid_alive(row["pid"])


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (killed, not yet reaped by its parent) is dead for our purposes
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True
