"""Memory model of one training step of ``LunaLM``: what lives in memory, byte by byte, at the peak.

Counted from what autograd actually keeps for backward in ``lunalm.model`` (per token, per layer):

fp32 (4 bytes everywhere)
  input RMSNorm     the residual x (C) and the normalised x (C); its output h (C), read by q, k, v
  attention         q and k after RoPE (C, KD), v (KD), the SDPA output (C) and its log-sum-exp (H, fp32),
                    the re-laid-out output read by o_proj (C); RoPE keeps only its shared cos/sin tables
  post RMSNorm      the residual (C), the normalised x (C), its output (C) read by gate and up
  SwiGLU            gate (F), silu(gate) (F), up (F), their product read by down (F)
  → 4·(9C + 2KD + 4F + H) bytes

bf16/fp16 autocast: the residual stream and the RMSNorm internals stay fp32; every linear gets its own
  half-precision copy of its input (q, k, v each copy h; gate and up each copy the post-norm output); the
  linear outputs, RoPE and SwiGLU are half precision.
  → 32C + 4KD + 8F + 4H bytes

The head keeps the last residual, its normalised copy and the (cast) input of ``lm_head``. The head and
its loss run fused in chunks of rows (``lunalm.loss``), computing their gradients during the forward pass:
one chunk's float32 logits and softmax (8 bytes per row per vocabulary entry), the stored gradients of the
head's input (N x C) and weight (V x C) and, in backward, their scaled copies; under autocast also the
half-precision copies of the head's weight and input. No (N, V) tensor exists. Activation checkpointing
keeps one fp32 residual per layer and recomputes one block at a time. AdamW holds two fp32 moments;
gradients are fp32. Under autocast the half-precision copies of the weights stay alive until backward has
used them.

Everything here is arithmetic on a ``ModelConfig``, with the fused head's chunk rule taken from
``lunalm.loss.chunk_rows`` itself: no tensor is allocated, so ``luna plan`` stays quick.
"""

from __future__ import annotations

from dataclasses import dataclass

from lunalm.loss import chunk_rows
from lunalm.model import ModelConfig, count_parameters

GiB = 2**30


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes of each part at the peak of a training step, and the peak itself."""

    weights: int  # fp32 parameters
    weight_copies: int  # half-precision weight copies made by autocast (0 in fp32)
    gradients: int  # fp32 gradients alive at the peak
    optimizer: int  # AdamW moments, and the weight average when the run keeps one
    activations: int  # tensors saved for backward by the blocks and the head
    logits: int  # the fused head's chunk of logits and its stored gradients
    peak: int  # the largest total over the step (forward/backward or optimizer update)

    def rows(self) -> list[tuple[str, int]]:
        return [("weights (fp32)", self.weights), ("autocast weight copies", self.weight_copies),
                ("gradients (fp32)", self.gradients), ("AdamW moments (fp32)", self.optimizer),
                ("activations kept for backward", self.activations),
                ("logits / loss buffers", self.logits), ("peak of a step", self.peak)]


def activation_bytes_per_token(cfg: ModelConfig, precision: str) -> tuple[int, int]:
    """(bytes per token kept by one block, bytes per token kept by the final norm and head input)."""
    C, F, H = cfg.d_model, cfg.d_ff, cfg.n_head
    KD = cfg.n_kv_head * cfg.head_dim
    if precision == "fp32":
        return 4 * (9 * C + 2 * KD + 4 * F + H), 12 * C
    return 32 * C + 4 * KD + 8 * F + 4 * H, 10 * C


def estimate_training_memory(cfg: ModelConfig, micro_batch_size: int, *, precision: str = "fp32",
                             grad_accum_steps: int = 1, seq_len: int | None = None,
                             device_kind: str = "cpu", device_memory: int | None = None,
                             averaged: bool = False) -> MemoryEstimate:
    """Peak bytes of a steady-state training step (optimizer state already allocated) on a ``device_kind``
    ("cpu", "cuda", ...) device with ``device_memory`` bytes (a CUDA card's size): both set the fused head's
    chunk size. ``averaged``: the run keeps a float32 average of the weights (lunalm.train.average), counted
    with the optimizer state."""
    tokens = micro_batch_size * (seq_len or cfg.context_length)
    n_params = count_parameters(cfg)
    matmul_params = count_parameters(cfg, non_embedding=True) + cfg.vocab_size * cfg.d_model
    head_params = cfg.vocab_size * cfg.d_model
    weights, optimizer = 4 * n_params, (12 if averaged else 8) * n_params
    copies = 0 if precision == "fp32" else 2 * matmul_params
    per_layer, head = activation_bytes_per_token(cfg, precision)
    if cfg.dropout > 0:  # two residual dropouts per block keep a bool mask each
        per_layer += 2 * cfg.d_model
    if cfg.activation_checkpointing:  # one fp32 residual per block, plus one block being recomputed
        blocks = tokens * (4 * cfg.d_model * cfg.n_layer + per_layer)
    else:
        blocks = tokens * per_layer * cfg.n_layer
    activations = blocks + tokens * head + 8 * tokens  # + the int64 labels
    logits = head_loss_bytes(cfg, tokens, precision, device_kind, device_memory)
    # Gradients from earlier micro-batches are alive; in a single micro-batch only the head's gradient
    # (written first in backward) coexists with the full activations.
    grads_at_backward = 4 * n_params if grad_accum_steps > 1 else 4 * head_params
    backward_peak = weights + copies + optimizer + activations + logits + grads_at_backward
    update_peak = weights + 4 * n_params + optimizer
    return MemoryEstimate(weights=weights, weight_copies=copies, gradients=grads_at_backward,
                          optimizer=optimizer, activations=activations, logits=logits,
                          peak=max(backward_peak, update_peak))


def head_loss_bytes(cfg: ModelConfig, tokens: int, precision: str, device_kind: str,
                    device_memory: int | None = None) -> int:
    """Bytes the fused head and loss add at their peak for ``tokens`` scored rows (see the docstring)."""
    V, C = cfg.vocab_size, cfg.d_model
    rows = chunk_rows(device_kind, V, tokens, float16=precision == "fp16", memory_bytes=device_memory,
                      width=C)
    stored = 2 * 4 * tokens * C + 4 * V * C  # input gradient + its scaled copy; the weight's extra copy
    copies = 0 if precision == "fp32" else 2 * V * C + 2 * tokens * C
    return 8 * rows * V + stored + copies


def estimate_inference_memory(cfg: ModelConfig, batch_size: int, *, precision: str = "fp32") -> int:
    """Peak bytes of an evaluation forward pass (no grad): weights plus the largest live tensors."""
    tokens = batch_size * cfg.context_length
    weight_bytes = count_parameters(cfg) * (4 if precision == "fp32" else 6)
    return weight_bytes + tokens * (8 * cfg.vocab_size + 4 * (3 * cfg.d_model + 2 * cfg.d_ff))


# On CPU the process's resident set grows by more than the live tensors: glibc keeps freed heap chunks for
# reuse, oneDNN/OpenMP keep per-thread scratch. Measured with ``bench/bench_plan.py`` (Linux x86-64,
# torch 2.13, presets nano/tiny/small, context 64-512): RSS growth ~= 1.25 x tensor peak + 110 MiB.
CPU_HEAP_FACTOR = 1.25
CPU_RUNTIME_BYTES = 110 * 2**20
CPU_IMPORT_BYTES = 450 * 2**20  # Python + torch + tokenizers loaded, before any model exists
CUDA_CONTEXT_BYTES = 600 * 2**20  # CUDA context, cuBLAS workspace: outside max_memory_allocated
CUDA_USABLE = 0.92  # the caching allocator's fragmentation leaves ~8 % unusable


def device_bytes(peak: int, kind: str) -> int:
    """What the device will really see for a tensor peak: RSS growth on CPU, allocated bytes on a GPU."""
    if kind == "cpu":
        return int(CPU_HEAP_FACTOR * peak + CPU_RUNTIME_BYTES)
    return peak


def usable_bytes(memory: int, kind: str) -> int:
    """Of a device's memory (VRAM, or available RAM on CPU), what training tensors can use."""
    if kind == "cpu":
        return int(0.85 * memory) - CPU_IMPORT_BYTES
    return int(CUDA_USABLE * memory) - CUDA_CONTEXT_BYTES
