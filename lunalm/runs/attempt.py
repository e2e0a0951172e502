"""One training attempt, whichever way it was found: a lunalm run registering itself, or a file that
``luna scan`` read (a Hugging Face Trainer folder, a log, a notebook, a training script).

The registry stores attempts; ``fingerprint`` makes imports idempotent (a rescan updates, never duplicates).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field

OUTCOMES = ("success", "failure", "unknown")
STATUSES = ("running", "completed", "stopped-early", "diverged", "oom", "interrupted", "crashed", "disk-full")
ERROR_KINDS = ("cuda-oom", "cpu-oom", "nan-loss", "keyboard-interrupt", "killed", "import-error",
               "shape-error", "dtype-error", "file-not-found", "other-exception")


def model_label(config: dict) -> str | None:
    """What a lunalm run config trained, as the registry's ``model``: the preset, or for a fine-tune its
    base, method and data (``tiny-gpt2 + LoRA on chat.jsonl``), so fine-tunes never pass for their base."""
    tuning = config.get("finetune")
    if not isinstance(tuning, dict):
        return (config.get("model") or {}).get("preset")
    base = str(tuning.get("base") or "?").rstrip("/").rsplit("/", 1)[-1]
    method = {"4bit": "QLoRA", "8bit": "8-bit LoRA"}.get(tuning.get("quantize"),
                                                         "LoRA" if tuning.get("lora") else "full fine-tune")
    paths = [str(p).rstrip("/").rsplit("/", 1)[-1] for p in (config.get("corpus") or {}).get("paths") or ()]
    return f"{base} + {method} on {', '.join(paths) or 'the built-in corpus'}"


@dataclass
class Attempt:
    source: str  # "lunalm" | "hf-trainer" | "lightning" | "log" | "notebook" | "script"
    path: str  # absolute path of the file or directory it was read from
    fingerprint: str  # stable identity (see fingerprint()); the registry upserts on it
    outcome: str = "unknown"  # one of OUTCOMES
    evidence: str = ""  # one line: what decided the outcome ("trainer_state.json: 3 epochs, eval_loss 2.1")
    status: str | None = None  # one of STATUSES when known
    name: str | None = None
    model: str | None = None  # lunalm preset, or a Hugging Face model id ("gpt2", "TinyLlama/TinyLlama-1.1B")
    corpus: str | None = None
    optimizer: str | None = None  # "AdamW", "SGD", "adamw_torch", "paged_adamw_8bit", ...
    lr: float | None = None
    batch_size: int | None = None  # per-device micro-batch
    grad_accum: int | None = None
    epochs: float | None = None
    precision: str | None = None  # "fp32" | "fp16" | "bf16" | "fp8"
    quantization: str | None = None  # "4bit" | "8bit"
    lora: dict | None = None  # {"r": 8, "alpha": 16, "dropout": 0.05, "target_modules": [...]}
    device: str | None = None  # "cuda", "cpu", "mps", a GPU name
    n_params: int | None = None
    tokens_seen: int | None = None
    steps: int | None = None
    best_val_loss: float | None = None
    final_train_loss: float | None = None
    wall_seconds: float | None = None
    error_kind: str | None = None  # one of ERROR_KINDS
    error_message: str | None = None  # the decisive line, trimmed to ~300 characters
    started: float | None = None  # unix time (file mtime when nothing better is known)
    metrics: list[tuple[int, str, float]] = field(default_factory=list)  # (step, "train" | "val", loss)
    extra: dict = field(default_factory=dict)  # anything else worth keeping (JSON-serialisable)


def fingerprint(source: str, path: str, key: str = "") -> str:
    """Identity of an attempt: its source kind, the real path, and a sub-key (e.g. a notebook cell)."""
    digest = hashlib.sha256(f"{source}\0{os.path.realpath(path)}\0{key}".encode()).hexdigest()
    return f"{source}:{digest[:16]}"


def run_fingerprint(run_dir: str) -> str:
    """The identity of a lunalm run directory, shared by live registration and ``luna scan``."""
    return fingerprint("lunalm", run_dir)
