"""A time budget (``train.minutes``) turned into a step count once, at the start of a new run.

The step count must be fixed before the first step: warmup and the decay are laid out over it, and a
resumed run must follow the same schedule. So a new run times a few forward/backward passes of one
global batch on this machine (no optimizer update, and the sampler is put back where it was), takes
their median, and writes ``train.max_steps`` into its config.yaml: ``luna resume`` then continues that
exact schedule.
The steps leave ``EVAL_SHARE`` of the time for evaluation, samples and checkpoints.
"""

from __future__ import annotations

import math
import statistics
import time

from lunalm.train.setup import Run

TIMED_PASSES = 5  # after one untimed pass (allocations, lazy initialisation); their median is the estimate, so
#                  one pass slowed by something else on the machine does not shrink the whole run
EVAL_SHARE = 0.2  # of the budget: validation passes (~10 % by the eval schedule), samples, checkpoints and
#                   the final held-out check (a 3-minute plan spent 43 % more than its steps at 0.1)


def seconds_per_step(run: Run) -> float:
    """Wall seconds of one optimizer step's forward/backward passes, measured on this run's model."""
    from lunalm.train.loop import Faults, forward_backward, next_batch

    position = run.sampler.state_dict()
    inputs, labels = next_batch(run)
    run.sampler.load_state_dict(position)  # the run starts from the batch that was timed
    timings = []
    for _ in range(TIMED_PASSES + 1):
        started = time.perf_counter()
        forward_backward(run, inputs, labels, Faults())
        run.optimizer.zero_grad(set_to_none=True)
        _synchronize(run)
        timings.append(time.perf_counter() - started)
    return statistics.median(timings[1:])


def steps_for_minutes(minutes: float, step_seconds: float) -> int:
    """Optimizer steps that fill ``minutes`` of wall time, keeping ``EVAL_SHARE`` for evaluation."""
    return max(1, math.floor(minutes * 60 * (1 - EVAL_SHARE) / max(step_seconds, 1e-9)))


def _synchronize(run: Run) -> None:
    if run.hw.device.type == "cuda":
        import torch

        torch.cuda.synchronize(run.hw.device)
