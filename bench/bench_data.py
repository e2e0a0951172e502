"""Data-path throughput and memory: lunalm's corpus -> token shards vs bare ``tokenizers.encode_batch``.

Input: the built-in corpus replicated into a directory of .txt files (one file per speech per copy,
``copy-NNNN/speech-XXXX.txt``) totalling ``--mb`` MB, written once into the bench cache. Every copy of a
speech gets a last line ``(kopya N)``, so no two documents are exact duplicates: lunalm drops exact
duplicates, and with plain copies it would skip most of the work the peer does.

* lunalm: ``Corpus(CorpusConfig(paths=...)).documents()`` (read, detect encoding, repair, clean, NFC,
  dedup) -> ``build_shards`` (encode, split by document, write uint16 shards) with a BPE tokenizer
  (vocab 8192) trained once on the built-in corpus.
* peer: the same tokenizer's ``.inner`` (a plain ``tokenizers.Tokenizer``) ``encode_batch`` over the
  same files read as UTF-8, in batches, no cleaning, nothing written.

At the full size, ``lunalm-one-process`` is the same path with the per-document work (cleaning, judging)
kept in one process instead of ``lunalm.corpus.workers``: the ratio of the two is what the workers buy.
``--filter`` turns the prose filter on, as ``luna train`` has it.

Throughput is MB/s of input text (file bytes on disk) for each path; goal: lunalm / peer >= 0.8.
Each path runs in a fresh subprocess at each corpus size, which reports its peak RSS (VmHWM) and its RSS
after imports; the peak should not grow with the corpus size.

    python bench/bench_data.py                 # 100 MB (the goal's size)
    python bench/bench_data.py --mb 5          # quick smoke run
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

GOAL = 0.8
PEER_BATCH_FILES = 4096  # files per encode_batch call, as lunalm's CHUNK_DOCUMENTS
PEER_BATCH_BYTES = 16 * 2**20  # ... at most ~16 MB of text per call, as lunalm's CHUNK_CHARS


# --- the replicated corpus ------------------------------------------------------------------------
def corpus_dir(mb: float) -> tuple[Path, list[Path]]:
    """Directory holding >= ``mb`` MB of replicated speeches (written once); returns it and its copy dirs."""
    from lunalm.corpus import builtin

    speeches = list(builtin.iter_speeches())
    copy_bytes = sum(len(text.encode("utf-8")) for _, text in speeches)
    n_copies = max(1, math.ceil(mb * 1e6 / copy_bytes))
    root = common.cache_root() / f"corpus-{n_copies}-copies"
    if not (root / ".complete").is_file():
        shutil.rmtree(root, ignore_errors=True)
        staging = root.with_name(root.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        for copy in range(n_copies):
            folder = staging / f"copy-{copy:04d}"
            folder.mkdir(parents=True)
            for speech_id, text in speeches:
                # the copy line makes every document unique, so lunalm's dedup keeps all of them
                (folder / f"speech-{speech_id}.txt").write_text(f"{text}\n\n(kopya {copy})\n", encoding="utf-8")
        (staging / ".complete").write_text("", encoding="utf-8")
        staging.rename(root)
    return root, sorted(p for p in root.iterdir() if p.is_dir())


def text_files(folders: list[Path]) -> list[Path]:
    return [file for folder in folders for file in sorted(folder.glob("*.txt"))]


# --- workers (each runs in a fresh subprocess) ----------------------------------------------------
def peak_rss_mb() -> float:
    """Peak resident set size of this process in MB (VmHWM; ru_maxrss where /proc is missing)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return math.nan


def work_lunalm(folders: list[Path], tokenizer_path: str, scratch: Path, workers: int | None = None) -> dict:
    """Corpus -> build_shards, lunalm's full data path (``workers``: None, as ``luna train``: worker processes
    from PARALLEL_BYTES of files; 1: one process)."""
    from lunalm.config import CorpusConfig
    from lunalm.corpus import Corpus
    from lunalm.data.shards import build_shards
    from lunalm.tokenizer import Tokenizer

    tokenizer = Tokenizer.load(tokenizer_path)
    baseline = current_rss_mb()
    started = time.perf_counter()
    corpus = Corpus(CorpusConfig(paths=tuple(str(f) for f in folders), filter_non_prose=FILTER))
    shards = build_shards((d.text for d in corpus.documents(workers)), tokenizer, scratch, "bench",
                          progress=False)
    seconds = time.perf_counter() - started
    meta = shards.meta["splits"]
    documents = sum(split["documents"] for split in meta.values())
    tokens = sum(split["tokens"] for split in meta.values()) - documents  # without the eot per document
    return {"seconds": seconds, "documents": documents, "tokens": tokens, "baseline_rss_mb": baseline,
            "duplicates": corpus.report.total("duplicates")}


def work_corpus_only(folders: list[Path], tokenizer_path: str, scratch: Path) -> dict:
    """Only lunalm's corpus stage (read, repair, clean, dedup): where the non-tokenizer time goes."""
    from lunalm.config import CorpusConfig
    from lunalm.corpus import Corpus

    baseline = current_rss_mb()
    started = time.perf_counter()
    corpus = Corpus(CorpusConfig(paths=tuple(str(f) for f in folders), filter_non_prose=FILTER))
    documents = sum(1 for _ in corpus.documents())
    return {"seconds": time.perf_counter() - started, "documents": documents, "tokens": None,
            "baseline_rss_mb": baseline}


def work_peer(folders: list[Path], tokenizer_path: str, scratch: Path, fast: bool = False) -> dict:
    """Bare tokenizers: read UTF-8 files in batches, encode_batch, count ids, keep nothing."""
    from tokenizers import Tokenizer

    inner = Tokenizer.from_file(str(Path(tokenizer_path)))
    encode = inner.encode_batch_fast if fast else inner.encode_batch
    baseline = current_rss_mb()
    started = time.perf_counter()
    tokens = documents = 0
    batch: list[str] = []
    batch_bytes = 0
    for file in text_files(folders):
        data = file.read_bytes()
        batch.append(data.decode("utf-8"))
        batch_bytes += len(data)
        if len(batch) >= PEER_BATCH_FILES or batch_bytes >= PEER_BATCH_BYTES:
            tokens += sum(len(e.ids) for e in encode(batch, add_special_tokens=False))
            documents += len(batch)
            batch, batch_bytes = [], 0
    if batch:
        tokens += sum(len(e.ids) for e in encode(batch, add_special_tokens=False))
        documents += len(batch)
    return {"seconds": time.perf_counter() - started, "documents": documents, "tokens": tokens,
            "baseline_rss_mb": baseline}


WORKERS = {"lunalm": work_lunalm, "lunalm-corpus-only": work_corpus_only, "peer": work_peer,
           "peer-fast": lambda *args: work_peer(*args, fast=True),
           "lunalm-one-process": lambda *args: work_lunalm(*args, workers=1)}
FILTER = False  # --filter: the prose filter on, as ``luna train`` has it


def worker_main(args) -> None:
    global FILTER
    FILTER = args.filter
    folders = [Path(p) for p in json.loads(Path(args.worker_folders).read_text())]
    scratch = Path(args.worker_scratch)
    result = WORKERS[args.worker](folders, args.worker_tokenizer, scratch)
    result["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(result))


def run_worker(name: str, folders: list[Path], tokenizer_path: Path, scratch: Path) -> dict:
    """Run one worker in a fresh interpreter (so its peak RSS is its own); returns its JSON result."""
    scratch.mkdir(parents=True, exist_ok=True)
    folders_file = scratch / "folders.json"
    folders_file.write_text(json.dumps([str(f) for f in folders]))
    command = [sys.executable, __file__, "--worker", name, "--worker-folders", str(folders_file),
               "--worker-tokenizer", str(tokenizer_path), "--worker-scratch", str(scratch / "shards")]
    command += ["--filter"] if FILTER else []
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=True)
    except subprocess.CalledProcessError as error:
        sys.exit(f"worker {name} failed:\n{error.stderr}")
    finally:
        shutil.rmtree(scratch / "shards", ignore_errors=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- the benchmark --------------------------------------------------------------------------------
def measure(args) -> dict:
    tokenizer = common.bench_tokenizer("bpe", args.vocab)
    tokenizer_path = common.cache_root() / f"tokenizer-bpe-{args.vocab}" / "tokenizer.json"
    root, copies = corpus_dir(args.mb)
    fractions = sorted({float(f) for f in args.fractions.split(",")})
    peer_name = "peer-fast" if args.peer_fast else "peer"
    rows = []
    for fraction in fractions:
        folders = copies[:max(1, round(len(copies) * fraction))]
        size = sum(f.stat().st_size for f in text_files(folders))
        names = ["lunalm", peer_name]
        names += ["lunalm-one-process", "lunalm-corpus-only"] if args.breakdown and fraction == 1 else []
        for name in names:
            for repeat in range(args.repeats):
                result = run_worker(name, folders, tokenizer_path, common.cache_root() / "scratch-data")
                result.update(path=name, fraction=fraction, input_mb=size / 1e6, repeat=repeat,
                              mb_per_s=size / 1e6 / result["seconds"])
                rows.append(result)
                print(f"  {name:<19} {size / 1e6:8.1f} MB  {result['seconds']:7.2f} s  "
                      f"{result['mb_per_s']:6.2f} MB/s  peak RSS {result['peak_rss_mb']:.0f} MB", flush=True)
    return {"rows": rows, "corpus_dir": str(root), "copies": len(copies), "tokenizer": repr(tokenizer),
            "peer": peer_name}


def best(rows: list[dict], path: str, fraction: float) -> dict | None:
    """The fastest repeat of a path at a size (least disturbed by other load on the machine)."""
    chosen = [r for r in rows if r["path"] == path and r["fraction"] == fraction]
    return min(chosen, key=lambda r: r["seconds"]) if chosen else None


def report(result: dict, args) -> dict:
    from lunalm.corpus.workers import worker_count

    rows, peer = result["rows"], result["peer"]
    fractions = sorted({r["fraction"] for r in rows})
    full = max(fractions)
    summary = []
    for fraction in fractions:
        for path in ("lunalm", peer, "lunalm-one-process", "lunalm-corpus-only"):
            row = best(rows, path, fraction)
            if row:
                summary.append({**row, "growth_mb": row["peak_rss_mb"] - row["baseline_rss_mb"]})
    print()
    common.print_table(summary, [("path", "path", ""), ("input_mb", "input MB", ".1f"),
                                 ("documents", "documents", ","), ("tokens", "tokens", ","),
                                 ("seconds", "seconds", ".2f"), ("mb_per_s", "MB/s", ".2f"),
                                 ("baseline_rss_mb", "RSS after import MB", ".0f"),
                                 ("peak_rss_mb", "peak RSS MB", ".0f"), ("growth_mb", "peak - import MB", ".0f")])
    luna, other = best(rows, "lunalm", full), best(rows, peer, full)
    throughput = common.ratio(luna["mb_per_s"], other["mb_per_s"])
    memory = {path: [best(rows, path, f)["peak_rss_mb"] for f in fractions] for path in ("lunalm", peer)}
    print(f"\nthroughput ratio lunalm / {peer} at {luna['input_mb']:.0f} MB: {throughput:.2f} "
          f"(goal >= {GOAL}: {common.verdict(throughput, GOAL)})")
    alone = best(rows, "lunalm-one-process", full)
    workers = common.ratio(luna["mb_per_s"], alone["mb_per_s"]) if alone else None
    if alone:
        print(f"worker processes (lunalm.corpus.workers, {worker_count()} here) against one process: "
              f"{workers:.2f}x the throughput; peak RSS is the main process's")
    for path, peaks in memory.items():
        print(f"peak RSS of {path} at fractions {fractions}: " + ", ".join(f"{p:.0f} MB" for p in peaks))
    print("note: every copy of a speech ends in a '(kopya N)' line so no document is an exact duplicate; "
          f"lunalm dropped {luna.get('duplicates', 0)} duplicates. The peer does no cleaning and writes "
          "nothing; lunalm's tokens exclude its end-of-text ids.")
    return {"summary": summary, "ratio_lunalm_over_peer": throughput, "goal": f">= {GOAL}",
            "ratio_workers_over_one_process": workers,
            "peak_rss_mb_by_fraction": memory, "fractions": fractions}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=float, default=100, help="replicated corpus size in MB (default 100)")
    parser.add_argument("--fractions", default="0.25,1", help="corpus sizes to run, as fractions of --mb")
    parser.add_argument("--vocab", type=int, default=8192, help="BPE vocabulary of the shared tokenizer")
    parser.add_argument("--repeats", type=int, default=1, help="runs per path and size; the fastest counts")
    parser.add_argument("--peer-fast", action="store_true",
                        help="peer uses encode_batch_fast (no offsets) instead of encode_batch")
    parser.add_argument("--no-breakdown", dest="breakdown", action="store_false",
                        help="skip the corpus-only (read+clean+dedup, no tokenizer) row")
    parser.add_argument("--filter", action="store_true",
                        help="lunalm filters non-prose text (as luna train does); default: off, as before")
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--worker-folders", help=argparse.SUPPRESS)
    parser.add_argument("--worker-tokenizer", help=argparse.SUPPRESS)
    parser.add_argument("--worker-scratch", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker_main(args)
        return
    global FILTER
    FILTER = args.filter
    print(f"bench_data: {args.mb:g} MB corpus, fractions {args.fractions}, each path in a fresh subprocess")
    result = measure(args)
    summary = report(result, args)
    path = common.write_json("bench_data", {"args": vars(args), **result, **summary})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
