"""A pretrained Hugging Face causal LM behind lunalm's model interface, so one training loop serves both.

``HFCausalLM`` wraps an ``AutoModelForCausalLM`` (optionally inside a ``peft`` LoRA model) and answers
like ``lunalm.model.LunaLM``: ``forward(input_ids, labels)`` returns ``ModelOutput(logits, loss_sum,
n_targets)`` with lunalm's label convention — labels are *already shifted* by the data pipeline
(``labels[t]`` is the target of position ``t``; -100 is masked). The HF model is therefore called without
labels (it would shift a second time) and the summed cross-entropy is computed here, in float32. In
training, architectures in ``PLAIN_HEAD_TYPES`` run their backbone and output head separately so the head
only sees scored positions (``lunalm.model.head_with_loss``): prompts and padding cost no head matmul.

Generation goes through ``lunalm.generate`` unchanged: ``new_kv_cache`` returns an ``HFKVCache`` holding
transformers' own cache (``past_key_values``), so each new token costs one position's forward, as with
``LunaLM`` (re-running the whole window made sampling O(T^2): 4 of 7 minutes of a 20-step LoRA run).

Saving (``save_weights``) writes a ``save_pretrained`` folder into the checkpoint directory, so
``AutoModelForCausalLM.from_pretrained(checkpoint)`` loads it: the full model, or for LoRA the base with
the adapters merged plus the adapter alone in ``adapter/`` (what ``load_weights`` reads on resume, so the
frozen base stays bit-identical to the one on disk).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from lunalm.model import head_with_loss, output_with_loss

ADAPTER_DIR = "adapter"  # inside a checkpoint: peft's adapter_config.json + adapter_model.safetensors
# architectures whose logits are exactly lm_head(backbone's last hidden state): no soft-capping or logit
# scaling in between, so training may run the head on scored positions only (tests/finetune check each)
PLAIN_HEAD_TYPES = frozenset({"gpt2", "gpt_neo", "gpt_neox", "llama", "mistral", "qwen2", "phi", "phi3"})
NO_SHARDS = "1000GB"  # one model.safetensors, which the checkpoint manifest requires


@dataclass(frozen=True)
class AdapterConfig:
    """What the loop, evaluation and generation read from ``model.config``."""

    vocab_size: int  # width of the logits
    context_length: int  # positions the base model supports
    model_type: str  # Hugging Face model_type, e.g. gpt2, llama


class HFKVCache:
    """lunalm's KV-cache interface over transformers' ``past_key_values``: positions 0..length-1 cached."""

    def __init__(self):
        self.past = None  # transformers Cache (DynamicCache) once something was run
        self.length = 0  # positions it holds

    def before(self, start_pos: int):
        """The cache to extend from ``start_pos``: none at 0 (a new prefill), else cropped to it."""
        if start_pos == 0 or self.past is None:
            self.past, self.length = None, 0
        elif start_pos < self.length:
            self.past.crop(start_pos)
        assert start_pos == self.length or self.past is None, (start_pos, self.length)
        return self.past


class HFCausalLM(nn.Module):
    """``input_ids -> logits`` (+ summed loss) around a Hugging Face causal LM, LoRA-wrapped or not."""

    def __init__(self, inner: nn.Module, *, base: str, lora: bool, quantized: bool = False):
        super().__init__()
        self.inner = inner  # transformers PreTrainedModel, or peft PeftModel around one
        self.base = base
        self.lora = lora
        self.quantized = quantized
        hf = self.hf_config
        positions = next((getattr(hf, name) for name in ("n_positions", "max_position_embeddings")
                          if getattr(hf, name, None)), 2048)
        self.config = AdapterConfig(vocab_size=self._logits_width(), context_length=int(positions),
                                    model_type=hf.model_type)

    @property
    def _split(self) -> tuple[nn.Module, nn.Module] | None:
        """(backbone, output head) where the causal LM is exactly ``head(backbone(ids))``, else None."""
        if self.hf_config.model_type not in PLAIN_HEAD_TYPES:
            return None
        causal_lm = self.inner.base_model.model if self.lora else self.inner
        return causal_lm.base_model, causal_lm.get_output_embeddings()

    @property
    def _cache_keyword(self) -> str:
        """transformers >= 5.24 names the KV cache ``cache``, earlier versions ``past_key_values``."""
        import inspect

        causal_lm = self.inner.base_model.model if self.lora else self.inner
        return "cache" if "cache" in inspect.signature(type(causal_lm).forward).parameters else "past_key_values"

    @property
    def hf_config(self):
        return self.inner.config if not self.lora else self.inner.base_model.model.config

    def _logits_width(self) -> int:
        return int(self.inner.get_output_embeddings().weight.shape[0])

    def forward(self, input_ids, labels=None, kv_cache: HFKVCache | None = None, start_pos: int = 0):
        """input_ids (B, T) int64; labels (B, T) already shifted, -100 = not scored."""
        if kv_cache is not None:  # decoding: positions start_pos.. after the cached ones
            past = {self._cache_keyword: kv_cache.before(start_pos)}
            out = self.inner(input_ids=input_ids, use_cache=True, **past)
            kv_cache.past, kv_cache.length = out[self._cache_keyword], start_pos + input_ids.shape[1]
            return output_with_loss(out.logits, labels)  # (B, T, V)
        if self.training and labels is not None and self._split is not None:
            backbone, head = self._split
            hidden = backbone(input_ids=input_ids, use_cache=False).last_hidden_state  # (B, T, C)
            return head_with_loss(hidden, head, labels)  # the head on scored positions only
        logits = self.inner(input_ids=input_ids, use_cache=False).logits  # (B, T, V)
        return output_with_loss(logits, labels)

    def new_kv_cache(self, batch_size: int, max_length: int | None = None) -> HFKVCache:
        return HFKVCache()

    # --- parameters -------------------------------------------------------------------------------
    def parameter_counts(self) -> tuple[int, int]:
        """(trainable, total) parameters; 4-bit weights count twice their packed elements."""
        trainable = total = 0
        for param in self.inner.parameters():
            n = param.numel() * (2 if param.__class__.__name__ == "Params4bit" else 1)
            total += n
            trainable += n if param.requires_grad else 0
        return trainable, total

    def describe(self) -> dict:
        """The checkpoint's ``lunalm.json`` "model" entry: tells loaders this is a Hugging Face model."""
        return {"kind": "hf", "base": self.base, "model_type": self.config.model_type, "lora": self.lora,
                "hf_config": json.loads(self.hf_config.to_json_string())}

    # --- saving and loading -----------------------------------------------------------------------
    def save_weights(self, directory: Path, tokenizer, state: dict | None = None) -> None:
        """``save_pretrained`` into ``directory`` (merged for LoRA, plus the adapter in adapter/).

        ``state`` exists for the interface ``LunaLM.save_weights`` shares; fine-tunes are never sharded."""
        assert state is None, "fine-tunes are not trained with FSDP"
        directory = Path(directory)
        model = self.merged_model() if self.lora else self.inner
        _set_special_ids(model.config, tokenizer)
        model.save_pretrained(directory, safe_serialization=True, max_shard_size=NO_SHARDS)
        if self.lora:
            self.inner.save_pretrained(directory / ADAPTER_DIR, safe_serialization=True)

    def load_weights(self, directory: Path) -> None:
        """Put back what ``save_weights`` wrote (the adapter alone for LoRA) onto this model's device."""
        from safetensors.torch import load_file

        device = str(next(self.inner.parameters()).device)
        if self.lora:
            from peft import set_peft_model_state_dict

            weights = load_file(str(Path(directory) / ADAPTER_DIR / "adapter_model.safetensors"), device=device)
            result = set_peft_model_state_dict(self.inner, weights)
            assert not result.unexpected_keys, result.unexpected_keys
            return
        weights = load_file(str(Path(directory) / "model.safetensors"), device=device)
        result = self.inner.load_state_dict(weights, strict=False)
        tied = {name for name in result.missing_keys if _is_tied(self.inner, name)}
        assert not (set(result.missing_keys) - tied) and not result.unexpected_keys, result

    def merged_model(self) -> nn.Module:
        """A plain transformers model with the LoRA updates folded into the weights; this one unchanged."""
        if not self.quantized:
            return copy.deepcopy(self.inner).merge_and_unload()
        # 4/8-bit weights cannot be copied or merged exactly: reload the base in the compute dtype
        from peft import PeftModel, get_peft_model_state_dict, set_peft_model_state_dict
        from transformers import AutoModelForCausalLM

        compute = getattr(self.hf_config, "torch_dtype", None) or torch.float16
        plain = AutoModelForCausalLM.from_pretrained(self.base, dtype=compute, use_safetensors=True)
        peft_config = self.inner.peft_config["default"]
        wrapped = PeftModel(plain, peft_config)
        set_peft_model_state_dict(wrapped, {k: v.cpu() for k, v in get_peft_model_state_dict(self.inner).items()})
        return wrapped.merge_and_unload()


def _is_tied(model: nn.Module, name: str) -> bool:
    """True when ``name`` is the output head tied to the input embedding (saved once by transformers)."""
    output = model.get_output_embeddings()
    return output is not None and name.endswith("weight") and "head" in name and \
        output.weight is model.get_input_embeddings().weight


def _set_special_ids(hf_config, tokenizer) -> None:
    """Record the tokenizer's end-of-text / pad ids where the base left them unset."""
    if getattr(hf_config, "eos_token_id", None) is None:
        hf_config.eos_token_id = tokenizer.eot_id
    if getattr(hf_config, "pad_token_id", None) is None:
        hf_config.pad_token_id = tokenizer.pad_id


def load_hf_checkpoint(directory: Path, device="cpu") -> HFCausalLM:
    """A fine-tuned checkpoint (merged, full precision) for ``luna generate`` / ``luna eval``."""
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # only the CLI talks to the user
    model = AutoModelForCausalLM.from_pretrained(str(directory), use_safetensors=True, dtype=torch.float32)
    return HFCausalLM(model.to(device).eval(), base=str(directory), lora=False)
