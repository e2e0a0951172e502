"""TensorBoard event files (``events.out.tfevents.<unix time>.<host>.<pid>.<n>``): the scalars a run logged
(losses, learning rate, epoch), the Trainer's arguments and model config it wrote as text, and the
hyperparameters of the hparams plugin. Read record by record (``_records``) into tensorboard's own protos;
TensorFlow is not needed and nothing is executed.

Who writes them: the Hugging Face Trainer (``OUTPUT/runs/<Mon DD_HH-MM-SS>_<host>/``, tags ``train/loss``,
``eval/loss``, ``train/learning_rate``, ``train/train_runtime`` at the end, and the text ``args``),
Lightning's default logger (``lightning_logs/version_N/`` beside ``hparams.yaml``), ``SummaryWriter`` in
scripts (``runs/<date>_<host>/``), Keras (``logs/train/`` and ``logs/validation/``, each ``epoch_loss``).
"""

from __future__ import annotations

import json
import math
import os
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy

from lunalm.runs.attempt import Attempt, fingerprint
from lunalm.runs.scan.hf_trainer import hub_id
from lunalm.runs.scan.logged_lr import LoggedLr
from lunalm.runs.scan.reading import ScanStats, Unreadable, content_digest, open_binary
from lunalm.runs.scan.scripts import fill_fields, flat_values, planned_steps
from lunalm.runs.scan.series import LossSeries, decide, describe_trend, fill_losses, loss_names
from lunalm.runs.scan.walk import Folder, subdirs

EVENTS = re.compile(r"events\.out\.tfevents\.(\d{9,10})\.")
MAX_EVENT_BYTES = 1 << 30  # a long run's scalars are a few MB; images and histograms make more, read in time
MAX_TAGS = 500  # scalar tags kept per run (a hostile file may hold millions)
_KEPT = re.compile(r"loss|learning_rate|\blr\b|^lr|epoch$|train_runtime", re.IGNORECASE)
_TEXTS = {"args/text_summary": "args", "model_config/text_summary": "model_config"}
_HEADER = struct.Struct("<QI")  # a record's length and its masked CRC-32C
ARGS_RECORDS = 50  # the Trainer writes its arguments and model config among a run's first records
_KERAS_PARTS = ("train", "validation")


@dataclass
class Events:
    """What a run's event files hold: scalar series by tag, texts, hparams and the first and last time."""

    scalars: dict[str, LossSeries] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)  # "args", "model_config": JSON the Trainer wrote
    hparams: dict = field(default_factory=dict)
    first_time: float | None = None  # unix time of the first and the last record
    last_time: float | None = None
    files: list[str] = field(default_factory=list)


def event_names(folder: Folder) -> list[str]:
    """The event files of ``folder``, oldest first (a resumed run adds a file)."""
    return sorted((name for name in folder.names() if EVENTS.match(name)),
                  key=lambda name: (int(EVENTS.match(name).group(1)), name))


def is_run_dir(folder: Folder) -> bool:
    """A folder of event files, or Keras's parent of ``train/`` (and ``validation/``, without a validation
    split none): one run."""
    return bool(event_names(folder)) or "train" in folder.subdirs \
        and bool(_listed_events(os.path.join(folder.path, "train")))


def _listed_events(path: str) -> list[str]:
    """The event files in ``path`` (regular files only: a link or a FIFO named like one is not opened)."""
    try:
        with os.scandir(path) as entries:
            return sorted(entry.path for entry in entries
                          if EVENTS.match(entry.name) and entry.is_file(follow_symlinks=False))
    except OSError:
        return []


def read_events(paths: list[str], stats: ScanStats, records: int | None = None) -> Events:
    """The scalars and texts of ``paths``, in order; only the first ``records`` of each when given (the
    Trainer writes its arguments first)."""
    from google.protobuf.message import DecodeError
    from tensorboard.compat.proto import event_pb2

    events = Events(files=list(paths))
    for path in paths:
        for count, record in enumerate(_records(path, stats), start=1):
            stats.check_time()  # each record: one may be a large image
            try:
                event = event_pb2.Event.FromString(record)
            except DecodeError:  # a record with a valid checksum that is no event: written by something else
                raise Unreadable(f"{os.path.basename(path)}: record {count} is not a TensorBoard event") from None
            _add(events, event)
            if records is not None and count >= records:
                break
    return events


def _records(path: str, stats: ScanStats) -> Iterator[bytes]:
    """The records of a TFRecord file: ``uint64 length``, ``uint32`` masked CRC-32C of it, the data, the data's
    CRC. The length's checksum is checked (a file that is no event file fails at its first record); the
    data's is not: tensorboard computes CRC-32C in Python, which took two thirds of the time (a damaged
    record fails to parse instead). A record cut short (the run was killed while writing) ends the file."""
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c

    with open_binary(path) as handle:
        left = os.fstat(handle.fileno()).st_size
        if left > MAX_EVENT_BYTES:
            raise Unreadable(f"too large for an event file ({left / 1e9:.1f} GB)")
        first = True
        while left >= _HEADER.size:
            header = handle.read(_HEADER.size)
            length, checksum = _HEADER.unpack(header)
            if checksum != masked_crc32c(header[:8]):
                if first:
                    raise Unreadable(f"{os.path.basename(path)}: not a TensorBoard event file (no valid record)")
                return
            left -= _HEADER.size
            if length + 4 > left:
                return
            data = handle.read(length)
            handle.read(4)
            left -= length + 4
            stats.bytes_read += _HEADER.size + length + 4
            first = False
            yield data


def _add(events: Events, event) -> None:
    if event.WhichOneof("what") != "summary":
        return
    if event.wall_time > 0:  # of what was logged (a file's first record, its version, has the writer's time)
        events.first_time = min(events.first_time or event.wall_time, event.wall_time)
        events.last_time = max(events.last_time or 0.0, event.wall_time)
    for value in event.summary.value:
        if value.tag in _TEXTS and value.tensor.string_val:
            events.texts.setdefault(_TEXTS[value.tag], value.tensor.string_val[0].decode("utf-8", "replace"))
        elif value.tag == "_hparams_/session_start_info":
            events.hparams = events.hparams or _hparams(value.metadata.plugin_data.content)
        elif _KEPT.search(value.tag):
            number = _scalar(value)
            series = events.scalars.get(value.tag)
            if number is not None and (series is not None or len(events.scalars) < MAX_TAGS):
                events.scalars.setdefault(value.tag, LossSeries()).add(event.step, number)


def _scalar(value) -> float | None:
    """A summary value's number: ``simple_value`` (older writers) or a one-element float tensor."""
    if value.WhichOneof("value") == "simple_value":
        return _single(value.simple_value)
    tensor = value.tensor
    if tensor.double_val or tensor.dtype == 2:  # DT_DOUBLE
        numbers = list(tensor.double_val)
    else:
        numbers = [_single(number) for number in tensor.float_val]
    if not numbers and tensor.tensor_content and tensor.dtype in (1, 2):  # DT_FLOAT, DT_DOUBLE
        from tensorboard.util import tensor_util
        numbers = tensor_util.make_ndarray(tensor).reshape(-1).tolist()
    return float(numbers[0]) if len(numbers) == 1 else None


def _single(number: float) -> float:
    """A float32 as it was written (the loss 1.7423, not its float64 widening 1.742300033569336)."""
    return float(str(numpy.float32(number)))


def _hparams(content: bytes) -> dict:
    """The hparams plugin's session start: ``{name: value}`` (``SummaryWriter.add_hparams``, Lightning)."""
    from tensorboard.plugins.hparams import plugin_data_pb2

    data = plugin_data_pb2.HParamsPluginData.FromString(content)
    values = {}
    for name, value in data.session_start_info.hparams.items():
        kind = value.WhichOneof("kind")
        if kind in ("number_value", "string_value", "bool_value"):
            values[name] = getattr(value, kind)
    return values


def settings(events: Events) -> dict:
    """Named values the files hold: the hparams, then the Trainer's arguments (``{name: value}``)."""
    values = dict(events.hparams)
    args = _json_object(events.texts.get("args"))
    values.update(flat_values(args))
    return values


def _json_object(text: str | None) -> dict:
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def model_name(events: Events) -> str | None:
    """The model the Trainer's ``model_config`` text names (its ``_name_or_path``, else its type)."""
    config = _json_object(events.texts.get("model_config"))
    name = hub_id(config.get("_name_or_path")) or config.get("model_type")
    return name if isinstance(name, str) and name else None


def curves(events: Events) -> tuple[LossSeries, LossSeries, dict[str, str]]:
    """The train and validation loss series and the tag each came from."""
    tags = loss_names(list(events.scalars))
    return events.scalars.get(tags.get("train"), LossSeries()), events.scalars.get(tags.get("val"), LossSeries()), tags


def read_run_dir(folder: Folder, stats: ScanStats) -> Attempt:
    """One attempt for a folder of event files (or a Keras ``train``/``validation`` pair below it)."""
    names = event_names(folder)
    if names:
        events = read_events([os.path.join(folder.path, name) for name in names], stats)
    else:
        events = _keras(folder, stats)
    attempt = Attempt(source="tensorboard", path=folder.path, fingerprint=fingerprint("tensorboard", folder.path),
                      name=_name(folder.path))
    set_times(attempt, events)
    values = settings(events)
    fill_fields(attempt, values, "the TensorBoard file's " + ("Trainer arguments" if "args" in events.texts
                                                              else "hparams"))
    attempt.model = model_name(events) or attempt.model
    fill_curves(attempt, events)
    runtime = next((series.last[1] for tag, series in events.scalars.items() if tag.endswith("train_runtime")), None)
    attempt.wall_seconds = runtime if runtime and math.isfinite(runtime) else attempt.wall_seconds
    _decide(attempt, events, planned_steps({key: [value] for key, value in values.items()}))
    attempt.extra["content"] = content_digest(events.files, stats)
    return attempt


def trainer_runs(attempt: Attempt, folder: Folder, stats: ScanStats) -> None:
    """A Trainer output folder's ``runs/<date>_<host>/`` event files are its own (no attempt of their own);
    the arguments the newest of them recorded (``args``) fill what ``trainer_state.json`` does not say: the
    configured lr (the state logs only the schedule's), accumulation, optimizer, precision, and the model."""
    if "runs" not in folder.subdirs:
        return
    folder.subdirs.remove("runs")
    runs = os.path.join(folder.path, "runs")
    files = [path for name in subdirs(runs) for path in _listed_events(os.path.join(runs, name))]
    files.sort(key=lambda path: int(EVENTS.match(os.path.basename(path)).group(1)))
    for path in reversed(files):  # the newest that holds them (evaluate() after train() starts a file)
        events = read_events([path], stats, records=ARGS_RECORDS)
        if "args" in events.texts:
            break
    else:
        return
    fill_fields(attempt, settings(events), f"{os.path.relpath(path, folder.path)}: args", replace=False)
    attempt.model = attempt.model or model_name(events)
    attempt.extra["tensorboard_files"] = len(files)


def _keras(folder: Folder, stats: ScanStats) -> Events:
    """Keras's two folders as one run: ``validation/``'s ``epoch_loss`` is the validation loss."""
    folder.subdirs[:] = [name for name in folder.subdirs if name not in _KERAS_PARTS]
    train = read_events(_listed_events(os.path.join(folder.path, "train")), stats)
    validation = read_events(_listed_events(os.path.join(folder.path, "validation")), stats)
    for tag, series in validation.scalars.items():
        train.scalars["validation/" + tag if "val" not in tag else tag] = series
    train.files += validation.files
    times = [time for time in (validation.first_time, validation.last_time) if time is not None]
    train.first_time = min([train.first_time, *times] if train.first_time else times, default=None)
    train.last_time = max([train.last_time or 0.0, *times], default=None) or None
    return train


def set_times(attempt: Attempt, events: Events) -> None:
    """Start and wall time from the records' own times (a checkout resets the files' times)."""
    if events.first_time is not None:
        attempt.started = events.first_time
        if events.last_time > events.first_time:
            attempt.wall_seconds = events.last_time - events.first_time


def fill_curves(attempt: Attempt, events: Events) -> None:
    """Losses, steps and the logged lr of ``events`` into ``attempt``."""
    train, val, tags = curves(events)
    fill_losses(attempt, train, val)
    attempt.steps = max((point[0] for point in (train.last, val.last) if point), default=None)
    attempt.extra["tensorboard_tags"] = tags
    logged = LoggedLr()
    lr_tag = next((tag for tag in events.scalars if re.search(r"learning_rate|\blr\b|^lr", tag, re.IGNORECASE)), None)
    for step, value in events.scalars[lr_tag].all_points() if lr_tag else ():
        if math.isfinite(value) and value > 0:
            logged.add(value, step, f"{os.path.basename(events.files[0])}: {lr_tag}")
    logged.record(attempt.extra)


def _decide(attempt: Attempt, events: Events, planned: int | None) -> None:
    """The Trainer logs ``train/train_runtime`` when ``train()`` returns; a run that reached the steps it
    planned finished; otherwise the curves decide (``series.decide``)."""
    record = os.path.basename(events.files[0]) if events.files else "event file"
    train, val, tags = curves(events)
    where = {kind: f"{record}: {tag}" for kind, tag in tags.items()}
    series, what = (val, tags.get("val")) if len(val) >= 2 else (train, tags.get("train"))
    described = f"; {describe_trend(series, what)}" if series.trend() else ""
    last = train.last or val.last
    if last and not math.isfinite(last[1]):
        decide(attempt, train, val, where, record)
    elif any(tag.endswith("train_runtime") for tag in events.scalars):
        attempt.outcome, attempt.status = "success", "completed"
        attempt.evidence = f"{record}: train() returned (train_runtime logged) at step {attempt.steps}{described}"
    elif planned and attempt.steps and attempt.steps >= planned:
        attempt.outcome, attempt.status = "success", "completed"
        attempt.evidence = f"{record}: reached step {attempt.steps} of {planned} planned{described}"
    elif not events.scalars or last is None:
        attempt.evidence = f"{record}: no loss logged (the run stopped before its first logged step)"
    else:
        decide(attempt, train, val, where, record)


def _name(path: str) -> str:
    """``results/runs/Mar24_22-23-40_host`` is named ``results/Mar24_22-23-40_host``; others parent/folder."""
    folder = os.path.abspath(path)
    parent = os.path.dirname(folder)
    if os.path.basename(parent) == "runs" and os.path.dirname(parent) != parent:
        parent = os.path.dirname(parent)
    return f"{os.path.basename(parent)}/{os.path.basename(folder)}" if os.path.basename(parent) \
        else os.path.basename(folder)
