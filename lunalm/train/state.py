"""All mutable run state in one place (nanochat's ``loop_state``): what a resume needs besides the
model, optimizer and scaler state dicts and the RNG states."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field


LOSS_BETA = 0.9  # smoothing of the train loss that divergence detection compares against


@dataclass
class TrainState:
    step: int = 0  # optimizer steps done (skipped non-finite steps included: their batch was consumed)
    tokens_seen: int = 0  # target tokens trained on
    sampler: dict = field(default_factory=dict)  # WindowSampler.state_dict(): epoch and position
    micro_batch_size: int = 1  # current; halves on CUDA out-of-memory
    grad_accum_steps: int = 1  # current; doubles when the micro-batch halves (same global batch)
    best_val_loss: float = math.inf
    best_step: int = -1
    evals_since_best: int = 0  # evaluations without improvement (early-stopping patience)
    cooldown_start: int = -1  # step at which patience ran out and the lr began its early anneal (-1: none)
    cooldown_steps: int = 0  # its length: the run ends at cooldown_start + cooldown_steps
    lr_scale: float = 1.0  # multiplies the schedule; halved at each rollback
    rollbacks: int = 0
    bad_steps: int = 0  # consecutive non-finite steps
    skipped_steps: int = 0  # all non-finite steps, for the summary
    elapsed_s: float = 0.0  # training wall time before this process (resumed runs)
    last_eval: dict = field(default_factory=dict)  # the latest validation metrics
    loss_ema: float = math.nan  # train loss smoothed over accepted steps (EMA, beta LOSS_BETA)
    loss_floor: float = math.inf  # the lowest loss_ema so far: divergence is measured against it
    # a time budget's step count still to be fixed again (lunalm.train.budget.Retime): {"cap": steps allowed
    # apart from the time, "estimate": the first count}; empty once fixed, and for runs without one
    retime: dict = field(default_factory=dict)

    def loss_exploded(self, loss: float, vocab_size: int) -> bool:
        """A finite loss that says the run is diverging: worse than guessing uniformly (ln V nats) by half
        again, or grown to twice its lowest smoothed value and 3 nats above it (a spike of a healthy run is
        far smaller; lr 0.99 without clipping took a 4.9-nat run to 205)."""
        uniform = math.log(max(vocab_size, 2))
        grown = math.isfinite(self.loss_floor) and loss > max(2 * self.loss_floor, self.loss_floor + 3.0)
        return loss > 1.5 * uniform + 1.0 or grown

    def track_loss(self, loss: float) -> None:
        """Fold an accepted step's loss into the smoothed loss and its floor."""
        self.loss_ema = loss if math.isnan(self.loss_ema) else LOSS_BETA * self.loss_ema + (1 - LOSS_BETA) * loss
        self.loss_floor = min(self.loss_floor, self.loss_ema)

    def state_dict(self) -> dict:
        return dataclasses.asdict(self)

    def load_state_dict(self, state: dict) -> None:
        for name, value in state.items():
            if not hasattr(self, name):
                raise KeyError(f"unknown training-state field {name!r}")
            setattr(self, name, value)
