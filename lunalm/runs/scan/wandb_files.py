"""Weights & Biases run files: ``wandb/run-<date>-<id>/files/`` (or those files copied next to a script), with
``wandb-metadata.json`` (start time, program, command-line arguments, GPU), ``wandb-summary.json`` (the
last value of every logged metric, ``_runtime`` in seconds), ``config.yaml`` (``wandb.config``: each key
as ``{desc, value}``) and ``output.log`` (the console output, read as a log for the curve and errors).

The binary ``run-<id>.wandb`` file is never read. The summary holds the *last* logged values, so a
validation loss from it is called that, not the best.
"""

from __future__ import annotations

import math
import os
import re
from datetime import datetime


from lunalm.runs.attempt import Attempt, fingerprint
from lunalm.runs.scan.logs import LogParser
from lunalm.runs.scan.lunalm_runs import MAX_SMALL_BYTES, read_yaml_mapping
from lunalm.runs.scan.reading import ScanStats, TextLines, Unreadable, content_digest, read_json
from lunalm.runs.scan.scripts import fill_fields, flat_values, planned_steps
from lunalm.runs.scan.walk import Folder

FILES = ("wandb-summary.json", "wandb-metadata.json")
RECORD_FILES = (*FILES, "config.yaml", "output.log")  # what identifies the run by content (a renamed folder)
_TRAIN_KEYS = ("train/loss", "train_loss", "loss", "train/train_loss", "training_loss", "train/epoch_loss")
_VAL_KEYS = ("eval/loss", "val/loss", "val_loss", "eval_loss", "validation/loss", "valid/loss", "valid_loss",
             "validation_loss", "val/epoch_loss")
_STEP_KEYS = ("train/global_step", "global_step", "trainer/global_step", "step", "iter")
_EPOCH_KEYS = ("train/epoch", "epoch")
_INTERNAL_LOG = re.compile(r"debug(?:-internal|-cli\.[\w.-]+)?\.log")
_ARGUMENT = re.compile(r"^--?([A-Za-z_][\w.-]*)(?:=(.*))?$")


def is_run_files(folder: Folder) -> bool:
    return any(name in folder.names() for name in FILES)


def read_run_files(folder: Folder, stats: ScanStats) -> Attempt:
    """One attempt from a W&B run's files (their ``output.log`` included, which is not read again)."""
    summary = _json(folder, "wandb-summary.json", stats)
    metadata = _json(folder, "wandb-metadata.json", stats)
    config = _config(folder, stats)
    wandb = config.pop("_wandb", None)
    values = {**_arguments(metadata.get("args")), **flat_values(config)}
    name = _run_name(folder.path)
    attempt = Attempt(source="wandb", path=folder.path, fingerprint=fingerprint("wandb", folder.path), name=name,
                      started=_started(metadata, wandb, summary, folder))
    fill_fields(attempt, values, "the W&B run's config and arguments")
    parser = _output_log(folder, stats)
    if parser is not None:
        parser.fill(attempt)
    runtime = _first(summary, ("train/train_runtime", "train_runtime")) or _number(summary.get("_runtime"))
    attempt.wall_seconds = attempt.wall_seconds or (runtime if runtime and runtime > 0 else None)
    train, val = _first(summary, _TRAIN_KEYS), _first(summary, _VAL_KEYS)
    if train is not None:  # what the run logged last, over a console line (Keras prints evaluate()'s loss last)
        attempt.final_train_loss = train
    if attempt.best_val_loss is None and val is not None and math.isfinite(val):
        attempt.best_val_loss = val
        attempt.extra.setdefault("sources", {})["best_val_loss"] = "wandb-summary.json: the last value logged"
    step = _first(summary, _STEP_KEYS)
    if step is not None and math.isfinite(step) and step > (attempt.steps or 0):
        attempt.steps = int(step)
    attempt.device = attempt.device or metadata.get("gpu") or metadata.get("gpu_type") \
        or (wandb or {}).get("gpu_type") or None
    program = metadata.get("program") or metadata.get("codePath")
    if isinstance(program, str) and program:
        attempt.extra["program"] = program
    if parser is None or attempt.outcome == "unknown":
        _decide(attempt, summary, train, val)
    planned = planned_steps({key: [value] for key, value in values.items()})
    if planned is not None:
        attempt.extra["max_steps"] = planned
        _reached_plan(attempt, planned)
    if attempt.outcome == "unknown":
        _interrupted(attempt, folder, stats)
    attempt.extra["content"] = content_digest([os.path.join(folder.path, name) for name in RECORD_FILES], stats)
    return attempt


def program_name(attempt: Attempt) -> str | None:
    """The file name of the script the run recorded (``train_simple.py``), to pair it with that script."""
    program = attempt.extra.get("program")
    return os.path.basename(program) if isinstance(program, str) and program.endswith(".py") else None


def _decide(attempt: Attempt, summary: dict, train: float | None, val: float | None) -> None:
    last = ", ".join(f"{what} {value:.4g}" for what, value in (("train loss", train), ("val loss", val))
                     if value is not None)
    last = f" (last logged: {last})" if last else ""
    epoch = _first(summary, _EPOCH_KEYS)
    if (train is not None and not math.isfinite(train)) or (val is not None and not math.isfinite(val)):
        attempt.outcome, attempt.status, attempt.error_kind = "failure", "diverged", "nan-loss"
        attempt.evidence = f"wandb-summary.json: a non-finite loss{last}"
    elif "train_runtime" in summary or "train/train_runtime" in summary:
        attempt.outcome, attempt.status = "success", "completed"
        attempt.evidence = f"wandb-summary.json: train() returned (train_runtime logged){last}"
    elif epoch is not None and attempt.epochs and epoch + (1 if float(epoch).is_integer() else 0) >= attempt.epochs:
        attempt.outcome, attempt.status = "success", "completed"
        counted = " (counted from 0)" if float(epoch).is_integer() and epoch < attempt.epochs else ""
        attempt.evidence = f"wandb-summary.json: epoch {epoch:g}{counted} of {attempt.epochs:g} logged last{last}"
    else:
        attempt.evidence = (f"wandb-summary.json: " + (f"epoch {epoch:g} logged last" if epoch is not None
                                                        else "the last logged values") +
                            f"{last}: no sign that the run finished")


def _reached_plan(attempt: Attempt, planned: int) -> None:
    """A run that logged the step its config planned as the last (nanoGPT's ``max_iters``) finished, whatever
    its loss did after (jackokeefe11/nanoGPT: two runs of max_iters 5000 that both end at ``iter 5000``, one
    called unknown because its val loss rose)."""
    if (attempt.steps or 0) >= planned and attempt.outcome != "failure" \
            and attempt.status not in ("completed", "stopped-early"):
        attempt.outcome, attempt.status = "success", "completed"
        attempt.evidence = f"config.yaml: {planned} steps planned, and step {attempt.steps} was logged"


def _interrupted(attempt: Attempt, folder: Folder, stats: ScanStats) -> None:
    """The W&B library's own ``logs/debug.log`` beside ``files/`` records a Ctrl-C that the run's files do
    not (it is read for that alone, and is no attempt of its own: :func:`is_internal_log`)."""
    path = os.path.join(os.path.dirname(os.path.abspath(folder.path)), "logs", "debug.log")
    if os.path.basename(folder.path) != "files" or not os.path.isfile(path) or os.path.islink(path):
        return
    parser = LogParser("logs/debug.log")
    for number, line in TextLines(path, stats):
        parser.feed(number, line)
    verdict = parser.verdict()
    if verdict.error_kind == "keyboard-interrupt":
        attempt.outcome, attempt.status, attempt.evidence = verdict.outcome, verdict.status, verdict.evidence
        attempt.error_kind, attempt.error_message = verdict.error_kind, verdict.error_message


def is_internal_log(path: str) -> bool:
    """The W&B library's logs (``wandb/debug.log``, ``wandb/run-*/logs/debug-internal.log``): its own doings,
    never a training run's output."""
    parts = os.path.abspath(path).split(os.sep)
    return "wandb" in parts[:-1] and _INTERNAL_LOG.fullmatch(parts[-1]) is not None


def _json(folder: Folder, name: str, stats: ScanStats) -> dict:
    if name not in folder.names():
        return {}
    value = read_json(os.path.join(folder.path, name), stats, MAX_SMALL_BYTES, name)
    if not isinstance(value, dict):
        raise Unreadable(f"{name} is not a JSON object")
    return value


def _config(folder: Folder, stats: ScanStats) -> dict:
    """``config.yaml``'s values (``key: {desc, value}`` in W&B's format), or {}."""
    if "config.yaml" not in folder.names():
        return {}
    loaded = read_yaml_mapping(os.path.join(folder.path, "config.yaml"), stats, "config.yaml")
    return {key: item["value"] if isinstance(item, dict) and "value" in item else item
            for key, item in loaded.items() if isinstance(key, str) and key != "wandb_version"}


def _arguments(args) -> dict:
    """``["--lr=0.0016", "--epochs", "50"]`` as ``{"lr": 0.0016, "epochs": 50}``."""
    values: dict = {}
    items = [item for item in args if isinstance(item, str)] if isinstance(args, list) else []
    for index, item in enumerate(items):
        match = _ARGUMENT.match(item)
        if match is None:
            continue
        text = match.group(2)
        if text is None and index + 1 < len(items) and not items[index + 1].startswith("-"):
            text = items[index + 1]
        values[match.group(1).replace("-", "_")] = _literal(text) if text is not None else True
    return values


def _literal(text: str):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _started(metadata: dict, wandb: dict | None, summary: dict, folder: Folder) -> float:
    """The run's start: the metadata's ``startedAt``, W&B's own ``start_time``, the summary's last time stamp
    less the runtime, else the files' time."""
    text = metadata.get("startedAt") or metadata.get("started_at")  # wandb >= 0.19 writes snake_case
    if isinstance(text, str):
        try:
            return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    start = _number((wandb or {}).get("start_time"))
    if start:
        return start
    stamp, runtime = _number(summary.get("_timestamp")), _number(summary.get("_runtime"))
    if stamp and runtime is not None:
        return stamp - runtime
    entry = folder.file("wandb-summary.json") or folder.file("wandb-metadata.json")
    return entry.mtime


def _output_log(folder: Folder, stats: ScanStats) -> LogParser | None:
    if "output.log" not in folder.names():
        return None
    parser = LogParser("output.log")
    for number, line in TextLines(os.path.join(folder.path, "output.log"), stats):
        parser.feed(number, line)
    return parser if parser.signals else None


def _run_name(path: str) -> str:
    """``run-20210217_171051-3f2a/files`` is named by its run folder; copied files by their folder."""
    folder = os.path.abspath(path)
    if os.path.basename(folder) == "files":
        folder = os.path.dirname(folder)
    parent = os.path.basename(os.path.dirname(folder))
    return f"{parent}/{os.path.basename(folder)}" if parent else os.path.basename(folder)


def _first(summary: dict, keys: tuple[str, ...]) -> float | None:
    for key in keys:
        value = _number(summary.get(key))
        if value is not None:
            return value
    return None


def _number(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
