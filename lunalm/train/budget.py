"""A time budget (``train.minutes``) turned into a step count once, at the start of a new run.

The step count must be fixed before the first step: warmup and the decay are laid out over it, and a
resumed run must follow the same schedule. So a new run times a few forward/backward passes of one
global batch on this machine (no optimizer update, and the sampler is put back where it was), takes
their median, and writes ``train.max_steps`` into its config.yaml: ``luna resume`` then continues that
exact schedule.
The steps leave ``EVAL_SHARE`` of the time for evaluation, samples and checkpoints.

That first count is an estimate: the timed passes leave out the optimizer, evaluation, samples and
checkpoints, and a busy machine moves the median. Under warmup-stable-decay the count can be corrected
without changing any learning rate already used, because the lr is flat until the decay begins. So a
new run measures its real pace (everything included) from ``RETIME_WINDOW[0]`` to ``RETIME_WINDOW[1]``
of the estimated steps, or of the time where that comes first (a machine slower than its timed passes),
and there fixes the count again to end on the budget (``Retime``), writing it to config.yaml. A run
stopped before that point still has the first estimate in config.yaml, and its checkpoints say the count
is yet to be fixed (``TrainState.retime``): resumed, it measures its pace again and fixes the count for
the budget's time it has left (``resume_retime``), unless the estimate's decay has begun by then.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
import time
from dataclasses import dataclass

from lunalm.train import distributed
from lunalm.train.setup import Run, write_config

TIMED_PASSES = 5  # after one untimed pass (allocations, lazy initialisation); their median is the estimate, so
#                  one pass slowed by something else on the machine does not shrink the whole run
EVAL_SHARE = 0.2  # of the budget: validation passes (~10 % by the eval schedule), samples, checkpoints and
#                   the final held-out check (a 3-minute plan spent 43 % more than its steps at 0.1)
RETIME_WINDOW = (0.2, 0.5)  # of the estimated steps: the pace is measured over this stretch, past start-up
#                            (compilation, first evaluation), and the count fixed at its end, before the
#                            decay (the last 30 % by default) begins
MIN_RETIME_STEPS = 10  # a shorter window measures too little to correct anything


def clock() -> float:
    return time.perf_counter()


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


@dataclass
class Retime:
    """The step count of a time budget, fixed again at step ``at`` from the pace since step ``start``."""

    cap: int  # the steps that train.max_steps, epochs and tokens allow, apart from the time
    deadline: float  # clock() at which the budget runs out
    start: int
    at: int
    started: float | None = None  # clock() when the pace began to be measured ...
    start_step: int = 0  # ... at this step
    # clock() by which the window starts and ends at the latest: a machine twice as slow as the timed
    # passes said reached step ``at`` only when the budget had run out (a 30-second plan took 69 s)
    by: tuple[float, float] = (math.inf, math.inf)

    @classmethod
    def plan(cls, cap: int, seconds_left: float, estimated_steps: int) -> "Retime | None":
        start, at = (round(share * estimated_steps) for share in RETIME_WINDOW)
        if at - start < MIN_RETIME_STEPS:
            return None
        now = clock()
        return cls(cap=cap, deadline=now + seconds_left, start=start, at=at,
                   by=tuple(now + share * seconds_left for share in RETIME_WINDOW))

    @classmethod
    def resumed(cls, cap: int, seconds_left: float, estimated_steps: int, step: int, spent: float,
                decay_from: int) -> "Retime | None":
        """The plan of a run resumed at ``step`` with ``spent`` of its budget's seconds used and the count
        not yet fixed: the pace is measured from the step after (the first one pays for start-up) to the
        plan's end, or ``MIN_RETIME_STEPS`` later; None where that end reaches the estimate's decay (its
        lower lrs were used already)."""
        start, at = (round(share * estimated_steps) for share in RETIME_WINDOW)
        start = max(start, step + 1)
        at = max(at, start + MIN_RETIME_STEPS)
        if at >= decay_from:
            return None
        now = clock()
        budget = spent + seconds_left
        return cls(cap=cap, deadline=now + seconds_left, start=start, at=at,
                   by=tuple(now + max(0.0, share * budget - spent) for share in RETIME_WINDOW))


def retime(run: Run, ui) -> None:
    """Called after every step while ``run.retime`` is set: at its ``at`` step, or once RETIME_WINDOW[1] of
    the time has gone (a single process; a torchrun job goes by steps, which every process sees alike), the
    steps that fit the time left at the pace kept since ``start`` become the run's count (never below the
    next step, never above ``cap``). Rank 0's count holds for all. A run so much slower than estimated that
    its new decay should already have begun steps down to that decay's lr."""
    plan, step = run.retime, run.state.step
    now = clock()
    by_time = not run.dist.active
    if plan.started is None:
        if step < plan.start and not (by_time and now >= plan.by[0]):
            return
        plan.started, plan.start_step = now, step
    if step - plan.start_step < MIN_RETIME_STEPS or (step < plan.at and not (by_time and now >= plan.by[1])):
        return
    run.retime, run.state.retime = None, {}
    pace = (now - plan.started) / max(1, step - plan.start_step)
    fits = step + max(1, math.floor((plan.deadline - now) / pace))
    total, before = distributed.broadcast(min(plan.cap, fits), run.dist), run.total_steps
    run.total_steps = total
    run.config = dataclasses.replace(run.config, train=dataclasses.replace(run.config.train, max_steps=total))
    message = (f"time budget re-timed at step {step:,}: {pace:.3f} s per step with evaluation and checkpoints, "
               f"so {total:,} steps in all (estimated {before:,})")
    # The passes changed with the steps, and so does the rule's decay: from here, while no step checkpoint
    # holds the old one (a run resumed from it would go on with the old decay, so it stays then)
    if run.auto_weight_decay and total != before and step < run.config.train.checkpoint_every:
        decay = run.config.train.weight_decay
        if set_weight_decay(run).split(":")[0] != f"weight decay {decay:g}":
            message += f"; weight decay {run.config.train.weight_decay:g} from here (was {decay:g}): " \
                       f"~{run.passes:.1f} passes over the text"
    if run.dist.is_main:
        write_config(run)
        run.logger.event("retime", step, message, total_steps=total, estimated_steps=before,
                         seconds_per_step=round(pace, 5))
    ui.message(message)


def resume_retime(run: Run, ui) -> None:
    """A resumed time-budget run whose count was not fixed again before it stopped: fix it from the pace
    of the steps to come, for the budget's seconds the checkpoint had not spent. A config.yaml whose
    max_steps is no longer the estimate (re-timed after that checkpoint, or edited) is kept as it is."""
    from lunalm.train.loop import decay_share_of

    pending, train = run.state.retime, run.config.train
    run.state.retime = {}
    if not pending or not train.minutes or train.schedule != "wsd" or train.max_steps != pending["estimate"]:
        return
    estimate, spent = pending["estimate"], run.state.elapsed_s
    decay_from = estimate - max(1, round(decay_share_of(train) * estimate))
    run.retime = Retime.resumed(pending["cap"], train.minutes * 60 - spent, estimate, run.state.step, spent,
                                decay_from)
    if run.retime is not None:
        run.state.retime = pending
        ui.message(f"time budget: {spent / 60:.1f} of {train.minutes:g} min spent before this checkpoint; the "
                   f"{estimate:,} steps estimated then are fixed again at step {run.retime.at:,} from the pace "
                   "kept from here")


def set_weight_decay(run: Run) -> str:
    """The plan's weight decay for the run's steps and passes (``weight_decay_for``) on its matrices' groups
    (norms and biases keep 0) and in its config; what to tell the user."""
    from lunalm.config import TrainConfig
    from lunalm.plan.recommend import weight_decay_for

    passes, lr_scale = run.passes, getattr(run.optimizer, "lr_scale", 1.0)  # Muon steps (and decays) faster
    decay = weight_decay_for(run.peak_lr, run.total_steps, passes, lr_scale)
    for group in run.optimizer.param_groups:
        if group["weight_decay"]:
            group["weight_decay"] = decay
    run.config = dataclasses.replace(run.config, train=dataclasses.replace(run.config.train, weight_decay=decay))
    return (f"weight decay {decay:g}: ~{passes:.1f} passes over the text"
            + (f", so weights averaged over ~{1 / (run.peak_lr * lr_scale * decay):,.0f} of the "
               f"{run.total_steps:,} steps" if decay != TrainConfig.weight_decay else ""))


def _synchronize(run: Run) -> None:
    if run.hw.device.type == "cuda":
        import torch

        torch.cuda.synchronize(run.hw.device)
