"""``luna finetune``: continue training a pretrained model (full, LoRA, QLoRA) on text or instructions.

The flags are ``luna train``'s budget / optimisation / loop flags plus the base model and LoRA options;
the run itself is an ordinary lunalm run (``lunalm.train.session.start``): same loop, checkpoints,
registry row and ``luna resume``.
"""

from __future__ import annotations

import argparse
import dataclasses
import textwrap
import time
from pathlib import Path

DESCRIPTION = """\
    Fine-tune a local Hugging Face causal LM (GPT-2, GPT-Neo, Llama-family, Phi; safetensors + tokenizer.json)
    or a lunalm checkpoint. Raw text (.txt/.md/.jsonl with a text field) continues pretraining with the
    base's tokenizer; instruction data (.jsonl, a .json array, .csv/.tsv with a header) - Alpaca-style
    (instruction/prompt/question/input + output/response/answer/completion, Turkish soru/cevap) or chat
    (messages with roles, or ShareGPT conversations) - is rendered through the base's chat template
    (tokenizer_config.json or chat_template.jinja; lunalm's '### role:' template if it has none; saved with
    the tokenizer), and only the answers are trained (prompt tokens are masked out of the loss); examples
    with an empty prompt or answer and exact duplicates are left out and counted. --lora trains low-rank adapters (peft); --qlora loads the
    base in 4-bit NF4 (CUDA + bitsandbytes). Checkpoints load with AutoModelForCausalLM.from_pretrained
    (LoRA: adapters merged, and the adapter alone in adapter/); `luna resume RUN_DIR` continues a run."""

EPILOG = """\
    examples:
      luna finetune --base models/gpt2 books/ --max-steps 500            continued pretraining, all weights
      luna finetune --base models/llama-1b alpaca.jsonl --lora --epochs 3
      luna finetune --base models/phi-2 chats.jsonl --format chat --lora --lora-r 16 --lora-targets q_proj,v_proj
      luna finetune --base models/llama-7b data.jsonl --qlora --gradient-checkpointing --batch-size 4
      luna finetune --base runs/NAME/checkpoints/best more_text/ --lr 1e-4   a lunalm checkpoint
      luna finetune --base models/llama-1b more.jsonl --lora --adapter runs/NAME/checkpoints/final/adapter
      luna chat runs/NAME/checkpoints/final                  talk to an instruction fine-tune
      luna eval runs/NAME/checkpoints/best                   its held-out examples, answer tokens only"""


def add_finetune_parser(commands) -> None:
    from lunalm.cli import HF_DATASET_HELP, _formatter

    parser = commands.add_parser("finetune", formatter_class=_formatter,
                                 help="fine-tune a pretrained model: full, LoRA, QLoRA; text or instructions",
                                 description=textwrap.dedent(DESCRIPTION), epilog=textwrap.dedent(EPILOG))
    parser.add_argument("paths", nargs="*", metavar="PATH",
                        help="text files/folders (.txt .md .jsonl .parquet .arrow .csv .tsv), or instruction data "
                             "(.jsonl .json .csv .tsv)")
    parser.add_argument("--base", required=True, metavar="DIR",
                        help="Hugging Face model folder or Hub id (through the HF cache), or a lunalm checkpoint, "
                             "to start from (required)")
    parser.add_argument("--format", choices=["auto", "text", "alpaca", "chat"], default="auto",
                        help="data format (default auto, from the first record: messages or conversations -> chat, "
                             "a prompt and an answer field -> alpaca, otherwise text)")
    parser.add_argument("--text-field", default="text", metavar="NAME",
                        help="JSONL field / Parquet, Arrow, CSV, TSV column holding the text, for --format text")
    parser.add_argument("--hf-dataset", metavar="NAME[:CONFIG][:SPLIT]", help=HF_DATASET_HELP)
    parser.add_argument("--config", metavar="YAML", help="run config file; flags override it (default: none)")
    parser.add_argument("--name", help="run folder name (default finetune-BASE-DATE-TIME)")
    parser.add_argument("--runs-dir", metavar="DIR", help="where run folders go (default: runs)")
    lora = parser.add_argument_group("LoRA and quantisation")
    lora.add_argument("--lora", action="store_true", help="train low-rank adapters instead of all weights")
    lora.add_argument("--lora-r", type=int, default=8, metavar="R", help="adapter rank (default 8)")
    lora.add_argument("--lora-alpha", type=float, default=16.0, help="adapter scale alpha (default 16)")
    lora.add_argument("--lora-dropout", type=float, default=0.05, help="adapter dropout (default 0.05)")
    lora.add_argument("--lora-targets", metavar="A,B", help="module names to adapt (default: per architecture)")
    lora.add_argument("--adapter", metavar="DIR",
                      help="continue training this LoRA adapter (the adapter/ folder of a LoRA fine-tune, made "
                           "for the same base); its rank, alpha, dropout and targets are kept (default: a new one)")
    quant = lora.add_mutually_exclusive_group()
    quant.add_argument("--qlora", action="store_true", help="4-bit NF4 base with double quantisation (CUDA)")
    quant.add_argument("--load-8bit", action="store_true", help="8-bit base (CUDA, bitsandbytes)")
    lora.add_argument("--gradient-checkpointing", action="store_true", help="less memory, ~30%% slower")
    _add_training_flags(parser)
    parser.set_defaults(run=run_finetune, filter=False, tokenizer=None, vocab_size=None, preset=None,
                        dropout=None, activation_checkpointing=False, compile=False, nproc=None)


def _add_training_flags(parser: argparse.ArgumentParser) -> None:
    """The budget / optimisation / loop flags of ``luna train`` (read by cli.train.build_config)."""
    from lunalm.cli import add_run_arguments

    parser.add_argument("--context", type=int, metavar="T", help="tokens per window (default: the base's, at most 512)")
    add_run_arguments(parser, lr_help="peak learning rate (default 2e-5, LoRA 2e-4)")


def build_finetune_config(args):
    """``luna train``'s config building, then the base model, its tokenizer and the finetune section."""
    from lunalm.cli.train import build_config
    from lunalm.config import FinetuneConfig
    from lunalm.finetune.base import FinetuneError, base_label, inspect_base
    from lunalm.finetune.instructions import detect_format

    from lunalm.cli import corpus_paths

    info = inspect_base(args.base)  # a bad base fails here, before any data is read
    adapter = _adapter(args, info)
    args.paths = list(corpus_paths(args))
    args.hf_dataset = None  # resolved into paths
    if not args.paths:
        raise FinetuneError("no training data: pass PATH (files or folders) or --hf-dataset NAME")
    fmt = detect_format(args.paths) if args.format == "auto" else args.format
    args.tokenizer_path = str(info.path)
    if args.context is not None and not 1 <= args.context <= info.context_length:
        raise FinetuneError(f"--context {args.context}: expected 1 to {info.context_length} tokens"
                            + (f", the positions {info.path.name} was built for (it cannot read a longer window)"
                               if args.context > info.context_length else ""))
    args.context = args.context or min(info.context_length, 512)
    config = build_config(args)
    corpus = dataclasses.replace(config.corpus, text_field=args.text_field)
    finetune = FinetuneConfig(
        base=info.reference, format=fmt, lora=args.lora or args.qlora or args.load_8bit, lora_r=args.lora_r,
        lora_alpha=args.lora_alpha, lora_dropout=args.lora_dropout,
        lora_targets=tuple(t.strip() for t in (args.lora_targets or "").split(",") if t.strip()),
        quantize="4bit" if args.qlora else "8bit" if args.load_8bit else "none",
        gradient_checkpointing=args.gradient_checkpointing)
    if adapter is not None:  # the adapter's own shape: a resume rebuilds exactly this model
        finetune = dataclasses.replace(finetune, adapter=str(adapter.path), lora_r=adapter.r, lora_alpha=adapter.alpha,
                                       lora_dropout=adapter.dropout, lora_targets=adapter.targets)
    name = config.name if args.name or args.config else \
        f"finetune-{base_label(info.path).replace('/', '-')}-{time.strftime('%Y%m%d-%H%M%S')}"
    return dataclasses.replace(config, corpus=corpus, finetune=finetune, name=name)


def _adapter(args, info):
    """The checked ``--adapter`` (lunalm.finetune.base.AdapterInfo), or None without the flag."""
    from lunalm.finetune.base import FinetuneError, inspect_adapter

    if args.adapter is None:
        return None
    if not (args.lora or args.qlora or args.load_8bit):
        raise FinetuneError("--adapter continues a LoRA adapter and needs --lora (or --qlora / --load-8bit)")
    return inspect_adapter(args.adapter, info)


def run_finetune(args) -> int:
    from lunalm.cli.train import ConsoleUI, _report
    from lunalm.finetune.base import check_request
    from lunalm.train.session import start

    config = build_finetune_config(args)
    check_request(config.finetune, config.train.device)  # QLoRA without CUDA: refused before loading
    if args.lora_targets and not config.finetune.lora:
        from lunalm.finetune.base import FinetuneError

        raise FinetuneError("--lora-targets needs --lora (or --qlora / --load-8bit)")
    ui = ConsoleUI(quiet=args.quiet)
    try:
        run, status = start(config, ui)
    finally:
        ui.close()
    code = _report(run, status, args.quiet)
    final = Path(run.run_dir) / "checkpoints" / "final"
    if final.is_dir() and not args.quiet:
        print(f"  transformers: AutoModelForCausalLM.from_pretrained(\"{final}\")")
    return code
