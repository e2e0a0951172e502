"""What happens between optimizer steps: evaluation and early stopping, samples, checkpoints,
rollback after divergence, and the end of the run."""

from __future__ import annotations

import dataclasses
import json
import math
import time


from lunalm import __version__
from lunalm.config import run_config_to_dict
from lunalm.evaluate import evaluate, padded_token_bytes
from lunalm.generate import SamplingConfig, generate
from lunalm.train import checkpoint as ckpt
from lunalm.train import distributed, state_dicts
from lunalm.train.average import averaged
from lunalm.train.setup import Run, passes_over

SAMPLE_SEED = 1234  # the same seeds at every sample point, so samples differ only by training


def evaluate_and_track(run: Run, ui) -> bool:
    """Validation pass; keeps best/ current; returns True when patience is exhausted."""
    if not run.eval_batches:
        return False
    if run.token_bytes is None:
        run.token_bytes = padded_token_bytes(run.data.tokenizer, run.model.config.vocab_size)
    with averaged(run):  # the weight average is the model evaluated and kept as best/
        result = evaluate(run.model, run.eval_batches, token_bytes=run.token_bytes, device=run.hw.device,
                          autocast=run.hw.autocast).to_dict()
        state = run.state
        state.last_eval = result
        run.logger.log_eval(state.step, **result)
        improved = result["loss"] < state.best_val_loss
        if improved:
            state.best_val_loss, state.best_step, state.evals_since_best = result["loss"], state.step, 0
            _save(run, run.checkpoints / "best", meta(run))
    if not improved:
        state.evals_since_best += 1
    patience = run.config.train.patience
    if state.cooldown_start >= 0:  # the anneal runs to its end: half an anneal is the worst place to stop
        return False
    if patience is not None and state.evals_since_best >= patience:
        stalled = (f"validation loss has not improved for {patience} evaluations (best {state.best_val_loss:.4f} "
                   f"at step {state.best_step})")
        steps = min(run.total_steps - state.step, round(run.config.train.cooldown * state.best_step))
        if state.cooldown_start < 0 and steps > 0:  # anneal first: the best weights were kept at a high lr
            state.cooldown_start, state.cooldown_steps, state.evals_since_best = state.step, steps, 0
            load_best_weights(run)
            message = (f"{stalled}: back to the best weights, annealing the learning rate to its floor over the "
                       f"next {steps:,} steps, then stopping (train.cooldown)")
            run.logger.event("cooldown", state.step, message, cooldown_steps=steps)
            ui.warning(message)
            return False
        message = f"{stalled}: stopping early"
        run.logger.event("early-stop", state.step, message)
        ui.warning(message)
        return True
    return False


def load_best_weights(run: Run) -> None:
    """The weights of ``checkpoints/best`` into the model (optimizer moments and data order go on); the
    weight average starts again from them."""
    _load_weights(run, run.checkpoints / "best")
    if run.average is not None:
        run.average.restart()


def _load_weights(run: Run, directory) -> None:
    from safetensors.torch import load_file

    if hasattr(run.model, "load_weights"):  # a Hugging Face base (lunalm.finetune.adapter)
        run.model.load_weights(directory)
    else:
        device = "cpu" if state_dicts.sharded(run) else str(run.hw.device)
        state_dicts.load_model_state(run, load_file(str(directory / "model.safetensors"), device=device))


def share_cooldown(run: Run) -> None:
    """Under DDP only rank 0 evaluates: its decision to anneal reaches every rank, which goes back to the same
    best weights (rank 0 wrote them at an earlier evaluation)."""
    start, steps = distributed.broadcast((run.state.cooldown_start, run.state.cooldown_steps), run.dist)
    if start >= 0 and run.state.cooldown_start < 0:
        run.state.cooldown_start, run.state.cooldown_steps = start, steps
        load_best_weights(run)


def maybe_sample(run: Run, ui, final: bool = False) -> None:
    every = run.config.train.sample_every
    if not (final or (every and run.state.step % every == 0)):
        return
    lines = [f"## step {run.state.step}\n"]
    cfg = SamplingConfig(max_new_tokens=run.config.train.sample_tokens, temperature=0.8, top_k=50, top_p=0.95,
                         seed=SAMPLE_SEED)
    if run.data.instructions is not None:  # instruction fine-tunes: held-out prompts through the chat template
        from lunalm.finetune.instructions import sample_chat

        pairs = sample_chat(run.model, run.data.tokenizer, run.data.instructions, cfg, run.hw.device)
    else:  # each prompt its own random stream: no two prompts share one continuation
        with averaged(run):
            pairs = [(prompt, generate(run.model, run.data.tokenizer, prompt,
                                       dataclasses.replace(cfg, seed=SAMPLE_SEED + i), device=run.hw.device))
                     for i, prompt in enumerate(run.sample_prompts)]
    for prompt, text in pairs:
        ui.sample(run.state.step, prompt, text)
        lines.append(f"**{prompt}**{text}\n")
    if run.dist.is_main:
        with open(run.run_dir / "samples.md", "a", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")
    run.model.train()


def meta(run: Run, status: str | None = None) -> dict:
    """``lunalm.json`` of a checkpoint: enough to rebuild, compare and report the run."""
    return {"lunalm_version": __version__, "step": run.state.step, "tokens_seen": run.state.tokens_seen,
            "status": status, "config": run_config_to_dict(run.config),
            "model": run.model.describe(),
            "n_params": run.n_params,
            "tokenizer_hash": run.data.tokenizer.content_hash, "metrics": run.state.last_eval,
            "best_val_loss": _finite(run.state.best_val_loss), "best_step": run.state.best_step}


def training_state(run: Run) -> dict:
    # elapsed_s in the checkpoint covers this process too; the live state keeps the earlier part only
    return {"state": {**run.state.state_dict(), "elapsed_s": elapsed(run), "sampler": run.sampler.state_dict()},
            "optimizer": state_dicts.optimizer_state(run), "scaler": run.scaler.state_dict(),
            "rng": ckpt.rng_state(), "total_steps": run.total_steps, "world_batch": run.world_batch,
            **({"average": run.average.state_dict()} if run.average is not None else {})}


def save_step(run: Run) -> None:
    """A resumable step checkpoint (every rank calls this when sharded: gathering is collective)."""
    target = run.checkpoints / f"step-{run.state.step:08d}"
    _save(run, target, meta(run), training_state(run))
    if run.dist.is_main:
        ckpt.prune_step_checkpoints(run.checkpoints, run.config.train.keep_checkpoints)


def _save(run: Run, target, metadata: dict, train_state: dict | None = None) -> None:
    """Gather the full weights when sharded (all ranks), then write on rank 0 only."""
    weights = state_dicts.model_state(run)
    if run.dist.is_main:
        ckpt.save_checkpoint(target, run.model, run.data.tokenizer, metadata, train_state, model_state=weights)


def restore(run: Run, directory) -> int | None:
    """Load weights, optimizer, scaler, loop state, sampler position and RNG from a step checkpoint;
    returns the global batch (sequences per step over all processes) it was saved with, if recorded."""
    _load_weights(run, directory)
    saved = ckpt.load_train_state(directory)
    state_dicts.load_optimizer_state(run, saved["optimizer"])
    run.scaler.load_state_dict(saved["scaler"])
    state = dict(saved["state"])
    run.sampler.load_state_dict(state.pop("sampler"))
    run.state.load_state_dict(state)
    ckpt.restore_rng_state(saved["rng"])
    if run.average is not None:
        if "average" in saved:
            run.average.load_state_dict(saved["average"])
        else:  # a checkpoint written without an average: it starts from these weights
            run.average.restart()
    return saved.get("world_batch")


def rollback(run: Run, ui) -> None:
    """Back to the last good checkpoint with half the learning rate, or give up as diverged."""
    from lunalm.train.loop import Diverged

    state = run.state
    good = ckpt.latest_good_checkpoint(run.checkpoints)
    if good is None or state.rollbacks >= run.config.train.max_rollbacks:
        raise Diverged(_advice(run, good is None))
    lr_scale, rollbacks, skipped = state.lr_scale / 2, state.rollbacks + 1, state.skipped_steps
    seconds = elapsed(run)
    restore(run, good)
    state.lr_scale, state.rollbacks, state.skipped_steps, state.bad_steps = lr_scale, rollbacks, skipped, 0
    state.elapsed_s, run.started = seconds, time.time()  # wall time keeps running across a rollback
    message = f"{run.config.train.max_bad_steps} non-finite or exploding steps in a row: rolled back to " \
              f"{good.name} with the learning rate halved (x{lr_scale:g})"
    run.logger.event("rollback", state.step, message, checkpoint=good.name, lr_scale=lr_scale)
    ui.warning(message)


def _advice(run: Run, no_checkpoint: bool) -> str:
    where = "before the first checkpoint" if no_checkpoint else f"after {run.state.rollbacks} rollbacks"
    clip = "gradient clipping (train.grad_clip: 1.0), " if not run.config.train.grad_clip else ""
    return (f"training diverged {where} (loss or gradients not finite, or the loss exploding). Try: {clip}a "
            f"lower learning rate (--lr {run.peak_lr * run.state.lr_scale / 3:.2g}), a longer warmup (--warmup-steps "
            f"{max(100, 2 * run.warmup_steps)}), fp32 or bf16 instead of fp16 (--precision), and check the "
            "corpus for garbage with `luna analyze --filter`")


def elapsed(run: Run) -> float:
    return run.state.elapsed_s + (time.time() - run.started)


def finish(run: Run, status: str, ui) -> str:
    """final/ (when the run ended normally), summary.json, closed logs (rank 0 writes; others close). The
    weight average, the model the run evaluated, is what final/ holds and the held-out check scores."""
    with averaged(run):
        return _finish(run, status, ui)


def _finish(run: Run, status: str, ui) -> str:
    if status in ("completed", "stopped-early") and (run.dist.is_main or state_dicts.sharded(run)):
        _save(run, run.checkpoints / "final", meta(run, status))  # sharded: every rank helps gather
    if not run.dist.is_main:
        run.logger.close()
        return status
    if status == "interrupted":
        ui.warning(f"interrupted: checkpoint saved; continue with `luna resume {run.run_dir}`")
    summary = run_summary(run, status)
    if status in ("completed", "stopped-early"):
        summary["heldout"] = _heldout(run, ui)
    (run.run_dir / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n",
                                             encoding="utf-8")
    run.logger.summary(summary)  # the final numbers to wandb / mlflow / trackio
    run.logger.close()
    return status


def _heldout(run: Run, ui) -> dict | None:
    """The held-out score beside PPMd's (lunalm.train.heldout_check); a failure there costs the summary one
    line, never the finished run."""
    from lunalm.train.heldout_check import heldout_check

    try:
        return heldout_check(run)
    except (MemoryError, RuntimeError, ValueError, OSError) as error:
        message = f"held-out check skipped: {error}"
        run.logger.event("heldout-skipped", run.state.step, message)
        ui.warning(message)
        return None


def run_summary(run: Run, status: str) -> dict:
    seconds = elapsed(run)
    best = run.state.best_val_loss
    return {"status": status, "run_dir": str(run.run_dir), "steps": run.state.step,
            "total_steps": run.total_steps, "tokens_seen": run.state.tokens_seen,
            "passes": round(passes_over(run.state.step, run.world_batch, run.sampler.n_windows), 2),
            "n_params": run.n_params, "device": run.hw.name, "precision": run.hw.precision,
            "wall_time_s": round(seconds, 1), "tokens_per_s": round(run.state.tokens_seen / max(seconds, 1e-9)),
            "best_val_loss": _finite(best), "best_perplexity": _finite(math.exp(best)) if best < 50 else None,
            "best_step": run.state.best_step, "last_eval": run.state.last_eval,
            "skipped_steps": run.state.skipped_steps, "rollbacks": run.state.rollbacks}


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
