"""``luna finetune --adapter DIR``: continue a LoRA adapter; refuse one made for a different base."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from tests.finetune.fthelp import ALPACA, tiny_base, tiny_tokenizer, write_jsonl
from tests.finetune.test_finetune import _error, _start


# Every test here needs the `trained` fixture: three bases and a LoRA fine-tune (55 s, then 45 s for the
# continued fine-tune on the 2-core CPU).
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict[str, Path]:
    """Bases (gpt2, llama, a wider gpt2) and the adapter of a 3-step rank-4 LoRA fine-tune of gpt2."""
    import transformers as tf

    from lunalm.cli import build_parser
    from lunalm.cli.finetune import build_finetune_config
    from lunalm.train.loop import SilentUI
    from lunalm.train.session import start

    root = tmp_path_factory.mktemp("adapter")
    paths = {arch: tiny_base(root / arch, arch) for arch in ("gpt2", "llama")}
    wide = root / "gpt2-wide"
    tokenizer = tiny_tokenizer(wide)
    tf.GPT2LMHeadModel(tf.GPT2Config(vocab_size=tokenizer.vocab_size, n_positions=128, n_embd=64, n_layer=2,
                                     n_head=2)).save_pretrained(wide)
    paths["gpt2-wide"] = wide
    paths["data"] = write_jsonl(root / "alpaca.jsonl", ALPACA)
    args = build_parser().parse_args(["finetune", "--base", str(paths["gpt2"]), str(paths["data"]), "--lora",
                                      "--lora-r", "4", "--max-steps", "3", "--lr", "1e-2", "--context", "96",
                                      "--batch-size", "4", "--device", "cpu", "--sample-every", "0", "--quiet",
                                      "--name", "first", "--runs-dir", str(root / "runs")])
    run, status = start(build_finetune_config(args), SilentUI(), progress=False)
    assert status == "completed"
    paths["adapter"] = run.run_dir / "checkpoints" / "final" / "adapter"
    return paths


def test_continuing_starts_from_the_saved_adapter_and_keeps_its_shape(trained, tmp_path, monkeypatch):
    from types import SimpleNamespace

    from safetensors.torch import load_file

    from lunalm.config import FinetuneConfig
    from lunalm.finetune.base import load_base_model
    from lunalm.tokenizer import Tokenizer

    hw = SimpleNamespace(device=torch.device("cpu"), precision="fp32")
    cfg = FinetuneConfig(base=str(trained["gpt2"]), lora=True, lora_r=4, adapter=str(trained["adapter"]))
    model = load_base_model(cfg, Tokenizer.load(trained["gpt2"]), hw)
    saved = load_file(str(trained["adapter"] / "adapter_model.safetensors"))
    loaded = {n.removeprefix("inner.").replace(".default", ""): p for n, p in model.named_parameters()
              if "lora_" in n}
    assert saved.keys() == loaded.keys() and all(torch.equal(saved[n], loaded[n]) for n in saved)
    assert all(p.requires_grad for p in loaded.values())
    run, status = _start(tmp_path, monkeypatch, "--base", str(trained["gpt2"]), str(trained["data"]), "--lora",
                         "--adapter", str(trained["adapter"]), "--max-steps", "2", "--context", "96",
                         "--name", "more")
    assert status == "completed"
    finetune = run.config.finetune
    assert (finetune.adapter, finetune.lora_r) == (str(trained["adapter"]), 4)  # the adapter's rank, not 8
    moved = {n.removeprefix("inner.").replace(".default", ""): p for n, p in run.model.named_parameters()
             if "lora_" in n}
    assert any(not torch.equal(saved[n], moved[n]) for n in saved)  # it trained on from there


def test_adapter_for_another_architecture_or_width_is_refused(trained, tmp_path, capsys, monkeypatch):
    line = _error(capsys, tmp_path, monkeypatch, "finetune", "--base", str(trained["llama"]), str(trained["data"]),
                  "--lora", "--adapter", str(trained["adapter"]))
    assert f"--adapter {trained['adapter']} was made for a different base ({trained['gpt2']})" in line
    assert "model_type gpt2 (adapter) vs llama (base)" in line
    line = _error(capsys, tmp_path, monkeypatch, "finetune", "--base", str(trained["gpt2-wide"]),
                  str(trained["data"]), "--lora", "--adapter", str(trained["adapter"]))
    assert "hidden size 32 (adapter) vs 64 (base)" in line and "model_type" not in line
    assert not (tmp_path / "runs").exists()  # refused before anything was written


def test_a_bare_adapter_whose_base_is_gone_fails_on_the_shapes(trained, tmp_path, capsys, monkeypatch):
    bare = tmp_path / "bare-adapter"
    shutil.copytree(trained["adapter"], bare)
    config = json.loads((bare / "adapter_config.json").read_text(encoding="utf-8"))
    config["base_model_name_or_path"] = str(tmp_path / "deleted-base")
    (bare / "adapter_config.json").write_text(json.dumps(config), encoding="utf-8")
    line = _error(capsys, tmp_path, monkeypatch, "finetune", "--base", str(trained["gpt2-wide"]),
                  str(trained["data"]), "--lora", "--adapter", str(bare), "--context", "96", "--device", "cpu",
                  "--max-steps", "1", "--quiet")
    assert f"--adapter {bare} does not fit --base {trained['gpt2-wide']}" in line


def test_adapter_needs_lora_and_an_adapter_folder(trained, tmp_path, capsys, monkeypatch):
    line = _error(capsys, tmp_path, monkeypatch, "finetune", "--base", str(trained["gpt2"]), str(trained["data"]),
                  "--adapter", str(trained["adapter"]))
    assert "--adapter continues a LoRA adapter and needs --lora" in line
    line = _error(capsys, tmp_path, monkeypatch, "finetune", "--base", str(trained["gpt2"]), str(trained["data"]),
                  "--lora", "--adapter", str(trained["gpt2"]))
    assert "no readable adapter_config.json" in line
