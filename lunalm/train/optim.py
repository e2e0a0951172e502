"""Optimizers: AdamW (the default) and Muon for the transformer blocks' matrices with AdamW for the rest.

Muon (Jordan et al. 2024, "Muon: MomentUm Orthogonalized by Newton-Schulz"; scaled for LLMs in Liu et
al. 2025, "Muon is Scalable for LLM Training") replaces each hidden weight matrix's update by the
orthogonalised Nesterov momentum of its gradient. Embeddings, the output head and every 1-D parameter
(norm gains) stay on AdamW, as in both papers. The update of an A x B matrix is scaled by
0.2 * sqrt(max(A, B)) so its RMS matches AdamW's (Liu et al.): the same learning rate, schedule and
weight decay serve both halves, and ``--lr`` keeps its meaning. The builder then steps the whole
optimizer at ``lunalm.config.MUON_LR_SCALE`` times that lr: measured on this project's CPU plans, Muon
learns best at a higher lr than AdamW.

The orthogonalisation runs in bfloat16 on CUDA and on CPUs that multiply bfloat16 natively (AVX-512 BF16
or AMX), in float32 on other CPUs, where bfloat16 is emulated and slow (this is why ``torch.optim.Muon``,
which always uses bfloat16, is not used here). Matrices of one shape (a transposed one counts as the
same) are orthogonalised together as one batch: a model's blocks repeat the same few shapes, and one
batched matmul costs far less than a dozen small ones. On this project's 2-core CPU, for `nano`'s 28
matrices, the step's orthogonalisation took 37 ms one matrix at a time in float32, 19 ms batched and 12
ms batched in bfloat16, against a training step of ~134 ms.

``MuonAdamW`` presents both halves as one optimizer to the loop, ``GradScaler`` and the checkpoint code:
``param_groups`` (Muon's groups first), ``state``, ``step``, ``zero_grad``, ``state_dict`` and
``load_state_dict`` over one index space, so name-keyed checkpoints and exact resume work unchanged.
"""

from __future__ import annotations

import math

import torch

NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)  # the quintic Newton-Schulz step of Jordan et al.
NS_STEPS = 5
MUON_MOMENTUM = 0.95
RMS_MATCH = 0.2  # Liu et al.: 0.2 * sqrt(max(A, B)) makes the update's RMS that of AdamW
BATCH_ELEMENTS = 1 << 24  # at most 16M elements (64 MB in float32) orthogonalised in one batch


def orthogonalize(matrix: torch.Tensor, steps: int = NS_STEPS, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Approximately U V^T of ``matrix`` = U S V^T (singular values pushed into ~[0.6, 1.2]); ``matrix``
    may be a batch (N, A, B), each matrix orthogonalised on its own. ``dtype``: the iteration's
    (default: bfloat16 on CUDA, float32 elsewhere); the result has ``matrix``'s dtype."""
    a, b, c = NS_COEFFICIENTS
    x = matrix.to(dtype or (torch.bfloat16 if matrix.is_cuda else torch.float32))
    single = x.dim() == 2
    if single:
        x = x.unsqueeze(0)  # baddbmm wants (N, A, B)
    tall = x.shape[-2] > x.shape[-1]
    if tall:  # iterate on the wide orientation: X X^T is the smaller Gram matrix
        x = x.mT
    x = x / (x.norm(dim=(-2, -1), keepdim=True) + 1e-7)  # spectral <= Frobenius norm <= 1: inside the basin
    for _ in range(steps):  # X <- a X + (b G + c G^2) X with G = X X^T, in fused multiply-adds
        gram = x @ x.mT
        x = torch.baddbmm(x, torch.baddbmm(gram, gram, gram, beta=b, alpha=c), x, beta=a)
    x = x.mT if tall else x
    return (x[0] if single else x).to(matrix.dtype)


def same_shape_batches(params: list[torch.Tensor], max_elements: int = BATCH_ELEMENTS) -> list[list[torch.Tensor]]:
    """``params`` in batches of one shape (a transposed one counts as the same), each at most
    ``max_elements`` in all (at least one matrix), so the stacked copies stay small beside the model."""
    groups: dict[tuple, list[torch.Tensor]] = {}
    for p in params:
        groups.setdefault((min(p.shape), max(p.shape), p.device, p.dtype), []).append(p)
    batches = []
    for members in groups.values():
        per_batch = max(1, max_elements // members[0].numel())
        batches += [members[i:i + per_batch] for i in range(0, len(members), per_batch)]
    return batches


def orthogonalize_together(matrices: list[torch.Tensor], dtype: torch.dtype | None = None) -> list[torch.Tensor]:
    """``[orthogonalize(m) for m in matrices]`` for matrices of one shape (either orientation), as one
    batched iteration."""
    wide = [m if m.shape[0] <= m.shape[1] else m.T for m in matrices]
    return [o if m.shape[0] <= m.shape[1] else o.T
            for m, o in zip(matrices, orthogonalize(torch.stack(wide), dtype=dtype).unbind(0))]


class Muon(torch.optim.Optimizer):
    """Muon for 2-D parameters: Nesterov momentum, orthogonalised, decoupled weight decay.

    ``ns_dtype``: the orthogonalisation's dtype (None: bfloat16 on CUDA, float32 on CPU; the optimizer
    builder passes bfloat16 on CPUs that multiply it natively)."""

    def __init__(self, params, lr: float = 0.0, weight_decay: float = 0.1, momentum: float = MUON_MOMENTUM,
                 ns_dtype: torch.dtype | None = None):
        super().__init__(params, {"lr": lr, "weight_decay": weight_decay, "momentum": momentum})
        self.ns_dtype = ns_dtype
        for group in self.param_groups:
            for p in group["params"]:
                if p.dim() != 2:
                    raise ValueError(f"Muon takes matrices only; got a parameter of shape {tuple(p.shape)}")

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            lr, decay, momentum = group["lr"], group["weight_decay"], group["momentum"]
            with_grad = [p for p in group["params"] if p.grad is not None]
            for params in same_shape_batches(with_grad):
                nesterov = []
                for p in params:
                    state = self.state[p]
                    if "momentum_buffer" not in state:
                        state["momentum_buffer"] = torch.zeros_like(p)
                    buffer = state["momentum_buffer"]
                    buffer.mul_(momentum).add_(p.grad)
                    nesterov.append(p.grad.add(buffer, alpha=momentum))
                for p, update in zip(params, orthogonalize_together(nesterov, self.ns_dtype)):
                    p.mul_(1 - lr * decay)
                    p.add_(update, alpha=-lr * RMS_MATCH * math.sqrt(max(p.shape)))
        return None


def muon_parameters(model: torch.nn.Module) -> set[int]:
    """ids of the trainable matrices inside the transformer blocks: not embeddings, not the output head
    (``lm_head`` of lunalm's model, whatever a Hugging Face model's ``get_output_embeddings`` returns)."""
    excluded = set()
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Embedding) or name.split(".")[-1] == "lm_head":
            excluded.add(id(module.weight))
        head = module.get_output_embeddings() if callable(getattr(module, "get_output_embeddings", None)) else None
        if head is not None:
            excluded.add(id(head.weight))
    return {id(p) for p in model.parameters() if p.requires_grad and p.dim() == 2 and id(p) not in excluded}


class MuonAdamW:
    """Muon on the given matrices and AdamW on everything else, as one optimizer.

    ``lr_scale``: both parts step at this multiple of the lr the loop sets (and so decay at this multiple
    too: decoupled decay is lr x weight_decay a step); the groups keep showing the loop's value."""

    def __init__(self, muon: Muon, adamw: torch.optim.Optimizer, lr_scale: float = 1.0):
        self.parts = (muon, adamw)
        self.lr_scale = lr_scale
        self.defaults = {**adamw.defaults, "muon": True}

    @property
    def param_groups(self) -> list[dict]:
        """The parts' groups, looked up each time: ``load_state_dict`` replaces a part's group dicts, and
        the loop sets the learning rate on whatever this returns."""
        return self.parts[0].param_groups + self.parts[1].param_groups

    @property
    def state(self) -> dict:
        return {**self.parts[0].state, **self.parts[1].state}

    def step(self, closure=None):
        groups = self.param_groups
        set_by_loop = [group["lr"] for group in groups]
        for group in groups:
            group["lr"] = group["lr"] * self.lr_scale
        try:
            for part in self.parts:
                part.step()
        finally:
            for group, lr in zip(groups, set_by_loop):
                group["lr"] = lr

    def zero_grad(self, set_to_none: bool = True) -> None:
        for part in self.parts:
            part.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict:
        """One index space: Muon's parameters first, then AdamW's, in param_groups order."""
        state, groups, offset = {}, [], 0
        for part in self.parts:
            saved = part.state_dict()
            state.update({offset + i: value for i, value in saved["state"].items()})
            groups += [{**group, "params": [offset + i for i in group["params"]]} for group in saved["param_groups"]]
            offset += sum(len(group["params"]) for group in part.param_groups)
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, saved: dict) -> None:
        groups, offset = list(saved["param_groups"]), 0
        for part in self.parts:
            mine, groups = groups[:len(part.param_groups)], groups[len(part.param_groups):]
            count = sum(len(group["params"]) for group in part.param_groups)
            part.load_state_dict({
                "state": {i - offset: value for i, value in saved["state"].items() if offset <= i < offset + count},
                "param_groups": [{**group, "params": [i - offset for i in group["params"]]} for group in mine]})
            offset += count
