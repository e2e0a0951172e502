"""What a ``luna finetune`` leaves for its user: a LoRA adapter that loads from anywhere, validation on a
single text file, a summary that names only files that exist, chat-template samples decoded with a KV
cache."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import TURKISH, run_luna
from tests.finetune.fthelp import ALPACA, CHAT, tiny_base, write_jsonl

QUICK = ["--context", "32", "--batch-size", "4", "--device", "cpu", "--max-steps", "2", "--lr", "1e-2"]


@pytest.fixture(scope="module")
def gpt2(tmp_path_factory) -> Path:
    return tiny_base(tmp_path_factory.mktemp("base") / "tiny-gpt2", "gpt2")


def test_lora_adapter_records_an_absolute_base_that_loads_from_another_folder(gpt2, tmp_path):
    from transformers import AutoModelForCausalLM

    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "tiny-gpt2").symlink_to(gpt2)  # typed as a relative path: hf/tiny-gpt2
    data = write_jsonl(tmp_path / "alpaca.jsonl", ALPACA)
    done = run_luna("finetune", "--base", "hf/tiny-gpt2", str(data), "--lora", "--name", "ad", "--quiet",
                    *QUICK, "--context", "96", "--sample-every", "0", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    final = tmp_path / "runs" / "ad" / "checkpoints" / "final"
    config = json.loads((final / "adapter" / "adapter_config.json").read_text(encoding="utf-8"))
    assert config["base_model_name_or_path"] == str((tmp_path / "hf" / "tiny-gpt2").resolve())
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    script = ("import sys, torch\nfrom peft import AutoPeftModelForCausalLM\n"
              "model = AutoPeftModelForCausalLM.from_pretrained(sys.argv[1]).eval()\n"
              "torch.save(model(input_ids=torch.tensor([[5, 6, 7, 8]])).logits, sys.argv[2])\n")
    proc = subprocess.run([sys.executable, "-c", script, str(final / "adapter"), str(tmp_path / "logits.pt")],
                          cwd=elsewhere, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr
    merged = AutoModelForCausalLM.from_pretrained(str(final)).eval()
    with torch.no_grad():
        expected = merged(input_ids=torch.tensor([[5, 6, 7, 8]])).logits
    torch.testing.assert_close(torch.load(tmp_path / "logits.pt", weights_only=True), expected,
                               rtol=0, atol=1e-5)


def test_a_single_text_file_gets_a_validation_split_and_quiet_prints_the_run_folder(gpt2, tmp_path):
    text = tmp_path / "book.txt"
    text.write_text("\n\n".join(TURKISH * 3), encoding="utf-8")  # one file = one document
    done = run_luna("finetune", "--base", str(gpt2), str(text), "--name", "one", "--quiet", "--eval-every", "2",
                    "--sample-every", "0", *QUICK, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "runs/one\n"
    summary = json.loads((tmp_path / "runs" / "one" / "summary.json").read_text(encoding="utf-8"))
    assert summary["best_val_loss"] is not None and summary["best_step"] == 2
    assert (tmp_path / "runs" / "one" / "loss.png").is_file()


def test_summary_names_loss_png_only_when_it_was_drawn(gpt2, tmp_path):
    text = tmp_path / "word.txt"
    text.write_text("Ankara" * 40, encoding="utf-8")  # one unbreakable document: no validation text
    done = run_luna("finetune", "--base", str(gpt2), str(text), "--name", "nov", "--sample-every", "0", *QUICK,
                    cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "runs" / "nov" / "loss.png").exists()
    curves = [line for line in done.stdout.splitlines() if line.strip().startswith("curves")]
    assert curves == ["  curves         (tensorboard --logdir runs/nov/tb)"]


def test_instruction_finetune_samples_through_its_chat_template_and_suggests_luna_chat(gpt2, tmp_path):
    data = write_jsonl(tmp_path / "chat.jsonl", CHAT)
    done = run_luna("finetune", "--base", str(gpt2), str(data), "--lora", "--name", "ch", *QUICK,
                    "--context", "96", "--sample-every", "2", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    samples = (tmp_path / "runs" / "ch" / "samples.md").read_text(encoding="utf-8")
    # the prompt of a training example, up to its first answer: system and user turns, then the
    # generation prompt of lunalm's default template
    assert "**### system:\nKısa cevap ver.<|endoftext|>\n### user:\nSelam!<|endoftext|>\n### assistant:\n**" \
        in samples
    assert "Türkiye" not in samples
    assert "luna chat runs/ch/checkpoints/" in done.stdout and "luna generate" not in done.stdout
    # told apart from its base in the registry, the report and a scan of the run folder
    listed = run_luna("runs", "list", cwd=tmp_path)
    assert "tiny-gpt2 + LoRA on chat.jsonl" in listed.stdout, listed.stdout
    assert run_luna("report", "--out", "report.md", cwd=tmp_path).returncode == 0
    assert "tiny-gpt2 + LoRA on chat.jsonl" in (tmp_path / "report.md").read_text(encoding="utf-8")
    scanned = run_luna("scan", "runs/ch", "--registry", "other.sqlite", "--quiet", cwd=tmp_path)
    assert scanned.returncode == 0, scanned.stderr
    rows = json.loads(run_luna("runs", "list", "--registry", "other.sqlite", "--json", cwd=tmp_path).stdout)
    assert [row["model"] for row in rows] == ["tiny-gpt2 + LoRA on chat.jsonl"]


def test_model_labels_tell_fine_tunes_from_their_base():
    from lunalm.runs.attempt import model_label

    assert model_label({"model": {"preset": "tiny"}, "corpus": {"paths": ["books"]}}) == "tiny"
    tuned = {"model": {"preset": "nano"}, "corpus": {"paths": ["data/a.jsonl", "b/"]},
             "finetune": {"base": "/m/gpt2", "lora": False, "quantize": "none"}}
    assert model_label(tuned) == "gpt2 + full fine-tune on a.jsonl, b"
    tuned["finetune"].update(lora=True, quantize="4bit")
    assert model_label(tuned) == "gpt2 + QLoRA on a.jsonl, b"


@pytest.mark.parametrize("lora", [False, True])
def test_hf_models_decode_with_a_kv_cache_and_match_uncached_greedy(gpt2, lora):
    from transformers import AutoModelForCausalLM

    from lunalm.finetune.adapter import HFCausalLM
    from lunalm.generate import SamplingConfig, generate_ids

    inner = AutoModelForCausalLM.from_pretrained(str(gpt2)).eval()
    if lora:
        from peft import LoraConfig, get_peft_model

        inner = get_peft_model(inner, LoraConfig(r=4, target_modules=["c_attn"], fan_in_fan_out=True))
    model = HFCausalLM(inner, base=str(gpt2), lora=lora).eval()  # generate_ids restores this mode
    seen = []
    embedding = inner.get_input_embeddings()
    handle = embedding.register_forward_hook(lambda module, args, out: seen.append(args[0].shape[1]))
    prompt = [5, 17, 42, 99, 3]
    greedy = SamplingConfig(max_new_tokens=20, temperature=1.0, top_k=1)
    ours = generate_ids(model, prompt, greedy, stop_id=None)
    handle.remove()
    assert seen == [len(prompt)] + [1] * 19  # one prefill, then one position per new token
    ids = list(prompt)  # greedy without a cache: the whole text re-run at every step
    with torch.no_grad():
        for _ in range(20):
            ids.append(int(inner(input_ids=torch.tensor([ids]), use_cache=False).logits[0, -1].argmax()))
    assert ours == ids[len(prompt):]


def test_finetune_reads_a_hub_dataset_from_the_hf_cache(gpt2, tmp_path):
    pytest.importorskip("pyarrow")
    from tests.corpus.test_tables import _hub_cache

    _hub_cache(tmp_path / "hf", "lunalm-test/sozler")
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}
    done = run_luna("finetune", "--base", str(gpt2), "--hf-dataset", "lunalm-test/sozler:tr", "--text-field",
                    "content", "--name", "hub", "--quiet", "--sample-every", "0", *QUICK, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    config = json.loads((tmp_path / "runs" / "hub" / "checkpoints" / "final" / "lunalm.json").read_text())["config"]
    assert [Path(p).name for p in config["corpus"]["paths"]] == ["train-00000-of-00001.parquet"]  # tr/train


# --- Hub ids through the Hugging Face cache --------------------------------------------------------
def _hub_model_cache(home: Path, repo_id: str, folder: Path) -> None:
    """``folder``'s files laid out as huggingface_hub caches a downloaded model (refs/main -> snapshot)."""
    import shutil

    repo = home / "hub" / f"models--{repo_id.replace('/', '--')}"
    commit = "89abcdef0123456789abcdef0123456789abcdef"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    shutil.copytree(folder, repo / "snapshots" / commit)


def _offline(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}
    env.pop("HF_HUB_CACHE", None)
    return run_luna(*args, cwd=tmp_path, env=env)


def _error_line(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, done.stderr
    return lines[0]


def test_base_as_a_hub_id_through_the_hf_cache_offline(gpt2, tmp_path):
    _hub_model_cache(tmp_path / "hf", "lunalm-test/tiny-gpt2", gpt2)
    data = write_jsonl(tmp_path / "alpaca.jsonl", ALPACA)
    done = _offline(tmp_path, "finetune", "--base", "lunalm-test/tiny-gpt2", str(data), "--lora", "--name", "hub",
                    "--quiet", "--sample-every", "0", *QUICK, "--context", "96")
    assert done.returncode == 0, done.stderr
    final = tmp_path / "runs" / "hub" / "checkpoints" / "final"
    adapter = json.loads((final / "adapter" / "adapter_config.json").read_text(encoding="utf-8"))
    assert adapter["base_model_name_or_path"] == "lunalm-test/tiny-gpt2"  # peft finds it the same way
    config = json.loads((final / "lunalm.json").read_text(encoding="utf-8"))["config"]
    assert config["finetune"]["base"] == "lunalm-test/tiny-gpt2"
    line = _error_line(_offline(tmp_path, "finetune", "--base", "nobody/nothing", str(data), *QUICK))
    assert line == (f"error: --base nobody/nothing: no such local path, and model nobody/nothing is not in the "
                    f"Hugging Face cache ({tmp_path / 'hf' / 'hub'}); HF_HUB_OFFLINE=1 forbids downloading it; "
                    "run once online, or `huggingface-cli download nobody/nothing`")


def test_tokenizer_path_as_a_hub_id_through_the_hf_cache_offline(gpt2, tmp_path):
    from tests.train.runhelp import write_corpus

    _hub_model_cache(tmp_path / "hf", "lunalm-test/tiny-gpt2", gpt2)
    corpus = write_corpus(tmp_path / "corpus")
    done = _offline(tmp_path, "train", str(corpus), "--tokenizer-path", "lunalm-test/tiny-gpt2", "--name", "tok",
                    "--max-steps", "1", "--context", "32", "--batch-size", "2", "--device", "cpu", "--quiet",
                    "--sample-every", "0")
    assert done.returncode == 0, done.stderr
    saved = tmp_path / "runs" / "tok" / "checkpoints" / "final" / "tokenizer.json"
    assert json.loads(saved.read_text(encoding="utf-8"))["model"]["vocab"] == \
        json.loads((gpt2 / "tokenizer.json").read_text(encoding="utf-8"))["model"]["vocab"]
    line = _error_line(_offline(tmp_path, "train", str(corpus), "--tokenizer-path", "nobody/tok", "--max-steps", "1"))
    assert line.startswith("error: --tokenizer-path nobody/tok: no such local path, and model nobody/tok is not "
                           "in the Hugging Face cache") and "HF_HUB_OFFLINE=1" in line
