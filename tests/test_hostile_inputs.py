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
    with pytest.raises(ConfigError, match="run config = 5: expected a mapping"):  # e.g. a tampered lunalm.json
        run_config_from_dict(5)
    assert run_config_from_dict({"name": "nano-2026.11.27_a"}).name == "nano-2026.11.27_a"


def _train_config(tmp_path: Path, *argv: str):
    from lunalm.cli import build_parser
    from lunalm.cli.train import build_config

    return build_config(build_parser().parse_args(["train", *argv]))


def test_train_corpus_flags_take_effect(tmp_path: Path):
    corpus = _train_config(tmp_path, "d/", "--include", "*.jsonl", "--exclude", "skip/*", "--exclude", "*.md",
                           "--text-field", "body", "--no-dedup").corpus
    assert (corpus.paths, corpus.include, corpus.exclude) == (("d/",), ("*.jsonl",), ("skip/*", "*.md"))
    assert (corpus.text_field, corpus.dedup, corpus.filter_non_prose) == ("body", False, True)
    plain = _train_config(tmp_path).corpus
    assert (plain.text_field, plain.dedup, plain.exclude, plain.filter_non_prose) == ("text", True, (), True)


def test_filter_is_one_switch_that_overrides_the_config_file(tmp_path: Path):
    off, on = tmp_path / "off.yaml", tmp_path / "on.yaml"
    off.write_text("corpus: {filter_non_prose: false, text_field: content}\n", encoding="utf-8")
    on.write_text("corpus: {filter_non_prose: true}\n", encoding="utf-8")
    assert _train_config(tmp_path, "--config", str(off)).corpus.filter_non_prose is False
    assert _train_config(tmp_path, "--config", str(off)).corpus.text_field == "content"
    assert _train_config(tmp_path, "--config", str(off), "--filter").corpus.filter_non_prose is True
    assert _train_config(tmp_path, "--config", str(on)).corpus.filter_non_prose is True
    assert _train_config(tmp_path, "--config", str(on), "--no-filter").corpus.filter_non_prose is False
    assert _train_config(tmp_path, "--no-filter").corpus.filter_non_prose is False


def test_char_tokenizer_with_a_tokenizer_path_is_refused(tmp_path: Path, turkish_dir: Path):
    result = run_luna("train", str(turkish_dir), "--tokenizer", "char", "--tokenizer-path", "tok.json",
                      "--runs-dir", str(tmp_path / "runs"), cwd=tmp_path)
    assert "--tokenizer char" in _clear_error(result) and "tok.json" in result.stderr
    assert not (tmp_path / "runs").exists() and not (tmp_path / ".cache").exists()


def test_train_reads_the_named_jsonl_field_and_skips_excluded_files(tmp_path: Path):
    import json

    from tests.conftest import TURKISH

    data = tmp_path / "data"
    data.mkdir()
    with open(data / "docs.jsonl", "w", encoding="utf-8") as handle:
        for text in TURKISH * 3:
            handle.write(json.dumps({"id": 1, "body": text}, ensure_ascii=False) + "\n")
    (data / "photo.txt").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))  # unreadable unless excluded
    result = run_luna("train", str(data), "--text-field", "body", "--exclude", "photo.txt", "--tokenizer", "char",
                      "--preset", "nano", "--context", "32", "--max-steps", "1", "--batch-size", "2",
                      "--device", "cpu", "--name", "r", "--runs-dir", str(tmp_path / "runs"), "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    import yaml

    saved = yaml.safe_load((tmp_path / "runs" / "r" / "config.yaml").read_text(encoding="utf-8"))["corpus"]
    assert saved["text_field"] == "body" and saved["exclude"] == ["photo.txt"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny finished run (char tokenizer, 2 layers x 32), shared by the checks below."""
    from tests.train.runhelp import write_corpus, write_yaml

    root = tmp_path_factory.mktemp("trained")
    corpus = write_corpus(root / "corpus")
    config = write_yaml(root / "tiny.yaml", root / "cache", max_steps=4, checkpoint_every=2)
    result = run_luna("train", str(corpus), "--config", str(config), "--name", "r", "--runs-dir", str(root / "runs"),
                      "--quiet", cwd=root)
    assert result.returncode == 0, result.stderr
    return root


def test_eval_refuses_an_unsealed_lunalm_checkpoint_unless_trusted(trained, tmp_path: Path):
    import shutil

    checkpoint = tmp_path / "best"
    shutil.copytree(trained / "runs" / "r" / "checkpoints" / "best", checkpoint)
    (checkpoint / "manifest.json").unlink()
    text = tmp_path / "t.txt"
    text.write_text("Ankara'da her sabah güneş doğar.\n" * 4, encoding="utf-8")
    for command in (["eval", str(checkpoint), str(text)], ["generate", str(checkpoint), "--max-new-tokens", "2"],
                    ["export", str(checkpoint), "--to", "hf", str(tmp_path / "out")]):
        line = _clear_error(run_luna(*command, cwd=tmp_path))
        assert "no manifest.json" in line and "--trust-unverified" in line
    assert not (tmp_path / "out").exists()
    trusted = run_luna("eval", str(checkpoint), str(text), "--json", "--trust-unverified", cwd=tmp_path)
    assert trusted.returncode == 0, trusted.stderr


@pytest.mark.parametrize("text, expected", [
    ("train: {device: 5}\n", "train.device = 5: expected a string"),
    ("train: 5\n", "section 'train' = 5: expected a mapping"),
    ("train: {max_steps: yes}\n", "train.max_steps = True: expected a whole number"),
    ("corpus: {exclude: [1, 2]}\n", "corpus.exclude = (1, 2): expected a list of strings"),
    ("finetune: 7\n", "section 'finetune' = 7: expected a mapping"),
])
def test_wrongly_typed_config_values_are_one_line_naming_the_field(tmp_path: Path, text: str, expected: str):
    config = tmp_path / "bad.yaml"
    config.write_text(text, encoding="utf-8")
    line = _clear_error(run_luna("train", "--config", str(config), "--runs-dir", str(tmp_path / "runs"), cwd=tmp_path))
    assert expected in line
    assert not (tmp_path / "runs").exists()


def test_a_binary_config_file_and_a_runs_dir_that_is_a_file_are_one_line(tmp_path: Path, turkish_dir: Path):
    binary = tmp_path / "model.bin"
    binary.write_bytes(bytes(range(256)) * 4)
    line = _clear_error(run_luna("train", "--config", str(binary), cwd=tmp_path))
    assert str(binary) in line and "not a text YAML file" in line
    taken = tmp_path / "runs.txt"
    taken.write_text("not a folder", encoding="utf-8")
    for runs_dir in (taken, taken / "below"):
        line = _clear_error(run_luna("train", str(turkish_dir), "--runs-dir", str(runs_dir), "--max-steps", "1",
                                     cwd=tmp_path))
        assert f"{taken} is a file, not a folder" in line
    assert not (tmp_path / ".cache").exists()  # refused before the tokenizer and shards


def test_output_paths_a_user_gets_wrong_are_one_line_and_new_parents_are_made(tmp_path: Path, turkish_dir: Path):
    (tmp_path / "exists.txt").write_text("keep me\n", encoding="utf-8")
    (tmp_path / "configs").mkdir()
    fixed = run_luna("analyze", str(turkish_dir), "--fix", "exists.txt", cwd=tmp_path)
    assert "is a file" in _clear_error(fixed) and (tmp_path / "exists.txt").read_text() == "keep me\n"
    nested = run_luna("analyze", str(turkish_dir), "--fix", "new/sub/out", cwd=tmp_path)
    assert nested.returncode == 0, nested.stderr
    assert (tmp_path / "new" / "sub" / "out" / "corpus.jsonl").is_file()
    planned = run_luna("plan", str(turkish_dir), "--device", "cpu", "--no-probe", "--out", "configs", cwd=tmp_path)
    assert "is a folder" in _clear_error(planned) and not list(tmp_path.glob(".*.tmp"))
