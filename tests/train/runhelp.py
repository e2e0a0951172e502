"""Shared helpers for the training tests: a tiny run config, the same config as YAML for the CLI,
subprocess launching, and comparing saved weights.

Regenerate the golden losses (only after a *deliberate* numeric change, and say why in the commit):

    python tests/train/runhelp.py --write-golden
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:  # conftest's TURKISH, also when run as a script
    sys.path.insert(0, str(TESTS))

from conftest import TURKISH  # noqa: E402

GOLDEN = Path(__file__).with_name("golden_loss.json")
GOLDEN_STEPS = 20

# The tiny shape every in-process test uses: 2 layers x 32 wide, char tokenizer, 32-token windows.
MODEL = {"preset": "nano", "n_layer": 2, "d_model": 32, "n_head": 2}
CONTEXT = 32
QUICK_TRAIN = {"micro_batch_size": 4, "eval_every": 1000, "eval_batches": 2, "sample_every": 0,
               "sample_prompts": ("Ankara",), "sample_tokens": 4, "log_every": 1,
               "checkpoint_every": 1000, "device": "cpu", "optimizer": "adamw",  # golden losses are AdamW's
               "precision": "fp32"}  # and fp32's: "auto" is bf16 on CPUs with AVX-512 BF16


def write_corpus(folder: Path) -> Path:
    """The conftest Turkish texts, each repeated three times (as the ``turkish_dir`` fixture does)."""
    folder.mkdir(parents=True, exist_ok=True)
    for index, text in enumerate(TURKISH):
        (folder / f"doc{index}.txt").write_text(text * 3, encoding="utf-8")
    return folder


def tiny_config(root: Path, corpus_dir: Path, name: str = "run", **train):
    """A RunConfig for a ~35k-parameter model; ``train`` overrides QUICK_TRAIN fields."""
    from lunalm.config import CorpusConfig, DataConfig, ModelChoice, RunConfig, TokenizerConfig, TrainConfig

    return RunConfig(name=name, runs_dir=str(root / "runs"), model=ModelChoice(**MODEL),
                     data=DataConfig(context_length=CONTEXT, cache_dir=str(root / "cache")),
                     tokenizer=TokenizerConfig(kind="char"), corpus=CorpusConfig(paths=(str(corpus_dir),)),
                     train=TrainConfig(**{**QUICK_TRAIN, **train}))


def write_yaml(path: Path, cache_dir: Path, **train) -> Path:
    """The tiny shape as a ``--config`` file for the CLI (model overrides are not command-line flags)."""
    import yaml

    values = {"model": dict(MODEL), "data": {"context_length": CONTEXT, "cache_dir": str(cache_dir)},
              "tokenizer": {"kind": "char"},
              "train": {**{k: list(v) if isinstance(v, tuple) else v for k, v in QUICK_TRAIN.items()},
                        **train}}
    path.write_text(yaml.safe_dump(values, allow_unicode=True), encoding="utf-8")
    return path


def luna_env() -> dict:
    """One thread per process: faster on a shared 2-core machine, and the same for every run compared."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def spawn_luna(*args: str, log: Path) -> subprocess.Popen:
    """Start ``python -m lunalm ARGS`` in the background, stdout+stderr into ``log``."""
    handle = open(log, "w", encoding="utf-8")
    return subprocess.Popen([sys.executable, "-m", "lunalm", *args], stdout=handle, stderr=subprocess.STDOUT,
                            env=luna_env())


def run_luna(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """``luna ARGS`` in a process of its own with ``luna_env()`` (``tests.conftest.run_luna``)."""
    from tests.conftest import run_luna as forked

    return forked(*args, timeout=timeout, env=luna_env())


def wait_for(condition, process: subprocess.Popen, what: str, timeout: float = 240.0) -> None:
    """Poll ``condition()`` every 20 ms; fail if the process ends first or time runs out."""
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            raise AssertionError(f"the training process ended (rc {process.returncode}) before {what}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def sealed_step_checkpoints(run_dir: Path) -> list[Path]:
    folder = run_dir / "checkpoints"
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("step-*") if (p / "manifest.json").is_file())


def load_weights(checkpoint: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(checkpoint / "model.safetensors"))


def assert_same_weights(a: Path, b: Path) -> None:
    """Bit-exact: torch.equal for every tensor of two checkpoints."""
    import torch

    left, right = load_weights(a), load_weights(b)
    assert left.keys() == right.keys()
    different = [name for name in left if not torch.equal(left[name], right[name])]
    assert not different, f"tensors differ between {a} and {b}: {different}"


def train_losses(run_dir: Path) -> list[float]:
    from lunalm.train.metrics import loss_series, read_jsonl

    return loss_series(read_jsonl(run_dir / "metrics.jsonl"))["train"][1]


def golden_losses(root: Path) -> list[float]:
    """The 20 train losses of the fixed golden config (seed 1337), trained in this process."""
    from lunalm.train.loop import SilentUI
    from lunalm.train.session import start

    corpus = write_corpus(root / "corpus")
    config = tiny_config(root, corpus, name="golden", max_steps=GOLDEN_STEPS, seed=1337, log_every=1,
                         schedule="cosine")  # the schedule the golden losses were written with
    run, status = start(config, SilentUI(), progress=False)
    assert status == "completed", status
    return train_losses(run.run_dir)


if __name__ == "__main__" and sys.argv[1:] == ["--write-golden"]:
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        losses = golden_losses(Path(scratch))
    GOLDEN.write_text(json.dumps({"config": "tests/train/runhelp.py golden_losses (tiny_config, seed 1337)",
                                  "steps": GOLDEN_STEPS, "train_loss": losses}, indent=2) + "\n")
    print(f"wrote {len(losses)} losses to {GOLDEN}")
