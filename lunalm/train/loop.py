"""The training loop: one plain function over the parts ``build_run`` made.

Per optimizer step: take one global batch from the sampler, run it as ``grad_accum_steps`` micro-batches
whose losses are each divided by the *step's* number of target tokens (so k micro-batches give exactly
the gradient of the one big batch, whatever the padding), unscale, clip, and step AdamW at the
scheduled learning rate. Around it: guards (non-finite loss, CUDA OOM), evaluation, samples,
checkpoints, early stopping and signals. Nothing here prints; ``ui`` callbacks and the run logger do.
"""

from __future__ import annotations

import math
import os
import signal
import time
from dataclasses import dataclass, field
from typing import Callable, Protocol

import torch

from lunalm.data.batches import scored_layout
from lunalm.model import scoring_hint
from lunalm.train import checkpoint as ckpt
from lunalm.train import distributed
from lunalm.train.device import is_oom
from lunalm.train.schedule import lr_at
from lunalm.train.state_dicts import sharded
from lunalm.train.threads import ThreadGuard
from lunalm.train.setup import Run


class UI(Protocol):
    def progress(self, run: Run, record: dict) -> None: ...
    def message(self, text: str) -> None: ...
    def warning(self, text: str) -> None: ...  # shown even in quiet mode
    def sample(self, step: int, prompt: str, text: str) -> None: ...


class SilentUI:
    def progress(self, run: Run, record: dict) -> None:
        pass

    def message(self, text: str) -> None:
        pass

    def warning(self, text: str) -> None:
        pass

    def sample(self, step: int, prompt: str, text: str) -> None:
        pass


@dataclass
class Faults:
    """Injected faults for tests: multiply the loss by NaN at these steps (once per step index, like a
    transient spike, so a replay after a rollback runs clean); raise OOM at these steps while the
    micro-batch is larger than ``oom_below``."""

    nan_steps: frozenset[int] = frozenset()
    oom_steps: frozenset[int] = frozenset()
    oom_below: int = 1
    crash: tuple[int, int] | None = None  # (rank, step): that rank raises, as a crashed worker would
    fired: set[int] = field(default_factory=set)

    @classmethod
    def from_env(cls) -> "Faults":
        """LUNALM_FAULT_CRASH=RANK:STEP, for multi-process tests that cannot pass objects to workers."""
        spec = os.environ.get("LUNALM_FAULT_CRASH")
        return cls(crash=tuple(int(x) for x in spec.split(":"))) if spec else cls()

    def maybe_crash(self, step: int, rank: int) -> None:
        if self.crash == (rank, step):
            raise RuntimeError(f"injected crash on rank {rank} at step {step}")

    def poison(self, step: int) -> float:
        if step in self.nan_steps and step not in self.fired:
            self.fired.add(step)
            return math.nan
        return 1.0


class Diverged(Exception):
    pass


class OutOfMemory(Exception):
    pass


def train_loop(run: Run, ui: UI | None = None, faults: Faults | None = None) -> str:
    """Train until the budget, early stop, divergence or a signal; returns the final status."""
    from lunalm.train.budget import retime
    from lunalm.train.milestones import evaluate_and_track, finish, maybe_sample, save_step, share_cooldown

    ui = ui or SilentUI()
    faults = faults or Faults.from_env()
    restore = _install_signal_handlers(run)
    threads = ThreadGuard("distributed" if run.dist.active else run.hw.device.type)
    status = "completed"
    try:
        main = run.dist.is_main
        while run.state.step < end_step(run) and run.stop_reason is None:
            record = one_step(run, faults, ui)
            step = run.state.step
            if note := threads.check():  # other programs took cores (or gave them back)
                run.logger.event("threads", step, note, threads=torch.get_num_threads())
                ui.warning(note)
            if step % run.config.train.log_every == 0 or step in (1, run.total_steps):  # step 1: ~ln(vocab)
                run.logger.log_train(step, **record)
            ui.progress(run, record)
            evaluated = step % run.config.train.eval_every == 0 or step == end_step(run)
            everyone = sharded(run)  # sharded weights: every rank takes part in eval, samples, checkpoints
            if evaluated and distributed.broadcast((main or everyone) and evaluate_and_track(run, ui), run.dist):
                run.stop_reason = "stopped-early"
            if evaluated and run.dist.active and not everyone and run.config.train.cooldown > 0:
                share_cooldown(run)
            if main or everyone:
                maybe_sample(run, ui, final=step == end_step(run))
            if run.retime is not None:  # a time budget's step count, fixed again from the pace kept so far
                retime(run, ui)
            if distributed.any_(run.stop_reason == "interrupted", run.dist, run.hw.device):
                run.stop_reason = "interrupted"  # a signal reached one rank: all stop after this step
            if (main or everyone) and (step % run.config.train.checkpoint_every == 0
                                       or run.stop_reason == "interrupted"):
                save_step(run)
        if run.stop_reason is None and run.state.step < run.total_steps:  # ended by the early anneal
            run.stop_reason = "stopped-early"
        status = run.stop_reason or "completed"
    except Diverged as error:
        status = "diverged"
        run.logger.event("diverged", run.state.step, str(error))
    except OutOfMemory as error:
        status = "oom"
        run.logger.event("oom", run.state.step, str(error))
    finally:
        restore()
        if threads.active:
            torch.set_num_threads(threads.most)
    return finish(run, status, ui)


def one_step(run: Run, faults: Faults, ui: UI) -> dict:
    """One optimizer step (with guards); returns the train record."""
    started = time.perf_counter()
    inputs, labels = next_batch(run)
    while True:
        try:
            loss, n_targets = forward_backward(run, inputs, labels, faults)
            break
        except Exception as error:  # noqa: BLE001 - only OOM is handled, the rest re-raised
            if not (is_oom(error) or isinstance(error, _InjectedOOM)):
                raise
            _halve_micro_batch(run, ui)
    grad_norm = _clip(run)
    lr = lr_at(run.state.step, peak=run.peak_lr, warmup=run.warmup_steps, total=run.total_steps,
               min_ratio=run.config.train.min_lr_ratio, cooldown=cooldown_of(run.state),
               decay_share=decay_share_of(run.config.train)) * run.state.lr_scale
    finite = math.isfinite(loss) and (math.isfinite(grad_norm) or run.hw.precision == "fp16")
    good = finite and not run.state.loss_exploded(loss, run.data.tokenizer.vocab_size)
    if good:
        _apply_update(run, lr)
        run.state.track_loss(loss)
        if run.average is not None:
            run.average.update(run.total_steps)
    rolled_back = not good and _skip_update(run, loss, grad_norm, ui)
    run.optimizer.zero_grad(set_to_none=True)
    if rolled_back:  # the state is the checkpoint's now: this batch does not count
        return {"loss": loss, "lr": lr, "grad_norm": grad_norm, "tokens_per_s": 0.0,
                "epoch": run.sampler.epochs_completed}
    run.state.step += 1
    run.state.tokens_seen += n_targets
    elapsed = time.perf_counter() - started
    return {"loss": loss, "lr": lr, "grad_norm": grad_norm, "tokens_per_s": n_targets / elapsed,
            "epoch": run.sampler.epochs_completed}


def decay_share_of(train) -> float | None:
    """``lr_at``'s decay_share: the train config's for warmup-stable-decay, None for cosine."""
    return train.decay_share if train.schedule == "wsd" else None


def cooldown_of(state) -> tuple[int, int] | None:
    """(start, steps) of the early anneal once patience has run out, else None."""
    return (state.cooldown_start, state.cooldown_steps) if state.cooldown_start >= 0 else None


def end_step(run: Run) -> int:
    """The step the run ends at: its budget, or the end of the early anneal that patience started."""
    cooldown = cooldown_of(run.state)
    return run.total_steps if cooldown is None else min(run.total_steps, sum(cooldown))


def next_batch(run: Run) -> tuple[torch.Tensor, torch.Tensor]:
    """This rank's (inputs, labels) of the next global batch, on the run's device."""
    inputs, labels = run.sampler.next_batch(run.world_batch)  # (W*G, T) each: the same on every rank
    if run.dist.active:  # this rank's contiguous slice
        mine = slice(run.dist.rank * run.global_batch, (run.dist.rank + 1) * run.global_batch)
        inputs, labels = inputs[mine], labels[mine]
    return inputs.to(run.hw.device), labels.to(run.hw.device)


def forward_backward(run: Run, inputs: torch.Tensor, labels: torch.Tensor, faults: Faults) -> tuple[float, int]:
    """Accumulate gradients over micro-batches; each loss is divided by the step's target count.

    sum_i (loss_sum_i / N) = (sum over all targets) / N: the gradient of the mean over the whole global
    batch, also when micro-batches hold different numbers of (non -100) targets. Each micro-batch runs
    only up to its last scored column (exact for a causal model; see ``scored_widths``), and tells the
    model's head whether every label is scored, so it needs no device sync of its own to find out.
    """
    world = run.dist.world
    n_targets = int(distributed.sum_(float((labels != -100).sum()), run.dist, inputs.device))  # all ranks
    micro = run.state.micro_batch_size
    if run.state.step in faults.oom_steps and micro >= faults.oom_below * 2:
        raise _InjectedOOM()
    faults.maybe_crash(run.state.step, run.dist.rank)
    total = torch.zeros((), device=inputs.device)
    poison = faults.poison(run.state.step)
    widths, all_scored = scored_layout(labels, micro)  # instruction batches: drop trailing padding columns
    pieces = [(x[:, :width], y[:, :width]) if width < x.shape[1] else (x, y)
              for x, y, width in zip(inputs.split(micro), labels.split(micro), widths)]
    for index, (micro_inputs, micro_labels) in enumerate(pieces):
        # keep only the loss: holding the logits through backward costs B*T*V; sync gradients once a step
        with distributed.no_sync(run.forward, index == len(pieces) - 1), run.hw.autocast(), \
                scoring_hint(all_scored[index]):
            loss_sum = run.forward(micro_inputs, micro_labels).loss_sum
        loss = loss_sum * poison * world / max(n_targets, 1)  # DDP averages over ranks: x world undoes it
        run.scaler.scale(loss).backward()
        total += loss.detach()
    return distributed.sum_(float(total), run.dist, inputs.device) / world, n_targets


class _InjectedOOM(Exception):
    pass


def _halve_micro_batch(run: Run, ui: UI) -> None:
    if run.dist.active:  # ranks cannot agree on a new micro-batch mid-step: stop with the fix instead
        raise OutOfMemory(f"out of memory on rank {run.dist.rank} at micro-batch {run.state.micro_batch_size}: "
                          f"resume with train.micro_batch_size {max(1, run.state.micro_batch_size // 2)} and "
                          f"train.grad_accum_steps {run.state.grad_accum_steps * 2} in config.yaml")
    run.optimizer.zero_grad(set_to_none=True)
    if run.hw.device.type == "cuda":
        torch.cuda.empty_cache()
    state = run.state
    if state.micro_batch_size == 1:
        raise OutOfMemory("out of memory even with micro-batch 1: choose a smaller --preset or --context, "
                          "or turn on activation checkpointing (--activation-checkpointing)")
    state.micro_batch_size //= 2
    state.grad_accum_steps *= 2
    message = (f"out of memory: micro-batch halved to {state.micro_batch_size}, accumulation doubled to "
               f"{state.grad_accum_steps} (global batch unchanged at {run.global_batch})")
    run.logger.event("oom", state.step, message, micro_batch_size=state.micro_batch_size,
                     grad_accum_steps=state.grad_accum_steps)
    ui.warning(message)


def _clip(run: Run) -> float:
    run.scaler.unscale_(run.optimizer)
    max_norm = run.config.train.grad_clip or math.inf
    params = [p for group in run.optimizer.param_groups for p in group["params"]]
    norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
    return float(norm.full_tensor() if hasattr(norm, "full_tensor") else norm)  # a DTensor when sharded


def _apply_update(run: Run, lr: float) -> None:
    for group in run.optimizer.param_groups:
        group["lr"] = lr
    run.scaler.step(run.optimizer)  # fp16: skips the step itself if the unscaled grads hold inf/NaN
    run.scaler.update()
    run.state.bad_steps = 0


def _skip_update(run: Run, loss: float, grad_norm: float, ui: UI) -> bool:
    """A non-finite loss or gradient, or an exploding loss: no update; several in a row roll back with half
    the lr.

    Returns True when it rolled back (step, data position and optimizer are the checkpoint's)."""
    from lunalm.train.milestones import rollback

    state = run.state
    state.bad_steps += 1
    state.skipped_steps += 1
    run.scaler.update()
    finite = math.isfinite(loss) and math.isfinite(grad_norm)
    what = f"exploding loss {loss:.4g} (lowest smoothed {state.loss_floor:.4g})" if finite \
        else f"non-finite loss {loss} / grad norm {grad_norm}"
    run.logger.event("exploding" if finite else "nonfinite", state.step,
                     f"{what}: update skipped ({state.bad_steps} in a row)", loss=loss, grad_norm=grad_norm)
    if state.bad_steps >= run.config.train.max_bad_steps:
        rollback(run, ui)
        return True
    return False


def _install_signal_handlers(run: Run) -> Callable[[], None]:
    """SIGTERM / Ctrl-C: finish the current step, save a checkpoint, exit as 'interrupted'."""
    def handler(signum, frame):
        if run.stop_reason == "interrupted":  # a second Ctrl-C: stop now
            raise KeyboardInterrupt
        run.stop_reason = "interrupted"

    try:
        previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread: leave signals alone
        return lambda: None
    return lambda: [signal.signal(sig, old) for sig, old in previous.items()] and None
