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


# MLflow's database store (mlflow.db), with the columns of MLflow 3's schema that the scan reads (as in a real
# store committed by 2024aa05593-trips/Image-Classification-using-CNN-Pytorch).
STORE_SCHEMA = """
CREATE TABLE experiments (experiment_id INTEGER NOT NULL PRIMARY KEY, name VARCHAR(256) NOT NULL,
    artifact_location VARCHAR(256), lifecycle_stage VARCHAR(32), creation_time BIGINT, last_update_time BIGINT);
CREATE TABLE runs (run_uuid VARCHAR(32) NOT NULL PRIMARY KEY, name VARCHAR(250), source_type VARCHAR(20),
    source_name VARCHAR(500), entry_point_name VARCHAR(50), user_id VARCHAR(256), status VARCHAR(9),
    start_time BIGINT, end_time BIGINT, source_version VARCHAR(50), lifecycle_stage VARCHAR(20),
    artifact_uri VARCHAR(200), experiment_id INTEGER, deleted_time BIGINT);
CREATE TABLE metrics ("key" VARCHAR(250) NOT NULL, value FLOAT NOT NULL, timestamp BIGINT NOT NULL,
    run_uuid VARCHAR(32) NOT NULL, step BIGINT DEFAULT '0' NOT NULL, is_nan BOOLEAN DEFAULT '0' NOT NULL,
    PRIMARY KEY ("key", timestamp, step, run_uuid, value, is_nan));
CREATE TABLE latest_metrics ("key" VARCHAR(250) NOT NULL, value FLOAT NOT NULL, timestamp BIGINT, step BIGINT NOT NULL,
    is_nan BOOLEAN NOT NULL, run_uuid VARCHAR(32) NOT NULL, PRIMARY KEY ("key", run_uuid));
CREATE TABLE params ("key" VARCHAR(250) NOT NULL, value VARCHAR(8000) NOT NULL, run_uuid VARCHAR(32) NOT NULL,
    PRIMARY KEY ("key", run_uuid));
CREATE TABLE tags ("key" VARCHAR(250) NOT NULL, value VARCHAR(8000), run_uuid VARCHAR(32) NOT NULL,
    PRIMARY KEY ("key", run_uuid));
"""


def _store(path: Path, runs: list[dict]) -> Path:
    import sqlite3

    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path)
    db.executescript(STORE_SCHEMA)
    db.execute("INSERT INTO experiments VALUES (1, 'gpt2-tr', 'mlflow-artifacts:/1', 'active', 0, 0)")
    for run in runs:
        db.execute("INSERT INTO runs VALUES (?, ?, 'LOCAL', '', '', 'me', ?, ?, ?, '', ?, '', 1, NULL)",
                   (run["id"], run["name"], run["status"], run["start"], run.get("end"), run.get("stage", "active")))
        db.executemany("INSERT INTO params VALUES (?, ?, ?)", [(k, str(v), run["id"]) for k, v in run["params"].items()])
        db.executemany("INSERT INTO tags VALUES (?, ?, ?)", [("mlflow.runName", run["name"], run["id"]),
                                                            ("mlflow.source.name", "train.py", run["id"])])
        for key, points in run["metrics"].items():
            db.executemany("INSERT INTO metrics VALUES (?, ?, ?, ?, ?, ?)",
                           [(key, 0.0 if value != value else value, run["start"] + 1000 * n, run["id"], step,
                             int(value != value)) for n, (step, value) in enumerate(points)])
    db.commit()
    db.close()
    return path


def test_the_runs_of_an_mlflow_database_are_attempts_once_each_and_deleted_ones_left_out(tmp_path: Path):
    params = {"learning_rate": 5e-05, "per_device_train_batch_size": 8, "_name_or_path": "gpt2", "fp16": "True"}
    runs = [{"id": "a" * 32, "name": "finished", "status": "FINISHED", "start": 1771630284440, "end": 1771630426922,
             "params": params, "metrics": {"loss": [(10, 3.2), (20, 2.9), (30, 2.7)],
                                           "eval_loss": [(20, 3.0), (30, 2.8)],
                                           "learning_rate": [(10, 2.5e-05), (20, 5e-05)]}},
            {"id": "b" * 32, "name": "crashed", "status": "FAILED", "start": 1771640000000, "end": 1771640060000,
             "params": {"lr": 0.001, "batch_size": 16}, "metrics": {"train_loss": [(0, 14.0), (0, 9.1), (0, 8.0)]}},
            {"id": "c" * 32, "name": "diverged", "status": "FINISHED", "start": 1771650000000, "end": 1771650060000,
             "params": {}, "metrics": {"loss": [(1, 3.0), (2, float("nan"))]}},
            {"id": "d" * 32, "name": "thrown-away", "status": "FAILED", "start": 1771660000000, "stage": "deleted",
             "params": {}, "metrics": {}}]
    _store(tmp_path / "mlflow.db", runs)
    _store(tmp_path / "deploy" / "mlflow.db", runs)  # the same store copied beside a deployment
    (tmp_path / "runs").mkdir()
    from lunalm.runs.registry import Registry

    Registry(tmp_path / "runs" / "registry.sqlite").close()  # lunalm's own registry is no MLflow store
    scanner = Scanner()
    found = {run.name: run for run in scanner.scan([str(tmp_path)])}
    assert sorted(found) == ["gpt2-tr/crashed", "gpt2-tr/diverged", "gpt2-tr/finished"]
    finished, crashed, diverged = (found[f"gpt2-tr/{name}"] for name in ("finished", "crashed", "diverged"))
    assert (finished.source, finished.outcome, finished.status) == ("mlflow", "success", "completed")
    assert (finished.model, finished.lr, finished.batch_size, finished.precision) == ("gpt2", 5e-05, 8, "fp16")
    assert (finished.final_train_loss, finished.best_val_loss, finished.steps) == (2.7, 2.8, 30)
    assert finished.started == 1771630284.44 and finished.wall_seconds == pytest.approx(142.482)
    assert finished.evidence.startswith("mlflow.db (run aaaaaaaa): status FINISHED (the run ended without an error)")
    assert finished.extra["program"] == "train.py" and finished.extra["mlflow_run_id"] == "a" * 32
    assert (crashed.outcome, crashed.status, crashed.lr, crashed.batch_size) == ("failure", "crashed", 0.001, 16)
    assert (crashed.final_train_loss, crashed.steps) == (8.0, 3)  # logged without a step: counted in order
    assert diverged.outcome == "failure" and "nan" in diverged.evidence.lower()
    assert not scanner.stats.skipped


def test_a_damaged_mlflow_database_is_skipped_with_its_reason(tmp_path: Path):
    store = _store(tmp_path / "mlflow.db", [{"id": "a" * 32, "name": "r", "status": "FINISHED", "start": 1, "end": 2,
                                             "params": {}, "metrics": {"loss": [(1, 2.0)]}}])
    data = store.read_bytes()
    store.write_bytes(data[:4096] + b"\xff" * (len(data) - 4096))  # the pages after the first overwritten
    scanner = Scanner()
    assert list(scanner.scan([str(tmp_path)])) == []
    [(path, reason)] = scanner.stats.skipped
    assert path == str(store) and reason.startswith("an MLflow database that cannot be read (")
