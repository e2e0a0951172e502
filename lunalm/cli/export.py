"""``luna export CKPT --to hf|gguf OUT``: a checkpoint in the formats other tools load."""

from __future__ import annotations

import argparse
import shlex
import textwrap


def add_export_parser(commands) -> None:
    """The ``export`` subcommand (argparse only: the exporters are imported when it runs)."""
    from lunalm.cli import _formatter, add_trust_argument

    parser = commands.add_parser(
        "export", formatter_class=_formatter, help="export a checkpoint for transformers, llama.cpp, Ollama",
        description=textwrap.dedent("""\
            Write a checkpoint in another tool's format. --to hf: a Hugging Face folder (config,
            safetensors, tokenizer, generation config) that transformers loads with
            AutoModelForCausalLM / AutoTokenizer. --to gguf: one .gguf file for llama.cpp and Ollama,
            plus an Ollama Modelfile beside it, OUT's name with .Modelfile (needs `pip install gguf`).
            Fine-tunes of Hugging Face bases export too: --to hf keeps their architecture; --to gguf
            writes Llama and GPT-2 fine-tunes (other architectures: --to hf, then llama.cpp's
            convert_hf_to_gguf.py). The output is written
            to a temporary name and renamed, so an interrupted export leaves nothing behind."""),
        epilog=textwrap.dedent("""\
            examples:
              luna export runs/NAME/checkpoints/best --to hf exported/NAME
              luna export runs/NAME/checkpoints/best --to gguf ollama/NAME.gguf
              luna export CKPT --to gguf model-f16.gguf --dtype f16 --force
              ollama create NAME -f ollama/NAME.Modelfile && ollama run NAME "Ankara'da\""""))
    parser.add_argument("checkpoint", metavar="CKPT", help="a checkpoint folder (best/, final/, step-N/)")
    parser.add_argument("--to", required=True, choices=["hf", "gguf"], help="the format to write")
    parser.add_argument("out", metavar="OUT", help="hf: a new or empty folder; gguf: a file ending in .gguf")
    parser.add_argument("--dtype", default="f32", choices=["f32", "f16", "bf16"],
                        help="weight precision (default f32; gguf: f32 or f16)")
    parser.add_argument("--force", action="store_true", help="replace OUT (and a gguf's OUT.Modelfile) if it exists")
    add_trust_argument(parser)
    parser.set_defaults(run=run_export)


def run_export(args: argparse.Namespace) -> int:
    from lunalm.export import export_checkpoint

    result = export_checkpoint(args.checkpoint, args.to, args.out, dtype=args.dtype, force=args.force,
                               trust_unverified=args.trust_unverified)
    print(f"wrote {result.path} ({result.format}, {result.dtype}, {result.n_parameters:,} parameters, "
          f"{_size(result.size_bytes)})")
    for note in result.notes:
        print(f"note: {note}")
    if result.format == "hf":
        _print_hf_usage(result)
    else:
        _print_ollama_usage(result)
    return 0


def _print_hf_usage(result) -> None:
    print("load it with transformers:")
    print("  from transformers import AutoModelForCausalLM, AutoTokenizer")
    print(f"  tokenizer = AutoTokenizer.from_pretrained({str(result.path)!r})")
    print(f"  model = AutoModelForCausalLM.from_pretrained({str(result.path)!r})")


def _print_ollama_usage(result) -> None:
    print(f"wrote {result.modelfile}:")
    for line in result.modelfile_text.splitlines():
        print(f"  {line}")
    name = result.path.stem
    print("use it with Ollama:")
    print(f"  ollama create {name} -f {result.modelfile}")
    chat = ".Messages" in result.modelfile_text  # an instruction fine-tune: its chat template in Go
    prompt = shlex.quote(result.example_prompt)
    print(f"  ollama run {name}" + ("                  then type a message (the turns use its chat template)"
                                     if chat else f" {prompt}"))
    print("or with llama.cpp:")
    print(f"  llama-cli -m {result.path} -p {prompt} -n 100 --temp 0.8")


def _size(n_bytes: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n_bytes < 1000 or unit == "GB":
            return f"{n_bytes:,.0f} {unit}" if unit == "bytes" else f"{n_bytes:,.1f} {unit}"
        n_bytes /= 1000
    return ""
