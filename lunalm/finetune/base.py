"""The base model of a fine-tune: checking the folder, loading it (full, LoRA, QLoRA / 8-bit), LoRA targets.

A lunalm checkpoint trained in full goes through ``LunaLM`` itself (the cheapest path); every other base,
and lunalm checkpoints with LoRA, load with ``AutoModelForCausalLM`` (from safetensors only) behind
``HFCausalLM``. Every user mistake is found before weights are loaded and raised as one clear sentence.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

from lunalm.config import FinetuneConfig
from lunalm.errors import LunaError

# LoRA targets per architecture: the attention and MLP projections (Hu et al. 2021 adapt q/v; adapting
# every projection, as QLoRA (Dettmers et al. 2023) does, works better at the same rank).
DEFAULT_TARGETS = {
    "gpt2": ("c_attn", "c_proj", "c_fc"),
    "gpt_neo": ("q_proj", "k_proj", "v_proj", "out_proj", "c_fc", "c_proj"),
    "llama": ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
    "mistral": ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
    "qwen2": ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
    "phi": ("q_proj", "k_proj", "v_proj", "dense", "fc1", "fc2"),
}
FULL_LR, LORA_LR = 2e-5, 2e-4  # usual fine-tuning peaks: weights move little; adapters start at zero


class FinetuneError(LunaError):
    """A base model, adapter or fine-tuning option that cannot work."""


@dataclass(frozen=True)
class BaseInfo:
    path: Path  # the local folder (for a Hub id: its snapshot in the HF cache)
    kind: str  # "lunalm" (a lunalm checkpoint) | "hf" (a Hugging Face causal-LM folder)
    model_type: str
    context_length: int  # positions the base supports
    reference: str  # what to record (run config, LoRA adapter): the absolute path, or the Hub id


def inspect_base(base: str) -> BaseInfo:
    """Check that ``base`` (a folder, or a Hub id through the HF cache) is a causal LM with safetensors
    weights and a tokenizer.json."""
    from lunalm.hub import MODEL_FILES, looks_like_hub_id, snapshot

    path = Path(base).expanduser()
    if not path.exists() and looks_like_hub_id(base):
        path = snapshot(base, flag="--base", error=FinetuneError, patterns=MODEL_FILES)
        reference = base
    elif not path.is_dir():
        raise FinetuneError(f"--base {base}: no such folder; give a local Hugging Face model folder "
                            "(config.json, model.safetensors, tokenizer.json), a Hub id, or a lunalm checkpoint")
    else:
        path = path.resolve()
        reference = str(path)  # absolute: valid from any folder
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise FinetuneError(f"--base {base}: no readable config.json, so it is not a model folder; save the "
                            "model with save_pretrained(DIR) or pass a lunalm checkpoint") from None
    model_type = config.get("model_type", "?")
    _check_causal(base, model_type, config.get("architectures") or [])
    if not (path / "model.safetensors").is_file() and not (path / "model.safetensors.index.json").is_file():
        raise FinetuneError(f"--base {base}: no model.safetensors (lunalm never loads pickle weights); "
                            "re-save it with save_pretrained(DIR, safe_serialization=True)")
    if not (path / "tokenizer.json").is_file():
        raise FinetuneError(f"--base {base}: no tokenizer.json; save the model's tokenizer into the same "
                            "folder (AutoTokenizer.from_pretrained(...).save_pretrained(DIR))")
    if (path / "lunalm.json").is_file() and not (path / "manifest.json").is_file():
        raise FinetuneError(f"--base {base} is a lunalm checkpoint without its manifest.json, so its files cannot "
                            "be verified (an interrupted write or a partial copy); pass another checkpoint")
    kind = "lunalm" if (path / "lunalm.json").is_file() else "hf"
    positions = config.get("n_positions") or config.get("max_position_embeddings") or 2048
    return BaseInfo(path, kind, model_type, int(positions), reference)


def _check_causal(base: str, model_type: str, architectures: list[str]) -> None:
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    causal = model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and (
        not architectures or any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in architectures))
    if not causal:
        found = ", ".join(architectures) or "no architectures"
        raise FinetuneError(f"--base {base} is not a causal language model (model_type {model_type}, {found}); "
                            "fine-tuning needs a decoder such as GPT-2, GPT-Neo, Llama or Phi")


# --- an existing adapter to continue (--adapter) -------------------------------------------------
# What an adapter's shapes depend on, as (label, the key names Hugging Face configs use for it)
BASE_SHAPE = (("model_type", ("model_type",)), ("hidden size", ("hidden_size", "n_embd", "d_model")),
              ("layers", ("num_hidden_layers", "n_layer", "num_layers")), ("vocab", ("vocab_size",)))


@dataclass(frozen=True)
class AdapterInfo:
    path: Path
    recorded_base: str  # peft's base_model_name_or_path ("" when unset)
    r: int
    alpha: float
    dropout: float
    targets: tuple[str, ...]


def inspect_adapter(adapter: str, base: BaseInfo) -> AdapterInfo:
    """Check that ``adapter`` is a peft LoRA folder made for ``base`` (same architecture and shape)."""
    path = Path(adapter)
    try:
        config = json.loads((path / "adapter_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise FinetuneError(f"--adapter {adapter}: no readable adapter_config.json; give the adapter/ folder "
                            "a LoRA fine-tune saved (runs/NAME/checkpoints/final/adapter)") from None
    if config.get("peft_type") != "LORA" or not (path / "adapter_model.safetensors").is_file():
        raise FinetuneError(f"--adapter {adapter}: not a LoRA adapter with safetensors weights (peft_type "
                            f"{config.get('peft_type')}); only LoRA adapters saved by peft can be continued")
    recorded = str(config.get("base_model_name_or_path") or "")
    expected = _adapter_base_config(path, recorded)
    if expected is not None:
        found = json.loads((base.path / "config.json").read_text(encoding="utf-8"))
        differences = [f"{label} {_shape_value(expected, keys)} (adapter) vs {_shape_value(found, keys)} (base)"
                       for label, keys in BASE_SHAPE if _shape_value(expected, keys) != _shape_value(found, keys)]
        if differences:
            raise FinetuneError(f"--adapter {adapter} was made for a different base ({recorded or 'unrecorded'}): "
                                f"{', '.join(differences)}; pass that base as --base, or drop --adapter to "
                                "start a new adapter on this one")
    targets = config.get("target_modules") or ()
    return AdapterInfo(path, recorded, int(config.get("r", 8)), float(config.get("lora_alpha", 8)),
                       float(config.get("lora_dropout", 0.0)),
                       tuple(sorted([targets] if isinstance(targets, str) else targets)))


def _adapter_base_config(path: Path, recorded: str) -> dict | None:
    """The config of the base the adapter was trained on: the checkpoint around it (lunalm saves the
    merged model beside adapter/), else the recorded base folder; None when neither is readable."""
    for candidate in (path.parent / "config.json", Path(recorded) / "config.json" if recorded else None):
        if candidate is not None and candidate.is_file():
            try:
                return json.loads(candidate.read_text(encoding="utf-8"))
            except ValueError:
                continue
    return None


def _shape_value(config: dict, keys: tuple[str, ...]):
    return next((config[key] for key in keys if config.get(key) is not None), None)


def load_adapter(model, cfg: FinetuneConfig):
    """``model`` wrapped by peft with the adapter in ``cfg.adapter``, trainable; shape mismatches (an
    adapter whose base config could not be read) become one FinetuneError."""
    from peft import PeftModel

    try:
        return PeftModel.from_pretrained(model, cfg.adapter, is_trainable=True)
    except (RuntimeError, ValueError, KeyError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise FinetuneError(f"--adapter {cfg.adapter} does not fit --base {cfg.base} (made for a different "
                            f"base?): {first}") from None


def check_request(cfg: FinetuneConfig, device: str) -> None:
    """Refuse quantised loading without CUDA before anything is loaded."""
    import torch

    if cfg.quantize == "none":
        return
    flag = "--qlora" if cfg.quantize == "4bit" else "--load-8bit"
    if device.startswith(("cpu", "mps")) or not torch.cuda.is_available():
        raise FinetuneError(f"{flag} needs a CUDA GPU (bitsandbytes quantises on the GPU only) and none is "
                            "available here; use --lora without quantisation on this machine")
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        raise FinetuneError(f"{flag} needs bitsandbytes: pip install bitsandbytes") from None


def default_lr(cfg: FinetuneConfig) -> float:
    return LORA_LR if cfg.lora else FULL_LR


def load_base_model(cfg: FinetuneConfig, tokenizer, hw, dropout: float = 0.0, activation_checkpointing=False):
    """The model to train: ``LunaLM`` for a full fine-tune of a lunalm checkpoint, else ``HFCausalLM``."""
    info = inspect_base(cfg.base)
    if info.kind == "lunalm" and not cfg.lora:
        from lunalm.model import load_pretrained

        return load_pretrained(info.path, device=hw.device, dropout=dropout,
                               activation_checkpointing=activation_checkpointing or cfg.gradient_checkpointing)
    return _load_hf(cfg, info, tokenizer, hw)


def _load_hf(cfg: FinetuneConfig, info: BaseInfo, tokenizer, hw):
    import torch
    from transformers import AutoModelForCausalLM

    from lunalm.finetune.adapter import HFCausalLM

    check_request(cfg, str(hw.device))
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # per-shard bars would break through lunalm's progress display
    options = {"use_safetensors": True, "dtype": torch.float32}
    if cfg.quantize != "none":
        options.update(_quantized_options(cfg, hw))
    model = AutoModelForCausalLM.from_pretrained(str(info.path), **options)
    if cfg.quantize == "none":
        model = model.to(hw.device)
    model.config.use_cache = False
    width = int(model.get_output_embeddings().weight.shape[0])
    if tokenizer.vocab_size > width:
        raise FinetuneError(f"--base {cfg.base}: the tokenizer has {tokenizer.vocab_size} tokens but the model "
                            f"only {width} output rows; use the tokenizer the model was trained with")
    if cfg.quantize != "none":
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=cfg.gradient_checkpointing)
    elif cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if cfg.lora:
        model = load_adapter(model, cfg) if cfg.adapter else apply_lora(model, cfg, info.model_type)
        model.peft_config["default"].base_model_name_or_path = info.reference  # what peft loads it from
    return HFCausalLM(model, base=str(info.path), lora=cfg.lora, quantized=cfg.quantize != "none")


def _quantized_options(cfg: FinetuneConfig, hw) -> dict:
    """QLoRA: 4-bit NF4 with double quantisation, bf16 (Ampere+) or fp16 compute; or plain 8-bit."""
    import torch
    from transformers import BitsAndBytesConfig

    compute = torch.bfloat16 if hw.precision == "bf16" else torch.float16
    if cfg.quantize == "4bit":
        quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                   bnb_4bit_compute_dtype=compute)
    else:
        quant = BitsAndBytesConfig(load_in_8bit=True)
    return {"quantization_config": quant, "dtype": compute, "device_map": {"": hw.device.index or 0}}


def lora_targets(model, model_type: str, requested: tuple[str, ...]) -> list[str]:
    """The module names to adapt: ``requested`` or the architecture's defaults, checked against the model."""
    available = adaptable_modules(model)
    wanted = list(requested) or list(DEFAULT_TARGETS.get(model_type, ()))
    if not wanted:
        raise FinetuneError(f"no default LoRA targets for model_type {model_type}; pass --lora-targets with "
                            f"names from: {', '.join(available)}")
    unknown = [name for name in wanted if name not in available]
    if unknown:
        raise FinetuneError(f"--lora-targets {', '.join(unknown)}: no such Linear/Conv1D module in this "
                            f"{model_type} model; available: {', '.join(available)}")
    return wanted


def adaptable_modules(model) -> list[str]:
    """Last name component of every Linear / Conv1D module (what peft's target_modules match)."""
    from torch import nn
    from transformers.pytorch_utils import Conv1D

    return sorted({name.rsplit(".", 1)[-1] for name, module in model.named_modules()
                   if name and isinstance(module, (nn.Linear, Conv1D))})


def apply_lora(model, cfg: FinetuneConfig, model_type: str):
    from peft import LoraConfig, get_peft_model

    targets = lora_targets(model, model_type, cfg.lora_targets)
    config = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                        target_modules=targets, bias="none", task_type="CAUSAL_LM",
                        fan_in_fan_out=model_type == "gpt2")  # GPT-2's Conv1D stores weights transposed
    with warnings.catch_warnings():  # peft asks transformers 5 a deprecated question: not the user's concern
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        return get_peft_model(model, config)


def base_label(path) -> str:
    """A base model's name for people: its folder's, or for a lunalm checkpoint (``runs/NAME/checkpoints/
    best``) the run's with it ("nano-20261207/best", not "best")."""
    from pathlib import Path

    path = Path(path)
    if path.parent.name == "checkpoints" and path.parent.parent.name:
        return f"{path.parent.parent.name}/{path.name}"
    return path.name
