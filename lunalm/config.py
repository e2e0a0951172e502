"""Typed, validated run configuration (imports no torch).

Each section is a frozen dataclass; ``__post_init__`` gathers *every* problem and raises one
``ConfigError`` naming each field, its value and the allowed range. ``from_dict`` rejects unknown keys
(a typo in a YAML file must not silently fall back to a default).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

from lunalm.errors import ConfigError

# Data-set files (Parquet, Arrow) too; CSV/TSV are read when named or with --include '*.csv' (a folder of
# texts often holds unrelated spreadsheets)
REPORT_TO = ("tensorboard", "wandb", "mlflow", "trackio")  # experiment trackers --report-to knows
COMPRESSED_SUFFIXES = (".gz", ".bz2", ".xz", ".zst")  # read as the inner suffix says (lunalm.corpus.compressed)
DEFAULT_INCLUDE = ("*.txt", "*.md", "*.jsonl",
                   *(f"*{kind}{packed}" for packed in COMPRESSED_SUFFIXES for kind in (".txt", ".md", ".jsonl")),
                   "*.parquet", "*.arrow", "*.html", "*.htm", "*.epub", "*.docx", "*.odt", "*.rtf", "*.pdf",
                   "*.srt", "*.vtt", "*.ass", "*.fb2", "*.fb2.zip", "*.fbz")


class _Checks:
    """Collects validation problems so one error lists them all."""

    def __init__(self, section: str):
        self.section = section
        self.problems: list[str] = []

    def require(self, ok: bool, name: str, value: Any, expected: str) -> None:
        if not ok:
            self.problems.append(f"{self.section}.{name} = {value!r}: expected {expected}")

    def raise_if_any(self) -> None:
        if self.problems:
            raise ConfigError("invalid config: " + "; ".join(self.problems))


@dataclass(frozen=True, kw_only=True)
class CorpusConfig:
    """Where the text comes from and how it is cleaned."""

    paths: tuple[str, ...] = ()  # files or directories; empty = the built-in Atatürk corpus
    include: tuple[str, ...] = DEFAULT_INCLUDE  # glob patterns (file names) read inside directories
    exclude: tuple[str, ...] = ()  # glob patterns (file names or relative paths) skipped
    text_field: str = "text"  # JSONL/JSON field or table column with the text; "a,b": several, joined
    repair: bool = True  # detect encodings and repair mojibake
    dedup: bool = True  # drop exact-duplicate documents
    filter_non_prose: bool = False  # drop indexes, tables and boilerplate (see lunalm.corpus.prose)
    max_document_chars: int = 1_000_000  # longer texts are split at paragraph breaks (keeps memory flat)

    def __post_init__(self) -> None:
        check = _Checks("corpus")
        check.require(bool(self.text_field), "text_field", self.text_field, "a non-empty field name")
        check.require(
            self.max_document_chars >= 1000, "max_document_chars", self.max_document_chars, ">= 1000"
        )
        check.raise_if_any()


@dataclass(frozen=True, kw_only=True)
class TokenizerConfig:
    """Which tokenizer: trained BPE (default), char-level, or a pretrained one."""

    kind: str = "bpe"  # "bpe" | "char" | "pretrained"
    vocab_size: int | None = None  # BPE vocabulary size in tokens; None = scaled to the corpus size
    path: str | None = None  # kind="pretrained": a tokenizer.json file or a Hugging Face model directory
    min_frequency: int = 2  # BPE: a merge must occur at least this many times

    def __post_init__(self) -> None:
        check = _Checks("tokenizer")
        check.require(self.kind in ("bpe", "char", "pretrained"), "kind", self.kind,
                      "one of 'bpe', 'char', 'pretrained'")
        check.require(self.vocab_size is None or 256 <= self.vocab_size <= 262_144, "vocab_size",
                      self.vocab_size, "an integer in [256, 262144] or null (automatic)")
        check.require(self.kind != "pretrained" or bool(self.path), "path", self.path,
                      "a tokenizer.json or HF directory when kind is 'pretrained'")
        check.require(self.min_frequency >= 1, "min_frequency", self.min_frequency, ">= 1")
        check.raise_if_any()


@dataclass(frozen=True, kw_only=True)
class DataConfig:
    """How tokens become training windows."""

    context_length: int = 256  # tokens the model sees per window
    stride: int | None = None  # tokens between window starts; None = context_length (no overlap); each
    # pass after the first moves all training windows by one random offset below the stride
    val_fraction: float = 0.1  # share of documents held out for validation (split by document)
    seed: int = 1337  # seeds the split and the sampler
    cache_dir: str = ".cache/lunalm"  # token shards, keyed by corpus + cleaning + tokenizer hash

    def __post_init__(self) -> None:
        check = _Checks("data")
        check.require(8 <= self.context_length <= 131_072, "context_length", self.context_length,
                      "an integer in [8, 131072]")
        check.require(self.stride is None or 1 <= self.stride <= self.context_length, "stride",
                      self.stride, f"an integer in [1, context_length={self.context_length}] or null")
        check.require(0.0 <= self.val_fraction < 0.5, "val_fraction", self.val_fraction,
                      "a fraction in [0, 0.5)")
        check.raise_if_any()


def from_dict(cls: type, values: dict[str, Any] | None, section: str):
    """Build dataclass ``cls`` from a plain dict, rejecting unknown keys and wrongly typed values by name."""
    if values is not None and not isinstance(values, dict):
        raise ConfigError(f"section '{section}' = {values!r}: expected a mapping of keys, e.g. {section}: "
                          f"{{{dataclasses.fields(cls)[0].name}: ...}}")
    values = dict(values or {})
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(
            f"unknown key(s) in section '{section}': {', '.join(unknown)}; "
            f"known keys are: {', '.join(sorted(known))}"
        )
    for name, value in values.items():
        if isinstance(value, list):  # YAML lists -> tuples for frozen dataclasses
            values[name] = tuple(value)
        elif isinstance(value, str) and str(known[name].type).replace(" | None", "") == "float" \
                and _YAML_FLOAT.fullmatch(value.strip()):
            values[name] = float(value)  # YAML 1.1 reads "3e-3" (no dot) as a string; a person means 0.003
    _check_types(values, known, section)
    try:
        return cls(**values)
    except TypeError as exc:  # wrong value types that the dataclass itself rejects
        raise ConfigError(f"section '{section}': {exc}") from None


_YAML_FLOAT = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)[eE][-+]?\d+")  # "3e-3", "1E5": numbers YAML leaves as text

# Field annotations (strings: ``from __future__ import annotations``) -> the YAML value they need.
_TYPES = {"str": (str, "a string"), "int": (int, "a whole number"), "float": ((int, float), "a number"),
          "bool": (bool, "true or false"), "tuple[str, ...]": (tuple, "a list of strings")}


def _check_types(values: dict[str, Any], fields: dict[str, dataclasses.Field], section: str) -> None:
    """Every value of the type its field declares (YAML's ``yes`` is no step count, ``5`` no device)."""
    check = _Checks(section)
    for name, value in values.items():
        annotation = str(fields[name].type)
        expected = _TYPES.get(annotation.replace(" | None", ""))
        if expected is None or (value is None and annotation.endswith("| None")):
            continue
        python_type, words = expected
        right = isinstance(value, python_type) and (python_type is bool or not isinstance(value, bool))
        if right and python_type is tuple:
            right = all(isinstance(item, str) for item in value)
        check.require(right, name, value, words)
    check.raise_if_any()


def to_dict(obj: Any) -> dict[str, Any]:
    """Plain-dict form (tuples as lists) for YAML/JSON."""
    out = dataclasses.asdict(obj)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}


PRECISIONS = ("auto", "fp32", "bf16", "fp16")
DEFAULT_PROMPTS = ("Yapay zekâ", "Bugün hava", "Tarih boyunca", "İnsan beyni")  # only without any corpus text


@dataclass(frozen=True, kw_only=True)
class ModelChoice:
    """Which network: a preset sized by parameters, with optional shape overrides.

    The vocabulary size comes from the tokenizer and the context from ``data.context_length``, so the
    full ``lunalm.model.ModelConfig`` is resolved only once the tokenizer exists.
    """

    preset: str = "nano"  # pico (~0.4M) | nano | tiny (~10M) | small (~50M) | medium (~150M) | gpt2 (GPT-2 small)
    n_layer: int | None = None  # override: transformer blocks
    n_head: int | None = None  # override: attention heads
    n_kv_head: int | None = None  # override: key/value heads (grouped-query attention)
    d_model: int | None = None  # override: residual width in features
    d_ff: int | None = None  # override: SwiGLU hidden width in features
    dropout: float = 0.0  # residual dropout probability while training (none on attention weights)
    tie_embeddings: bool = True  # share the input embedding and output head
    activation_checkpointing: bool = False  # recompute blocks in backward: less memory, ~30 % slower

    def __post_init__(self) -> None:
        check = _Checks("model")
        for name in ("n_layer", "n_head", "n_kv_head", "d_model", "d_ff"):
            value = getattr(self, name)
            check.require(value is None or (isinstance(value, int) and value > 0), name, value,
                          "a positive integer or null (the preset's value)")
        check.require(0.0 <= self.dropout < 1.0, "dropout", self.dropout, "a probability in [0, 1)")
        check.raise_if_any()

    def overrides(self) -> dict[str, Any]:
        """Fields to pass on to ``model_config_from_preset``."""
        values = {k: v for k, v in to_dict(self).items() if k != "preset" and v is not None}
        return values


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """The optimisation: budget, batch, schedule, evaluation, checkpoints, precision."""

    # budget: the first of these reached ends the run (none given: 1 epoch)
    minutes: float | None = None  # wall-clock minutes of training: a new run times its steps on this machine
    #                               and writes the step count into max_steps (lunalm.train.budget)
    epochs: float | None = None  # passes over the training tokens
    max_steps: int | None = None  # optimizer steps
    tokens: int | None = None  # training tokens (targets) processed
    # batch
    micro_batch_size: int = 16  # sequences per forward/backward
    grad_accum_steps: int = 1  # micro-batches per optimizer step (global batch = product)
    # optimizer and schedule
    optimizer: str = "auto"  # auto | adamw | muon (Muon on the blocks' matrices, AdamW on the rest;
    #                          lunalm.train.optim). auto: muon from scratch on a CPU for at most 10
    #                          passes over the text, else adamw (resolve_optimizer has the measurements)
    lr: float | None = None  # peak learning rate; None = by model size (see lunalm.train.schedule)
    schedule: str = "wsd"  # wsd: warmup, the peak held, then a linear decay over the last decay_share of the
    #                        steps (held-out bits/byte 1.5% below cosine's on the 3-minute speeches plan, 3
    #                        seeds each); cosine: warmup then cosine decay (lunalm.train.schedule.lr_at)
    decay_share: float = 0.3  # wsd: the share of the steps over which the lr falls to its floor
    min_lr_ratio: float = 0.1  # the decay ends at lr * min_lr_ratio
    ema_horizon: float = 0.07  # an exponential moving average of the weights, horizon this share of the run's
    #                            steps, is what evaluation, best/, final/ and samples use (lunalm.train.average;
    #                            from scratch, not with shard); 0 = off
    warmup_steps: int | None = None  # linear warmup in steps; None = 5 % of the run, at most 1000
    weight_decay: float | None = 0.1  # on >= 2-D weights only; None = automatic once the run's steps are known:
    #                                   a window of a third of the run where it repeats its text more than 4
    #                                   times, else 0.1 (lunalm.plan.recommend.weight_decay_for)
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0  # max global gradient norm; 0 = off
    # evaluation, samples, logging
    eval_every: int = 100  # steps between validation passes
    eval_batches: int = 20  # fixed validation batches per pass
    sample_every: int = 200  # steps between sample generations; 0 = only at the end
    sample_prompts: tuple[str, ...] = ()  # empty: the first words of up to 4 validation documents (the
    #                                          corpus's own language and style; lunalm.train.prompts)
    sample_tokens: int = 60  # new tokens per sample
    log_every: int = 10  # steps between train-loss records
    # checkpoints and stopping
    checkpoint_every: int = 500  # steps between step checkpoints
    keep_checkpoints: int = 3  # newest step checkpoints kept (best/ and final/ always kept)
    patience: int | None = 5  # evaluations without improvement before stopping early; None = never
    cooldown: float = 0.0  # when patience runs out: back to the best weights, anneal lr linearly to its floor over
    #                        this share of the steps to the best, then stop; 0 = stop at once. Off by default: on
    #                        the 15-minute speeches plan it moved held-out bits/byte by 0.1 % (cosine was near its
    #                        floor by the time patience ran out)
    max_bad_steps: int = 3  # non-finite losses in a row before rolling back to the last good checkpoint
    max_rollbacks: int = 2  # rollbacks (lr halved each time) before giving up as diverged
    # hardware
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    precision: str = "auto"  # auto (fp32 CPU, bf16 Ampere+, fp16 older GPUs) | fp32 | bf16 | fp16
    compile: bool = False  # torch.compile the model
    shard: bool = False  # with several processes: FSDP (shard weights, gradients, AdamW state) instead of DDP
    seed: int = 1337
    # where metrics go besides metrics.jsonl: tensorboard, wandb, mlflow, trackio (lunalm.train.trackers)
    report_to: tuple[str, ...] = ("tensorboard",)

    def __post_init__(self) -> None:
        check = _Checks("train")
        for name in ("max_steps", "tokens"):
            value = getattr(self, name)
            check.require(value is None or (isinstance(value, int) and value > 0), name, value,
                          "a positive integer or null")
        check.require(self.epochs is None or self.epochs > 0, "epochs", self.epochs, "> 0 or null")
        check.require(self.minutes is None or (isinstance(self.minutes, (int, float)) and self.minutes > 0),
                      "minutes", self.minutes, "a number of minutes > 0 or null")
        for name in ("micro_batch_size", "grad_accum_steps", "eval_every", "eval_batches", "log_every",
                     "checkpoint_every", "keep_checkpoints", "max_bad_steps", "sample_tokens"):
            value = getattr(self, name)
            check.require(isinstance(value, int) and value >= 1, name, value, "an integer >= 1")
        check.require(self.lr is None or 0 < self.lr < 1, "lr", self.lr, "in (0, 1) or null (automatic)")
        check.require(0 <= self.min_lr_ratio <= 1, "min_lr_ratio", self.min_lr_ratio, "in [0, 1]")
        check.require(isinstance(self.ema_horizon, (int, float)) and 0 <= self.ema_horizon <= 1, "ema_horizon",
                      self.ema_horizon, "a share of the run's steps in [0, 1] (0 = no weight average)")
        check.require(self.schedule in SCHEDULES, "schedule", self.schedule, "wsd or cosine")
        check.require(isinstance(self.decay_share, (int, float)) and 0 < self.decay_share <= 1, "decay_share",
                      self.decay_share, "a share of the steps in (0, 1]")
        check.require(isinstance(self.cooldown, (int, float)) and 0 <= self.cooldown <= 1, "cooldown", self.cooldown,
                      "a share of the steps to the best in [0, 1] (0 = stop at once when patience runs out)")
        check.require(self.warmup_steps is None or self.warmup_steps >= 0, "warmup_steps",
                      self.warmup_steps, ">= 0 or null")
        decay = self.weight_decay
        check.require(decay is None or (0 <= decay and (self.lr or 0) * decay < 1), "weight_decay", decay,
                      ">= 0 with lr x weight_decay < 1 (the share of each weight decayed per step), or null (automatic)")
        check.require(0 <= self.beta1 < 1 and 0 <= self.beta2 < 1, "beta1/beta2",
                      (self.beta1, self.beta2), "each in [0, 1)")
        check.require(self.grad_clip >= 0, "grad_clip", self.grad_clip, ">= 0")
        check.require(self.sample_every >= 0, "sample_every", self.sample_every, ">= 0")
        check.require(self.patience is None or self.patience >= 1, "patience", self.patience,
                      ">= 1 or null")
        check.require(self.max_rollbacks >= 0, "max_rollbacks", self.max_rollbacks, ">= 0")
        check.require(self.optimizer in OPTIMIZERS, "optimizer", self.optimizer, "auto, adamw or muon")
        check.require(not (self.optimizer == "muon" and self.shard), "optimizer", self.optimizer,
                      "adamw with shard: true (Muon orthogonalises whole matrices, which FSDP splits)")
        check.require(self.precision in PRECISIONS, "precision", self.precision, f"one of {PRECISIONS}")
        check.require(self.device == "auto" or self.device.split(":")[0] in ("cpu", "cuda", "mps"),
                      "device", self.device, "auto, cpu, cuda, cuda:N or mps")
        check.require(set(self.report_to) <= set(REPORT_TO), "report_to", self.report_to,
                      f"a list of {', '.join(REPORT_TO)} (or empty)")
        check.raise_if_any()


@dataclass(frozen=True, kw_only=True)
class FinetuneConfig:
    """``luna finetune``: start from a pretrained model instead of a preset (see lunalm.finetune)."""

    base: str  # a local Hugging Face causal-LM folder or a lunalm checkpoint
    format: str = "text"  # text (continued pretraining) | alpaca | chat (instruction JSONL, prompt masked)
    lora: bool = False  # train low-rank adapters (peft) instead of every weight
    lora_r: int = 8  # adapter rank
    lora_alpha: float = 16.0  # adapter scale numerator (scale = alpha / r)
    lora_dropout: float = 0.05  # dropout on the adapter input
    lora_targets: tuple[str, ...] = ()  # module names to adapt; empty = the architecture's defaults
    quantize: str = "none"  # none | 4bit (QLoRA: NF4, double quantisation) | 8bit; CUDA only
    gradient_checkpointing: bool = False  # recompute activations in backward: less memory, slower
    adapter: str | None = None  # a LoRA adapter folder (peft's adapter/) to continue training; needs lora

    def __post_init__(self) -> None:
        check = _Checks("finetune")
        check.require(isinstance(self.base, str) and bool(self.base), "base", self.base, "a folder path")
        check.require(self.format in FINETUNE_FORMATS, "format", self.format, f"one of {FINETUNE_FORMATS}")
        check.require(isinstance(self.lora_r, int) and self.lora_r >= 1, "lora_r", self.lora_r, "an integer >= 1")
        check.require(self.lora_alpha > 0, "lora_alpha", self.lora_alpha, "> 0")
        check.require(0 <= self.lora_dropout < 1, "lora_dropout", self.lora_dropout, "in [0, 1)")
        check.require(self.quantize in QUANTIZE, "quantize", self.quantize, f"one of {QUANTIZE}")
        check.require(self.quantize == "none" or self.lora, "quantize", self.quantize,
                      "none unless lora is on (quantized weights cannot be trained directly)")
        check.require(self.adapter is None or (self.lora and isinstance(self.adapter, str)), "adapter", self.adapter,
                      "None unless lora is on (an adapter folder continues LoRA training)")
        check.raise_if_any()


OPTIMIZERS = ("auto", "adamw", "muon")
SCHEDULES = ("wsd", "cosine")


# auto uses Muon on a CPU run from scratch that sees its text at most this many times. Fixed steps of the
# 3-minute CPU plans (nano, 128-token windows, weight-averaged, held-out documents), Muon against AdamW:
# Azerbaijani rap lyrics (~5 passes) 2.0020 against 2.0671, the speeches (~7) 1.4467 against 1.4784, the
# English Nutuk (~10) 1.5257 against 1.5351, the speeches for 2,000 steps (~11) 1.4517 against 1.4505, the
# small corpus (16, dropout 0.2) 2.0337 against 2.0297, and the 15-minute speeches plan (16) 1.5283 against
# 1.4734: Muon learns faster and memorises faster.
MUON_MAX_PASSES = 10

# A run on Muon (auto or chosen) steps both of its parts at this multiple of train.lr, which stays the
# lr AdamW would use (the plan's and default_lr's), so a config means the same whichever optimizer auto
# picks; a given weight decay is unchanged, so each step decays that much more too, and the automatic one
# (lunalm.plan.recommend.weight_decay_for) is set for the averaging window Muon was measured with. Fixed
# steps of the same plans, seeds 1337 and 2024, Muon at lr x 1.5 against lr x 1: Azerbaijani rap lyrics
# 1.9546 and 1.9619 against 2.0020 and 1.9979 (-2.1 %), nutuk-en 1.5099 and 1.5090 against 1.5257 and
# 1.5216 (-0.9 %), the speeches 1.4509 and 1.4476 against 1.4467 and 1.4462 (+0.2 %). With the same decay
# (so a shorter window) higher was no gain: x 2.25 gave the lyrics 1.9632 (seed 1337), the speeches 1.4585
# and 1.4439, nutuk-en 1.5049 (seed 2024); x 3 the lyrics 1.9624 and the speeches 1.4659 (seed 1337). x 3
# with the window held (the decay halved) gains: MUON_DECAY_WINDOW in lunalm.plan.recommend has the rows.
# Scaling Muon's matrices alone helped the lyrics less (1.9692), so embeddings and head take it too.
MUON_LR_SCALE = 3.0


def resolve_optimizer(train: TrainConfig, device_type: str, from_scratch: bool = True,
                      passes: float | None = None) -> str:
    """``auto`` -> muon for a model trained from scratch on a CPU that sees its text at most
    ``MUON_MAX_PASSES`` times (``passes``; None: not known yet), adamw otherwise; an explicit choice is
    kept.

    Muon's step costs ~10 % more on the CPU (``lunalm.train.optim``). On GPUs it is unmeasured with
    today's recipe (warmup-stable-decay, the weight average, the decay window): on an H200 in the 16-pass
    plans of an earlier recipe AdamW led (nano at context 512: 1.509 against Muon's 1.621), so there auto
    stays adamw. Fine-tunes (weights trained with AdamW; LoRA factors are not whole matrices) and FSDP
    (which splits the matrices Muon orthogonalises) never get Muon from ``auto``."""
    if train.optimizer != "auto":
        return train.optimizer
    muon = from_scratch and device_type == "cpu" and not train.shard and passes is not None \
        and passes <= MUON_MAX_PASSES
    return "muon" if muon else "adamw"


FINETUNE_FORMATS = ("text", "alpaca", "chat")
QUANTIZE = ("none", "4bit", "8bit")


@dataclass(frozen=True, kw_only=True)
class RunConfig:
    """Everything a run needs; written resolved to runs/<name>/config.yaml."""

    name: str | None = None  # run directory name under runs_dir; None = <preset>-<timestamp>
    runs_dir: str = "runs"
    corpus: CorpusConfig = field(default_factory=CorpusConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelChoice = field(default_factory=ModelChoice)
    train: TrainConfig = field(default_factory=TrainConfig)
    plan: dict[str, Any] | None = None  # `luna plan`'s estimates (hours, steps, memory, device); recorded
    #                                      beside what actually happened, never read by training
    finetune: FinetuneConfig | None = None  # `luna finetune`: the base model and how to adapt it

    def __post_init__(self) -> None:
        check_run_name(self.name)
        if not isinstance(self.runs_dir, str) or not self.runs_dir:
            raise ConfigError(f"runs_dir = {self.runs_dir!r}: expected a folder path, e.g. runs")
        if self.train.optimizer == "muon" and self.finetune is not None and self.finetune.lora:
            raise ConfigError("train.optimizer: muon trains whole weight matrices; LoRA adapters are low-rank "
                              "factors, so use --optimizer adamw (the default) with --lora/--qlora")


def check_run_name(name: Any) -> None:
    """A run name is one plain path component: ``runs_dir/name`` must stay inside ``runs_dir``."""
    if name is None:
        return
    plain = isinstance(name, str) and name.strip() not in ("", ".", "..") and not any(
        c in name for c in "/\\\0") and not (len(name) > 1 and name[1] == ":")  # no Windows drive either
    if not plain:
        raise ConfigError(f"name = {name!r}: expected one plain folder name (letters, digits, '-', '_', '.'), "
                          "not a path; the run folder is always created inside --runs-dir, so pass e.g. "
                          "--name my-run and choose the place with --runs-dir")


SECTIONS = {"corpus": CorpusConfig, "tokenizer": TokenizerConfig, "data": DataConfig,
            "model": ModelChoice, "train": TrainConfig}


def run_config_from_dict(values: dict[str, Any]) -> RunConfig:
    """A RunConfig from the YAML layout {name, runs_dir, corpus: {...}, tokenizer: {...}, ...}."""
    if values is not None and not isinstance(values, dict):
        raise ConfigError(f"run config = {values!r:.80}: expected a mapping of sections (corpus, model, train, …)")
    values = dict(values or {})
    unknown = sorted(set(values) - set(SECTIONS) - {"name", "runs_dir", "plan", "finetune"})
    if unknown:
        raise ConfigError(f"unknown top-level key(s): {', '.join(unknown)}; known: name, runs_dir, "
                          f"{', '.join(SECTIONS)}, plan, finetune")
    if values.get("plan") is not None and not isinstance(values["plan"], dict):
        raise ConfigError(f"plan: expected a mapping of estimates written by `luna plan` (got {values['plan']!r})")
    sections = {name: from_dict(cls, values.get(name), name) for name, cls in SECTIONS.items()}
    top = {k: values[k] for k in ("name", "runs_dir", "plan") if k in values}
    if values.get("finetune") is not None:
        if not isinstance(values["finetune"], dict):
            raise ConfigError(f"section 'finetune' = {values['finetune']!r}: expected a mapping (base, format, "
                              "lora, …)")
        finetune = dict(values["finetune"])
        finetune["lora_targets"] = tuple(finetune.get("lora_targets") or ())
        top["finetune"] = from_dict(FinetuneConfig, finetune, "finetune")
    return RunConfig(**top, **sections)


def run_config_to_dict(config: RunConfig) -> dict[str, Any]:
    out: dict[str, Any] = {"name": config.name, "runs_dir": config.runs_dir}
    for name in SECTIONS:
        out[name] = to_dict(getattr(config, name))
    if config.plan is not None:
        out["plan"] = dict(config.plan)
    if config.finetune is not None:
        out["finetune"] = to_dict(config.finetune)
    return out


def load_yaml(path: str) -> dict[str, Any]:
    """Read a YAML config file with errors that name the file."""
    import yaml

    try:
        with open(path, encoding="utf-8") as handle:
            values = yaml.safe_load(handle) or {}
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder; --config takes a YAML file such as plan.yaml") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not a text YAML file (byte {exc.start} is not UTF-8); --config takes a YAML "
                          "file such as the plan.yaml that `luna plan` writes") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: expected a mapping of sections (corpus, model, train, …)")
    return values
