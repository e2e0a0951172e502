"""Hostile and broken inputs (issue 19): every write confined, one clear line, nothing half-written."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_luna


def _clear_error(result) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines and lines[-1].startswith("error:"), result.stderr
    return lines[-1]


@pytest.mark.parametrize("name", ["..", "../../x", "a/b", ".", "ABSOLUTE", "a\\b", ""])
def test_run_name_is_one_plain_folder_name_refused_before_any_write(tmp_path: Path, turkish_dir: Path, name):
    parent = tmp_path / "work"
    runs = parent / "runs"
    runs.mkdir(parents=True)
    (parent / "config.yaml").write_text("keep: me\n", encoding="utf-8")
    (parent / "metrics.jsonl").write_text("", encoding="utf-8")
    name = str(tmp_path / "elsewhere") if name == "ABSOLUTE" else name
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    result = run_luna("train", str(turkish_dir), "--runs-dir", str(runs), "--name", name,
                      "--max-steps", "1", cwd=tmp_path)
    assert "name = " in _clear_error(result) and "--runs-dir" in result.stderr
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    assert (parent / "config.yaml").read_text(encoding="utf-8") == "keep: me\n"
    assert (parent / "metrics.jsonl").read_text(encoding="utf-8") == ""


def test_run_name_from_a_config_file_is_checked_too(tmp_path: Path):
    from lunalm.config import run_config_from_dict
    from lunalm.errors import ConfigError

    with pytest.raises(ConfigError, match="name = '../escape'"):
        run_config_from_dict({"name": "../escape"})
    assert run_config_from_dict({"name": "nano-2026.11.27_a"}).name == "nano-2026.11.27_a"
