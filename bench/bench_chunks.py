"""The fused head's chunk size on a CPU: whole training steps with today's chunk rule against fixed budgets.

``lunalm.loss.chunk_rows`` gives a CPU chunk 2^20 logit elements at width 128, growing with the width up
to 2^22 at 512. This times whole training steps of a lunalm model (bf16 autocast where the CPU multiplies
bf16 natively, else float32; Muon on the blocks' matrices and AdamW on the rest, as the CPU plans run;
clip 1.0) with each contestant's budget in turn, ``--steps`` steps at a time over ``--rounds`` rounds
(interleaved, so a machine that drifts weighs on all alike). Contestants: ``rule`` (today's rule) and
fixed budgets of 2^20, 2^21 and 2^22 elements whatever the width (2^22 was the rule before). The loss of
the same batch under each budget is printed too: the chunking changes only the order of the sums.

    python bench/bench_chunks.py                                    # nano at V = 3,200 and 4,288; tiny at 8,192
    python bench/bench_chunks.py --shapes nano:2048 --rounds 2      # smoke run
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

FIXED = {"2^20": 2**20, "2^21": 2**21, "2^22": 2**22}


def bench_shape(preset: str, vocab: int, batch: int, context: int, steps: int, rounds: int) -> list[dict]:
    import lunalm.loss as fused

    model, step = common.cpu_training_step(preset, vocab, batch, context)
    contestants = {"rule": None, **FIXED}
    saved = (fused.CHUNK_ELEMENTS["cpu"], fused.CPU_MAX_ELEMENTS)
    times = {name: [] for name in contestants}
    losses = {}
    try:
        for round_ in range(rounds + 1):  # round 0 warms up
            for name, budget in contestants.items():
                if budget is None:
                    fused.CHUNK_ELEMENTS["cpu"], fused.CPU_MAX_ELEMENTS = saved
                else:  # a fixed budget whatever the width
                    fused.CHUNK_ELEMENTS["cpu"] = fused.CPU_MAX_ELEMENTS = budget
                losses[name] = step()
                started = time.perf_counter()
                for _ in range(steps):
                    step()
                if round_:
                    times[name].append((time.perf_counter() - started) / steps)
    finally:
        fused.CHUNK_ELEMENTS["cpu"], fused.CPU_MAX_ELEMENTS = saved
    width = model.config.d_model
    rule_rows = fused.chunk_rows("cpu", vocab, batch * context, width=width)
    old = statistics.median(times["2^22"])
    rows = []
    for name, budget in contestants.items():
        median = statistics.median(times[name])
        chunk = rule_rows if budget is None else max(1, min(batch * context, budget // vocab))
        rows.append({"shape": f"{preset} V={vocab:,} C={width}", "contestant": name, "rows": chunk,
                     "median_ms": 1000 * median, "best_ms": 1000 * min(times[name]), "loss": losses[name],
                     "vs_old": old / median, "precision": step.precision})
    return rows


def main() -> None:
    args = common.shapes_parser(__doc__, steps=8, rounds=6).parse_args()
    rows = common.each_shape(args, bench_shape)
    common.print_table(rows, [("shape", "shape", ""), ("contestant", "chunk budget", ""), ("rows", "rows", ","),
                              ("median_ms", "step ms (median)", ".1f"), ("best_ms", "best", ".1f"),
                              ("vs_old", "2^22 / this", ".3f"), ("loss", "loss", ".6f")])
    print("\n2^22 / this > 1: faster than the chunks before (2^22 logit elements at every width)")
    print(f"wrote {common.write_json('bench_chunks', {'machine': common.machine_info(), 'rows': rows})}")


if __name__ == "__main__":
    main()
