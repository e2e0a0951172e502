"""Which recipe buys the best held-out model of one corpus: a grid of ``luna train`` runs, each scored on
held-out whole documents, beside PPMd on the same text.

bench_quality.py follows the user's path with the plan's choices; this one asks what the plan *should*
choose. Every run starts from the same ``luna plan`` config (``--device``, ``--hours``) and overrides
only what the grid names: preset (width and depth), dropout, epochs, optimizer, learning rate, context,
micro-batch. The corpus and its held-out documents are bench_quality's (``speeches`` by default: the
ATAM speeches, every document with sha1(id) % 10 == 0 held out), and so is the scoring (``luna eval``
on the best checkpoint: every held-out document after an end-of-text token, windows of the model's
context, stride half of it, bits per UTF-8 byte).

A grid entry is ``preset:dropout:epochs[:optimizer[:lr[:context[:batch[:schedule[:ema[:decay[:vocab]]]]]]]]]``
(schedule: wsd or cosine; ema: ``--ema-horizon``, 0 = the raw weights; decay: ``train.weight_decay``,
written into a copy of the plan, since ``luna train`` has no flag for it; vocab: ``--vocab-size``, a BPE
tokenizer of that size learnt for the run, where the other runs share the first run's); ``.`` keeps the
plan's value.
Each run also has a wall-clock cap (``--minutes``), so the grid's cost is bounded; ``--budget`` stops
starting new runs once that many seconds have gone. Rows are appended to ``--jsonl`` as they
finish, so a run cut short keeps what it measured.

    python bench/bench_recipe.py --device cuda --grid ".:.:." "tiny:0.2:32" --minutes 1
    python bench/bench_recipe.py --device cpu --grid ".:.:.:adamw" ".:.:.:muon" --minutes 3
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_quality  # noqa: E402
import common  # noqa: E402

FIELDS = ("preset", "dropout", "epochs", "optimizer", "lr", "context", "batch", "schedule", "ema", "decay", "vocab")
FLAGS = {"preset": "--preset", "dropout": "--dropout", "epochs": "--epochs", "optimizer": "--optimizer",
         "lr": "--lr", "context": "--context", "batch": "--batch-size", "schedule": "--schedule",
         "ema": "--ema-horizon", "vocab": "--vocab-size"}


def parse_entry(entry: str) -> dict:
    values = entry.split(":")
    if len(values) > len(FIELDS):
        raise SystemExit(f"grid entry {entry!r}: at most {len(FIELDS)} fields ({':'.join(FIELDS)})")
    return {field: value for field, value in zip(FIELDS, values) if value not in ("", "-", ".")}


def train_and_score(name: str, overrides: dict, plan: Path, tokenizer: Path | None, args, work: Path,
                    heldout_dir: Path) -> dict:
    flags = [item for field, value in overrides.items() if field in FLAGS for item in (FLAGS[field], value)]
    if "decay" in overrides:
        import yaml

        config = yaml.safe_load(plan.read_text(encoding="utf-8"))
        config["train"]["weight_decay"] = float(overrides["decay"])
        plan = work / f"{name}-plan.yaml"
        plan.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    if tokenizer is not None and "vocab" not in overrides:
        flags += ["--tokenizer-path", str(tokenizer)]
    log = work / f"{name}.log"
    started = time.perf_counter()
    bench_quality.luna("train", "--config", str(plan), "--name", name, "--runs-dir", str(work / "runs"),
                       "--minutes", f"{args.minutes:g}", "--device", args.device, "--quiet", *flags, cwd=work, log=log)
    wall = time.perf_counter() - started
    run_dir = work / "runs" / name
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    config = (run_dir / "config.yaml").read_text(encoding="utf-8")
    scored = bench_quality.lunalm_score(run_dir, heldout_dir, work, device=args.device)
    return {"name": name, **overrides, "bpb": scored["bits_per_byte"], "steps": summary["steps"],
            "train_s": summary["wall_time_s"], "wall_s": wall, "stop": summary.get("status"),
            "best_val_loss": summary.get("best_val_loss"), "method": scored["method"],
            "resolved": _resolved(config)}


def _resolved(config_yaml: str) -> dict:
    import yaml

    config = yaml.safe_load(config_yaml)
    model, train, data = config.get("model", {}), config.get("train", {}), config.get("data", {})
    return {"preset": model.get("preset"), "dropout": model.get("dropout"), "context": data.get("context_length"),
            "optimizer": train.get("optimizer"), "lr": train.get("lr"), "epochs": train.get("epochs"),
            "decay": train.get("weight_decay"),
            "micro_batch": train.get("micro_batch_size"), "grad_accum": train.get("grad_accum_steps"),
            "max_steps": train.get("max_steps")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", default="speeches", help="a bench_quality corpus (default speeches)")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda: the plan's and the runs' device")
    parser.add_argument("--hours", type=float, default=0.05, help="luna plan --hours of the base config (default 0.05)")
    parser.add_argument("--minutes", type=float, default=3.0, help="wall-clock cap of each run (default 3)")
    parser.add_argument("--budget", type=float, default=0, help="start no run after this many seconds (0 = none)")
    parser.add_argument("--grid", nargs="+", default=[".:.:."], help="entries preset:dropout:epochs[:optimizer"
                        "[:lr[:context[:batch[:schedule[:ema[:decay[:vocab]]]]]]]], '.' = the plan's value "
                        "(default: the plan alone)")
    parser.add_argument("--jsonl", default=None, help="append each row here as it finishes (default: none)")
    parser.add_argument("--keep", metavar="DIR", help="keep runs and logs in DIR (default: a temporary folder)")
    parser.add_argument("--no-coders", action="store_true",
                        help="skip PPMd, xz and unigram (a minute on a large corpus)")
    args = parser.parse_args()
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    from lunalm.corpus import builtin

    corpora = bench_quality.load_corpora(builtin.database_path())
    corpus = corpora[args.corpus]
    began = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(args.keep or scratch)
        work.mkdir(parents=True, exist_ok=True)
        train_dir = bench_quality.write_documents(corpus["train"], work / "train")
        heldout_dir = bench_quality.write_documents(corpus["heldout"], work / "heldout")
        plan = work / "plan.yaml"
        bench_quality.luna("plan", str(train_dir), "--device", args.device, "--hours", f"{args.hours:g}",
                           "--out", str(plan), cwd=work, log=work / "plan.log")
        from lunalm.tokenizer import Tokenizer

        tokenizer_path, coders = None, None
        for index, entry in enumerate(args.grid):
            if args.budget and time.perf_counter() - began > args.budget:
                print(f"  budget of {args.budget:g} s spent: {len(args.grid) - index} entries not run", flush=True)
                break
            overrides = parse_entry(entry)
            row = train_and_score(f"r{index:02d}", overrides, plan, tokenizer_path, args, work, heldout_dir)
            row["entry"] = entry
            run_tokenizer = work / "runs" / row["name"] / "tokenizer" / "tokenizer.json"
            if tokenizer_path is None and "vocab" not in overrides:  # one tokenizer for the plan's vocabulary
                tokenizer_path = run_tokenizer
            if coders is None and args.no_coders:
                coders = {"ppmd": float("nan")}
            elif coders is None:
                texts, train_texts = bench_quality.cleaned_texts(heldout_dir), bench_quality.cleaned_texts(train_dir)
                coders = bench_quality.coder_scores(train_texts, texts, Tokenizer.load(run_tokenizer))
                print(f"  PPMd (order {coders['ppmd_order']}) {coders['ppmd']:.4f}, xz {coders['xz']:.4f}, "
                      f"unigram {coders['unigram']:.4f}", flush=True)
            row["ppmd"] = coders["ppmd"]
            row["over_ppmd"] = row["bpb"] / coders["ppmd"]
            rows.append(row)
            print(f"  {entry:<28} {row['bpb']:.4f} bits/byte ({row['over_ppmd']:.3f}x PPMd), {row['steps']} steps, "
                  f"{row['train_s']:.0f} s, {row['stop']}; {row['resolved']}", flush=True)
            if args.jsonl:
                with open(args.jsonl, "a", encoding="utf-8") as handle:
                    handle.write(json.dumps({**row, "device": args.device, "corpus": args.corpus,
                                             "coders": coders}) + "\n")
    if rows:
        print(f"\nmethod: {rows[0]['method']}\n")
        common.print_table(rows, [("entry", "grid entry", ""), ("bpb", "held-out bits/byte", ".4f"),
                                  ("over_ppmd", "/ PPMd", ".3f"), ("steps", "steps", ","),
                                  ("train_s", "train s", ".0f"), ("stop", "stop", "")])
        path = common.write_json("bench_recipe", {"args": vars(args), "rows": rows})
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
