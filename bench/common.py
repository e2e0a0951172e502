"""Shared helpers of the benchmarks: output JSON, tables, the cache directory, the shared tokenizer.

Benchmarks are not tests: each script measures lunalm and a peer in the same process (or in fresh
subprocesses of the same script), on the same machine, and prints the ratio. Absolute numbers from a
shared or busy machine mean little; the ratio taken in one run is what the goals refer to.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
OUT_DIR = BENCH_DIR / "out"  # git-ignored


def cache_root() -> Path:
    """Where generated inputs (replicated corpus, trained tokenizers, token shards) are kept between runs:
    $LUNALM_BENCH_CACHE, else <tmp>/lunalm-bench."""
    root = Path(os.environ.get("LUNALM_BENCH_CACHE") or Path(tempfile.gettempdir()) / "lunalm-bench")
    root.mkdir(parents=True, exist_ok=True)
    return root


def machine_info() -> dict:
    """What the numbers were measured on, including the load (other users share this machine)."""
    info = {"python": platform.python_version(), "platform": platform.platform(),
            "cpu_count": os.cpu_count(), "load_average": list(os.getloadavg()),
            "time": time.strftime("%Y-%m-%d %H:%M:%S")}
    for module in ("torch", "transformers", "tokenizers"):
        if module in sys.modules:
            info[module] = getattr(sys.modules[module], "__version__", "?")
    if "torch" in sys.modules:
        info["torch_threads"] = sys.modules["torch"].get_num_threads()
    return info


def write_json(name: str, payload: dict) -> Path:
    """bench/out/<name>.json with the machine description added."""
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    path = OUT_DIR / f"{name}.json"
    record = {"benchmark": name, "machine": machine_info(), **payload}
    path.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def print_table(rows: list[dict], columns: list[tuple[str, str, str]]) -> None:
    """Rows as an aligned text table; ``columns`` are (key, header, format spec)."""
    cells = [[header for _, header, _ in columns]]
    for row in rows:
        cells.append([_cell(row.get(key), spec) for key, _, spec in columns])
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    for number, line in enumerate(cells):
        print("  ".join(text.rjust(width) if i else text.ljust(width)
                        for i, (text, width) in enumerate(zip(line, widths))))
        if number == 0:
            print("  ".join("-" * width for width in widths))


def _cell(value, spec: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, (int, float)) and spec:
        return format(value, spec)
    return str(value)


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if not numerator or not denominator:
        return None
    return numerator / denominator


def verdict(value: float | None, goal: float, higher_is_better: bool = True) -> str:
    if value is None:
        return "n/a"
    met = value >= goal if higher_is_better else value <= goal
    return "meets goal" if met else "misses goal"


def builtin_texts() -> list[str]:
    """The built-in corpus as lunalm cleans it (the texts a tokenizer is trained on)."""
    from lunalm.config import CorpusConfig
    from lunalm.corpus import Corpus

    return [document.text for document in Corpus(CorpusConfig()).documents()]


def bench_tokenizer(kind: str = "bpe", vocab_size: int = 8192):
    """A lunalm tokenizer trained once on the built-in corpus and cached (BPE of ``vocab_size`` or char)."""
    from lunalm.tokenizer import Tokenizer, train_bpe, train_char

    directory = cache_root() / (f"tokenizer-bpe-{vocab_size}" if kind == "bpe" else "tokenizer-char")
    if (directory / "tokenizer.json").is_file():
        return Tokenizer.load(directory / "tokenizer.json")
    texts = builtin_texts()
    tokenizer = train_bpe(texts, vocab_size=vocab_size) if kind == "bpe" else train_char(texts)
    tokenizer.save(directory)
    return tokenizer


def cpu_training_step(preset: str, vocab: int, batch: int, context: int):
    """(model, step) for timing whole CPU training steps as the CPU plans run them: bf16 autocast where the
    CPU multiplies bf16 natively (else float32), Muon on the blocks' matrices and AdamW on the rest, clip
    1.0. The learning rates are 0, so every call times the same model; ``step()`` returns the batch's loss."""
    import torch

    from lunalm.model import LunaLM, model_config_from_preset
    from lunalm.train.device import cpu_bf16
    from lunalm.train.optim import Muon, MuonAdamW, muon_parameters

    torch.manual_seed(0)
    model = LunaLM(model_config_from_preset(preset, vocab_size=vocab, context_length=context)).train()
    bf16 = cpu_bf16()
    chosen = muon_parameters(model)
    muon = Muon([p for p in model.parameters() if id(p) in chosen], weight_decay=0.1,
                ns_dtype=torch.bfloat16 if bf16 else torch.float32)
    adamw = torch.optim.AdamW([p for p in model.parameters() if id(p) not in chosen], lr=0.0, fused=True)
    optimizer = MuonAdamW(muon, adamw, lr_scale=1.0)
    for group in optimizer.param_groups:
        group["lr"] = 0.0  # the weights stay put: every contestant times the same model
    windows = torch.randint(0, vocab, (batch, context + 1), generator=torch.Generator().manual_seed(1))

    def step() -> float:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = model(windows[:, :-1], labels=windows[:, 1:])
        loss = out.loss_sum / out.n_targets
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return float(loss.detach())

    step.precision = "bf16" if bf16 else "fp32"
    return model, step


def shapes_parser(doc: str, steps: int, rounds: int):
    """The arguments of the interleaved CPU step benchmarks (bench_chunks, bench_fused)."""
    import argparse

    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--shapes", default="nano:3200,nano:4288,tiny:8192", help="PRESET:VOCAB, comma-separated")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--context", type=int, default=128)
    parser.add_argument("--steps", type=int, default=steps, help="timed steps per contestant per round")
    parser.add_argument("--rounds", type=int, default=rounds)
    return parser


def each_shape(args, bench_shape) -> list[dict]:
    """``bench_shape(preset, vocab, batch, context, steps, rounds)``'s rows for every ``--shapes`` entry."""
    rows = []
    for spec in args.shapes.split(","):
        preset, _, vocab = spec.partition(":")
        rows += bench_shape(preset, int(vocab), args.batch, args.context, args.steps, args.rounds)
    return rows
