"""Training logs read line by line: loss curves, the error that ended the run, and what the trainer said
about itself, turned into an outcome with the line that decided it.

Understood without knowing which program wrote the log:

* ``iter 100: loss 2.3456, time 12.3ms`` and ``step 500: train loss 1.90, val loss 2.00`` (nanoGPT);
* ``{'loss': 2.1, 'learning_rate': 5e-05, 'epoch': 0.5}`` / ``{'eval_loss': ...}`` dict lines
  (Hugging Face Trainer) and JSON lines with a ``loss`` key;
* ``loss=2.31`` / ``loss: 2.31`` / ``val_loss: 0.13`` anywhere in a line (tqdm postfixes, Keras, Lightning),
  with the step taken from ``step``/``iter`` or a tqdm counter ``450/1000 [``;
* tracebacks and failure phrases (see :mod:`lunalm.runs.scan.classify`).

Memory is bounded: curves are thinned (:class:`LossSeries`), only the decisive error and the last few
traceback lines are kept.
"""

from __future__ import annotations

import copy
import math
from collections import Counter, deque
from dataclasses import dataclass

from lunalm.runs.attempt import Attempt
from lunalm.runs.scan.effective import LogSettings
from lunalm.runs.scan.loss_table import TextTable
from lunalm.runs.scan.logged_lr import LoggedLr, progress_lr
from lunalm.runs.scan.log_lines import find_losses, literal_number, setting_value, time_stamp
from lunalm.runs.scan.log_patterns import (_STEP, _DICT_PAIR, _TRAIN_KEYS, _VAL_KEYS, _DONE, _MEAN_LOSS, _FINAL_STEP,
                                          _RUNTIME, _TRAINING_TIME, _ELAPSED, _LLMC, _EARLY_STOP, _EPOCH_OF,
                                          _KERAS_BAR, _PROGRESS_BAR, _RANK_PREFIX, _VALIDATE_STEP, _ANSI,
                                          _SETTING_HINT, _PRINTED_HINT, _ATTENTION, _SETTINGS, _PRINTED)
from lunalm.runs.scan.classify import classify_line, exception_name, status_for
from lunalm.runs.scan.restarts import MAX_RUNS, epoch_named, restarts, same_epoch
from lunalm.runs.scan.shapes import MAX_SHAPES, line_shape
from lunalm.runs.scan.series import LossSeries, describe_trend, metric_rows

RECOVERED_AFTER = 3  # train losses logged after an error mean the run got past it
PARSED_PER_STRIDE = 1000  # loss lines parsed before parsing only every other one (then every 4th, ...)
SETTINGS_LINES = 5000  # trainers print their settings at the start
# A loss that fell by less than this share did not improve: a sweep run stuck at 8.9722 → 8.9721 (clip 0)
FLAT_SHARE = 0.01
REPEATED_VAL = 5e-4  # a validation loss this close to the newest one, on a train loss's line, repeats it (litgpt
#                     prints it to 3 decimals there, to 4 where it evaluated)
@dataclass(frozen=True)
class Hit:
    """A line that matters: where it is (``train.log:12``) and its text."""

    where: str
    line: str
    kind: str | None = None


@dataclass(frozen=True)
class Verdict:
    """An outcome, the evidence line that decided it, and what it says about the failure (if any)."""

    outcome: str
    evidence: str
    status: str | None = None
    error_kind: str | None = None
    error_message: str | None = None


class LogParser:
    """Consumes output lines (``feed``) and keeps what decides the outcome; see the module docstring."""

    def __init__(self, label: str):
        self.label = label  # prefix of every "where" (file name, or "notebook.ipynb cell 3")
        self.shapes: list[str] = []  # the shapes of its loss and lr lines, to tell which script wrote it
        self.loss_lines = 0  # lines mentioning a loss (parsed or not)
        self._parse_every = 1
        self.first_time: float | None = None  # the first line's time stamp ("2024-12-25 06:43:04,790 - INFO")
        self.last_time: float | None = None  # ... and the newest one
        self.runs: list[LogParser] = []  # the earlier runs of this file, each a parser of its own (``restarts``)
        self.context: object = None  # set by the caller (a notebook: how many statements precede this cell)
        self.context_at_loss: object = None  # ... as it was at this run's newest loss
        self._epoch_named: int | None = None  # the newest epoch a line named ("epoch 3"), and as it was ...
        self._epoch_at_loss: int | None = None  # ... at this run's newest train loss
        self._table = TextTable()  # a notebook's progress table copied into the log as text
        self._start_run()

    def _start_run(self) -> None:
        """The state of one run (a file holding several starts a fresh one at each restart)."""
        self.train, self.val = LossSeries(), LossSeries()
        # Losses in a progress bar's postfix ("19/19 [00:00, 41.12it/s, val_loss=2.2583]") are a running value
        # of the batches so far: used only where the log prints no loss of that kind outside a bar.
        self._bar = {"train": LossSeries(), "val": LossSeries()}
        self.epoch: tuple[int, int] | None = None  # the newest "Epoch 8/30" (epoch, of how many)
        self.step_of: tuple[int, int] | None = None  # the newest "step:7151/20000" of a loss line
        self._keras_total: int | None = None  # batches per epoch, as the epoch's Keras bar counts them
        self.stopped_early: Hit | None = None  # "Epoch 7: early stopping" (Keras), "Signaling Trainer to stop"
        self.error: Hit | None = None
        self.errors: Counter[str] = Counter()
        self.losses_since_error = 0
        self.completed: Hit | None = None
        self._completed_by_time = False  # ... a script printing an epoch's "training time" goes on to train
        self.settings: dict[str, object] = {}
        self._settings_since_loss: set[str] = set()  # names printed after the newest train loss
        self.runtime: float | None = None  # seconds train() ran, as the trainer reported it
        self.final_step: int | None = None  # the step train() returned at ("TrainOutput(global_step=2808, ...")
        self.log_settings = LogSettings()  # overrides and config files the log prints (see ``effective``)
        self.logged_lr = LoggedLr()  # the lr values printed beside losses and steps (a schedule's, not a setting)
        self.real_steps = False  # steps were read from the log, not counted
        self._counted = False  # some of this run's losses had no step number (then no restart is told)
        self._last_train_number: int | None = None  # line of the newest train loss
        self.loss_where: dict[str, str] = {}  # "train"/"val" -> where its newest value is ("x.ipynb cell 78 output:3")
        self._unparsed: tuple[int | None, str, str] | None = None  # the newest loss line not parsed yet, and
        #                                                             the label of where it was (a notebook's cell)
        self._traceback: deque[str] | None = None  # lines of the traceback being read
        self.traceback_tail: list[str] = []

    def _restart(self) -> None:
        """A new run begins at this loss: the one so far becomes a parser of its own in ``runs``, and the
        settings printed since its last loss move to the new run."""
        done = copy.copy(self)
        done.runs = []
        self.runs.append(done)
        moved = {name: self.settings.pop(name) for name in self._settings_since_loss if name in self.settings}
        log_settings = self.log_settings.split()
        self._start_run()
        self.settings, self.log_settings = moved, log_settings
        self.first_time = self.last_time

    @property
    def signals(self) -> bool:
        """Whether this looks like a training log at all."""
        return bool(len(self.train) or len(self.val) or any(map(len, self._bar.values())) or self.error
                    or self.completed)

    def where(self, number: int | None) -> str:
        return f"{self.label}:{number}" if number else f"{self.label} (near the end)"

    def feed(self, number: int | None, line: str) -> None:
        """One output line (``number`` None: position unknown)."""
        line = line.strip()
        if not line:
            return
        if "\x1b" in line:
            line = _ANSI.sub("", line).strip()
        if line[:1] == "[" or (line[:1].isdigit() and ": [" in line[:7]):
            line = _RANK_PREFIX.sub("", line)
        if self._table.feed(self, number, line):
            return
        if (line[:2] in ("20", "[2") or line[2:3] == "/") and (stamp := time_stamp(line)) is not None:
            self.first_time = self.first_time if self.first_time is not None else stamp
            self.last_time = stamp
        lower = line.lower()
        if lower.startswith("overriding") or self.log_settings.capturing or "Namespace(" in line \
                or line.endswith("(") or line[:2] == "{'":
            self.log_settings.feed(self.where(number), line)
        elif (number or 0) <= SETTINGS_LINES and _PRINTED_HINT.search(lower):  # settings come first
            self._printed(number, line, lower)
        kind = None
        if self._traceback is not None or _ATTENTION.search(lower):  # one search rules out most lines
            if "traceback (most recent call last)" in lower:
                self._traceback = deque(maxlen=8)
                return
            kind = self._notable(number, line, lower)
        if "stop" in lower and self.stopped_early is None and _EARLY_STOP.search(lower):
            self.stopped_early = Hit(self.where(number), line[:300])
        if "epoch" in lower:
            self._epoch_named = epoch_named(lower) if epoch_named(lower) is not None else self._epoch_named
            if (match := _EPOCH_OF.search(lower)) and 0 < int(match.group(2)) < 100_000:
                self.epoch = (int(match.group(1)), int(match.group(2)))
                self._keras_total = None  # the epoch's own bar comes next
        if line[:2] == "s:" and (match := _LLMC.match(lower)):  # llm.c's main.log: "s:500 trl:3.41 lr:0.0006"
            self.loss_lines += 1
            self.add_loss("train" if match.group(2) == "trl" else "val", int(match.group(1)), float(match.group(3)),
                          number)
            self._progress(number, lower)
            return
        if "loss" in lower:
            self.loss_lines += 1
            # a long log's train losses are thinned; its rarer validation lines are all read (their best counts)
            if kind is not None or self.loss_lines % self._parse_every == 0 or "val" in lower \
                    or self._steps_back(lower):  # a restart (``restarts``) is never thinned away
                pending = self._unparsed  # an earlier run's last line, if this one starts a new run
                self._losses(number, lower)
                self._unparsed = None if self._unparsed is pending else self._unparsed
                self._progress(number, lower)  # thinned with the losses: the peak comes early (warmup)
                if self.loss_lines >= PARSED_PER_STRIDE * self._parse_every:
                    self._parse_every *= 2  # a long log: from now on parse every other loss line, ...
            else:  # ... and keep the newest unparsed one, parsed at the end so the last loss is exact
                self._unparsed = (number, lower, self.label)
                self.losses_since_error += 1
        else:
            self._progress(number, lower)

    def _steps_back(self, lower: str) -> bool:
        """Whether a loss line names a step before the newest train step read (then it is parsed)."""
        if self.train.last is None or ("step" not in lower and "iter" not in lower):
            return False
        match = _STEP.search(lower)
        return match is not None and int(match.group(1)) < self.train.last[0]

    def _progress(self, number: int | None, lower: str) -> None:
        """An lr logged beside this line's loss or step (at the newest step read, see ``logged_lr``), and
        the shape of a loss or lr line that is no progress bar (``shapes``)."""
        if (lr := progress_lr(lower)) is not None:
            self.logged_lr.add(lr, self.train.last[0] if self.train.last else None, self.where(number))
        if len(self.shapes) < MAX_SHAPES and (lr is not None or "loss" in lower) and not _PROGRESS_BAR.search(lower) \
                and (shape := line_shape(lower)) not in self.shapes:
            self.shapes.append(shape)

    def _notable(self, number: int | None, line: str, lower: str) -> str | None:
        """Errors, traceback lines, the end of training and printed settings; returns the error kind."""
        kind = classify_line(line, self._traceback is not None, lower)
        if self._traceback is not None:
            self._traceback.append(line)
            if exception_name(line):
                self.traceback_tail, self._traceback = list(self._traceback), None
        if kind:
            self._record_error(kind, number, line)
        if ("train" in lower or "reached" in lower) and _DONE.search(lower):
            self.completed = Hit(self.where(number), line[:300])
        if "trainoutput(" in lower and (match := _FINAL_STEP.search(lower)):
            self.final_step = int(match.group(1))
        if "train_runtime" in lower and (match := _RUNTIME.search(lower)):
            hours, minutes, seconds = match.groups()
            self.runtime = int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(seconds)
        elif "training time" in lower and (match := _TRAINING_TIME.search(lower)):
            self.runtime = float(match.group(1))
            if self.completed is None and len(self.train):  # litgpt prints it when fit() has returned; ...
                self.completed, self._completed_by_time = Hit(self.where(number), line[:300]), True
        if (number or 0) <= SETTINGS_LINES and _SETTING_HINT.search(lower):
            self._settings(lower)
        return kind

    def finish(self) -> None:
        """Parse the newest loss line if it was skipped, and fall back on the progress bars' losses of a
        kind the log printed nowhere else (called before the verdict; safe to repeat)."""
        if self._unparsed is not None:
            number, lower, label = self._unparsed
            self._unparsed, current, self.label = None, self.label, label  # its cell, not the notebook's last
            self.losses_since_error -= 1  # counted when skipped; add_loss counts it again
            self._losses(number, lower)
            self.label = current
        if not len(self.train) and len(self._bar["train"]):
            self.train, self._bar["train"] = self._bar["train"], LossSeries()
        if not len(self.val) and len(self._bar["val"]):
            self.val, self._bar["val"] = self._bar["val"], LossSeries()

    def add_loss(self, kind: str, step: int | None, value: float, number: int | None, bar: bool = False) -> None:
        """One loss value; ``step`` None means "unknown": the loss line's ordinal is used instead. ``bar``:
        from a progress bar's postfix (see ``finish``)."""
        series = self._bar[kind] if bar else self.train if kind == "train" else self.val
        if step is None:
            step = max(self.loss_lines, series.last[0] + 1 if series.last else 1)
            self._counted = self._counted or not bar
        else:
            if not bar and not self._counted and len(self.runs) < MAX_RUNS and restarts(series, step) \
                    and same_epoch(self._epoch_named, self._epoch_at_loss):
                self._restart()
                series = self.train if kind == "train" else self.val
            self.real_steps = True
        series.add(step, value)
        self.loss_where[kind] = f"{self.label}:{number}" if number else self.label
        self.context_at_loss = self.context
        self._settings_since_loss.clear()
        self.log_settings.mark()
        if kind == "train":
            if self._completed_by_time:
                self.completed, self._completed_by_time = None, False
            self.losses_since_error += 1
            self._last_train_number = number
            self._epoch_at_loss = self._epoch_named

    def _record_error(self, kind: str, number: int | None, line: str) -> None:
        self.errors[kind] += 1
        if kind == "other-exception" and self.error and self.error.kind != "other-exception" \
                and self.losses_since_error == 0:
            return  # raised while handling a specific failure (a chained traceback): keep the cause
        self.error = Hit(self.where(number), line[:300], kind)
        self.losses_since_error = 0

    def _losses(self, number: int | None, lower: str) -> None:
        if _MEAN_LOSS.search(lower) or (lower[:1] in " 0123456789" and self._keras_evaluation(lower)):
            return
        if "{" in lower and self._dict_losses(number, lower):
            return
        found = []
        validating = "step" in lower and _VALIDATE_STEP.search(lower) is not None
        for key, value in find_losses(lower):
            if key in _TRAIN_KEYS or key in _VAL_KEYS:
                found.append(("val" if key in _VAL_KEYS or (validating and not key) else "train", value))
        if not found:
            return
        if len(found) > 1 and self.val.last is not None and any(kind == "train" for kind, _ in found):
            # the newest evaluation's loss printed again beside each train loss until the next one
            # ("loss train: 1.002, val: 1.198" after "iter 100: val loss 1.1984"): no new point
            found = [(kind, value) for kind, value in found
                     if kind == "train" or abs(value - self.val.last[1]) > REPEATED_VAL]
        match = _STEP.search(lower) if ("step" in lower or "iter" in lower) else None
        step = int(match.group(1)) if match else None
        if step is None and self.real_steps and self.train.last and all(kind == "val" for kind, _ in found):
            step = max(self.train.last[0], self.val.last[0] if self.val.last else 0)  # "Final evaluation | val
            #                                                                           loss: 1.050": at the end
        if match and match.group(2):  # "step:7151/20000": how far the run got of the steps it planned
            self.step_of = (step, int(match.group(2)))
        bar = (("it/s" in lower or "s/it" in lower or "%|" in lower) and _PROGRESS_BAR.search(lower) is not None) \
            or (" - eta: " in lower and "] - " in lower)  # Keras's running value before the epoch's last line
        for kind, value in found:
            self.add_loss(kind, step, value, number, bar)

    def _keras_evaluation(self, lower: str) -> bool:
        """A Keras bar of another length than the epoch's, after the epochs ("31/31 [====] - loss: 0.3682"
        after "126/126 [====] - … val_loss: 0.3682"): ``model.evaluate()``'s loss, not a train loss."""
        match = _KERAS_BAR.match(lower)
        if match is None or self.epoch is None:
            return False
        total = int(match.group(1))
        if self._keras_total is None:
            self._keras_total = total
            return False
        return total != self._keras_total and "val_" not in lower

    def _dict_losses(self, number: int | None, line: str) -> bool:
        """``{'loss': 2.1, 'epoch': 0.5}`` (Python repr) or a JSON object; True if it held a loss."""
        pairs = {key: float(value) for key, value in _DICT_PAIR.findall(line)}
        step = pairs.get("step", pairs.get("global_step", pairs.get("iter", pairs.get("current_steps"))))
        step = int(step) if step is not None and math.isfinite(step) else None
        if step is None and ("step" in line or "iter" in line) and (named := _STEP.search(line.split("{")[0])):
            step = int(named.group(1))  # "Training Logs at step 500: {'loss': 2.9199, ...}"
        if step is None and self.real_steps and (known := [p[0] for p in (self.train.last, self.val.last) if p]):
            step = max(known)  # trainer.evaluate() after a run with steps: at its last step, not one more
        if "total_steps" in pairs and "max_steps" not in self.settings:  # LLaMA-Factory
            self.settings["max_steps"] = int(pairs["total_steps"])
        if "elapsed_time" in line and (match := _ELAPSED.search(line)):
            days, hours, minutes, seconds = (int(group or 0) for group in match.groups())
            self.runtime = ((days * 24 + hours) * 60 + minutes) * 60 + seconds
        is_eval = any(f'{q}kind{q}: {q}{kind}{q}' in line for q in "\"'" for kind in ("val", "eval"))
        held = False
        for key, kind in (("loss", "val" if is_eval else "train"), ("train_loss", "train"),
                          ("eval_loss", "val"), ("val_loss", "val")):
            if key in pairs and not (key == "train_loss" and "train_runtime" in pairs):
                self.add_loss(kind, step, pairs[key], number)  # train_loss beside train_runtime: a mean
                held = True
        return held

    def _printed(self, number: int | None, line: str, lower: str) -> None:
        for name, pattern in _PRINTED:
            if name == "lr" and progress_lr(lower) is not None:
                continue  # logged beside a loss or a step: the schedule's value then (``logged_lr``)
            match = pattern.search(line if name == "model_name_or_path" else lower)  # a model id keeps its case
            if match is not None:
                value = match.group(1) if name in ("model_name_or_path", "optimizer", "precision") \
                    else literal_number(match.group(1))
                if value is not None:
                    self.log_settings.printed(name, value, self.where(number))

    def _settings(self, line: str) -> None:
        for name, pattern in _SETTINGS:
            match = pattern.search(line)
            value = setting_value(name, match) if match and name not in self.settings else None
            if value is not None:
                self.settings[name] = value
                self._settings_since_loss.add(name)

    def verdict(self) -> Verdict:
        """The outcome and the evidence line that decided it (failure beats success beats unknown)."""
        self.finish()
        error = self.error if self.error and self.losses_since_error < RECOVERED_AFTER else None
        if error:
            return Verdict("failure", f"{error.where}: {error.line}", status_for(error.kind), error.kind,
                           error.line)
        last = self.train.last
        if last and not math.isfinite(last[1]):
            line = f"last train loss is {last[1]} (step {last[0]})"
            return Verdict("failure", f"{self.where(self._last_train_number)}: {line}", "diverged", "nan-loss", line)
        if self.stopped_early:
            return Verdict("success", f"{self.stopped_early.where}: {self.stopped_early.line}", "stopped-early")
        if self.completed:
            return Verdict("success", f"{self.completed.where}: {self.completed.line}", "completed")
        series, what = (self.val, "val loss") if len(self.val) >= 2 else (self.train, "train loss")
        trend = series.trend()
        where = self.loss_where.get("val" if series is self.val else "train", self.label)
        described = describe_trend(series, what, not self.real_steps) if trend else ""
        if self.epoch and self.epoch[0] < self.epoch[1]:  # "Epoch 8/30" last: cut off, whatever the loss did
            return Verdict("unknown", f"{self.label}: the last epoch logged is {self.epoch[0]} of {self.epoch[1]}"
                           + (f"; {described}" if trend else "") + ": no sign the run finished")
        if self.step_of and self.step_of[0] + max(1, self.step_of[1] // 100) < self.step_of[1] \
                and not (self.epoch and self.epoch[0] >= self.epoch[1]):  # a step count of each epoch
            return Verdict("unknown", f"{where}: the last step logged is {self.step_of[0]} of {self.step_of[1]}"
                           + (f"; {described}" if trend else "") + ": no sign the run finished")
        if trend and trend[1] < trend[0] * (1 - FLAT_SHARE) and len(series) >= 2:
            return Verdict("success", f"{where}: {described}, no error")
        if trend:
            return Verdict("unknown", f"{where}: {described}: no improvement, no error")
        newest = self.loss_where.get("train", self.loss_where.get("val", self.label))  # its cell, in a notebook
        return Verdict("unknown", f"{newest}: {self.loss_lines} loss line(s), no error and no sign the run finished")

    def fill(self, attempt: Attempt) -> Attempt:
        """Copy outcome, curves and settings into ``attempt`` (fields it already has are kept)."""
        verdict = self.verdict()
        attempt.outcome, attempt.evidence = verdict.outcome, verdict.evidence
        attempt.status = verdict.status or attempt.status
        attempt.error_kind, attempt.error_message = verdict.error_kind, verdict.error_message
        attempt.metrics = metric_rows(self.train, self.val)
        finite_val = [value for _, value in self.val.all_points() if math.isfinite(value)]
        attempt.best_val_loss = min(finite_val) if finite_val else None
        attempt.final_train_loss = self.train.last[1] if self.train.last else None
        if self.real_steps:
            attempt.steps = max(point[0] for point in (self.train.last, self.val.last) if point)
        if self.final_step is not None and self.final_step > (attempt.steps or 0):
            attempt.steps = self.final_step
        if self.runtime and attempt.wall_seconds is None:
            attempt.wall_seconds = self.runtime
        settings = dict(self.settings)
        if (frozen := settings.pop("frozen_params", None)) is not None and "trainable_params" in settings:
            settings.setdefault("n_params", settings["trainable_params"] + frozen)
        for name, value in settings.items():
            if hasattr(attempt, name) and getattr(attempt, name) is None:
                setattr(attempt, name, value)
            elif not hasattr(attempt, name):
                attempt.extra[name] = value
        self._extras(attempt.extra)
        self.log_settings.record(attempt.extra)
        self.logged_lr.record(attempt.extra)
        if self.shapes:
            attempt.extra["line_shapes"] = self.shapes
        return attempt

    def _extras(self, extra: dict) -> None:
        if self.errors:
            extra["error_counts"] = dict(sorted(self.errors.items()))
        if self.error and self.error.kind and self.losses_since_error >= RECOVERED_AFTER:
            extra["recovered_error"] = f"{self.error.where}: {self.error.line}"
        if self.traceback_tail:
            extra["traceback_tail"] = self.traceback_tail
        if self.train.nonfinite or self.val.nonfinite:
            extra["nonfinite_losses"] = self.train.nonfinite + self.val.nonfinite
        if not self.real_steps and (len(self.train) or len(self.val)):
            extra["steps_counted"] = True  # the log printed no step numbers; metrics count log records
