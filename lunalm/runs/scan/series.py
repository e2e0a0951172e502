"""A loss curve kept in bounded memory, whatever the length of the log it comes from."""

from __future__ import annotations

import math

MAX_POINTS = 1000  # per series; a chart of a run needs no more


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
