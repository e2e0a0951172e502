"""A lunalm run writing itself into the registry: registered at start, a heartbeat while it trains,
its outcome, metrics and the plan's estimate beside the actual figures at the end.

It wraps the run's UI (the loop calls ``ui.progress`` every step), so the training loop never imports the
registry. A registry that cannot be written (read-only disk, locked for minutes) costs a warning, never
the run.
"""

from __future__ import annotations

import json
import math
import os
import socket
import sqlite3
import time
from pathlib import Path

from lunalm.errors import LunaError
from lunalm.runs.attempt import run_fingerprint
from lunalm.runs.registry import HEARTBEAT_EVERY_S, Registry, default_path

OUTCOME = {"completed": "success", "stopped-early": "success", "interrupted": "unknown"}


class RunRecorder:
    """A UI that forwards to the real one and records the run as it goes."""

    def __init__(self, run, ui, path: str | Path | None = None):
        self.run, self.ui = run, ui
        self.id = run_fingerprint(str(run.run_dir))
        self.path = Path(path) if path else default_path(run.config.runs_dir)
        self.registry: Registry | None = None
        self.last_beat = 0.0
        self.pending: dict = {}  # columns not yet written because the registry failed
        self.warned = False

    # --- the UI protocol ----------------------------------------------------------------------------

    def progress(self, run, record: dict) -> None:
        self.ui.progress(run, record)
        if time.time() - self.last_beat >= HEARTBEAT_EVERY_S:
            self._write(heartbeat=time.time(), steps=run.state.step, tokens_seen=run.state.tokens_seen,
                        status="running")

    def message(self, text: str) -> None:
        self.ui.message(text)

    def warning(self, text: str) -> None:
        self.ui.warning(text)

    def sample(self, step: int, prompt: str, text: str) -> None:
        self.ui.sample(step, prompt, text)

    # --- lifecycle ----------------------------------------------------------------------------------

    def started(self) -> None:
        run, config = self.run, self.run.config
        from lunalm.config import run_config_to_dict
        from lunalm.runs.attempt import model_label

        first = self._registered_start()
        self._write(
            source="lunalm", path=str(Path(run.run_dir).resolve()), name=Path(run.run_dir).name, status="running",
            outcome="unknown", evidence="training",
            model=model_label(run_config_to_dict(config)),
            corpus=", ".join(config.corpus.paths) or "builtin:ataturk", lr=run.peak_lr,
            optimizer="Muon+AdamW" if config.train.optimizer == "muon" else "AdamW",
            batch_size=run.state.micro_batch_size, grad_accum=run.state.grad_accum_steps,
            epochs=round(run.passes, 2), precision=run.hw.precision, device=run.hw.name, n_params=run.n_params,
            steps=run.state.step, tokens_seen=run.state.tokens_seen,
            started=first or time.time() - run.state.elapsed_s, heartbeat=time.time(), pid=os.getpid(),
            host=socket.gethostname(), config=run_config_to_dict(config), plan=config.plan,
            error_kind=None, error_message=None, ended=None)

    def _registered_start(self) -> float | None:
        """When this run first started, as its row says (a resumed run keeps it; now - elapsed training time
        would date a run paused overnight to the morning); None when it has no row yet."""
        try:
            if self.registry is None:
                self.registry = Registry(self.path)
            row = self.registry.get(self.id, exact=True)
        except (sqlite3.Error, OSError, LunaError):
            return None
        return row.get("started") if row else None

    def finished(self, status: str) -> None:
        summary = _read_json(Path(self.run.run_dir) / "summary.json")
        last_eval = summary.get("last_eval") or {}
        evidence = {"completed": f"completed all {summary.get('steps')} steps",
                    "stopped-early": "early stopping: validation loss stopped improving",
                    "diverged": "diverged: non-finite or exploding losses persisted after rollbacks",
                    "oom": "out of memory even at micro-batch 1",
                    "interrupted": "interrupted (Ctrl-C / SIGTERM); a checkpoint was saved"}.get(status, status)
        train = [loss for _, split, loss in self._metrics() if split == "train"]
        self._write(status=status, outcome=OUTCOME.get(status, "failure"), evidence=evidence,
                    ended=time.time(), heartbeat=time.time(), steps=summary.get("steps"),
                    epochs=summary.get("passes"),  # made, not planned: train.epochs is only a cap
                    tokens_seen=summary.get("tokens_seen"), wall_seconds=summary.get("wall_time_s"),
                    tokens_per_s=summary.get("tokens_per_s"), best_val_loss=summary.get("best_val_loss"),
                    best_val_bpb=last_eval.get("bits_per_byte"), final_train_loss=train[-1] if train else None,
                    error_kind={"oom": "cuda-oom", "diverged": "nan-loss"}.get(status))

    def crashed(self, error: BaseException) -> None:
        from lunalm.errors import is_disk_full
        from lunalm.train.device import is_oom

        kind = "cuda-oom" if is_oom(error) else "keyboard-interrupt" if isinstance(error, KeyboardInterrupt) \
            else "disk-full" if is_disk_full(error) else "other-exception"
        status = {"keyboard-interrupt": "interrupted", "disk-full": "disk-full"}.get(kind, "crashed")
        self._write(status=status,
                    outcome="unknown" if kind == "keyboard-interrupt" else "failure",
                    evidence=f"{type(error).__name__}: {str(error)[:200]}", ended=time.time(),
                    error_kind=kind, error_message=f"{type(error).__name__}: {str(error)[:300]}",
                    steps=self.run.state.step, tokens_seen=self.run.state.tokens_seen,
                    **({"best_val_loss": self.run.state.best_val_loss}
                       if math.isfinite(self.run.state.best_val_loss) else {}))
        self._metrics()

    # --- helpers ------------------------------------------------------------------------------------

    def _write(self, **values) -> None:
        """Upsert this run's row; a registry that fails costs a warning (once) and a side-log line, never
        the run. Writes that failed are replayed first when the registry works again."""
        try:
            if self.registry is None:
                self.registry = Registry(self.path)
            self.registry.upsert(self.id, **{**self.pending, **values})
            self.pending = {}
        except (sqlite3.Error, OSError, LunaError) as error:
            self.pending.update(values)
            self._keep_aside(values, error)
        self.last_beat = time.time()  # a failing registry is retried at the next heartbeat, not every step

    def _keep_aside(self, values: dict, error: BaseException) -> None:
        from lunalm.runs.repair import SIDE_LOG, append_side_log

        side_log = Path(self.run.run_dir) / SIDE_LOG
        try:
            append_side_log(self.run.run_dir, self.id, values)
        except OSError:
            side_log = None
        if not self.warned:
            self.warned = True
            kept = f"its row is kept in {side_log}" if side_log else "its row could not be kept either"
            self.ui.warning(f"warning: run registry {self.path} not updated ({str(error)[:160]}); training goes "
                            f"on, {kept}; `luna runs repair --runs-dir {self.run.config.runs_dir}` rebuilds it")

    def _metrics(self) -> list[tuple[int, str, float]]:
        """Copy the run's loss series (metrics.jsonl, the last value of each step) into the registry."""
        from lunalm.train.metrics import loss_series, read_jsonl

        series = loss_series(read_jsonl(Path(self.run.run_dir) / "metrics.jsonl"))
        rows = [(step, split, loss) for split in ("train", "val")
                for step, loss in zip(*series.get(split, ([], [])))]
        try:
            if self.registry is not None and rows:
                self.registry.add_metrics(self.id, rows)
        except sqlite3.Error as error:  # the series stays in metrics.jsonl; `luna scan` can import it later
            self.ui.warning(f"warning: metrics not copied into the run registry ({error})")
        return rows


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
