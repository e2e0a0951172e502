"""All mutable run state in one place (nanochat's ``loop_state``): what a resume needs besides the
model, optimizer and scaler state dicts and the RNG states."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field


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
    lr_scale: float = 1.0  # multiplies the schedule; halved at each rollback
    rollbacks: int = 0
    bad_steps: int = 0  # consecutive non-finite steps
    skipped_steps: int = 0  # all non-finite steps, for the summary
    elapsed_s: float = 0.0  # training wall time before this process (resumed runs)
    last_eval: dict = field(default_factory=dict)  # the latest validation metrics

    def state_dict(self) -> dict:
        return dataclasses.asdict(self)

    def load_state_dict(self, state: dict) -> None:
        for name, value in state.items():
            if not hasattr(self, name):
                raise KeyError(f"unknown training-state field {name!r}")
            setattr(self, name, value)
