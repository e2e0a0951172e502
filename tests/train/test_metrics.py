"""RunLogger / read_jsonl / plot_loss: durable JSONL, valid JSON for NaN, de-duplicated curves, TB files."""

from __future__ import annotations

import json
import math
import sys

import pytest
import torch

from lunalm.train.metrics import RunLogger, loss_series, plot_loss, read_jsonl, smooth

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_records_round_trip_exactly(tmp_path):
    with RunLogger(tmp_path, tensorboard=False) as run:
        run.log_train(1, loss=4.25, lr=3e-4, tokens=1024)
        run.log_train(2, loss=torch.tensor(4.0), grad_norm=torch.tensor(0.5, requires_grad=True),
                      n_targets=torch.tensor(7))
        run.log_eval(2, loss=3.5, bits_per_byte=1.25)
        run.event("rollback", 2, "loss was not finite", lr=1e-4, checkpoint="step-000001")
    metrics = read_jsonl(tmp_path / "metrics.jsonl")
    assert [(r["kind"], r["step"]) for r in metrics] == [("train", 1), ("train", 2), ("val", 2)]
    assert {k: metrics[0][k] for k in ("loss", "lr", "tokens")} == {"loss": 4.25, "lr": 3e-4, "tokens": 1024}
    assert metrics[1]["loss"] == 4.0 and metrics[1]["grad_norm"] == 0.5 and metrics[1]["n_targets"] == 7
    assert isinstance(metrics[1]["n_targets"], int) and isinstance(metrics[0]["time"], float)
    assert metrics[2]["bits_per_byte"] == 1.25
    (event,) = read_jsonl(tmp_path / "events.jsonl")
    assert event["kind"] == "rollback" and event["step"] == 2 and event["message"] == "loss was not finite"
    assert event["lr"] == 1e-4 and event["checkpoint"] == "step-000001"
    for line in (tmp_path / "metrics.jsonl").read_text().splitlines():
        json.loads(line)  # one complete object per line


def test_lines_are_on_disk_before_close(tmp_path):
    run = RunLogger(tmp_path, tensorboard=False)
    run.log_train(1, loss=2.0)
    run.event("note", 1, "hello")
    assert read_jsonl(tmp_path / "metrics.jsonl")[0]["loss"] == 2.0  # flushed, like after a kill -9
    assert read_jsonl(tmp_path / "events.jsonl")[0]["message"] == "hello"
    run.close()
    run.close()


def test_nan_and_inf_are_valid_json_and_restored(tmp_path):
    with RunLogger(tmp_path, tensorboard=False) as run:
        run.log_train(5, loss=float("nan"), grad_norm=torch.tensor(float("inf")), lr=1e-3)
    line = (tmp_path / "metrics.jsonl").read_text().strip()
    raw = json.loads(line, parse_constant=lambda name: pytest.fail(f"non-JSON constant {name}"))
    assert raw["loss"] is None and raw["grad_norm"] is None
    assert raw["nonfinite"] == {"loss": "nan", "grad_norm": "inf"}
    (record,) = read_jsonl(tmp_path / "metrics.jsonl")
    assert math.isnan(record["loss"]) and record["grad_norm"] == math.inf and record["lr"] == 1e-3
    assert "nonfinite" not in record


def test_truncated_last_line_is_tolerated_and_resume_starts_a_fresh_line(tmp_path):
    path = tmp_path / "metrics.jsonl"
    with RunLogger(tmp_path, tensorboard=False) as run:
        run.log_train(1, loss=3.0)
    with open(path, "a") as handle:
        handle.write('{"kind": "train", "step": 2, "lo')  # killed mid-write
    assert [r["step"] for r in read_jsonl(path)] == [1]
    with RunLogger(tmp_path, tensorboard=False) as resumed:
        resumed.log_train(2, loss=2.5)
    assert [(r["step"], r["loss"]) for r in read_jsonl(path)] == [(1, 3.0), (2, 2.5)]
    assert read_jsonl(tmp_path / "missing.jsonl") == []


def test_disabled_logger_writes_nothing(tmp_path):
    run = RunLogger(tmp_path / "run", enabled=False)
    run.log_train(1, loss=1.0)
    run.log_eval(1, loss=1.0)
    run.event("note", 1, "x")
    run.close()
    assert not (tmp_path / "run").exists()


def test_reserved_names_are_rejected(tmp_path):
    with RunLogger(tmp_path, tensorboard=False) as run, pytest.raises(ValueError, match="reserved"):
        run.log_train(1, time=3.0)


def test_loss_series_keeps_last_record_per_kind_and_step():
    records = [{"kind": "train", "step": s, "loss": 10.0 - s, "lr": 0.1} for s in (1, 2, 3, 4)]
    records.append({"kind": "eval", "step": 4, "loss": 7.0})
    # resumed from a step-2 checkpoint: steps 3 and 4 are logged again with different values
    records += [{"kind": "train", "step": s, "loss": 20.0 + s, "lr": 0.2} for s in (3, 4, 5)]
    records.append({"kind": "eval", "step": 4, "loss": 6.0})
    series = loss_series(records)
    assert series["train"] == ([1, 2, 3, 4, 5], [9.0, 8.0, 23.0, 24.0, 25.0])
    assert series["val"] == ([4], [6.0])
    assert series["lr"] == ([1, 2, 3, 4, 5], [0.1, 0.1, 0.2, 0.2, 0.2])


def test_smooth_is_centred_without_lag_and_skips_nan():
    ramp = [10.0 - 0.05 * i for i in range(200)]  # a falling loss: an exponential average would trail it
    assert smooth(ramp) == pytest.approx(ramp)  # 11-point window, centred: the line itself
    zigzag = [0.0, 3.0] * 30  # 60 points, 20 per window -> 3-point window
    assert smooth(zigzag) == pytest.approx([0.0] + [1.0, 2.0] * 29 + [3.0])
    assert smooth([1.0, float("nan"), 3.0], points_per_window=1) == pytest.approx([1.0, 2.0, 3.0])
    assert math.isnan(smooth([float("nan")])[0]) and smooth([]) == []
    assert smooth([5.0, 4.0, 3.0]) == [5.0, 4.0, 3.0]  # too few points to average: drawn as they are


def test_loss_png_is_redrawn_at_most_every_redraw_seconds_and_at_close(tmp_path, monkeypatch):
    from lunalm.train import metrics

    drawn = []  # how many val records each drawing saw
    monkeypatch.setattr(metrics, "plot_loss",
                        lambda path, png: drawn.append(len(loss_series(read_jsonl(path))["val"][0])))
    clock = [100.0]
    monkeypatch.setattr(metrics.time, "monotonic", lambda: clock[0])
    with RunLogger(tmp_path, tensorboard=False) as run:
        run.log_eval(10, loss=3.0)  # the first eval draws at once
        clock[0] += metrics.REDRAW_SECONDS - 1
        run.log_eval(20, loss=2.9)  # too soon: left for later
        assert drawn == [1]
        clock[0] += 1
        run.log_eval(30, loss=2.8)
        assert drawn == [1, 3]
        run.log_eval(40, loss=2.7)
    assert drawn == [1, 3, 4]  # close draws the evals the last drawing missed
    run.close()
    assert drawn == [1, 3, 4]  # and only once


def test_plot_loss_writes_png_atomically_without_open_figures(tmp_path):
    import matplotlib.pyplot as plt

    figures_before = plt.get_fignums()
    with RunLogger(tmp_path, tensorboard=False) as run:
        for step in range(1, 41):
            run.log_train(step, loss=5.0 / step ** 0.3, lr=1e-3 * min(1.0, step / 10))
        run.log_train(41, loss=float("nan"), lr=1e-3)
        run.log_eval(20, loss=3.2)
        run.log_eval(40, loss=3.0)  # log_eval redraws loss.png
    png = tmp_path / "loss.png"
    assert png.read_bytes()[:8] == PNG_MAGIC
    png.unlink()
    plot_loss(tmp_path / "metrics.jsonl", png, log_lr=True)
    assert png.read_bytes()[:8] == PNG_MAGIC
    assert plt.get_fignums() == figures_before
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_plot_loss_of_empty_metrics(tmp_path):
    plot_loss(tmp_path / "metrics.jsonl", tmp_path / "loss.png")
    assert (tmp_path / "loss.png").read_bytes()[:8] == PNG_MAGIC


def test_tensorboard_event_files_appear(tmp_path):
    with RunLogger(tmp_path) as run:
        run.log_train(1, loss=3.0, lr=1e-3, note="text is skipped by TensorBoard")
        run.log_eval(1, loss=2.9)
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))


def test_missing_tensorboard_warns_once_and_continues(tmp_path, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # makes the import fail
    with caplog.at_level("WARNING", logger="lunalm.train.metrics"):
        with RunLogger(tmp_path) as run:
            run.log_train(1, loss=3.0)
    assert sum("TensorBoard" in r.message for r in caplog.records) == 1
    assert not (tmp_path / "tb").exists()
    assert read_jsonl(tmp_path / "metrics.jsonl")[0]["loss"] == 3.0
