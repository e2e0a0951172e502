"""Fused projections on a CPU: whole training steps with q/k/v and gate/up as one matmul each against the
layers one by one.

``lunalm.model.fused_linear`` stacks the weights of q/k/v (and of gate/up) for each call and runs one
matmul, so a block's normalised input is read, and cast to bf16, once per group instead of once per
layer; the parameters stay separate. This times whole training steps (``common.cpu_training_step``: the
CPU plans' bf16 autocast where the CPU has it, Muon + AdamW, clip 1.0) with ``fused`` (today) and
``separate`` (each layer called on its own, as before) in turn, ``--steps`` steps at a time over
``--rounds`` rounds (interleaved, so a drifting machine weighs on both alike), each step timed on its
own. The loss of the same batch under each is printed too: only the order of the sums differs.

    python bench/bench_fused.py                                # nano at V = 3,200 and 4,288; tiny at 8,192
    python bench/bench_fused.py --shapes nano:2048 --rounds 2  # smoke run
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402


def separate(x, layers):
    return tuple(layer(x) for layer in layers)


def bench_shape(preset: str, vocab: int, batch: int, context: int, steps: int, rounds: int) -> list[dict]:
    import lunalm.model as model_module

    model, step = common.cpu_training_step(preset, vocab, batch, context)
    contestants = {"fused": model_module.fused_linear, "separate": separate}
    saved = model_module.fused_linear
    times = {name: [] for name in contestants}
    losses = {}
    try:
        for round_ in range(rounds + 1):  # round 0 warms up
            for name, function in contestants.items():
                model_module.fused_linear = function
                losses[name] = step()
                for _ in range(steps):
                    started = time.perf_counter()
                    step()
                    if round_:  # each step on its own: the median shrugs off a step the machine stalled
                        times[name].append(time.perf_counter() - started)
    finally:
        model_module.fused_linear = saved
    before = statistics.median(times["separate"])
    return [{"shape": f"{preset} V={vocab:,} C={model.config.d_model}", "contestant": name,
             "median_ms": 1000 * statistics.median(times[name]), "best_ms": 1000 * min(times[name]),
             "speedup": before / statistics.median(times[name]), "loss": losses[name], "precision": step.precision}
            for name in contestants]


def main() -> None:
    args = common.shapes_parser(__doc__, steps=5, rounds=20).parse_args()
    rows = common.each_shape(args, bench_shape)
    common.print_table(rows, [("shape", "shape", ""), ("contestant", "projections", ""), ("precision", "precision", ""),
                              ("median_ms", "step ms (median)", ".1f"), ("best_ms", "best", ".1f"),
                              ("speedup", "separate / this", ".3f"), ("loss", "loss", ".6f")])
    print("\nseparate / this > 1: faster than calling q/k/v and gate/up one layer at a time")
    print(f"wrote {common.write_json('bench_fused', {'machine': common.machine_info(), 'rows': rows})}")


if __name__ == "__main__":
    main()
