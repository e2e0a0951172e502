"""``luna report``: what the recorded attempts teach — outcomes, models, optimizers, devices, errors and
their fixes, learning-rate and batch-size ranges that worked against those that failed, the best
configurations, and loss against model size and data.

The report is built as a list of sections (title, text, tables, charts) and rendered to Markdown and,
with ``html=True``, to a standalone HTML page next to it; charts are PNG files in the same folder.
"""

from __future__ import annotations

import html
import math
import re
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from lunalm.runs.fixes import fix_for
from lunalm.runs.scan.names import canonical_device, canonical_optimizer, device_family
from lunalm.runs.scan.task import FINE_TUNING, PRETRAINING, TASKS

UNKNOWN_TASK = "task not known"


@dataclass
class Section:
    title: str
    text: list[str] = field(default_factory=list)
    tables: list[tuple[list[str], list[list[str]]]] = field(default_factory=list)  # (header, rows)
    charts: list[str] = field(default_factory=list)  # PNG file names, relative to the report


def build_report(rows: list[dict], scans: list[dict], out_dir: Path) -> list[Section]:
    """Sections of the report; charts are written into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    sections = [_overview(rows, scans)]
    if not rows:
        return sections
    sections.append(_outcomes(rows, out_dir))
    for title, key in (("Models", "model"), ("Optimizers", "optimizer"), ("Devices", "device"),
                       ("Precision", "precision")):
        section = _breakdown(title, rows, key)
        if section:
            sections.append(section)
    sections.append(_errors(rows))
    sections.append(_ranges(rows, out_dir))
    sections.append(_best(rows))
    scaling = _scaling(rows, out_dir)
    if scaling:
        sections.append(scaling)
    return sections


def _overview(rows, scans) -> Section:
    files = sum(s.get("files_seen") or 0 for s in scans)
    size = sum(s.get("bytes_read") or 0 for s in scans)
    by_source = Counter(r["source"] or "?" for r in rows)
    text = [f"{len(rows):,} training attempts on record"
            + (f", {files:,} files ({size / 1e6:,.1f} MB) read by `luna scan`" if scans else "") + "."]
    if by_source:
        text.append("By source: " + ", ".join(f"{name} {count:,}" for name, count in by_source.most_common()) + ".")
    by_task = Counter(task_of_row(r) for r in rows)
    if by_task:
        text.append("By task: " + ", ".join(f"{name} {count:,}" for name, count in by_task.most_common()) + ".")
    return Section("Overview", text)


def _outcomes(rows, out_dir) -> Section:
    counts = Counter(r["outcome"] or "unknown" for r in rows)
    statuses = Counter(r["status"] for r in rows if r["status"])
    section = Section("Outcomes", [", ".join(f"**{counts.get(k, 0):,} {k}**" for k in ("success", "failure", "unknown"))
                                   + (" — statuses: " + ", ".join(f"{k} {v}" for k, v in statuses.most_common())
                                      if statuses else "")])
    chart = _bar_chart(out_dir / "outcomes.png", counts, "attempts by outcome")
    section.charts.append(chart)
    return section


# One spelling of a name (registries written before ``luna scan`` spelled them so), and what rows group by:
# a GPU's model, its memory variants shown in the row ("A100 (A100-SXM4-40GB 2, A100 1)")
_SPELLING = {"optimizer": canonical_optimizer, "device": canonical_device}
_GROUP = {"device": device_family}


def _breakdown(title: str, rows, key: str) -> Section | None:
    spell, group_of = _SPELLING.get(key, str), _GROUP.get(key, str)
    groups = defaultdict(list)  # by name whatever its case: "Adam" in a script, "adam" in a config
    for row in rows:
        if row.get(key):
            groups[str(group_of(str(row[key]))).lower()].append(row)
    if not groups:
        return None
    table = []
    for members in sorted(groups.values(), key=lambda group: -len(group))[:12]:
        names = Counter(str(spell(str(m[key]))) for m in members)
        family = str(group_of(names.most_common(1)[0][0]))
        name = family if list(names) == [family] else \
            f"{family} ({', '.join(f'{variant} {count}' for variant, count in names.most_common())})"
        judged = [m for m in members if m["outcome"] in ("success", "failure")]
        wins = sum(m["outcome"] == "success" for m in judged)
        losses = [m["best_val_loss"] for m in members if m.get("best_val_loss") is not None]
        table.append([name, f"{len(members):,}", f"{wins} of {len(judged)}" if judged else "-",
                      f"{min(losses):.3f}" if losses else "-"])
    return Section(title, tables=[([title.rstrip("s").lower(), "attempts", "succeeded (of those with an outcome)",
                                    "best val loss"], table)])


def _errors(rows) -> Section:
    kinds = Counter(r["error_kind"] for r in rows if r.get("error_kind"))
    if not kinds:
        return Section("Errors", ["No errors recorded."])
    table = [[kind, f"{count:,}", fix_for(kind)] for kind, count in kinds.most_common()]
    examples = {}
    for row in rows:
        if row.get("error_kind") and row.get("error_message") and row["error_kind"] not in examples:
            examples[row["error_kind"]] = f"`{row['error_message'][:160]}` ({row['path']})"
    text = [f"- {kind}: {example}" for kind, example in examples.items()]
    return Section("Errors and the fix that works", ["Example of each:"] + text,
                   tables=[(["error", "count", "fix"], table)])


def _ranges(rows, out_dir) -> Section:
    table = []
    for label, key in (("learning rate", "lr"), ("micro-batch", "batch_size"), ("accumulation", "grad_accum"),
                       ("epochs", "epochs")):
        cells = [label]
        for outcome in ("success", "failure"):
            values = [r[key] for r in rows if r["outcome"] == outcome and isinstance(r.get(key), (int, float))]
            cells.append(_spread(values))
        table.append(cells)
    section = Section("What worked: ranges of successes against failures",
                      ["min – median – max (count) of each setting among successful and failed attempts."],
                      tables=[(["setting", "successes", "failures"], table)])
    chart = _lr_chart(out_dir / "learning_rates.png", rows)
    if chart:
        section.charts.append(chart)
    return section


def _best(rows) -> Section:
    """The best runs of each task, ranked by validation loss within the task only: the loss of a 2-class
    classifier, of a DPO policy and of a language model are not the same quantity."""
    done = [r for r in rows if r.get("best_val_loss") is not None and r["outcome"] == "success"]
    if not done:
        return Section("Best configurations", ["No completed run with a validation loss yet."])
    groups = defaultdict(list)
    for row in done:
        groups[task_of_row(row)].append(row)
    section = Section("Best configurations, by task", [
        "Ranked by validation loss within one task only; across tasks the losses are different quantities. "
        "Within a task, validation losses compare runs on the same corpus and tokenizer; bits per byte compares "
        "across tokenizers."])
    for task in sorted(groups, key=_task_order):
        members = sorted(groups[task], key=lambda r: r["best_val_loss"])
        section.text.append(f"- **{task}**: {len(members)} run(s)")
        header = [f"{task}: run", "model", "params", "tokens", "lr", "batch", "val loss", "bits/byte"]
        section.tables.append((header, [[r["name"] or r["id"], r.get("model") or "-", _fmt(r.get("n_params"), "params"),
                                         _fmt(r.get("tokens_seen"), "params"), _fmt(r.get("lr")),
                                         str(r.get("batch_size") or "-"), f"{r['best_val_loss']:.4f}",
                                         _fmt(r.get("best_val_bpb"))] for r in members[:10]]))
    return section


def task_of_row(row: dict) -> str:
    """The task a registry row trained for: what the scan recorded, else a lunalm run's own config."""
    extra = row.get("extra") if isinstance(row.get("extra"), dict) else {}
    if extra.get("task") in TASKS:
        return extra["task"]
    if row.get("source") == "lunalm":
        config = row.get("config") if isinstance(row.get("config"), dict) else {}
        return FINE_TUNING if config.get("finetune") else PRETRAINING
    return UNKNOWN_TASK


def _task_order(task: str) -> int:
    return TASKS.index(task) if task in TASKS else len(TASKS)


def _scaling(rows, out_dir) -> Section | None:
    points = [r for r in rows if r.get("best_val_loss") and r.get("n_params") and r["outcome"] == "success"]
    if len(points) < 2:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key, label in ((axes[0], "n_params", "parameters"), (axes[1], "tokens_seen", "tokens seen")):
        xs = [(r[key], r["best_val_loss"]) for r in points if r.get(key)]
        if xs:
            ax.scatter(*zip(*xs), s=18)
        ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("best validation loss")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out_dir / "loss_scaling.png", dpi=110)
    plt.close(fig)
    return Section("Loss against parameters and tokens", [f"{len(points)} completed runs."],
                   charts=["loss_scaling.png"])


def _spread(values) -> str:
    if not values:
        return "-"
    return f"{_fmt(min(values))} – {_fmt(statistics.median(values))} – {_fmt(max(values))} ({len(values)})"


def _fmt(value, kind: str = "") -> str:
    if value is None:
        return "-"
    if kind == "params":
        return f"{value / 1e6:.2f}M"
    if isinstance(value, float) and value and (abs(value) < 0.1 or abs(value) >= 1e4):
        return f"{value:.2e}"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _bar_chart(path: Path, counts: Counter, title: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3))
    names = ["success", "failure", "unknown"]
    ax.bar(names, [counts.get(n, 0) for n in names], color=["#3a7", "#c44", "#999"])
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


def _lr_chart(path: Path, rows) -> str | None:
    values = {o: [r["lr"] for r in rows if r["outcome"] == o and isinstance(r.get("lr"), (int, float)) and r["lr"] > 0]
              for o in ("success", "failure")}
    if not any(values.values()):
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    every = values["success"] + values["failure"]
    low, high = math.log10(min(every)), math.log10(max(every))
    bins = [10 ** (low + (high - low + 1e-9) * i / 12) for i in range(13)] if high > low else 5
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.hist([values["success"], values["failure"]], bins=bins, label=["success", "failure"],
            color=["#3a7", "#c44"])
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("attempts")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


# --- rendering -----------------------------------------------------------------------------------


def to_markdown(sections: list[Section], title: str) -> str:
    lines = [f"# {title}", ""]
    for section in sections:
        lines += [f"## {section.title}", ""]
        lines += [*section.text, ""] if section.text else []
        for header, table in section.tables:
            lines.append("| " + " | ".join(header) + " |")
            lines.append("|" + "---|" * len(header))
            lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in table]
            lines.append("")
        lines += [f"![{chart}]({chart})" for chart in section.charts]
        lines += [""] if section.charts else []
    return "\n".join(lines)


def to_html(sections: list[Section], title: str) -> str:
    """A standalone page: the same sections as the Markdown, written as HTML (not Markdown shown raw)."""
    parts = [f"<!doctype html><meta charset='utf-8'><title>{html.escape(title)}</title>",
             "<style>body{font-family:sans-serif;max-width:980px;margin:2em auto}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}img{max-width:100%}"
             "code{background:#f4f4f4;padding:0 3px}</style>",
             f"<h1>{html.escape(title)}</h1>"]
    for section in sections:
        parts.append(f"<h2>{html.escape(section.title)}</h2>")
        parts += _html_text(section.text)
        for header, table in section.tables:
            parts.append("<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>")
            parts += ["<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>" for row in table]
            parts.append("</table>")
        parts += [f"<img src='{html.escape(chart)}' alt='{html.escape(chart)}'>" for chart in section.charts]
    return "\n".join(parts)


def _html_text(lines: list[str]) -> list[str]:
    """Paragraphs, and runs of "- " lines as one list."""
    parts, items = [], []
    for line in [*lines, ""]:
        if line.startswith("- "):
            items.append(f"<li>{_inline(line[2:])}</li>")
            continue
        if items:
            parts.append("<ul>" + "".join(items) + "</ul>")
            items = []
        if line:
            parts.append(f"<p>{_inline(line)}</p>")
    return parts


_CODE = re.compile(r"`([^`]+)`")
_BOLD = re.compile(r"\*\*(.+?)\*\*")


def _inline(text: str) -> str:
    """The report's inline Markdown (``code`` and **bold**) as HTML, everything else escaped."""
    pieces = _CODE.split(text)  # odd pieces are code spans
    return "".join(f"<code>{html.escape(piece)}</code>" if index % 2 else _BOLD.sub(r"<strong>\1</strong>",
                                                                                   html.escape(piece))
                   for index, piece in enumerate(pieces))
