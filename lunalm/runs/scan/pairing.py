"""Which files of one folder describe the same attempt: a log and the script that wrote it.

Kept deliberately simple and deterministic (a rescan pairs the same way):

* helper scripts (``model.py`` with ``configure_optimizers``) fill gaps in the folder's trainer scripts;
* a log takes the settings of the trainer script whose name it contains (``train_gpt2.log`` ←
  ``train_gpt2.py``; the longest such name wins), else of the folder's only trainer script;
* a trainer script whose ``output_dir`` (``TrainingArguments(output_dir="out")``) is a Trainer output
  folder below it lends its settings to that folder's attempt (model, LoRA, optimizer, ...);
* a script whose settings went into a log or an output folder is not reported again on its own (they are
  the evidence that it ran); one with neither stays an attempt of its own with outcome "unknown".

Notebooks carry their own code and outputs, so they are never paired.
"""

from __future__ import annotations

import os

from lunalm.runs.attempt import Attempt
from lunalm.runs.scan.scripts import ScriptFacts, apply_facts, script_attempt
from lunalm.runs.scan.walk import SKIP_DIRS, FileEntry

Script = tuple[FileEntry, ScriptFacts]


def pair(scripts: list[Script], logs: list[Attempt], claimed: set[str] = frozenset()) -> list[Attempt]:
    """The folder's log attempts (with their scripts' settings), then its unpaired scripts (those whose
    path is in ``claimed`` went to an output folder, see :func:`claim_output_dirs`)."""
    trainers = [script for script in scripts if script[1].role == "trainer"]
    helpers = [script for script in scripts if script[1].role == "helper"]
    for _, facts in trainers:
        for _, helper in helpers:
            _fill(facts, helper)
    candidates = trainers or helpers
    used = set(claimed)
    for log in logs:
        script = _script_for(log, candidates)
        if script is not None:
            apply_facts(log, script[1], script[0].path)
            used.add(script[0].path)
    return logs + [script_attempt(entry, facts) for entry, facts in candidates if entry.path not in used]


def claim_output_dirs(folder: str, scripts: list[Script], has_state) -> dict[str, Script]:
    """``{output folder path: script}`` for trainer scripts whose ``output_dir`` is a folder below
    ``folder`` for which ``has_state(path)`` holds (and that the walk will visit: no hidden parts)."""
    claims: dict[str, Script] = {}
    for script in scripts:
        relative = script[1].extra.get("output_dir")
        if script[1].role != "trainer" or not isinstance(relative, str) or os.path.isabs(relative):
            continue
        target = os.path.normpath(os.path.join(folder, relative))
        parts = os.path.relpath(target, folder).split(os.sep)
        if parts[0] in (".", "..") or any(part.startswith(".") or part in SKIP_DIRS for part in parts):
            continue
        if target not in claims and has_state(target):
            claims[target] = script
    return claims


def _fill(target: ScriptFacts, source: ScriptFacts) -> None:
    for name, value in source.fields.items():
        target.fields.setdefault(name, value)
    for key, value in source.extra.items():
        target.extra.setdefault(key, value)


def _script_for(log: Attempt, scripts: list[Script]) -> Script | None:
    stem = os.path.splitext(os.path.basename(log.path))[0].lower()
    named = [script for script in scripts if os.path.splitext(script[0].name)[0].lower() in stem]
    if named:
        longest = max(len(script[0].name) for script in named)
        best = [script for script in named if len(script[0].name) == longest]
        return best[0] if len(best) == 1 else None
    return scripts[0] if len(scripts) == 1 else None
