"""The GPU goals of issue 3, ready for the day a GPU is at hand: MFU and the 4 GB memory budget.

* **MFU of the GPT-2-small-sized preset** (``gpt2``: 12 layers, 12 heads, width 768, vocabulary 50304,
  context 1024), bf16 autocast and ``torch.compile``: lunalm's own ``one_step`` (as ``bench_train.py``
  builds it) against a plain loop over ``transformers.GPT2LMHeadModel`` of the same size, also bf16 and
  compiled, with fused AdamW. Both have the same matmul shapes (GPT-2's MLP is 2 x 768 x 3072, lunalm's
  SwiGLU 3 x 768 x 2048: the same 8 d^2), so one count serves both: MFU = tokens/s x
  ``lunalm.model.flops_per_token`` (6N + 12 L H Q T, PaLM's) / the card's dense bf16 peak (from
  ``lunalm.plan.hardware``; ``--peak-tflops`` overrides). Goal: lunalm >= 45 % on an H100.
* **Peak memory of ``small`` at context 512 with the batch ``luna plan`` recommends for a 4 GB GTX 1650**
  (fp16 autocast + GradScaler, as on that card): ``torch.cuda.max_memory_allocated`` over a few
  optimizer steps of ``one_step`` with the plan's micro-batch and accumulation, beside the plan's own
  estimate. Goal: <= 3.6 GB. The plan is made for a large corpus (5e8 tokens, vocabulary 32000), so it
  keeps the requested preset; what it recommends is the micro-batch that fits.

On a machine without CUDA the script says so and exits 0. ``--device cpu`` runs the same code on the CPU at
a small size (``--smoke``: nano shapes, fp32/bf16), to check the script itself.

    python bench/bench_gpu.py                       # on a CUDA machine
    python bench/bench_gpu.py --device cpu --smoke  # the code path on a CPU, in seconds
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_train  # noqa: E402
import common  # noqa: E402

import torch  # noqa: E402

MFU_GOAL = 0.45
MEMORY_GOAL_GB = 3.6
GPT2_VOCAB = 50304  # GPT-2's 50257 padded to a multiple of 64, as lunalm pads every vocabulary


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def tokens_per_s(step, tokens_per_step: int, device: str, warmup: int, steps: int) -> float:
    """Steady-state tokens/s: ``warmup`` untimed steps (compilation happens there), then ``steps`` timed."""
    for _ in range(warmup):
        step()
    synchronize(device)
    started = time.perf_counter()
    for _ in range(steps):
        step()
    synchronize(device)
    return steps * tokens_per_step / (time.perf_counter() - started)


def hf_gpt2_step(cfg, batch: int, tokens, device: str, precision: str, compile_model: bool):
    """A plain compiled bf16 loop over GPT2LMHeadModel of lunalm's ``cfg`` size (labels shifted by HF)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    from lunalm.data.batches import WindowSampler

    config = GPT2Config(vocab_size=cfg.vocab_size, n_positions=cfg.context_length, n_embd=cfg.d_model,
                        n_layer=cfg.n_layer, n_head=cfg.n_head, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    torch.manual_seed(0)
    model = GPT2LMHeadModel(config).to(device).train()
    forward = torch.compile(model) if compile_model else model
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device.startswith("cuda"))
    sampler = WindowSampler(tokens, cfg.context_length, seed=0)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    device_type = torch.device(device).type

    def step() -> None:
        inputs, _ = sampler.next_batch(batch)
        inputs = inputs.to(device, non_blocking=True)
        with torch.autocast(device_type, dtype=dtype, enabled=dtype is not None):
            loss = forward(input_ids=inputs, labels=inputs).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def peak_flops(args) -> tuple[float, str]:
    if args.peak_tflops:
        return args.peak_tflops * 1e12, "--peak-tflops"
    if args.device.startswith("cuda"):
        from lunalm.plan.hardware import detect_cuda

        machine = detect_cuda()
        source = "card table" if machine.card is not None else "unknown card: a guess; give --peak-tflops"
        return machine.peak_flops, f"{machine.name}, {source}"
    from lunalm.plan.hardware import cpu_machine

    machine = cpu_machine()
    return machine.peak_flops, f"{machine.name}, rough CPU figure"


def mfu_rows(args, scratch: Path) -> list[dict]:
    from lunalm.model import count_parameters, flops_per_token, model_config_from_preset

    preset, context, vocab = ("nano", 128, 512) if args.smoke else ("gpt2", 1024, GPT2_VOCAB)
    cfg = model_config_from_preset(preset, vocab, context)
    tokens = bench_train.random_tokens(vocab, 4_000_000, seed=0)
    lunalm = bench_train.lunalm_contestant(cfg, args.batch, tokens, scratch, compile_model=not args.no_compile,
                                           device=args.device, precision=args.precision,
                                           optimizer="adamw")  # the peer's optimizer; Muon's cost: part optimizer
    peer = hf_gpt2_step(cfg, args.batch, tokens, args.device, args.precision, not args.no_compile)
    peak, peak_source = peak_flops(args)
    per_token = flops_per_token(cfg)
    rows = []
    for name, step in (("lunalm one_step", lunalm.step), ("HF GPT2LMHeadModel loop", peer)):
        rate = tokens_per_s(step, args.batch * context, args.device, args.warmup, args.steps)
        rows.append({"part": "mfu", "contestant": name, "preset": preset, "context": context, "batch": args.batch,
                     "parameters": count_parameters(cfg), "tokens_per_s": rate, "flops_per_token": per_token,
                     "mfu": rate * per_token / peak, "peak_flops": peak, "peak_source": peak_source})
    rows[0]["lunalm_over_peer"] = rows[0]["tokens_per_s"] / rows[1]["tokens_per_s"]
    return rows


def memory_row(args, scratch: Path) -> dict:
    from lunalm.config import CorpusConfig, TokenizerConfig
    from lunalm.model import model_config_from_preset
    from lunalm.plan.hardware import GiB, card_machine, find_card
    from lunalm.plan.memory import device_bytes
    from lunalm.plan.recommend import CorpusFacts, Request, make_plan

    preset, context, vocab = ("nano", 128, 512) if args.smoke else ("small", 512, 32000)
    facts = CorpusFacts(name="large corpus", documents=100_000, chars=2 * 10**9, tokens=5 * 10**8,
                        chars_per_token=4.0, median_doc_tokens=1000, p90_doc_tokens=4000, vocab_size=vocab,
                        tokenizer_kind="bpe")
    gtx = card_machine(find_card("GTX 1650"))
    plan = make_plan(facts, gtx, Request(preset=preset, context_length=context), corpus=CorpusConfig(),
                     tokenizer=TokenizerConfig(vocab_size=vocab))
    train = plan.config.train
    cfg = model_config_from_preset(preset, vocab, context)
    precision = "fp16" if args.device.startswith("cuda") else "fp32"  # the GTX 1650's precision where possible
    contestant = bench_train.lunalm_contestant(cfg, train.micro_batch_size, bench_train.random_tokens(vocab, 10**6, 1),
                                               scratch, compile_model=train.compile, device=args.device,
                                               precision=precision, grad_accum=train.grad_accum_steps)
    if args.device.startswith("cuda"):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    for _ in range(args.memory_steps):
        contestant.step()
    synchronize(args.device)
    measured = torch.cuda.max_memory_allocated() if args.device.startswith("cuda") else None
    reserved = torch.cuda.max_memory_reserved() if args.device.startswith("cuda") else None
    return {"part": "memory", "contestant": "lunalm one_step", "preset": plan.config.model.preset, "context": context,
            "micro_batch": train.micro_batch_size, "grad_accum": train.grad_accum_steps, "precision": precision,
            "planned_peak_gb": device_bytes(plan.memory.peak, "cuda") / GiB,
            "measured_peak_gb": None if measured is None else measured / GiB,
            "reserved_peak_gb": None if reserved is None else reserved / GiB}


MEMGRID_PRESETS = ("nano", "tiny", "small", "medium")
MEMGRID_SHAPES = ((256, 32), (512, 8), (1024, 4))  # (context, micro-batch)
MEMGRID_KINDS = (("fp16", "adamw"), ("bf16", "adamw"), ("bf16", "muon"))  # GTX 1650's path; bf16 cards
MEMORY_ERROR_GOAL = 0.15


def memgrid_rows(args, scratch: Path) -> list[dict]:
    """The planner's memory model against ``max_memory_allocated`` over presets x contexts x batches x
    precisions (eager steps, steady state: the optimizer state exists before the peak is read)."""
    from lunalm.model import model_config_from_preset
    from lunalm.plan.memory import device_bytes, estimate_training_memory

    presets, shapes, vocab = (("nano",), ((64, 2),), 512) if args.smoke else (MEMGRID_PRESETS, MEMGRID_SHAPES, 32000)
    rows = []
    for preset in presets:
        for context, batch in shapes:
            for precision, optimizer in MEMGRID_KINDS:
                if not args.device.startswith("cuda") and precision == "fp16":
                    continue
                cfg = model_config_from_preset(preset, vocab, context)
                contestant = bench_train.lunalm_contestant(cfg, batch, bench_train.random_tokens(vocab, 200_000, 2),
                                                           scratch, device=args.device, precision=precision,
                                                           optimizer=optimizer)
                contestant.step()  # the optimizer state exists from here on, as in the estimate
                measured = _peak_of(contestant.step, args.device)
                estimate = estimate_training_memory(cfg, batch, precision=precision,
                                                    device_kind=torch.device(args.device).type)
                planned = device_bytes(estimate.peak, torch.device(args.device).type)
                rows.append({"part": "memgrid", "preset": preset, "context": context, "micro_batch": batch,
                             "precision": precision, "optimizer": optimizer, "planned_gb": planned / 2**30,
                             "measured_gb": None if measured is None else measured / 2**30,
                             "error": None if measured is None else planned / measured - 1})
                del contestant
                _free(args.device)
    return rows


def _peak_of(step, device: str) -> int | None:
    if not device.startswith("cuda"):
        step()
        return None
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    step()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated()


def _free(device: str) -> None:
    import gc

    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()


def oom_rows(args, scratch: Path) -> list[dict]:
    """A micro-batch that does not fit, on a real allocator: the guard halves it, doubles accumulation, and
    the steps go on with the same global batch and (to bf16 rounding) the same loss as a run planned at the
    smaller micro-batch from the start."""
    from lunalm.model import model_config_from_preset
    from lunalm.plan.memory import estimate_training_memory

    if not args.device.startswith("cuda"):
        return [{"part": "oom", "note": "needs CUDA: a CPU has no allocator limit to hit"}]
    preset, context, vocab, batch = "small", 1024, 32000, 64
    cfg = model_config_from_preset(preset, vocab, context)
    tokens = bench_train.random_tokens(vocab, 2_000_000, 3)
    fits = estimate_training_memory(cfg, batch // 4, precision="bf16", device_kind="cuda").peak
    total = torch.cuda.get_device_properties(0).total_memory
    fraction = min(0.95, 1.4 * fits / total)  # room for micro-batch 16, not for 64
    torch.cuda.set_per_process_memory_fraction(fraction)
    try:
        contestant = bench_train.lunalm_contestant(cfg, batch, tokens, scratch, device=args.device,
                                                   precision="bf16", optimizer="adamw")
        losses, error = [], None
        try:
            for _ in range(3):
                losses.append(_last_loss(contestant))
        except Exception as failure:  # noqa: BLE001 - the row reports what happened
            error = f"{type(failure).__name__}: {failure}"
        state = contestant.run.state
        micro, accum = state.micro_batch_size, state.grad_accum_steps
        del contestant
        _free(args.device)
        reference = []
        if error is None:
            planned = bench_train.lunalm_contestant(cfg, micro, tokens, scratch, device=args.device,
                                                    precision="bf16", optimizer="adamw", grad_accum=accum)
            reference = [_last_loss(planned) for _ in range(3)]
            del planned
            _free(args.device)
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
    return [{"part": "oom", "preset": preset, "context": context, "asked_micro_batch": batch,
             "memory_cap_gb": fraction * total / 2**30, "micro_batch_after": micro, "grad_accum_after": accum,
             "global_batch_kept": micro * accum == batch, "losses": losses, "losses_planned_small": reference,
             "max_loss_difference": max((abs(a - b) for a, b in zip(losses, reference)), default=None),
             "error": error}]


def _last_loss(contestant) -> float:
    from lunalm.train.loop import Faults, SilentUI, one_step

    return one_step(contestant.run, Faults(), SilentUI())["loss"]


def qlora_rows(args, scratch: Path) -> list[dict]:
    """``luna finetune --lora --qlora`` and ``--load-8bit`` on a small random Llama saved with
    save_pretrained (bitsandbytes, CUDA): it loads, trains a few steps, saves an adapter."""
    import json
    import subprocess

    if not args.device.startswith("cuda"):
        return [{"part": "qlora", "note": "needs CUDA and bitsandbytes"}]
    try:
        import bitsandbytes  # noqa: F401
    except ImportError as error:
        return [{"part": "qlora", "note": f"bitsandbytes not importable: {error}"}]
    base = _small_llama(scratch / "base")
    data = scratch / "ft.txt"
    data.write_text("\n\n".join(common.builtin_texts()[:200]), encoding="utf-8")
    rows = []
    for flag in ("--qlora", "--load-8bit"):
        name = "ft" + flag.replace("-", "_")
        command = [sys.executable, "-m", "lunalm", "finetune", str(data), "--base", str(base), "--lora", flag,
                   "--max-steps", "8", "--batch-size", "4", "--context", "256", "--eval-every", "4",
                   "--runs-dir", str(scratch / "runs"), "--name", name, "--quiet", "--device", "cuda"]
        started = time.perf_counter()
        result = subprocess.run(command, capture_output=True, text=True)
        run_dir = scratch / "runs" / name
        summary = run_dir / "summary.json"
        facts = json.loads(summary.read_text()) if summary.is_file() else {}
        rows.append({"part": "qlora", "mode": flag, "exit": result.returncode, "seconds": time.perf_counter() - started,
                     "status": facts.get("status"), "steps": facts.get("steps"),
                     "best_val_loss": facts.get("best_val_loss"),
                     "saved": sorted(p.name for p in run_dir.rglob("adapter_*"))[:6] if run_dir.is_dir() else [],
                     "stderr_tail": result.stderr[-600:] if result.returncode else ""})
    return rows


def _small_llama(folder: Path) -> Path:
    import transformers as tf

    from lunalm.tokenizer import train_bpe

    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = train_bpe(common.builtin_texts()[:300], vocab_size=2048)
    tokenizer.save(folder)
    ids = {"bos_token_id": tokenizer.eot_id, "eos_token_id": tokenizer.eot_id, "pad_token_id": tokenizer.eot_id}
    config = tf.LlamaConfig(vocab_size=tokenizer.vocab_size, hidden_size=256, intermediate_size=704,
                            num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=4,
                            max_position_embeddings=512, **ids)
    torch.manual_seed(0)
    tf.AutoModelForCausalLM.from_config(config).save_pretrained(folder, safe_serialization=True)
    return folder


def muon_step_rows(args, scratch: Path) -> list[dict]:
    """Step time of Muon (bf16 Newton-Schulz on CUDA) against fused AdamW, same model and batch."""
    from lunalm.model import model_config_from_preset

    preset, context, vocab, batch = ("nano", 128, 512, 4) if args.smoke else ("small", 512, 32000, 16)
    cfg = model_config_from_preset(preset, vocab, context)
    tokens = bench_train.random_tokens(vocab, 2_000_000, 4)
    rows = []
    for optimizer in ("adamw", "muon"):
        contestant = bench_train.lunalm_contestant(cfg, batch, tokens, scratch, device=args.device,
                                                   precision=args.precision, optimizer=optimizer)
        rate = tokens_per_s(contestant.step, batch * context, args.device, args.warmup, args.steps)
        rows.append({"part": "optimizer", "optimizer": optimizer, "preset": preset, "context": context,
                     "batch": batch, "tokens_per_s": rate, "ms_per_step": 1000 * batch * context / rate})
        del contestant
        _free(args.device)
    return rows


PARTS = {"mfu": mfu_rows, "memory": lambda a, s: [memory_row(a, s)], "memgrid": memgrid_rows, "oom": oom_rows,
         "qlora": qlora_rows, "optimizer": muon_step_rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu (with --smoke: checks the script)")
    parser.add_argument("--precision", default=None, help="default bf16 on CUDA, fp32 on CPU")
    parser.add_argument("--batch", type=int, default=None, help="MFU micro-batch (default 16 on CUDA, 4 smoke)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps (compilation): default 10")
    parser.add_argument("--steps", type=int, default=None, help="timed steps: default 30")
    parser.add_argument("--memory-steps", type=int, default=None, help="optimizer steps for the memory peak: "
                        "default 3 (1 with --smoke)")
    parser.add_argument("--peak-tflops", type=float, default=None, help="the card's dense peak, overriding the table")
    parser.add_argument("--no-compile", action="store_true", help="eager instead of torch.compile")
    parser.add_argument("--smoke", action="store_true", help="nano shapes and few steps: checks the code path")
    parser.add_argument("--parts", default="mfu,memory", help=f"comma list of: {', '.join(PARTS)} (default "
                        "mfu,memory)")
    parser.add_argument("--out", default=None, help="also write the rows to DIR/bench_gpu_rows.json after each "
                        "part (a run cut short keeps what it measured)")
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("bench_gpu: no CUDA GPU here; nothing measured (run it on a GPU machine, or --device cpu --smoke "
              "to check the script)")
        return
    unknown = set(args.parts.split(",")) - set(PARTS)
    if unknown:
        raise SystemExit(f"--parts: unknown {', '.join(sorted(unknown))}; known: {', '.join(PARTS)}")
    args.precision = args.precision or ("bf16" if args.device.startswith("cuda") else "fp32")
    args.batch = args.batch or (4 if args.smoke else 16)
    args.warmup = args.warmup if args.warmup is not None else (2 if args.smoke else 10)
    args.steps = args.steps if args.steps is not None else (3 if args.smoke else 30)
    args.memory_steps = args.memory_steps if args.memory_steps is not None else (1 if args.smoke else 3)
    import transformers

    transformers.logging.set_verbosity_error()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for part in args.parts.split(","):
            started = time.perf_counter()
            try:
                found = PARTS[part](args, Path(scratch) / part)
            except Exception as error:  # noqa: BLE001 - one broken part must not cost the others their figures
                import traceback

                found = [{"part": part, "error": f"{type(error).__name__}: {error}",
                          "traceback": traceback.format_exc()[-2000:]}]
            print(f"part {part}: {time.perf_counter() - started:.0f} s", flush=True)
            for row in found:
                print("  ", {k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()
                             if k != "traceback"}, flush=True)
            rows += found
            if args.out:
                import json

                Path(args.out).mkdir(parents=True, exist_ok=True)
                (Path(args.out) / "bench_gpu_rows.json").write_text(json.dumps(rows, indent=1, default=str))
    print()
    _report(args, rows)
    path = common.write_json("bench_gpu", {"args": vars(args), "rows": rows,
                                           "goal": f"MFU >= {MFU_GOAL}, peak <= {MEMORY_GOAL_GB} GB, "
                                                   f"memory model error <= {MEMORY_ERROR_GOAL:.0%}"})
    print(f"wrote {path}")


def _report(args, rows: list[dict]) -> None:
    mfu = [row for row in rows if row["part"] == "mfu" and "mfu" in row]
    if mfu:
        common.print_table(mfu, [("contestant", "contestant", ""), ("preset", "preset", ""),
                                 ("batch", "batch", ","), ("tokens_per_s", "tokens/s", ",.0f"),
                                 ("mfu", "MFU", ".1%"), ("peak_source", "peak FLOP/s from", "")])
        judged = "smoke run: not the goal's measurement" if args.smoke else \
            f"goal >= {MFU_GOAL:.0%}: {common.verdict(mfu[0]['mfu'], MFU_GOAL)}"
        print(f"MFU lunalm = {mfu[0]['mfu']:.1%} ({judged}); lunalm / HF GPT-2 = {mfu[0]['lunalm_over_peer']:.2f}")
    for row in (r for r in rows if r["part"] == "memory" and "planned_peak_gb" in r):
        measured = row["measured_peak_gb"]
        print(f"memory: {row['preset']} at context {row['context']}, micro-batch {row['micro_batch']} x "
              f"{row['grad_accum']} ({row['precision']}): planned {row['planned_peak_gb']:.2f} GB, measured "
              + ("- (CPU: no CUDA allocator)" if measured is None else
                 f"{measured:.2f} GB allocated, {row['reserved_peak_gb']:.2f} GB reserved "
                 f"(goal <= {MEMORY_GOAL_GB} GB: {common.verdict(measured, MEMORY_GOAL_GB, higher_is_better=False)})"))
    grid = [row for row in rows if row["part"] == "memgrid" and "planned_gb" in row]
    if grid:
        common.print_table(grid, [("preset", "preset", ""), ("context", "context", ","), ("micro_batch", "batch", ","),
                                  ("precision", "precision", ""), ("optimizer", "optimizer", ""),
                                  ("planned_gb", "planned GB", ".3f"), ("measured_gb", "measured GB", ".3f"),
                                  ("error", "planned / measured - 1", "+.1%")])
        errors = [abs(row["error"]) for row in grid if row["error"] is not None]
        if errors:
            print(f"memory model: largest error {max(errors):.1%} over {len(errors)} rows (goal <= "
                  f"{MEMORY_ERROR_GOAL:.0%}: {common.verdict(max(errors), MEMORY_ERROR_GOAL, False)})")
    for row in rows:
        if row["part"] in ("oom", "qlora", "optimizer") or "error" in row and row["part"] not in ("memgrid",):
            print({k: v for k, v in row.items() if k != "traceback"})


if __name__ == "__main__":
    main()
