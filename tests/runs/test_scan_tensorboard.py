"""``luna scan`` on TensorBoard event files, written here in the formats real runs left in public repositories
(see /work/qa_scan4/SOURCES.md of the QA pass): Lightning's ``lightning_logs/version_0/`` (hparams.yaml and
an event file of float tensors, Text-Generation-With-LSTM), three Lightning runs that stopped before their
first loss (Alvi-Rahman/Transformers), a Trainer output folder's ``runs/<date>_<host>/`` (its arguments as
text, t5-summarization-demo), a ``SummaryWriter`` folder of ``simple_value`` scalars, and Keras's
``train/`` + ``validation/`` pair."""

from __future__ import annotations

import json
import math
import os
import struct
from pathlib import Path

import pytest

from lunalm.runs.scan import Scanner, scan

torch_tensorboard = pytest.importorskip("torch.utils.tensorboard")
START = 1716735746.0  # the LSTM run's first record (unix time)
ARGS = {"output_dir": "/home/u/my_models/t5-summarization", "per_device_train_batch_size": 4,
        "gradient_accumulation_steps": 2, "learning_rate": 5e-05, "num_train_epochs": 3.0, "max_steps": -1,
        "bf16": True, "optim": "adamw_torch"}


class _writer:
    """A SummaryWriter whose event file gets a fixed name when closed (the writer puts the clock in it)."""

    def __init__(self, folder: Path, name: str):
        self.folder, self.name = folder, name
        self.before = set(folder.glob("events.out.tfevents.*"))
        self.writer = torch_tensorboard.SummaryWriter(log_dir=str(folder))

    def __getattr__(self, attribute):
        return getattr(self.writer, attribute)

    def close(self) -> None:
        self.writer.close()
        [written] = set(self.folder.glob("events.out.tfevents.*")) - self.before
        written.rename(self.folder / self.name)


def _lstm_run(run_dir: Path, val_losses: list[float]) -> None:
    run_dir.mkdir(parents=True)
    (run_dir / "hparams.yaml").write_text("hidden_units: 512\nlr: 0.001\nnum_chars: 29\nnum_layers: 2\n"
                                          "seq_length: 100\n")
    writer = _writer(run_dir, f"events.out.tfevents.{int(START)}.99c8c45923de.3769.0")
    train = [2.0573372840881348, 1.2, 0.8, 0.5, 0.23888538777828217]
    for index, loss in enumerate(train):
        step = 49 + index * 50
        writer.add_scalar("train_loss", loss, step, walltime=START + 1 + index, new_style=True)
        writer.add_scalar("epoch", float(index), step, walltime=START + 1 + index, new_style=True)
    for index, loss in enumerate(val_losses):
        writer.add_scalar("val_loss", loss, 249 + index, walltime=START + 4482.6 + index, new_style=True)
    writer.close()


def test_a_lightning_tensorboard_run_is_one_attempt_with_its_curves_settings_and_times(tmp_path: Path):
    run_dir = tmp_path / "lightning_logs" / "version_0"
    _lstm_run(run_dir, [0.3606380522251129, 0.2555515468120575])
    (run_dir / "checkpoints").mkdir()
    (run_dir / "checkpoints" / "shakespeare-epoch=18-val_loss=0.25.ckpt").write_bytes(b"\x80")
    [run] = list(scan([str(tmp_path)]))
    assert (run.source, run.outcome, run.lr) == ("lightning", "success", 0.001)
    assert run.final_train_loss == 0.23888539  # the float32 as written, not its widening 0.23888538777828217
    assert (run.best_val_loss, run.steps) == (0.25555155, 250)
    assert [row for row in run.metrics if row[1] == "val"] == [(249, "val", 0.36063805), (250, "val", 0.25555155)]
    assert run.started == START + 1 and run.wall_seconds == pytest.approx(4482.6)
    assert run.evidence.startswith(f"events.out.tfevents.{int(START)}.99c8c45923de.3769.0: val_loss: val loss 0.361")
    assert run.extra["checkpoints"] == ["shakespeare-epoch=18-val_loss=0.25.ckpt"]


def test_the_lightning_notebook_beside_its_run_folder_is_that_run(tmp_path: Path):
    _lstm_run(tmp_path / "lightning_logs" / "version_0", [0.3606380522251129, 0.2555515468120575])
    code = ["import torch\n", "import pytorch_lightning as pl\n",
            "class CharModel(pl.LightningModule):\n",
            "    def configure_optimizers(self):\n",
            "        return torch.optim.Adam(self.parameters(), lr=0.001)\n",
            "loader = torch.utils.data.DataLoader(data, batch_size=64)\n",
            "trainer = pl.Trainer(max_epochs=30)\n", "trainer.fit(CharModel(), loader)\n"]
    cells = [{"cell_type": "code", "execution_count": 1, "metadata": {}, "outputs": [], "source": code}]
    (tmp_path / "Text_Generation .ipynb").write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4,
                                                                 "nbformat_minor": 5}))
    [run] = list(scan([str(tmp_path)]))
    assert (run.source, run.outcome, run.optimizer, run.lr, run.batch_size, run.epochs) == \
        ("lightning", "success", "Adam", 0.001, 64, 30.0)
    assert run.extra["paired"] == [str(tmp_path / "Text_Generation .ipynb")]


def test_lightning_runs_that_stopped_before_their_first_loss_are_attempts_with_their_settings(tmp_path: Path):
    for version in range(3):
        run_dir = tmp_path / "lightning_logs" / f"version_{version}"
        run_dir.mkdir(parents=True)
        (run_dir / "hparams.yaml").write_text("learning_rate: 0.0003\nmodel_name_or_path: t5-large\n"
                                              "train_batch_size: 1\ngradient_accumulation_steps: 16\n"
                                              "num_train_epochs: 10\n")
        writer = _writer(run_dir, f"events.out.tfevents.{1614280815 + version}.DESKTOP-H8MFNAV.8616.{version}")
        writer.add_scalar("hp_metric", -1.0, 0, walltime=1614280815.1 + version * 100, new_style=True)
        writer.close()
    runs = sorted(scan([str(tmp_path)]), key=lambda run: run.path)
    assert [(run.source, run.outcome, run.model, run.lr, run.grad_accum, run.epochs) for run in runs] == \
        [("lightning", "unknown", "t5-large", 0.0003, 16, 10.0)] * 3
    assert [run.started for run in runs] == [1614280815.1, 1614280915.1, 1614281015.1]
    assert runs[0].evidence == "events.out.tfevents.1614280815.DESKTOP-H8MFNAV.8616.0: fewer than two losses logged"


def _trainer_run(folder: Path, runtime: bool = True) -> None:
    """The Trainer's TensorBoardCallback: ``args`` and ``model_config`` as text, then ``train/*`` scalars;
    evaluate() after train() writes a second file with ``eval/loss``."""
    runs = folder / "runs" / "Mar24_22-23-40_DESKTOP-41L2EO3"
    runs.mkdir(parents=True)
    writer = _writer(runs, "events.out.tfevents.1742826235.DESKTOP-41L2EO3.107869.0")
    writer.add_text("args", json.dumps(ARGS, indent=2), walltime=1742826235.9)
    writer.add_text("model_config", json.dumps({"_name_or_path": "google-t5/t5-small", "model_type": "t5"}),
                    walltime=1742826235.9)
    for step, loss, lr in ((500, 1.9963, 4.988390355720185e-05), (1000, 1.9, 4.9e-05), (1500, 1.7423, 1e-07)):
        writer.add_scalar("train/loss", loss, step, walltime=1742826235.9 + step)
        writer.add_scalar("train/learning_rate", lr, step, walltime=1742826235.9 + step)
    if runtime:
        writer.add_scalar("train/train_runtime", 54713.1796875, 1500, walltime=1742880949.1)
        writer.add_scalar("train/train_loss", 1.804049015045166, 1500, walltime=1742880949.1)
    writer.close()
    writer = _writer(runs, "events.out.tfevents.1742884204.DESKTOP-41L2EO3.107869.1")
    writer.add_scalar("eval/loss", 1.633907675743103, 1500, walltime=1742884204.9)
    writer.close()


def test_a_trainer_output_folder_and_its_runs_folder_are_one_attempt_with_the_configured_lr(tmp_path: Path):
    folder = tmp_path / "t5-summarization-demo"
    _trainer_run(folder)
    history = [{"step": 500, "loss": 1.9963, "learning_rate": 4.988390355720185e-05},
               {"step": 1500, "loss": 1.7423, "learning_rate": 1e-07},
               {"step": 1500, "train_runtime": 54713.18, "train_loss": 1.804}]
    (folder / "trainer_state.json").write_text(json.dumps({"global_step": 1500, "max_steps": 1500, "epoch": 3.0,
                                                           "num_train_epochs": 3, "log_history": history}))
    [run] = list(scan([str(tmp_path)]))
    assert (run.source, run.outcome, run.status) == ("hf-trainer", "success", "completed")
    assert (run.lr, run.grad_accum, run.optimizer, run.precision) == (5e-05, 2, "adamw_torch", "bf16")
    assert run.extra["sources"]["lr"] == \
        "runs/Mar24_22-23-40_DESKTOP-41L2EO3/events.out.tfevents.1742826235.DESKTOP-41L2EO3.107869.0: args"
    assert run.started == 1742826235.0  # the event file's name (hf_trainer._started)


def test_a_trainer_runs_folder_without_its_state_file_is_the_attempt(tmp_path: Path):
    folder = tmp_path / "t5-summarization-demo"
    _trainer_run(folder)
    [run] = list(scan([str(tmp_path)]))
    assert (run.source, run.outcome, run.status) == ("tensorboard", "success", "completed")
    assert run.name == "t5-summarization-demo/Mar24_22-23-40_DESKTOP-41L2EO3"
    assert (run.model, run.lr, run.batch_size, run.grad_accum, run.epochs, run.precision) == \
        ("google-t5/t5-small", 5e-05, 4, 2, 3.0, "bf16")
    assert (run.final_train_loss, run.best_val_loss, run.steps) == (1.7423, 1.6339077, 1500)  # not the mean 1.804
    assert run.wall_seconds == 54713.18 and run.started == pytest.approx(1742826235.9)
    assert run.evidence.startswith("events.out.tfevents.1742826235.DESKTOP-41L2EO3.107869.0: train() returned")
    (folder / "runs" / "Mar24_22-23-40_DESKTOP-41L2EO3" / "events.out.tfevents.1742826235.DESKTOP-41L2EO3.107869.0"
     ).unlink()
    _trainer_run(tmp_path / "cut", runtime=False)  # no train_runtime: the curve decides, and says so
    [cut] = [run for run in scan([str(tmp_path / "cut")])]
    assert (cut.outcome, cut.status) == ("success", None) and "train/loss: train loss 2 → 1.74 over steps 500–1500" in cut.evidence


def test_a_summary_writer_folder_that_diverged_and_a_keras_pair(tmp_path: Path):
    nano = tmp_path / "runs" / "Jan05_10-00-00_box"
    nano.mkdir(parents=True)
    writer = _writer(nano, "events.out.tfevents.1704448800.box.77.0")
    for step, loss in ((0, 10.9), (100, 6.2), (200, 5.1), (300, math.nan)):
        writer.add_scalar("train/loss", loss, step, walltime=1704448800.0 + step)
        writer.add_scalar("lr", 6e-4 * min(1.0, (step + 1) / 100), step, walltime=1704448800.0 + step)
    writer.close()
    keras = tmp_path / "logs" / "fit" / "20240105-100000"
    for part, losses in (("train", (2.3, 1.1, 0.7)), ("validation", (2.0, 1.3, 1.2))):
        (keras / part).mkdir(parents=True)
        writer = _writer(keras / part, f"events.out.tfevents.1704448900.box.88.{part == 'validation'}.v2")
        for epoch, loss in enumerate(losses):
            writer.add_scalar("epoch_loss", loss, epoch, walltime=1704448900.0 + epoch, new_style=True)
        writer.close()
    runs = {run.path: run for run in scan([str(tmp_path)])}
    assert sorted(runs) == [str(keras), str(nano)]
    diverged, fitted = runs[str(nano)], runs[str(keras)]
    assert (diverged.outcome, diverged.status, diverged.error_kind) == ("failure", "diverged", "nan-loss")
    assert diverged.lr == 6e-4 and "highest logged" in diverged.extra["sources"]["lr"]
    assert (fitted.outcome, fitted.best_val_loss, fitted.final_train_loss) == ("success", 1.2, 0.7)
    for stale in (keras / "validation").iterdir():  # fitted without a validation split: train/ alone
        stale.unlink()
    (keras / "validation").rmdir()
    [fitted] = list(scan([str(keras.parent)]))
    assert (fitted.path, fitted.name, fitted.best_val_loss, fitted.final_train_loss) == \
        (str(keras), "fit/20240105-100000", None, 0.7)


def test_a_file_named_like_an_event_file_that_is_not_one_is_skipped_with_a_reason(tmp_path: Path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "events.out.tfevents.1700000000.host.1.0").write_bytes(struct.pack("<Q", 1 << 62) + b"x" * 64)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "events.out.tfevents.1700000000.host.1.0").write_text("loss 2.0\n" * 10)
    trainer = tmp_path / "out" / "runs" / "Jan05_10-00-00_box"
    trainer.mkdir(parents=True)
    (tmp_path / "out" / "trainer_state.json").write_text(json.dumps({"global_step": 10, "log_history": []}))
    os.mkfifo(trainer / "events.out.tfevents.1700000001.box.1.0")  # opening it would block the scan
    (trainer / "events.out.tfevents.1700000002.box.1.0").symlink_to("/dev/zero")
    scanner = Scanner()
    assert [run.source for run in scanner.scan([str(tmp_path)])] == ["hf-trainer"]
    assert sorted(reason for _, reason in scanner.stats.skipped) == \
        ["events.out.tfevents.1700000000.host.1.0: not a TensorBoard event file (no valid record)"] * 2


def test_event_files_that_wandb_synced_into_its_run_files_are_that_run(tmp_path: Path):
    files = tmp_path / "wandb" / "run-20240105_100000-abcd1234" / "files"
    files.mkdir(parents=True)
    (files / "wandb-summary.json").write_text(json.dumps({"train/loss": 1.5, "_runtime": 60}))
    writer = _writer(files, "events.out.tfevents.1704448800.box.77.0")
    writer.add_scalar("train/loss", 1.5, 10, walltime=1704448800.0)
    writer.close()
    assert [run.source for run in scan([str(tmp_path)])] == ["wandb"]


def test_an_event_file_cut_short_by_a_kill_keeps_the_records_before_the_cut(tmp_path: Path):
    run = tmp_path / "runs" / "Jan05_10-00-00_box"
    run.mkdir(parents=True)
    writer = _writer(run, "events.out.tfevents.1704448800.box.77.0")
    for step, loss in ((0, 10.9), (100, 6.2), (200, 5.1)):
        writer.add_scalar("train/loss", loss, step, walltime=1704448800.0 + step)
    writer.close()
    path = run / "events.out.tfevents.1704448800.box.77.0"
    path.write_bytes(path.read_bytes()[:-7])  # the last record's data and checksum half written
    [attempt] = list(scan([str(tmp_path)]))
    assert [row[2] for row in attempt.metrics] == [10.9, 6.2] and attempt.outcome == "success"
