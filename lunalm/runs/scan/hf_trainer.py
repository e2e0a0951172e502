"""Hugging Face Trainer output folders: ``trainer_state.json`` (log history, steps, epochs, best metric),
with the model's ``config.json``, a LoRA ``adapter_config.json`` and the model card's hyperparameter list
when they are there.

``training_args.bin`` is a pickle: loading it can run arbitrary code, so it is never opened — its presence
is only noted. Everything read here is JSON or Markdown.
"""

from __future__ import annotations

import math
import os
import re

from lunalm.runs.attempt import Attempt, fingerprint
from lunalm.runs.scan import llamafactory
from lunalm.runs.scan.logged_lr import LoggedLr
from lunalm.runs.scan.reading import ScanStats, Unreadable, content_digest, read_bytes, read_json
from lunalm.runs.scan.task import task_of_architecture
from lunalm.runs.scan.series import LossSeries, describe_trend, fill_losses
from lunalm.runs.scan.walk import Folder

MAX_STATE_BYTES = 64 << 20  # years of log history fit in a few MB
MAX_SMALL_BYTES = 1 << 20  # config.json, adapter_config.json, README.md
_CHECKPOINT = re.compile(r"checkpoint-(\d+)")
_HUB_CACHE = re.compile(r"models--(?:([\w.-]+?)--)?([\w.-]+?)(?:[\\/]|$)")
_EVENTS = re.compile(r"events\.out\.tfevents\.(\d{9,10})\.")
_CARD_ITEM = re.compile(r"^- (\w+): (.+)$", re.MULTILINE)
_CARD_OPTIMIZER = re.compile(r"Use (?:OptimizerNames\.)?(\w+)|^(\w+)")


def state_file(folder: Folder) -> str | None:
    """The ``trainer_state.json`` describing the run in this output folder: its own (``save_state()`` at
    the end), else the one of its newest ``checkpoint-N``."""
    if "trainer_state.json" in folder.names():
        return os.path.join(folder.path, "trainer_state.json")
    numbered = sorted((int(match.group(1)), name) for name in folder.subdirs
                      if (match := _CHECKPOINT.fullmatch(name)))
    for _, name in reversed(numbered):
        path = os.path.join(folder.path, name, "trainer_state.json")
        if os.path.isfile(path) and not os.path.islink(path):
            return path
    return None


def has_state(path: str) -> bool:
    """Whether ``path`` is a Trainer output folder (one listing; used before the walk gets there)."""
    try:
        with os.scandir(path) as entries:
            names = [entry.name for entry in entries if not entry.is_symlink()]
    except OSError:
        return False
    return "trainer_state.json" in names or any(
        _CHECKPOINT.fullmatch(name) and os.path.isfile(os.path.join(path, name, "trainer_state.json"))
        for name in names)


def read_output_dir(folder: Folder, state_path: str, stats: ScanStats) -> Attempt:
    """One attempt for the whole output folder (its checkpoints are parts of it, not attempts)."""
    numbered = sorted((int(match.group(1)), name) for name in folder.subdirs if (match := _CHECKPOINT.fullmatch(name)))
    newest = os.path.join(folder.path, numbered[-1][1]) if numbered else None  # a LoRA run's adapter_config.json
    folder.subdirs[:] = [name for name in folder.subdirs if not _CHECKPOINT.fullmatch(name)]
    state = read_json(state_path, stats, MAX_STATE_BYTES, "trainer_state.json")
    if not isinstance(state, dict):
        raise Unreadable("trainer_state.json is not a JSON object")
    train, val, end, logged_lr = _history(state.get("log_history"))
    attempt = Attempt(source="hf-trainer", path=folder.path, fingerprint=fingerprint("hf-trainer", folder.path),
                      name=output_name(folder.path))
    fill_losses(attempt, train, val)
    attempt.steps = _int(state.get("global_step"))
    attempt.epochs = _number(state.get("num_train_epochs"))
    attempt.batch_size = _int(state.get("train_batch_size"))
    attempt.tokens_seen = _int(state.get("num_input_tokens_seen")) or None  # include_num_input_tokens_seen
    attempt.wall_seconds = _number(end.get("train_runtime")) if end else None
    attempt.started = _started(folder, state_path, attempt.wall_seconds)
    _results(attempt, folder.path, stats)
    _decide(attempt, state, train, val, end)
    for directory in dict.fromkeys([folder.path, os.path.dirname(state_path), newest]):
        if directory is not None:
            model_files(attempt, directory, stats)
    _model_card(attempt, folder, stats)
    llamafactory.config_facts(attempt, folder.path, stats, "in the output folder")  # LLaMA-Board's training_args.yaml
    logged_lr.record(attempt.extra)  # not the configured lr (warmup and decay keep it below): a last resort
    _extras(attempt, state, folder, state_path)
    attempt.extra["content"] = content_digest([state_path], stats)
    return attempt


def output_name(path: str) -> str:
    """``transformers5/out``: output folders are often called "out" or "results", so the parent comes too."""
    folder = os.path.abspath(path)
    parent = os.path.basename(os.path.dirname(folder))
    return f"{parent}/{os.path.basename(folder)}" if parent else os.path.basename(folder)


def _history(history) -> tuple[LossSeries, LossSeries, dict | None, LoggedLr]:
    """Train and eval loss series, the final ``train_runtime`` record, and the logged lr values."""
    train, val, end, logged = LossSeries(), LossSeries(), None, LoggedLr()
    for entry in history if isinstance(history, list) else []:
        if not isinstance(entry, dict):
            continue
        step = _int(entry.get("step"))
        for key, series in (("loss", train), ("eval_loss", val)):
            value = _number(entry.get(key))
            if value is not None:
                series.add(step if step is not None else len(series) + 1, value)
        if "train_runtime" in entry:
            end = entry
        lr = _number(entry.get("learning_rate"))
        if lr is not None and math.isfinite(lr) and lr > 0:
            logged.add(lr, step, "trainer_state.json")
    return train, val, end, logged


def _decide(attempt: Attempt, state: dict, train: LossSeries, val: LossSeries, end: dict | None) -> None:
    """Failure on a non-finite loss; success when it reached its planned steps (or ``train()`` returned);
    with no plan recorded, success when the loss went down; otherwise unknown."""
    step, planned = attempt.steps or 0, _int(state.get("max_steps")) or 0
    progress = _progress(step, planned, _number(state.get("epoch")), attempt.epochs)
    series, what = (val, "eval_loss") if len(val) >= 2 else (train, "loss")
    trend = series.trend()
    described = f"; {describe_trend(series, what)}" if trend else ""
    last = train.last or val.last
    if last and not math.isfinite(last[1]):
        attempt.outcome, attempt.status, attempt.error_kind = "failure", "diverged", "nan-loss"
        attempt.error_message = f"loss {last[1]} at step {last[0]}"
        attempt.evidence = f"trainer_state.json: {attempt.error_message} ({progress})"
    elif planned and step >= planned:
        attempt.outcome, attempt.status = "success", "completed"
        attempt.evidence = f"trainer_state.json: reached {progress}{described}"
    elif (patience := _early_stopped(state)) is not None:
        attempt.outcome, attempt.status = "success", "stopped-early"
        best = _int(state.get("best_global_step"))
        attempt.evidence = (f"trainer_state.json: early stopping at {progress}, after {patience} evaluations "
                            "without improvement" + (f" (the best at step {best})" if best else "") + described)
    elif end is not None:
        attempt.outcome, attempt.status = "success", "completed"
        attempt.evidence = f"trainer_state.json: train() returned at {progress} (train_runtime logged){described}"
    elif not planned and trend and trend[1] < trend[0]:
        attempt.outcome = "success"
        attempt.evidence = f"trainer_state.json: {progress}{described}, no error"
    else:
        attempt.evidence = f"trainer_state.json: stopped at {progress}{described}: no sign that it finished"


def _early_stopped(state: dict) -> int | None:
    """The patience an ``EarlyStoppingCallback`` ran out of, as its saved state says (transformers >= 4.38
    saves callbacks in ``stateful_callbacks``), or None."""
    callbacks = state.get("stateful_callbacks")
    saved = callbacks.get("EarlyStoppingCallback") if isinstance(callbacks, dict) else None
    for entry in saved if isinstance(saved, list) else [saved]:
        if not isinstance(entry, dict):
            continue
        patience = _int((entry.get("args") or {}).get("early_stopping_patience"))
        counter = _int((entry.get("attributes") or {}).get("early_stopping_patience_counter"))
        if patience and counter is not None and counter >= patience:
            return patience
    return None


def _progress(step: int, planned: int, epoch: float | None, epochs: float | None) -> str:
    """``global_step 500 of max_steps 1000 (epoch 1.5 of 3)``"""
    text = f"global_step {step}" + (f" of max_steps {planned}" if planned else "")
    if epoch is not None:
        text += f" (epoch {epoch:.3g}" + (f" of {epochs:g})" if epochs else ")")
    return text


def folder_facts(attempt: Attempt, directory: str, stats: ScanStats) -> None:
    """What an output folder without ``trainer_state.json`` still says about its run (LLaMA-Factory keeps
    its ``trainer_log.jsonl`` beside them): ``config.json``, ``adapter_config.json`` and the results files."""
    model_files(attempt, directory, stats)
    _results(attempt, directory, stats)


def _results(attempt: Attempt, directory: str, stats: ScanStats) -> None:
    """``all_results.json`` / ``eval_results.json`` (what ``trainer.save_metrics`` wrote): the train_runtime,
    the epoch reached and the final eval_loss, where the log history had none."""
    for name in ("all_results.json", "eval_results.json"):
        results = _small_json(os.path.join(directory, name), stats) or {}
        runtime = _number(results.get("train_runtime"))
        if attempt.wall_seconds is None and runtime:
            attempt.wall_seconds = runtime
        eval_loss = _number(results.get("eval_loss"))
        if attempt.best_val_loss is None and eval_loss is not None and math.isfinite(eval_loss):
            attempt.best_val_loss = eval_loss
            attempt.extra.setdefault("sources", {})["best_val_loss"] = f"{name}: eval_loss"
        if _number(results.get("epoch")) is not None:
            attempt.extra.setdefault("epoch", results["epoch"])


def _started(folder: Folder, state_path: str, runtime: float | None) -> float:
    """When the run started: the time in the name of its TensorBoard file (``runs/Mar24_22-23-40_HOST/
    events.out.tfevents.1742826235.HOST.1234.0``), else the end (the final ``trainer_state.json`` is
    written when training ends) less train_runtime, else the state file's time."""
    stamps = []
    if "runs" in folder.subdirs:
        for run in _listing(os.path.join(folder.path, "runs"))[:100]:
            stamps += [int(match.group(1)) for name in _listing(os.path.join(folder.path, "runs", run))
                       if (match := _EVENTS.match(name))]
    if stamps:
        return float(min(stamps))
    ended = os.path.getmtime(state_path)
    own = os.path.dirname(state_path) == folder.path
    return ended - runtime if own and runtime else ended


def _listing(path: str) -> list[str]:
    try:
        return sorted(os.listdir(path))
    except OSError:
        return []


def model_files(attempt: Attempt, directory: str, stats: ScanStats) -> None:
    """``config.json`` (model id/type, quantisation) and ``adapter_config.json`` (LoRA) in ``directory``."""
    config = _small_json(os.path.join(directory, "config.json"), stats)
    if config:
        name = hub_id(config.get("_name_or_path")) or config.get("model_type")
        attempt.model = attempt.model or (name if isinstance(name, str) and name else None)
        attempt.extra.setdefault("model_type", config.get("model_type"))
        task = task_of_architecture(config.get("architectures"), _from_pretrained(config))
        if task:
            attempt.extra.setdefault("task", task)
        quantization = config.get("quantization_config")
        if isinstance(quantization, dict) and not attempt.quantization:
            bits = "4bit" if quantization.get("load_in_4bit") else "8bit" if quantization.get("load_in_8bit") else None
            attempt.quantization = bits
    adapter = _small_json(os.path.join(directory, "adapter_config.json"), stats)
    if adapter and attempt.lora is None:
        attempt.lora = {"r": adapter.get("r"), "alpha": adapter.get("lora_alpha"),
                        "dropout": adapter.get("lora_dropout"), "target_modules": adapter.get("target_modules")}
        base = adapter.get("base_model_name_or_path")
        if isinstance(base, str) and base:
            attempt.model = base  # the adapter's base is the model that was trained


def hub_id(name) -> str | None:
    """A model id as a person names it: the Hub cache folder a config was loaded from
    (``C:\\Users\\me\\.cache\\huggingface\\hub\\models--fnlp--cpt-large\\snapshots\\f073…``) is ``fnlp/cpt-large``."""
    if not isinstance(name, str) or not name:
        return None
    match = _HUB_CACHE.search(name)
    if match is None:
        return name
    return f"{match.group(1)}/{match.group(2)}" if match.group(1) else match.group(2)


def _from_pretrained(config: dict) -> bool | None:
    """Whether the model was loaded from a pretrained one: ``_name_or_path`` says so, but transformers
    4.4x and later no longer write it, so from those its absence says nothing (None)."""
    if config.get("_name_or_path"):
        return True
    version = re.match(r"(\d+)\.(\d+)", str(config.get("transformers_version") or ""))
    return False if version and (int(version.group(1)), int(version.group(2))) < (4, 40) else None


def _small_json(path: str, stats: ScanStats) -> dict | None:
    if not os.path.isfile(path) or os.path.islink(path):
        return None
    try:
        value = read_json(path, stats, MAX_SMALL_BYTES, os.path.basename(path))
    except (Unreadable, OSError) as error:
        stats.skip(path, str(error) if isinstance(error, Unreadable) else f"cannot read: {error}")
        return None
    return value if isinstance(value, dict) else None


def _model_card(attempt: Attempt, folder: Folder, stats: ScanStats) -> None:
    """The "Training hyperparameters" list the Trainer writes into README.md: exact lr, batch, optimizer."""
    if "README.md" not in folder.names():
        return
    try:
        text = read_bytes(os.path.join(folder.path, "README.md"), stats, MAX_SMALL_BYTES, "model card")
    except (Unreadable, OSError):
        return
    card_hyperparameters(attempt, text.decode("utf-8", errors="replace"))


def card_hyperparameters(attempt: Attempt, text: str) -> None:
    """The fields a model card's "Training hyperparameters" list gives that the attempt lacks."""
    start = text.find("hyperparameters were used during training")
    if start < 0:
        return
    items = dict(_CARD_ITEM.findall(text[start:start + 4000]))
    attempt.lr = attempt.lr or _number(_float_text(items.get("learning_rate")))
    attempt.batch_size = attempt.batch_size or _int(_float_text(items.get("train_batch_size")))
    attempt.grad_accum = attempt.grad_accum or _int(_float_text(items.get("gradient_accumulation_steps")))
    attempt.epochs = attempt.epochs or _number(_float_text(items.get("num_epochs")))
    optimizer = _CARD_OPTIMIZER.search(items.get("optimizer", ""))
    if optimizer and not attempt.optimizer:
        attempt.optimizer = (optimizer.group(1) or optimizer.group(2)).lower()
    if "mixed_precision_training" in items:
        attempt.extra["mixed_precision_training"] = items["mixed_precision_training"].strip()


def _extras(attempt: Attempt, state: dict, folder: Folder, state_path: str) -> None:
    for key in ("best_metric", "best_model_checkpoint", "max_steps", "epoch", "total_flos"):
        if state.get(key) is not None:
            attempt.extra[key] = state[key]
    if os.path.relpath(state_path, folder.path) != "trainer_state.json":
        attempt.extra["state_from"] = os.path.relpath(state_path, folder.path)
    if "training_args.bin" in folder.names() or os.path.exists(os.path.join(os.path.dirname(state_path),
                                                                            "training_args.bin")):
        attempt.extra["training_args_bin"] = "present, never loaded (a pickle can run code)"


def _float_text(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def _number(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _int(value) -> int | None:
    number = _number(value)
    return int(number) if number is not None and math.isfinite(number) else None
