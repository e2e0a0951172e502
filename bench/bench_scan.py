"""``luna scan`` throughput and memory: lunalm's scanner vs a bare read of every byte of the same tree.

Input: a generated tree of ``--files`` files (default 10,000) in four quarters ``q0..q3``, folders of ten
files each, written once into the bench cache: nanoGPT-style folders (train.py, model.py, prepare.py,
train.log, a corpus .txt, a .bin checkpoint, ...), Hugging Face Trainer folders (a script, an output
folder with trainer_state.json, config.json, a pickled training_args.bin, a checkpoint), notebook
folders, and every 40th folder a large log (``--big-mb`` MB). Logs end in a mix of clean finishes, CUDA
OOM and NaN failures, KeyboardInterrupts.

* lunalm: ``Scanner().scan([tree])``, attempts counted and dropped (as the CLI hands each to the registry).
* peer: ``os.walk`` + ``open(f, "rb").read()`` of every file: the I/O floor of any scanner, parsing nothing.

Each path runs in a fresh subprocess that reports its wall time and its peak RSS (VmHWM) and RSS after
imports; the scan runs on the whole tree and on one quarter (2,500 files), to show that lunalm's peak
memory does not grow with the tree. MB/s counts the tree's bytes on disk for both (lunalm reads fewer:
it never opens binaries and reads only the head and tail of a huge log); the ratio is lunalm / peer.

    python bench/bench_scan.py                 # 10,000 files
    python bench/bench_scan.py --files 2000    # quick smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
from bench_data import current_rss_mb, peak_rss_mb  # noqa: E402

FILES_PER_FOLDER = 10
BIG_LOG_EVERY = 40  # folders
TREE_VERSION = 1


# --- the generated tree ---------------------------------------------------------------------------
def nanogpt_script(rng: random.Random) -> str:
    return (f"import torch\nfrom model import GPT, GPTConfig\nout_dir = 'out'\nbatch_size = {rng.choice([8, 12, 32])}\n"
            f"block_size = {rng.choice([256, 512, 1024])}\nlearning_rate = {rng.choice([6e-4, 1e-3, 3e-4])}\n"
            f"gradient_accumulation_steps = {rng.choice([1, 4, 40])}\nmax_iters = 5000\ndevice = 'cuda'\n"
            "dtype = 'bfloat16' if torch.cuda.is_bf16_supported() else 'float16'\n"
            "optimizer = model.configure_optimizers(0.1, learning_rate, (0.9, 0.95), 'cuda')\n"
            "for it in range(max_iters):\n    loss = model(X, Y)[1]\n    loss.backward()\n    optimizer.step()\n") * 3


def hf_script(rng: random.Random) -> str:
    return ("from transformers import AutoModelForCausalLM, TrainingArguments, Trainer\nfrom peft import LoraConfig\n"
            f"model = AutoModelForCausalLM.from_pretrained('{rng.choice(['gpt2', 'EleutherAI/pythia-160m'])}')\n"
            f"lora = LoraConfig(r={rng.choice([8, 16])}, lora_alpha=32, target_modules=['q_proj', 'v_proj'])\n"
            f"args = TrainingArguments('out', learning_rate={rng.choice([2e-5, 5e-5])}, per_device_train_batch_size="
            f"{rng.choice([4, 8])}, num_train_epochs=3, bf16=True)\nTrainer(model=model, args=args).train()\n")


def training_log(rng: random.Random, lines: int) -> str:
    loss, out = 4.5, ["number of parameters: 10.65M"]
    for step in range(lines):
        loss = max(0.8, loss - rng.random() * 0.01)
        out.append(f"iter {step * 10}: loss {loss:.4f}, time {80 + rng.random() * 5:.2f}ms, mfu 12.50%")
        if step % 50 == 0:
            out.append(f"step {step * 10}: train loss {loss:.4f}, val loss {loss + 0.1:.4f}")
    ending = rng.choice(["", "", "oom", "nan", "interrupt"])
    if ending == "oom":
        out += ["Traceback (most recent call last):", '  File "train.py", line 300, in <module>',
                "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 1.53 GiB."]
    elif ending == "nan":
        out += [f"iter {lines * 10 + i}: loss nan, time 80.00ms" for i in range(3)]
    elif ending == "interrupt":
        out += ["Traceback (most recent call last):", '  File "train.py", line 310', "KeyboardInterrupt"]
    return "\n".join(out) + "\n"


def trainer_state(rng: random.Random) -> str:
    history = [{"loss": 3.0 - i * 0.01, "learning_rate": 5e-5, "epoch": i / 100, "step": i * 10} for i in range(200)]
    history.append({"eval_loss": 2.1, "step": 2000, "epoch": 2.0})
    return json.dumps({"global_step": 2000, "max_steps": rng.choice([2000, 4000]), "epoch": 2.0,
                       "num_train_epochs": 3, "train_batch_size": 8, "log_history": history}, indent=2)


def notebook(rng: random.Random) -> str:
    outputs = [{"output_type": "stream", "name": "stdout",
                "text": [f"Epoch {e}: loss {3 - e * 0.2:.3f}\n" for e in range(10)]}]
    cells = [{"cell_type": "code", "execution_count": 1, "metadata": {}, "outputs": outputs,
              "source": hf_script(rng).splitlines(True)},
             {"cell_type": "markdown", "metadata": {}, "source": ["# notes\n" * 20]}]
    return json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": cells}, indent=1)


def prose(rng: random.Random, kb: int) -> str:
    words = ["the", "model", "learns", "from", "text", "and", "every", "epoch", "brings", "it", "closer"]
    return "\n".join(" ".join(rng.choice(words) for _ in range(16)) for _ in range(kb * 12)) + "\n"


def folder_files(rng: random.Random, kind: str) -> dict[str, str | bytes]:
    """Ten files of one experiment folder."""
    if kind == "nanogpt":
        return {"train.py": nanogpt_script(rng), "model.py": "import torch\ndef configure_optimizers(lr):\n"
                "    return torch.optim.AdamW([], lr=lr)\n", "prepare.py": "import numpy as np\nprint('ok')\n",
                "train.log": training_log(rng, rng.randint(100, 600)), "input.txt": prose(rng, 20),
                "ckpt.bin": rng.randbytes(20_000), "loss.png": b"\x89PNG" + rng.randbytes(8_000),
                "README.md": prose(rng, 2), "config.json": '{"n_layer": 6}', "notes.md": prose(rng, 1)}
    if kind == "hf":
        return {"finetune.py": hf_script(rng), "out/trainer_state.json": trainer_state(rng),
                "out/config.json": '{"_name_or_path": "gpt2", "model_type": "gpt2"}',
                "out/training_args.bin": rng.randbytes(5_000), "out/README.md": prose(rng, 1),
                "out/checkpoint-1000/trainer_state.json": trainer_state(rng),
                "out/checkpoint-1000/config.json": "{}", "run.log": training_log(rng, rng.randint(50, 200)),
                "requirements.txt": "torch\ntransformers\npeft\n", "eval.jsonl": '{"loss": 2.0}\n' * 50}
    return {"a.ipynb": notebook(rng), "b.ipynb": notebook(rng), "data.txt": prose(rng, 10),
            "plot.py": "import matplotlib\n", "helper.py": "def train(model):\n    model.train()\n",
            "out.log": training_log(rng, 80), "c.ipynb": notebook(rng), "weights.bin": rng.randbytes(10_000),
            "notes.md": prose(rng, 1), "params.json": "{}"}


def build_tree(files: int, big_mb: float) -> Path:
    """The tree (written once per size into the bench cache); returns its root."""
    root = common.cache_root() / f"scan-tree-v{TREE_VERSION}-{files}-{big_mb:g}mb"
    if (root / "done.json").is_file():
        return root
    rng = random.Random(1337)
    folders = files // FILES_PER_FOLDER
    for index in range(folders):
        folder = root / f"q{index * 4 // folders}" / f"exp-{index:05d}"
        kind = ("nanogpt", "hf", "notebook")[index % 3]
        contents = folder_files(rng, kind)
        if index % BIG_LOG_EVERY == 0:  # a big log in place of the small one
            contents[next(name for name in contents if name.endswith(".log"))] = big_log(rng, big_mb)
        for name, content in contents.items():
            path = folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content if isinstance(content, bytes) else content.encode())
    (root / "done.json").write_text(json.dumps({"files": folders * FILES_PER_FOLDER}))
    return root


def big_log(rng: random.Random, mb: float) -> str:
    block = training_log(rng, 2000)
    return block * max(1, round(mb * 1e6 / len(block)))


def tree_bytes(root: Path) -> tuple[int, int]:
    count = size = 0
    for folder, _, names in os.walk(root):
        for name in names:
            if name != "done.json":
                count, size = count + 1, size + os.path.getsize(os.path.join(folder, name))
    return count, size


# --- workers (each runs in a fresh subprocess) ----------------------------------------------------
def work_lunalm(root: str) -> dict:
    from lunalm.runs.scan import Scanner  # imported before the baseline, as the peer has nothing to import

    baseline = current_rss_mb()
    scanner = Scanner()
    started = time.perf_counter()
    attempts = sum(1 for _ in scanner.scan([root]))
    stats = scanner.stats
    return {"seconds": time.perf_counter() - started, "baseline_rss_mb": baseline, "attempts": attempts,
            "files_seen": stats.files_seen, "bytes_read": stats.bytes_read, "skipped": stats.skipped_total}


def work_peer(root: str) -> dict:
    baseline = current_rss_mb()
    started = time.perf_counter()
    files = size = 0
    for folder, _, names in os.walk(root):
        for name in names:
            with open(os.path.join(folder, name), "rb") as handle:
                size += len(handle.read())
            files += 1
    return {"seconds": time.perf_counter() - started, "baseline_rss_mb": baseline, "files_seen": files,
            "bytes_read": size}


WORKERS = {"lunalm": work_lunalm, "peer": work_peer}


def run_worker(name: str, root: Path) -> dict:
    command = [sys.executable, __file__, "--worker", name, "--worker-root", str(root)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=True)
    except subprocess.CalledProcessError as error:
        sys.exit(f"worker {name} failed:\n{error.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- the benchmark --------------------------------------------------------------------------------
def measure(args) -> list[dict]:
    root = build_tree(args.files, args.big_mb)
    rows = []
    for label, target in (("quarter", root / "q0"), ("full", root)):
        files, size = tree_bytes(target)
        for repeat in range(args.repeats):
            for name in ("peer", "lunalm"):  # interleaved, so both see the same page cache and load
                result = run_worker(name, target)
                result.update(path=name, tree=label, files=files, tree_mb=size / 1e6, repeat=repeat,
                              files_per_s=files / result["seconds"], mb_per_s=size / 1e6 / result["seconds"])
                rows.append(result)
                print(f"  {name:<7} {label:<8} {files:6d} files {size / 1e6:7.1f} MB  {result['seconds']:6.2f} s  "
                      f"{result['mb_per_s']:7.1f} MB/s  peak RSS {result['peak_rss_mb']:.0f} MB", flush=True)
    return rows


def best(rows: list[dict], path: str, tree: str) -> dict:
    return min((r for r in rows if r["path"] == path and r["tree"] == tree), key=lambda r: r["seconds"])


def report(rows: list[dict]) -> dict:
    summary = []
    for tree in ("quarter", "full"):
        for path in ("lunalm", "peer"):
            row = best(rows, path, tree)
            summary.append({**row, "growth_mb": row["peak_rss_mb"] - row["baseline_rss_mb"]})
    print()
    common.print_table(summary, [("path", "path", ""), ("tree", "tree", ""), ("files", "files", ","),
                                 ("tree_mb", "tree MB", ".1f"), ("bytes_read", "bytes read", ","),
                                 ("attempts", "attempts", ","), ("seconds", "seconds", ".2f"),
                                 ("files_per_s", "files/s", ",.0f"), ("mb_per_s", "MB/s", ".1f"),
                                 ("baseline_rss_mb", "RSS after import MB", ".0f"),
                                 ("peak_rss_mb", "peak RSS MB", ".0f"), ("growth_mb", "peak - import MB", ".0f")])
    luna, peer = best(rows, "lunalm", "full"), best(rows, "peer", "full")
    throughput = common.ratio(luna["mb_per_s"], peer["mb_per_s"])
    peaks = [best(rows, "lunalm", tree)["peak_rss_mb"] for tree in ("quarter", "full")]
    print(f"\nMB/s ratio lunalm / peer (bare os.walk + read) on {luna['files']:,} files: {throughput:.3f}")
    print(f"lunalm peak RSS at {best(rows, 'lunalm', 'quarter')['files']:,} and {luna['files']:,} files: "
          f"{peaks[0]:.0f} MB and {peaks[1]:.0f} MB")
    return {"summary": summary, "ratio_lunalm_over_peer": throughput, "lunalm_peak_rss_mb": peaks}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=10_000, help="files in the generated tree (default 10,000)")
    parser.add_argument("--big-mb", type=float, default=3.0, help="size of each large log in MB")
    parser.add_argument("--repeats", type=int, default=1, help="runs per path and size; the fastest counts")
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--worker-root", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        result = WORKERS[args.worker](args.worker_root)
        print(json.dumps({**result, "peak_rss_mb": peak_rss_mb()}))
        return
    print(f"bench_scan: {args.files:,} files, each path in a fresh subprocess")
    rows = measure(args)
    summary = report(rows)
    path = common.write_json("bench_scan", {"args": vars(args), "rows": rows, **summary})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
