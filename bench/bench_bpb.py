"""Quality per wall-clock second: validation bits per byte after the same training time budget.

For each tokenizer kind (``char`` and ``bpe``), on the built-in corpus:

* data: ``lunalm.train.prepare.prepare_data`` builds the tokenizer (BPE at lunalm's automatic vocabulary
  unless ``--vocab``) and the token shards once (cached); both contestants read the same train split
  through a ``WindowSampler`` with the same seed (lunalm's windows move after the first pass, the peer's
  stay where they are, as a plain loop's fixed chunks do) and are scored on the same fixed validation windows
  (``run.eval_batches``), with the same code (``lunalm.evaluate.evaluate``, exact token bytes).
* lunalm: ``lunalm.train.setup.build_run`` + ``lunalm.train.loop.one_step`` repeatedly (its defaults:
  fused AdamW, betas 0.9/0.95, decay 0.1 on matrices, size-based peak lr, 5 % warmup, cosine to 10 %,
  clip 1.0, scaled residual init). ``--optimizer muon`` is ``luna train --optimizer muon``: Muon on the
  blocks' matrices, that AdamW on embeddings, head and norms, the same lr and schedule.
* peer: a plain PyTorch loop over ``transformers.LlamaForCausalLM`` of the identical shape (config from
  ``lunalm.model.to_hf_config``) fed the unshifted window of context + 1 tokens with ``labels=window``
  (HF shifts: the same targets as lunalm). ``torch.optim.AdamW`` with its defaults (betas 0.9/0.999,
  decay 0.01 on everything, for-loop kernel), the same peak lr as lunalm, linear warmup 5 % + cosine to
  10 % (nanoGPT's schedule), clip 1.0, HF's own init.

The budget is wall time spent in training steps (``--seconds`` each; evaluation and setup not counted).
Before it, each contestant times a few steps of a throwaway copy so its schedule can be planned to end
at the budget (total steps = budget / step time), as ``luna plan`` would. The two contestants then
alternate step by step (whichever has used less of its budget goes next), so load from other users on a
shared machine hits both alike. Goal: lunalm BPB / peer BPB <= 0.95.

    python bench/bench_bpb.py                     # 300 s per contestant per tokenizer
    python bench/bench_bpb.py --seconds 20 --eval-batches 4   # smoke run
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

import torch  # noqa: E402

GOAL = 0.95
CALIBRATION_STEPS = 3  # timed steps of a throwaway copy (after one untimed) to plan the schedule


@dataclass
class Contestant:
    name: str
    step: Callable[[], float]  # one optimizer step; returns the training loss
    model: torch.nn.Module  # presents forward(input_ids, labels) -> ModelOutput (for evaluate)
    plan: Callable[[int], None]  # sets the schedule's total steps
    run: object = None  # lunalm's Run (eval windows, peak lr, data); None for the peer
    seconds_per_step: float = 0.0  # from the throwaway copy, for the plan
    used_s: float = 0.0
    steps: int = 0
    losses: list = field(default_factory=list)


# --- lunalm -----------------------------------------------------------------------------------------
def lunalm_contestant(config, data, scratch: Path, name: str) -> Contestant:
    from lunalm.train.loop import Faults, SilentUI, one_step
    from lunalm.train.schedule import default_warmup
    from lunalm.train.setup import build_run

    run = build_run(config, scratch / name, data)
    run.model.train()
    faults, ui = Faults(), SilentUI()

    def plan(total: int) -> None:
        run.total_steps, run.warmup_steps = total, default_warmup(total)

    return Contestant("lunalm", lambda: one_step(run, faults, ui)["loss"], run.model, plan, run=run)


# --- peer -------------------------------------------------------------------------------------------
class HFAsLunaLM(torch.nn.Module):
    """Lets ``lunalm.evaluate.evaluate`` score a HF causal LM: labels already shifted, summed loss."""

    def __init__(self, hf_model: torch.nn.Module):
        super().__init__()
        self.hf_model = hf_model

    def forward(self, input_ids, labels=None):
        from lunalm.model import ModelOutput

        logits = self.hf_model(input_ids=input_ids).logits  # (B, T, V)
        loss_sum = torch.nn.functional.cross_entropy(logits.float().flatten(0, 1), labels.flatten(),
                                                     ignore_index=-100, reduction="sum")
        return ModelOutput(logits, loss_sum, (labels != -100).sum())


def nanogpt_lr(step: int, peak: float, warmup: int, total: int, min_ratio: float = 0.1) -> float:
    """Linear warmup, cosine to peak * min_ratio at ``total``, then flat (nanoGPT's get_lr)."""
    if step < warmup:
        return peak * (step + 1) / (warmup + 1)
    if step > total:
        return peak * min_ratio
    progress = (step - warmup) / max(1, total - warmup)
    return peak * (min_ratio + 0.5 * (1 - min_ratio) * (1 + math.cos(math.pi * progress)))


def peer_contestant(lunalm_run, seed: int) -> Contestant:
    """Plain loop over LlamaForCausalLM of lunalm's shape, on windows drawn like lunalm's."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from lunalm.data.batches import WindowSampler, stack_examples
    from lunalm.model import to_hf_config

    cfg, data_cfg = lunalm_run.model.config, lunalm_run.config.data
    # On a GPU the plain loop trains where lunalm does, under the same autocast (bf16, or fp16 with loss
    # scaling), as a Trainer with bf16=True would; on a CPU in fp32, as before (for_scoring: exactly that).
    hw = lunalm_run.hw.for_scoring()
    scaler = hw.grad_scaler()
    torch.manual_seed(seed)
    model = LlamaForCausalLM(LlamaConfig(**to_hf_config(cfg))).to(hw.device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lunalm_run.peak_lr)  # torch defaults otherwise
    tokens = lunalm_run.data.shards.split("train")
    # lunalm's window starts, read one token longer; the same windows every pass (a plain loop's fixed
    # chunks, as Hugging Face's group_texts makes them), where lunalm moves them after the first.
    sampler = WindowSampler(tokens, data_cfg.context_length + 1, data_cfg.stride or data_cfg.context_length,
                            seed=data_cfg.seed, shift=False)
    batch = lunalm_run.config.train.micro_batch_size
    schedule = {"step": 0, "total": 1, "warmup": 1}

    def step() -> float:
        starts = sampler.next_starts(batch)
        windows, _ = stack_examples(tokens, starts, data_cfg.context_length + 1)  # (B, T + 1) unshifted
        windows = windows.to(model.device)
        for group in optimizer.param_groups:
            group["lr"] = nanogpt_lr(schedule["step"], lunalm_run.peak_lr, schedule["warmup"], schedule["total"])
        with hw.autocast():
            loss = model(input_ids=windows, labels=windows).loss
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
        schedule["step"] += 1
        return float(loss.detach())

    def plan(total: int) -> None:
        schedule["total"], schedule["warmup"] = total, max(1, round(0.05 * total))

    return Contestant("HF Llama plain loop", step, HFAsLunaLM(model), plan)


# --- the race ---------------------------------------------------------------------------------------
def seconds_per_step(make: Callable[[], Contestant]) -> float:
    """Step time of a throwaway copy (first step untimed: allocations, lazy init)."""
    contestant = make()
    contestant.plan(10**6)
    contestant.step()
    started = time.perf_counter()
    for _ in range(CALIBRATION_STEPS):
        contestant.step()
    return (time.perf_counter() - started) / CALIBRATION_STEPS


def race(contestants: list[Contestant], budget_s: float) -> None:
    """Alternate steps, always advancing whoever has used less time, until all have used the budget."""
    while True:
        waiting = [c for c in contestants if c.used_s < budget_s]
        if not waiting:
            return
        contestant = min(waiting, key=lambda c: c.used_s)
        started = time.perf_counter()
        contestant.losses.append(contestant.step())
        contestant.used_s += time.perf_counter() - started
        contestant.steps += 1


def run_kind(kind: str, args, scratch: Path) -> list[dict]:
    from lunalm.config import CorpusConfig, DataConfig, ModelChoice, RunConfig, TokenizerConfig, TrainConfig
    from lunalm.evaluate import evaluate, padded_token_bytes
    from lunalm.train.prepare import prepare_data

    config = RunConfig(
        name=f"bench-{kind}", runs_dir=str(scratch), corpus=CorpusConfig(),
        tokenizer=TokenizerConfig(kind=kind, vocab_size=args.vocab if kind == "bpe" else None),
        data=DataConfig(context_length=args.context, cache_dir=str(common.cache_root() / "lunalm-cache")),
        model=ModelChoice(preset=args.preset),
        train=TrainConfig(device="cpu", precision="fp32", max_steps=10**6, micro_batch_size=args.batch,
                          eval_batches=args.eval_batches, seed=args.seed, optimizer=args.optimizer))
    data = prepare_data(config, progress=False, log=lambda message: None)
    lunalm = lunalm_contestant(config, data, scratch, f"lunalm-{kind}")
    peer = peer_contestant(lunalm.run, args.seed)
    throwaways = (lambda: lunalm_contestant(config, data, scratch, f"calibration-{kind}"),
                  lambda: peer_contestant(lunalm.run, args.seed))
    for contestant, throwaway in zip((lunalm, peer), throwaways):
        contestant.seconds_per_step = seconds_per_step(throwaway)
        contestant.plan(max(1, int(args.seconds / contestant.seconds_per_step)))
    contestants, lunalm_run = [lunalm, peer], lunalm.run
    print(f"  {kind}: vocab {data.tokenizer.vocab_size}, {data.shards.n_tokens('train'):,} train tokens, "
          f"{len(lunalm_run.eval_batches)} eval batches; planned steps "
          + ", ".join(f"{c.name} {int(args.seconds / c.seconds_per_step)}" for c in contestants), flush=True)
    race(contestants, args.seconds)
    token_bytes = padded_token_bytes(data.tokenizer, lunalm_run.model.config.vocab_size)
    rows = []
    for contestant in contestants:
        result = evaluate(contestant.model, lunalm_run.eval_batches, token_bytes=token_bytes)
        tail = contestant.losses[-10:]
        rows.append({"tokenizer": kind, "contestant": contestant.name, "steps": contestant.steps,
                     "train_seconds": contestant.used_s, "tokens_per_s": contestant.steps * args.batch
                     * args.context / contestant.used_s, "train_loss_last10": sum(tail) / len(tail),
                     "val_loss": result.loss, "val_bpb": result.bits_per_byte, "val_tokens": result.tokens,
                     "vocab_size": data.tokenizer.vocab_size, "peak_lr": lunalm_run.peak_lr})
    rows[0]["bpb_ratio_lunalm_over_peer"] = rows[0]["val_bpb"] / rows[1]["val_bpb"]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=300, help="training wall time per contestant")
    parser.add_argument("--kinds", default="char,bpe", help="tokenizers to run: char, bpe")
    parser.add_argument("--preset", default="nano", help="lunalm model preset (the peer copies its shape)")
    parser.add_argument("--context", type=int, default=256, help="context length in tokens")
    parser.add_argument("--batch", type=int, default=16, help="sequences per step")
    parser.add_argument("--vocab", type=int, default=None, help="BPE vocabulary (default: lunalm's automatic)")
    parser.add_argument("--eval-batches", type=int, default=20, help="fixed validation batches")
    parser.add_argument("--optimizer", choices=("adamw", "muon"), default="adamw",
                        help="lunalm's optimizer (luna train --optimizer); the peer keeps torch's AdamW")
    parser.add_argument("--seed", type=int, default=1337)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import transformers

    transformers.logging.set_verbosity_error()
    print(f"bench_bpb: {args.seconds:g} s of training each, preset {args.preset}, context {args.context}, "
          f"batch {args.batch}, lunalm optimizer {args.optimizer}, {args.threads} threads", flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for kind in args.kinds.split(","):
            rows += run_kind(kind, args, Path(scratch))
    print()
    common.print_table(rows, [("tokenizer", "tokenizer", ""), ("contestant", "contestant", ""),
                              ("steps", "steps", ","), ("tokens_per_s", "train tokens/s", ",.0f"),
                              ("train_loss_last10", "train loss", ".3f"), ("val_loss", "val loss", ".3f"),
                              ("val_bpb", "val bits/byte", ".4f"),
                              ("bpb_ratio_lunalm_over_peer", "lunalm / peer", ".3f")])
    ratios = {row["tokenizer"]: row["bpb_ratio_lunalm_over_peer"] for row in rows
              if "bpb_ratio_lunalm_over_peer" in row}
    for kind, value in ratios.items():
        print(f"{kind}: BPB lunalm / peer = {value:.3f} "
              f"(goal <= {GOAL}: {common.verdict(value, GOAL, higher_is_better=False)})")
    path = common.write_json(f"bench_bpb_{args.optimizer}", {"args": vars(args), "rows": rows,
                                                          "ratio_lunalm_over_peer": ratios, "goal": f"<= {GOAL}"})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
