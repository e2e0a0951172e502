"""``luna train`` / ``luna resume``: the console side of a run (progress bar, samples, summary)."""

from __future__ import annotations

import dataclasses
import json
import math
import re
import sys
from pathlib import Path

from lunalm.cli import corpus_overrides
from lunalm.config import (RunConfig, load_yaml, run_config_from_dict, run_config_to_dict)
from lunalm.errors import ConfigError


class ConsoleUI:
    """A tqdm bar with loss, lr, tokens/s and ETA; samples and messages above it."""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self.bar = None

    def progress(self, run, record: dict) -> None:
        from tqdm import tqdm

        from lunalm.train.loop import end_step

        if self.bar is None:
            self.bar = tqdm(total=end_step(run), initial=run.state.step - 1, unit="step", file=sys.stderr,
                            dynamic_ncols=True, disable=self.quiet)
        self.bar.total = end_step(run)  # shorter once patience has started the early anneal
        self.bar.update(1)
        self.bar.set_postfix_str(f"loss {record['loss']:.3f}  lr {record['lr']:.2e}  "
                                 f"{record['tokens_per_s']:,.0f} tok/s", refresh=False)

    def message(self, text: str) -> None:
        if not self.quiet:
            self._write(text)

    def warning(self, text: str) -> None:
        self._write(text)

    def sample(self, step: int, prompt: str, text: str) -> None:
        if not self.quiet:
            one_line = re.sub(r"\s+", " ", text).rstrip()  # keeps the space after the prompt
            self._write(f"  [step {step}] {prompt}{one_line}")

    def _write(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=sys.stderr)
        else:
            print(text, file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def build_config(args) -> RunConfig:
    """YAML file (if any), then command-line overrides, into one validated RunConfig."""
    values = load_yaml(args.config) if args.config else {}
    config = run_config_from_dict(values)
    filtered = config.corpus.filter_non_prose if args.config else True  # training filters unless told otherwise
    corpus = dataclasses.replace(config.corpus, **{"filter_non_prose": filtered, **corpus_overrides(args)})
    if args.tokenizer_path and args.tokenizer in ("bpe", "char"):
        raise ConfigError(f"--tokenizer {args.tokenizer} trains its own tokenizer, so --tokenizer-path "
                          f"{args.tokenizer_path} would be ignored; drop one of them (--tokenizer-path alone "
                          "uses that tokenizer)")
    overrides = {
        "tokenizer": {"kind": args.tokenizer, "vocab_size": args.vocab_size, "path": args.tokenizer_path},
        "data": {"context_length": args.context},
        "model": {"preset": args.preset, "dropout": args.dropout,
                  "activation_checkpointing": args.activation_checkpointing or None},
        "train": {"minutes": args.minutes, "epochs": args.epochs, "max_steps": args.max_steps, "tokens": args.tokens,
                  "micro_batch_size": args.batch_size, "grad_accum_steps": args.grad_accum, "lr": args.lr,
                  "optimizer": args.optimizer, "schedule": getattr(args, "schedule", None),
                  "ema_horizon": getattr(args, "ema_horizon", None),
                  "warmup_steps": args.warmup_steps, "eval_every": args.eval_every,
                  "sample_every": args.sample_every, "checkpoint_every": args.checkpoint_every,
                  "device": args.device, "precision": args.precision, "compile": args.compile or None,
                  "seed": args.seed, "patience": args.patience, "cooldown": args.cooldown,
                  "shard": getattr(args, "shard", None) or None,
                  "report_to": args.report_to},
    }
    merged = run_config_to_dict(dataclasses.replace(config, corpus=corpus))
    for section, fields in overrides.items():
        merged[section].update({k: v for k, v in fields.items() if v is not None})
    if args.tokenizer_path and not args.tokenizer:
        merged["tokenizer"]["kind"] = "pretrained"
    default_minutes = getattr(args, "default_minutes", None)  # `luna train` only; finetune: 1 epoch
    if default_minutes and not args.config:
        if not any((args.minutes, args.epochs, args.max_steps, args.tokens)):
            merged["train"]["minutes"] = default_minutes  # the default budget is time, said at the start
        merged["train"]["weight_decay"] = None  # the plan's rule once the steps are known (session)
        if _trains_on_cpu(merged["train"]["device"]):  # short windows, small batches: more steps per minute
            merged["data"]["context_length"] = CPU_CONTEXT if args.context is None else args.context
            merged["train"]["micro_batch_size"] = CPU_MICRO_BATCH if args.batch_size is None else args.batch_size
    merged["name"] = args.name if args.name is not None else merged["name"]
    merged["runs_dir"] = args.runs_dir or merged["runs_dir"]
    config = run_config_from_dict(merged)
    from lunalm.train.trackers import check_trackers

    check_trackers(config.train.report_to)  # a tracker that is not installed: refused before any work
    return config


# `luna train` on a CPU without --config. Context: lunalm.plan.recommend's CPU rule (at equal CPU time, 1.574
# held-out bits/byte against 1.721 at 256 x 16). Batch: 16 x 128 trains more tokens a second than 8 x 128 and
# at equal tokens scores the same (1.4896 against 1.4897, 1,350 x 16 against 2,700 x 8 steps); the 5-minute
# demo, automatic weight decay, reached 1.390 on its validation documents against 1.430 at batch 8 (PPMd 1.419).
CPU_CONTEXT, CPU_MICRO_BATCH = 128, 16


def _trains_on_cpu(device: str) -> bool:
    if device != "auto":
        return device == "cpu"
    import torch

    return not torch.cuda.is_available() and not torch.backends.mps.is_available()


def run_train(args) -> int:
    from lunalm.train.session import start

    config = build_config(args)
    if (args.nproc or 1) > 1:
        from lunalm.cli.launch import launch

        name = config.name or f"{config.model.preset}-{__import__('time').strftime('%Y%m%d-%H%M%S')}"
        return launch(args, config.train.device, Path(config.runs_dir) / name, extra=["--name", name])
    # the model was not chosen: on a CPU too slow for nano in the time, pico (lunalm.train.session)
    size_by_time = (getattr(args, "default_minutes", None) and not args.config and args.preset is None
                    and _trains_on_cpu(config.train.device)
                    and set(config.train.report_to) <= {"tensorboard"})  # no W&B/MLflow run opened twice
    ui = ConsoleUI(quiet=args.quiet)
    try:
        run, status = start(config, ui, size_by_time=bool(size_by_time))
    finally:
        ui.close()
    return _report(run, status, args.quiet)


def run_resume(args) -> int:
    from lunalm.train.session import resume

    if (args.nproc or 1) > 1:
        from lunalm.cli.launch import launch
        from lunalm.config import load_yaml

        device = (load_yaml(str(Path(args.run_dir) / "config.yaml")).get("train") or {}).get("device", "auto") \
            if (Path(args.run_dir) / "config.yaml").is_file() else "auto"
        return launch(args, device, Path(args.run_dir))
    ui = ConsoleUI(quiet=args.quiet)
    try:
        run, status = resume(args.run_dir, ui)
    finally:
        ui.close()
    return _report(run, status, args.quiet)


def _report(run, status: str, quiet: bool) -> int:
    code = 0 if status in ("completed", "stopped-early") else 1 if status != "interrupted" else 130
    if not run.dist.is_main:  # rank 0 reports for the whole job
        return code
    summary = json.loads((Path(run.run_dir) / "summary.json").read_text(encoding="utf-8"))
    if not quiet:
        print_summary(summary, run)
    else:  # scripts still learn where the run went
        print(summary["run_dir"])
    return code


def print_summary(summary: dict, run) -> None:
    """The one-screen summary at the end of a run."""
    from lunalm.plan.recommend import duration_text

    best = summary["best_val_loss"]
    last = summary.get("last_eval") or {}
    checkpoints = Path(summary["run_dir"]) / "checkpoints"
    rows = [
        ("status", summary["status"]),
        ("model", f"{_model_name(run.config)}: {summary['n_params'] / 1e6:.2f}M parameters"),
        ("steps", f"{summary['steps']:,} of {summary['total_steps']:,}  ({summary['tokens_seen']:,} tokens)"),
        ("best val loss", f"{best:.4f} at step {summary['best_step']}  (perplexity {math.exp(best):.2f}, "
                          f"{_best_bits_per_byte(checkpoints, last)})"
         if best is not None else "no evaluation yet" if run.eval_batches else "no validation data"),
        ("time", f"{duration_text(summary['wall_time_s'] / 3600)} on {summary['device']}, {summary['precision']}, "
                 f"{summary['tokens_per_s']:,} tokens/s"),
        *_heldout_rows(summary.get("heldout"), summary.get("passes"), summary["status"]),
        ("run folder", summary["run_dir"]),
        ("curves", (f"{summary['run_dir']}/loss.png  " if (Path(summary["run_dir"]) / "loss.png").is_file() else "")
         + f"(tensorboard --logdir {summary['run_dir']}/tb)"),
    ]
    folder = Path(summary["run_dir"])
    if (folder / "samples.md").is_file():
        rows.append(("samples", f"{folder}/samples.md"))
    target = _newest_model(checkpoints)
    if target is not None:
        rows.append(("model to use", str(target)))
    width = max(len(name) for name, _ in rows)
    print()
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
    if target is not None and _is_instruction_tuned(run.config):
        print(f"\n  chat:      luna chat {target}")
    elif target is not None:
        prompt = (run.sample_prompts or ("",))[0]
        print(f"\n  generate:  luna generate {target} {_prompt_argument(prompt)}")
    if summary["status"] == "interrupted":
        print(f"  continue:  luna resume {summary['run_dir']}")


def _heldout_rows(heldout: dict | None, passes: float | None = None,
                  status: str = "completed") -> list[tuple[str, str]]:
    """The held-out line: the best model's bits per byte on the validation documents beside PPMd's, and, where
    PPMd wins, what would help: more text once the run saw its text the most useful number of times or
    early stopping ended it, else more time or more text."""
    from lunalm.plan.recommend import MAX_USEFUL_EPOCHS

    if not heldout:
        return []
    ours, ppmd = heldout["bits_per_byte"], heldout["ppmd_bits_per_byte"]
    if ours < ppmd:
        verdict = f"{(1 - ours / ppmd) * 100:.0f} % fewer bits than PPMd"
    elif status == "stopped-early" or (passes or 0) >= 0.95 * MAX_USEFUL_EPOCHS:
        seen = f"the model saw its text ~{passes:.0f} times" if passes else "the model saw its text"
        ended = ", until validation stopped improving" if status == "stopped-early" else ""
        verdict = (f"PPMd still predicts this text better ({ours / ppmd:.2f}x its bits): {seen}{ended}, so more "
                   "text would help, more time would not")
    elif (passes or 0) >= MAX_USEFUL_EPOCHS / 2:  # repeats past ~8 teach little: the time is not what it lacks
        verdict = (f"PPMd still predicts this text better ({ours / ppmd:.2f}x its bits) (the model saw its text "
                   f"~{passes:.1f} times, of the ~{MAX_USEFUL_EPOCHS} that still teach anything): more text would "
                   "help most, more time little")
    else:
        seen = f" (the model saw its text ~{passes:.1f} times)" if passes else ""
        verdict = (f"PPMd still predicts this text better ({ours / ppmd:.2f}x its bits){seen}: train longer "
                   "(--minutes), or add text")
    return [("held-out", f"{ours:.3f} bits/byte on {heldout['documents']:,} validation document(s) never "
                         f"trained on ({heldout['bytes']:,} bytes)"),
            ("vs PPMd", f"{ppmd:.3f} bits/byte (order {heldout['ppmd_order']}, conditioned on the training "
                        f"text): {verdict}")]


def _shell_quote(text: str) -> str:
    import shlex

    return shlex.quote(text) if text else '""'


def _prompt_argument(prompt: str) -> str:
    """``--prompt TEXT`` for a shell, as ``--prompt=TEXT`` when the text starts with "-" (argparse would
    take "---" for an option)."""
    quoted = _shell_quote(prompt)
    return f"--prompt={quoted}" if prompt.startswith("-") else f"--prompt {quoted}"


def _best_bits_per_byte(checkpoints: Path, last: dict) -> str:
    """Bits per byte of the best checkpoint (its lunalm.json), else of the last evaluation, saying so."""
    try:
        meta = json.loads((checkpoints / "best" / "lunalm.json").read_text(encoding="utf-8"))
        return f"{float(meta['metrics']['bits_per_byte']):.3f} bits/byte"
    except (OSError, ValueError, KeyError, TypeError):
        return f"{last.get('bits_per_byte', float('nan')):.3f} bits/byte at the last evaluation"


def _is_instruction_tuned(config) -> bool:
    return config.finetune is not None and config.finetune.format in ("alpaca", "chat")


def _model_name(config) -> str:
    if config.finetune is None:
        return config.model.preset
    tuned = "LoRA on " if config.finetune.lora else "fine-tuned "
    from lunalm.finetune.base import base_label

    return tuned + base_label(config.finetune.base)


def _newest_model(checkpoints: Path) -> Path | None:
    """best/, else final/, else the newest step checkpoint."""
    for name in ("best", "final"):
        if (checkpoints / name).is_dir():
            return checkpoints / name
    steps = sorted(checkpoints.glob("step-*"))
    return steps[-1] if steps else None
