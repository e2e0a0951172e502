"""PyTorch Lightning run folders: ``<save_dir>/<name>/version_N/`` with ``hparams.yaml`` (what
``save_hyperparameters()`` recorded) and ``metrics.csv`` (what ``self.log`` wrote through the CSVLogger).
``checkpoints/*.ckpt`` are pickles: only their names are read.

The script that trained is found by the scanner (``Scanner._lightning_claims``): the one Lightning script
of a folder above the run lends its settings, and its log joins the newest run.
"""

from __future__ import annotations

import csv
import math
import os
import re

from lunalm.runs.attempt import Attempt, fingerprint
from lunalm.runs.scan.lunalm_runs import read_yaml_mapping
from lunalm.runs.scan.reading import ScanStats, TextLines, Unreadable, content_digest
from lunalm.runs.scan.scripts import fields_from_values, flat_values
from lunalm.runs.scan.series import LossSeries, describe_trend, metric_rows
from lunalm.runs.scan.walk import SKIP_DIRS, Folder

RECORD_FILES = ("hparams.yaml", "metrics.csv")  # what identifies the run by content (a renamed folder)
_VERSION = re.compile(r"version_(\d+)")
MAX_LISTED = 200  # folders listed while looking for runs below a script's folder
_VAL_WORDS = ("val", "valid", "eval")


def is_run_dir(folder: Folder) -> bool:
    return set(RECORD_FILES) <= folder.names()


def run_dirs(path: str) -> list[str]:
    """Lightning run folders two or three levels below ``path`` (``lightning_logs/version_0``,
    ``logs/char/version_1``), oldest first by their ``metrics.csv``."""
    found, listed = [], 0
    stack = [(path, 0)]
    while stack and listed < MAX_LISTED:
        folder, depth = stack.pop()
        listed += 1
        for name in _subdirs(folder):
            child = os.path.join(folder, name)
            if _VERSION.fullmatch(name) and os.path.isfile(os.path.join(child, "metrics.csv")):
                found.append(child)
            elif depth < 2 and not _VERSION.fullmatch(name) and name != "checkpoints":
                stack.append((child, depth + 1))
    return sorted(found, key=lambda run: os.path.getmtime(os.path.join(run, "metrics.csv")))


def _subdirs(path: str) -> list[str]:
    try:
        with os.scandir(path) as entries:
            return sorted(entry.name for entry in entries if entry.is_dir(follow_symlinks=False)
                          and not entry.name.startswith(".") and entry.name not in SKIP_DIRS)
    except OSError:
        return []


def read_run_dir(folder: Folder, stats: ScanStats) -> Attempt:
    """One attempt for a version folder: settings from ``hparams.yaml``, curves from ``metrics.csv``."""
    checkpoints = _checkpoints(folder)
    folder.subdirs.clear()  # checkpoints/ belongs to this run
    parent = os.path.basename(os.path.dirname(os.path.abspath(folder.path)))
    attempt = Attempt(source="lightning", path=folder.path, fingerprint=fingerprint("lightning", folder.path),
                      name=f"{parent}/{os.path.basename(folder.path)}", started=folder.file("hparams.yaml").mtime)
    hparams = _hparams(os.path.join(folder.path, "hparams.yaml"), stats)
    for name, value in fields_from_values({key: [value] for key, value in hparams.items()}).items():
        setattr(attempt, name, value)
        attempt.extra.setdefault("sources", {})[name] = "hparams.yaml"
    train, val, where = _metrics(os.path.join(folder.path, "metrics.csv"), stats)
    attempt.metrics = metric_rows(train, val)
    finite_val = [value for _, value in val.all_points() if math.isfinite(value)]
    attempt.best_val_loss = min(finite_val) if finite_val else None
    attempt.final_train_loss = train.last[1] if train.last else None
    attempt.steps = max((point[0] for point in (train.last, val.last) if point), default=None)
    _decide(attempt, train, val, where)
    if checkpoints:
        attempt.extra["checkpoints"] = checkpoints  # names only: a .ckpt is a pickle, never opened
    attempt.extra["content"] = content_digest([os.path.join(folder.path, name) for name in RECORD_FILES], stats)
    return attempt


def _checkpoints(folder: Folder) -> list[str]:
    if "checkpoints" not in folder.subdirs:
        return []
    try:
        return sorted(name for name in os.listdir(os.path.join(folder.path, "checkpoints")) if name.endswith(".ckpt"))
    except OSError:
        return []


def _hparams(path: str, stats: ScanStats) -> dict:
    return flat_values(read_yaml_mapping(path, stats, "hparams.yaml"))


def _metrics(path: str, stats: ScanStats) -> tuple[LossSeries, LossSeries, dict[str, str]]:
    """Train and validation loss series and where the last value of each is (``metrics.csv:25``)."""
    train, val, where = LossSeries(), LossSeries(), {}
    columns: dict[str, int] = {}
    for number, line in TextLines(path, stats):
        row = next(csv.reader([line]), [])
        if not columns:
            columns = _loss_columns(row)
            continue
        step = _float(row, columns.get("step"))
        for kind, series in (("train", train), ("val", val)):
            value = _float(row, columns.get(kind))
            if value is not None and step is not None and math.isfinite(step):
                series.add(int(step), value)
                where[kind] = f"metrics.csv:{number}" if number else "metrics.csv"
    if not columns:
        raise Unreadable("metrics.csv has no header")
    return train, val, where


def _loss_columns(header: list[str]) -> dict[str, int]:
    """Column numbers of ``step`` and of the train and validation losses (per-step columns preferred)."""
    losses = [(index, name) for index, name in enumerate(header) if "loss" in name.lower()]
    val = [index for index, name in losses if any(word in name.lower() for word in _VAL_WORDS)]
    train = [index for index, name in losses if index not in val and "test" not in name.lower()]
    train.sort(key=lambda index: header[index].endswith("_epoch"))
    columns = {"step": header.index("step")} if "step" in header else {}
    columns.update({kind: found[0] for kind, found in (("train", train), ("val", val)) if found})
    return columns or {"none": -1}


def _float(row: list[str], column: int | None) -> float | None:
    if column is None or column >= len(row) or not row[column]:
        return None
    try:
        return float(row[column])
    except ValueError:
        return None


def _decide(attempt: Attempt, train: LossSeries, val: LossSeries, where: dict[str, str]) -> None:
    last = train.last or val.last
    series, what, kind = (val, "val loss", "val") if len(val) >= 2 else (train, "train loss", "train")
    trend = series.trend()
    if last and not math.isfinite(last[1]):
        attempt.outcome, attempt.status, attempt.error_kind = "failure", "diverged", "nan-loss"
        attempt.evidence = f"{where.get(kind, 'metrics.csv')}: loss {last[1]} at step {last[0]}"
    elif trend and trend[1] < trend[0]:
        attempt.outcome = "success"
        attempt.evidence = f"{where[kind]}: {describe_trend(series, what)}, no error"
    else:
        attempt.evidence = (f"{where.get(kind, 'metrics.csv')}: {describe_trend(series, what)}: no improvement"
                            if trend else "metrics.csv: fewer than two losses logged")
