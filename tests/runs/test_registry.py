"""The run registry: live runs record themselves, silent deaths are found, concurrent writers lose nothing."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from lunalm.runs.attempt import Attempt, fingerprint, run_fingerprint
from lunalm.runs.registry import STALE_AFTER_S, Registry
from lunalm.train.session import start
from tests.conftest import run_luna
from tests.train.runhelp import tiny_config, write_corpus

WRITER = """
import sys
from lunalm.runs.registry import Registry
registry = Registry(sys.argv[1])
for i in range(int(sys.argv[3])):
    registry.upsert(f"{sys.argv[2]}-{i}", source="test", status="completed", steps=i)
    registry.add_metrics(f"{sys.argv[2]}-{i}", [(s, "train", 1.0 / (s + 1)) for s in range(5)])
"""


def test_two_processes_writing_at_once_lose_nothing(tmp_path):
    path = tmp_path / "registry.sqlite"
    Registry(path).close()
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), name, "150"]) for name in "ab"]
    assert [w.wait(timeout=120) for w in writers] == [0, 0]
    registry = Registry(path)
    assert len(registry.find()) == 300
    assert all(len(registry.metrics(f"{name}-{i}")) == 5 for name in "ab" for i in range(150))


def test_a_training_run_records_itself_with_plan_and_metrics(tmp_path):
    corpus = write_corpus(tmp_path / "corpus")
    config = tiny_config(tmp_path, corpus, name="reg", max_steps=6, eval_every=3)
    import dataclasses

    config = dataclasses.replace(config, plan={"steps": 6, "hours": 0.01, "tokens_per_s": 1000})
    run, status = start(config, ui=_Quiet(), progress=False)
    assert status == "completed"
    registry = Registry(tmp_path / "runs" / "registry.sqlite")
    row = registry.get(run_fingerprint(str(run.run_dir)))
    summary = json.loads((run.run_dir / "summary.json").read_text())
    assert row["status"] == "completed" and row["outcome"] == "success" and row["source"] == "lunalm"
    assert row["steps"] == 6 and row["tokens_seen"] == summary["tokens_seen"]
    assert row["best_val_loss"] == summary["best_val_loss"] and row["n_params"] == summary["n_params"]
    assert row["plan"] == {"steps": 6, "hours": 0.01, "tokens_per_s": 1000}
    assert row["config"]["train"]["max_steps"] == 6
    splits = {split for _, split, _ in registry.metrics(row["id"])}
    assert splits == {"train", "val"}


def test_stale_running_rows_become_crashed(tmp_path):
    registry = Registry(tmp_path / "r.sqlite")
    now = time.time()
    registry.upsert("dead", status="running", pid=2**22 + 12345, host="elsewhere", heartbeat=now - 2 * STALE_AFTER_S)
    registry.upsert("alive", status="running", pid=None, host="elsewhere", heartbeat=now)
    assert registry.mark_stale(now) == 1
    assert registry.get("dead")["status"] == "crashed" and registry.get("dead")["outcome"] == "failure"
    assert registry.get("alive")["status"] == "running"


def test_a_killed_runs_row_says_what_its_log_reached(tmp_path):
    """kill -9: the heartbeat's step (up to 30 s old) and no best validation loss were all the row kept."""
    folder = tmp_path / "runs" / "killed"
    folder.mkdir(parents=True)
    records = [{"kind": "train", "step": s, "loss": 5.0 - s / 100} for s in (10, 20, 30, 40, 57)]
    records += [{"kind": "val", "step": 20, "loss": 4.9}, {"kind": "val", "step": 40, "loss": 4.6}]
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    registry = Registry(tmp_path / "r.sqlite")
    now = time.time()
    registry.upsert("killed", status="running", pid=2**22 + 12345, host="elsewhere", path=str(folder), steps=30,
                    heartbeat=now - 2 * STALE_AFTER_S)
    registry.upsert("gone", status="running", pid=2**22 + 12346, host="elsewhere", path=str(tmp_path / "nowhere"),
                    steps=12, heartbeat=now - 2 * STALE_AFTER_S)
    assert registry.mark_stale(now) == 2
    row = registry.get("killed")
    assert (row["status"], row["steps"], row["best_val_loss"], row["final_train_loss"]) == ("crashed", 57, 4.6, 4.43)
    assert (registry.get("gone")["steps"], registry.get("gone")["best_val_loss"]) == (12, None)


def test_a_resumed_run_keeps_its_first_start_and_a_copied_folder_is_its_own_run(tmp_path):
    import shutil

    from lunalm.train.loop import Faults
    from lunalm.train.session import resume

    corpus = write_corpus(tmp_path / "corpus")
    config = tiny_config(tmp_path, corpus, name="first", max_steps=8, eval_every=2, checkpoint_every=2)
    try:
        start(config, ui=_Quiet(), progress=False, faults=Faults(crash=(0, 5)))
    except RuntimeError:
        pass
    registry = Registry(tmp_path / "runs" / "registry.sqlite")
    first = run_fingerprint(str(tmp_path / "runs" / "first"))
    row = registry.get(first)
    assert row["status"] == "crashed" and row["steps"] == 5 and row["best_val_loss"] is not None
    registry.upsert(first, started=1_000_000.0)  # as if it had started long ago, paused overnight
    shutil.copytree(tmp_path / "runs" / "first", tmp_path / "runs" / "copy")
    assert resume(tmp_path / "runs" / "first", _Quiet(), progress=False)[1] == "completed"
    assert resume(tmp_path / "runs" / "copy", _Quiet(), progress=False)[1] == "completed"
    rows = {row["id"]: row for row in Registry(tmp_path / "runs" / "registry.sqlite").find()}
    assert rows[first]["started"] == 1_000_000.0 and rows[first]["name"] == "first"
    copy = rows[run_fingerprint(str(tmp_path / "runs" / "copy"))]
    assert copy["name"] == "copy" and copy["started"] > 1_000_000.0 and copy["status"] == "completed"


def test_scanned_attempts_upsert_idempotently(tmp_path):
    registry = Registry(tmp_path / "r.sqlite")
    attempt = Attempt(source="log", path=str(tmp_path / "train.log"), outcome="failure",
                      fingerprint=fingerprint("log", str(tmp_path / "train.log")), error_kind="cuda-oom",
                      metrics=[(1, "train", 3.0), (2, "train", 2.5)])
    assert registry.upsert_attempt(attempt) is True
    assert registry.upsert_attempt(attempt) is False
    assert len(registry.find()) == 1 and len(registry.metrics(attempt.fingerprint)) == 2


def test_runs_cli_lists_shows_compares_and_removes(tmp_path):
    registry = Registry(tmp_path / "runs" / "registry.sqlite")
    for name, lr, loss in (("first", 1e-3, 2.5), ("second", 0.0026829267761144656, 2.1)):
        registry.upsert(f"lunalm:{name}", source="lunalm", name=name, status="completed", model="nano",
                        started=time.time(), best_val_loss=loss, config={"train": {"lr": lr, "seed": 1}})
        registry.add_metrics(f"lunalm:{name}", [(s, "train", loss + 1 / (s + 1)) for s in range(10)])
    listed = run_luna("runs", "list", "--runs-dir", str(tmp_path / "runs"))
    assert listed.returncode == 0 and "first" in listed.stdout and "second" in listed.stdout
    shown = run_luna("runs", "show", "seco", "--runs-dir", str(tmp_path / "runs"))
    assert "best_val_loss     2.1" in shown.stdout
    png = tmp_path / "c.png"
    compared = run_luna("runs", "compare", "first", "second", "--plot", str(png), "--runs-dir", str(tmp_path / "runs"))
    assert compared.returncode == 0, compared.stderr
    assert "train.lr" in compared.stdout and "train.seed" not in compared.stdout
    assert compared.stdout.split("train.lr")[1].split()[:2] == ["0.001", "0.00268293"]  # 6 digits, columns apart
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert run_luna("runs", "rm", "first", "--runs-dir", str(tmp_path / "runs")).returncode == 0
    missing = run_luna("runs", "show", "first", "--runs-dir", str(tmp_path / "runs"))
    assert missing.returncode == 2 and "no run 'first'" in missing.stderr
    empty = run_luna("runs", "list", "--runs-dir", str(tmp_path / "none"))
    assert empty.returncode == 2 and "no run registry here yet" in empty.stderr


class _Quiet:
    def progress(self, run, record): ...
    def message(self, text): ...
    def warning(self, text): ...
    def sample(self, step, prompt, text): ...


def test_readers_see_committed_rows_while_a_writer_holds_the_write_lock(tmp_path):
    """WAL: `luna runs list` reads while a training run is in the middle of writing its row (in the
    rollback-journal mode an exclusive writer would block every reader until it commits)."""
    import sqlite3

    path = tmp_path / "registry.sqlite"
    registry = Registry(path)
    registry.upsert("done", source="lunalm", status="completed", steps=10)
    reader = Registry(path)
    reader.db.execute("PRAGMA busy_timeout=200")  # fail fast instead of waiting for the writer
    assert reader.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN EXCLUSIVE")
    writer.execute("INSERT INTO runs (id, source, status) VALUES ('live', 'lunalm', 'running')")
    try:
        assert [(r["id"], r["status"]) for r in reader.find()] == [("done", "completed")]
        assert reader.get("live", exact=True) is None  # not committed yet
    finally:
        writer.execute("COMMIT")
    assert {r["id"] for r in reader.find()} == {"done", "live"}
