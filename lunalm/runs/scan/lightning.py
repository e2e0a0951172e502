"""PyTorch Lightning run folders: ``<save_dir>/<name>/version_N/`` with ``hparams.yaml`` (what
``save_hyperparameters()`` recorded) and ``metrics.csv`` (what ``self.log`` wrote through the CSVLogger)
or, from the default TensorBoardLogger, its event files (``tensorboard_events``).
``checkpoints/*.ckpt`` are pickles: only their names are read.

litgpt's runs log through Lightning Fabric: ``<out_dir>/logs/csv/version_N/metrics.csv`` alone (Fabric's
CSVLogger writes no ``hparams.yaml``) or ``logs/tensorboard/version_N/`` event files, and the settings are
in ``<out_dir>/final/hyperparameters.yaml`` (or a ``step-*`` checkpoint folder's, the newest).

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
from lunalm.runs.scan.scripts import fill_fields, flat_values, litgpt_values
from lunalm.runs.scan.series import LossSeries, decide, fill_losses, loss_names
from lunalm.runs.scan.tensorboard_events import EVENTS, curves, event_names, read_events, set_times
from lunalm.runs.scan.walk import Folder, subdirs

RECORD_FILES = ("hparams.yaml", "metrics.csv")  # what identifies the run by content (a renamed folder)
_VERSION = re.compile(r"version_(\d+)")
MAX_LISTED = 200  # folders listed while looking for runs below a script's folder


LITGPT_SETTINGS = "hyperparameters.yaml"
_LITGPT_STEP = re.compile(r"step-\d+")


def is_run_dir(folder: Folder) -> bool:
    names = folder.names()
    if set(RECORD_FILES) <= names or "hparams.yaml" in names and bool(event_names(folder)):
        return True
    return _VERSION.fullmatch(os.path.basename(folder.path)) is not None and (
        "metrics.csv" in names or bool(event_names(folder)) and litgpt_settings(folder.path) is not None)


def litgpt_settings(run: str) -> str | None:
    """The ``hyperparameters.yaml`` of the litgpt run that logged to ``<out_dir>/logs/<logger>/version_N``."""
    logs = os.path.dirname(os.path.dirname(os.path.abspath(run)))
    if os.path.basename(logs) != "logs":
        return None
    out = os.path.dirname(logs)
    final = os.path.join(out, "final", LITGPT_SETTINGS)
    if os.path.isfile(final):
        return final
    steps = sorted(name for name in subdirs(out) if _LITGPT_STEP.fullmatch(name)
                   and os.path.isfile(os.path.join(out, name, LITGPT_SETTINGS)))
    return os.path.join(out, steps[-1], LITGPT_SETTINGS) if steps else None


def _has_record(run: str) -> bool:
    try:
        return os.path.isfile(os.path.join(run, "metrics.csv")) or any(EVENTS.match(name) for name in os.listdir(run))
    except OSError:
        return False


def _record_time(run: str) -> float:
    """When the run last wrote its record (metrics.csv, else the folder: its event file grows in it)."""
    path = os.path.join(run, "metrics.csv")
    return os.path.getmtime(path if os.path.isfile(path) else run)


def run_dirs(path: str) -> list[str]:
    """Lightning run folders two or three levels below ``path`` (``lightning_logs/version_0``,
    ``logs/char/version_1``), oldest first by their record (``metrics.csv`` or event files)."""
    found, listed = [], 0
    stack = [(path, 0)]
    while stack and listed < MAX_LISTED:
        folder, depth = stack.pop()
        listed += 1
        for name in subdirs(folder):
            child = os.path.join(folder, name)
            if _VERSION.fullmatch(name) and _has_record(child):
                found.append(child)
            elif depth < 2 and not _VERSION.fullmatch(name) and name != "checkpoints":
                stack.append((child, depth + 1))
    return sorted(found, key=_record_time)


def read_run_dir(folder: Folder, stats: ScanStats) -> Attempt:
    """One attempt for a version folder: settings from ``hparams.yaml``, curves from ``metrics.csv``."""
    checkpoints = _checkpoints(folder)
    folder.subdirs.clear()  # checkpoints/ belongs to this run
    parent = os.path.basename(os.path.dirname(os.path.abspath(folder.path)))
    settings = "hparams.yaml" if "hparams.yaml" in folder.names() else litgpt_settings(folder.path)
    first = folder.file("hparams.yaml") or folder.file("metrics.csv")
    attempt = Attempt(source="lightning", path=folder.path, fingerprint=fingerprint("lightning", folder.path),
                      name=f"{parent}/{os.path.basename(folder.path)}", started=first.mtime if first else None)
    records = [os.path.join(folder.path, name) for name in RECORD_FILES if name in folder.names()]
    if settings == "hparams.yaml":
        fill_fields(attempt, _hparams(os.path.join(folder.path, settings), stats), settings)
    elif settings is not None:  # litgpt's: named after its out_dir ("lora-phi-2/version_0"), not "csv"
        out = os.path.dirname(os.path.dirname(settings))
        attempt.name = f"{os.path.basename(out)}/{os.path.basename(folder.path)}"
        label = os.path.relpath(settings, out)
        try:
            fill_fields(attempt, litgpt_values(flat_values(read_yaml_mapping(settings, stats, label))), label)
            records.append(settings)
        except (Unreadable, OSError) as error:  # the curves are still the run's
            attempt.extra["settings_unreadable"] = f"{label}: {error}"
        attempt.extra["output_dir"] = out
    if "metrics.csv" in folder.names():
        train, val, where = _metrics(os.path.join(folder.path, "metrics.csv"), stats)
        record = "metrics.csv"
    else:  # the TensorBoardLogger's event files
        names = [os.path.join(folder.path, name) for name in event_names(folder)]
        records += names
        events = read_events(names, stats)
        train, val, tags = curves(events)
        record = os.path.basename(names[0])
        where = {kind: f"{record}: {tag}" for kind, tag in tags.items()}
        set_times(attempt, events)
    fill_losses(attempt, train, val)
    attempt.steps = max((point[0] for point in (train.last, val.last) if point), default=None)
    decide(attempt, train, val, where, record)
    if checkpoints:
        attempt.extra["checkpoints"] = checkpoints  # names only: a .ckpt is a pickle, never opened
    attempt.extra["content"] = content_digest(records, stats)
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
    """Column numbers of ``step`` and of the train and validation losses (see ``series.loss_names``)."""
    columns = {"step": header.index("step")} if "step" in header else {}
    columns.update({kind: header.index(name) for kind, name in loss_names(header).items()})
    return columns or {"none": -1}


def _float(row: list[str], column: int | None) -> float | None:
    if column is None or column >= len(row) or not row[column]:
        return None
    try:
        return float(row[column])
    except ValueError:
        return None
