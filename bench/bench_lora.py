"""LoRA fine-tuning throughput: ``luna finetune``'s training step vs ``transformers.Trainer`` + ``peft``.

Both contestants fine-tune the same random tiny Llama (``--layers`` x ``--width``, built locally and saved
with ``save_pretrained``, BPE vocabulary ``--vocab`` from the shared bench tokenizer) with the same LoRA
(r, alpha, dropout, targets: every attention and MLP projection), AdamW at the same lr, clip 1.0, fp32 on
CPU, batches of ``--batch`` sequences of at most ``--context`` tokens, on the same data:

* ``--data instructions`` (default; what LoRA is mostly used for): Alpaca-style examples cut from the
  built-in corpus (instruction "continue this", the prompt one sentence, the answer the next 1-8
  sentences; lengths vary as real answers do), rendered and masked by lunalm's own pipeline
  (``build_instruction_data``); the peer gets the very same token ids and masks. Tokens/s counts the
  examples' real (non-padding) positions, the same total for everyone, over whole epochs.
* ``--data text``: continued pretraining on full windows of a random token array (no padding at all).

Contestants:

* lunalm: the model exactly as ``luna finetune --lora`` builds it (``lunalm.finetune.base.load_base_model``:
  ``AutoModelForCausalLM`` + ``peft.get_peft_model`` behind ``HFCausalLM``), the optimizer from
  ``lunalm.train.setup.build_optimizer``, the sampler ``luna finetune`` uses, and the loop's own
  ``lunalm.train.loop.one_step`` on a hand-built ``Run`` (as bench_train.py does).
* Trainer: ``transformers.Trainer`` over the same peft model construction, ``optim="adamw_torch"``
  (torch's default AdamW), constant lr, logging, evaluation, saving, reporting and tqdm off. Instruction
  batches go through ``DataCollatorForSeq2Seq`` (pad to the longest in the batch, labels -100), the usual
  recipe; text batches through the default collator (``labels = input_ids``; the model shifts them).
* Trainer group_by_length (instructions only): the same with ``train_sampling_strategy="group_by_length"``
  (transformers' length-grouped sampler; ``group_by_length=True`` before transformers 5).

Warm-up steps are untimed. Each round times ``--steps`` steps (text) or one epoch (instructions) of each
contestant in turn (interleaved); the Trainer runs one ``train()`` per round with ``--warmup`` extra steps
first, and a callback takes the time between the end of its last warm-up step and the end of its last
step, so Trainer's per-call setup is not counted but its per-step work is. The ratio uses each
contestant's best round; the median is shown beside it. Goal: lunalm / Trainer >= 1.2.

    python bench/bench_lora.py                                   # instruction data, default size
    python bench/bench_lora.py --data text                       # continued pretraining
    python bench/bench_lora.py --steps 5 --rounds 3 --threads 1  # smoke run
"""

from __future__ import annotations

import argparse
import re
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


def instruction_examples(tokenizer, args) -> list[tuple[list[int], list[bool]]]:
    """``--examples`` Alpaca examples from the built-in corpus, as lunalm renders and masks them: (ids, targets)."""
    from lunalm.finetune.instructions import DEFAULT_TEMPLATE, compile_template, tokenize_example, to_window

    rng = np.random.default_rng(0)
    template = compile_template(tokenizer.chat_template or DEFAULT_TEMPLATE)
    examples = []
    for text in common.builtin_texts():
        for paragraph in text.split("\n"):
            sentences = re.split(r"(?<=[.!?])\s+", paragraph.strip())
            at = 0
            while at + 1 < len(sentences) and len(examples) < args.examples:
                answer = int(rng.integers(1, 9))
                messages = [{"role": "user", "content": f"Bu konuşmayı sürdür:\n\n{sentences[at]}"},
                            {"role": "assistant", "content": " ".join(sentences[at + 1:at + 1 + answer])}]
                ids, targets = tokenize_example(messages, template, tokenizer)
                if to_window(ids, targets, args.context, tokenizer.pad_id)[1].max() >= 0:  # an answer fits
                    examples.append((ids, targets))
                at += 1 + answer
    return examples[:len(examples) // args.batch * args.batch]  # whole batches: an epoch is exact


def example_tokens(ids: list[int], context: int) -> int:
    """The positions an example really occupies (what tokens/s counts), at most ``context``."""
    return min(len(ids), context)


def lunalm_step(base: Path, tokenizer, data, scratch: Path, args):
    """``one_step`` on the model ``luna finetune --lora`` builds; returns (step, trainable, fused, tokens).

    ``data`` is a token array (text) or the instruction examples; ``tokens()`` returns the real tokens
    the steps so far consumed."""
    from lunalm.config import FinetuneConfig, RunConfig, TrainConfig
    from lunalm.data.batches import WindowSampler
    from lunalm.finetune.base import load_base_model
    from lunalm.finetune.instructions import InstructionSampler, to_window
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
    optimizer = build_optimizer(model, train, hw, from_scratch=False)
    if args.data == "text":
        sampler = WindowSampler(data, args.context, seed=0)
        sizes = None
    else:  # what setup._sampler builds for luna finetune on instruction data
        windows = [to_window(ids, targets, args.context, tokenizer.pad_id) for ids, targets in data]
        sampler = InstructionSampler((np.stack([w[0] for w in windows]), np.stack([w[1] for w in windows])),
                                     seed=0, group=args.batch)
        sizes = np.array([example_tokens(ids, args.context) for ids, _ in data])
    consumed = [0]
    take = sampler.next_starts

    def counting(batch_size: int):
        rows = take(batch_size)
        consumed[0] += int(sizes[rows].sum()) if sizes is not None else batch_size * args.context
        return rows

    sampler.next_starts = counting
    run = Run(config=RunConfig(train=train, finetune=finetune), run_dir=scratch, data=None, hw=hw, model=model,
              forward=model, optimizer=optimizer, scaler=hw.grad_scaler(), sampler=sampler, eval_batches=[],
              logger=RunLogger(scratch, enabled=False),
              state=TrainState(micro_batch_size=args.batch, grad_accum_steps=1), total_steps=10**9,
              peak_lr=LR, warmup_steps=0, n_params=model.parameter_counts()[1])
    faults, ui = Faults(), SilentUI()
    return (lambda: one_step(run, faults, ui), model.parameter_counts()[0], optimizer.defaults.get("fused"),
            lambda: consumed[0])


class Windows(torch.utils.data.Dataset):
    """Windows of ``context`` tokens at random starts: input_ids = labels (the model shifts them)."""

    def __init__(self, tokens: np.ndarray, context: int, n: int):
        starts = np.random.default_rng(0).integers(0, len(tokens) - context - 1, n)
        self.rows = torch.from_numpy(np.stack([tokens[s:s + context] for s in starts]).astype(np.int64))

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index):
        return {"input_ids": self.rows[index], "labels": self.rows[index]}


class Examples(torch.utils.data.Dataset):
    """The instruction examples as a Trainer user tokenizes them: ids up to ``context``, prompt labels -100."""

    def __init__(self, examples, context: int):
        self.items = [{"input_ids": ids[:context], "labels": [t if keep else -100 for t, keep in
                                                                zip(ids[:context], targets[:context])]}
                      for ids, targets in examples]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index):
        return self.items[index]


def trainer_peer(base: Path, data, scratch: Path, args, group_by_length: bool = False):
    """A Trainer whose ``train()`` runs warm-up + timed steps; returns (run_round, trainable parameters).

    Text: each call runs ``--warmup`` + ``--steps`` steps, the last ``--steps`` timed. Instructions: the
    first call is the warm-up; each call runs one epoch, timed from its start to its last step."""
    from peft import LoraConfig, get_peft_model
    from transformers import (AutoModelForCausalLM, AutoTokenizer, DataCollatorForSeq2Seq, PrinterCallback,
                              Trainer, TrainerCallback, TrainingArguments)

    from lunalm.config import TrainConfig

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(str(base), use_safetensors=True, dtype=torch.float32)
    model = get_peft_model(model, LoraConfig(r=args.r, lora_alpha=args.alpha, lora_dropout=args.dropout,
                                             target_modules=list(TARGETS), bias="none", task_type="CAUSAL_LM"))
    marks: list[float] = []

    class Clock(TrainerCallback):
        def on_epoch_begin(self, *_args, **_kwargs):
            marks.append(time.perf_counter())

        def on_step_end(self, *_args, **_kwargs):
            marks.append(time.perf_counter())

    text = args.data == "text"
    if text:
        dataset = Windows(data, args.context, args.batch * (args.warmup + args.steps) * (args.rounds + 1))
        collator, steps = None, args.warmup + args.steps
    else:
        dataset, steps = Examples(data, args.context), len(data) // args.batch
        collator = DataCollatorForSeq2Seq(AutoTokenizer.from_pretrained(str(base)), padding="longest",
                                          label_pad_token_id=-100)
    training = TrainingArguments(
        output_dir=str(scratch / "trainer"), per_device_train_batch_size=args.batch, max_steps=steps,
        learning_rate=LR, lr_scheduler_type="constant", warmup_steps=0, weight_decay=TrainConfig().weight_decay,
        max_grad_norm=1.0, optim="adamw_torch", logging_strategy="no", save_strategy="no", eval_strategy="no",
        report_to="none", disable_tqdm=True, use_cpu=True, dataloader_num_workers=0, seed=0,
        train_sampling_strategy="group_by_length" if group_by_length else "random")
    trainer = Trainer(model=model, args=training, train_dataset=dataset, data_collator=collator,
                      callbacks=[Clock()])
    trainer.remove_callback(PrinterCallback)  # the end-of-train metrics line, once per round
    if not text:
        trainer.train()  # warm-up epoch

    def run_round() -> float:
        """Seconds of the timed steps of one ``train()`` call."""
        marks.clear()
        trainer.train()
        return marks[-1] - marks[args.warmup] if text else marks[-1] - marks[0]

    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return run_round, trainable


def measure(args, base: Path, tokenizer, data, scratch: Path) -> list[dict]:
    step, luna_trainable, fused, consumed = lunalm_step(base, tokenizer, data, scratch, args)
    peers = {"Trainer": trainer_peer(base, data, scratch, args)}
    if args.data == "instructions":
        peers["Trainer group_by_length"] = trainer_peer(base, data, scratch, args, group_by_length=True)
    for name, (_, trainable) in peers.items():
        assert luna_trainable == trainable, (name, luna_trainable, trainable)  # the same adapters
    for _ in range(args.warmup):
        step()
    if args.data == "text":
        steps, peer_tokens = args.steps, args.steps * args.batch * args.context
    else:
        steps, peer_tokens = len(data) // args.batch, sum(example_tokens(ids, args.context) for ids, _ in data)
    rates: dict[str, list[float]] = {"lunalm": [], **{name: [] for name in peers}}
    for number in range(args.rounds):
        before, started = consumed(), time.perf_counter()
        for _ in range(steps):
            step()
        rates["lunalm"].append((consumed() - before) / (time.perf_counter() - started))
        for name, (run_round, _) in peers.items():
            rates[name].append(peer_tokens / run_round())
        print(f"  round {number + 1}: " + "  ".join(f"{name} {values[-1]:,.0f}" for name, values in rates.items())
              + " tokens/s", flush=True)
    notes = {"lunalm": f"finetune.base.load_base_model + loop.one_step, AdamW fused={fused}",
             "Trainer": "transformers.Trainer + peft, optim adamw_torch (default AdamW)"
                        + ("" if args.data == "text" else ", DataCollatorForSeq2Seq"),
             "Trainer group_by_length": "the same, train_sampling_strategy=group_by_length"}
    rows = [{"contestant": name, "best_tokens_per_s": max(values), "median_tokens_per_s": statistics.median(values),
             "rounds_tokens_per_s": values, "trainable": luna_trainable, "note": notes[name]}
            for name, values in rates.items()]
    for row in rows:
        row["lunalm_over_this"] = common.ratio(rows[0]["best_tokens_per_s"], row["best_tokens_per_s"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", choices=("instructions", "text"), default="instructions",
                        help="Alpaca examples of varied length, or full windows of text")
    parser.add_argument("--examples", type=int, default=256, help="instruction examples (one epoch per round)")
    parser.add_argument("--layers", type=int, default=4, help="Llama layers")
    parser.add_argument("--width", type=int, default=256, help="hidden size (heads of 32; MLP 3x)")
    parser.add_argument("--vocab", type=int, default=8192, help="BPE vocabulary of the bench tokenizer")
    parser.add_argument("--context", type=int, default=256, help="tokens per sequence")
    parser.add_argument("--batch", type=int, default=8, help="sequences per step")
    parser.add_argument("--r", type=int, default=8, help="LoRA rank")
    parser.add_argument("--alpha", type=float, default=16.0, help="LoRA alpha")
    parser.add_argument("--dropout", type=float, default=0.05, help="LoRA dropout")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps (per Trainer round)")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per contestant per round (text)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import transformers

    transformers.logging.set_verbosity_error()
    tokenizer = common.bench_tokenizer("bpe", args.vocab)
    if args.data == "text":
        data = np.random.default_rng(0).integers(0, tokenizer.vocab_size, 1_000_000).astype(np.uint16)
        timed = f"{args.rounds} x {args.steps} timed steps"
    else:
        data = instruction_examples(tokenizer, args)
        sizes = [example_tokens(ids, args.context) for ids, _ in data]
        timed = (f"{args.rounds} timed epochs of {len(data)} examples ({sum(sizes):,} tokens, "
                 f"{min(sizes)}-{max(sizes)} each, median {int(np.median(sizes))})")
    with tempfile.TemporaryDirectory() as scratch:
        base = save_base(Path(scratch) / "base", tokenizer, args)
        print(f"LoRA r={args.r} on a {args.layers}x{args.width} Llama, {args.data}, batch {args.batch} x "
              f"<= {args.context}: {args.warmup} warm-up steps + {timed} each, {args.threads} threads", flush=True)
        rows = measure(args, base, tokenizer, data, Path(scratch))
    print()
    common.print_table(rows, [("contestant", "contestant", ""), ("trainable", "trainable params", ","),
                              ("best_tokens_per_s", "tokens/s (best)", ",.0f"),
                              ("median_tokens_per_s", "tokens/s (median)", ",.0f"),
                              ("lunalm_over_this", "lunalm / this", ".2f"), ("note", "note", "")])
    value = common.ratio(rows[0]["best_tokens_per_s"], rows[1]["best_tokens_per_s"])
    print(f"lunalm / Trainer = {value:.2f} (goal >= {GOAL}: {common.verdict(value, GOAL)})")
    path = common.write_json(f"bench_lora_{args.data}", {"args": vars(args), "rows": rows,
                                                        "ratio_lunalm_over_trainer": value, "goal": f">= {GOAL}"})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
