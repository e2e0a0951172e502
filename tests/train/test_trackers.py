"""``--report-to tensorboard,wandb,mlflow``: every tracker gets metrics.jsonl's scalars under the same
names, plus the config and the final metrics; each store is read back with its own reader (W&B offline,
MLflow's local file store, TensorBoard's event files)."""

from __future__ import annotations

import json
import os
import struct
import subprocess
from pathlib import Path

import pytest

from tests.conftest import run_luna
from tests.train.runhelp import write_corpus

from lunalm.train.metrics import read_jsonl

TRAIN = ["--max-steps", "4", "--eval-every", "2", "--context", "32", "--batch-size", "2", "--device", "cpu",
         "--sample-every", "0", "--quiet", "--preset", "nano"]


def _luna(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return run_luna(*args, cwd=tmp_path, timeout=600, env={**os.environ, "WANDB_SILENT": "true", **env})


def _jsonl_scalars(run_dir: Path) -> dict[str, dict[int, float]]:
    """{"KIND/NAME": {step: value}} of metrics.jsonl: the names TensorBoard and the trackers must use."""
    found: dict[str, dict[int, float]] = {}
    for record in read_jsonl(run_dir / "metrics.jsonl"):
        for key, value in record.items():
            if key not in ("kind", "step", "time") and isinstance(value, (int, float)):
                found.setdefault(f"{record['kind']}/{key}", {})[record["step"]] = float(value)
    return found


def _tensorboard_scalars(run_dir: Path) -> dict[str, dict[int, float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / "tb"))
    events.Reload()
    return {tag: {e.step: e.value for e in events.Scalars(tag)} for tag in events.Tags()["scalars"]}


def _wandb_records(path: Path):
    """Records of an offline ``run-*.wandb`` file: W&B's LevelDB-style log (7-byte file header, 32 KiB
    blocks, chunks of crc32 u32 + length u16 + type u8: 1 full, 2 first, 3 middle, 4 last)."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    position, pending = 7, b""
    while position + 7 <= len(data):
        if 32768 - position % 32768 < 7:  # block trailer too short for a header: padding
            position += 32768 - position % 32768
            continue
        _, length, kind = struct.unpack("<IHB", data[position:position + 7])
        chunk, position = data[position + 7:position + 7 + length], position + 7 + length
        if kind == 0:
            continue
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            yield record


def _wandb_values(run_dir: Path) -> tuple[dict, dict, dict]:
    """(history {name: {step: value}}, last summary values, config) of the run's offline W&B log."""
    history, summary, config = {}, {}, {}
    (log,) = (run_dir / "wandb").glob("offline-run-*/run-*.wandb")
    for record in _wandb_records(log):
        kind = record.WhichOneof("record_type")
        if kind == "history":
            items = {i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in record.history.item}
            for name, value in items.items():
                if not name.startswith("_"):
                    history.setdefault(name, {})[items["_step"]] = float(value)
        elif kind == "summary":
            summary.update({i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in record.summary.update})
        elif kind == "run":  # the run record carries wandb.init's config
            config.update({i.key: json.loads(i.value_json) for i in record.run.config.update})
    return history, summary, config


def test_wandb_mlflow_and_tensorboard_get_the_jsonl_scalars_config_and_final_metrics(tmp_path):
    pytest.importorskip("wandb")
    mlflow = pytest.importorskip("mlflow")
    corpus = write_corpus(tmp_path / "corpus")
    done = _luna(tmp_path, "train", str(corpus), "--name", "tracked", "--report-to", "tensorboard,wandb,mlflow",
                 *TRAIN, WANDB_MODE="offline")
    assert done.returncode == 0, done.stderr
    run_dir = tmp_path / "runs" / "tracked"
    store = f"sqlite:///{run_dir / 'mlflow.db'}"  # the default: a local SQLite store in the run folder
    expected = _jsonl_scalars(run_dir)
    assert {"train/loss", "train/lr", "val/loss", "val/bits_per_byte"} <= set(expected)
    assert {name.split("/")[0] for name in expected} == {"train", "val"}  # no "eval" beside TensorBoard's "val"
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))

    tensorboard = _tensorboard_scalars(run_dir)
    assert tensorboard.keys() == expected.keys()
    assert all(tensorboard[n] == pytest.approx(expected[n], rel=1e-6) for n in expected)

    history, final, config = _wandb_values(run_dir)
    assert history.keys() == expected.keys()
    assert all(history[n] == pytest.approx(expected[n], rel=1e-9) for n in expected)
    assert final["best_val_loss"] == pytest.approx(summary["best_val_loss"])
    assert config["train"]["max_steps"] == 4 and config["name"] == "tracked"

    client = mlflow.MlflowClient(store)
    (run,) = client.search_runs([client.get_experiment_by_name("lunalm").experiment_id])
    assert run.info.run_name == "tracked" and run.data.params["train.max_steps"] == "4"
    for name, points in expected.items():
        logged = {m.step: m.value for m in client.get_metric_history(run.info.run_id, name)}
        assert logged == pytest.approx(points, rel=1e-6), name
    assert run.data.metrics["final/best_val_loss"] == pytest.approx(summary["best_val_loss"])


def test_tracker_flags_are_checked_before_any_work(tmp_path):
    corpus = write_corpus(tmp_path / "corpus")
    unknown = _luna(tmp_path, "train", str(corpus), "--report-to", "tensorboard,comet", *TRAIN)
    assert unknown.returncode == 2 and "comet: unknown; choose from tensorboard, wandb, mlflow, trackio, none" \
        in unknown.stderr
    import importlib.util

    if importlib.util.find_spec("trackio") is None:
        missing = _luna(tmp_path, "train", str(corpus), "--report-to", "trackio", *TRAIN)
        assert missing.returncode == 2 and missing.stderr.strip() == \
            "error: --report-to trackio: not installed; pip install trackio"
    assert not (tmp_path / "runs").exists()
    none = _luna(tmp_path, "train", str(corpus), "--name", "plain", "--report-to", "none", *TRAIN)
    assert none.returncode == 0, none.stderr
    assert not (tmp_path / "runs" / "plain" / "tb").exists() and (tmp_path / "runs" / "plain" / "metrics.jsonl").is_file()
