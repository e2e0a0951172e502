"""LLaMA-Factory's training config: the YAML file that ``llamafactory-cli train sft_config.yaml`` runs, read
into the attempt of the ``trainer_log.jsonl`` it wrote.

The log holds only losses, the lr schedule and the step count; the model, lr, batch, accumulation, epochs,
precision and method are in the config. It is found beside the log, or named by a
``llamafactory-cli train X.yaml`` line of a shell or Slurm script in the log's folder or the one above it.
Of several, the one whose ``output_dir`` ends in the log's folder name wins, then the one a script names,
then the only one beside the log; when that still leaves several, none is used (a guess would mislead).
"""

from __future__ import annotations

import os
import re

from lunalm.runs.attempt import Attempt
from lunalm.runs.scan.lunalm_runs import read_yaml_mapping
from lunalm.runs.scan.reading import ScanStats, Unreadable, read_bytes
from lunalm.runs.scan.scripts import fill_fields, flat_values, yaml_number
from lunalm.runs.scan.task import FINE_TUNING, PREFERENCE

SCRIPT_SUFFIXES = (".sh", ".bash", ".slurm", ".sbatch", ".pbs")
MAX_SCRIPT_BYTES = 256 << 10
MAX_FILES = 50  # scripts and YAML files looked at per folder
_CLI = re.compile(r"llamafactory-cli\s+train\s+['\"]?([^\s'\"]+\.ya?ml)\b")
_PREFERENCE_STAGES = {"rm", "ppo", "dpo", "kto", "orpo", "simpo"}


def config_facts(attempt: Attempt, directory: str, stats: ScanStats, beside: str = "beside the log") -> None:
    """Fill the attempt's unknown fields from the LLaMA-Factory config of its run (see the module docstring);
    ``extra["sources"]`` names the file and how it was found (``beside``: a config in ``directory``)."""
    found = _config(directory, stats, beside)
    if found is None:
        return
    path, how, values = found
    source = f"{os.path.relpath(path, directory)} ({how})"
    fill_fields(attempt, values, source, replace=False)
    method = str(values.get("finetuning_type", "")).lower()
    if method == "lora" and attempt.lora is None:
        attempt.lora = {"r": values.get("lora_rank", 8), "alpha": values.get("lora_alpha"),
                        "dropout": values.get("lora_dropout"), "target_modules": values.get("lora_target")}
    elif method in ("full", "freeze"):  # every weight trained (freeze: all but the frozen layers)
        attempt.extra.setdefault("finetuning", "full fine-tune" if method == "full" else "freeze (partial)")
    stage = str(values.get("stage", "")).lower()
    attempt.extra.setdefault("task", PREFERENCE if stage in _PREFERENCE_STAGES else FINE_TUNING)
    attempt.extra.setdefault("llamafactory_config", path)


def _config(directory: str, stats: ScanStats, beside_label: str) -> tuple[str, str, dict] | None:
    """(path, how it was found, its flat values) of the run's config, or None."""
    named = _named(directory, stats)
    beside = [os.path.join(directory, name) for name in _listing(directory, (".yaml", ".yml"))]
    candidates: dict[str, str] = {path: how for path, how in named.items()}
    for path in beside:
        candidates.setdefault(path, beside_label)
    configs = {path: values for path in candidates if (values := _values(path, stats))}
    folder = os.path.basename(os.path.normpath(directory))
    own = [path for path, values in configs.items()
           if str(values.get("output_dir", "")).rstrip("/\\").replace("\\", "/").rsplit("/", 1)[-1] == folder]
    for group in (own, [path for path in configs if path in named], [path for path in configs if path in beside]):
        if len(group) == 1:
            return group[0], candidates[group[0]], configs[group[0]]
        if group:
            return None
    return None


def _named(directory: str, stats: ScanStats) -> dict[str, str]:
    """{config path: "named by run.slurm:35"} for each ``llamafactory-cli train X.yaml`` line of a script
    in ``directory`` or its parent (the path is taken relative to the script's folder)."""
    named: dict[str, str] = {}
    for folder in dict.fromkeys((directory, os.path.dirname(os.path.normpath(directory)))):
        for name in _listing(folder, SCRIPT_SUFFIXES):
            try:
                text = read_bytes(os.path.join(folder, name), stats, MAX_SCRIPT_BYTES, "shell script")
            except (Unreadable, OSError):
                continue
            for number, line in enumerate(text.decode("utf-8", errors="replace").splitlines(), start=1):
                match = _CLI.search(line) if "llamafactory-cli" in line and not line.lstrip().startswith("#") \
                    else None
                if match:
                    path = os.path.normpath(os.path.join(folder, match.group(1)))
                    named.setdefault(path, f"named by {os.path.relpath(os.path.join(folder, name), directory)}"
                                           f":{number}")
    return named


def _values(path: str, stats: ScanStats) -> dict:
    """A LLaMA-Factory config's flat values ({} for any other YAML file): it names a model and a stage or a
    fine-tuning type. YAML 1.1 reads ``1e-5`` as text: such numbers are made numbers."""
    if not os.path.isfile(path) or os.path.islink(path):
        return {}
    try:
        values = flat_values(read_yaml_mapping(path, stats, "LLaMA-Factory config"))
    except (Unreadable, OSError):
        return {}
    if "model_name_or_path" not in values or not ({"stage", "finetuning_type"} & values.keys()):
        return {}
    return {key: yaml_number(value) for key, value in values.items()}


def _listing(directory: str, suffixes: tuple[str, ...]) -> list[str]:
    """The first MAX_FILES names in ``directory`` ending in one of ``suffixes``."""
    try:
        return sorted(name for name in os.listdir(directory) if name.lower().endswith(suffixes))[:MAX_FILES]
    except OSError:
        return []
