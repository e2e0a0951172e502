"""The run's user-facing record: ``metrics.jsonl``, ``events.jsonl``, TensorBoard and ``loss.png``.

Only rank 0 writes (``RunLogger(enabled=False)`` everywhere else turns every call into a no-op).

Durability: both JSONL files are opened for appending, line-buffered and flushed after every record, and
each record is written with a single ``write`` call, so a ``kill -9`` loses at most the line being
written. :func:`read_jsonl` skips such a truncated line, and a resumed run that appends to the same
file first ends a dangling partial line so its records start on a fresh one. A resumed run re-logs the
steps after its checkpoint; readers keep the *last* record of each (kind, step) (see :func:`loss_series`).

Non-finite numbers: ``json.dumps`` would write bare ``NaN`` / ``Infinity``, which is not JSON (``jq``,
browsers and most parsers reject it). We write such a value as ``null`` and list the original under
``"nonfinite": {"loss": "nan"}`` in the same record; :func:`read_jsonl` puts the float back, so a
round trip is exact and any other reader still gets valid JSON with an explicit marker.

Record keys used by the chart: train and eval records carry ``loss``; train records carry ``lr``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from pathlib import Path

logger = logging.getLogger(__name__)
REDRAW_SECONDS = 30.0  # loss.png at most this often (plus once at close): drawing costs ~0.3 s, as much as
#                        three optimizer steps of a CPU run that evaluates every few seconds

RESERVED_KEYS = ("kind", "step", "time", "message", "nonfinite")
_NONFINITE_TEXT = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


class RunLogger:
    """Appends metrics and events of one run to its directory; a no-op when ``enabled`` is False."""

    def __init__(self, run_dir: Path, enabled: bool = True, tensorboard: bool = True, trackers: list | None = None):
        self.run_dir = Path(run_dir)
        self.enabled = enabled
        self._metrics = self._events = self._writer = None
        self._drawn_at, self._stale = -math.inf, False  # when loss.png was last drawn; evals since then
        self.trackers = trackers or []  # lunalm.train.trackers: wandb, mlflow, trackio (rank 0 only)
        if not enabled:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._metrics = _open_for_append(self.run_dir / "metrics.jsonl")
        self._events = _open_for_append(self.run_dir / "events.jsonl")
        if tensorboard:
            self._writer = _summary_writer(self.run_dir / "tb")

    def log_train(self, step: int, **values) -> None:
        """One train record (e.g. ``loss``, ``lr``, ``grad_norm``, ``tokens_per_s``) at optimizer ``step``."""
        self._log("train", step, values)

    def log_eval(self, step: int, **values) -> None:
        """One validation record (``loss``, ``bits_per_byte`` …); ``loss.png`` is redrawn when the last
        drawing is ``REDRAW_SECONDS`` old (the first eval draws at once; ``close`` draws what is left)."""
        self._log("val", step, values)
        if not self.enabled:
            return
        self._stale = True
        if time.monotonic() - self._drawn_at >= REDRAW_SECONDS:
            self._redraw()

    def event(self, kind: str, step: int, message: str, **details) -> None:
        """An anomaly or milestone (non-finite loss, rollback, OOM, early stop) in ``events.jsonl``."""
        if not self.enabled:
            return
        record = {"time": time.time(), "step": int(step), "kind": kind, "message": message}
        _write_record(self._events, record, details)
        logger.info("step %d %s: %s", step, kind, message)

    def close(self) -> None:
        """Draw ``loss.png`` if evals came after the last drawing, then flush and close everything; safe
        to call twice."""
        if self.enabled and self._stale:
            self._redraw()
        for handle in (self._metrics, self._events):
            if handle is not None and not handle.closed:
                handle.close()
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        for tracker in self.trackers:
            tracker.close()
        self.trackers = []

    def __enter__(self) -> "RunLogger":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def summary(self, values: dict) -> None:
        """The run's final numbers (summary.json) to every tracker."""
        for tracker in self.trackers if self.enabled else ():
            tracker.summary(values)

    def _log(self, kind: str, step: int, values: dict) -> None:
        """One record; ``KIND/NAME`` is the scalar's name in TensorBoard and every tracker alike."""
        if not self.enabled:
            return
        record = {"kind": kind, "step": int(step), "time": time.time()}
        written = _write_record(self._metrics, record, values)
        scalars = {f"{kind}/{name}": value for name, value in written.items()
                   if isinstance(value, (int, float)) and not isinstance(value, bool)}
        if self._writer is not None:
            for name, value in scalars.items():
                self._writer.add_scalar(name, value, int(step))
        for tracker in self.trackers:
            tracker.log(scalars, int(step))

    def _redraw(self) -> None:
        self._drawn_at, self._stale = time.monotonic(), False
        if self._writer is not None:
            self._writer.flush()  # an eval is a natural point for TensorBoard to catch up too
        try:
            plot_loss(self.run_dir / "metrics.jsonl", self.run_dir / "loss.png")
        except Exception as error:  # a chart is a convenience; it must never stop a training run
            logger.warning("could not draw %s: %s", self.run_dir / "loss.png", error)


def _open_for_append(path: Path):
    """Line-buffered append handle; ends a partial last line left by a killed process first."""
    needs_newline = False
    if path.exists() and path.stat().st_size > 0:
        with open(path, "rb") as existing:
            existing.seek(-1, os.SEEK_END)
            needs_newline = existing.read(1) != b"\n"
    handle = open(path, "a", buffering=1, encoding="utf-8")
    if needs_newline:
        handle.write("\n")
        handle.flush()
    return handle


def _summary_writer(log_dir: Path):
    """A TensorBoard ``SummaryWriter``, or None (with one warning) when tensorboard is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as error:
        logger.warning("TensorBoard logging is off (%s); metrics.jsonl is still written.", error)
        return None
    return SummaryWriter(log_dir=str(log_dir))


def _write_record(handle, record: dict, values: dict) -> dict:
    """Append ``record`` + ``values`` as one JSON line; returns the converted values."""
    clashes = sorted(set(values) & set(RESERVED_KEYS))
    if clashes:
        raise ValueError(f"metric names {clashes} are reserved by the record format")
    converted = {name: _plain(value) for name, value in values.items()}
    nonfinite = {name: str(value) for name, value in converted.items()
                 if isinstance(value, float) and not math.isfinite(value)}
    line = {**record, **{name: None if name in nonfinite else v for name, v in converted.items()}}
    if nonfinite:
        line["nonfinite"] = nonfinite
    handle.write(json.dumps(line, ensure_ascii=False, allow_nan=False, default=str) + "\n")
    handle.flush()
    return converted


def _plain(value):
    """Python scalars from tensors / numpy scalars (0-d -> number, n-d -> list); nested NaN -> None."""
    if hasattr(value, "tolist") and not isinstance(value, (list, tuple, dict, str)):
        value = value.tolist()  # torch.Tensor and numpy values; 0-d gives a python scalar
    if isinstance(value, dict):
        return {str(k): _nested(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_nested(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def _nested(value):
    value = _plain(value)
    return None if isinstance(value, float) and not math.isfinite(value) else value


def read_jsonl(path) -> list[dict]:
    """Every record of a JSONL file ([] if it does not exist), non-finite values restored.

    A last line cut off by a killed process is skipped silently; any other unreadable line (an old
    partial line that a resumed run appended after) is skipped with a warning.
    """
    path = Path(path)
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8", errors="replace").split("\n")
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            if number < len(lines):  # a complete line (followed by "\n") that is still broken
                logger.warning("%s:%d is not valid JSON; skipped", path, number)
            continue
        if isinstance(record, dict):
            records.append(_restore_nonfinite(record))
    return records


def _restore_nonfinite(record: dict) -> dict:
    marks = record.pop("nonfinite", None)
    if isinstance(marks, dict):
        for name, text in marks.items():
            if record.get(name) is None and text in _NONFINITE_TEXT:
                record[name] = _NONFINITE_TEXT[text]
    return record


def loss_series(records: list[dict]) -> dict[str, tuple[list[int], list[float]]]:
    """``{"train": (steps, losses), "val": (steps, losses), "lr": (steps, lrs)}`` sorted by step.

    Only the last record of each (kind, step) counts: a resumed run re-logs the steps after its
    checkpoint, and the rerun's values (what the final model actually went through) replace the old ones.
    """
    last: dict[tuple[str, int], dict] = {}
    for record in records:
        if record.get("kind") in ("train", "val", "eval") and isinstance(record.get("step"), int):
            kind = "val" if record["kind"] == "eval" else record["kind"]  # "eval": runs before lunalm 0.1.1
            last[(kind, record["step"])] = record
    series = {}
    for name, kind, key in (("train", "train", "loss"), ("val", "val", "loss"), ("lr", "train", "lr")):
        points = sorted((step, _number(r.get(key))) for (k, step), r in last.items() if k == kind)
        points = [(step, value) for step, value in points if value is not None]
        series[name] = ([s for s, _ in points], [v for _, v in points])
    return series


def _number(value) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)  # NaN stays: matplotlib draws it as a gap
    return None


POINTS_PER_WINDOW = 20  # the loss plot's smoothing window is 1/20 of the logged points


def smooth(values: list[float], points_per_window: int = POINTS_PER_WINDOW) -> list[float]:
    """Centred moving average over ~``len(values) / points_per_window`` points, without lag or bias.

    An exponential average (TensorBoard's) trails a falling loss: on a short run it draws the training
    loss well above where it is. Here each point is the mean of the finite values within h points on
    both sides, h shrinking near the ends so the window stays centred (the first and last points are
    their own values). Non-finite points are skipped; a window with none left is NaN. O(n).
    """
    n = len(values)
    half = max(1, n // points_per_window) // 2
    sums, counts = [0.0], [0]
    for value in values:
        finite = math.isfinite(value)
        sums.append(sums[-1] + (value if finite else 0.0))
        counts.append(counts[-1] + finite)
    smoothed = []
    for i in range(n):
        h = min(half, i, n - 1 - i)
        total, count = sums[i + h + 1] - sums[i - h], counts[i + h + 1] - counts[i - h]
        smoothed.append(total / count if count else math.nan)
    return smoothed


def plot_loss(metrics_path: Path, out_png: Path, *, log_lr: bool = False) -> None:
    """Train loss (thin + smoothed), val loss (markers) and lr (right axis) against step, to a PNG.

    Drawn on a bare ``Figure`` with the Agg canvas (no pyplot), so no global figure is left open and
    the process's matplotlib backend is untouched; written to a temporary file and renamed (atomic), so
    a viewer never sees a half-written image.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    series = loss_series(read_jsonl(metrics_path))
    figure = Figure(figsize=(8, 4.5), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    _draw_losses(axes, series)
    legend_axes = axes
    if series["lr"][0]:
        legend_axes = axes.twinx()  # drawn above the loss axes, so the legend goes on it
        legend_axes.plot(*series["lr"], color="tab:gray", linewidth=0.8, linestyle="--", label="lr")
        legend_axes.set_ylabel("learning rate")
        if log_lr:
            legend_axes.set_yscale("log")
    lines = axes.lines + (legend_axes.lines if legend_axes is not axes else [])
    if lines:
        legend_axes.legend(handles=[line for line in lines if not line.get_label().startswith("_")],
                           loc="upper right")
    axes.set_title(_title(series["val"]))
    figure.tight_layout()
    out_png = Path(out_png)
    temporary = out_png.with_name(f".{out_png.name}.{os.getpid()}.tmp")
    figure.savefig(temporary, format="png")
    os.replace(temporary, out_png)


def _draw_losses(axes, series: dict) -> None:
    train_steps, train_loss = series["train"]
    if train_steps:
        if len(train_loss) >= 2 * POINTS_PER_WINDOW:  # enough points for smooth() to average
            axes.plot(train_steps, train_loss, color="tab:blue", alpha=0.3, linewidth=0.8)
            axes.plot(train_steps, smooth(train_loss), color="tab:blue", linewidth=1.6, label="train (smoothed)")
        else:
            axes.plot(train_steps, train_loss, color="tab:blue", linewidth=1.6, label="train")
    if series["val"][0]:
        axes.plot(*series["val"], color="tab:orange", marker="o", markersize=4, linewidth=1.0, label="val")
    axes.set_xlabel("step")
    axes.set_ylabel("loss (nats/token)")
    axes.grid(alpha=0.3)


def _title(val: tuple[list[int], list[float]]) -> str:
    finite = [(loss, step) for step, loss in zip(*val) if math.isfinite(loss)]
    if not finite:
        return "loss (no validation yet)"
    loss, step = min(finite)
    return f"loss — best val {loss:.4f} at step {step}"
