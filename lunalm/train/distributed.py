"""Data-parallel training on PyTorch's own engine: ``torchrun`` starts the processes, ``torch.distributed``
connects them (gloo on CPU, NCCL on CUDA), ``DistributedDataParallel`` averages gradients.

How a run stays identical to a single process with the same global batch:

* every rank draws the *same* global batch from the shared, seeded sampler and trains on its own
  contiguous slice of it (rank r takes sequences [r·G, (r+1)·G)), so the data each step and the sampler
  position saved in checkpoints do not depend on the world size;
* each micro-batch loss is divided by the *global* number of target tokens and multiplied by the world
  size, which DDP's averaging cancels: the gradient is that of the whole global batch;
* gradient all-reduce runs only on the last micro-batch of a step (``no_sync`` before it);
* rank 0 alone evaluates, samples, writes logs, checkpoints and the registry row; decisions that end or
  change the run (early stop, a signal) are agreed by all ranks so none is left waiting.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
from dataclasses import dataclass

import torch
import torch.distributed as dist

from lunalm.errors import ConfigError


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


SINGLE = Dist()


def from_env(device: str = "auto") -> Dist:
    """Join the process group torchrun describes in the environment (a single process otherwise)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return SINGLE
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        backend = os.environ.get("LUNALM_DIST_BACKEND") or _default_backend(device)
        if backend == "nccl" and not torch.cuda.is_available():
            raise ConfigError("the NCCL backend needs CUDA GPUs, and PyTorch sees none here; "
                              "use gloo (the default on CPU) or run on GPUs")
        if backend == "nccl":
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend=backend)
    return Dist(rank=rank, world=world, local_rank=local_rank)


def _default_backend(device: str) -> str:
    use_cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    return "nccl" if use_cuda else "gloo"


def device_for(device: str, d: Dist) -> str:
    """Each rank's own GPU (cuda:LOCAL_RANK); CPU ranks share the CPU."""
    if not d.active:
        return device
    if device == "cuda" or (device == "auto" and torch.cuda.is_available()):
        return f"cuda:{d.local_rank}"
    return device


def check_same_config(config_dict: dict, d: Dist) -> None:
    """Refuse to train when the ranks were started with different configs."""
    if not d.active:
        return
    digest = hashlib.sha256(json.dumps(config_dict, sort_keys=True, default=str).encode()).hexdigest()
    digests: list = [None] * d.world
    dist.all_gather_object(digests, digest)
    if len(set(digests)) > 1:
        odd = [rank for rank, h in enumerate(digests) if h != digests[0]]
        raise ConfigError(f"ranks {odd} were started with a different config than rank 0; start every "
                          "process with the same command and files (torchrun does this for you)")


def broadcast(value, d: Dist):
    """Rank 0's value on every rank (any picklable object)."""
    if not d.active:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def sum_(value: float, d: Dist, device) -> float:
    if not d.active:
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return float(tensor.item())


def any_(flag: bool, d: Dist, device) -> bool:
    """True on every rank when it is True on any rank."""
    if not d.active:
        return flag
    tensor = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return bool(tensor.item())


def barrier(d: Dist) -> None:
    if d.active:
        dist.barrier()


def no_sync(module, last: bool):
    """Skip gradient sync on every micro-batch but the last of a step (DDP ``no_sync``; FSDP2
    ``set_requires_gradient_sync``); a no-op otherwise."""
    if last:
        return contextlib.nullcontext()
    if hasattr(module, "set_requires_gradient_sync"):
        return _fsdp_no_sync(module)
    if hasattr(module, "no_sync"):
        return module.no_sync()
    return contextlib.nullcontext()


@contextlib.contextmanager
def _fsdp_no_sync(module):
    module.set_requires_gradient_sync(False)
    try:
        yield
    finally:
        module.set_requires_gradient_sync(True)


def shard(model, precision: str) -> None:
    """FSDP2: shard every block, then the rest (embeddings, final norm), across the process group.

    bf16 keeps fp32 master weights and gathers bf16 copies for compute, reducing gradients in fp32."""
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    kwargs = {}
    if precision == "bf16":
        kwargs["mp_policy"] = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
    for block in model.model.layers:
        fully_shard(block, **kwargs)
    fully_shard(model, **kwargs)


def close(d: Dist) -> None:
    """The end of a finished multi-process run: every rank waits until all are done (rank 0 writes the summary
    after the loop); then the other ranks leave at once, and rank 0 closes the process group.

    A rank that ran the normal teardown (gloo's pairs, the TCPStore client of rank 0's store) could abort in
    it, "terminate called without an active exception", after the run had finished and every file was
    written: torchrun then reported the whole run as failed. Nothing is left for those ranks to do, so they
    exit without the C++ destructors."""
    if not (d.active and dist.is_initialized()):
        return
    dist.barrier()
    if d.rank != 0:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    dist.destroy_process_group()
