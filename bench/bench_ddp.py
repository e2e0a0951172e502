"""Data-parallel throughput: training tokens/s of the same run at 1 and N processes (torchrun, DDP).

Informational on CPU: N gloo processes share the machine's cores (each gets cores/N threads), so the
ratio shows the cost of gradient all-reduce and process overhead rather than a speed-up. On a machine
with N GPUs (``--device cuda``) it is the scaling efficiency. Each contestant is a real ``luna train``
on the built-in corpus (nano preset, context 256, fixed steps); tokens/s comes from its summary.json
(which counts tokens over all processes).

    python bench/bench_ddp.py                 # 1 and 2 CPU processes, 40 steps each
    python bench/bench_ddp.py --device cuda --nproc 8
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402


def run(nproc: int, args, root: Path) -> dict:
    name = f"ddp-{nproc}"
    command = [sys.executable, "-m", "lunalm", "train", "--preset", args.preset, "--context", str(args.context),
               "--batch-size", str(args.batch), "--max-steps", str(args.steps), "--eval-every", "100000",
               "--sample-every", "0", "--checkpoint-every", "100000", "--device", args.device, "--quiet",
               "--name", name, "--runs-dir", str(root)]
    if nproc > 1:
        command += ["--nproc", str(nproc)]
    env = {**os.environ, "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // nproc))}
    subprocess.run(command, check=True, env=env)
    summary = json.loads((root / name / "summary.json").read_text())
    return {"processes": nproc, "tokens_per_s": summary["tokens_per_s"], "steps": summary["steps"],
            "wall_s": summary["wall_time_s"], "global_batch": args.batch * nproc}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nproc", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--preset", default="nano")
    parser.add_argument("--context", type=int, default=256)
    parser.add_argument("--batch", type=int, default=8, help="micro-batch per process")
    parser.add_argument("--steps", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [run(1, args, Path(tmp)), run(args.nproc, args, Path(tmp))]
    rows[1]["vs_1_process"] = common.ratio(rows[1]["tokens_per_s"], rows[0]["tokens_per_s"])
    common.print_table(rows, [("processes", "processes", ""), ("global_batch", "global batch", ""),
                              ("steps", "steps", ""), ("wall_s", "wall s", ".1f"),
                              ("tokens_per_s", "tokens/s", ",.0f"), ("vs_1_process", "vs 1 process", ".2f")])
    common.write_json("bench_ddp", {"args": vars(args), "rows": rows})


if __name__ == "__main__":
    main()
