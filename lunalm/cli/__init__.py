"""The ``luna`` command line: a thin layer over library functions.

Only argparse is imported at module level so ``luna --help`` answers instantly; each command imports
what it needs. User errors (``LunaError``) become one ``error:`` line and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
import textwrap

from lunalm.cli.options import (HF_DATASET_HELP, HelpFormatter, config_default as _default,  # noqa: F401
                               corpus_paths, help_with_default, tracker_list as _tracker_list)
from lunalm.config import SCHEDULES

EPILOG = """\
examples:
  luna train                           train a small model on the built-in Turkish corpus (CPU: minutes)
  luna plan my_texts/ --gpu "GTX 1650"  the right model, batch, lr and epochs for that card, as YAML
  luna train my_texts/ --preset tiny --epochs 3
  luna generate runs/NAME/checkpoints/best --prompt "Ankara'da"
  luna resume runs/NAME                continue a run exactly where it stopped
  luna analyze                         statistics of the built-in Turkish corpus (Atatürk's speeches)
  luna analyze my_texts/ --files       per-file statistics, encodings found, mojibake repaired
  luna analyze data/ --filter --fix clean/   write the repaired, prose-only UTF-8 corpus to clean/
  luna runs list                       every run so far; `luna runs compare A B --plot c.png`
  luna scan ~/old_experiments          import past attempts (logs, notebooks, HF Trainer output, scripts)
  luna report --html                   what worked, what failed and the fix, as a report with charts
  luna finetune --base models/gpt2 alpaca.jsonl --lora    fine-tune a local HF model (LoRA, instructions)
  luna export CKPT --to gguf m.gguf    for llama.cpp / Ollama (or --to hf DIR for transformers)

Every command has its own --help with examples.
"""


def _lazy(module: str, function: str):
    """A command's entry point, imported only when that command runs (keeps ``luna --help`` fast)."""
    def run(args: argparse.Namespace) -> int:
        import importlib

        return getattr(importlib.import_module(module), function)(args)

    return run


def process_count(text: str) -> int:
    """argparse type of --nproc: a whole number of processes, at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number of processes >= 1, e.g. --nproc 2")
    return value


def _formatter(prog: str) -> argparse.HelpFormatter:
    return HelpFormatter(prog, max_help_position=32)


def _add_corpus_arguments(parser: argparse.ArgumentParser, *, filtered: bool = False) -> None:
    """The corpus flags; each left out keeps the config file's value (``filtered``: prose filter on by default)."""
    group = parser.add_argument_group("corpus")
    group.add_argument("paths", nargs="*", metavar="PATH",
                       help="text files or folders (.txt .md .jsonl, optionally .gz .bz2 .xz .zst; WikiExtractor "
                            "output, a document per article; CoNLL-U .conllu: its sentences; tables .parquet .arrow "
                            ".csv .tsv and .json arrays: a document per row of --text-field; web pages .html, "
                            "e-books .epub, .docx .odt .rtf .pdf: their text; subtitles .srt .vtt .ass: their dialogue); "
                            "none = built-in corpus")
    group.add_argument("--include", action="append", metavar="GLOB",
                       help="file-name pattern to read inside folders (repeatable; default: *.txt *.md *.jsonl, "
                            "also compressed, *.parquet *.arrow *.html *.htm *.epub *.docx *.odt *.rtf *.pdf *.srt *.vtt *.ass, and "
                            "WikiExtractor's files with no suffix)")
    group.add_argument("--exclude", action="append", metavar="GLOB",
                       help="file-name or relative-path pattern to skip (repeatable; default: none)")
    group.add_argument("--text-field", metavar="NAME",
                       help="JSONL/JSON field (a.b for one inside an object) or Parquet, Arrow, CSV, TSV column holding the text; several, comma-separated (question,answer), are joined by a blank line into one document (default: text)")
    group.add_argument("--hf-dataset", metavar="NAME[:CONFIG][:SPLIT]", help=HF_DATASET_HELP)
    group.add_argument("--filter", action=argparse.BooleanOptionalAction,
                       help="drop text that is not prose: indexes, tables, lists, boilerplate ("
                            + ("default: on, or the --config file's corpus.filter_non_prose; --no-filter keeps "
                               "everything" if filtered else "default: off") + ")")
    group.add_argument("--no-dedup", action="store_true", help="keep exact-duplicate documents")


def corpus_overrides(args: argparse.Namespace) -> dict:
    """The CorpusConfig fields the corpus flags set (flags left out set nothing)."""
    values = {"paths": corpus_paths(args) if hasattr(args, "paths") else (), "include": tuple(getattr(args, "include", None) or ()),
              "exclude": tuple(getattr(args, "exclude", None) or ()), "text_field": getattr(args, "text_field", None),
              "filter_non_prose": getattr(args, "filter", None),
              "dedup": False if getattr(args, "no_dedup", False) else None}
    return {name: value for name, value in values.items() if value not in (None, ())}


def _corpus_config(args: argparse.Namespace, *, filtered: bool = False):
    from lunalm.config import CorpusConfig

    return CorpusConfig(**{"filter_non_prose": filtered, **corpus_overrides(args)})


def _add_analyze(commands) -> None:
    parser = commands.add_parser(
        "analyze", formatter_class=_formatter, help="corpus statistics, encoding repair, non-prose report",
        description=textwrap.dedent("""\
            Read a corpus, detect each file's encoding, repair mojibake (UTF-8 text that was once
            decoded as cp1254/cp1252), normalise to NFC, drop exact duplicates, and report documents,
            words, characters, tokens, Turkish letters and text that is not prose (indexes, tables,
            boilerplate). Streams: memory stays flat on large corpora."""),
        epilog=textwrap.dedent("""\
            examples:
              luna analyze                          the built-in corpus
              luna analyze books/ --files           a table for each file
              luna analyze dump.jsonl --text-field content --json > stats.json
              luna analyze old_files/ --filter --fix clean/   repaired, filtered UTF-8 copy in clean/"""))
    _add_corpus_arguments(parser)
    parser.add_argument("--files", action="store_true", help="also print statistics per file")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON instead of tables")
    parser.add_argument("--fix", metavar="OUT", help="write the repaired (and with --filter, filtered) "
                        "UTF-8 corpus into the new folder OUT (default: write nothing)")
    parser.add_argument("--tokenizer", metavar="PATH",
                        help="count tokens with this tokenizer.json / HF folder (default: a BPE trained "
                             "quickly on the corpus)")
    parser.set_defaults(run=_run_analyze)


def _run_analyze(args: argparse.Namespace) -> int:
    from lunalm.cli.analyze import run_analyze

    return run_analyze(_corpus_config(args), show_files=args.files, as_json=args.json,
                       fix_dir=args.fix, tokenizer_path=args.tokenizer)


DEFAULT_TRAIN_MINUTES = 5.0  # `luna train` with no budget: what a first run on a laptop CPU is worth waiting for


def _add_train(commands) -> None:
    parser = commands.add_parser(
        "train", formatter_class=_formatter, help="train a model on a corpus (default: built-in corpus)",
        description=textwrap.dedent("""\
            Train a Llama-style model from scratch: tokenizer and token shards (cached), Muon or
            AdamW (with decay groups) and warmup-stable-decay (or cosine), clipping, accumulation, mixed
            precision by device, a weight average, evaluation with
            early stopping, samples, atomic checkpoints and exact resume. Writes runs/NAME/ with
            metrics.jsonl, loss.png, samples.md, tb/ and checkpoints/{best,final,step-N}/."""),
        epilog=textwrap.dedent("""\
            examples:
              luna train                                    the built-in corpus, nano preset (CPU demo)
              luna train books/ --preset tiny --epochs 3    3.5M + embeddings, three passes
              luna train data.jsonl --tokenizer char --context 256 --max-steps 2000
              luna train --config plan.yaml                 a config written by `luna plan`
              luna train books/ --preset small --nproc 2    data-parallel on 2 GPUs (or CPU processes)"""))
    _add_corpus_arguments(parser, filtered=True)
    parser.add_argument("--config", metavar="YAML", help="run config file; flags below override it (default: none)")
    parser.add_argument("--name", help="run folder name under --runs-dir (default: PRESET-DATE-TIME)")
    parser.add_argument("--runs-dir", metavar="DIR", help="where run folders go (default: runs)")
    model = parser.add_argument_group("model and data")
    model.add_argument("--preset", help="parameters without the embeddings: pico (0.4M) | nano (0.9M) | tiny (3.5M) | "
                       f"small (32M) | medium (127M) | gpt2 (default {_default('ModelChoice', 'preset')})")
    model.add_argument("--context", type=int, metavar="T",
                       help="context length in tokens (default 256; 128 on a CPU without --config)")
    model.add_argument("--tokenizer", choices=["bpe", "char", "pretrained"], help="tokenizer kind (default bpe)")
    model.add_argument("--tokenizer-path", metavar="PATH",
                       help="tokenizer.json or HF folder (implies pretrained; default: none)")
    model.add_argument("--vocab-size", type=int, metavar="N", help="BPE vocabulary (default: by corpus size)")
    model.add_argument("--dropout", type=float, metavar="P",
                       help=f"residual dropout probability (default {_default('ModelChoice', 'dropout')})")
    model.add_argument("--activation-checkpointing", action="store_true", help="less memory, ~30%% slower")
    loop = add_run_arguments(parser, lr_help="peak learning rate (default: by model size)",
                             budget_title=f"budget (the first reached ends the run; with none of them and no "
                                          f"--config: --minutes {DEFAULT_TRAIN_MINUTES:g})")
    loop.add_argument("--compile", action="store_true", help="torch.compile the model")
    loop.add_argument("--nproc", type=process_count, metavar="N",
                      help="data-parallel over N processes with torchrun (DDP: one per GPU, gloo on CPU; "
                           "default 1)")
    loop.add_argument("--shard", action="store_true",
                      help="with --nproc: FSDP, shard weights, gradients and AdamW state (models too big to replicate)")
    parser.set_defaults(run=_lazy("lunalm.cli.train", "run_train"), default_minutes=DEFAULT_TRAIN_MINUTES)


def add_run_arguments(parser: argparse.ArgumentParser, *, lr_help: str,
                      budget_title: str = "budget (the first reached ends the run; default 1 epoch)"):
    """Budget, optimisation and loop flags shared by ``train`` and ``finetune``; returns the loop group."""
    budget = parser.add_argument_group(budget_title)
    budget.add_argument("--minutes", type=float, metavar="M",
                        help="wall-clock minutes of training: the step count is measured on this machine at "
                             "the start and written to config.yaml (max_steps), so resume stays exact (default: "
                             "none; luna train with no budget and no --config: 5)")
    budget.add_argument("--epochs", type=float, help="passes over the training text (default: no limit)")
    budget.add_argument("--max-steps", type=int, help="optimizer steps (default: no limit)")
    budget.add_argument("--tokens", type=int, help="training tokens (default: no limit)")
    optim = parser.add_argument_group("optimisation")
    optim.add_argument("--batch-size", type=int, metavar="B", help="micro-batch in sequences (default 16)")
    optim.add_argument("--grad-accum", type=int, metavar="K", help="micro-batches per step (default 1)")
    optim.add_argument("--optimizer", choices=["auto", "adamw", "muon"],
                       help="auto (default): muon when training from scratch on a CPU for at most 10 passes "
                            "over the text (2 %% lower held-out bits/byte than adamw on the 3-minute speeches "
                            "plan; worse at 16 passes), else adamw (GPUs, fine-tunes). muon: Muon on the "
                            "transformer blocks' matrices and AdamW on embeddings, head and norms, both at 3x "
                            "--lr (Muon learns best higher), with the same schedule; the automatic weight decay keeps "
                            "its averaging window (not LoRA or --shard)")
    optim.add_argument("--lr", type=float, help=lr_help)
    optim.add_argument("--ema-horizon", type=float, metavar="SHARE",
                       help="evaluate, keep and sample an exponential moving average of the weights whose horizon "
                            "is this share of the run's steps (models trained from scratch without --shard; "
                            "fine-tunes keep their raw weights); 0 = the raw weights (default "
                            f"{_default('TrainConfig', 'ema_horizon')}: on held-out speeches it beat the raw "
                            "weights by 0.1%% at the end of a run and by 3%% in its middle, where early stopping "
                            "picks its best)")
    optim.add_argument("--schedule", choices=list(SCHEDULES),
                       help="wsd (default): the peak lr held, then a linear decay to 10%% of it over the last "
                            "30%% of the steps (1.5%% lower held-out bits/byte than cosine on the 3-minute "
                            "speeches plan); cosine: cosine decay from the end of warmup")
    optim.add_argument("--warmup-steps", type=int, help="linear warmup (default: 5%% of the run, at most 1000)")
    optim.add_argument("--seed", type=int, help=f"weights, data order and sampling (default {_default('TrainConfig', 'seed')})")
    loop = parser.add_argument_group("evaluation, samples, checkpoints, hardware")
    loop.add_argument("--eval-every", type=int, metavar="STEPS",
                      help=f"steps between evaluations (default {_default('TrainConfig', 'eval_every')})")
    loop.add_argument("--sample-every", type=int, metavar="STEPS",
                      help=f"steps between samples, 0 = only at the end (default {_default('TrainConfig', 'sample_every')})")
    loop.add_argument("--checkpoint-every", type=int, metavar="STEPS",
                      help=f"steps between checkpoints (default {_default('TrainConfig', 'checkpoint_every')})")
    loop.add_argument("--patience", type=int, help="evaluations without improvement before stopping "
                      f"(default {_default('TrainConfig', 'patience')})")
    loop.add_argument("--cooldown", type=float, metavar="SHARE",
                      help="when patience runs out, go back to the best weights and anneal the lr linearly to "
                      "its floor over this share of the steps to the best, then stop; 0 = stop at once "
                      f"(default {_default('TrainConfig', 'cooldown')})")
    loop.add_argument("--device", help="auto | cpu | cuda | cuda:N | mps (default auto)")
    loop.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16"],
                      help="auto: bf16 on a CPU that multiplies it natively (AVX-512 BF16, AMX), else fp32; "
                           "bf16 on Ampere+, fp16 on older GPUs (default auto)")
    loop.add_argument("--quiet", action="store_true", help="no progress bar or samples on the console")
    loop.add_argument("--report-to", metavar="A,B", type=_tracker_list,
                      help="experiment trackers besides metrics.jsonl: tensorboard, wandb, mlflow, trackio, or none "
                           "(default tensorboard)")
    return loop


def _add_resume(commands) -> None:
    parser = commands.add_parser(
        "resume", formatter_class=_formatter, help="continue a run from its last good checkpoint",
        description="Continue a run bit-exactly from its newest complete step checkpoint (a damaged one "
                    "is detected by its sha256 manifest and skipped).",
        epilog="examples:\n  luna resume runs/nano-20261123-120000")
    parser.add_argument("run_dir", metavar="RUN_DIR", help="the run folder that `luna train` created")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or samples on the console")
    parser.add_argument("--nproc", type=process_count, metavar="N", help="continue with N processes (any number: "
                        "checkpoints do not depend on it; default 1)")
    parser.set_defaults(run=_lazy("lunalm.cli.train", "run_resume"))


def _add_generate(commands) -> None:
    parser = commands.add_parser(
        "generate", formatter_class=_formatter, help="generate text from a checkpoint (streaming, KV cache)",
        description="Continue one or more prompts with a trained model, streaming tokens to the terminal.",
        epilog=textwrap.dedent("""\
            examples:
              luna generate runs/NAME/checkpoints/best --prompt "Türkiye'nin"
              luna generate runs/NAME/checkpoints/best --prompt "Bugün" --prompt "Yarın" --temperature 0.6
              luna generate CKPT --prompt "Ankara" --temperature 0     greedy"""))
    parser.add_argument("checkpoint", metavar="CKPT", help="a checkpoint folder (best/, final/, step-N/)")
    parser.add_argument("--prompt", action="append", help="text to continue (repeatable; default: empty)")
    add_sampling_arguments(parser, max_new_tokens=200, temperature=0.8)
    parser.set_defaults(run=_lazy("lunalm.cli.generate", "run_generate"))


def add_sampling_arguments(parser: argparse.ArgumentParser, *, max_new_tokens: int, temperature: float) -> None:
    """Sampling flags shared by ``generate`` and ``chat``."""
    parser.add_argument("--max-new-tokens", type=int, default=max_new_tokens, help="at most this many new tokens")
    parser.add_argument("--temperature", type=float, default=temperature, help="0 = greedy")
    parser.add_argument("--top-k", type=int, default=50, help="0 = off")
    parser.add_argument("--top-p", type=float, default=0.95, help="1.0 = off")
    parser.add_argument("--repetition-penalty", type=float, default=1.1,
                        help="> 1 discourages repeating tokens; 1.0 = off (ignored when --temperature is 0)")
    parser.add_argument("--seed", type=int, help="sampling seed (default: random)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N | mps")
    add_trust_argument(parser)


def add_trust_argument(parser: argparse.ArgumentParser) -> None:
    """``--trust-unverified``: commands that load a checkpoint (generate, chat, eval, export)."""
    parser.add_argument("--trust-unverified", action="store_true",
                        help="load a lunalm checkpoint whose manifest.json (sha256 of every file) is missing; "
                             "its files may be damaged")


def _add_eval(commands) -> None:
    parser = commands.add_parser(
        "eval", formatter_class=_formatter, help="loss, perplexity, accuracy, bits per byte of a checkpoint",
        description="Score a checkpoint on whole documents of text files, or (no PATH) of its run's validation "
                    "split: bits per byte (comparable across tokenizers and with compressors), loss, perplexity "
                    "and next-token accuracy, with sliding windows (see --stride); the method is printed.",
        epilog=textwrap.dedent("""\
            examples:
              luna eval runs/NAME/checkpoints/best               the run's own validation split
              luna eval runs/NAME/checkpoints/best heldout.txt   other text
              luna eval CKPT test/ --json
              luna eval CKPT heldout.txt --stride 128        non-overlapping windows for a context of 128 (faster)
              luna eval CKPT laws.jsonl --text-field content
              luna eval FINETUNED_CKPT test.jsonl            instruction examples: the answers' tokens only"""))
    parser.add_argument("checkpoint", metavar="CKPT", help="a checkpoint folder")
    parser.add_argument("paths", nargs="*", metavar="PATH", help="text to evaluate on (default: validation split)")
    parser.add_argument("--stride", type=int, metavar="TOKENS",
                        help="sliding-window step: each token is scored with at least context - stride tokens "
                             "before it (default: half the context; = context for the fast, non-overlapping split)")
    parser.add_argument("--batch-size", type=int, default=8, help="windows per forward pass (default: %(default)s)")
    parser.add_argument("--max-tokens", type=int, default=2_000_000,
                        help="score whole documents until this many tokens (default: %(default)s)")
    parser.add_argument("--text-field", metavar="NAME",
                        help="JSONL/JSON field or CSV/TSV column holding the text (default: the run's, else text)")
    parser.add_argument("--include", action="append", metavar="GLOB",
                        help="file names read inside folders (repeatable; default: the text formats)")
    parser.add_argument("--filter", action=argparse.BooleanOptionalAction,
                        help="drop text that is not prose before scoring (default: as the run trained; a model "
                             "trained on filtered text is scored on filtered text)")
    parser.add_argument("--format", choices=["auto", "text", "alpaca", "chat"], default="auto",
                        help="instruction data (alpaca, chat) is scored on its answers only; auto: from the first "
                             "record, as luna finetune does (default: %(default)s)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N | mps (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    add_trust_argument(parser)
    parser.set_defaults(run=_lazy("lunalm.cli.generate", "run_eval"))


def _add_plan(commands) -> None:
    parser = commands.add_parser(
        "plan", formatter_class=_formatter, help="the right run for this corpus and this hardware (writes YAML)",
        description=textwrap.dedent("""\
            Look at the corpus and the machine and write a complete run config that
            `luna train --config` reads unchanged: model size against the amount of text, dropout,
            context, micro-batch and accumulation that fit the memory, learning rate, epochs,
            evaluation and checkpoint frequency, precision. Every choice comes with its reason,
            plus memory, time and disk estimates and what to change if memory runs out, or if you
            want it faster or better. --probe measures a few real steps instead of trusting tables."""),
        epilog=textwrap.dedent("""\
            examples:
              luna plan                                  built-in corpus, this machine
              luna plan books/ --gpu "GTX 1650"          plan for a 4 GB GTX 1650 (no GPU needed here)
              luna plan books/ --vram 6GB --hours 6 --goal best
              luna plan books/ --preset small --epochs 15   check a plan you had in mind
              luna plan --device cpu --probe --explain   measure this CPU; show the memory table
              luna train --config plan.yaml              then train it"""))
    _add_corpus_arguments(parser, filtered=True)
    hw = parser.add_argument_group("hardware")
    hw.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"],
                    help="plan for this machine's CPU or GPU (default: the GPU if PyTorch sees one)")
    hw.add_argument("--gpu", metavar="NAME", help='plan for a known card, e.g. "GTX 1650", T4, "RTX 3060", A100 '
                    "(default: this machine's)")
    hw.add_argument("--vram", metavar="SIZE", help="GPU memory, e.g. 4GB (default: the card's)")
    hw.add_argument("--nproc", type=process_count, default=1, metavar="N",
                    help="data-parallel processes, one per GPU (global batch and time account for it)")
    goal = parser.add_argument_group("what you want")
    goal.add_argument("--goal", default="balanced", choices=["fast", "balanced", "best"],
                      help="fast: 1 epoch, small model; best: up to 10 epochs, dropout (default balanced)")
    goal.add_argument("--hours", type=float, help="time budget: fewer epochs when the plan would take longer "
                      "(default: no limit)")
    goal.add_argument("--preset", help="a model size you have in mind, checked against the data (default: chosen)")
    goal.add_argument("--epochs", type=float, help="epochs you have in mind (default: chosen)")
    goal.add_argument("--context", type=int, metavar="T", help="context length in tokens (default: chosen)")
    goal.add_argument("--tokenizer", choices=["bpe", "char", "pretrained"], default="bpe", help="tokenizer kind")
    goal.add_argument("--tokenizer-path", metavar="PATH",
                      help="tokenizer.json or HF folder (implies pretrained; default: none)")
    goal.add_argument("--vocab-size", type=int, metavar="N", help="BPE vocabulary (default: by corpus size)")
    out = parser.add_argument_group("measuring and output")
    out.add_argument("--probe", action="store_true",
                     help="run a few real steps here: tokens/s, peak memory, largest micro-batch (on by "
                     "itself for --hours on this CPU, whose speed no table knows: ~5 s)")
    out.add_argument("--no-probe", action="store_true", help="trust the tables even for --hours on this CPU")
    out.add_argument("--lr-test", action="store_true", help="also run a learning-rate range test (~1 min)")
    out.add_argument("--explain", action="store_true", help="print the memory table part by part")
    out.add_argument("--out", default="plan.yaml", metavar="YAML", help="where to write the config (default plan.yaml)")
    out.add_argument("--json", action="store_true", help="print the plan as JSON")
    out.add_argument("--registry", metavar="FILE", help="past runs that correct the estimates "
                     "(default: $LUNALM_REGISTRY, else RUNS_DIR/registry.sqlite)")
    out.add_argument("--runs-dir", default="runs", metavar="DIR", help="where runs live")
    parser.set_defaults(run=_lazy("lunalm.cli.plan", "run_plan"))


def _add_registry_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--registry", metavar="FILE",
                        help="registry file (default: $LUNALM_REGISTRY, else RUNS_DIR/registry.sqlite)")
    parser.add_argument("--runs-dir", default="runs", metavar="DIR", help="where runs live (default: runs)")


def _add_scan(commands) -> None:
    parser = commands.add_parser(
        "scan", formatter_class=_formatter, help="import past training attempts found on disk (reads only)",
        description=textwrap.dedent("""\
            Walk folders and import every training attempt into the run registry by reading files,
            never executing or unpickling them: lunalm run folders, Hugging Face Trainer output
            (trainer_state.json), Lightning run folders (hparams.yaml, metrics.csv), litgpt output
            folders (logs/csv, final/hyperparameters.yaml), TensorBoard event files
            (events.out.tfevents.*), MLflow runs (mlruns/), Weights & Biases run files
            (wandb-summary.json, wandb-metadata.json, config.yaml, output.log), logs (nanoGPT, tqdm,
            HF, litgpt, torchtitan, LLaMA-Factory's trainer_log.jsonl) and their tracebacks, Jupyter
            notebooks, and training scripts (parsed with ast). Each attempt gets an outcome - success,
            failure or unknown - with the evidence that decided it. Scanning again updates, never
            duplicates."""),
        epilog=textwrap.dedent("""\
            examples:
              luna scan ~/experiments                 then: luna runs list, luna report
              luna scan old_runs/ colab_notebooks/ --registry team.sqlite"""))
    parser.add_argument("paths", nargs="+", metavar="DIR", help="folders (or files) to scan")
    _add_registry_arguments(parser)
    parser.add_argument("--verbose", action="store_true", help="list every skipped file with its reason")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(run=_lazy("lunalm.cli.scan", "run_scan"))


def _add_report(commands) -> None:
    parser = commands.add_parser(
        "report", formatter_class=_formatter, help="write the learnings report of all recorded attempts",
        description=textwrap.dedent("""\
            A Markdown report (with PNG charts; --html too) of everything in the registry: attempts and
            outcomes, models, optimizers, devices, error classes with counts and the fix that works,
            learning-rate and batch-size ranges of successes against failures, the best configurations,
            and loss against parameters and tokens."""),
        epilog=textwrap.dedent("""\
            examples:
              luna report                              report.md (+ charts) in the current folder
              luna report --out reports/team.md --html"""))
    _add_registry_arguments(parser)
    parser.add_argument("--out", default="report.md", metavar="MD", help="Markdown file (charts beside it)")
    parser.add_argument("--html", action="store_true", help="also write an HTML page beside it")
    parser.set_defaults(run=_lazy("lunalm.cli.scan", "run_report"))


def build_parser() -> argparse.ArgumentParser:
    from lunalm import __version__

    parser = argparse.ArgumentParser(
        prog="luna", formatter_class=_formatter, epilog=EPILOG,
        description="lunalm: turn your own text corpus into a good small language model.")
    parser.add_argument("--version", action="version", version=f"lunalm {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    _add_plan(commands)
    _add_train(commands)
    _add_resume(commands)
    _add_generate(commands)
    _add_eval(commands)
    _add_analyze(commands)
    from lunalm.cli.runs_parser import add_runs_parser

    add_runs_parser(commands)
    _add_scan(commands)
    _add_report(commands)
    from lunalm.cli.export import add_export_parser
    from lunalm.cli.finetune import add_finetune_parser

    add_finetune_parser(commands)
    from lunalm.cli.chat import add_chat_parser; add_chat_parser(commands)  # noqa: E702
    add_export_parser(commands)
    return parser


def _sigterm_as_ctrl_c() -> None:
    """SIGTERM (``kill``, a scheduler's stop) during start-up ends the command as Ctrl-C does: the message
    and exit code 130, not a silent death. The training loop installs its own handler (save, then stop)."""
    import signal

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    try:
        signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread (main() called from a thread): leave signals alone
        pass


# Flags of other training tools that people type out of habit, and what lunalm does instead.
_RESUME = ("has no {flag}: a run continues with `luna resume RUN_DIR` (the run folder it printed, e.g. "
           "runs/nano-20261123-120000; `luna runs list` shows them), bit-exactly from its newest checkpoint")
FOREIGN_FLAGS = {("train", "--resume"): _RESUME, ("train", "--resume_from_checkpoint"): _RESUME,
                 ("train", "--resume-from-checkpoint"): _RESUME, ("train", "--resume-from"): _RESUME,
                 ("finetune", "--resume"): _RESUME, ("finetune", "--resume_from_checkpoint"): _RESUME,
                 ("finetune", "--resume-from-checkpoint"): _RESUME}


def _foreign_flag(argv: list[str]) -> str | None:
    """The message for when ``argv`` uses another tool's flag for something lunalm does another way."""
    if not argv or argv[0] not in {command for command, _ in FOREIGN_FLAGS}:
        return None
    for arg in argv[1:]:
        if arg == "--":
            break
        flag = arg.split("=", 1)[0]
        if (argv[0], flag) in FOREIGN_FLAGS:
            return f"luna {argv[0]} " + FOREIGN_FLAGS[argv[0], flag].format(flag=flag)
    return None


def main(argv: list[str] | None = None) -> int:
    from lunalm.errors import LunaError

    parser = build_parser()
    hint = _foreign_flag(list(sys.argv[1:] if argv is None else argv))
    if hint:
        print(f"error: {hint}", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # --nproc re-runs the same command
    if not hasattr(args, "run"):
        parser.print_help()
        return 0
    _sigterm_as_ctrl_c()
    try:
        return args.run(args)
    except LunaError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `luna runs list --json | head` closed the pipe: the reader has what it wanted
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python flushes
        return 0
    except Exception as error:  # noqa: BLE001 - only a full disk is turned into one line, the rest re-raised
        from lunalm.errors import DiskFullError, is_disk_full

        if not is_disk_full(error):
            raise
        where = getattr(error, "filename", None) or "."
        print(f"error: {DiskFullError(where, f'writing {where}', 'run the command again')}", file=sys.stderr)
        return DiskFullError.exit_code


if __name__ == "__main__":
    sys.exit(main())
