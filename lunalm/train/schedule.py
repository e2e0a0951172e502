"""Learning-rate schedule and size-based defaults: pure functions of the step, easy to test."""

from __future__ import annotations

import math


def lr_at(step: int, *, peak: float, warmup: int, total: int, min_ratio: float,
          cooldown: tuple[int, int] | None = None, decay_share: float | None = None) -> float:
    """Learning rate for optimizer step ``step`` (0-based): linear warmup, then the decay to peak*min_ratio.

    Warmup reaches ``peak`` at step ``warmup - 1`` (so step 0 already learns, at peak/warmup).

    ``decay_share=None``: cosine. Its half-period spans the remaining ``total - warmup`` steps
    (Loshchilov & Hutter 2017, SGDR, without restarts) and ends at ``peak * min_ratio`` after the last step.

    ``decay_share`` in (0, 1]: warmup-stable-decay (Hägele et al. 2024). The lr holds at ``peak`` until the
    last ``decay_share`` of the ``total`` steps (never before warmup ends), then falls linearly to
    ``peak * min_ratio``, reached after the last step as the cosine's is.

    ``cooldown = (start, steps)``: early stopping cut the run short at ``start``; from there the lr falls
    linearly from the schedule's value at ``start`` to ``peak * min_ratio`` at step ``start + steps - 1``
    (the decay phase of warmup-stable-decay, Hägele et al. 2024, begun when validation stops improving).
    """
    if cooldown is not None and step >= cooldown[0]:
        start, steps = cooldown
        begin = lr_at(start, peak=peak, warmup=warmup, total=total, min_ratio=min_ratio, decay_share=decay_share)
        return begin + (peak * min_ratio - begin) * min(1.0, (step - start + 1) / max(1, steps))
    if warmup > 0 and step < warmup:
        return peak * (step + 1) / warmup
    floor = peak * min_ratio
    if decay_share is not None:
        decay_from = max(warmup, total - max(1, round(decay_share * total)))
        return peak + (floor - peak) * min(1.0, max(0, step - decay_from) / max(1, total - decay_from))
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return floor + 0.5 * (peak - floor) * (1.0 + math.cos(math.pi * progress))


def default_lr(n_params: int) -> float:
    """Peak AdamW learning rate by model size: 3e-3 at 1M parameters falling as N^-0.3 (clamped).

    An empirical fit to what trains stably at these sizes with warmup, clipping 1.0 and batch ~0.1-0.5M
    tokens: ~1.5e-3 at 10M, ~1e-3 at 50M, ~7e-4 at 150M (GPT-2 small used 6e-4; nanoGPT's char-level
    Shakespeare 1e-3 at 10M).
    """
    return float(min(3e-3, max(3e-4, 3e-3 * (n_params / 1e6) ** -0.3)))


def default_warmup(total_steps: int) -> int:
    """5 % of the run, at least 1 step, at most 1000."""
    return max(1, min(1000, round(0.05 * total_steps)))
