"""``luna scan DIR…``: training attempts found by *reading* a directory tree — lunalm run directories,
Hugging Face Trainer output, logs, notebooks and training scripts. Nothing found is executed, imported or
unpickled (``training_args.bin`` and checkpoints are never opened).

    scanner = Scanner()
    for attempt in scanner.scan(["~/experiments"]):
        registry.upsert(attempt)          # attempt.fingerprint is stable: a rescan updates, never duplicates
    print(scanner.stats.files_seen, scanner.stats.skipped)

Each folder is handled on its own, in name order (see ``walk``): a lunalm run directory, a Trainer output
folder, a Lightning ``version_N`` folder, an MLflow run, a folder of TensorBoard event files or a Weights &
Biases run's files is one attempt; the other files
are read by kind (``.py`` scripts, ``.ipynb`` notebooks, ``.log``/``.out``/``.err`` logs, and
``.txt``/``.jsonl``/extensionless files probed for log lines); logs are then paired with the script beside
them (``pairing``), and W&B runs with the Trainer folders, notebooks and scripts of the same training
anywhere under the root (``pairing.join_wandb``, once the walk is done). Files that cannot be
read (binary, permission denied, malformed, too large) are recorded in ``stats.skipped`` with the reason,
and the scan goes on.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator

from lunalm.errors import ConfigError
from lunalm.runs.attempt import Attempt
from lunalm.runs.scan import (hf_trainer, lightning, lunalm_runs, mlflow_runs, mlflow_store, model_card,
                              tensorboard_events, wandb_files)
from lunalm.runs.scan.logged_lr import settle_lr
from lunalm.runs.scan.log_files import distinct, read_log
from lunalm.runs.scan.names import canonical_device, canonical_optimizer
from lunalm.runs.scan.notebooks import read_notebook
from lunalm.runs.scan.pairing import (JOINED_SOURCES, Script, claim_output_dirs, incidental, join_wandb, merge,
                                     output_target, pair, same_run)
from lunalm.runs.scan.reading import SECONDS_PER_FILE, ScanStats, Unreadable
from lunalm.runs.scan.scripts import apply_facts, read_script, script_attempt
from lunalm.runs.scan.walk import Folder, single_file, walk as walk_tree

__all__ = ["Scanner", "ScanStats", "scan", "file_kind"]

logger = logging.getLogger(__name__)

LOG_SUFFIXES = frozenset({".log", ".out", ".err", ".stdout", ".stderr"})
PROBED_SUFFIXES = frozenset({".txt", ".jsonl", ""})  # often corpora or other text: read only if log-like early
# A reader that meets input it does not expect must not end the whole scan; the file is reported instead.
_MALFORMED = (ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError)

Progress = Callable[[str, int], None]  # (path, size in bytes), once per regular file the walk meets


def file_kind(name: str) -> str | None:
    """``"script"``, ``"notebook"``, ``"log"``, ``"probe"`` (maybe a log), ``"markdown"`` (a log only when
    it is mostly training lines) or None (not read)."""
    suffix = os.path.splitext(name.lower())[1]
    if suffix == ".py":
        return "script"
    if suffix == ".ipynb":
        return "notebook"
    if suffix in LOG_SUFFIXES:
        return "log"
    if suffix == ".md":  # a log saved as Markdown (log.md); a README or model card is no log
        return None if name.lower().startswith(("readme", "model_card", "modelcard")) else "markdown"
    return "probe" if suffix in PROBED_SUFFIXES else None


class Scanner:
    """Scans paths into attempts; ``stats`` counts what it saw. ``progress(path, size)`` is called once for
    every regular file met (read or not), after its folder was handled."""

    def __init__(self, progress: Progress | None = None, file_seconds: float = SECONDS_PER_FILE):
        self.stats = ScanStats()
        self.progress = progress
        self.file_seconds = file_seconds  # time one file may take before it is given up
        self._seen_dirs: set[tuple[int, int]] = set()
        self._output_scripts: dict[str, Script] = {}  # Trainer output folder -> the script that wrote it
        self._root = ""  # the root being scanned (tests/ and bench/ count below it)
        self._companions: dict[str, list[Attempt]] = {}  # Trainer output folder -> its run's logs, notebooks
        self._texts: dict[str, Attempt] = {}  # a log's text digest -> the first log read with that text
        self._stored: set[str] = set()  # the content digests of the MLflow database runs read so far

    def scan(self, paths: Iterable[str], progress: Progress | None = None) -> Iterator[Attempt]:
        """Attempts under ``paths`` (files or directories), lazily; a missing path fails at once."""
        roots = [_root(path) for path in ([paths] if isinstance(paths, (str, os.PathLike)) else paths)]
        self.progress = progress or self.progress
        return self._attempts(roots)

    def _attempts(self, roots: list[str]) -> Iterator[Attempt]:
        for root in roots:
            self._root = root if os.path.isdir(root) else os.path.dirname(root)
            folders = walk_tree(root, self.stats, self._seen_dirs) if os.path.isdir(root) \
                else [single_file(root, self.stats)]
            held = []  # attempts a W&B run elsewhere under the root may belong to, kept until the walk ends
            for folder in folders:
                for attempt in self._folder(folder):
                    if attempt.source in JOINED_SOURCES:
                        held.append(attempt)
                        continue
                    self.stats.attempts += 1
                    yield _spelled(attempt)
                for entry in folder.files if self.progress else ():
                    self.progress(entry.path, entry.size)
            for attempt in join_wandb(held):
                self.stats.attempts += 1
                yield _spelled(attempt)

    def _folder(self, folder: Folder) -> list[Attempt]:
        if lunalm_runs.is_run_dir(folder):
            run = self._guarded(os.path.join(folder.path, "config.yaml"), lunalm_runs.read_run, folder, self.stats)
            if run is not None:
                return [run]
        found = self._trainer_output(folder)
        wandb = self._guarded(folder.path, wandb_files.read_run_files, folder, self.stats) \
            if wandb_files.is_run_files(folder) else None
        scripts, logs, notebooks, stored = [], [], [], []
        for entry in folder.files:
            if wandb is not None and entry.name == "output.log":
                continue  # the W&B run's console output, read with it
            if mlflow_store.is_store(entry.path):  # mlflow.db: every run in it
                for run in self._guarded(entry.path, mlflow_store.read_store, entry.path, self.stats) or []:
                    if run.extra["content"] not in self._stored:  # a copy of the store holds the same runs
                        self._stored.add(run.extra["content"])
                        stored.append(run)
                continue
            kind = file_kind(entry.name)
            if kind == "script":
                facts = self._guarded(entry.path, read_script, entry, self.stats)
                if facts and facts.role:
                    facts.incidental = incidental(entry.path, self._root)
                    scripts.append((entry, facts))
            elif kind == "notebook":
                notebooks += self._guarded(entry.path, read_notebook, entry, self.stats) or []
            elif kind is not None and not wandb_files.is_internal_log(entry.path):
                logs += self._guarded(entry.path, read_log, entry, self.stats, kind != "log", kind == "markdown") or []
        logs = distinct(logs, self._texts, self.stats)
        claims = claim_output_dirs(folder.path, scripts, hf_trainer.has_state)
        self._output_scripts.update(claims)
        newest_runs = self._lightning_claims(folder.path, scripts) | self._lightning_notebook(folder.path, notebooks)
        claimed = {entry.path for entry, _ in claims.values()} | self._own_script(found, scripts) | set(newest_runs)
        if wandb is not None:  # the script the run names, beside it (W&B files copied next to the code)
            found.append(wandb)
            program = wandb_files.program_name(wandb)
            for entry, facts in scripts:
                if entry.name == program:
                    apply_facts(wandb, facts, entry.path)
                    claimed.add(entry.path)
        attempts = pair(scripts, logs, self.stats, claimed) + notebooks
        here = [trainer for trainer in found if trainer.source == "hf-trainer" and trainer.path == folder.path]
        kept = []
        for attempt in attempts:  # a log or notebook of a run whose Trainer output folder is below: one attempt
            target = output_target(folder.path, attempt, hf_trainer.has_state) \
                or newest_runs.get(attempt.extra.get("script")) or newest_runs.get(attempt.path)
            if target is not None:
                self._companions.setdefault(target, []).append(attempt)
            elif len(here) == 1 and same_run(here[0], attempt):  # ... or in the output folder itself
                merge(here[0], attempt)
            else:
                kept.append(attempt)
        for attempt in found + kept + stored:
            settle_lr(attempt)
        return found + kept + stored

    def _trainer_output(self, folder: Folder) -> list[Attempt]:
        """The Trainer output folder's attempt, with the settings of the script that named it, if any."""
        state = hf_trainer.state_file(folder)
        script = self._output_scripts.pop(folder.path, None)
        companions = self._companions.pop(folder.path, [])
        trainer = self._guarded(state, hf_trainer.read_output_dir, folder, state, self.stats) if state \
            else self._run_folder(folder)
        if state and trainer is not None:  # its runs/ event files are part of it
            self._guarded(folder.path, tensorboard_events.trainer_runs, trainer, folder, self.stats)
        if trainer is None:  # the claim failed: report the script, logs and notebooks themselves
            return ([script_attempt(*script)] if script and not companions else []) + companions
        for companion in companions:
            merge(trainer, companion)
        if script is not None:
            apply_facts(trainer, script[1], script[0].path)
        return [trainer]

    def _run_folder(self, folder: Folder) -> Attempt | None:
        """The attempt of a Lightning, MLflow or TensorBoard run folder, or None."""
        if lightning.is_run_dir(folder):
            record = "metrics.csv" if "metrics.csv" in folder.names() else \
                "hparams.yaml" if "hparams.yaml" in folder.names() else lightning.event_names(folder)[0]
            return self._guarded(os.path.join(folder.path, record), lightning.read_run_dir, folder, self.stats)
        if mlflow_runs.is_run_dir(folder):
            return self._guarded(os.path.join(folder.path, "meta.yaml"), mlflow_runs.read_run_dir, folder, self.stats)
        if tensorboard_events.is_run_dir(folder) and not wandb_files.is_run_files(folder):  # W&B's synced copy
            return self._guarded(folder.path, tensorboard_events.read_run_dir, folder, self.stats)
        if model_card.is_card_folder(folder):  # a Trainer output folder without its trainer_state.json
            card = self._guarded(os.path.join(folder.path, model_card.CARD), model_card.read_card_folder, folder,
                                 self.stats)
            if card is not None:  # its runs/ event files are part of it
                self._guarded(folder.path, tensorboard_events.trainer_runs, card, folder, self.stats)
            return card
        return None

    def _lightning_claims(self, path: str, scripts: list[Script]) -> dict[str, str]:
        """The folder's one Lightning script lends its settings to the run folders below it; its log joins
        the newest of them. Returns ``{script path: newest run folder}``."""
        own = [script for script in scripts if script[1].role == "trainer" and not script[1].incidental
               and script[1].extra.get("trainer") == "Trainer" and script[1].extra.get("lightning")]
        runs = lightning.run_dirs(path) if len(own) == 1 else []
        for run in runs:
            self._output_scripts[run] = own[0]
        return {own[0][0].path: runs[-1]} if runs else {}

    @staticmethod
    def _lightning_notebook(path: str, notebooks: list[Attempt]) -> dict[str, str]:
        """The folder's one Lightning notebook is the record of the newest run folder below it (its settings
        and outputs join that run). Returns ``{notebook path: newest run folder}``."""
        own = [notebook for notebook in notebooks if notebook.extra.get("lightning")
               and notebook.extra.get("trainer") == "Trainer"]
        runs = lightning.run_dirs(path) if len(own) == 1 else []
        return {own[0].path: runs[-1]} if runs else {}

    @staticmethod
    def _own_script(found: list[Attempt], scripts: list[Script]) -> set[str]:
        """A Trainer output saved into the script's own folder: the folder's one training script wrote it
        (it lends its settings and is not an attempt of its own). Returns the path of the script used."""
        own = [script for script in scripts if script[1].role == "trainer" and not script[1].incidental]
        if len(found) != 1 or found[0].source != "hf-trainer" or len(own) != 1:
            return set()
        apply_facts(found[0], own[0][1], own[0][0].path)
        return {own[0][0].path}

    def _guarded(self, path: str, reader, *args):
        """``reader(*args)``, or None with the reason in ``stats.skipped`` when the file cannot be read (or
        reading it takes longer than ``file_seconds``)."""
        self.stats.deadline = time.monotonic() + self.file_seconds
        try:
            return reader(*args)
        except Unreadable as error:
            reason = str(error)
        except PermissionError:
            reason = "permission denied"
        except OSError as error:
            reason = f"cannot read: {error.strerror or error}"
        except _MALFORMED as error:
            logger.debug("scan: %s could not be parsed", path, exc_info=True)
            reason = f"could not be parsed ({type(error).__name__}: {str(error)[:200]})"
        finally:
            self.stats.deadline = None
        self.stats.skip(path, reason)
        return None


def scan(paths: Iterable[str], progress: Progress | None = None) -> Iterator[Attempt]:
    """Attempts under ``paths``; use :class:`Scanner` to see the statistics afterwards."""
    return Scanner().scan(paths, progress)


def _spelled(attempt: Attempt) -> Attempt:
    """One spelling of its optimizer and device, whichever file named them (``names``)."""
    attempt.optimizer = canonical_optimizer(attempt.optimizer)
    attempt.device = canonical_device(attempt.device)
    return attempt


def _root(path: str) -> str:
    expanded = os.path.expanduser(str(path))
    if not os.path.exists(expanded):
        raise ConfigError(f"{path}: no such file or directory; give the folders that hold your training runs, "
                          "logs, notebooks or scripts (e.g. `luna scan ~/experiments`)")
    return os.path.abspath(expanded)
