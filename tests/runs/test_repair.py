"""Registry damage never costs a run: a warning, a side log, and `luna runs repair` (issue 19)."""

from __future__ import annotations

import json
from pathlib import Path

from lunalm.runs.attempt import run_fingerprint
from lunalm.runs.registry import Registry
from lunalm.runs.repair import SIDE_LOG, repair_registry
from lunalm.train.session import start
from tests.conftest import run_luna
from tests.train.runhelp import tiny_config, write_corpus


class Warnings:
    def __init__(self):
        self.seen: list[str] = []

    def progress(self, run, record): pass
    def message(self, text): pass
    def sample(self, step, prompt, text): pass

    def warning(self, text):
        self.seen.append(text)


def test_a_garbage_registry_costs_a_warning_and_a_side_log_never_the_run(tmp_path: Path):
    corpus = write_corpus(tmp_path / "corpus")
    config = tiny_config(tmp_path, corpus, name="garbage", max_steps=4)
    registry = Path(config.runs_dir) / "registry.sqlite"
    registry.parent.mkdir(parents=True)
    registry.write_bytes(b"this is not an SQLite database, just garbage " * 100)
    ui = Warnings()
    run, status = start(config, ui, progress=False)
    assert status == "completed" and (run.run_dir / "checkpoints" / "final").is_dir()
    assert len([w for w in ui.seen if "registry" in w]) == 1 and "luna runs repair" in ui.seen[0]
    side = [json.loads(line) for line in (run.run_dir / SIDE_LOG).read_text(encoding="utf-8").splitlines()]
    assert side[0]["values"]["status"] == "running" and side[-1]["values"]["status"] == "completed"

    report = repair_registry(registry, Path(config.runs_dir))
    assert report.moved_to.read_bytes().startswith(b"this is not an SQLite")
    assert (report.rows_salvaged, report.side_logs, report.writes_replayed) == (0, 1, len(side))
    row = Registry(registry).get(run_fingerprint(str(run.run_dir)), exact=True)
    assert (row["name"], row["status"], row["steps"], row["model"]) == ("garbage", "completed", 4, "nano")
    assert not (run.run_dir / SIDE_LOG).exists()  # replayed once, kept under another name


def _corrupt_past_the_first_page(path: Path, rows: int = 300) -> None:
    registry = Registry(path)
    for index in range(rows):
        registry.upsert(f"run-{index:04d}", source="test", name=f"n{index}", status="completed", started=index,
                        evidence="x" * 300)
    registry.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    registry.close()
    data = bytearray(path.read_bytes())
    page = 4096
    middle = len(data) // page // 2
    data[middle * page:(middle + 3) * page] = bytes(range(256)) * (3 * page // 256)
    path.write_bytes(bytes(data))


def test_runs_list_on_a_registry_damaged_past_its_first_page_is_one_line_then_repair(tmp_path: Path):
    path = tmp_path / "runs" / "registry.sqlite"
    path.parent.mkdir()
    _corrupt_past_the_first_page(path)
    listed = run_luna("runs", "list", "--runs-dir", str(tmp_path / "runs"))
    assert listed.returncode == 2 and "Traceback" not in listed.stderr, listed.stderr
    assert listed.stderr.strip().startswith("error:") and "luna runs repair" in listed.stderr
    repaired = run_luna("runs", "repair", "--runs-dir", str(tmp_path / "runs"))
    assert repaired.returncode == 0, repaired.stderr
    salvaged = int(repaired.stdout.split("rebuilt ")[1].split(": ")[1].split(" run(s)")[0])
    assert 100 < salvaged < 300  # the damaged pages' rows are lost, the rest is read back
    again = run_luna("runs", "list", "--runs-dir", str(tmp_path / "runs"), "--json")
    assert again.returncode == 0, again.stderr
    assert len(json.loads(again.stdout)) == salvaged
    assert list((tmp_path / "runs").glob("registry.sqlite.damaged-*"))


def test_repair_keeps_json_columns_as_they_were(tmp_path: Path):
    path = tmp_path / "runs" / "registry.sqlite"
    registry = Registry(path)
    registry.upsert("base", name="base", source="lunalm", config={"name": "base", "train": {"lr": 0.003}},
                    extra={"task": "fine-tuning"})
    registry.close()
    for _ in range(2):  # repairing a healthy registry, twice, changes no value
        repair_registry(path, tmp_path / "runs")
    row = Registry(path).get("base")
    assert row["config"] == {"name": "base", "train": {"lr": 0.003}} and row["extra"] == {"task": "fine-tuning"}
