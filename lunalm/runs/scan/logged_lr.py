"""The learning rate a run logged as it trained, and when that may stand for its configured lr.

A schedule's lr is logged at every step or epoch (``step 0 | loss: 10.97 | lr: 0.000010``, ``Time: 122.57s -
LR: 9.94e-05``, ``{'learning_rate': 1.8e-05}``), so the first value logged is neither the configured nor the
peak lr: a warmup starts near zero (build-nanoGPT's log: 1e-05 at step 0, 0.001 at step 100), a cosine decay
has left the peak by the end of the first epoch (9.94e-05 for a configured 1e-4). The configured value
wins wherever it is found (the script, a config file, a setting printed on a line of its own, the model
card); without one, the highest logged value is used and ``extra["sources"]`` says so, and only when the
logged values reach back to the run's first quarter (a run that logged its lr once, at its last step,
logs 4e-08 for a configured 2e-05).
"""

from __future__ import annotations

import math
import re

from lunalm.runs.attempt import Attempt

_NUMBER = r"(\d+(?:\.\d*)?(?:e[-+]?\d+)?|\.\d+(?:e[-+]?\d+)?)"
# On the lower-cased line: "lr: 0.000010", "LR: 9.94e-05", "'learning_rate': 1.8e-05" (quoted or not)
_LOGGED = re.compile(r"(?<![\w])['\"]?(?:lr|learning[_ ]rate)['\"]?\s*[:=]\s*['\"]?" + _NUMBER + r"(?![\w.])")
# What makes a line a record of training progress rather than a setting: a loss, a step, iteration or epoch
# counter (llm.c's "s:500"), a time, a speed
_PROGRESS = re.compile(r"^s:\d|loss|\b(?:step|iter|iteration|epoch)\s*[:=#]?\s*\d|\btime(?: taken)?\s*[:=]|it/s|tok/s")


def progress_lr(lower: str) -> float | None:
    """The lr that a progress line (one that also logs a loss, a step or a time) logs; None for any
    other line (``lr: 0.0001`` alone is a setting the run printed)."""
    match = _LOGGED.search(lower) if "lr" in lower or "learning" in lower else None
    if match is None or not _PROGRESS.search(lower):
        return None
    value = float(match.group(1))
    return value if math.isfinite(value) and value > 0 else None


class LoggedLr:
    """The highest lr logged, where and at which step, and the step of the first logged value."""

    def __init__(self):
        self.peak: float | None = None
        self.peak_step: int | None = None
        self.first_step: int | None = None
        self.where: str | None = None  # where the peak was logged ("train.log:77", "trainer_state.json")
        self.count = 0

    def add(self, value: float, step: int | None, where: str) -> None:
        if self.count == 0:
            self.first_step = step
        self.count += 1
        if value > (self.peak or 0):
            self.peak, self.peak_step, self.where = value, step, where

    def record(self, extra: dict) -> None:
        """Into an attempt's ``extra`` (read by :func:`settle_lr`)."""
        if self.peak is not None:
            extra.update(peak_logged_lr=self.peak, peak_logged_lr_step=self.peak_step,
                         first_logged_lr_step=self.first_step, peak_logged_lr_where=self.where,
                         logged_lr_count=self.count)


def settle_lr(attempt: Attempt) -> None:
    """Without a configured lr, the highest logged one (see the module docstring), named as such."""
    peak, first = attempt.extra.get("peak_logged_lr"), attempt.extra.get("first_logged_lr_step")
    length = attempt.extra.get("max_steps") or attempt.steps
    early = first is None or not length or first <= length / 4
    if attempt.lr is None and peak is not None and early:
        attempt.lr = peak
        count = attempt.extra.get("logged_lr_count")
        attempt.extra.setdefault("sources", {})["lr"] = (
            f"{attempt.extra.get('peak_logged_lr_where') or 'the log'}: highest logged learning rate"
            + (f" of {count}" if count and count > 1 else "") + " (the configured value was not found)")
