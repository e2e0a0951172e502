"""``luna scan``'s reader on a fixture tree built here: scripts, logs with real-looking tracebacks, Trainer
output with a malicious ``training_args.bin``, notebooks, lunalm run directories, and the hostile cases
(binary, syntax error, symlink loop, FIFO, unreadable file, 50 MB log). The tree is scanned once per
module; each test checks one behaviour of the result."""

from __future__ import annotations

import json
import math
import os
import pickle
import tracemalloc
from pathlib import Path

import pytest

from lunalm.errors import ConfigError, LunaError
from lunalm.runs.scan import Scanner, scan
from lunalm.runs.scan import log_files, reading
from lunalm.runs.scan.classify import FIXES, classify_line
from lunalm.runs.attempt import ERROR_KINDS, OUTCOMES, run_fingerprint

OOM_TRACEBACK = """\
Traceback (most recent call last):
  File "/home/ayse/nanoGPT/train.py", line 301, in <module>
    logits, loss = model(X, Y)
                   ^^^^^^^^^^^
  File "/opt/conda/lib/python3.11/site-packages/torch/nn/modules/module.py", line 1553, in _wrapped_call_impl
    return self._call_impl(*args, **kwargs)
  File "/home/ayse/nanoGPT/model.py", line 59, in forward
    att = F.softmax(att, dim=-1)
torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 1.53 GiB. GPU 0 has a total capacity of 23.64 GiB \
of which 1.02 GiB is free. Including non-PyTorch memory, this process has 22.61 GiB memory in use. If reserved but \
unallocated memory is large try setting PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True to avoid fragmentation.
"""

NANOGPT_TRAIN = """\
import os, time, math
import torch
from model import GPTConfig, GPT

out_dir = 'out-shakespeare'
dataset = 'shakespeare_char'
gradient_accumulation_steps = 5 * 8  # used to simulate larger batch sizes
batch_size = 12
block_size = 1024
n_layer = 12
n_head = 12
n_embd = 768
learning_rate = 6e-4  # max learning rate
max_iters = 600000
device = 'cuda'
dtype = 'bfloat16' if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else 'float16'
exec(open('configurator.py').read())  # overrides from command line or config file

model = GPT(GPTConfig(n_layer=n_layer, n_head=n_head, n_embd=n_embd, block_size=block_size))
model.to(device)
scaler = torch.cuda.amp.GradScaler(enabled=(dtype == 'float16'))
optimizer = model.configure_optimizers(0.1, learning_rate, (0.9, 0.95), 'cuda')
while True:
    for micro_step in range(gradient_accumulation_steps):
        logits, loss = model(X, Y)
        scaler.scale(loss).backward()
    scaler.step(optimizer)
"""

NANOGPT_MODEL = """\
import torch
class GPT(torch.nn.Module):
    def configure_optimizers(self, weight_decay, learning_rate, betas, device_type):
        optim_groups = [{'params': [], 'weight_decay': weight_decay}]
        return torch.optim.AdamW(optim_groups, lr=learning_rate, betas=betas)
"""

SFT_SCRIPT = """\
import torch
from datasets import load_dataset
from peft import LoraConfig
from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig, TrainingArguments
from trl import SFTTrainer

model_id = "TinyLlama/TinyLlama-1.1B-Chat-v1.0"
tokenizer = AutoTokenizer.from_pretrained(model_id)
bnb = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16)
model = AutoModelForCausalLM.from_pretrained(model_id, quantization_config=bnb, device_map="auto")
lora = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules=["q_proj", "v_proj"])
args = TrainingArguments(output_dir="sft-out", per_device_train_batch_size=4, gradient_accumulation_steps=4,
                         learning_rate=2e-4, num_train_epochs=3, fp16=True, optim="paged_adamw_8bit")
trainer = SFTTrainer(model=model, args=args, train_dataset=load_dataset("tatsu-lab/alpaca", split="train"),
                     peft_config=lora)
trainer.train()
"""

EVIL_SCRIPT = """\
import os
import torch
open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "pwned.txt"), "w").write("executed")
__import__("os").system("touch pwned.txt")
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for batch in loader:
    loss = model(batch).loss
    loss.backward()
    optimizer.step()
"""


class Pwn:
    """Unpickling this runs ``exec``: what a malicious ``training_args.bin`` would do."""

    def __init__(self, target: Path):
        self.target = target

    def __reduce__(self):
        return exec, (f"open({str(self.target)!r}, 'w').write('unpickled')",)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def nanogpt_log(val_losses: list[float]) -> str:
    lines = ["number of parameters: 10.65M", "using fused AdamW: True"]
    for index, val in enumerate(val_losses):
        step = index * 250
        lines.append(f"step {step}: train loss {val - 0.05:.4f}, val loss {val:.4f}")
        lines += [f"iter {step + i}: loss {val - 0.04:.4f}, time 80.12ms, mfu 12.50%" for i in range(0, 250, 50)]
    return "\n".join(lines) + "\n"


def build_scripts(root: Path) -> None:
    write(root / "nanogpt" / "train.py", NANOGPT_TRAIN)
    write(root / "nanogpt" / "model.py", NANOGPT_MODEL)
    write(root / "nanogpt" / "train.log", nanogpt_log([4.2, 3.1, 2.4, 2.0, 1.8]))
    write(root / "nanogpt" / "data" / "input.txt", "First Citizen:\nBefore we proceed any further, hear me speak.\n"
          * 200)
    write(root / "sft" / "finetune.py", SFT_SCRIPT)
    write(root / "evil" / "evil.py", EVIL_SCRIPT)
    write(root / "broken" / "train_broken.py", "import torch\ndef train(:\n    loss.backward()\n")
    write(root / "myvenv" / "pyvenv.cfg", "home = /usr/bin\n")
    write(root / "myvenv" / "lib" / "train.py", EVIL_SCRIPT)
    write(root / ".git" / "hooks" / "train.py", EVIL_SCRIPT)


def build_logs(root: Path) -> None:
    logs = root / "logs"
    write(logs / "oom.log", "iter 0: loss 10.9811, time 31205.12ms\niter 10: loss 9.5523, time 520.11ms\n"
          + OOM_TRACEBACK)
    write(logs / "nan.log", "".join(f"{{'loss': {loss}, 'grad_norm': 1.2, 'learning_rate': 4.9e-05, "
                                    f"'epoch': {i / 10}}}\n" for i, loss in enumerate([2.34, 2.1, "nan", "nan"])))
    write(logs / "interrupted.log", "iter 0: loss 4.2000\niter 10: loss 3.9000\n^CTraceback (most recent call "
          "last):\n  File \"train.py\", line 320, in <module>\n    scaler.scale(loss).backward()\nKeyboardInterrupt\n")
    write(logs / "killed.out", "Epoch 1:  12%|#2        | 120/1000 [00:31<03:50, 3.8it/s, loss=2.31]\n"
          "./run.sh: line 4: 48213 Killed                  python train.py --batch_size 64\n")
    write(logs / "shape.err", "Traceback (most recent call last):\n  File \"t.py\", line 3, in <module>\n"
          "RuntimeError: mat1 and mat2 shapes cannot be multiplied (4x768 and 512x768)\n")
    (logs / "core.log").write_bytes(bytes(range(256)) * 64)
    os.mkfifo(logs / "pipe.log")


def build_hf(root: Path, pwned: Path) -> None:
    out = root / "hf" / "gpt2-finetuned"
    history = [{"loss": 3.2 - 0.2 * i, "learning_rate": 5e-05 * (1 - i / 10), "epoch": i / 3, "step": 50 * i}
               for i in range(1, 11)]
    history += [{"eval_loss": 3.0, "epoch": 1.0, "step": 166}, {"eval_loss": 2.6, "epoch": 2.0, "step": 333},
                {"train_runtime": 812.5, "train_loss": 2.4, "epoch": 3.0, "step": 500}]
    state = {"global_step": 500, "max_steps": 500, "epoch": 3.0, "num_train_epochs": 3, "train_batch_size": 8,
             "best_metric": 2.6, "log_history": history}
    write(out / "trainer_state.json", json.dumps(state))
    write(out / "config.json", json.dumps({"_name_or_path": "gpt2", "model_type": "gpt2"}))
    write(out / "README.md", "## Training hyperparameters\n\nThe following hyperparameters were used during "
          "training:\n- learning_rate: 5e-05\n- train_batch_size: 8\n- optimizer: Use OptimizerNames.ADAMW_TORCH "
          "with betas=(0.9,0.999)\n- num_epochs: 3\n")
    (out / "training_args.bin").write_bytes(pickle.dumps(Pwn(pwned)))
    write(out / "checkpoint-250" / "trainer_state.json", json.dumps({**state, "global_step": 250}))
    (out / "checkpoint-250" / "training_args.bin").write_bytes(pickle.dumps(Pwn(pwned)))
    partial = root / "hf" / "partial" / "checkpoint-100"
    write(partial / "trainer_state.json", json.dumps({"global_step": 100, "max_steps": 1000, "epoch": 0.3,
                                                      "log_history": [{"loss": 2.0, "step": 100}]}))
    write(root / "hf" / "badjson" / "trainer_state.json", "{\"global_step\": 10, \"log_history\": [")
    write(root / "hfscript" / "train_sft.py", SFT_SCRIPT)  # output_dir="sft-out"
    write(root / "hfscript" / "sft-out" / "checkpoint-30" / "trainer_state.json",
          json.dumps({"global_step": 30, "max_steps": 30, "log_history": [{"loss": 1.5, "step": 30}]}))


def notebook(cells: list[dict], metadata: dict | None = None) -> str:
    return json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": metadata or {}, "cells": cells})


def code(source: str, outputs: list[dict] | None = None, count: int | None = 1) -> dict:
    return {"cell_type": "code", "execution_count": count, "metadata": {}, "source": source.splitlines(True),
            "outputs": outputs or []}


def build_notebooks(root: Path) -> None:
    error = {"output_type": "error", "ename": "OutOfMemoryError",
             "evalue": "CUDA out of memory. Tried to allocate 256.00 MiB",
             "traceback": ["\x1b[0;31m---------------------------------------------------------------\x1b[0m",
                           "\x1b[0;31mOutOfMemoryError\x1b[0m    Traceback (most recent call last)",
                           "Cell \x1b[0;32mIn[3], line 9\x1b[0m\n----> 9 trainer.train()",
                           "\x1b[0;31mOutOfMemoryError\x1b[0m: CUDA out of memory. Tried to allocate 256.00 MiB"]}
    train_cell = ("model = AutoModelForCausalLM.from_pretrained('microsoft/phi-2')\n"
                  "args = TrainingArguments('out', learning_rate=1e-4, per_device_train_batch_size=16, bf16=True)\n"
                  "trainer = Trainer(model=model, args=args)\ntrainer.train()\n")
    cells = [code("!pip install -q transformers peft\n%matplotlib inline\nimport torch"),
             code("%%bash\nnvidia-smi\n"), {"cell_type": "markdown", "metadata": {}, "source": ["# Fine-tune"]},
             code(train_cell, [{"output_type": "stream", "name": "stderr", "text": ["  0%|  | 0/100 [00:00<?]\n"]},
                               error])]
    write(root / "nb" / "phi2.ipynb", notebook(cells, {"colab": {"gpuType": "T4"}, "accelerator": "GPU"}))
    table = ("<table><thead><tr><th>Step</th><th>Training Loss</th><th>Validation Loss</th></tr></thead><tbody>"
             + "".join(f"<tr><td>{s}</td><td>{t}</td><td>{v}</td></tr>"
                       for s, t, v in [(100, 2.9, 2.8), (200, 2.2, 2.3), (300, 1.9, 2.1)]) + "</tbody></table>")
    shown = {"output_type": "display_data", "metadata": {},
             "data": {"text/html": table, "text/plain": "<IPython.core.display.HTML object>"}}
    write(root / "nb" / "table.ipynb", notebook([code(train_cell, [shown])]))
    write(root / "nb" / "plots.ipynb", notebook([code("import matplotlib\nprint(1)")]))


def build_lunalm_runs(root: Path) -> None:
    """Two run directories written by lunalm's own writers (config dict, RunLogger, summary fields)."""
    import yaml

    from lunalm.config import ModelChoice, RunConfig, TrainConfig, run_config_to_dict
    from lunalm.train.metrics import RunLogger

    for name, status, losses in (("good", "completed", [4.1, 3.6, 3.2, 3.0]),
                                 ("bad", "diverged", [4.1, 9.7, math.nan, math.nan])):
        run_dir = root / "runs" / name
        config = RunConfig(name=name, runs_dir=str(root / "runs"), model=ModelChoice(preset="tiny"),
                           train=TrainConfig(lr=3e-3, micro_batch_size=8, grad_accum_steps=2, max_steps=4))
        write(run_dir / "config.yaml", yaml.safe_dump(run_config_to_dict(config), sort_keys=False))
        with RunLogger(run_dir, tensorboard=False) as logger, pytest.MonkeyPatch.context() as patch:
            patch.setattr(logger, "_redraw", lambda: None)  # loss.png is not read by the scan; skip matplotlib
            for step, loss in enumerate(losses, start=1):
                logger.log_train(step, loss=loss, lr=3e-3)
            logger.log_eval(2, loss=losses[1] + 0.1)
            if status == "diverged":
                logger.event("diverged", 4, "training diverged after 2 rollbacks (loss or gradients not finite)")
        summary = {"status": status, "steps": 4, "total_steps": 4, "tokens_seen": 4096, "n_params": 10_500_000,
                   "device": "CPU (2 threads)", "precision": "fp32", "wall_time_s": 3.5,
                   "best_val_loss": losses[1] + 0.1}
        write(run_dir / "summary.json", json.dumps(summary))
        write(run_dir / "checkpoints" / "final" / "config.json", json.dumps({"model_type": "llama"}))
        write(run_dir / "checkpoints" / "notes.log", OOM_TRACEBACK)  # inside a run: never scanned


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("scan") / "experiments"
    build_scripts(root)
    build_logs(root)
    build_hf(root, root / "unpickled.txt")
    build_notebooks(root)
    build_lunalm_runs(root)
    (root / "loop").mkdir()
    (root / "loop" / "again").symlink_to("..", target_is_directory=True)
    (root / "loop" / "self").symlink_to("self")
    write(root / "logs" / "secret.log", "iter 1: loss 2.0\n").chmod(0)
    return root


@pytest.fixture(scope="module")
def scanned(tree):
    """(attempts by path relative to the tree, scanner, every path opened for reading)."""
    opened: list[str] = []
    real_open = reading.open_binary
    secret = str(tree / "logs" / "secret.log")

    def watched_open(path):
        opened.append(str(path))
        if str(path) == secret and os.geteuid() == 0:  # root reads mode-000 files: simulate the refusal
            raise PermissionError(13, "Permission denied", path)
        return real_open(path)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(reading, "open_binary", watched_open)
        patch.setattr("builtins.open", _refuse_builtin_open(open))
        scanner = Scanner()
        progressed: list[tuple[str, int]] = []
        attempts = list(scanner.scan([str(tree)], progress=lambda path, size: progressed.append((path, size))))
        assert len(progressed) == scanner.stats.files_seen
    os.chmod(tree / "logs" / "secret.log", 0o644)
    return {os.path.relpath(a.path, tree): a for a in attempts}, scanner, opened, attempts


def _refuse_builtin_open(real_open):
    """Every scanned file must go through ``reading.open_binary``; a direct ``open`` of a pickle fails."""
    def guarded(file, *args, **kwargs):
        assert not str(file).endswith(".bin"), f"the scan opened {file}"
        return real_open(file, *args, **kwargs)
    return guarded


def test_nothing_is_executed_or_unpickled(tree, scanned):
    _, _, opened, _ = scanned
    assert not list(tree.rglob("pwned.txt")) and not Path("pwned.txt").exists()
    assert not (tree / "unpickled.txt").exists()
    assert not [path for path in opened if path.endswith(".bin")]


def test_every_attempt_is_well_formed(scanned):
    _, _, _, attempts = scanned
    for attempt in attempts:
        assert attempt.outcome in OUTCOMES and attempt.evidence, attempt
        assert attempt.error_kind is None or attempt.error_kind in ERROR_KINDS
        assert all(kind in ("train", "val") for _, kind, _ in attempt.metrics)
        json.dumps(attempt.extra)  # the registry stores it as JSON
    assert len({a.fingerprint for a in attempts}) == len(attempts)


def test_nanogpt_log_pairs_with_its_script_and_helper(scanned):
    by_path, _, _, _ = scanned
    log = by_path["nanogpt/train.log"]
    assert (log.source, log.outcome) == ("log", "success")
    assert "val loss" in log.evidence and "no error" in log.evidence
    assert (log.lr, log.batch_size, log.grad_accum, log.device) == (6e-4, 12, 40, "cuda")
    assert log.optimizer == "AdamW"  # from model.py's configure_optimizers
    assert log.precision == "bf16" and log.corpus == "shakespeare_char" and log.n_params == 10_650_000
    assert log.extra["script"].endswith("train.py") and log.extra["architecture"]["n_layer"] == 12
    assert log.steps == 1200 and log.best_val_loss == pytest.approx(1.8)
    assert "nanogpt/train.py" not in by_path and "nanogpt/model.py" not in by_path
    assert "nanogpt/data/input.txt" not in by_path  # a corpus file is probed, not reported


def test_script_alone_is_unknown_with_its_settings(scanned):
    sft = scanned[0]["sft/finetune.py"]
    assert (sft.source, sft.outcome) == ("script", "unknown") and "no evidence" in sft.evidence
    assert sft.model == "TinyLlama/TinyLlama-1.1B-Chat-v1.0" and sft.optimizer == "paged_adamw_8bit"
    assert (sft.lr, sft.batch_size, sft.grad_accum, sft.epochs) == (2e-4, 4, 4, 3.0)
    assert (sft.precision, sft.quantization, sft.corpus) == ("fp16", "4bit", "tatsu-lab/alpaca")
    assert sft.lora == {"r": 16, "alpha": 32, "dropout": 0.05, "target_modules": ["q_proj", "v_proj"]}
    assert sft.extra["quant_type"] == "nf4" and sft.extra["device_map"] == "auto"


def test_evil_script_is_read_not_run(scanned):
    evil = scanned[0]["evil/evil.py"]
    assert (evil.optimizer, evil.lr, evil.outcome) == ("SGD", 0.1, "unknown")


@pytest.mark.parametrize("name, kind, status, words", [
    ("oom.log", "cuda-oom", "oom", "CUDA out of memory"),
    ("nan.log", "nan-loss", "diverged", "nan"),
    ("interrupted.log", "keyboard-interrupt", "interrupted", "KeyboardInterrupt"),
    ("killed.out", "killed", "crashed", "Killed"),
    ("shape.err", "shape-error", "crashed", "mat1 and mat2"),
])
def test_failed_logs_name_the_error_and_the_line(scanned, name, kind, status, words):
    attempt = scanned[0][f"logs/{name}"]
    assert (attempt.outcome, attempt.error_kind, attempt.status) == ("failure", kind, status)
    assert words in attempt.evidence and attempt.evidence.startswith(name)
    assert kind in FIXES


def test_oom_log_keeps_the_traceback_and_losses(scanned):
    oom = scanned[0]["logs/oom.log"]
    assert oom.evidence.startswith("oom.log:11: torch.OutOfMemoryError")
    assert oom.metrics == [(0, "train", 10.9811), (10, "train", 9.5523)]
    assert oom.extra["traceback_tail"][-1].startswith("torch.OutOfMemoryError")


def test_hf_trainer_output(scanned):
    by_path, _, _, _ = scanned
    hf = by_path["hf/gpt2-finetuned"]
    assert (hf.source, hf.outcome, hf.status) == ("hf-trainer", "success", "completed")
    assert "reached global_step 500 of max_steps 500" in hf.evidence
    assert (hf.model, hf.lr, hf.batch_size, hf.optimizer, hf.steps) == ("gpt2", 5e-05, 8, "adamw_torch", 500)
    assert (hf.best_val_loss, hf.wall_seconds, hf.epochs) == (2.6, 812.5, 3.0)
    assert (50, "train", 3.0) in hf.metrics and (333, "val", 2.6) in hf.metrics
    assert "never loaded" in hf.extra["training_args_bin"]
    assert not [path for path in by_path if "checkpoint-" in path]
    partial = by_path["hf/partial"]
    assert partial.outcome == "unknown" and "stopped at global_step 100 of max_steps 1000" in partial.evidence
    assert partial.extra["state_from"] == os.path.join("checkpoint-100", "trainer_state.json")


def test_script_lends_its_settings_to_the_output_dir_it_names(scanned):
    by_path = scanned[0]
    out = by_path["hfscript/sft-out"]
    assert (out.source, out.outcome, out.quantization, out.lora["r"]) == ("hf-trainer", "success", "4bit", 16)
    assert out.model == "TinyLlama/TinyLlama-1.1B-Chat-v1.0" and out.extra["script"].endswith("train_sft.py")
    assert "hfscript/train_sft.py" not in by_path


def test_notebooks(scanned):
    by_path, _, _, _ = scanned
    phi = by_path["nb/phi2.ipynb"]
    assert (phi.outcome, phi.error_kind) == ("failure", "cuda-oom")
    assert phi.evidence.startswith("phi2.ipynb cell 4 output")
    assert (phi.model, phi.lr, phi.batch_size, phi.precision, phi.device) == ("microsoft/phi-2", 1e-4, 16, "bf16", "T4")
    table = by_path["nb/table.ipynb"]
    assert table.outcome == "success" and (300, "val", 2.1) in table.metrics and table.steps == 300
    assert "nb/plots.ipynb" not in by_path  # no training code, no training output


def test_lunalm_run_directories(scanned, tree):
    by_path, _, _, _ = scanned
    good, bad = by_path["runs/good"], by_path["runs/bad"]
    assert good.fingerprint == run_fingerprint(str(tree / "runs" / "good"))
    assert (good.outcome, good.status, good.model, good.lr, good.batch_size, good.grad_accum) == \
        ("success", "completed", "tiny", 3e-3, 8, 2)
    assert (good.steps, good.n_params, good.final_train_loss, good.optimizer) == (4, 10_500_000, 3.0, "AdamW")
    assert "summary.json: status completed" in good.evidence
    assert (bad.outcome, bad.status, bad.error_kind) == ("failure", "diverged", "nan-loss")
    assert "training diverged" in bad.error_message and math.isnan(bad.final_train_loss)
    assert not [path for path in by_path if path.startswith("runs/good/")]  # checkpoints are not attempts


def test_malformed_and_hostile_files_are_skipped_with_reasons(scanned, tree):
    _, scanner, _, _ = scanned
    reasons = {os.path.relpath(path, tree): reason for path, reason in scanner.stats.skipped}
    assert reasons["broken/train_broken.py"].startswith("syntax error at line 2")
    assert reasons["logs/core.log"].startswith("binary file")
    assert reasons["logs/pipe.log"].startswith("not a regular file")
    assert reasons["loop/again"] == "symlinked directory not followed"
    assert reasons["loop/self"].startswith("symlinked link")
    assert reasons["logs/secret.log"] == "permission denied"
    assert reasons["hf/badjson/trainer_state.json"].startswith("invalid JSON")
    by_path = scanned[0]
    assert not [path for path in by_path if path.startswith(("myvenv", ".git", "loop"))]


def test_stats_count_what_was_seen(scanned):
    _, scanner, _, attempts = scanned
    stats = scanner.stats
    assert stats.attempts == len(attempts) and stats.files_seen > 30 and stats.bytes_read > 10_000


def test_rescan_is_idempotent(tree, scanned):
    def key(attempt):  # repr: NaN losses compare equal as text
        return repr((attempt.fingerprint, attempt.outcome, attempt.evidence, attempt.metrics, attempt.lr))

    first = [key(a) for a in scanned[3]]
    os.chmod(tree / "logs" / "secret.log", 0o644)  # readable now: one more attempt, the others unchanged
    second = {a.fingerprint: key(a) for a in scan([str(tree)])}
    assert all(item in second.values() for item in first)
    assert len(second) == len(first) + 1
    again = [a.fingerprint for a in scan([str(tree), str(tree / "logs")])]  # overlapping roots: no duplicates
    assert sorted(again) == sorted(second)


def test_missing_path_is_a_user_error(tmp_path):
    with pytest.raises(ConfigError, match="nowhere: no such file or directory") as error:
        Scanner().scan([str(tmp_path / "nowhere")])
    assert isinstance(error.value, LunaError)


def test_single_file_argument(tree):
    attempts = list(scan([str(tree / "logs" / "oom.log")]))
    assert [a.error_kind for a in attempts] == ["cuda-oom"]


@pytest.mark.parametrize("line, kind", [
    ("RuntimeError: CUDA error: out of memory", "cuda-oom"),
    ("[rank0]: torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 MiB", "cuda-oom"),
    ("RuntimeError: [enforce fail at alloc_cpu.cpp:114] . DefaultCPUAllocator: can't allocate memory: "
     "you tried to allocate 8589934592 bytes.", "cpu-oom"),
    ("MemoryError", "cpu-oom"),
    ("ValueError: Loss is NaN, stopping training", "nan-loss"),
    ("RuntimeError: Function 'LogSoftmaxBackward0' returned nan values in its 0th output.", "nan-loss"),
    ("ModuleNotFoundError: No module named 'bitsandbytes'", "import-error"),
    ("RuntimeError: Error(s) in loading state_dict for GPT: size mismatch for lm_head.weight", "shape-error"),
    ("RuntimeError: expected scalar type Half but found Float", "dtype-error"),
    ("FileNotFoundError: [Errno 2] No such file or directory: 'data/train.bin'", "file-not-found"),
    ("Killed", "killed"),
    ("iter 100: loss 2.345, time 80.1ms, mfu 12.5%", None),
    ("using device: cuda, information about the run", None),
])
def test_classify_line(line, kind):
    assert classify_line(line, in_traceback=True) == kind


def test_generic_exception_counts_only_inside_a_traceback():
    assert classify_line("ValueError: bad value", in_traceback=True) == "other-exception"
    assert classify_line("ValueError: bad value", in_traceback=False) is None
    assert set(FIXES) == set(ERROR_KINDS)


def test_line_numbers_count_newlines_and_overlong_lines_are_cut():
    from lunalm.runs.scan.reading import MAX_LINE_CHARS, _numbered

    pieces = ["a\nb" + "x" * (MAX_LINE_CHARS + 10), "yyy\nbar 1%\rbar 2%", "\r\nlast"]
    assert list(_numbered(iter(pieces))) == [(1, "a"), (2, "b" + "x" * (MAX_LINE_CHARS - 1)), (3, "bar 1%"),
                                            (3, "bar 2%"), (3, ""), (4, "last")]


def test_a_text_file_without_training_lines_is_given_up_early(tmp_path):
    (tmp_path / "blob.txt").write_text("QUJD" * 3_000_000)  # 12 MB on one line
    (tmp_path / "corpus.txt").write_text("Ankara'da sabah.\n" * 400_000)  # 6.8 MB of prose
    scanner = Scanner()
    assert list(scanner.scan([str(tmp_path)])) == []
    assert scanner.stats.bytes_read < 2 * (log_files.PROBE_BYTES + 2**20)


def test_fifty_megabyte_log_in_bounded_memory(tmp_path):
    """Head and tail of a 50 MB log are read, streamed; the crash at its end is still found."""
    path = tmp_path / "huge.log"
    block = "".join(f"  5%|5         | {i}/1000 [00:05<01:35, 10.0it/s, loss={2.5 - i / 1000:.4f}]\n"
                    for i in range(1000)).encode()
    with open(path, "wb") as handle:
        handle.write(b"number of parameters: 124.44M\n")
        for _ in range(50 * 2**20 // len(block) + 1):
            handle.write(block)
        handle.write(OOM_TRACEBACK.encode())
    assert path.stat().st_size > 50 * 2**20
    scanner = Scanner()
    tracemalloc.start()
    try:
        attempts = list(scanner.scan([str(path)]))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 * 2**20, f"peak {peak / 2**20:.1f} MB"
    (attempt,) = attempts
    assert (attempt.error_kind, attempt.n_params) == ("cuda-oom", 124_440_000)
    assert attempt.extra["skipped_middle_bytes"] > 30 * 2**20
    assert scanner.stats.bytes_read <= reading.LOG_HEAD_BYTES + reading.LOG_TAIL_BYTES
    assert len(attempt.metrics) <= 2 * 1000 + 1
