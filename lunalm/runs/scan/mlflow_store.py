"""MLflow's database store: ``mlflow.db``, the SQLite file ``mlflow ui --backend-store-uri sqlite:///mlflow.db``
and ``mlflow.set_tracking_uri("sqlite:///mlflow.db")`` write (and MLflow 3's default store). Its ``runs``
table holds each run's status and start and end time (ms), ``params``, ``tags`` and ``metrics`` (``key``,
``value``, ``step``, ``timestamp``, ``is_nan``) the rest, keyed by ``run_uuid``; ``experiments`` names them.
Each run is an attempt, read as the file store's run folder is (``lunalm.runs.scan.mlflow_runs``). Runs the
user deleted (``lifecycle_stage`` "deleted", kept until ``mlflow gc``) are left out, as the file store's
``.trash`` is.

The file is opened read-only and immutable: scanning never writes to it, nor waits on a lock. Thousands of
repositories commit an ``mlflow.db``; before this was read, ``luna scan`` passed over every run in it.
"""

from __future__ import annotations

import hashlib
import math
import sqlite3
import time
from contextlib import closing
from pathlib import Path
from urllib.parse import quote

from lunalm.runs.attempt import Attempt, fingerprint
from lunalm.runs.scan.logged_lr import LoggedLr
from lunalm.runs.scan.mlflow_runs import LR_NAMES, MAX_FILES, decide_status, parsed_params, set_times
from lunalm.runs.scan.reading import ScanStats, Unreadable, open_binary
from lunalm.runs.scan.scripts import fill_fields
from lunalm.runs.scan.series import LossSeries, fill_losses, loss_names

SQLITE_MAGIC = b"SQLite format 3\x00"
STORE_SUFFIXES = (".db", ".sqlite", ".sqlite3")
STORE_TABLES = {"runs", "metrics", "params", "tags", "experiments"}
MAX_RUNS = 5000  # runs read from one store
MAX_POINTS = 100_000  # points read of one metric


def is_store(path: str) -> bool:
    """Whether ``path`` is an MLflow SQLite store: its name, its first bytes, and its tables (lunalm's own
    registry.sqlite has none of them)."""
    if not path.lower().endswith(STORE_SUFFIXES):
        return False
    try:
        with open_binary(path) as handle:
            if handle.read(len(SQLITE_MAGIC)) != SQLITE_MAGIC:
                return False
        with closing(_connect(path)) as db:
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except (OSError, sqlite3.Error):
        return False
    return STORE_TABLES <= tables


def read_store(path: str, stats: ScanStats) -> list[Attempt]:
    """An attempt for every run in the store that was not deleted (a query running past the file's time is
    interrupted: ``ScanStats.check_time``)."""
    try:
        with closing(_connect(path)) as db:
            db.set_progress_handler(lambda: stats.deadline is not None and time.monotonic() > stats.deadline, 10_000)
            stats.bytes_read += Path(path).stat().st_size
            experiments = {str(row[0]): row[1] for row in db.execute("SELECT experiment_id, name FROM experiments")}
            runs = db.execute("SELECT run_uuid, name, status, start_time, end_time, experiment_id, lifecycle_stage "
                              "FROM runs ORDER BY start_time, run_uuid LIMIT ?", (MAX_RUNS,)).fetchall()
            keys: dict[str, list[str]] = {}
            for run_id, key in db.execute("SELECT DISTINCT run_uuid, key FROM metrics"):
                keys.setdefault(run_id, []).append(key)
            columns = {row[1] for row in db.execute("PRAGMA table_info(metrics)")}
            nan = "is_nan" if "is_nan" in columns else "0"  # stores of old MLflow versions have no is_nan
            attempts = []
            for run in runs:
                stats.check_time()
                if run[6] != "deleted":
                    attempts.append(_attempt(db, path, run, experiments, keys.get(run[0], []), nan))
            return attempts
    except sqlite3.Error as error:
        stats.check_time()  # an interrupted query: the file's time ran out
        raise Unreadable(f"an MLflow database that cannot be read ({error})") from None


def _connect(path: str) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{quote(str(Path(path).resolve()))}?mode=ro&immutable=1", uri=True)


def _attempt(db: sqlite3.Connection, path: str, run: tuple, experiments: dict, keys: list[str], nan: str) -> Attempt:
    run_id, name, status, start, end, experiment = run[:6]
    params = dict(db.execute("SELECT key, value FROM params WHERE run_uuid = ? LIMIT ?", (run_id, MAX_FILES)))
    tags = dict(db.execute("SELECT key, value FROM tags WHERE run_uuid = ? LIMIT ?", (run_id, MAX_FILES)))
    label = experiments.get(str(experiment)) or str(experiment)
    attempt = Attempt(source="mlflow", path=path, fingerprint=fingerprint("mlflow", path, run_id),
                      name=f"{label}/{tags.get('mlflow.runName') or name or run_id}")
    set_times(attempt, {"start_time": start, "end_time": end})
    fill_fields(attempt, parsed_params({key: value or "" for key, value in params.items()}),
                "the MLflow run's params")
    names = loss_names(keys)
    train, val = _series(db, run_id, names.get("train"), nan), _series(db, run_id, names.get("val"), nan)
    fill_losses(attempt, train, val)
    attempt.steps = max((point[0] for point in (train.last, val.last) if point), default=None) or None  # 0: one
    #                                                                                    point logged, no step
    lr, lr_name = LoggedLr(), next((key for key in LR_NAMES if key in keys), None)
    for step, value in _series(db, run_id, lr_name, nan).all_points():
        if math.isfinite(value) and value > 0:
            lr.add(value, step, f"metrics {lr_name}")
    lr.record(attempt.extra)
    source = tags.get("mlflow.source.name")
    if isinstance(source, str) and source:
        attempt.extra["program"] = source
    attempt.extra["mlflow_run_id"] = run_id
    where = {kind: f"mlflow.db metrics {key}" for kind, key in names.items()}
    decide_status(attempt, status, train, val, where, f"{Path(path).name} (run {run_id[:8]})")
    attempt.extra["content"] = _digest(run, params, train, val)
    return attempt


def _series(db: sqlite3.Connection, run_id: str, key: str | None, nan: str) -> LossSeries:
    """A metric's points in the order they were logged; a point MLflow stored as NaN is NaN. Points logged
    without a step (``mlflow.log_metric(key, value)`` stores step 0 for each) count in the order logged.
    ``nan``: the column that marks NaN points (``"0"`` in a store without one)."""
    series = LossSeries()
    if key is None:
        return series
    rows = db.execute(f"SELECT step, value, {nan} FROM metrics WHERE run_uuid = ? AND key = ? "
                      "ORDER BY timestamp, step LIMIT ?", (run_id, key, MAX_POINTS)).fetchall()
    ordinal = len({step for step, _, _ in rows}) == 1 < len(rows)
    for number, (step, value, is_nan) in enumerate(rows, 1):
        if value is None and not is_nan:
            continue
        series.add(number if ordinal or step is None else int(step), math.nan if is_nan else float(value))
    return series


def _digest(run: tuple, params: dict, train: LossSeries, val: LossSeries) -> str:
    """The run's identity by content: a store copied to another folder holds the same runs."""
    text = repr((run[:5], sorted(params.items()), train.all_points()[-5:], val.all_points()[-5:]))
    return hashlib.sha256(text.encode()).hexdigest()
