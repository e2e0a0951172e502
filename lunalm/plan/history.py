"""Learning from past runs in the registry: how fast this device really was against the plan, and what
validation bits per byte runs of a similar size reached on the same corpus."""

from __future__ import annotations

import math
import statistics


def speed_correction(rows: list[dict], device: str) -> tuple[float, int]:
    """Median of actual / planned tokens/s over finished lunalm runs planned for ``device`` (1.0, 0 if none).

    Runs planned from a probe are left out: their estimate was already a measurement."""
    ratios = []
    for row in rows:
        plan = row.get("plan")
        if (row.get("source") != "lunalm" or not isinstance(plan, dict) or plan.get("device") != device
                or "probe" in str(plan.get("tokens_per_s_source", "")) or row.get("status") not in
                ("completed", "stopped-early") or not row.get("tokens_per_s") or not plan.get("tokens_per_s")):
            continue
        ratios.append(row["tokens_per_s"] / plan["tokens_per_s"])
    return (statistics.median(ratios), len(ratios)) if ratios else (1.0, 0)


def expected_bits_per_byte(rows: list[dict], corpus: str, n_params: int, tokens: int) -> tuple[float, str] | None:
    """A fit bpb ~ a + b·ln N + c·ln D over past successful runs on ``corpus`` (>= 3 runs), else the nearest
    run's value (1-2 runs); None without any. Returns (value, how it was obtained)."""
    points = [(r["n_params"], r["tokens_seen"], r["best_val_bpb"]) for r in rows
              if r.get("corpus") == corpus and r.get("outcome") == "success" and r.get("best_val_bpb")
              and r.get("n_params") and r.get("tokens_seen")]
    if not points:
        return None
    if len(points) >= 3 and len({p[:2] for p in points}) >= 3:
        import numpy as np

        x = np.array([[1.0, math.log(n), math.log(d)] for n, d, _ in points])
        y = np.array([bpb for _, _, bpb in points])
        coef, *_ = np.linalg.lstsq(x, y, rcond=None)
        value = float(coef @ np.array([1.0, math.log(n_params), math.log(tokens)]))
        low, high = min(y), max(y)
        value = min(max(value, 0.5 * low), 1.5 * high)  # an extrapolation far outside the data is not a forecast
        return value, f"fit over {len(points)} past runs on this corpus"
    def distance(p) -> float:
        return abs(math.log(p[0] / n_params)) + abs(math.log(p[1] / tokens))

    nearest = min(points, key=distance)
    if distance(nearest) > 2 * math.log(3):  # nothing within ~3x in size and data: no honest guess
        return None
    return nearest[2], (f"a past run on this corpus with {nearest[0] / 1e6:.1f}M parameters and "
                        f"{nearest[1] / 1e6:.1f}M tokens")
