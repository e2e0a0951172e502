"""Optimizers: AdamW (the default) and Muon for the transformer blocks' matrices with AdamW for the rest.

Muon (Jordan et al. 2024, "Muon: MomentUm Orthogonalized by Newton-Schulz"; scaled for LLMs in Liu et
al. 2025, "Muon is Scalable for LLM Training") replaces each hidden weight matrix's update by the
orthogonalised Nesterov momentum of its gradient. Embeddings, the output head and every 1-D parameter
(norm gains) stay on AdamW, as in both papers. The update of an A x B matrix is scaled by
0.2 * sqrt(max(A, B)) so its RMS matches AdamW's (Liu et al.): the same learning rate, schedule and
weight decay serve both halves, and ``--lr`` keeps its meaning.

The orthogonalisation runs in float32 on CPU (bfloat16 matmuls are slow on CPUs without AMX; this is
why ``torch.optim.Muon``, which always uses bfloat16, is not used here) and in bfloat16 on CUDA.

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


def orthogonalize(matrix: torch.Tensor, steps: int = NS_STEPS) -> torch.Tensor:
    """Approximately U V^T of ``matrix`` = U S V^T (singular values pushed into ~[0.6, 1.2])."""
    a, b, c = NS_COEFFICIENTS
    x = matrix.to(torch.bfloat16 if matrix.is_cuda else torch.float32)
    tall = x.shape[0] > x.shape[1]
    if tall:  # iterate on the wide orientation: X X^T is the smaller Gram matrix
        x = x.T
    x = x / (x.norm() + 1e-7)  # spectral norm <= Frobenius norm <= 1: inside the iteration's basin
    for _ in range(steps):  # X <- a X + (b G + c G^2) X with G = X X^T, in fused multiply-adds
        gram = x @ x.T
        x = torch.addmm(x, torch.addmm(gram, gram, gram, beta=b, alpha=c), x, beta=a)
    return (x.T if tall else x).to(matrix.dtype)


class Muon(torch.optim.Optimizer):
    """Muon for 2-D parameters: Nesterov momentum, orthogonalised, decoupled weight decay."""

    def __init__(self, params, lr: float = 0.0, weight_decay: float = 0.1, momentum: float = MUON_MOMENTUM):
        super().__init__(params, {"lr": lr, "weight_decay": weight_decay, "momentum": momentum})
        for group in self.param_groups:
            for p in group["params"]:
                if p.dim() != 2:
                    raise ValueError(f"Muon takes matrices only; got a parameter of shape {tuple(p.shape)}")

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            lr, decay, momentum = group["lr"], group["weight_decay"], group["momentum"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.zeros_like(p)
                buffer = state["momentum_buffer"]
                buffer.mul_(momentum).add_(p.grad)
                update = orthogonalize(p.grad.add(buffer, alpha=momentum))  # Nesterov
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
    """Muon on the given matrices and AdamW on everything else, as one optimizer."""

    def __init__(self, muon: Muon, adamw: torch.optim.Optimizer):
        self.parts = (muon, adamw)
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
        for part in self.parts:
            part.step()

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
