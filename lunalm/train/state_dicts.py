"""Full, world-size-independent weights and optimizer state, whatever the training layout.

Checkpoints always hold the *full* model and the optimizer state keyed by parameter *name*, so a run
saved by one process, by DDP ranks or by FSDP shards resumes under any of the three. Under FSDP
(``train.shard``) gathering and scattering them are collectives: every rank calls these functions, and
only rank 0 writes what they return.
"""

from __future__ import annotations

import torch


def sharded(run) -> bool:
    return run.dist.active and run.config.train.shard


def model_state(run) -> dict[str, torch.Tensor] | None:
    """The full weights on CPU (rank 0 of a sharded run; {} on the others), or None = ``model.state_dict()``."""
    if not sharded(run):
        return None
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    run.model.reshard()  # evaluation and sampling leave the root's parameters gathered

    return get_model_state_dict(run.model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))


def optimizer_state(run) -> dict:
    """AdamW's state keyed by parameter name: {"state": {name: {...}}, "param_groups": [{"params": [names]}]}."""
    if sharded(run):
        run.model.reshard()
    named = to_named(run.optimizer, run.model)
    if sharded(run):  # every rank gathers each DTensor moment in the same order (a collective per tensor)
        named["state"] = {name: {key: _full(value) for key, value in values.items()}
                          for name, values in named["state"].items()}
    return named


def _full(value):
    return value.full_tensor().cpu() if hasattr(value, "full_tensor") else value


def load_model_state(run, weights: dict[str, torch.Tensor]) -> None:
    if sharded(run):
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

        if run.model.config.tie_embeddings and "lm_head.weight" not in weights:
            weights = {**weights, "lm_head.weight": weights["model.embed_tokens.weight"]}
        set_model_state_dict(run.model, weights, options=StateDictOptions(full_state_dict=True))
        return
    result = run.model.load_state_dict(weights, strict=False)  # a tied lm_head is stored once, as HF does
    assert set(result.missing_keys) <= {"lm_head.weight"} and not result.unexpected_keys, result


def load_optimizer_state(run, saved: dict) -> None:
    indexed = from_named(saved, run.optimizer, run.model) if _is_named(saved) else saved
    if sharded(run):  # cut each full moment into this rank's shard, laid out like its parameter
        from torch.distributed.tensor import distribute_tensor

        params = [p for group in run.optimizer.param_groups for p in group["params"]]
        indexed["state"] = {
            i: {key: distribute_tensor(value.to(params[i].device), params[i].device_mesh, params[i].placements)
                if torch.is_tensor(value) and value.dim() > 0 else value for key, value in values.items()}
            for i, values in indexed["state"].items()}
    run.optimizer.load_state_dict(indexed)


def _is_named(saved: dict) -> bool:
    groups = saved.get("param_groups") or [{}]
    return any(isinstance(p, str) for g in groups for p in g.get("params", []))


def remember_names(optimizer, model) -> None:
    """Record each optimizer parameter's name now, while the module's parameters are the optimizer's own
    (FSDP swaps in unsharded tensors during forward, so looking them up later would miss)."""
    names = {id(p): name for name, p in model.named_parameters()}  # tied weights: their first name
    optimizer.lunalm_param_names = [names[id(p)] for group in optimizer.param_groups for p in group["params"]]


def _order(optimizer, model) -> list[str]:
    if not hasattr(optimizer, "lunalm_param_names"):
        remember_names(optimizer, model)
    return optimizer.lunalm_param_names


def to_named(optimizer, model) -> dict:
    return to_named_from_indexed(optimizer.state_dict(), optimizer, model)


def to_named_from_indexed(indexed: dict, optimizer, model) -> dict:
    """Index-keyed ``optimizer.state_dict()`` -> name-keyed (indices follow param_groups order)."""
    order = _order(optimizer, model)
    groups = []
    for group in indexed["param_groups"]:
        groups.append({**group, "params": [order[i] for i in group["params"]]})
    return {"state": {order[i]: value for i, value in indexed["state"].items()}, "param_groups": groups}


def from_named(named: dict, optimizer, model) -> dict:
    """Name-keyed -> the index-keyed form ``optimizer.load_state_dict`` takes."""
    index = {name: i for i, name in enumerate(_order(optimizer, model))}
    groups = [{**group, "params": [index[name] for name in group["params"]]} for group in named["param_groups"]]
    return {"state": {index[name]: value for name, value in named["state"].items() if name in index},
            "param_groups": groups}
