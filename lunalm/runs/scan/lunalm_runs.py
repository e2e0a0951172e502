"""lunalm's own run directories, read from the files ``luna train`` writes (see DESIGN.md, "Run directory"):
``config.yaml`` (the resolved config), ``summary.json`` (written by ``lunalm.train.milestones.finish``),
``metrics.jsonl`` and ``events.jsonl`` (``lunalm.train.metrics.RunLogger``).

The fingerprint is ``run_fingerprint(run_dir)``, the one a live run registers itself under, so scanning
a run the registry already knows updates that row instead of adding a second one.
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter

import yaml

from lunalm.runs.attempt import Attempt, model_label, run_fingerprint
from lunalm.runs.scan.reading import ScanStats, TextLines, Unreadable, read_bytes, read_json
from lunalm.runs.scan.series import LossSeries, metric_rows
from lunalm.runs.scan.task import FINE_TUNING, PRETRAINING
from lunalm.runs.scan.walk import Folder

MAX_SMALL_BYTES = 1 << 20  # config.yaml, summary.json
# Nodes a config.yaml may hold once its aliases are expanded: a resolved lunalm config has about 60, and a
# 554-byte "billion laughs" alias bomb expands to ~10^9 (the registry's JSON of it would never finish).
MAX_YAML_NODES = 100_000
_OUTCOMES = {"completed": "success", "stopped-early": "success", "diverged": "failure", "oom": "failure",
             "crashed": "failure", "interrupted": "unknown", "running": "unknown"}
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # safe: builds plain dicts/lists, never objects


def is_run_dir(folder: Folder) -> bool:
    names = folder.names()
    return "config.yaml" in names and ("metrics.jsonl" in names or "summary.json" in names)


def read_run(folder: Folder, stats: ScanStats) -> Attempt | None:
    """The attempt of a lunalm run directory, or None when its ``config.yaml`` is not lunalm's."""
    config = _config(os.path.join(folder.path, "config.yaml"), stats)
    if config is None:
        return None
    folder.subdirs.clear()  # checkpoints/, tb/, tokenizer/ belong to this run
    names = folder.names()
    summary = {}
    if "summary.json" in names:
        summary = read_json(os.path.join(folder.path, "summary.json"), stats, MAX_SMALL_BYTES, "summary.json")
        summary = summary if isinstance(summary, dict) else {}
    train, val = _metrics(os.path.join(folder.path, "metrics.jsonl"), stats) if "metrics.jsonl" in names \
        else (LossSeries(), LossSeries())
    events = _events(os.path.join(folder.path, "events.jsonl"), stats) if "events.jsonl" in names else {}
    attempt = Attempt(source="lunalm", path=folder.path, fingerprint=run_fingerprint(folder.path),
                      name=config.get("name") or os.path.basename(os.path.abspath(folder.path)),
                      started=folder.file("config.yaml").mtime, optimizer="AdamW")  # lunalm trains with AdamW
    _settings(attempt, config, summary)
    attempt.metrics = metric_rows(train, val)
    attempt.final_train_loss = train.last[1] if train.last else None
    if attempt.best_val_loss is None:
        finite = [value for _, value in val.all_points() if math.isfinite(value)]
        attempt.best_val_loss = min(finite) if finite else None
    _decide(attempt, summary, events, train)
    return attempt


def _config(path: str, stats: ScanStats) -> dict | None:
    data = read_bytes(path, stats, MAX_SMALL_BYTES, "config.yaml")
    try:
        check_expansion(data)
        config = yaml.load(data, Loader=_Loader)
    except yaml.YAMLError as error:
        raise Unreadable(f"invalid YAML: {str(error).splitlines()[0]}") from None
    shaped = isinstance(config, dict) and all(isinstance(config.get(key), dict) for key in ("model", "train"))
    return config if shaped else None


def read_yaml_mapping(path: str, stats: ScanStats, label: str) -> dict:
    """A small YAML file's top-level mapping (bounded read, alias bombs refused, nothing constructed), or {}
    when it is not valid YAML or not a mapping: Lightning's ``hparams.yaml``, W&B's ``config.yaml``."""
    data = read_bytes(path, stats, MAX_SMALL_BYTES, label)
    try:
        check_expansion(data)
        value = yaml.load(data, Loader=safe_loader())
    except yaml.YAMLError:  # e.g. !!python/object tags: never constructed
        return {}
    return value if isinstance(value, dict) else {}


def check_expansion(data: bytes) -> None:
    """Refuse YAML whose aliases expand to more than MAX_YAML_NODES nodes, counted on the parser's events
    (linear in the file's size; nothing is built): each alias counts the size of the node it repeats."""
    anchors: dict[str, int] = {}
    stack = [[None, 0]]  # [anchor, nodes so far] of each open collection; the bottom one is the stream
    for event in yaml.parse(data, Loader=_Loader):
        if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            stack.append([event.anchor, 1])
            continue
        if isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            anchor, size = stack.pop()
        elif isinstance(event, yaml.AliasEvent):
            if any(event.anchor == open_anchor for open_anchor, _ in stack):
                raise Unreadable("YAML alias refers to a node that contains it (a recursive structure)")
            anchor, size = None, anchors.get(event.anchor, 1)
        elif isinstance(event, yaml.ScalarEvent):
            anchor, size = event.anchor, 1
        else:
            continue
        if anchor:
            anchors[anchor] = size
        stack[-1][1] += size
        if stack[-1][1] > MAX_YAML_NODES:
            raise Unreadable(f"YAML aliases expand to more than {MAX_YAML_NODES:,} nodes (an alias bomb?)")


def safe_loader():
    """The YAML loader the scan uses: builds plain dicts and lists, never objects."""
    return _Loader


def _section(config: dict, name: str) -> dict:
    value = config.get(name)
    return value if isinstance(value, dict) else {}


def _settings(attempt: Attempt, config: dict, summary: dict) -> None:
    model, train, corpus = _section(config, "model"), _section(config, "train"), _section(config, "corpus")
    attempt.model = model_label(config)
    paths = corpus.get("paths") or []
    attempt.corpus = ", ".join(map(str, paths)) if paths else "built-in"
    attempt.lr, attempt.epochs = _number(train.get("lr")), _number(train.get("epochs"))
    attempt.batch_size = _integer(train.get("micro_batch_size"))
    attempt.grad_accum = _integer(train.get("grad_accum_steps"))
    attempt.precision = summary.get("precision") or _unless_auto(train.get("precision"))
    attempt.device = summary.get("device") or _unless_auto(train.get("device"))
    attempt.n_params, attempt.tokens_seen = _integer(summary.get("n_params")), _integer(summary.get("tokens_seen"))
    attempt.steps, attempt.best_val_loss = _integer(summary.get("steps")), _number(summary.get("best_val_loss"))
    attempt.wall_seconds = _number(summary.get("wall_time_s"))
    overrides = {key: value for key, value in model.items() if key != "preset" and value is not None}
    attempt.extra.update(model_overrides=overrides, context_length=_section(config, "data").get("context_length"))
    attempt.extra["task"] = FINE_TUNING if config.get("finetune") else PRETRAINING
    for key in ("total_steps", "tokens_per_s", "best_step", "rollbacks", "skipped_steps"):
        if summary.get(key) is not None:
            attempt.extra[key] = summary[key]


def _metrics(path: str, stats: ScanStats) -> tuple[LossSeries, LossSeries]:
    """Train and eval losses from ``metrics.jsonl``, streamed (the last record of a step wins, as in
    ``lunalm.train.metrics.loss_series``; NaN is written as null plus a ``nonfinite`` marker)."""
    train, val = LossSeries(), LossSeries()
    for _, line in TextLines(path, stats):
        record = _record(line)
        if record is None or record.get("kind") not in ("train", "val", "eval") or not isinstance(record.get("step"), int):
            continue
        loss = record.get("loss")
        marker = record.get("nonfinite")
        if loss is None and isinstance(marker, dict) and marker.get("loss") in ("nan", "inf", "-inf"):
            loss = float(marker["loss"])
        if isinstance(loss, (int, float)) and not isinstance(loss, bool):
            (train if record["kind"] == "train" else val).add(record["step"], float(loss))
    return train, val


def _record(line: str) -> dict | None:
    try:
        record = json.loads(line)
    except ValueError:  # a line cut off by kill -9
        return None
    return record if isinstance(record, dict) else None


def _events(path: str, stats: ScanStats) -> dict:
    """``{"counts": {kind: n}, "last": {kind: message}}`` from ``events.jsonl``, streamed."""
    counts: Counter[str] = Counter()
    last: dict[str, str] = {}
    for _, line in TextLines(path, stats):
        record = _record(line)
        if record and isinstance(record.get("kind"), str):
            counts[record["kind"]] += 1
            last[record["kind"]] = str(record.get("message", ""))[:300]
    return {"counts": dict(sorted(counts.items())), "last": last}


def _decide(attempt: Attempt, summary: dict, events: dict, train: LossSeries) -> None:
    """The outcome follows the run's own final status; without ``summary.json`` it is unknown."""
    status = summary.get("status")
    if events.get("counts"):
        attempt.extra["events"] = events["counts"]
    last_step = train.last[0] if train.last else None
    if status not in _OUTCOMES:
        attempt.evidence = (f"no summary.json status: still running or killed (last logged step {last_step})")
        return
    attempt.status, attempt.outcome = status, _OUTCOMES[status]
    steps = f"{summary.get('steps')}/{summary.get('total_steps')} steps"
    best = summary.get("best_val_loss")
    attempt.evidence = f"summary.json: status {status} after {steps}" + \
        (f", best val loss {best:.4g}" if isinstance(best, (int, float)) else "")
    if status == "oom":
        attempt.error_kind = "cpu-oom" if "cpu" in str(attempt.device).lower() else "cuda-oom"
    elif status == "diverged":
        attempt.error_kind = "nan-loss"
    elif status == "crashed":
        attempt.error_kind = "other-exception"
    message = events.get("last", {}).get(status)  # the "oom" / "diverged" event that ended the run
    if attempt.error_kind and message:
        attempt.error_message = message
        attempt.evidence += f"; events.jsonl: {message}"


def _unless_auto(value) -> str | None:
    return value if isinstance(value, str) and value != "auto" else None


def _number(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _integer(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
