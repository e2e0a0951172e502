"""``luna scan`` on MLflow's file store (``mlruns/<experiment>/<run>/``), written here in the format of a real
Keras autolog run (10-Academy-Batch-4-Week-4/Swahili-Speech-To-Text, see the QA pass's SOURCES.md) and of the
Hugging Face Trainer's MLflowCallback."""

from __future__ import annotations

from pathlib import Path

import pytest

from lunalm.runs.scan import Scanner, scan

RUN_ID = "ed05f9cd599442fe9a0c9222184710b8"
LOSSES = [332.6841735839844, 297.6000061035156, 270.32366943359375, 248.3108367919922, 239.03318786621094,
          238.0267791748047, 235.6751708984375, 235.4126739501953, 235.13304138183594, 234.7978057861328]


def _run(experiment: Path, run_id: str, meta: dict, params: dict, metrics: dict[str, list], tags: dict) -> Path:
    """A run folder as MLflow's FileStore writes it (a metric or param name with "/" is a folder)."""
    experiment.mkdir(parents=True, exist_ok=True)
    if not (experiment / "meta.yaml").exists():
        (experiment / "meta.yaml").write_text(f"artifact_location: file:///C:/Users/me/mlruns/{experiment.name}\n"
                                              f"experiment_id: '{experiment.name}'\nlifecycle_stage: active\n"
                                              "name: Speech model simple rnn\n")
    run = experiment / run_id
    lines = {"artifact_uri": f"file:///C:/Users/me/mlruns/1/{run_id}/artifacts", "entry_point_name": "''",
             "experiment_id": f"'{experiment.name}'", "lifecycle_stage": "active", "name": "''", "run_id": run_id,
             "run_uuid": run_id, "source_name": "''", "source_type": 4, "source_version": "''", "tags": "[]",
             "user_id": "Maelaf ES", **meta}
    run.mkdir()
    (run / "meta.yaml").write_text("".join(f"{key}: {value}\n" for key, value in sorted(lines.items())))
    for kind, values in (("params", params), ("tags", tags)):
        for name, value in values.items():
            (run / kind / name).parent.mkdir(parents=True, exist_ok=True)
            (run / kind / name).write_text(str(value))
    for name, points in metrics.items():
        (run / "metrics" / name).parent.mkdir(parents=True, exist_ok=True)
        (run / "metrics" / name).write_text("".join(f"{1628697792090 + step * 3700} {value} {step}\n"
                                                    for step, value in points))
    return run


def test_a_keras_autolog_run_is_one_attempt_with_its_params_curve_and_times(tmp_path: Path):
    run = _run(tmp_path / "mlruns" / "1", RUN_ID, {"start_time": 1628697775478, "end_time": 1628697851678,
                                                  "status": 3},
               {"batch_size": None, "epochs": 10, "opt_learning_rate": 0.002, "opt_name": "SGD",
                "opt_nesterov": True, "steps_per_epoch": None},
               {"loss": list(enumerate(LOSSES))},
               {"mlflow.autologging": "tensorflow", "mlflow.source.name": "C:\\anaconda3\\ipykernel_launcher.py"})
    torch_tensorboard = pytest.importorskip("torch.utils.tensorboard")
    logs = run / "artifacts" / "tensorboard_logs" / "train"
    writer = torch_tensorboard.SummaryWriter(log_dir=str(logs))
    for step, value in enumerate(LOSSES):
        writer.add_scalar("epoch_loss", value, step, new_style=True)
    writer.close()
    (tmp_path / "mlruns" / "0").mkdir()
    (tmp_path / "mlruns" / "0" / "meta.yaml").write_text("artifact_location: file:///x/mlruns/0\nexperiment_id: '0'\n"
                                                       "lifecycle_stage: active\nname: Default\n")
    [attempt] = list(scan([str(tmp_path)]))  # the TensorBoard files among its artifacts are no second attempt
    assert (attempt.source, attempt.outcome, attempt.status) == ("mlflow", "success", "completed")
    assert attempt.name == f"Speech model simple rnn/{RUN_ID}"
    assert (attempt.optimizer, attempt.lr, attempt.epochs, attempt.batch_size) == ("SGD", 0.002, 10.0, None)
    assert (attempt.final_train_loss, attempt.steps) == (234.7978057861328, 9)
    assert attempt.started == 1628697775.478 and attempt.wall_seconds == pytest.approx(76.2)
    assert attempt.evidence == ("meta.yaml: status FINISHED (the run ended without an error); train loss 333 → 235 "
                                "over steps 0–9 (first and last logged; smoothed, means of 3: 300 → 235)")


def test_trainer_mlflow_runs_failed_killed_and_never_ended(tmp_path: Path):
    experiment = tmp_path / "mlruns" / "3"
    params = {"learning_rate": 5e-05, "per_device_train_batch_size": 8, "gradient_accumulation_steps": 4,
              "_name_or_path": "gpt2", "fp16": True, "max_steps": -1}
    curve = {"loss": [(10, 3.2), (20, 2.9), (30, 2.7)], "eval_loss": [(20, 3.0), (30, 2.8)],
             "learning_rate": [(10, 2.5e-05), (20, 5e-05), (30, 4e-05)], "train_loss": [(30, 2.93)]}
    _run(experiment, "a" * 32, {"start_time": 1700000000000, "end_time": 1700000600000, "status": 4}, params,
         curve, {"mlflow.runName": "gpt2-failed"})
    _run(experiment, "b" * 32, {"start_time": 1700001000000, "end_time": 1700001060000, "status": 5}, params,
         {"loss": [(10, 3.2)]}, {"mlflow.runName": "gpt2-killed"})
    _run(experiment, "c" * 32, {"start_time": 1700002000000, "end_time": "null", "status": 1}, {},
         {"train/loss": [(0, 4.0), (100, 3.0), (200, 2.5)], "val/loss": [(100, 3.1), (200, 3.3)],
          "lr-AdamW": [(0, 1e-04), (200, 3e-04)]}, {"mlflow.runName": "lightning-running"})
    runs = {run.name: run for run in scan([str(tmp_path)])}
    failed, killed, running = (runs[f"Speech model simple rnn/{name}"] for name in
                               ("gpt2-failed", "gpt2-killed", "lightning-running"))
    assert (failed.outcome, failed.status, failed.error_kind) == ("failure", "crashed", "other-exception")
    assert (failed.model, failed.lr, failed.batch_size, failed.grad_accum, failed.precision) == \
        ("gpt2", 5e-05, 8, 4, "fp16")
    assert (failed.final_train_loss, failed.best_val_loss, failed.steps) == (2.7, 2.8, 30)  # not the mean 2.93
    assert (killed.outcome, killed.status, killed.wall_seconds) == ("unknown", "interrupted", 60.0)
    assert (running.outcome, running.best_val_loss, running.wall_seconds) == ("unknown", 3.1, None)
    assert running.evidence == "metrics/val/loss: val loss 3.1 → 3.3 over steps 100–200: no improvement (status RUNNING)"
    assert running.lr == 3e-04 and running.extra["sources"]["lr"].startswith("metrics/lr-AdamW: highest logged")


def test_an_mlflow_meta_yaml_that_names_no_run_and_bad_metric_lines_are_no_traceback(tmp_path: Path):
    run = _run(tmp_path / "mlruns" / "1", "d" * 32, {"status": 3}, {"lr": "0.1"}, {"loss": [(0, 2.0)]}, {})
    (run / "metrics" / "loss").write_text("garbage\n1 2.0 0\n1 nan-ish x\n1 1.5 1\n")
    (tmp_path / "other" / "params").mkdir(parents=True)
    (tmp_path / "other" / "meta.yaml").write_text("a: &a [*a]\n")
    scanner = Scanner()
    [attempt] = list(scanner.scan([str(tmp_path)]))
    assert (attempt.final_train_loss, attempt.lr, attempt.outcome) == (1.5, 0.1, "success")
    assert any(path.endswith("other/meta.yaml") for path, _ in scanner.stats.skipped)
