"""Starting and resuming runs: the run directory, the resolved config, and the checks around them."""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from pathlib import Path

from lunalm.config import RunConfig, load_yaml, run_config_from_dict, run_config_to_dict
from lunalm.errors import ConfigError, DiskFullError, LunaError, is_disk_full
from lunalm.tokenizer import Tokenizer
from lunalm.train import checkpoint as ckpt
from lunalm.train import distributed
from lunalm.train.budget import resume_retime
from lunalm.train.loop import Faults, SilentUI, train_loop
from lunalm.train.milestones import restore
from lunalm.train.prepare import prepare_data
from lunalm.train.runlock import hold_run_lock, release_run_lock
from lunalm.train.setup import Run, build_run, resolve_model_config, write_config

# Sections whose change makes the saved weights or data position meaningless.
FIXED_SECTIONS = ("corpus", "tokenizer", "data", "model")


def start(config: RunConfig, ui, faults: Faults | None = None, progress: bool = True,
          size_by_time: bool = False) -> tuple[Run, str]:
    """A new run: data, model, then the loop (in every process of a torchrun job; rank 0 writes).

    ``size_by_time``: the preset was not chosen (`luna train` on a CPU with its default budget), so a
    machine too slow for it in the time gets the smaller one (``_smaller_for_time``)."""
    _check_runs_dir(Path(config.runs_dir))
    d = distributed.from_env(config.train.device)
    distributed.check_same_config(run_config_to_dict(config), d)
    name = distributed.broadcast(config.name or f"{config.model.preset}-{time.strftime('%Y%m%d-%H%M%S')}", d)
    run_dir = Path(config.runs_dir) / name
    # an earlier run of this name left its folder: checkpoints, or only its config and metrics (killed before
    # its first checkpoint), which a new run would append to and register under the same id
    exists = distributed.broadcast(any((run_dir / part).exists() for part in ("checkpoints", "config.yaml",
                                                                              "metrics.jsonl")), d)
    if exists and not _has_checkpoint(run_dir / "checkpoints"):
        raise LunaError(f"{run_dir} holds a run that stopped before its first complete step checkpoint. "
                        f"{_start_again(run_dir)}")
    if exists:
        raise LunaError(f"{run_dir} already holds a run; continue it with `luna resume {run_dir}` or "
                        "pick another --name")
    ui = ui if d.is_main else SilentUI()
    _warn_if_planned_for_other_text(config, ui)
    if config.finetune is None:  # a bad preset or shape fails now, not after the tokenizer and shards
        resolve_model_config(config, vocab_size=config.tokenizer.vocab_size or 64)
    data = _prepare_in_turn(config, d, ui, progress)
    run = build_run(dataclasses.replace(config, name=name), run_dir, data, d)
    planned_on = (config.plan or {}).get("device_kind")
    if planned_on and planned_on != run.hw.device.type:
        ui.warning(f"warning: the plan in this config was made for {config.plan.get('device', planned_on)}; this run "
                   f"trains on {run.hw.name}, where its model size, batch and time estimate do not hold: "
                   f"`luna plan … --device {run.hw.device.type}` makes one for it")
    if config.train.minutes:
        cap, budget = _fit_minutes(run)
        smaller = _smaller_for_time(run, cap) if size_by_time and d.world == 1 else None
        if smaller is not None:
            ui.message(smaller[1])
            run.logger.close()  # nothing logged yet: its folder goes, or the smaller run's logger reopens it
            if config.name is None:  # the name says the model it holds
                shutil.rmtree(run_dir, ignore_errors=True)
                name = smaller[0] + name[len(config.model.preset):]
                run_dir = Path(config.runs_dir) / name
            started = run.started
            config = dataclasses.replace(config, model=dataclasses.replace(config.model, preset=smaller[0]))
            run = build_run(dataclasses.replace(config, name=name), run_dir, data, d)
            run.started = started  # the time nano's steps took to time counts against the budget
            _, budget = _fit_minutes(run)
        ui.message(budget)
    if config.train.optimizer == "auto" and config.train.minutes:
        _choose_optimizer(run, ui)
    if config.train.weight_decay is None:
        _set_weight_decay(run, ui)
    run.config = _resolved(run)
    if run.config.finetune is not None:
        trainable = sum(p.numel() for p in run.model.parameters() if p.requires_grad)
        ui.message(f"trainable parameters: {trainable:,} of {run.n_params:,} "
                   f"({100 * trainable / max(run.n_params, 1):.2f}%)")
    if d.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        hold_run_lock(run_dir)  # a second `luna train --name` of the same name started at the same moment
        write_config(run)
        data.tokenizer.save(run_dir / "tokenizer")
    run.model.train()
    return run, _locked_loop(run, ui, faults)


def _has_checkpoint(checkpoints: Path) -> bool:
    """What `luna resume` can use: a sealed step checkpoint, or final/ (a finished run, which resume names).
    A best/ alone (a run killed after its first evaluation) continues nothing, as resume says too."""
    if not checkpoints.is_dir():
        return False
    sealed = any((path / ckpt.MANIFEST).is_file() for path in ckpt.step_checkpoints(checkpoints))
    return sealed or (checkpoints / "final").is_dir()


def _check_runs_dir(runs_dir: Path) -> None:
    """The runs folder, or the first part of its path that exists, must be a folder (not a file)."""
    existing = runs_dir
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        raise ConfigError(f"--runs-dir {runs_dir}: {existing} is a file, not a folder; give a folder for the runs "
                          "(it is created if missing), e.g. --runs-dir runs")


def _prepare_in_turn(config: RunConfig, d, ui, progress: bool, tokenizer=None):
    """Rank 0 builds the tokenizer and token shards; the others then find them in the cache."""
    if d.is_main:
        data = prepare_data(config, tokenizer=tokenizer, progress=progress, log=ui.message)
    distributed.barrier(d)
    if not d.is_main:
        data = prepare_data(config, tokenizer=tokenizer, progress=False, log=ui.message)
    return data


def _locked_loop(run: Run, ui, faults: Faults | None) -> str:
    """The recorded loop; the run folder's lock is let go when it ends (the process may train another)."""
    try:
        status = _recorded_loop(run, ui, faults)
    finally:
        release_run_lock(run.run_dir)
    distributed.close(run.dist)  # a normal end only: after a crash the other ranks are stopped by torchrun
    return status


def _recorded_loop(run: Run, ui, faults: Faults | None) -> str:
    """The loop, registered in the run registry from start to outcome (crashes included; rank 0 only)."""
    from lunalm.runs.recorder import RunRecorder

    if not run.dist.is_main:
        return train_loop(run, SilentUI(), faults)
    recorder = RunRecorder(run, ui)
    recorder.started()
    try:
        status = train_loop(run, recorder, faults)
    except BaseException as error:
        recorder.crashed(error)
        if is_disk_full(error):  # one line that names the disk and says how to go on, never a traceback
            doing = error.doing if isinstance(error, DiskFullError) else f"writing the run's files at step {run.state.step}"
            raise DiskFullError(run.run_dir, doing, f"`luna resume {run.run_dir}` continues from the last complete "
                                "checkpoint") from error
        raise
    recorder.finished(status)
    return status


PLAN_SIZE_DRIFT = 1.5  # a corpus this many times larger or smaller than planned for gets a warning


def _warn_if_planned_for_other_text(config: RunConfig, ui) -> None:
    """A plan's settings (model size, epochs, batch, decay) are for the corpus it read: warn when the files
    now hold far more or less text than then (a plan reused for another corpus, or files added)."""
    planned = (config.plan or {}).get("corpus_bytes")
    if not planned or not config.corpus.paths:
        return
    from lunalm.corpus import Corpus

    now = Corpus(config.corpus).bytes
    if now > planned * PLAN_SIZE_DRIFT or now * PLAN_SIZE_DRIFT < planned:
        ui.warning(f"warning: the plan in this config was made for {planned / 1e6:.2f} MB of text; "
                   f"{', '.join(config.corpus.paths)} now hold {now / 1e6:.2f} MB, for which its model size, epochs "
                   f"and batch may be wrong: `luna plan {' '.join(config.corpus.paths)}` again makes one for it")


def _fit_minutes(run: Run) -> tuple[int, str]:
    """Size the run to ``train.minutes`` on this machine (rank 0's timing decides for every process); returns
    the steps the other limits allow (epochs, tokens, max_steps) and the line that says the budget."""
    from lunalm.plan.recommend import duration_text
    from lunalm.train.budget import Retime, seconds_per_step, steps_for_minutes
    from lunalm.train.schedule import default_warmup

    step_seconds = distributed.broadcast(seconds_per_step(run), run.dist)
    minutes = run.config.train.minutes
    cap = run.total_steps
    run.total_steps = min(cap, steps_for_minutes(minutes, step_seconds))
    if run.config.train.schedule == "wsd":  # the flat lr lets the count be corrected mid-run (budget.Retime)
        run.retime = Retime.plan(cap, minutes * 60 - (time.time() - run.started), run.total_steps)
        if run.retime is not None:  # checkpoints before the count is fixed again say so (a resume fixes it)
            run.state.retime = {"cap": cap, "estimate": run.total_steps}
    if run.config.train.warmup_steps is None:
        run.warmup_steps = default_warmup(run.total_steps)
    ending = time.strftime('%H:%M', time.localtime(run.started + minutes * 60))
    return cap, (f"time budget {duration_text(minutes / 60)}: {run.total_steps:,} steps at {step_seconds:.2f} s per "
                 f"step on {run.hw.name} (measured), ending about {ending}")


def _smaller_for_time(run: Run, cap: int) -> tuple[str, str] | None:
    """(smaller preset, the reason) when the time budget, not the ``cap`` of steps the passes allow, limits the
    run and the model would see fewer than ``lunalm.plan.recommend.TOKENS_PER_PARAM_FOR_SIZE`` tokens per
    non-embedding parameter in it; else None."""
    from lunalm.model import count_parameters
    from lunalm.plan.recommend import TOKENS_PER_PARAM_FOR_SIZE, smaller_for_time

    if (run.config.finetune is not None or run.config.model.overrides().keys() - {"dropout", "tie_embeddings",
            "activation_checkpointing"} or run.total_steps >= cap):  # a shape of its own is kept
        return None
    tokens = run.total_steps * run.world_batch * run.config.data.context_length
    smaller = smaller_for_time(run.model.config, run.config.model.preset, tokens)
    if smaller is None:
        return None
    body = count_parameters(run.model.config, non_embedding=True)
    seen = f"{tokens:,}" if tokens < 1e6 else f"{tokens / 1e6:.1f}M"
    return smaller, (f"model {smaller}, not {run.config.model.preset}: in {run.config.train.minutes:g} min this "
                     f"machine trains {run.config.model.preset} on ~{seen} tokens, {tokens / body:.2g} per "
                     f"parameter (below {TOKENS_PER_PARAM_FOR_SIZE:g}: too big for the time; --preset "
                     f"{run.config.model.preset} keeps it)")


def _choose_optimizer(run: Run, ui) -> None:
    """``train.optimizer: auto`` with a time budget: the choice for the passes the timed steps make (before
    the first step, so nothing is lost by building it again)."""
    from lunalm.config import MUON_MAX_PASSES, resolve_optimizer
    from lunalm.train.optim import MuonAdamW
    from lunalm.train.setup import build_optimizer

    from_scratch, sharded = run.config.finetune is None, run.dist.active and run.config.train.shard
    muon = resolve_optimizer(run.config.train, run.hw.device.type, from_scratch, run.passes) == "muon"
    if muon != isinstance(run.optimizer, MuonAdamW):
        run.optimizer = build_optimizer(run.model, run.config.train, run.hw, sharded=sharded,
                                        from_scratch=from_scratch, passes=run.passes)
    if muon:
        ui.message(f"optimizer Muon (AdamW for embeddings and norms) at {run.optimizer.lr_scale:g}x the lr "
                   f"(peak {run.peak_lr * run.optimizer.lr_scale:.3g}): ~{run.passes:.1f} passes over the text, "
                   f"at most {MUON_MAX_PASSES}, on a CPU")


def _set_weight_decay(run: Run, ui) -> None:
    """``train.weight_decay: null``: the plan's rule, now that the steps and so the passes are known (the
    config written keeps the number, so a resumed run decays the same); decided again if the time budget is
    re-timed (``lunalm.train.budget.retime``)."""
    from lunalm.train.budget import set_weight_decay

    run.auto_weight_decay = True
    ui.message(set_weight_decay(run))


def _resolved(run: Run) -> RunConfig:
    """The config with automatic values filled in (what was actually used); a time budget's step count
    goes into max_steps, so a resumed run follows the same schedule."""
    from lunalm.train.optim import MuonAdamW

    train = dataclasses.replace(run.config.train, lr=run.peak_lr, warmup_steps=run.warmup_steps,
                                optimizer="muon" if isinstance(run.optimizer, MuonAdamW) else "adamw",
                                ema_horizon=run.config.train.ema_horizon if run.average is not None else 0.0)
    if train.minutes:
        train = dataclasses.replace(train, max_steps=run.total_steps)
    tokenizer = dataclasses.replace(run.config.tokenizer, vocab_size=run.data.tokenizer.vocab_size) \
        if run.config.tokenizer.kind == "bpe" else run.config.tokenizer
    return dataclasses.replace(run.config, train=train, tokenizer=tokenizer)


def resume(run_dir: str | Path, ui, faults: Faults | None = None, progress: bool = True) -> tuple[Run, str]:
    """Continue a run from its newest good step checkpoint, bit-exactly."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise LunaError(f"{run_dir}: not a lunalm run directory (no config.yaml); give the folder that "
                        "`luna train` created, e.g. runs/nano-20261123-120000")
    config = run_config_from_dict(_as_written(load_yaml(str(run_dir / "config.yaml"))))
    finished = _finished(run_dir, config)
    if finished:
        raise LunaError(finished)
    d = distributed.from_env(config.train.device)
    distributed.check_same_config(run_config_to_dict(config), d)
    ui = ui if d.is_main else SilentUI()
    if d.is_main:
        hold_run_lock(run_dir)  # before anything is read for resuming, let alone written

    def skipped(path: Path, reason: str) -> None:
        ui.warning(f"checkpoint {path.name} is damaged ({reason}); falling back to the previous one")

    good = ckpt.latest_good_checkpoint(run_dir / "checkpoints", on_skip=skipped)
    if good is None:
        raise LunaError(f"{run_dir}: no complete step checkpoint to resume from (they are written every "
                        f"train.checkpoint_every = {config.train.checkpoint_every} steps). {_start_again(run_dir)}")
    saved_meta = json.loads((good / ckpt.META).read_text(encoding="utf-8"))
    saved_config = run_config_from_dict(_as_written(saved_meta["config"]))
    _check_compatible(saved_config, config, ui)
    tokenizer = Tokenizer.load(run_dir / "tokenizer" / "tokenizer.json")
    data = _prepare_in_turn(config, d, ui, progress, tokenizer)
    run = build_run(config, run_dir, data, d)
    saved_batch, good = _restore_loadable(run, good, skipped)
    run.started = time.time()  # elapsed_s restored from the checkpoint covers the time before
    if (saved_config.train.micro_batch_size, saved_config.train.grad_accum_steps) != \
            (config.train.micro_batch_size, config.train.grad_accum_steps):  # the user's edit wins
        run.state.micro_batch_size = config.train.micro_batch_size
        run.state.grad_accum_steps = config.train.grad_accum_steps
    if saved_batch and saved_batch != run.world_batch:
        ui.warning(f"warning: the global batch changed from {saved_batch} to {run.world_batch} sequences "
                   f"(micro-batch x accumulation x {run.dist.world} process(es)); keep it equal to continue "
                   "exactly as before")
    resume_retime(run, ui)
    run.model.train()
    run.logger.event("resume", run.state.step, f"resumed from {good.name}")
    ui.message(f"resuming {run_dir} from {good.name} (step {run.state.step} of {run.total_steps})")
    return run, _locked_loop(run, ui, faults)


BEFORE_FIELDS = {"schedule": "cosine", "ema_horizon": 0.0}  # what runs written before these fields did


def _as_written(values):
    """A saved run config as the run used it: runs written before ``train.schedule`` and
    ``train.ema_horizon`` existed decayed with cosine and kept no weight average (the defaults for new
    runs are wsd and an average)."""
    train = values.get("train") if isinstance(values, dict) else None
    if isinstance(train, dict) and not set(BEFORE_FIELDS) <= set(train):
        return {**values, "train": {**BEFORE_FIELDS, **train}}
    return values


def _start_again(run_dir: Path) -> str:
    """The one advice `luna train` and `luna resume` give for a run with no checkpoint to continue."""
    return (f"Nothing can be continued: delete {run_dir} and run the same `luna train ... --name "
            f"{run_dir.name}` again, or train under another --name")


def _restore_loadable(run: Run, good: Path, skipped) -> tuple[int | None, Path]:
    """Restore from ``good``; a checkpoint whose files verify but whose training state does not load safely
    (e.g. a sealed but malicious train_state.pt) falls back to the one before, like any other damage."""
    while True:
        try:
            return restore(run, good), good
        except ckpt.CheckpointError as error:
            skipped(good, str(error))
            older = ckpt.latest_good_checkpoint(run.checkpoints, on_skip=skipped, older_than=good)
            if older is None:
                raise LunaError(f"{run.run_dir}: no step checkpoint older than {good.name} loads either. "
                                f"{_start_again(run.run_dir)}") from error
            good = older


def _finished(run_dir: Path, config: RunConfig) -> str | None:
    """Why resuming would train nothing, or None: the run ended normally (final/ says so) and its budget
    and patience in config.yaml are the ones it finished with."""
    try:
        meta = json.loads((run_dir / "checkpoints" / "final" / ckpt.META).read_text(encoding="utf-8"))
        status, step, saved = meta["status"], meta["step"], meta["config"]["train"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    budget = ("max_steps", "epochs", "tokens", "patience")
    if status not in ("completed", "stopped-early") or any(saved.get(k) != getattr(config.train, k) for k in budget):
        return None
    best = run_dir / "checkpoints" / "best"  # the model the end-of-run summary said to use
    done = (f"{run_dir} already finished ({status} at step {step}): there is nothing to resume, and its model "
            f"is in {best if best.is_dir() else run_dir / 'checkpoints' / 'final'}.")
    if not any((run_dir / "checkpoints").glob("step-*")):
        return (f"{done} It kept no step checkpoint (written every train.checkpoint_every = "
                f"{config.train.checkpoint_every} steps), so it cannot be continued; for a longer run: "
                f"`luna train --config {run_dir / 'config.yaml'} --name NEW_NAME --max-steps N`.")
    return (f"{done} To train it longer, raise train.max_steps, train.epochs or train.tokens (or train.patience) "
            f"in {run_dir / 'config.yaml'} and run `luna resume {run_dir}` again.")


def _check_compatible(saved: RunConfig, current: RunConfig, ui) -> None:
    """Refuse changes that break the checkpoint; warn about batch-size changes."""
    saved_dict, current_dict = run_config_to_dict(saved), run_config_to_dict(current)
    changes = [f"{section}.{key}: {saved_dict[section][key]!r} -> {current_dict[section][key]!r}"
               for section in FIXED_SECTIONS for key in saved_dict[section]
               if saved_dict[section][key] != current_dict[section][key]]
    if saved.train.optimizer != current.train.optimizer:  # the checkpoint holds the other one's state
        changes.append(f"train.optimizer: {saved.train.optimizer!r} -> {current.train.optimizer!r}")
    if changes:
        raise ConfigError("config.yaml no longer matches the checkpoint, so resuming would not continue "
                          "the same run: " + "; ".join(changes) + ". Undo these edits, or start a new run.")
    for key in ("micro_batch_size", "grad_accum_steps"):
        before, after = getattr(saved.train, key), getattr(current.train, key)
        if before != after:
            ui.warning(f"warning: train.{key} changed from {before} to {after}; the run continues, but it "
                       "will no longer match an uninterrupted run exactly")
