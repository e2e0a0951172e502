"""A loss curve kept in bounded memory, whatever the length of the log it comes from; which of a record's
named columns or tags are its losses, and what the curves alone say about the run's outcome."""

from __future__ import annotations

import math

MAX_POINTS = 1000  # per series; a chart of a run needs no more
_VAL_WORDS = ("val", "valid", "eval")


class LossSeries:
    """(step, loss) points, thinned as they arrive: when more than ``2 * limit`` are kept, every other one
    is dropped and from then on only every ``stride``-th new point is kept. The first point stays, and
    the last one is always known, so "first → last" comparisons are exact. Deterministic (no sampling).

    A step that does not move forward means the run went back (a resume, or a second run appended to the
    same log): the points from that step on are dropped and the new ones replace them, as
    ``lunalm.train.metrics.loss_series`` keeps the last record of each step.
    """

    def __init__(self, limit: int = MAX_POINTS):
        self.limit = limit
        self.points: list[tuple[int, float]] = []
        self.last: tuple[int, float] | None = None
        self.count = 0  # points added since the last rewind
        self.nonfinite = 0  # NaN/inf values seen (all of them, before any rewind too)
        self._stride = 1

    def add(self, step: int, value: float) -> None:
        if self.last is not None and step <= self.last[0]:
            self._rewind(step)
        if not math.isfinite(value):
            self.nonfinite += 1
        if self.count % self._stride == 0:
            self.points.append((step, value))
        self.count += 1
        self.last = (step, value)
        if len(self.points) > 2 * self.limit:
            self.points = self.points[::2]
            self._stride *= 2

    def _rewind(self, step: int) -> None:
        self.points = [point for point in self.points if point[0] < step]
        self.last = self.points[-1] if self.points else None
        self.count = len(self.points) * self._stride

    def all_points(self) -> list[tuple[int, float]]:
        """The kept points plus the last one."""
        if self.last is not None and (not self.points or self.points[-1] != self.last):
            return [*self.points, self.last]
        return list(self.points)

    @property
    def first(self) -> tuple[int, float] | None:
        return self.points[0] if self.points else None

    def __len__(self) -> int:
        return self.count

    def trend(self) -> tuple[float, float] | None:
        """(start, end): mean of the first and of the last few finite kept points, or None if too few.

        Means of up to five points, so one noisy batch at either end does not decide "it improved".
        """
        finite = [value for _, value in self.all_points() if math.isfinite(value)]
        if len(finite) < 2:
            return None
        width = max(1, min(5, len(finite) // 3))
        return sum(finite[:width]) / width, sum(finite[-width:]) / width


def metric_rows(train: LossSeries, val: LossSeries) -> list[tuple[int, str, float]]:
    """``Attempt.metrics`` rows: (step, "train" | "val", loss), by step, train before val."""
    rows = [(step, "train", value) for step, value in train.all_points()]
    rows += [(step, "val", value) for step, value in val.all_points()]
    return sorted(rows, key=lambda row: (row[0], row[1] != "train"))


def describe_trend(series: LossSeries, what: str, counted: bool = False) -> str:
    """``"val loss 2.61 → 1.87 over steps 0–5000 (first and last logged; smoothed, means of 5: 2.50 →
    1.90)"`` for an evidence line: observed values first, smoothed ones labelled as such. ``counted``: the
    "steps" are the loss lines' ordinals (the log printed no step numbers), and are called so."""
    start, end = series.trend() or (math.nan, math.nan)
    finite = [point for point in series.all_points() if math.isfinite(point[1])]
    if not finite:
        return f"{what}: no finite value"
    (first_step, first), (last_step, last) = finite[0], finite[-1]
    span = f"loss lines {first_step}–{last_step} (no step numbers logged)" if counted else \
        f"steps {first_step}–{last_step}"
    text = f"{what} {first:.3g} → {last:.3g} over {span}"
    width = max(1, min(5, len(finite) // 3))
    if width > 1:
        text += f" (first and last logged; smoothed, means of {width}: {start:.3g} → {end:.3g})"
    return text


def fill_losses(attempt, train: LossSeries, val: LossSeries) -> None:
    """An attempt's curve, best validation loss and last train loss from its two series."""
    attempt.metrics = metric_rows(train, val)
    finite_val = [value for _, value in val.all_points() if math.isfinite(value)]
    attempt.best_val_loss = min(finite_val) if finite_val else None
    attempt.final_train_loss = train.last[1] if train.last else None


def loss_names(names: list[str]) -> dict[str, str]:
    """Which of a record's column or tag names hold the train and the validation loss: ``{"train": name,
    "val": name}`` (a kind left out when none does). Per-step names come before per-epoch ones
    (Lightning's ``train_loss_step`` before ``train_loss_epoch``), and a Trainer's end-of-run mean
    ``train_loss`` (``train/train_loss``) comes after its ``loss`` (``train/loss``): it is no point of the curve."""
    losses = [name for name in names if "loss" in name.lower()]
    val = [name for name in losses if any(word in name.lower() for word in _VAL_WORDS)]
    train = [name for name in losses if name not in val and "test" not in name.lower()]
    train.sort(key=lambda name: (name.endswith("_epoch"), name.lower().endswith("train_loss")))
    return {kind: found[0] for kind, found in (("train", train), ("val", val)) if found}


def decide(attempt, train: LossSeries, val: LossSeries, where: dict[str, str], record: str) -> None:
    """Outcome from the curves alone (a record that says nothing about a plan or an end): failure on a
    non-finite last loss, success when the (validation, else train) loss went down, else unknown.
    ``where``: the place of each kind's last value (``metrics.csv:25``); ``record``: the file's name."""
    last = train.last or val.last
    series, what, kind = (val, "val loss", "val") if len(val) >= 2 else (train, "train loss", "train")
    trend = series.trend()
    if last and not math.isfinite(last[1]):
        attempt.outcome, attempt.status, attempt.error_kind = "failure", "diverged", "nan-loss"
        attempt.evidence = f"{where.get(kind, record)}: loss {last[1]} at step {last[0]}"
    elif trend and trend[1] < trend[0]:
        attempt.outcome = "success"
        attempt.evidence = f"{where.get(kind, record)}: {describe_trend(series, what)}, no error"
    else:
        attempt.evidence = (f"{where.get(kind, record)}: {describe_trend(series, what)}: no improvement"
                            if trend else f"{record}: fewer than two losses logged")
