"""LoRA fine-tuning throughput: ``luna finetune``'s training step vs ``transformers.Trainer`` + ``peft``.

Both contestants fine-tune the same random tiny Llama (``--layers`` x ``--width``, built locally and saved
with ``save_pretrained``, BPE vocabulary ``--vocab`` from the shared bench tokenizer) with the same LoRA
(r, alpha, dropout, targets: every attention and MLP projection), AdamW at the same lr, clip 1.0, fp32 on
CPU, batch ``--batch`` of ``--context`` tokens drawn from the same random token array:

* lunalm: the model exactly as ``luna finetune --lora`` builds it (``lunalm.finetune.base.load_base_model``:
  ``AutoModelForCausalLM`` + ``peft.get_peft_model`` behind ``HFCausalLM``), the optimizer from
  ``lunalm.train.setup.build_optimizer`` and the loop's own ``lunalm.train.loop.one_step`` on a hand-built
  ``Run`` (as bench_train.py does).
* peer: ``transformers.Trainer`` over the same peft model construction, ``optim="adamw_torch"``
  (torch's default AdamW), constant lr, logging, evaluation, saving, reporting and tqdm off, batches from a
  map-style dataset through the default collator (``labels = input_ids``; the model shifts them).

Tokens/s counts positions (batch x context) for both. Warm-up steps are untimed. Each round times
``--steps`` steps of each contestant in turn (interleaved); the Trainer runs one ``train()`` per round
with ``--warmup`` extra steps first, and a callback takes the time between the end of its last warm-up step
and the end of its last step, so Trainer's per-call setup is not counted but its per-step work is. The
ratio uses each contestant's best round; the median is shown beside it. Goal: lunalm / Trainer >= 1.2.

    python bench/bench_lora.py                                   # default size
    python bench/bench_lora.py --steps 5 --rounds 3 --threads 1  # smoke run
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

GOAL = 1.2
TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
LR = 2e-4


def save_base(folder: Path, tokenizer, args) -> Path:
    """A random Llama of the benchmark's shape plus the tokenizer, as a local Hugging Face folder."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=tokenizer.vocab_size, hidden_size=args.width, intermediate_size=args.width * 3,
                         num_hidden_layers=args.layers, num_attention_heads=args.width // 32,
                         num_key_value_heads=args.width // 32, max_position_embeddings=args.context,
                         tie_word_embeddings=True, eos_token_id=tokenizer.eot_id, bos_token_id=tokenizer.eot_id,
                         pad_token_id=tokenizer.eot_id)
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder, safe_serialization=True)
    tokenizer.save(folder)
    return folder


def lunalm_step(base: Path, tokenizer, tokens: np.ndarray, scratch: Path, args):
    """``one_step`` on the model ``luna finetune --lora`` builds; returns the step function."""
    from lunalm.config import FinetuneConfig, RunConfig, TrainConfig
    from lunalm.data.batches import WindowSampler
    from lunalm.finetune.base import load_base_model
    from lunalm.train.device import resolve
    from lunalm.train.loop import Faults, SilentUI, one_step
    from lunalm.train.metrics import RunLogger
    from lunalm.train.setup import Run, build_optimizer
    from lunalm.train.state import TrainState

    finetune = FinetuneConfig(base=str(base), lora=True, lora_r=args.r, lora_alpha=args.alpha,
                              lora_dropout=args.dropout, lora_targets=TARGETS)
    train = TrainConfig(device="cpu", precision="fp32", micro_batch_size=args.batch, grad_clip=1.0, lr=LR,
                        warmup_steps=0)
    hw = resolve("cpu", "fp32")
    torch.manual_seed(0)
    model = load_base_model(finetune, tokenizer, hw).train()
    optimizer = build_optimizer(model, train, hw)
    run = Run(config=RunConfig(train=train, finetune=finetune), run_dir=scratch, data=None, hw=hw, model=model,
              forward=model, optimizer=optimizer, scaler=hw.grad_scaler(),
              sampler=WindowSampler(tokens, args.context, seed=0), eval_batches=[],
              logger=RunLogger(scratch, enabled=False),
              state=TrainState(micro_batch_size=args.batch, grad_accum_steps=1), total_steps=10**9,
              peak_lr=LR, warmup_steps=0, n_params=model.parameter_counts()[1])
    faults, ui = Faults(), SilentUI()
    return lambda: one_step(run, faults, ui), model.parameter_counts()[0], optimizer.defaults.get("fused")


class Windows(torch.utils.data.Dataset):
    """Windows of ``context`` tokens at the WindowSampler's random starts: input_ids = labels."""

    def __init__(self, tokens: np.ndarray, context: int, n: int):
        starts = np.random.default_rng(0).integers(0, len(tokens) - context - 1, n)
        self.rows = torch.from_numpy(np.stack([tokens[s:s + context] for s in starts]).astype(np.int64))

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index):
        return {"input_ids": self.rows[index], "labels": self.rows[index]}


def trainer_peer(base: Path, tokens: np.ndarray, scratch: Path, args):
    """A Trainer whose ``train()`` runs warm-up + timed steps; returns (run_round, trainable parameters)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, Trainer, TrainerCallback, TrainingArguments

    from lunalm.config import TrainConfig

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(str(base), use_safetensors=True, dtype=torch.float32)
    model = get_peft_model(model, LoraConfig(r=args.r, lora_alpha=args.alpha, lora_dropout=args.dropout,
                                             target_modules=list(TARGETS), bias="none", task_type="CAUSAL_LM"))
    marks: list[float] = []

    class Clock(TrainerCallback):
        def on_step_end(self, *_args, **_kwargs):
            marks.append(time.perf_counter())

    training = TrainingArguments(
        output_dir=str(scratch / "trainer"), per_device_train_batch_size=args.batch,
        max_steps=args.warmup + args.steps, learning_rate=LR, lr_scheduler_type="constant", warmup_steps=0,
        weight_decay=TrainConfig().weight_decay, max_grad_norm=1.0, optim="adamw_torch", logging_strategy="no", save_strategy="no",
        eval_strategy="no", report_to="none", disable_tqdm=True, use_cpu=True, dataloader_num_workers=0, seed=0)
    dataset = Windows(tokens, args.context, args.batch * (args.warmup + args.steps) * (args.rounds + 1))
    trainer = Trainer(model=model, args=training, train_dataset=dataset, callbacks=[Clock()])

    def run_round() -> float:
        """Seconds of the timed steps of one ``train()`` call."""
        marks.clear()
        trainer.train()
        return marks[-1] - marks[args.warmup - 1]

    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return run_round, trainable


def measure(args, base: Path, tokenizer, tokens: np.ndarray, scratch: Path) -> list[dict]:
    step, luna_trainable, fused = lunalm_step(base, tokenizer, tokens, scratch, args)
    peer_round, peer_trainable = trainer_peer(base, tokens, scratch, args)
    assert luna_trainable == peer_trainable, (luna_trainable, peer_trainable)  # the same adapters
    for _ in range(args.warmup):
        step()
    tokens_per_step = args.batch * args.context
    rates: dict[str, list[float]] = {"lunalm": [], "Trainer": []}
    for number in range(args.rounds):
        started = time.perf_counter()
        for _ in range(args.steps):
            step()
        rates["lunalm"].append(args.steps * tokens_per_step / (time.perf_counter() - started))
        rates["Trainer"].append(args.steps * tokens_per_step / peer_round())
        print(f"  round {number + 1}: lunalm {rates['lunalm'][-1]:,.0f}  Trainer {rates['Trainer'][-1]:,.0f} "
              "tokens/s", flush=True)
    notes = {"lunalm": f"finetune.base.load_base_model + loop.one_step, AdamW fused={fused}",
             "Trainer": "transformers.Trainer + peft, optim adamw_torch (default AdamW)"}
    rows = [{"contestant": name, "best_tokens_per_s": max(values), "median_tokens_per_s": statistics.median(values),
             "rounds_tokens_per_s": values, "trainable": luna_trainable, "note": notes[name]}
            for name, values in rates.items()]
    for row in rows:
        row["lunalm_over_this"] = common.ratio(rows[0]["best_tokens_per_s"], row["best_tokens_per_s"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layers", type=int, default=4, help="Llama layers")
    parser.add_argument("--width", type=int, default=256, help="hidden size (heads of 32; MLP 3x)")
    parser.add_argument("--vocab", type=int, default=8192, help="BPE vocabulary of the bench tokenizer")
    parser.add_argument("--context", type=int, default=256, help="tokens per sequence")
    parser.add_argument("--batch", type=int, default=8, help="sequences per step")
    parser.add_argument("--r", type=int, default=8, help="LoRA rank")
    parser.add_argument("--alpha", type=float, default=16.0, help="LoRA alpha")
    parser.add_argument("--dropout", type=float, default=0.05, help="LoRA dropout")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps (per Trainer round)")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per contestant per round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import transformers

    transformers.logging.set_verbosity_error()
    tokenizer = common.bench_tokenizer("bpe", args.vocab)
    tokens = np.random.default_rng(0).integers(0, tokenizer.vocab_size, 1_000_000).astype(np.uint16)
    with tempfile.TemporaryDirectory() as scratch:
        base = save_base(Path(scratch) / "base", tokenizer, args)
        print(f"LoRA r={args.r} on a {args.layers}x{args.width} Llama, batch {args.batch} x {args.context}: "
              f"{args.warmup} warm-up + {args.rounds} x {args.steps} timed steps each, {args.threads} threads",
              flush=True)
        rows = measure(args, base, tokenizer, tokens, Path(scratch))
    print()
    common.print_table(rows, [("contestant", "contestant", ""), ("trainable", "trainable params", ","),
                              ("best_tokens_per_s", "tokens/s (best)", ",.0f"),
                              ("median_tokens_per_s", "tokens/s (median)", ",.0f"),
                              ("lunalm_over_this", "lunalm / this", ".2f"), ("note", "note", "")])
    value = common.ratio(rows[0]["best_tokens_per_s"], rows[1]["best_tokens_per_s"])
    print(f"lunalm / Trainer = {value:.2f} (goal >= {GOAL}: {common.verdict(value, GOAL)})")
    path = common.write_json("bench_lora", {"args": vars(args), "rows": rows, "ratio_lunalm_over_trainer": value,
                                            "goal": f">= {GOAL}"})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
