"""A Trainer output folder kept or shared without its ``trainer_state.json`` (checkpoints deleted, the folder
pushed to the Hub or copied into a repository): its ``README.md`` is the model card the Trainer wrote when
training ended, and the card holds the run.

Read from the card:

* the front matter's ``base_model`` and ``datasets``;
* "It achieves the following results on the evaluation set: - Loss: 0.0404": the final evaluation;
* the "Training hyperparameters" list: lr, per-device batch, accumulation, optimizer, epochs;
* the "Training results" table (``| Training Loss | Epoch | Step | Validation Loss |``): the curves. The
  Trainer writes each row at an evaluation, with the newest train loss logged by then ("No log" before the
  first), so a train loss repeated from the row before is no new point;
* Axolotl's config, which it copies into the card ("See axolotl config", a YAML block): micro-batch,
  accumulation, lr, epochs, LoRA, quantisation, precision, the data.

A LoRA ``adapter_config.json`` or a ``config.json`` beside the card adds the base model and the LoRA settings
(``hf_trainer``). Only Markdown and JSON are read; ``training_args.bin`` is a pickle and never opened.
"""

from __future__ import annotations

import math
import os
import re

import yaml

from lunalm.runs.attempt import Attempt, fingerprint
from lunalm.runs.scan import hf_trainer
from lunalm.runs.scan.reading import ScanStats, content_digest, read_bytes
from lunalm.runs.scan.scripts import fill_fields, flat_values, yaml_number
from lunalm.runs.scan.series import LossSeries, describe_trend, fill_losses
from lunalm.runs.scan.walk import Folder

CARD = "README.md"
MAX_CARD_BYTES = 1 << 20
MARK = "This model card has been generated automatically according to the information the Trainer had access to"
_FRONT = re.compile(r"\A\s*---\n(.*?)\n---\n", re.DOTALL)
_FINAL = re.compile(r"results on the evaluation set:\s*\n- Loss: ([-+\w.]+)")
_ROW = re.compile(r"^\|\s*([^|]+?)\s*\|\s*([\d.]+)\s*\|\s*(\d+)\s*\|\s*([^|]+?)\s*\|", re.MULTILINE)
_AXOLOTL = re.compile(r"See axolotl config</summary>.*?```ya?ml\n(.*?)```", re.DOTALL)
_VERSION = re.compile(r"axolotl version: `([^`]+)`")


def is_card_folder(folder: Folder) -> bool:
    """A folder whose README.md is a Trainer's model card (and that holds no ``trainer_state.json``, whose
    folder ``hf_trainer`` reads with the card)."""
    if CARD not in folder.names() or "trainer_state.json" in folder.names():
        return False
    try:
        with open(os.path.join(folder.path, CARD), "rb") as handle:
            head = handle.read(8192)
    except OSError:
        return False
    return MARK.encode() in head


def read_card_folder(folder: Folder, stats: ScanStats) -> Attempt:
    path = os.path.join(folder.path, CARD)
    text = read_bytes(path, stats, MAX_CARD_BYTES, "model card").decode("utf-8", errors="replace")
    attempt = Attempt(source="hf-trainer", path=folder.path, fingerprint=fingerprint("hf-trainer", folder.path),
                      name=hf_trainer.output_name(folder.path), started=os.path.getmtime(path))
    train, val, last_epoch = _results(text)
    fill_losses(attempt, train, val)
    final = _FINAL.search(text)
    final_loss = _finite(final.group(1)) if final else None
    if final_loss is not None:
        attempt.best_val_loss = min(attempt.best_val_loss or final_loss, final_loss)
        attempt.extra["final_eval_loss"] = final_loss
    attempt.steps = max((point[0] for point in (train.last, val.last) if point), default=None)
    hf_trainer.card_hyperparameters(attempt, text)
    _axolotl(attempt, text)
    _front_matter(attempt, text)
    hf_trainer.model_files(attempt, folder.path, stats)
    _decide(attempt, train, val, final_loss, last_epoch)
    attempt.extra["card"] = CARD
    attempt.extra["content"] = content_digest([path], stats)
    return attempt


def _number(text: str) -> float | None:
    """A loss as the card prints it ("0.0092", "nan"), None for "No log"."""
    try:
        return float(text)
    except ValueError:
        return None


def _finite(text: str) -> float | None:
    value = _number(text)
    return value if value is not None and math.isfinite(value) else None


def _results(text: str) -> tuple[LossSeries, LossSeries, float | None]:
    """The "Training results" table's curves (see the module docstring for the repeated train losses) and
    the epoch of its last row."""
    train, val, epoch = LossSeries(), LossSeries(), None
    start = text.find("### Training results")
    if start < 0:
        return train, val, epoch
    previous = None
    for train_text, epoch_text, step_text, val_text in _ROW.findall(text[start:start + 200_000]):
        step, epoch = int(step_text), _number(epoch_text)  # None for a malformed "1.2.3"
        value = _number(train_text)
        if value is not None and value != previous:
            train.add(step, value)
        previous = value if value is not None else previous
        value = _number(val_text)
        if value is not None:
            val.add(step, value)
    return train, val, epoch


def _mapping(match: re.Match | None) -> dict | None:
    """The YAML mapping a match's first group holds (safe_load: no object is built), else None."""
    try:
        value = yaml.safe_load(match.group(1)) if match else None
    except yaml.YAMLError:
        return None
    return value if isinstance(value, dict) else None


def _axolotl(attempt: Attempt, text: str) -> None:
    """The settings of the Axolotl config copied into the card (they name the micro-batch and the LoRA)."""
    config = _mapping(_AXOLOTL.search(text))
    if config is None:
        return
    values = flat_values(config)
    datasets = config.get("datasets")
    if isinstance(datasets, list) and datasets and isinstance(datasets[0], dict) and "dataset" not in values:
        values["dataset"] = datasets[0].get("path")
    fill_fields(attempt, {key: yaml_number(value) for key, value in values.items() if value is not None},
                "README.md (Axolotl config)", replace=False)  # lora_r, lora_alpha: the LoRA
    version = _VERSION.search(text)
    attempt.extra["axolotl"] = version.group(1) if version else True
    if isinstance(config.get("early_stopping_patience"), int) and config["early_stopping_patience"] > 0:
        attempt.extra["early_stopping_patience"] = config["early_stopping_patience"]


def _front_matter(attempt: Attempt, text: str) -> None:
    front = _mapping(_FRONT.match(text))
    if front is None:
        return
    base, data = front.get("base_model"), front.get("datasets")
    base = base[0] if isinstance(base, list) and base else base
    if isinstance(base, str) and base and attempt.model is None:
        attempt.model = base
        attempt.extra.setdefault("sources", {})["model"] = "README.md (base_model)"
    if isinstance(data, list) and data and isinstance(data[0], str) and attempt.corpus is None:
        attempt.corpus = data[0]


def _decide(attempt: Attempt, train: LossSeries, val: LossSeries, final_loss: float | None,
            last_epoch: float | None) -> None:
    """The card is written once training has ended: success, unless its last loss is not finite."""
    last = train.last or val.last
    series, what = (val, "validation loss") if len(val) >= 2 else (train, "train loss")
    described = f"; {describe_trend(series, what)}" if series.trend() else ""
    if last and not math.isfinite(last[1]):
        attempt.outcome, attempt.status, attempt.error_kind = "failure", "diverged", "nan-loss"
        attempt.error_message = f"loss {last[1]} at step {last[0]}"
        attempt.evidence = f"{CARD}: the Trainer's model card: {attempt.error_message}"
        return
    reached = "" if last_epoch is None else \
        f" at epoch {last_epoch:g}" + (f" of {attempt.epochs:g}" if attempt.epochs else "")
    patience = attempt.extra.get("early_stopping_patience")
    stopped = patience and last_epoch is not None and attempt.epochs and last_epoch < attempt.epochs - 0.05
    attempt.outcome, attempt.status = "success", "stopped-early" if stopped else "completed"
    attempt.evidence = (f"{CARD}: the model card the Trainer writes when training ends{reached}"
                        + (f" (early stopping, patience {patience} evaluations)" if stopped else "")
                        + (f", final evaluation loss {final_loss:g}" if final_loss is not None else "")
                        + described)
