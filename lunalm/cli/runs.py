"""``luna runs list|show|compare|rm``: the run registry on the console."""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path

from lunalm.errors import ConfigError


def open_registry(args, create: bool = False):
    from lunalm.runs.registry import Registry, default_path

    registry = Registry(args.registry or default_path(args.runs_dir), create=create)
    registry.mark_stale()
    return registry


def run_runs(args) -> int:
    import sqlite3

    if args.action == "repair":
        return _repair(args)
    try:
        registry = open_registry(args)
        action = {"list": _list, "show": _show, "compare": _compare, "rm": _remove}[args.action]
        return action(registry, args)
    except sqlite3.DatabaseError as error:  # a page damaged past the first one shows only when read
        from lunalm.runs.registry import default_path

        path = args.registry or default_path(args.runs_dir)
        raise ConfigError(f"{path}: the run registry is damaged ({error}); `luna runs repair` moves it aside and "
                          "rebuilds it from the rows still readable and the runs' side logs") from None


def _repair(args) -> int:
    from lunalm.runs.registry import default_path
    from lunalm.runs.repair import repair_registry

    report = repair_registry(Path(args.registry or default_path(args.runs_dir)), Path(args.runs_dir))
    if report.moved_to is not None:
        print(f"moved the old registry to {report.moved_to}")
    print(f"rebuilt {report.path}: {report.rows_salvaged} run(s) and {report.metrics_salvaged} metric value(s) "
          f"read back, {report.writes_replayed} write(s) replayed from {report.side_logs} side log(s) in "
          f"{args.runs_dir}")
    return 0


def _since(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise ConfigError(f"--since {text!r}: expected a date such as 2026-11-01") from None


def _list(registry, args) -> int:
    rows = registry.find(status=args.status, model=args.model, corpus=args.corpus, source=args.source,
                         since=_since(args.since), outcome=args.outcome, limit=args.limit)
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False, default=str))
        return 0
    if not rows:
        print("no runs match" if any((args.status, args.outcome, args.model, args.corpus, args.source, args.since))
              else f"no runs recorded in {registry.path} yet")
        return 0
    wide = min(40, max([20] + [len(row["model"] or "") for row in rows]))  # fine-tunes name base and data
    ids = max([24] + [len(row["id"]) for row in rows])
    header = (f"{'id':<{ids}} {'started':<16} {'status':<13} {'model':<{wide}} {'params':>8} {'tokens':>9} "
              f"{'best val':>8}  name / path")
    print(header)
    print("-" * len(header))
    for row in rows:
        print(f"{row['id']:<{ids}} {_date(row['started']):<16} {row['status'] or row['outcome'] or '-':<13} "
              f"{_cut(row['model'], wide):<{wide}} {_millions(row['n_params']):>8} {_millions(row['tokens_seen']):>9} "
              f"{_num(row['best_val_loss']):>8}  {row['name'] or row['path']}")
    print(f"\n{len(rows)} run(s) in {registry.path}")
    return 0


def _show(registry, args) -> int:
    row = _one(registry, args.ids[0] if args.ids else None)
    if args.json:
        print(json.dumps({**row, "metrics": registry.metrics(row["id"])}, indent=2, ensure_ascii=False,
                         default=str))
        return 0
    fields = ("name", "path", "source", "status", "outcome", "evidence", "model", "corpus", "device", "precision",
              "quantization", "lora", "n_params", "optimizer", "lr", "batch_size", "grad_accum", "epochs", "steps", "tokens_seen",
              "best_val_loss", "best_val_bpb", "final_train_loss", "wall_seconds", "tokens_per_s",
              "error_kind", "error_message")
    print(f"run {row['id']}")
    extra = row.get("extra") if isinstance(row.get("extra"), dict) else {}
    sources = extra.get("sources") if isinstance(extra.get("sources"), dict) else {}
    for key in fields:
        if row.get(key) not in (None, ""):
            value = _lora_text(row[key]) if key == "lora" else row[key]
            print(f"  {key:<17} {value}" + (f"   (from {sources[key]})" if key in sources else ""))
    if extra.get("task"):
        print(f"  {'task':<17} {extra['task']}")
    print(f"  {'started':<17} {_date(row['started'])}   ended {_date(row['ended'])}")
    plan = row.get("plan")
    if isinstance(plan, dict):
        print("\n  plan vs actual:")
        print(f"    {'':<14} {'planned':>12} {'actual':>12}")
        for label, planned, actual in (("steps", plan.get("steps"), row.get("steps")),
                                       ("hours", plan.get("hours"), (row.get("wall_seconds") or 0) / 3600 or None),
                                       ("tokens/s", plan.get("tokens_per_s"), row.get("tokens_per_s"))):
            print(f"    {label:<14} {_num(planned):>12} {_num(actual):>12}")
    if row.get("error_kind"):
        from lunalm.runs.fixes import fix_for

        print(f"\n  fix: {fix_for(row['error_kind'])}")
    return 0


def _lora_text(lora) -> str:
    """``r 8, alpha 32, dropout 0.05, on q_proj, v_proj`` for a recorded LoRA dict."""
    if not isinstance(lora, dict):
        return str(lora)
    parts = [f"{key} {lora[key]}" for key in ("r", "alpha", "dropout") if lora.get(key) is not None]
    targets = lora.get("target_modules")
    if targets:
        parts.append("on " + (", ".join(map(str, targets)) if isinstance(targets, list) else str(targets)))
    return ", ".join(parts) or "yes"


def _compare(registry, args) -> int:
    if len(args.ids) < 2:
        raise ConfigError("luna runs compare needs at least two run ids (see `luna runs list`)")
    rows = [_one(registry, run_id) for run_id in args.ids]
    configs = [_flatten(row.get("config") or {}) for row in rows]
    keys = sorted({k for config in configs for k in config})
    differing = [k for k in keys if len({json.dumps(c.get(k), default=str) for c in configs}) > 1]
    if args.json:
        print(json.dumps({"runs": [{key: row.get(key) for key in ("id", "name", "path", *_COMPARED.values(),
                                                                   *_SETTINGS.values())} for row in rows],
                          "config_differences": {key: [c.get(key) for c in configs] for key in differing}},
                         indent=2, ensure_ascii=False, default=str))
        return 0
    width = 22
    print(f"{'':<34}" + "".join(f"{_label(row, width - 1):>{width}}" for row in rows))
    for label, key in _COMPARED.items():
        print(f"{label:<34}" + "".join(f"{_cut(_num(row.get(key)), width - 1):>{width}}" for row in rows))
    print("\nsettings:")
    for label, key in _SETTINGS.items():  # recorded for every kind of run, scanned ones included
        values = [row.get(key) for row in rows]
        if any(value not in (None, "") for value in values):
            cells = [_cut(_setting("-" if value is None else value), width - 1) for value in values]
            print(f"  {label:<32}" + "".join(f"{cell:>{width}}" for cell in cells))
    if differing:
        print("\nconfig differences:")
        for key in differing:
            print(f"  {_cut(key, 32):<32}" + "".join(f"{_cut(_setting(c.get(key, '-')), width - 1):>{width}}"
                                                     for c in configs))
    elif all(configs):
        print("\nsame config")
    else:  # a scanned attempt keeps no full config: its settings above are all there is to compare
        print("\nno full config recorded for " + ", ".join(_label(row) for row, c in zip(rows, configs) if not c)
              + ": compare the settings above")
    if args.plot:
        _plot(registry, rows, Path(args.plot))
        print(f"\ncurves: {args.plot}")
    return 0


_COMPARED = {"status": "status", "outcome": "outcome", "model": "model", "parameters": "n_params",
             "steps": "steps", "tokens seen": "tokens_seen", "best val loss": "best_val_loss",
             "best val bits/byte": "best_val_bpb", "final train loss": "final_train_loss", "tokens/s": "tokens_per_s",
             "wall seconds": "wall_seconds"}
_SETTINGS = {"source": "source", "corpus": "corpus", "device": "device", "precision": "precision",
             "optimizer": "optimizer", "lr": "lr", "batch size": "batch_size", "grad accum": "grad_accum",
             "epochs": "epochs"}


def _label(row: dict, width: int = 21) -> str:
    """A run's column heading: the end of its name or path (scanned runs' names share their start:
    "lightning_logs/version_0", "lightning_logs/version_12")."""
    text = str(row.get("name") or row.get("path") or row["id"])
    return "…" + text[-(width - 1):] if len(text) > width else text


def _remove(registry, args) -> int:
    if not args.ids:
        raise ConfigError("luna runs rm needs run ids (see `luna runs list`)")
    for run_id in args.ids:
        row = _one(registry, run_id)
        registry.remove(row["id"])
        print(f"removed {row['id']} from the registry (its files, if any, stay at {row['path']})")
    return 0


def _plot(registry, rows, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 5))
    for row in rows:
        series = registry.metrics(row["id"])
        label = row["name"] or row["id"]
        extra = row.get("extra") if isinstance(row.get("extra"), dict) else {}
        if extra.get("steps_counted"):  # the log printed no step numbers: x is the n-th loss line
            label += ", x = loss line, not step"
        for split, style in (("train", "-"), ("val", "--")):
            points = [(s, loss) for s, sp, loss in series if sp == split]
            if points:
                ax.plot(*zip(*points), style, label=f"{label} ({split})")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)


def _one(registry, run_id: str | None) -> dict:
    if not run_id:
        raise ConfigError("give a run id, name or path (see `luna runs list`)")
    row = registry.get(run_id)
    if row is None:
        raise ConfigError(f"no run {run_id!r} in {registry.path}; `luna runs list` shows what is there")
    return row


def _flatten(config: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in config.items():
        if isinstance(value, dict) and key != "plan":
            out.update(_flatten(value, f"{prefix}{key}."))
        elif key != "plan":
            out[f"{prefix}{key}"] = value
    return out


def _date(stamp) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(stamp)) if stamp else "-"


def _millions(value) -> str:
    return f"{value / 1e6:.2f}M" if value else "-"


def _num(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _setting(value) -> str:
    """A config value for a table cell: floats to 6 significant digits (an automatic lr is not 0.00268292...)."""
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _cut(text, width: int) -> str:
    text = str(text or "-")
    return text if len(text) <= width else text[: width - 1] + "…"
