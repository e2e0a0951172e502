"""MLflow's file store: ``mlruns/<experiment id>/<run id>/`` with ``meta.yaml`` (status, start and end time in
ms), ``params/<name>`` (one value a file), ``metrics/<name>`` (``timestamp value step`` lines; a name with a
``/`` is a folder) and ``tags/<name>`` (``mlflow.runName``, ``mlflow.source.name``). The experiment's own
``meta.yaml`` one folder up names it. ``artifacts/`` (a logged model, TensorBoard files) belongs to the run
and is not read: a model is a pickle or a saved graph.

Who writes it: ``mlflow.autolog()`` (Keras: ``opt_learning_rate``, ``opt_name``, metric ``loss``), the
Hugging Face Trainer's MLflowCallback (its arguments as params, metrics ``loss``, ``eval_loss``,
``learning_rate``), Lightning's MLFlowLogger, and ``mlflow.log_metric`` in scripts.
"""

from __future__ import annotations

import math
import os

from lunalm.runs.attempt import Attempt, fingerprint
from lunalm.runs.scan.effective import literal
from lunalm.runs.scan.logged_lr import LoggedLr
from lunalm.runs.scan.lunalm_runs import read_yaml_mapping
from lunalm.runs.scan.reading import ScanStats, TextLines, Unreadable, content_digest, read_bytes
from lunalm.runs.scan.scripts import fill_fields
from lunalm.runs.scan.series import LossSeries, decide, describe_trend, fill_losses, loss_names
from lunalm.runs.scan.walk import Folder

MAX_FILES = 2000  # params, metrics or tags read per run (a hostile run may hold millions)
MAX_PARAM_BYTES = 64 << 10  # MLflow caps a param value at 6000 characters
# RunStatus in meta.yaml: written as a number by the file store, as a name by some versions
_STATUS = {1: "RUNNING", 2: "SCHEDULED", 3: "FINISHED", 4: "FAILED", 5: "KILLED"}
LR_NAMES = ("learning_rate", "lr", "train/learning_rate", "lr-AdamW", "lr-Adam", "lr-SGD")


def is_run_dir(folder: Folder) -> bool:
    return "meta.yaml" in folder.names() and bool({"metrics", "params"} & set(folder.subdirs))


def read_run_dir(folder: Folder, stats: ScanStats) -> Attempt:
    """One attempt for a run folder: settings from its params, curves from its metrics, outcome from its
    status."""
    meta = read_yaml_mapping(os.path.join(folder.path, "meta.yaml"), stats, "MLflow meta.yaml")
    if not meta.get("run_id") and not meta.get("run_uuid"):
        raise Unreadable("meta.yaml names no run_id: not an MLflow run")
    folder.subdirs.clear()  # metrics/, params/, tags/, artifacts/ belong to this run
    tags = _values(os.path.join(folder.path, "tags"), stats)
    params = parsed_params(_values(os.path.join(folder.path, "params"), stats))
    attempt = Attempt(source="mlflow", path=folder.path, fingerprint=fingerprint("mlflow", folder.path),
                      name=_name(folder.path, meta, tags, stats))
    set_times(attempt, meta)
    fill_fields(attempt, params, "the MLflow run's params")
    train, val, lr, files = _metrics(os.path.join(folder.path, "metrics"), stats)
    fill_losses(attempt, train, val)
    attempt.steps = max((point[0] for point in (train.last, val.last) if point), default=None)
    lr.record(attempt.extra)
    source = tags.get("mlflow.source.name")
    if isinstance(source, str) and source:
        attempt.extra["program"] = source
    attempt.extra["mlflow_run_id"] = meta.get("run_id") or meta.get("run_uuid")
    where = {kind: f"metrics/{os.path.relpath(file, os.path.join(folder.path, 'metrics'))}"
             for kind, file in files.items()}
    decide_status(attempt, meta.get("status"), train, val, where, "meta.yaml")
    attempt.extra["content"] = content_digest([os.path.join(folder.path, "meta.yaml"), *files.values()], stats)
    return attempt


def _name(path: str, meta: dict, tags: dict, stats: ScanStats) -> str:
    """``<experiment name>/<run name>``: the run's ``mlflow.runName`` (or ``run_name``), else its id."""
    run = tags.get("mlflow.runName") or meta.get("run_name") or meta.get("name") or os.path.basename(path)
    experiment_meta = os.path.join(os.path.dirname(os.path.abspath(path)), "meta.yaml")
    experiment = {}
    if os.path.isfile(experiment_meta) and not os.path.islink(experiment_meta):
        try:
            experiment = read_yaml_mapping(experiment_meta, stats, "MLflow meta.yaml")
        except (Unreadable, OSError):
            experiment = {}
    label = experiment.get("name") or os.path.basename(os.path.dirname(os.path.abspath(path)))
    return f"{label}/{run}"


def set_times(attempt: Attempt, meta: dict) -> None:
    start, end = _number(meta.get("start_time")), _number(meta.get("end_time"))
    if start:
        attempt.started = start / 1000
        if end and end >= start:
            attempt.wall_seconds = (end - start) / 1000


def _values(path: str, stats: ScanStats) -> dict[str, str]:
    """``{name: text}`` of the files below ``path`` (a name with ``/`` is a folder), at most MAX_FILES."""
    values = {}
    for name, file in _files(path)[:MAX_FILES]:
        try:
            values[name] = read_bytes(file, stats, MAX_PARAM_BYTES, "MLflow value").decode("utf-8", "replace")
        except (Unreadable, OSError) as error:
            stats.skip(file, str(error))
    return values


def _files(path: str) -> list[tuple[str, str]]:
    """``(name, path)`` of the regular files below ``path``, by name; symlinks are not followed."""
    found, stack = [], [("", path)]
    while stack and len(found) < MAX_FILES:
        prefix, folder = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
        except OSError:
            continue
        for entry in entries:
            name = f"{prefix}{entry.name}"
            if entry.is_dir(follow_symlinks=False):
                stack.append((name + "/", entry.path))
            elif entry.is_file(follow_symlinks=False):
                found.append((name, entry.path))
    return sorted(found)


def parsed_params(texts: dict[str, str]) -> dict:
    """Params as the values they were (MLflow stores ``str(value)``): numbers, booleans, ``None`` left out.
    Keras autolog's ``opt_learning_rate`` and ``opt_name`` are the optimizer's lr and name."""
    values = {}
    for name, text in texts.items():
        value = _parsed(text.strip())
        if value is not None:
            values[name] = value
    for keras, plain in (("opt_learning_rate", "learning_rate"), ("opt_name", "optimizer")):
        if keras in values:
            values.setdefault(plain, values[keras])
    return values


def _parsed(text: str):
    return None if text in ("None", "") else literal(text)


def _metrics(path: str, stats: ScanStats) -> tuple[LossSeries, LossSeries, LoggedLr, dict[str, str]]:
    """The train and validation loss series, the logged lr, and ``{kind: metric file}`` of each loss."""
    files = dict(_files(path))
    names = loss_names(list(files))
    train, val, lr = LossSeries(), LossSeries(), LoggedLr()
    for kind, series in (("train", train), ("val", val)):
        if kind in names:
            _read_metric(files[names[kind]], series, stats)
    lr_name = next((name for name in LR_NAMES if name in files), None)
    if lr_name is not None:
        logged = LossSeries()
        _read_metric(files[lr_name], logged, stats)
        for step, value in logged.all_points():
            if math.isfinite(value) and value > 0:
                lr.add(value, step, f"metrics/{lr_name}")
    return train, val, lr, {kind: files[name] for kind, name in names.items()}


def _read_metric(path: str, series: LossSeries, stats: ScanStats) -> None:
    """``timestamp value step`` lines (older MLflow wrote no step: the line's ordinal stands for it)."""
    for number, line in TextLines(path, stats):
        parts = line.split()
        if len(parts) not in (2, 3):
            continue
        try:
            value = float(parts[1])
            step = int(parts[2]) if len(parts) == 3 else (number or len(series) + 1)
        except ValueError:
            continue
        series.add(step, value)


def decide_status(attempt: Attempt, status, train: LossSeries, val: LossSeries, where: dict[str, str],
                  record: str) -> None:
    """FAILED is a crash, KILLED an interruption; FINISHED is a run that ended without an error
    (``end_run()``), unless its loss went non-finite; RUNNING (never ended) leaves it to the curves.
    ``where`` names each loss's metric, ``record`` what holds the status (meta.yaml, mlflow.db)."""
    status = _STATUS.get(status, str(status or "").upper())
    series, what = (val, "val loss") if len(val) >= 2 else (train, "train loss")
    described = f"; {describe_trend(series, what)}" if series.trend() else ""
    last = train.last or val.last
    attempt.extra["mlflow_status"] = status or None
    if last and not math.isfinite(last[1]):
        decide(attempt, train, val, where, record)
    elif status == "FAILED":
        attempt.outcome, attempt.status, attempt.error_kind = "failure", "crashed", "other-exception"
        attempt.evidence = f"{record}: status FAILED (the run ended with an exception){described}"
    elif status == "KILLED":
        attempt.status = "interrupted"
        attempt.evidence = f"{record}: status KILLED{described}"
    elif status == "FINISHED":
        attempt.outcome, attempt.status = "success", "completed"
        attempt.evidence = f"{record}: status FINISHED (the run ended without an error){described}"
    else:
        decide(attempt, train, val, where, record)
        attempt.evidence += f" (status {status or 'unknown'})"


def _number(value) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(value) if isinstance(value, str) else None
    except ValueError:
        return None
