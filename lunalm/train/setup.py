"""Building the parts of a run: model, optimizer, sampler, evaluation batches, budget, run directory.

``build_run`` returns one ``Run`` that the loop (``lunalm.train.loop``) drives; nothing here trains.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import yaml

from lunalm.config import RunConfig, TrainConfig, run_config_to_dict
from lunalm.data.batches import WindowSampler, fixed_eval_batches
from lunalm.errors import ConfigError
from lunalm.model import LunaLM, ModelConfig, count_parameters, model_config_from_preset, optimizer_param_groups
from lunalm.train.average import WeightAverage
from lunalm.train.device import Hardware, resolve
from lunalm.train.distributed import SINGLE, Dist, device_for
from lunalm.train.state_dicts import remember_names
from lunalm.train.metrics import RunLogger
from lunalm.train.prepare import PreparedData
from lunalm.train.prompts import corpus_prompts
from lunalm.train.schedule import default_lr, default_warmup
from lunalm.train.state import TrainState

if TYPE_CHECKING:
    from lunalm.train.budget import Retime


@dataclass
class Run:
    """Everything the loop needs, built once."""

    config: RunConfig
    run_dir: Path
    data: PreparedData
    hw: Hardware
    model: torch.nn.Module  # LunaLM, or lunalm.finetune.adapter.HFCausalLM for a Hugging Face base
    forward: torch.nn.Module  # the model, or its torch.compile wrapper
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    sampler: WindowSampler
    eval_batches: list
    logger: RunLogger
    state: TrainState
    total_steps: int
    peak_lr: float
    warmup_steps: int
    n_params: int
    stop_reason: str | None = None  # set by signal handlers and guards
    token_bytes: torch.Tensor | None = None  # UTF-8 bytes of each token id, for bits per byte
    sample_prompts: tuple[str, ...] = ()  # train.sample_prompts, else the corpus's own (lunalm.train.prompts)
    started: float = field(default_factory=time.time)
    dist: Dist = SINGLE  # this process's rank in a torchrun job (a single process by default)
    average: WeightAverage | None = None  # the weights evaluated, saved as best/ and final/, and sampled
    retime: Retime | None = None  # a new time-budget run's second count (lunalm.train.budget)
    auto_weight_decay: bool = False  # train.weight_decay null: decided from the passes, again when re-timed

    @property
    def checkpoints(self) -> Path:
        return self.run_dir / "checkpoints"

    @property
    def global_batch(self) -> int:
        """Sequences this process trains on per step (micro-batch x accumulation)."""
        return self.state.micro_batch_size * self.state.grad_accum_steps

    @property
    def world_batch(self) -> int:
        """Sequences per optimizer step over all processes."""
        return self.global_batch * self.dist.world

    @property
    def passes(self) -> float:
        """Passes over the training windows that ``total_steps`` make."""
        return passes_over(self.total_steps, self.world_batch, self.sampler.n_windows)


def passes_over(steps: int, world_batch: int, n_windows: int) -> float:
    """Passes over ``n_windows`` training windows that ``steps`` steps of ``world_batch`` windows make."""
    return steps * world_batch / max(1, n_windows)


def resolve_model_config(config: RunConfig, vocab_size: int) -> ModelConfig:
    """The preset at this vocabulary (padded to a multiple of 64 for fast matmuls) and context."""
    padded = 64 * math.ceil(vocab_size / 64)
    return model_config_from_preset(config.model.preset, padded, config.data.context_length,
                                    **config.model.overrides())


UNTIMED_STEPS = 10**9  # the step count of a minutes-only budget before it is timed


def total_steps(train: TrainConfig, n_windows: int, global_batch: int, context_length: int) -> int:
    """Optimizer steps for the budget: the smallest of max_steps, epochs and tokens (default 1 epoch).

    ``minutes`` alone gives no count here (it needs this machine's speed): the run gets a placeholder that
    ``lunalm.train.session`` replaces with the timed count before the first step."""
    candidates = [UNTIMED_STEPS] if train.minutes and not (train.max_steps or train.epochs or train.tokens) else []
    if train.max_steps:
        candidates.append(train.max_steps)
    if train.epochs:
        candidates.append(math.ceil(train.epochs * n_windows / global_batch))
    if train.tokens:
        candidates.append(math.ceil(train.tokens / (global_batch * context_length)))
    return max(1, min(candidates) if candidates else math.ceil(n_windows / global_batch))


def check_memory(cfg: ModelConfig, train: TrainConfig, hw: Hardware, preset: str = "custom") -> None:
    """Refuse, before allocating, a model whose training step cannot fit in this device's free memory."""
    from lunalm.plan.memory import device_bytes, estimate_training_memory

    estimate = estimate_training_memory(cfg, train.micro_batch_size, precision=hw.precision,
                                        grad_accum_steps=train.grad_accum_steps, device_kind=hw.device.type,
                                        averaged=train.ema_horizon > 0)
    need = device_bytes(estimate.peak, hw.device.type)
    available = _available_bytes(hw)
    if available and need > 0.95 * available:
        raise ConfigError(
            f"model {preset} {cfg_name(cfg)} with micro_batch_size {train.micro_batch_size} at context "
            f"{cfg.context_length} needs about {need / 2**30:.1f} GB but {hw.name} has "
            f"{available / 2**30:.1f} GB free; choose a smaller --preset, --batch-size or --context, or add "
            "--activation-checkpointing (`luna plan` finds settings that fit)")


def cfg_name(cfg: ModelConfig) -> str:
    return f"({count_parameters(cfg) / 1e6:.1f}M parameters, {cfg.n_layer} layers x {cfg.d_model})"


def _available_bytes(hw: Hardware) -> int | None:
    if hw.device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(hw.device)
        return free
    from lunalm.plan.hardware import available_ram

    return available_ram()


def build_optimizer(model: LunaLM, train: TrainConfig, hw: Hardware, sharded: bool = False,
                    from_scratch: bool = True, passes: float | None = None) -> torch.optim.Optimizer:
    """AdamW, decay on matrices only, the fused kernel where this build has it (foreach for FSDP's DTensors).

    Muon (``train.optimizer`` muon, or auto for a short run from scratch on a CPU:
    ``lunalm.config.resolve_optimizer``): Muon on the transformer blocks' matrices and that AdamW on the
    rest, as one optimizer (``lunalm.train.optim.MuonAdamW``)."""
    from lunalm.config import MUON_LR_SCALE, resolve_optimizer

    muon, chosen = None, frozenset()
    decay = TrainConfig.weight_decay if train.weight_decay is None else train.weight_decay  # None: session sets it
    if resolve_optimizer(train, hw.device.type, from_scratch, passes) == "muon":
        from lunalm.train.device import cpu_bf16
        from lunalm.train.optim import Muon, muon_parameters

        chosen = frozenset(muon_parameters(model))
        native_bf16 = hw.device.type == "cuda" or (hw.device.type == "cpu" and cpu_bf16())
        muon = Muon([p for p in model.parameters() if id(p) in chosen], weight_decay=decay,
                    ns_dtype=torch.bfloat16 if native_bf16 else torch.float32)
    groups = optimizer_param_groups(model, decay, exclude=chosen)
    betas = (train.beta1, train.beta2)
    optimizer = None
    if hw.device.type in ("cuda", "cpu") and not sharded:
        try:
            optimizer = torch.optim.AdamW(groups, lr=0.0, betas=betas, fused=True)
        except (RuntimeError, TypeError):
            pass  # older builds: no fused kernel for this device
    optimizer = optimizer or torch.optim.AdamW(groups, lr=0.0, betas=betas, foreach=True)
    if muon is not None:
        from lunalm.train.optim import MuonAdamW

        optimizer = MuonAdamW(muon, optimizer, lr_scale=MUON_LR_SCALE)
    remember_names(optimizer, model)
    return optimizer


def build_run(config: RunConfig, run_dir: Path, data: PreparedData, d: Dist = SINGLE) -> Run:
    """Seed, build model/optimizer/sampler/eval batches and size the budget."""
    train = config.train
    hw = resolve(device_for(train.device, d), train.precision)
    if config.finetune is None:
        model_cfg = resolve_model_config(config, data.tokenizer.vocab_size)
        check_memory(model_cfg, train, hw, config.model.preset)
        torch.manual_seed(train.seed)  # the same initial weights on every rank
        model = LunaLM(model_cfg).to(hw.device)
        n_params, lr = count_parameters(model_cfg), train.lr or default_lr(count_parameters(model_cfg))
    else:
        model, n_params, lr = _finetune_model(config, data, hw)
    if (train.weight_decay or 0) * lr >= 1:  # the config could check this only with an lr written in it
        raise ConfigError(f"train.weight_decay = {train.weight_decay:g} with the automatic lr {lr:.3g}: each step "
                          f"would remove {train.weight_decay * lr:.0%} of every weight; keep lr x weight_decay < 1")
    forward = model
    if d.active and train.shard:
        if config.finetune is not None or hw.precision == "fp16":
            raise ConfigError("train.shard (FSDP) supports lunalm models in fp32 or bf16; use DDP (no --shard) "
                              "for fine-tunes and fp16")
        from lunalm.train.distributed import shard

        shard(model, hw.precision)
    elif d.active:
        from torch.nn.parallel import DistributedDataParallel

        forward = DistributedDataParallel(model, device_ids=[hw.device.index] if hw.device.type == "cuda" else None)
    forward = torch.compile(forward) if train.compile else forward
    sampler = _sampler(config, data)
    state = TrainState(micro_batch_size=train.micro_batch_size, grad_accum_steps=train.grad_accum_steps)
    world_batch = train.micro_batch_size * train.grad_accum_steps * d.world
    steps = total_steps(train, sampler.n_windows, world_batch, config.data.context_length)
    return Run(config=config, run_dir=run_dir, data=data, hw=hw, model=model, forward=forward,
               optimizer=build_optimizer(model, train, hw, sharded=d.active and train.shard,
                                         from_scratch=config.finetune is None,
                                         passes=passes_over(steps, world_batch, sampler.n_windows)),
               scaler=hw.grad_scaler(), sampler=sampler,
               eval_batches=_eval_batches(config, data), logger=_run_logger(config, run_dir, d), state=state,
               total_steps=steps, peak_lr=lr,
               warmup_steps=train.warmup_steps if train.warmup_steps is not None else default_warmup(steps),
               n_params=n_params, dist=d, sample_prompts=train.sample_prompts or corpus_prompts(data),
               average=WeightAverage(model, train.ema_horizon) if averages(config, d) else None)


def write_config(run: Run) -> None:
    """``config.yaml``, the config the run follows (``luna resume`` reads it), replaced atomically."""
    path = run.run_dir / "config.yaml"
    temporary = path.with_name(f".config.yaml.{os.getpid()}.tmp")
    temporary.write_text(yaml.safe_dump(run_config_to_dict(run.config), sort_keys=False, allow_unicode=True),
                         encoding="utf-8")
    os.replace(temporary, path)


def averages(config: RunConfig, d: Dist = SINGLE) -> bool:
    """Whether a run keeps a weight average: train.ema_horizon > 0, from scratch (not measured on
    fine-tunes), and not sharded (FSDP splits the weights the average would follow)."""
    return config.train.ema_horizon > 0 and config.finetune is None and not (d.active and config.train.shard)


def _run_logger(config: RunConfig, run_dir: Path, d: Dist) -> RunLogger:
    """metrics.jsonl and events.jsonl, plus the trackers of ``train.report_to`` (rank 0 only)."""
    from lunalm.train.trackers import open_trackers

    names = config.train.report_to
    trackers = open_trackers(names, run_dir, run_dir.name, run_config_to_dict(config)) if d.is_main else []
    return RunLogger(run_dir, enabled=d.is_main, tensorboard="tensorboard" in names, trackers=trackers)


def _finetune_model(config: RunConfig, data: PreparedData, hw: Hardware) -> tuple[torch.nn.Module, int, float]:
    """The base model of ``luna finetune`` (lunalm.finetune.base), its parameter count and peak lr."""
    from lunalm.finetune.base import default_lr as finetune_lr, load_base_model

    torch.manual_seed(config.train.seed)  # LoRA's initial A matrices
    model = load_base_model(config.finetune, data.tokenizer, hw, dropout=config.model.dropout,
                            activation_checkpointing=config.model.activation_checkpointing)
    n_params = sum(p.numel() for p in model.parameters())
    return model, n_params, config.train.lr or finetune_lr(config.finetune)


def _sampler(config: RunConfig, data: PreparedData) -> WindowSampler:
    if data.instructions is not None:
        from lunalm.finetune.instructions import InstructionSampler

        if len(data.instructions.train[0]) == 0:
            raise ConfigError("instruction data: no training examples left after the validation split")
        return InstructionSampler(data.instructions.train, seed=config.data.seed,
                                  group=config.train.micro_batch_size)
    return WindowSampler(data.shards.split("train"), config.data.context_length, config.data.stride,
                         seed=config.data.seed)


def _eval_batches(config: RunConfig, data: PreparedData) -> list:
    if data.instructions is not None:
        from lunalm.finetune.instructions import eval_batches

        return eval_batches(data.instructions.val, config.train.micro_batch_size, config.train.eval_batches)
    if data.shards.n_tokens("val") < config.data.context_length + 1:
        return []  # no validation text (val_fraction 0 or a tiny corpus): no evaluation, no early stop
    return fixed_eval_batches(data.shards.split("val"), config.data.context_length,
                              config.train.micro_batch_size, config.train.eval_batches)
