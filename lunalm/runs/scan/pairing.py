"""Which files of one folder describe the same attempt: a log and the script that wrote it.

Kept deliberately simple and deterministic (a rescan pairs the same way):

* helper scripts (``model.py`` with ``configure_optimizers``) fill gaps in the folder's trainer scripts;
* a log takes the settings of the trainer script whose name it contains (``train_gpt2.log`` ←
  ``train_gpt2.py``; the longest such name wins), else of the folder's only trainer script, else of the
  one trainer script that prints the most of its lines (``shapes``);
* a log or notebook inside a Trainer output folder whose numbers agree with it (:func:`same_run`) is that
  folder's run;
* a trainer script whose ``output_dir`` (``TrainingArguments(output_dir="out")``) is a Trainer output
  folder below it lends its settings to that folder's attempt (model, LoRA, optimizer, ...);
* a script whose settings went into a log or an output folder is not reported again on its own (they are
  the evidence that it ran); a trainer script with neither stays an attempt of its own with outcome
  "unknown"; a helper alone (a ``train()`` method that steps no optimizer: a tokenizer trainer) is none;
* tests and benchmarks (:func:`incidental`) are attempts only through a log of their own.

Notebooks carry their own code and outputs, so they are never paired.
"""

from __future__ import annotations

import math
import os

from lunalm.runs.attempt import Attempt
from lunalm.runs.scan.effective import settle
from lunalm.runs.scan.reading import ScanStats
from lunalm.runs.scan.task import with_model
from lunalm.runs.scan.shapes import shared
from lunalm.runs.scan.scripts import ScriptFacts, apply_facts, script_attempt
from lunalm.runs.scan.walk import SKIP_DIRS, FileEntry

Script = tuple[FileEntry, ScriptFacts]


def pair(scripts: list[Script], logs: list[Attempt], stats: ScanStats,
         claimed: set[str] = frozenset()) -> list[Attempt]:
    """The folder's log attempts (with their scripts' settings), then its unpaired scripts (those whose
    path is in ``claimed`` went to an output folder, see :func:`claim_output_dirs`)."""
    trainers = [script for script in scripts if script[1].role == "trainer"]
    helpers = [script for script in scripts if script[1].role == "helper"]
    for _, facts in trainers:
        for _, helper in helpers:
            _fill(facts, helper)
    candidates = trainers or helpers
    used = set(claimed) | {entry.path for entry, facts in candidates if facts.incidental}
    for log in logs:
        script = _script_for(log, candidates)
        if script is not None:
            settle(log, script[1].fields, os.path.dirname(script[0].path), script[0].name, stats)
            apply_facts(log, script[1], script[0].path)
            log.extra["task"] = with_model(log.extra.get("task"), log.model)
            used.add(script[0].path)
        elif log.source == "log":  # what the log printed (its settings, a config file it names) is all there is
            settle(log, {}, os.path.dirname(log.path), "", stats)
    return logs + [script_attempt(entry, facts) for entry, facts in trainers if entry.path not in used]


def incidental(path: str, root: str) -> bool:
    """Tests and benchmarks: they train only to check or time something, so they are attempts only when a
    log of their own (``bench.log`` beside ``bench.py``) shows a run. Folders count below the scan's
    ``root`` only (the root itself may well be called ``tests``)."""
    name = os.path.basename(path).lower()
    folders = os.path.relpath(os.path.dirname(path), root).lower().split(os.sep)
    return (name.startswith(("test_", "bench", "conftest")) or name.endswith("_test.py")
            or bool({"tests", "test", "bench", "benchmarks", "benchmark"} & set(folders)))


def _script_for(log: Attempt, scripts: list[Script]) -> Script | None:
    stem = os.path.splitext(os.path.basename(log.path))[0].lower()
    named = [script for script in scripts if os.path.splitext(script[0].name)[0].lower() in stem]
    if named:
        longest = max(len(script[0].name) for script in named)
        best = [script for script in named if len(script[0].name) == longest]
        return best[0] if len(best) == 1 else None
    ordinary = [script for script in scripts if not script[1].incidental]
    if len(ordinary) == 1:
        return ordinary[0]
    counts = [shared(log.extra.get("line_shapes"), script[1].shapes) for script in ordinary]
    best = max(counts, default=0)  # several scripts: the one alone that prints the log's lines
    return ordinary[counts.index(best)] if best and counts.count(best) == 1 else None


def claim_output_dirs(folder: str, scripts: list[Script], has_state) -> dict[str, Script]:
    """``{output folder path: script}`` for trainer scripts whose ``output_dir`` is a folder below
    ``folder`` for which ``has_state(path)`` holds (and that the walk will visit: no hidden parts)."""
    claims: dict[str, Script] = {}
    for script in scripts:
        target = _below(folder, script[1].extra.get("output_dir"), has_state)
        if script[1].role == "trainer" and target is not None and target not in claims:
            claims[target] = script
    return claims


def output_target(folder: str, attempt: Attempt, has_state) -> str | None:
    """The Trainer output folder below ``folder`` that a log's or notebook's run wrote (its
    ``output_dir``), when there is one; the two are then one attempt (see :func:`merge`)."""
    if attempt.source not in ("log", "notebook"):
        return None
    return _below(folder, attempt.extra.get("output_dir"), has_state)


def _below(folder: str, relative, has_state) -> str | None:
    """``folder/relative`` when it is a Trainer output folder below ``folder`` that the walk will visit."""
    if not isinstance(relative, str) or os.path.isabs(relative):
        return None
    target = os.path.normpath(os.path.join(folder, relative))
    parts = os.path.relpath(target, folder).split(os.sep)
    if parts[0] in (".", "..") or any(part.startswith(".") or part in SKIP_DIRS for part in parts):
        return None
    return target if has_state(target) else None


def same_run(trainer: Attempt, companion: Attempt) -> bool:
    """Whether a log or notebook lying in a Trainer output folder itself (a run's console output saved
    beside its model, a Colab notebook pushed with its output folder) records that folder's run: the two
    agree on the best eval loss, or, where one has none, on the step count (the global step or the
    planned max_steps)."""
    if companion.source not in ("log", "notebook") or trainer.source != "hf-trainer":
        return False
    if trainer.best_val_loss is not None and companion.best_val_loss is not None:
        return math.isclose(trainer.best_val_loss, companion.best_val_loss, rel_tol=1e-4)
    steps = {trainer.steps, trainer.extra.get("max_steps")} - {None}
    return companion.steps is not None and companion.steps in steps


def merge(trainer: Attempt, companion: Attempt) -> None:
    """One run seen twice: its Trainer output (``trainer``) and its log or notebook. The output folder's
    facts stand; the companion fills the gaps, its failure (a crash after the last checkpoint) wins, and
    so does its end where the folder's last checkpoint came before it (saved at step 2800 of 2808, the
    notebook shows train() return at 2808)."""
    if trainer.model is not None and trainer.model == trainer.extra.get("model_type"):
        trainer.model = None  # only the architecture's name ("gpt_neox"): the companion may name the model
    sources = companion.extra.get("sources") if isinstance(companion.extra.get("sources"), dict) else {}
    for name in ("model", "corpus", "optimizer", "lr", "batch_size", "grad_accum", "epochs", "precision",
                 "quantization", "lora", "device", "n_params", "wall_seconds", "best_val_loss", "final_train_loss"):
        if getattr(trainer, name) is None and getattr(companion, name) is not None:
            setattr(trainer, name, getattr(companion, name))
            if name in sources:  # where the companion had it from; a field the trainer kept keeps its own
                trainer.extra.setdefault("sources", {})[name] = sources[name]
    trainer.model = trainer.model or trainer.extra.get("model_type")
    for key, value in companion.extra.items():
        if key != "sources":
            trainer.extra.setdefault(key, value)
    if companion.outcome == "failure" or (companion.outcome == "success" and trainer.outcome == "unknown"):
        for name in ("outcome", "status", "error_kind", "error_message", "evidence"):
            setattr(trainer, name, getattr(companion, name))
        if companion.steps is not None and companion.steps > (trainer.steps or 0):
            trainer.steps = companion.steps
    trainer.extra.setdefault("paired", []).append(companion.path)


JOINED_SOURCES = frozenset({"wandb", "hf-trainer", "notebook", "script"})


def join_wandb(attempts: list[Attempt]) -> list[Attempt]:
    """W&B runs joined with what else recorded them under the same root (``wandb/run-*/files`` lies apart
    from the rest): the Trainer output folder or notebook of the same training (:func:`same_training`)
    takes the W&B run in; a training script the W&B run names as its program lends it its settings and
    is no attempt of its own (the run is the evidence that it ran)."""
    runs = [attempt for attempt in attempts if attempt.source == "wandb"]
    if not runs:
        return attempts
    dropped: set[int] = set()
    scripts = [attempt for attempt in attempts if attempt.source == "script"]
    for run in runs:
        partner = next((other for other in attempts if other.source in ("hf-trainer", "notebook")
                        and id(other) not in dropped and same_training(other, run)), None)
        if partner is not None:
            merge(partner, run)
            dropped.add(id(run))
            continue
        script = program_script(run.extra.get("program"), scripts)
        if script is not None:
            for name in ("model", "corpus", "optimizer", "lr", "batch_size", "grad_accum", "epochs", "precision",
                         "quantization", "lora", "n_params"):
                if getattr(run, name) is None and getattr(script, name) is not None:
                    setattr(run, name, getattr(script, name))
            for key, value in script.extra.items():
                run.extra.setdefault(key, value)
            run.extra["script"] = script.path
            run.extra["task"] = with_model(run.extra.get("task"), run.model)
            dropped.add(id(script))
    return [attempt for attempt in attempts if id(attempt) not in dropped]


def same_training(one: Attempt, other: Attempt) -> bool:
    """Two records of one training: the same step count and the same train runtime (within 1 %), final
    train loss or validation loss (within 0.1 %)."""
    if one.steps is None or one.steps != other.steps:
        return False
    pairs = ((one.wall_seconds, other.wall_seconds, 0.01), (one.final_train_loss, other.final_train_loss, 1e-3),
             (one.best_val_loss, other.best_val_loss, 1e-3))
    return any(a is not None and b is not None and math.isclose(a, b, rel_tol=tolerance) for a, b, tolerance in pairs)


def program_script(program, scripts: list[Attempt]) -> Attempt | None:
    """The script attempt a W&B run's ``program`` names: ``/home/me/proj/train.py`` or ``train.py`` by the
    longest tail of its path that one script alone ends with, ``-m scripts.pretrain`` as
    ``scripts/pretrain.py``."""
    if not isinstance(program, str) or not program.strip():
        return None
    program = program.strip()
    if program.startswith("-m "):
        program = program[3:].split()[0].replace(".", "/") + ".py"
    if not program.endswith(".py"):
        return None
    parts = [part for part in program.replace("\\", "/").split("/") if part not in ("", ".")]
    for length in range(len(parts), 0, -1):
        tail = "/" + "/".join(parts[-length:])
        found = [script for script in scripts if script.path.replace(os.sep, "/").endswith(tail)]
        if len(found) == 1:
            return found[0]
        if found:
            return None  # two scripts end alike: a shorter tail only matches more
    return None


def _fill(target: ScriptFacts, source: ScriptFacts) -> None:
    for name, value in source.fields.items():
        target.fields.setdefault(name, value)
    for key, value in source.extra.items():
        target.extra.setdefault(key, value)
