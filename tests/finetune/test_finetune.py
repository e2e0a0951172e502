"""``luna finetune``: tiny random Hugging Face bases saved locally, trained through lunalm's one loop.

Numerical properties: masked prompt positions get exactly zero gradient, LoRA leaves the base bit-identical,
merged weights give the adapter model's logits, resume continues bit-exactly. Bad input: exit code 2 and
one ``error:`` line.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from tests.conftest import run_luna
from tests.finetune.fthelp import ALPACA, CHAT, tiny_base, tiny_tokenizer, write_jsonl
from tests.train.runhelp import luna_env, write_corpus

QUICK = ["--context", "32", "--batch-size", "4", "--device", "cpu", "--sample-every", "0", "--quiet"]


@pytest.fixture(scope="module")
def bases(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bases")
    return {arch: tiny_base(root / arch, arch) for arch in ("gpt2", "llama")}


def _start(tmp_path, monkeypatch, *argv):
    """Run ``luna finetune ARGV`` in this process (cwd tmp_path); returns (run, status)."""
    from lunalm.cli import build_parser
    from lunalm.cli.finetune import build_finetune_config
    from lunalm.train.loop import SilentUI
    from lunalm.train.session import start

    monkeypatch.chdir(tmp_path)
    (tmp_path / "quick.yaml").write_text("train: {log_every: 1, eval_batches: 2}\n", encoding="utf-8")
    args = build_parser().parse_args(["finetune", *QUICK, *argv, "--config", str(tmp_path / "quick.yaml")])
    return start(build_finetune_config(args), SilentUI(), progress=False)


def _hf_logits(folder: Path, ids: torch.Tensor) -> torch.Tensor:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(folder), use_safetensors=True).eval()
    with torch.no_grad():
        return model(input_ids=ids).logits


# --- instruction data ----------------------------------------------------------------------------
def test_masked_prompt_positions_get_exactly_zero_gradient(bases, tmp_path):
    from transformers import AutoModelForCausalLM

    from lunalm.finetune.adapter import HFCausalLM
    from lunalm.finetune.instructions import InstructionSampler, build_instruction_data
    from lunalm.tokenizer import Tokenizer

    tokenizer = Tokenizer.load(bases["gpt2"])
    data = build_instruction_data([write_jsonl(tmp_path / "a.jsonl", ALPACA)], "alpaca", tokenizer, 96, 0.0, 1)
    inputs, labels = InstructionSampler(data.train, seed=3).next_batch(4)  # (4, 96) each
    prompt = (labels == -100) & (inputs != tokenizer.pad_id)
    assert prompt.any() and (labels != -100).any()
    inner = AutoModelForCausalLM.from_pretrained(str(bases["gpt2"]))  # eval mode: no dropout
    model = HFCausalLM(inner, base="", lora=False)  # training mode: the head sees scored positions only
    hidden = []

    def keep(module, args, out):  # returns None: the output itself is unchanged
        out.retain_grad()
        hidden.append(out)

    handle = inner.transformer.ln_f.register_forward_hook(keep)  # the last hidden state, what the head reads
    out = model(inputs, labels)
    out.loss_sum.backward()
    handle.remove()
    grad = hidden[0].grad  # (4, 96, C): d loss / d last hidden state, position by position
    assert torch.equal(grad[labels == -100], torch.zeros_like(grad[labels == -100]))  # exactly zero
    assert (grad[labels != -100].abs().sum(-1) > 0).all()
    # and the loss is that of the answer tokens alone, as the full model's logits give it
    logits = inner(input_ids=inputs).logits
    reference = torch.nn.functional.cross_entropy(logits[labels != -100].float(), labels[labels != -100],
                                                  reduction="sum")
    assert torch.allclose(out.loss_sum, reference)


def test_chat_masks_everything_but_assistant_turns_and_template_is_saved(bases, tmp_path):
    from lunalm.finetune.instructions import DEFAULT_TEMPLATE, compile_template, tokenize_example
    from lunalm.tokenizer import Tokenizer

    tokenizer = Tokenizer.load(bases["gpt2"])
    ids, targets = tokenize_example(CHAT[0]["messages"], compile_template(DEFAULT_TEMPLATE), tokenizer)
    trained = tokenizer.decode([i for i, t in zip(ids, targets) if t])
    assert trained == f"Merhaba.{tokenizer.eot_token}\nİyiyim.{tokenizer.eot_token}\n"
    tokenizer.chat_template = DEFAULT_TEMPLATE
    tokenizer.save(tmp_path / "tok")
    assert Tokenizer.load(tmp_path / "tok").chat_template == DEFAULT_TEMPLATE
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(str(tmp_path / "tok"))
    text = hf.apply_chat_template(CHAT[0]["messages"], tokenize=False)
    assert text == tokenizer.decode(ids)


# --- training ------------------------------------------------------------------------------------
@pytest.mark.slow  # trains a fine-tune (measured 21 s on the 2-core CPU)
def test_continued_pretraining_lowers_loss_loads_in_transformers_and_resumes(bases, tmp_path, monkeypatch):
    from lunalm.train.session import resume
    from lunalm.train.loop import SilentUI
    from tests.train.runhelp import assert_same_weights, train_losses

    corpus = write_corpus(tmp_path / "corpus")
    run, status = _start(tmp_path, monkeypatch, "--base", str(bases["gpt2"]), str(corpus), "--name", "cpt",
                         "--max-steps", "8", "--lr", "3e-3", "--warmup-steps", "0", "--checkpoint-every", "4")
    assert status == "completed"
    losses = train_losses(run.run_dir)
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3 - 0.1, losses
    final = run.run_dir / "checkpoints" / "final"
    ids = torch.tensor([run.data.tokenizer.encode("Türkiye'nin başkenti Ankara'dır.")])
    with torch.no_grad():
        ours = run.model.eval()(ids).logits
    assert torch.allclose(_hf_logits(final, ids), ours, atol=1e-5)
    # resume from step 4: the same final weights, bit for bit
    shutil.copytree(final, tmp_path / "first-final")
    shutil.rmtree(run.run_dir / "checkpoints" / "step-00000008")
    shutil.rmtree(final)
    run2, status2 = resume(run.run_dir, SilentUI(), progress=False)
    assert status2 == "completed" and run2.state.step == 8
    assert_same_weights(tmp_path / "first-final", final)


@pytest.mark.slow  # trains a fine-tune (measured 22 s on the 2-core CPU)
def test_lora_alpaca_trains_only_adapters_and_merges(bases, tmp_path, monkeypatch):
    from safetensors.torch import load_file

    data = write_jsonl(tmp_path / "alpaca.jsonl", ALPACA)
    run, status = _start(tmp_path, monkeypatch, "--base", str(bases["llama"]), str(data), "--name", "lora",
                         "--lora", "--lora-r", "4", "--max-steps", "3", "--lr", "1e-2", "--eval-every", "3",
                         "--context", "96")
    assert status == "completed" and run.config.finetune.format == "alpaca"
    trainable = {n for n, p in run.model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    base = load_file(str(bases["llama"] / "model.safetensors"))
    current = {n.removeprefix("inner.base_model.model.").replace(".base_layer", ""): p
               for n, p in run.model.named_parameters() if "lora_" not in n}
    assert base.keys() <= current.keys()
    assert all(torch.equal(base[n], current[n]) for n in base)  # the frozen base is bit-identical
    lora_b = [p for n, p in run.model.named_parameters() if "lora_B" in n]
    assert any(p.abs().sum() > 0 for p in lora_b)  # the adapters moved (B starts at zero)
    ids = torch.tensor([run.data.tokenizer.encode("Başkent neresi? Ankara.")])
    run.model.eval()
    with torch.no_grad():
        peft_logits = run.model(ids).logits
        merged_logits = run.model.merged_model()(input_ids=ids).logits
    assert torch.allclose(merged_logits, peft_logits, atol=1e-5)
    final = run.run_dir / "checkpoints" / "final"
    assert torch.allclose(_hf_logits(final, ids), peft_logits, atol=1e-5)
    assert (final / "adapter" / "adapter_model.safetensors").is_file()
    assert "chat_template" in json.loads((final / "tokenizer_config.json").read_text(encoding="utf-8"))


def test_other_architectures_get_default_lora_targets(tmp_path):
    from types import SimpleNamespace

    from lunalm.config import FinetuneConfig
    from lunalm.finetune.base import _load_hf, inspect_base
    from lunalm.tokenizer import Tokenizer

    hw = SimpleNamespace(device=torch.device("cpu"), precision="fp32")
    for arch in ("gpt_neo", "phi"):
        folder = tiny_base(tmp_path / arch, arch)
        cfg = FinetuneConfig(base=str(folder), lora=True)
        model = _load_hf(cfg, inspect_base(str(folder)), Tokenizer.load(folder), hw)
        trainable, total = model.parameter_counts()
        assert 0 < trainable < total
        labels = torch.randint(0, 100, (1, 8))
        model(torch.randint(0, 100, (1, 8)), labels).loss_sum.backward()


@pytest.mark.slow  # trains a fine-tune (measured 25 s on the 2-core CPU)
def test_cli_prints_trainable_count_and_generate_reads_the_result(bases, tmp_path):
    data = write_jsonl(tmp_path / "chat.jsonl", CHAT)
    args = ["--context", "96", "--batch-size", "4", "--device", "cpu", "--sample-every", "0"]
    done = _luna(tmp_path, "finetune", "--base", str(bases["gpt2"]), str(data), "--lora", "--max-steps", "2",
                 "--name", "chat", *args)
    assert done.returncode == 0, done.stderr
    assert "trainable parameters:" in done.stderr
    final = tmp_path / "runs" / "chat" / "checkpoints" / "final"
    out = _luna(tmp_path, "generate", str(final), "--prompt", "Selam", "--max-new-tokens", "5", "--seed", "1")
    assert out.returncode == 0, out.stderr


# --- bad input -----------------------------------------------------------------------------------
def _luna(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return run_luna(*args, env=luna_env(), cwd=cwd)


def _error(capsys, tmp_path, monkeypatch, *argv) -> str:
    """``luna ARGV`` in this process: exit code 2 and exactly one ``error:`` line on stderr."""
    from lunalm.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(list(argv)) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, lines
    return lines[0]


def test_not_a_causal_lm_and_missing_tokenizer(bases, tmp_path, capsys, monkeypatch):
    import transformers as tf

    corpus = write_corpus(tmp_path / "corpus")
    bert = tmp_path / "bert"
    tf.BertModel(tf.BertConfig(vocab_size=300, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                               intermediate_size=32)).save_pretrained(bert)
    tiny_tokenizer(bert)
    assert "not a causal language model" in _error(capsys, tmp_path, monkeypatch, "finetune", "--base", str(bert),
                                                   str(corpus))
    bare = tmp_path / "bare"
    shutil.copytree(bases["gpt2"], bare)
    (bare / "tokenizer.json").unlink()
    assert "no tokenizer.json" in _error(capsys, tmp_path, monkeypatch, "finetune", "--base", str(bare), str(corpus))


def test_jsonl_without_fields_names_the_line(bases, tmp_path, capsys, monkeypatch):
    data = write_jsonl(tmp_path / "bad.jsonl", ALPACA[:2] + [{"instruction": "x", "reply_text": "y"}])
    line = _error(capsys, tmp_path, monkeypatch, "finetune", "--base", str(bases["gpt2"]), str(data), *QUICK)
    assert f"{data}:3: found fields instruction, reply_text; an instruction example needs a prompt" in line


def test_missing_or_unreadable_data_is_one_error_line_and_a_bom_is_fine(bases, tmp_path, capsys, monkeypatch):
    from lunalm.finetune.instructions import detect_format, read_examples

    missing = tmp_path / "missing.jsonl"
    line = _error(capsys, tmp_path, monkeypatch, "finetune", "--base", str(bases["gpt2"]), str(missing), *QUICK)
    assert f"{missing}: no such file or directory" in line
    binary = tmp_path / "binary.jsonl"
    binary.write_bytes(b"\xff\xfe{\"instruction\": 1}\n")
    line = _error(capsys, tmp_path, monkeypatch, "finetune", "--base", str(bases["gpt2"]), str(binary), *QUICK)
    assert f"{binary}: byte 20 cannot be decoded as utf-16" in line and "re-save the file as UTF-8" in line
    bom = tmp_path / "bom.jsonl"  # Notepad's "UTF-8 with BOM"
    bom.write_text("\ufeff" + json.dumps(ALPACA[0], ensure_ascii=False) + "\n", encoding="utf-8")
    assert detect_format([bom]) == "alpaca"
    assert len(read_examples(bom, "alpaca")) == 1


def test_unknown_lora_targets_list_the_available_ones(bases, tmp_path, capsys, monkeypatch):
    corpus = write_corpus(tmp_path / "corpus")
    line = _error(capsys, tmp_path, monkeypatch, "finetune", "--base", str(bases["gpt2"]), str(corpus), "--lora",
                  "--lora-targets", "q_proj,c_attn", *QUICK)
    assert "--lora-targets q_proj:" in line and "available: c_attn, c_fc, c_proj" in line


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_qlora_on_cpu_is_refused_by_the_cli(bases, tmp_path):
    corpus = write_corpus(tmp_path / "corpus")
    done = _luna(tmp_path, "finetune", "--base", str(bases["gpt2"]), str(corpus), "--qlora")
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert errors == [errors[0]] and "--qlora needs a CUDA GPU" in errors[0]
    assert not (tmp_path / "runs").exists()  # refused before loading or writing anything
