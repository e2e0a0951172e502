"""``--nproc N``: start the same command as N processes under ``torchrun`` and report how the job ended.

Equivalent to ``torchrun --standalone --nproc_per_node N -m lunalm train …`` (what clusters use directly;
multi-node runs pass ``--nnodes``/``--rdzv-endpoint`` to torchrun themselves, see the README).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from lunalm.errors import ConfigError


def launch(args, device: str, run_dir: Path, extra: list[str] | None = None) -> int:
    """Run this command again under torchrun with ``args.nproc`` processes; its exit code."""
    n = args.nproc
    _check_devices(n, device)
    argv = _without_nproc(args.argv)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={n}",
               "-m", "lunalm", *argv, *(extra or [])]
    env = dict(os.environ)
    if device in ("cpu", "auto") and "OMP_NUM_THREADS" not in env:
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or n) // n))  # share the cores, do not oversubscribe
    print(f"starting {n} processes with torchrun ({'gloo on CPU' if not _cuda(device) else 'NCCL on GPUs'})",
          file=sys.stderr)
    code = subprocess.call(command, env=env)
    if code != 0 and code != 130:
        where = run_dir / "checkpoints"
        print(f"error: a training process failed (exit code {code}); torchrun stopped the others. Its error "
              f"is printed above. The last good checkpoint in {where} is intact: fix the cause, then "
              f"`luna resume {run_dir} --nproc {n}`", file=sys.stderr)
    return code


def _cuda(device: str) -> bool:
    import torch

    return device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())


def _check_devices(n: int, device: str) -> None:
    import torch

    if _cuda(device):
        count = torch.cuda.device_count()
        if n > count:
            raise ConfigError(f"--nproc {n}: only {count} CUDA GPU(s) here; one process per GPU, so use "
                              f"--nproc {count} or fewer")
    else:
        cores = os.cpu_count() or 1
        if n > cores:
            raise ConfigError(f"--nproc {n}: this machine has {cores} CPU cores; more processes than cores only "
                              f"slows training down — use --nproc {cores} or fewer")


def _without_nproc(argv: list[str]) -> list[str]:
    out, skip = [], False
    for item in argv:
        if skip:
            skip = False
        elif item == "--nproc":
            skip = True
        elif not item.startswith("--nproc="):
            out.append(item)
    return out
