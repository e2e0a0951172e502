"""The lunalm decoder: a compact Llama-architecture transformer (RMSNorm, RoPE, SwiGLU, no biases, GQA).

Parameter names and the RoPE layout (rotate-half, not interleaved) match ``transformers.LlamaForCausalLM``,
so a directory written by :func:`save_pretrained` loads with ``AutoModelForCausalLM.from_pretrained``.
Shapes: B batch, T tokens, C = d_model, H query heads, K key/value heads, D head_dim, V vocab.
"""

from __future__ import annotations

import json
import math
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from lunalm.errors import ConfigError
from lunalm.loss import chunk_rows, linear_cross_entropy, linear_cross_entropy_scores


@dataclass(frozen=True, kw_only=True)
class ModelConfig:
    """Shape of the decoder. Torch-free so it can live with the other run configs."""

    vocab_size: int  # tokens in the vocabulary (rows of the embedding matrix)
    context_length: int  # longest sequence in tokens (size of the RoPE table)
    n_layer: int  # transformer blocks
    n_head: int  # query heads per attention layer
    n_kv_head: int | None = None  # key/value heads (GQA); None -> n_head; must divide n_head
    d_model: int  # residual stream width in features
    d_ff: int | None = None  # SwiGLU hidden width in features; None -> 8/3*d_model rounded up to 64
    rope_theta: float = 10000.0  # RoPE base wavelength (dimensionless)
    norm_eps: float = 1e-5  # RMSNorm epsilon added to the mean square
    tie_embeddings: bool = True  # lm_head shares the token-embedding matrix
    dropout: float = 0.0  # probability for residual dropout (training only; none on attention weights)
    activation_checkpointing: bool = False  # recompute each block in backward to save memory
    init_std: float = 0.02  # standard deviation of the normal init of weight matrices

    def __post_init__(self):
        if self.n_kv_head is None:
            object.__setattr__(self, "n_kv_head", self.n_head)
        if self.d_ff is None and isinstance(self.d_model, int) and self.d_model > 0:
            object.__setattr__(self, "d_ff", 64 * math.ceil(8 * self.d_model / 3 / 64))
        problems = _config_problems(self)
        if problems:
            raise ConfigError("invalid model config: " + "; ".join(problems))

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_head


def _config_problems(cfg: ModelConfig) -> list[str]:
    """Every problem with ``cfg`` as 'field: what is allowed (got value)'."""
    problems = []
    for name in ("vocab_size", "context_length", "n_layer", "n_head", "n_kv_head", "d_model", "d_ff"):
        value = getattr(cfg, name)
        if not _is_number(value, int) or value < 1:
            if not (name == "d_ff" and value is None):  # None: d_model was already reported
                problems.append(f"{name}: must be an integer >= 1 (got {value!r})")
    for name in ("rope_theta", "norm_eps", "init_std"):
        if not _is_number(getattr(cfg, name)) or not getattr(cfg, name) > 0:
            problems.append(f"{name}: must be a number > 0 (got {getattr(cfg, name)!r})")
    if not _is_number(cfg.dropout) or not 0.0 <= cfg.dropout < 1.0:
        problems.append(f"dropout: must be a number in [0, 1) (got {cfg.dropout!r})")
    if problems:  # the divisibility checks below need valid integers
        return problems
    if cfg.d_model % cfg.n_head:
        problems.append(f"d_model: must be a multiple of n_head={cfg.n_head} (got {cfg.d_model})")
    elif cfg.head_dim % 2:
        problems.append(f"d_model: d_model/n_head (head_dim) must be even for RoPE (got {cfg.head_dim})")
    if cfg.n_head % cfg.n_kv_head:
        problems.append(f"n_kv_head: must divide n_head={cfg.n_head} (got {cfg.n_kv_head})")
    return problems


def _is_number(value, kind=(int, float)) -> bool:
    return isinstance(value, kind) and not isinstance(value, bool)


# Shapes only; context length and vocabulary come from the run. Totals are tied, incl. embeddings.
PRESETS: dict[str, dict] = {
    "pico": dict(n_layer=4, n_head=3, d_model=96),  # 0.44M non-embedding: --preset pico only (plans stop at nano)
    "nano": dict(n_layer=4, n_head=4, d_model=128),  # 0.85M non-embedding: CPU demos and tests
    "tiny": dict(n_layer=8, n_head=6, d_model=192),  # 9.7M at vocab 32000
    "small": dict(n_layer=10, n_head=8, d_model=512),  # 48.5M at vocab 32000
    "medium": dict(n_layer=18, n_head=12, d_model=768),  # 152M at vocab 32000
    "gpt2": dict(n_layer=12, n_head=12, d_model=768),  # 123.6M at vocab 50257 (GPT-2 small's shape)
}


def model_config_from_preset(name: str, vocab_size: int, context_length: int, **overrides) -> ModelConfig:
    """The preset's shape at this vocabulary and context, with any field overridden."""
    if name not in PRESETS:
        raise ConfigError(f"model preset: unknown {name!r}; known presets: {', '.join(PRESETS)}")
    values = {**PRESETS[name], "vocab_size": vocab_size, "context_length": context_length, **overrides}
    try:
        return ModelConfig(**values)
    except TypeError as exc:  # an override that is not a ModelConfig field
        raise ConfigError(f"model preset {name!r}: {exc}") from exc


def count_parameters(cfg: ModelConfig, *, non_embedding: bool = False) -> int:
    """Parameters of ``LunaLM(cfg)`` computed from the shapes (tied weights counted once).

    ``non_embedding`` leaves out the token-embedding and output-head matrices.
    """
    d, kv_width = cfg.d_model, cfg.n_kv_head * cfg.head_dim
    attention = 2 * d * d + 2 * d * kv_width  # q, o: C*C; k, v: C*K*D
    per_layer = attention + 3 * d * cfg.d_ff + 2 * d  # + gate/up/down + two RMSNorm weights
    body = cfg.n_layer * per_layer + d  # + final norm
    if non_embedding:
        return body
    return body + cfg.vocab_size * d * (1 if cfg.tie_embeddings else 2)


def flops_per_token(cfg: ModelConfig, seq_len: int | None = None) -> int:
    """Training FLOPs per token: 6N + 12·L·H·Q·T (PaLM, Chowdhery et al. 2022, appendix B).

    N counts the matmul weights (blocks + output head; the embedding lookup is free), T = ``seq_len``
    or the context length; the attention term counts the full T×T score matrix, as PaLM does.
    """
    seq_len = seq_len or cfg.context_length
    n_matmul = count_parameters(cfg, non_embedding=True) + cfg.vocab_size * cfg.d_model
    return 6 * n_matmul + 12 * cfg.n_layer * cfg.n_head * cfg.head_dim * seq_len


class ModelOutput(NamedTuple):
    logits: torch.Tensor | None  # (B, T, V); (N, V) or None from the training head (head_with_loss)
    loss_sum: torch.Tensor | None = None  # () float32: summed cross-entropy over targets != -100
    n_targets: torch.Tensor | None = None  # () int64: how many labels were != -100
    n_correct: torch.Tensor | None = None  # () int64: labels that were the largest logit (score_only)

    @property
    def loss(self) -> torch.Tensor:
        """Mean loss of this batch alone (the loop normalises across micro-batches itself)."""
        return self.loss_sum / self.n_targets.clamp(min=1)


def output_with_loss(logits: torch.Tensor, labels: torch.Tensor | None) -> ModelOutput:
    """The loss every model in lunalm reports: summed float32 cross-entropy over labels != -100.

    ``labels`` (B, T) or (N,) are already shifted (labels[t] is the target of position t), so nothing is
    shifted here; the loop divides by the step's target count itself."""
    if labels is None:
        return ModelOutput(logits)
    loss_sum = F.cross_entropy(logits.float().flatten(0, -2), labels.flatten(), ignore_index=-100,
                               reduction="sum")  # float32 whatever the autocast dtype
    return ModelOutput(logits, loss_sum, (labels != -100).sum())


def head_with_loss(hidden: torch.Tensor, head: nn.Module, labels: torch.Tensor) -> ModelOutput:
    """``output_with_loss(head(hidden), labels)`` for training: the head on scored positions only, fused
    with the loss.

    Training on instruction data scores only the answers; the output head (C x V, often the largest
    matmul of a small model) and the cross-entropy then run on those rows alone. A plain bias-free or
    biased ``nn.Linear`` head runs fused with its loss in row chunks (``lunalm.loss``), so no (N, V)
    logits are kept: ``logits`` is None then, else (N, V) over the scored rows. The loss and every
    gradient are those of the full computation.

    Under ``torch.compile`` a head whose logits fit in one chunk stays in the graph as the plain
    computation (small vocabularies: measured faster than a graph break); a larger one leaves the graph
    for the eager, chunked head, the only way its (N, V) logits stay out of memory.
    """
    if torch.compiler.is_compiling() and chunk_rows(hidden.device.type, head.weight.shape[0], labels.numel(),
                                                   width=head.weight.shape[1]) >= labels.numel():
        return output_with_loss(head(hidden), labels)
    return _scored_head_with_loss(hidden, head, labels)


@torch.compiler.disable
def _scored_head_with_loss(hidden: torch.Tensor, head: nn.Module, labels: torch.Tensor) -> ModelOutput:
    """The eager head of :func:`head_with_loss`. Whether every label is scored comes from
    :func:`scoring_hint` when the caller set one (the loop knows it from its one host sync per step),
    else from ``labels`` (a device sync on CUDA)."""
    hidden, labels = hidden.flatten(0, 1), labels.flatten()  # (B*T, C), (B*T,)
    all_scored, scored = _ALL_SCORED.get(), None
    if all_scored is None:
        scored = labels != -100
        all_scored = bool(scored.all())
    if not all_scored:
        scored = labels != -100 if scored is None else scored
        hidden, labels = hidden[scored], labels[scored]  # (N, C), (N,)
    if type(head) is not nn.Linear:  # a LoRA or quantized layer standing in for the head: plain loss
        return output_with_loss(head(hidden), labels)  # (N, V) logits
    n_targets = torch.full((), labels.numel(), dtype=torch.int64, device=labels.device)  # no host copy
    return ModelOutput(None, linear_cross_entropy(hidden, head.weight, head.bias, labels), n_targets)


_ALL_SCORED: ContextVar[bool | None] = ContextVar("lunalm_all_scored", default=None)


@contextmanager
def scoring_hint(all_scored: bool | None):
    """Tell :func:`head_with_loss` inside this block whether every label is scored (None: it checks)."""
    token = _ALL_SCORED.set(all_scored)
    try:
        yield
    finally:
        _ALL_SCORED.reset(token)


class KVCache:
    """Preallocated keys and values of every layer, (B, K, max_length, D) each, for incremental decoding."""

    def __init__(self, cfg: ModelConfig, batch_size: int, max_length: int | None = None, *,
                 device=None, dtype=torch.float32):
        self.max_length = max_length or cfg.context_length
        shape = (batch_size, cfg.n_kv_head, self.max_length, cfg.head_dim)
        self.keys = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(cfg.n_layer)]
        self.values = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(cfg.n_layer)]

    def update(self, layer: int, start_pos: int, k: torch.Tensor, v: torch.Tensor):
        """Store k, v (B, K, T, D) at positions start_pos.. and return all keys/values so far."""
        end = start_pos + k.shape[2]
        if end > self.max_length:
            raise ValueError(f"KV cache holds {self.max_length} positions; asked to fill up to {end}")
        self.keys[layer][:, :, start_pos:end] = k
        self.values[layer][:, :, start_pos:end] = v
        return self.keys[layer][:, :, :end], self.values[layer][:, :, :end]  # (B, K, end, D)


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (..., C)
        x32 = x.float()  # normalise in float32 as HF Llama does, then return to the input dtype
        x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x32.to(x.dtype)


def rope_tables(head_dim: int, length: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin of shape (length, D), each frequency repeated in both halves (HF rotate-half layout)."""
    inv_freq = 1.0 / theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)  # (D/2,)
    angles = torch.outer(torch.arange(length, dtype=torch.float32), inv_freq)  # (length, D/2)
    angles = torch.cat((angles, angles), dim=-1)  # (length, D)
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate x (B, H, T, D) by position; pairs are (i, i + D/2), not adjacent lanes.

    x * cos + rotate_half(x) * sin with rotate_half(x) = (-x2, x1) = roll(x, D/2) * (-1 | +1): the sign
    moves onto the (T, D) sine table, so the (B, H, T, D) work is one roll and one fused multiply-add
    (half the passes of negate + concatenate + multiply + multiply + add; 1.8x faster forward and
    backward on CPU)."""
    half = x.shape[-1] // 2
    signed_sin = torch.cat((-sin[..., :half], sin[..., half:]), dim=-1).to(x.dtype)  # (T, D)
    return torch.addcmul(x * cos.to(x.dtype), torch.roll(x, half, dims=-1), signed_sin)


def causal_attention(q, k, v, start_pos: int, dropout_p: float) -> torch.Tensor:
    """q (B, H, T, D) at positions start_pos.. attends to k, v (B, K, S, D) at positions 0..S-1."""
    n_rep = q.shape[1] // k.shape[1]
    if n_rep > 1:  # GQA: query head h reads kv head h // n_rep (HF's repeat_kv order)
        k, v = k.repeat_interleave(n_rep, dim=1), v.repeat_interleave(n_rep, dim=1)
    if q.device.type == "cpu" and q.dtype == torch.bfloat16:  # CPU flash attention is 3x faster in fp32
        with torch.autocast("cpu", enabled=False):  # (backward: 383 ms in bf16, 116 in fp32 over 20 nano steps)
            return causal_attention(q.float(), k.float(), v.float(), start_pos, dropout_p).to(q.dtype)
    if q.shape[2] == k.shape[2]:
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, is_causal=True)
    # Decoding against a cache: is_causal would align the mask top-left, so spell it out.
    query_pos = start_pos + torch.arange(q.shape[2], device=q.device)  # (T,)
    mask = torch.arange(k.shape[2], device=q.device) <= query_pos[:, None]  # (T, S)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)


def fused_linear(x: torch.Tensor, layers: tuple[nn.Module, ...]) -> tuple[torch.Tensor, ...]:
    """``tuple(layer(x) for layer in layers)`` as one matmul against the layers' weights stacked for this call: the
    input is read (and cast to bf16 under autocast) once instead of once per layer, and one wide matmul replaces
    several narrow ones (nano's training steps on a 2-core CPU, one_step timed with the two ways interleaved:
    105.0 ms against 119.2 on the lyrics plan, 104.2 against 108.7 on the speeches; in isolated steps,
    bench/bench_fused.py, tiny 1.15-1.18x, nano even). The parameters stay separate, so names, checkpoints,
    exports and Muon's per-matrix updates are unchanged. Anything but plain bias-free ``nn.Linear`` layers
    (LoRA, quantized) runs layer by layer, and so do inputs of fewer rows than the stacked weight has: there
    copying the weights costs more than reading the input again (decoding one token, nano: 1.77 ms a
    forward stacked against 1.56 one by one)."""
    outputs = [layer.out_features for layer in layers]
    if (x.numel() // max(1, x.shape[-1]) < sum(outputs)
            or not all(type(layer) is nn.Linear and layer.bias is None for layer in layers)):
        return tuple(layer(x) for layer in layers)
    weight = torch.cat([layer.weight for layer in layers])  # (sum of outputs, C)
    return F.linear(x, weight).split(outputs, dim=-1)


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig, layer: int):
        super().__init__()
        self.layer = layer
        self.n_head, self.n_kv_head, self.head_dim = cfg.n_head, cfg.n_kv_head, cfg.head_dim
        self.q_proj = nn.Linear(cfg.d_model, cfg.n_head * cfg.head_dim, bias=False)
        self.k_proj = nn.Linear(cfg.d_model, cfg.n_kv_head * cfg.head_dim, bias=False)
        self.v_proj = nn.Linear(cfg.d_model, cfg.n_kv_head * cfg.head_dim, bias=False)
        self.o_proj = nn.Linear(cfg.n_head * cfg.head_dim, cfg.d_model, bias=False)

    def forward(self, x, cos, sin, kv_cache: KVCache | None, start_pos: int) -> torch.Tensor:
        B, T, _ = x.shape
        H, K, D = self.n_head, self.n_kv_head, self.head_dim
        q, k, v = fused_linear(x, (self.q_proj, self.k_proj, self.v_proj))
        q = q.view(B, T, H, D).transpose(1, 2)  # (B, H, T, D)
        k = k.view(B, T, K, D).transpose(1, 2)  # (B, K, T, D)
        v = v.view(B, T, K, D).transpose(1, 2)  # (B, K, T, D)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if kv_cache is not None:
            k, v = kv_cache.update(self.layer, start_pos, k, v)  # (B, K, start_pos + T, D)
        # No dropout on the attention probabilities: with dropout_p > 0, SDPA leaves its fused kernels for
        # the math path that materialises (B, H, T, T) — measured 1.75x slower per step and +200 MB for
        # nano at T=256 on CPU. Regularisation comes from residual dropout (Block.resid_dropout).
        y = causal_attention(q, k, v, start_pos, 0.0)  # (B, H, T, D)
        return self.o_proj(y.transpose(1, 2).reshape(B, T, -1))  # (B, T, C)


class MLP(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.gate_proj = nn.Linear(cfg.d_model, cfg.d_ff, bias=False)
        self.up_proj = nn.Linear(cfg.d_model, cfg.d_ff, bias=False)
        self.down_proj = nn.Linear(cfg.d_ff, cfg.d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, C)
        gate, up = fused_linear(x, (self.gate_proj, self.up_proj))
        return self.down_proj(F.silu(gate) * up)  # SwiGLU (Shazeer 2020)


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig, layer: int):
        super().__init__()
        self.input_layernorm = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.self_attn = Attention(cfg, layer)
        self.post_attention_layernorm = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.mlp = MLP(cfg)
        self.resid_dropout = nn.Dropout(cfg.dropout)

    def forward(self, x, cos, sin, kv_cache: KVCache | None = None, start_pos: int = 0) -> torch.Tensor:
        x = x + self.resid_dropout(self.self_attn(self.input_layernorm(x), cos, sin, kv_cache, start_pos))
        return x + self.resid_dropout(self.mlp(self.post_attention_layernorm(x)))  # (B, T, C)


class Decoder(nn.Module):
    """Embedding, blocks and final norm; HF's ``LlamaModel`` (hence the ``model.`` name prefix)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.config = cfg
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.layers = nn.ModuleList(Block(cfg, i) for i in range(cfg.n_layer))
        self.norm = RMSNorm(cfg.d_model, cfg.norm_eps)
        cos, sin = rope_tables(cfg.head_dim, cfg.context_length, cfg.rope_theta)
        self.register_buffer("rope_cos", cos, persistent=False)  # (context_length, D)
        self.register_buffer("rope_sin", sin, persistent=False)

    def forward(self, input_ids, kv_cache: KVCache | None = None, start_pos: int = 0) -> torch.Tensor:
        end = start_pos + input_ids.shape[1]
        if end > self.config.context_length:
            raise ValueError(f"positions up to {end} exceed context_length={self.config.context_length}")
        cos, sin = self.rope_cos[start_pos:end], self.rope_sin[start_pos:end]  # (T, D)
        x = self.embed_tokens(input_ids)  # (B, T, C)
        recompute = self.config.activation_checkpointing and self.training and torch.is_grad_enabled()
        for layer in self.layers:
            if recompute:
                x = checkpoint(layer, x, cos, sin, kv_cache, start_pos, use_reentrant=False)
            else:
                x = layer(x, cos, sin, kv_cache, start_pos)
        return self.norm(x)  # (B, T, C)


class LunaLM(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.config = cfg
        self.model = Decoder(cfg)
        self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        if cfg.tie_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """normal(0, init_std) weights; residual output projections (o_proj, down_proj) get
        init_std/sqrt(2·n_layer), one factor per residual add (GPT-2 paper §2.3; nanoGPT's c_proj init)."""
        std = self.config.init_std
        residual_std = std / math.sqrt(2 * self.config.n_layer)
        for name, module in self.named_modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                scaled = name.endswith(("o_proj", "down_proj"))
                nn.init.normal_(module.weight, mean=0.0, std=residual_std if scaled else std)
            elif isinstance(module, RMSNorm):
                nn.init.ones_(module.weight)

    # forward(..., score_only=True) exists: evaluation asks for it through supports_score_only.
    supports_score_only = True

    def forward(self, input_ids, labels=None, kv_cache: KVCache | None = None, start_pos: int = 0,
                score_only: bool = False):
        """input_ids (B, T) int64; labels (B, T) already shifted (labels[t] is the target of position t).

        ``score_only`` (with labels, without gradients): no logits, but ``n_correct`` — the loss and
        the accuracy of evaluation with the head run on the scored rows, in chunks (``lunalm.loss``). A
        head that is not a plain ``nn.Linear`` (LoRA, quantized) returns its logits as usual and
        ``lunalm.evaluate.score_batch`` counts them."""
        hidden = self.model(input_ids, kv_cache, start_pos)  # (B, T, C)
        if self.training and labels is not None:
            return head_with_loss(hidden, self.lm_head, labels)
        if score_only and labels is not None and type(self.lm_head) is nn.Linear:
            scored = labels != -100  # (B, T)
            labels = labels[scored]  # (N,)
            loss_sum, n_correct = linear_cross_entropy_scores(hidden[scored], self.lm_head.weight,
                                                              self.lm_head.bias, labels)
            return ModelOutput(None, loss_sum, torch.tensor(labels.numel(), device=labels.device), n_correct)
        return output_with_loss(self.lm_head(hidden), labels)  # (B, T, V) logits

    def describe(self) -> dict:
        """The checkpoint's ``lunalm.json`` "model" entry (the HF config of this network)."""
        return to_hf_config(self.config)

    def save_weights(self, directory, tokenizer, state: dict | None = None) -> None:
        """Weights and ``config.json`` into ``directory`` (``state``: gathered full weights under FSDP)."""
        save_pretrained(self, directory, eos_token_id=tokenizer.eot_id, pad_token_id=tokenizer.pad_id, state=state)

    def new_kv_cache(self, batch_size: int, max_length: int | None = None) -> KVCache:
        weight = self.lm_head.weight
        return KVCache(self.config, batch_size, max_length, device=weight.device, dtype=weight.dtype)

    def flops_per_token(self, seq_len: int | None = None) -> int:
        return flops_per_token(self.config, seq_len)


def optimizer_param_groups(model: nn.Module, weight_decay: float,
                           exclude: frozenset[int] = frozenset()) -> list[dict]:
    """AdamW groups: decay matrices (>= 2-D), never 1-D params (norms, biases); frozen ones and the ids
    in ``exclude`` (another optimizer's) left out."""
    trainable = [p for p in model.parameters() if p.requires_grad and id(p) not in exclude]  # tied: once
    return [
        {"params": [p for p in trainable if p.dim() >= 2], "weight_decay": weight_decay},
        {"params": [p for p in trainable if p.dim() < 2], "weight_decay": 0.0},
    ]


def to_hf_config(cfg: ModelConfig, *, bos_token_id: int | None = None, eos_token_id: int | None = None,
                 pad_token_id: int | None = None, dtype: str = "float32") -> dict:
    """``config.json`` contents for ``transformers.LlamaConfig`` describing the same network."""
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": cfg.vocab_size,
        "hidden_size": cfg.d_model,
        "intermediate_size": cfg.d_ff,
        "num_hidden_layers": cfg.n_layer,
        "num_attention_heads": cfg.n_head,
        "num_key_value_heads": cfg.n_kv_head,
        "head_dim": cfg.head_dim,
        "max_position_embeddings": cfg.context_length,
        "rms_norm_eps": cfg.norm_eps,
        "rope_theta": cfg.rope_theta,  # transformers < 5 reads this key ...
        "rope_parameters": {"rope_type": "default", "rope_theta": cfg.rope_theta},  # ... and >= 5 this one
        "hidden_act": "silu",
        "attention_bias": False,
        "mlp_bias": False,
        "tie_word_embeddings": cfg.tie_embeddings,
        "initializer_range": cfg.init_std,
        "bos_token_id": bos_token_id,
        "eos_token_id": eos_token_id,
        "pad_token_id": pad_token_id,
        "torch_dtype": dtype,
    }


def from_hf_config(hf: dict, **overrides) -> ModelConfig:
    """The ModelConfig of a Llama ``config.json`` (as written by :func:`to_hf_config`)."""
    rope = hf.get("rope_parameters") or hf.get("rope_scaling") or {}
    required = {"model_type": "llama", "hidden_act": "silu", "attention_bias": False, "mlp_bias": False}
    problems = [f"{key}: lunalm supports only {want!r} (got {hf.get(key)!r})"
                for key, want in required.items() if hf.get(key, want) != want]
    if rope.get("rope_type", rope.get("type", "default")) != "default":
        problems.append(f"rope_parameters: lunalm supports only rope_type 'default' (got {rope!r})")
    head_dim = hf.get("head_dim")
    if head_dim is not None and head_dim * hf["num_attention_heads"] != hf["hidden_size"]:
        problems.append(f"head_dim: must equal hidden_size / num_attention_heads (got {head_dim})")
    if problems:
        raise ConfigError("unsupported Llama config: " + "; ".join(problems))
    values = dict(
        vocab_size=hf["vocab_size"], context_length=hf["max_position_embeddings"],
        n_layer=hf["num_hidden_layers"], n_head=hf["num_attention_heads"],
        n_kv_head=hf.get("num_key_value_heads"), d_model=hf["hidden_size"], d_ff=hf["intermediate_size"],
        rope_theta=rope.get("rope_theta", hf.get("rope_theta", 10000.0)), norm_eps=hf["rms_norm_eps"],
        tie_embeddings=hf.get("tie_word_embeddings", False), init_std=hf.get("initializer_range", 0.02),
    )
    return ModelConfig(**{**values, **overrides})


def save_pretrained(model: LunaLM, directory, *, bos_token_id: int | None = None,
                    eos_token_id: int | None = None, pad_token_id: int | None = None,
                    state: dict | None = None) -> None:
    """Write ``config.json`` + ``model.safetensors`` loadable by ``AutoModelForCausalLM.from_pretrained``.

    With tied embeddings only ``model.embed_tokens.weight`` is stored, as transformers itself saves tied
    Llama models; it re-ties ``lm_head`` on load without a missing-key warning.
    """
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    source = model.state_dict() if state is None else state  # ``state``: gathered full weights (FSDP)
    state = {name: t.detach().cpu().contiguous() for name, t in source.items()}
    if model.config.tie_embeddings:
        state.pop("lm_head.weight", None)
    save_file(state, str(directory / "model.safetensors"), metadata={"format": "pt"})
    dtype = str(state["model.embed_tokens.weight"].dtype).removeprefix("torch.")
    hf = to_hf_config(model.config, bos_token_id=bos_token_id, eos_token_id=eos_token_id,
                      pad_token_id=pad_token_id, dtype=dtype)
    (directory / "config.json").write_text(json.dumps(hf, indent=2) + "\n", encoding="utf-8")


def load_pretrained(directory, *, device="cpu", **overrides) -> LunaLM:
    """A LunaLM from ``config.json`` + ``model.safetensors`` (never pickle). ``overrides`` set training-only
    fields such as ``dropout`` or ``activation_checkpointing``."""
    from safetensors.torch import load_file

    directory = Path(directory)
    paths = {name: directory / name for name in ("config.json", "model.safetensors")}
    missing = [str(path) for path in paths.values() if not path.is_file()]
    if missing:
        raise ConfigError(f"checkpoint: missing {', '.join(missing)}; expected a save_pretrained directory")
    cfg = from_hf_config(json.loads(paths["config.json"].read_text(encoding="utf-8")), **overrides)
    state = load_file(str(paths["model.safetensors"]), device=str(device))
    if cfg.tie_embeddings:
        state.pop("lm_head.weight", None)
    with torch.device(device):
        model = LunaLM(cfg)
    result = model.load_state_dict(state, strict=False)
    missing_keys = set(result.missing_keys) - ({"lm_head.weight"} if cfg.tie_embeddings else set())
    if missing_keys or result.unexpected_keys:
        raise ConfigError(f"checkpoint {directory}: weights do not match config.json "
                          f"(missing {sorted(missing_keys)}, unexpected {sorted(result.unexpected_keys)})")
    return model
