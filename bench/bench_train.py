"""Steady-state training throughput: lunalm's step vs plain PyTorch loops over Hugging Face models.

Contestants, all in this process with the same thread count, stepping on windows drawn by the same kind
of ``WindowSampler`` over the same random token array:

* lunalm: ``lunalm.train.loop.one_step`` on a hand-built ``Run`` (the loop's own step: sample a batch,
  forward with ``labels`` already shifted, ``loss_sum / n_targets`` backward, clip 1.0, scheduled lr,
  AdamW from ``lunalm.train.setup.build_optimizer`` = fused where the build has it).
* peer: a plain loop ``loss = model(input_ids, labels=input_ids).loss; loss.backward();
  clip_grad_norm_(1.0); opt.step(); opt.zero_grad()`` (HF shifts the labels itself, so it gets the
  unshifted window: T positions, T - 1 targets) with ``torch.optim.AdamW`` — its default implementation
  (what a plain HF loop uses; on CPU the single-tensor for-loop) and, for reference, ``fused=True``.

Cases:

* ``llama``: lunalm preset (default ``tiny``: 8 layers, 6 heads, width 192, SwiGLU 512) vs
  ``transformers.LlamaForCausalLM`` of the identical shape (config from ``lunalm.model.to_hf_config``:
  same vocab, layers, heads, width, intermediate size, tied embeddings).
* ``gpt2``: nanoGPT's CPU Shakespeare shape (4 layers, 4 heads, width 128, context 64, batch 12, char
  vocab 65, no dropout) as ``transformers.GPT2LMHeadModel`` vs lunalm at the same
  width/layers/heads/context/batch/vocab (its MLP is SwiGLU 3x128x384, GPT-2's GELU 2x128x512).

Tokens/s counts positions processed (batch x context) per second. Warm-up steps are untimed; then
``--rounds`` rounds each time ``--steps`` steps of every contestant in turn (interleaved, so load from
other users hits all of them alike); the ratio uses each contestant's best round (the least disturbed),
the median and tokens per CPU-second of this process are printed beside it. Goal: lunalm / peer
(default AdamW) >= 1.5 on CPU.

    python bench/bench_train.py                       # full size
    python bench/bench_train.py --steps 5 --rounds 2 --preset nano   # smoke run
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

GOAL = 1.5


@dataclass
class Contestant:
    name: str
    step: Callable[[], None]
    tokens_per_step: int
    parameters: int  # non-embedding parameters
    note: str = ""


def random_tokens(vocab_size: int, n_tokens: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, vocab_size, n_tokens, dtype=np.int64).astype(np.uint16)


def non_embedding(model: torch.nn.Module) -> int:
    """Parameters outside embedding tables and the (tied) output head."""
    skip = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Embedding)}
    return sum(p.numel() for p in model.parameters() if id(p) not in skip)


# --- lunalm ----------------------------------------------------------------------------------------
def lunalm_contestant(model_cfg, batch: int, tokens: np.ndarray, scratch: Path,
                      compile_model: bool = False, device: str = "cpu", precision: str = "fp32",
                      grad_accum: int = 1, optimizer: str = "adamw") -> Contestant:
    """lunalm's own ``one_step`` over a Run holding the parts build_run would make (``train.compile``
    wraps the forward in ``torch.compile`` as build_run does; ``device``/``precision`` as ``luna train``'s
    flags, e.g. cuda + bf16, or fp16 with its GradScaler)."""
    from lunalm.config import RunConfig, TrainConfig
    from lunalm.data.batches import WindowSampler
    from lunalm.model import LunaLM, count_parameters
    from lunalm.train.device import resolve
    from lunalm.train.loop import Faults, SilentUI, one_step
    from lunalm.train.metrics import RunLogger
    from lunalm.train.setup import Run, build_optimizer
    from lunalm.train.state import TrainState

    train = TrainConfig(device=device, precision=precision, micro_batch_size=batch, grad_accum_steps=grad_accum,
                        grad_clip=1.0, lr=1e-3, warmup_steps=0, compile=compile_model,
                        optimizer=optimizer)
    hw = resolve(device, precision)
    torch.manual_seed(0)
    model = LunaLM(model_cfg).to(hw.device).train()
    optimizer = build_optimizer(model, train, hw)
    forward = torch.compile(model) if compile_model else model
    data = SimpleNamespace(tokenizer=SimpleNamespace(vocab_size=model_cfg.vocab_size))  # one_step's divergence guard
    run = Run(config=RunConfig(train=train), run_dir=scratch, data=data, hw=hw, model=model, forward=forward,
              optimizer=optimizer, scaler=hw.grad_scaler(),
              sampler=WindowSampler(tokens, model_cfg.context_length, seed=0), eval_batches=[],
              logger=RunLogger(scratch, enabled=False),
              state=TrainState(micro_batch_size=batch, grad_accum_steps=grad_accum), total_steps=10**9,
              peak_lr=1e-3, warmup_steps=0, n_params=count_parameters(model_cfg))
    faults, ui = Faults(), SilentUI()
    fused = optimizer.defaults.get("fused")
    name = "lunalm (torch.compile)" if compile_model else "lunalm"
    contestant = Contestant(name, lambda: one_step(run, faults, ui), batch * grad_accum * model_cfg.context_length,
                            non_embedding(model), f"one_step, {type(optimizer).__name__} fused={fused}")
    contestant.run = run  # for benchmarks that look at the state after the steps (micro-batch after an OOM)
    return contestant


def lunalm_contestants(model_cfg, batch: int, tokens: np.ndarray, scratch: Path, compiled: bool) -> list:
    """lunalm as configured by default (eager), plus the ``train.compile`` variant when asked."""
    eager = [lunalm_contestant(model_cfg, batch, tokens, scratch)]
    return eager + ([lunalm_contestant(model_cfg, batch, tokens, scratch, True)] if compiled else [])


# --- peers -----------------------------------------------------------------------------------------
def hf_contestant(name: str, model: torch.nn.Module, batch: int, context: int, tokens: np.ndarray,
                  fused: bool) -> Contestant:
    """A plain HF training loop; the model gets the unshifted window and shifts labels itself."""
    from lunalm.data.batches import WindowSampler

    model.train()
    # torch's default AdamW: lr 1e-3, betas (0.9, 0.999), weight decay 0.01; on CPU the for-loop kernel
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True) if fused else \
        torch.optim.AdamW(model.parameters(), lr=1e-3)
    sampler = WindowSampler(tokens, context, seed=0)

    def step() -> None:
        inputs, _labels = sampler.next_batch(batch)  # (B, T): the window's first T tokens
        loss = model(input_ids=inputs, labels=inputs).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    attention = getattr(model.config, "_attn_implementation", "?")
    label = "fused AdamW" if fused else "default AdamW"
    return Contestant(f"{name} ({label})", step, batch * context, non_embedding(model),
                      f"attn={attention}, AdamW {'fused=True' if fused else 'default (foreach=None)'}")


def llama_case(args, scratch: Path) -> list[Contestant]:
    from transformers import LlamaConfig, LlamaForCausalLM

    from lunalm.model import model_config_from_preset, to_hf_config

    cfg = model_config_from_preset(args.preset, args.vocab, args.context)
    tokens = random_tokens(cfg.vocab_size, 2_000_000, seed=0)
    contestants = lunalm_contestants(cfg, args.batch, tokens, scratch, args.compile)
    for fused in (False, True):
        hf_config = LlamaConfig(**to_hf_config(cfg))
        torch.manual_seed(0)
        contestants.append(hf_contestant("HF Llama", LlamaForCausalLM(hf_config), args.batch, cfg.context_length,
                                         tokens, fused))
    return contestants


def gpt2_case(args, scratch: Path) -> list[Contestant]:
    from transformers import GPT2Config, GPT2LMHeadModel

    from lunalm.model import ModelConfig

    layers, heads, width, context, batch, vocab = 4, 4, 128, 64, 12, 65  # nanoGPT shakespeare_char on CPU
    cfg = ModelConfig(vocab_size=vocab, context_length=context, n_layer=layers, n_head=heads, d_model=width)
    tokens = random_tokens(vocab, 1_000_000, seed=1)
    contestants = lunalm_contestants(cfg, batch, tokens, scratch, args.compile)
    for fused in (False, True):
        gpt_config = GPT2Config(vocab_size=vocab, n_positions=context, n_embd=width, n_layer=layers, n_head=heads,
                                resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=0,
                                eos_token_id=0)
        torch.manual_seed(0)
        contestants.append(hf_contestant("HF GPT2", GPT2LMHeadModel(gpt_config), batch, context, tokens, fused))
    return contestants


# --- timing ----------------------------------------------------------------------------------------
def time_steps(contestant: Contestant, steps: int) -> tuple[float, float]:
    """(tokens per wall second, tokens per CPU second of this process) over ``steps`` steps."""
    started, cpu_started = time.perf_counter(), time.process_time()
    for _ in range(steps):
        contestant.step()
    tokens = steps * contestant.tokens_per_step
    return tokens / (time.perf_counter() - started), tokens / (time.process_time() - cpu_started)


def run_case(name: str, contestants: list[Contestant], args) -> list[dict]:
    for contestant in contestants:
        for _ in range(args.warmup):
            contestant.step()
    rates: dict[str, list[tuple[float, float]]] = {c.name: [] for c in contestants}
    for _ in range(args.rounds):
        for contestant in contestants:
            rates[contestant.name].append(time_steps(contestant, args.steps))
    rows = []
    for contestant in contestants:
        wall = [rate for rate, _ in rates[contestant.name]]
        cpu = [rate for _, rate in rates[contestant.name]]
        rows.append({"case": name, "contestant": contestant.name, "best_tokens_per_s": max(wall),
                     "median_tokens_per_s": statistics.median(wall), "best_tokens_per_cpu_s": max(cpu),
                     "rounds_tokens_per_s": wall, "parameters": contestant.parameters, "note": contestant.note})
    lunalm = rows[0]["best_tokens_per_s"]
    for row in rows:
        row["lunalm_over_this"] = common.ratio(lunalm, row["best_tokens_per_s"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default="llama,gpt2", help="comma list of: llama, gpt2")
    parser.add_argument("--preset", default="tiny", help="lunalm preset of the llama case (default tiny)")
    parser.add_argument("--vocab", type=int, default=8192, help="llama case vocabulary")
    parser.add_argument("--context", type=int, default=256, help="llama case context length")
    parser.add_argument("--batch", type=int, default=8, help="llama case batch size")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per contestant")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per contestant per round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds")
    parser.add_argument("--compile", action="store_true",
                        help="also time lunalm with train.compile (torch.compile; first steps compile)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import transformers

    transformers.logging.set_verbosity_error()
    builders = {"llama": llama_case, "gpt2": gpt2_case}
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for case in args.cases.split(","):
            print(f"case {case}: {args.warmup} warm-up + {args.rounds} x {args.steps} timed steps each, "
                  f"{args.threads} threads", flush=True)
            rows += run_case(case, builders[case](args, Path(scratch)), args)
    print()
    common.print_table(rows, [("case", "case", ""), ("contestant", "contestant", ""),
                              ("parameters", "non-emb params", ","),
                              ("best_tokens_per_s", "tokens/s (best)", ",.0f"),
                              ("median_tokens_per_s", "tokens/s (median)", ",.0f"),
                              ("best_tokens_per_cpu_s", "tokens/CPU-s", ",.0f"),
                              ("lunalm_over_this", "lunalm / this", ".2f"), ("note", "note", "")])
    ratios = {}
    for case in dict.fromkeys(row["case"] for row in rows):
        peer = next(r for r in rows if r["case"] == case and "default AdamW" in r["contestant"])
        for luna in (r for r in rows if r["case"] == case and r["contestant"].startswith("lunalm")):
            value = common.ratio(luna["best_tokens_per_s"], peer["best_tokens_per_s"])
            ratios[f"{case}/{luna['contestant']}"] = value
            print(f"{case}: {luna['contestant']} / {peer['contestant']} = {value:.2f} "
                  f"(goal >= {GOAL}: {common.verdict(value, GOAL)})")
    path = common.write_json("bench_train", {"args": vars(args), "rows": rows,
                                             "ratio_lunalm_over_default_peer": ratios, "goal": f">= {GOAL}"})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
