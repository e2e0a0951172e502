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
