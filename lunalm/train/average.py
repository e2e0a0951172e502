"""An exponential moving average of the weights: what a run evaluates, keeps as best/ and final/, and samples.

The average follows the raw weights after every optimizer step with a decay set by the run's length: its
horizon (1 / (1 - decay)) is ``train.ema_horizon`` x the steps the run had at its first update (a time
budget's count, fixed again mid-run by ``lunalm.train.budget.retime``, leaves the horizon as it was, so
a run resumed from either side of that point averages exactly as the uninterrupted one). It is kept in
float32 and normalised by the weight its updates have summed to (so it is unbiased from the first step,
and can be restarted from any weights). The raw weights keep training; :meth:`WeightAverage.applied`
swaps the average in for an evaluation, a sample or a save and puts the raw weights back bit for bit.
Step checkpoints hold the raw weights in ``model.safetensors`` and the average in ``train_state.pt``, so a
resumed run goes on exactly.

Measured on held-out speeches (46 documents never trained on), nano, 1 thread, fixed steps:
the 3-minute plan (1,500 steps, batch 8 x 128), wsd: 1.5412 raw, 1.5392 averaged at horizon 100 steps
(0.07 of the run; 3 seeds agree within 0.0006), 1.5683 at horizon 500. In the middle of a run, where early
stopping picks its best, the gap is wider: step 1,125, 1.640 raw against 1.585; the 15-minute plan (16 passes
over the text, 1,423 steps of 32 x 128), step 1,067: 1.515 raw against 1.472.
"""

from __future__ import annotations

from contextlib import contextmanager, nullcontext

import torch


class WeightAverage:
    """The average of a model's trainable parameters (``model.named_parameters`` with requires_grad)."""

    def __init__(self, model: torch.nn.Module, horizon_share: float):
        self.horizon_share = horizon_share
        self.named = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
        self.average = [torch.zeros_like(p, dtype=torch.float32) for _, p in self.named]
        self.weight = 0.0  # the sum of the update weights folded in: average / weight is unbiased
        self.steps: int | None = None  # the run's steps at the first update: they set the horizon

    def decay(self, total_steps: int) -> float:
        """1 - 1 / horizon, the horizon being ``horizon_share`` x the run's steps (at least one step)."""
        return 1.0 - 1.0 / max(1.0, self.horizon_share * total_steps)

    @torch.no_grad()
    def update(self, total_steps: int) -> None:
        """Fold the current weights in (after an optimizer step); the first update fixes the horizon."""
        if self.steps is None:
            self.steps = total_steps
        decay = self.decay(self.steps)
        current = [p.detach().float() for _, p in self.named]  # float32 weights: the tensors themselves
        torch._foreach_mul_(self.average, decay)
        torch._foreach_add_(self.average, current, alpha=1.0 - decay)
        self.weight = decay * self.weight + (1.0 - decay)

    @torch.no_grad()
    def restart(self) -> None:
        """Start again from the current weights (after the early anneal loaded the best ones)."""
        for average, (_, p) in zip(self.average, self.named):
            average.copy_(p.detach())
        self.weight = 1.0

    @contextmanager
    def applied(self):
        """The averaged weights in the model for the block; the raw ones back afterwards, bit for bit.
        Before the first update there is nothing averaged yet: the raw weights stay."""
        if self.weight == 0.0:
            yield
            return
        with torch.no_grad():
            raw = [p.detach().clone() for _, p in self.named]
            for average, (_, p) in zip(self.average, self.named):
                p.copy_(average / self.weight)
        try:
            yield
        finally:
            with torch.no_grad():
                for saved, (_, p) in zip(raw, self.named):
                    p.copy_(saved)

    def state_dict(self) -> dict:
        return {"weight": self.weight, "steps": self.steps,
                "average": {name: a.cpu() for a, (name, _) in zip(self.average, self.named)}}

    def load_state_dict(self, saved: dict) -> None:
        names = [name for name, _ in self.named]
        if sorted(saved["average"]) != sorted(names):
            raise ValueError(f"the saved weight average holds {len(saved['average'])} tensors, this model "
                             f"trains {len(names)}")
        with torch.no_grad():
            for average, name in zip(self.average, names):
                average.copy_(saved["average"][name])
        self.weight = float(saved["weight"])
        self.steps = saved.get("steps")  # None in checkpoints from before it was kept: the run's steps then


def averaged(run):
    """``run``'s weight average swapped in for a ``with`` block (nothing when the run keeps none)."""
    return run.average.applied() if run.average is not None else nullcontext()
