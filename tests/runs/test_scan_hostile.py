"""``luna scan`` stays bounded in time and memory on small hostile files (issue 19): a YAML alias bomb,
notebook HTML built to make a table parser quadratic, a FIFO named on the command line, and a file that
takes longer than its time budget. Each case runs through the real CLI with a timeout."""

from __future__ import annotations

import json
import os
import time

import pytest

from lunalm.runs.scan import Scanner
from tests.conftest import run_luna

LIMIT_S = 60  # the old scanner did not finish any of these in 240 s


def alias_bomb() -> str:
    """A lunalm-shaped config.yaml whose aliases expand to 9^9 strings (about 550 bytes)."""
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for previous, name in zip("abcdefgh", "bcdefghi"):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{previous}"] * 9) + "]")
    return "\n".join(lines) + "\nmodel: {preset: tiny, extra: *i}\ntrain: {lr: 0.001}\ncorpus: {paths: *i}\n"


def tr_notebook(size: int) -> dict:
    """A notebook whose HTML output says "Training Loss" and then holds ``size`` bytes of unclosed ``<tr>``."""
    markup = "<table><tr><th>Step</th><th>Training Loss</th></tr>" + "<tr>" * (size // 4)
    cell = {"cell_type": "code", "execution_count": 1, "source": "trainer.train()",
            "outputs": [{"output_type": "display_data", "data": {"text/html": [markup]}}]}
    return {"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def scan_cli(tmp_path, *paths):
    started = time.monotonic()
    result = run_luna("scan", *map(str, paths), "--registry", str(tmp_path / "reg.sqlite"), "--quiet",
                      "--verbose", timeout=LIMIT_S)
    return result, time.monotonic() - started


def test_yaml_alias_bomb_is_refused(tmp_path):
    run = tmp_path / "tree" / "run"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(alias_bomb())
    assert (run / "config.yaml").stat().st_size < 600
    (run / "summary.json").write_text(json.dumps({"status": "completed"}))
    result, elapsed = scan_cli(tmp_path, tmp_path / "tree")
    assert result.returncode == 0, result.stderr
    assert "config.yaml: YAML aliases expand to more than 100,000 nodes" in result.stdout
    assert elapsed < 30


def test_recursive_yaml_alias_is_refused(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("model: &m {preset: tiny, again: *m}\ntrain: {lr: 0.001}\n")
    (run / "summary.json").write_text(json.dumps({"status": "completed"}))
    scanner = Scanner()
    assert list(scanner.scan([str(run)])) == []
    assert scanner.stats.skipped[0][1].startswith("YAML alias refers to a node that contains it")


@pytest.mark.parametrize("size, limit_s", [(64 << 10, 2.0), (1 << 20, 10.0)])  # here: 0.07 s and 0.8 s
def test_notebook_table_of_unclosed_rows_is_read_in_linear_time(tmp_path, size, limit_s):
    (tmp_path / "tr.ipynb").write_text(json.dumps(tr_notebook(size)))
    scanner = Scanner()
    started = time.monotonic()
    attempts = list(scanner.scan([str(tmp_path)]))
    assert time.monotonic() - started < limit_s  # the old pattern took 7 s at 64 KB, >240 s at 1 MB
    assert len(attempts) == 1 and attempts[0].metrics == []


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
def test_fifo_named_on_the_command_line_is_skipped(tmp_path):
    fifo = tmp_path / "pipe.log"
    os.mkfifo(fifo)
    result, _ = scan_cli(tmp_path, fifo)  # the old scanner opened it and blocked for ever
    assert result.returncode == 0, result.stderr
    assert "0 training attempts" in result.stdout
    assert f"{fifo}: not a regular file (FIFO, socket or device)" in result.stdout


def test_a_file_over_its_time_budget_is_given_up(tmp_path):
    (tmp_path / "train.log").write_text("".join(f"iter {i}: loss {3 - i / 1e4:.4f}\n" for i in range(10_000)))
    scanner = Scanner(file_seconds=0.0)
    assert list(scanner.scan([str(tmp_path)])) == []
    assert scanner.stats.skipped == [(str(tmp_path / "train.log"),
                                      "gave up: reading it took too long (a hostile or pathological file?)")]
    assert len(list(Scanner().scan([str(tmp_path)]))) == 1  # with the default budget it is read


def test_a_log_of_endless_overrides_keeps_a_bounded_number(tmp_path):
    from lunalm.runs.scan.effective import MAX_SETTINGS

    lines = [f"Overriding: key{i} = {i}" for i in range(3 * MAX_SETTINGS)] + ["Overriding: key0 = 'last'"]
    lines += [f"Overriding config with config/c{i}.py:" for i in range(100)]
    (tmp_path / "train.log").write_text("\n".join(lines + ["iter 0: loss 2.0", "iter 1: loss 1.0"]) + "\n")
    (run,) = Scanner().scan([str(tmp_path)])
    assert len(run.extra["log_overrides"]) == MAX_SETTINGS and run.extra["log_overrides"]["key0"][0] == "last"
    assert len(run.extra["config_files"]) == 20
