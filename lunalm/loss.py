"""The output head and its cross-entropy fused, in row chunks: the training loss without (N, V) logits.

A plain ``F.cross_entropy(head(hidden), labels)`` keeps the logits, their log-softmax and, at the start
of backward, a zero-filled gradient and the gradient of the logits: four N x V float32 tensors for a
vocabulary of V. For a small model the head is the biggest matrix and these tensors dominate the memory
of a step. Measured on a 2-core CPU (N = 2048 rows, C = 192, V = 8192, forward + backward): 281 ms plain,
188 ms fused; the whole training step of preset tiny at that shape peaks at 587 MiB instead of 794.

:func:`linear_cross_entropy` runs the head one chunk of rows at a time and, since the loss is a sum over
rows, computes each chunk's gradient right away: softmax(logits) - onehot(target), multiplied back through
the head. Backward only scales the stored gradients by the incoming scalar. Live memory is one chunk of
logits instead of the whole (N, V), and each chunk is read by one fused softmax kernel.

The log-sum-exp comes out of the softmax too: at a row's largest logit m, p = exp(m - lse) >= 1/V never
underflows, so lse = m - log(max p) exactly enough (relative error of one rounding of max p) and the
row's loss is lse - logit[target] — no second pass of ``exp`` over the chunk.
"""

from __future__ import annotations

import math

import torch

# Elements (rows x vocabulary) of logits per chunk. CPU: 2^20 float32 (4 MiB) for a head 128 wide, growing
# with the width up to 2^22 at 512 (a wide head spends the chunk's time in its matmuls, which want more
# rows; a narrow one in the softmax and the dtype copies, which want the chunk in cache). Measured inside
# the training loop on a 2-core Xeon (AVX-512 BF16, AMX), bf16, 16 x 128 tokens, the budget switched every
# 5 steps over 400 (so a drifting machine weighs on both alike), median step: nano on the lyrics plan
# (V = 4,288) 100.6 ms against 120.7 with 2^22 elements, on the speeches (V = 3,200) 91.7 against 103.3,
# on the small corpus (V ~ 1,800, one 2^22 chunk) 80.0 against 80.5. Whole steps outside the loop: tiny
# (width 192, V = 8,192) 330 ms with 1.5 x 2^20 against 351; nano in float32 (V = 4,288) 175 against 183.
# (2^22 had been the fastest of 2^20..2^24 for V = 8,192 on a 2-core EPYC.)
# CUDA: 2^25 (128 MiB in float32) keeps the head's matmuls large while bounding memory.
CHUNK_ELEMENTS = {"cpu": 2**20, "cuda": 2**25}
CPU_WIDTH = 128  # hidden width at which the CPU budget is CHUNK_ELEMENTS["cpu"]; it scales with the width
CPU_MAX_ELEMENTS = 2**22  # ... up to this many elements (width 512 and wider)
# float16 (the GTX 1650's precision) tops out at 65504. A chunk's weight gradient is a sum over its rows of
# (p - onehot) * hidden, stored unscaled (GradScaler's factor only arrives in backward, so lowering the scale
# could not rescue an overflow). At most 1024 rows keeps that sum far inside the range.
HALF_CHUNK_ROWS = 1024


# A bigger CUDA card affords bigger chunks: 2^24 elements per GiB of its memory, the memory first rounded
# down to a power of two after a 5 % margin (so a card's table entry, e.g. 80 GiB, and the total it reports,
# 79.1 GiB, land in the same bucket), never fewer than CHUNK_ELEMENTS["cuda"]. A chunk then takes at most
# ~1/8 of the card (~7 bytes per element measured, logits and their gradient). Under torch.compile a head
# whose logits fit in one chunk stays in the graph (lunalm.model.head_with_loss): on an H200, gpt2 preset
# at 16 x 1024 tokens, 415k tokens/s against 207k with 2^25-element chunks outside the graph (HF's
# compiled GPT-2 384k), for 5.6 GB more memory.
CUDA_ELEMENTS_PER_GIB = 2**24
# The total memory of the CUDA card this process trains on, recorded by lunalm.train.device.resolve.
CUDA_MEMORY: dict[str, int | None] = {"bytes": None}


def cuda_chunk_elements(memory_bytes: int | None) -> int:
    """Logit elements per chunk on a CUDA card with ``memory_bytes`` of memory (None: the smallest budget)."""
    if not memory_bytes:
        return CHUNK_ELEMENTS["cuda"]
    gib = max(1.0, 0.95 * memory_bytes / 2**30)
    return max(CHUNK_ELEMENTS["cuda"], 2 ** math.floor(math.log2(gib)) * CUDA_ELEMENTS_PER_GIB)


def chunk_rows(device_kind: str, vocab_size: int, n_rows: int, float16: bool = False,
               memory_bytes: int | None = None, width: int | None = None) -> int:
    """Rows per chunk on a ``device_kind`` ("cpu", "cuda", ...) device for a ``vocab_size``-wide head
    (``float16``: its matmuls run in float16) over hidden states ``width`` wide (None: the narrowest
    budget), at least 1 and at most ``n_rows``. On CUDA the budget grows with the card's memory:
    ``memory_bytes``, else the card this process trains on (``CUDA_MEMORY``); on a CPU with the width.
    The memory model (``lunalm.plan.memory``) sizes the head with this same rule."""
    if device_kind == "cuda":
        budget = cuda_chunk_elements(memory_bytes or CUDA_MEMORY["bytes"])
    elif device_kind == "cpu":
        budget = CHUNK_ELEMENTS["cpu"]
        if width:  # grows with the width, up to CPU_MAX_ELEMENTS, never below the base budget
            budget = max(budget, min(budget * width // CPU_WIDTH, CPU_MAX_ELEMENTS))
    else:
        budget = CHUNK_ELEMENTS.get(device_kind, CHUNK_ELEMENTS["cuda"])
    rows = max(1, min(n_rows, budget // vocab_size))
    return min(rows, HALF_CHUNK_ROWS) if float16 else rows


def linear_cross_entropy(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                         labels: torch.Tensor) -> torch.Tensor:
    """Summed float32 ``cross_entropy(hidden @ weight.T + bias, labels)`` with every label scored.

    hidden (N, C), weight (V, C), bias (V,) or None, labels (N,) int64 in [0, V) — callers select the
    scored rows first. Under autocast the matmuls run in the autocast dtype, as ``nn.Linear`` would; the
    softmax and the loss are float32. Differentiable once, in ``hidden``, ``weight`` and ``bias``.
    """
    return _LinearCrossEntropy.apply(hidden, weight, bias, labels)


@torch.no_grad()
def linear_cross_entropy_scores(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                                labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(summed float32 cross-entropy, int64 count of rows whose largest logit is the label) of
    ``hidden @ weight.T + bias`` — evaluation's numbers, one chunk of rows at a time, without gradients.

    Shapes and dtypes as :func:`linear_cross_entropy`; each chunk's logits come from the matmul in the
    autocast dtype, as ``nn.Linear`` gives them, and are scored in float32 as ``F.cross_entropy`` of
    those logits would score them. No (N, V) tensor is kept. On a 2-core CPU, the 3-minute lyrics plan
    (nano, V = 4,096): a validation pass (15 batches of 16 x 128, bf16) took 0.82-0.92 s against
    1.16-1.19 s with the logits kept; scoring 6 held-out documents (fp32, stride 64, so half the rows
    unscored) 6.7 s against 11.1 s.
    """
    device = hidden.device
    dtype = torch.get_autocast_dtype(device.type) if torch.is_autocast_enabled(device.type) else weight.dtype
    loss = torch.zeros((), device=device, dtype=torch.float32)
    n_correct = torch.zeros((), device=device, dtype=torch.int64)
    with torch.autocast(device.type, enabled=False):
        w, h = weight.to(dtype), hidden.to(dtype)  # (V, C), (N, C)
        b = None if bias is None else bias.to(dtype)
        rows = chunk_rows(device.type, weight.shape[0], hidden.shape[0], dtype == torch.float16,
                          width=weight.shape[1])
        for start in range(0, hidden.shape[0], rows):
            h_chunk, target = h[start:start + rows], labels[start:start + rows, None]  # (n, C), (n, 1)
            logits = (h_chunk @ w.T if b is None else torch.addmm(b, h_chunk, w.T)).float()  # (n, V)
            loss += (torch.logsumexp(logits, dim=1) - logits.gather(1, target)[:, 0]).sum()
            n_correct += (logits.argmax(dim=1) == target[:, 0]).sum()
    return loss, n_correct


class _LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden, weight, bias, labels):
        device = hidden.device
        dtype = torch.get_autocast_dtype(device.type) if torch.is_autocast_enabled(device.type) else weight.dtype
        want = (hidden.requires_grad, weight.requires_grad, bias is not None and bias.requires_grad)
        with torch.autocast(device.type, enabled=False):
            w, h = weight.to(dtype), hidden.to(dtype)  # (V, C), (N, C): no-ops in float32
            b = None if bias is None else bias.to(dtype)
            grad_hidden = torch.empty_like(hidden) if want[0] else None  # (N, C)
            grad_weight = torch.zeros(weight.shape, device=device, dtype=torch.float32) if want[1] else None
            grad_bias = torch.zeros(weight.shape[0], device=device, dtype=torch.float32) if want[2] else None
            loss = torch.zeros((), device=device, dtype=torch.float32)
            rows = chunk_rows(device.type, weight.shape[0], hidden.shape[0], dtype == torch.float16,
                              width=weight.shape[1])
            for start in range(0, hidden.shape[0], rows):
                h_chunk, target = h[start:start + rows], labels[start:start + rows, None]  # (n, C), (n, 1)
                loss += _chunk_loss_and_grad(h_chunk, w, b, target, grad_weight, grad_bias,
                                             None if grad_hidden is None else grad_hidden[start:start + rows])
        ctx.save_for_backward(grad_hidden, grad_weight, grad_bias)
        ctx.dtypes = (hidden.dtype, weight.dtype, None if bias is None else bias.dtype)
        return loss

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_loss):  # grad_loss: () — the loop's 1/N (times the GradScaler scale)
        grad_hidden, grad_weight, grad_bias = ctx.saved_tensors
        grads = [None if g is None else (g * grad_loss).to(dtype)  # float32 sums back to each input's dtype
                 for g, dtype in zip((grad_hidden, grad_weight, grad_bias), ctx.dtypes)]
        return grads[0], grads[1], grads[2], None


def _chunk_loss_and_grad(h, w, b, target, grad_weight, grad_bias, grad_hidden) -> torch.Tensor:
    """Summed loss of one chunk; adds its gradients into grad_weight / grad_bias, writes grad_hidden."""
    logits = (h @ w.T if b is None else torch.addmm(b, h, w.T)).float()  # (n, V)
    row_max, target_logit = logits.amax(dim=1), logits.gather(1, target)[:, 0]  # (n,) each
    probs = torch.softmax(logits, dim=1)  # (n, V) float32
    del logits
    lse = row_max - probs.amax(dim=1).log()  # (n,): see the module docstring
    loss = (lse - target_logit).sum()
    probs.scatter_add_(1, target, torch.full_like(target, -1, dtype=probs.dtype))  # d(loss)/d(logits)
    grad = probs.to(w.dtype)  # (n, V)
    if grad_hidden is not None:
        if grad_hidden.dtype == grad.dtype:
            torch.mm(grad, w, out=grad_hidden)
        else:
            grad_hidden.copy_(grad @ w)
    if grad_weight is not None:
        if grad.dtype == torch.float32:
            grad_weight.addmm_(grad.T, h)  # (V, C) += (V, n) @ (n, C)
        else:
            grad_weight += grad.T @ h
    if grad_bias is not None:
        grad_bias += probs.sum(dim=0)
    return loss

