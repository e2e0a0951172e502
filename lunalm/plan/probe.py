"""Measuring instead of guessing: a few real training steps on the device, the largest micro-batch that
fits, and a learning-rate range test.

A probe step is the training loop's step (``forward → loss_sum / n_targets → backward → clip → AdamW →
zero_grad(set_to_none)``) on random tokens. Peak memory is ``torch.cuda.max_memory_allocated`` on CUDA; on
CPU the probe runs in a fresh process and reports the growth of its peak resident set (``VmHWM``, reset
through ``/proc/self/clear_refs`` once torch is loaded) over the resident set before the model existed.

Results are cached per device and shape under ``~/.cache/lunalm/probe`` so a second ``luna plan`` is instant,
except a CPU probe during which other programs kept more than ``BUSY_SHARE`` of the cores busy (from
``/proc/stat``, less the probe's own CPU time): that speed holds for now, not for the idle machine a later
plan may find, so it is not kept (it once made every later plan of the same shape a third as long).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from lunalm.errors import ConfigError
from lunalm.model import ModelConfig


@dataclass(frozen=True)
class ProbeResult:
    micro_batch_size: int
    seq_len: int
    precision: str
    device: str  # e.g. "cpu (2 threads)" or the CUDA device name
    step_seconds: float  # median seconds per optimizer step (after warm-up)
    tokens_per_s: float
    peak_bytes: int | None  # None when the platform cannot measure it
    oom: bool = False
    busy_share: float = 0.0  # CPU: share of the cores other programs used while it ran (not cached above
    #                          BUSY_SHARE)


# Untimed steps first: on a CPU the first ~3 steps run ~10-50 % slower (the optimizer state is allocated,
# the kernels' caches fill), which made a 3-step probe of `nano` read 0.076 s per step against 0.064 s.
WARMUP_STEPS = 3
BUSY_SHARE = 0.2  # of the cores: other programs' use above which a CPU probe is not cached


def cache_dir() -> Path:
    return Path(os.environ.get("LUNALM_CACHE", Path.home() / ".cache" / "lunalm")) / "probe"


def _cache_key(cfg: ModelConfig, micro_batch: int, precision: str, device_name: str, steps: int) -> str:
    payload = json.dumps([asdict(cfg), micro_batch, precision, device_name, steps, WARMUP_STEPS], sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


def measure(cfg: ModelConfig, micro_batch_size: int, *, device: str = "cpu", precision: str = "fp32",
            steps: int = 3, threads: int | None = None, use_cache: bool = True) -> ProbeResult:
    """Time ``steps`` training steps (after WARMUP_STEPS untimed ones) and measure their peak memory.

    CPU runs in a subprocess so the resident-set peak belongs to this probe alone; CUDA runs here.
    """
    device_name = _device_name(device, threads)
    path = cache_dir() / f"{_cache_key(cfg, micro_batch_size, precision, device_name, steps)}.json"
    if use_cache and path.is_file():
        try:
            return ProbeResult(**json.loads(path.read_text()))
        except (ValueError, TypeError):
            pass  # a stale or foreign file: measure again
    if device.startswith("cuda"):
        result = _measure_here(cfg, micro_batch_size, device, precision, steps)
    else:
        result = _measure_subprocess(cfg, micro_batch_size, device, precision, steps, threads)
    if use_cache and result.busy_share <= BUSY_SHARE:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(result)))
        tmp.replace(path)
    return result


def largest_micro_batch(cfg: ModelConfig, *, device: str, precision: str, limit_bytes: int,
                        start: int = 1, ceiling: int = 512, steps: int = 1) -> tuple[int, list[ProbeResult]]:
    """The largest micro-batch (a power of two) whose measured peak stays under ``limit_bytes``.

    Doubles from ``start`` until a probe runs out of memory or exceeds the limit; out-of-memory is caught,
    never fatal. Returns (batch, every probe made); batch 0 means not even ``start`` fits.
    """
    best, probes, batch = 0, [], start
    while batch <= ceiling:
        result = measure(cfg, batch, device=device, precision=precision, steps=steps)
        probes.append(result)
        if result.oom or (result.peak_bytes is not None and result.peak_bytes > limit_bytes):
            break
        best = batch
        batch *= 2
    return best, probes


def lr_range_test(cfg: ModelConfig, micro_batch_size: int, batches, *, device: str = "cpu",
                  precision: str = "fp32", lr_min: float = 1e-5, lr_max: float = 1e-1,
                  steps: int = 60, seed: int = 0) -> dict:
    """Leslie Smith's range test (2015): raise the lr geometrically each step, watch the smoothed loss.

    ``batches`` yields (inputs, labels) pairs of real training data. Stops when the smoothed loss exceeds
    4x its minimum. Suggests the lr one decade below the minimum of the smoothed curve, capped at the
    steepest-descent point — a conservative, widely used reading of the curve.
    """
    import torch

    from lunalm.model import LunaLM
    from lunalm.train.device import resolve
    from lunalm.train.setup import build_optimizer
    from lunalm.config import TrainConfig

    hw = resolve(device, precision)
    torch.manual_seed(seed)
    model = LunaLM(cfg).to(hw.device).train()
    optimizer = build_optimizer(model, TrainConfig(), hw)
    scaler = hw.grad_scaler()
    ratio = (lr_max / lr_min) ** (1 / max(1, steps - 1))
    lrs, losses, smooth, best = [], [], None, math.inf
    for i, (inputs, labels) in zip(range(steps), batches):
        lr = lr_min * ratio**i
        for group in optimizer.param_groups:
            group["lr"] = lr
        inputs, labels = inputs.to(hw.device), labels.to(hw.device)
        with hw.autocast():
            out = model(inputs, labels)
        loss = out.loss_sum / out.n_targets.clamp(min=1)
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
        value = float(loss.detach())
        if not math.isfinite(value):
            break
        smooth = value if smooth is None else 0.8 * smooth + 0.2 * value
        lrs.append(lr)
        losses.append(smooth)
        best = min(best, smooth)
        if smooth > 4 * best and i > 5:
            break
    if len(losses) < 5:
        raise ConfigError("learning-rate range test: the loss diverged within 5 steps even at lr "
                          f"{lr_min:g}; check the data and the model size")
    i_min = min(range(len(losses)), key=losses.__getitem__)
    slopes = [(losses[i + 1] - losses[i - 1]) / 2 for i in range(1, i_min or 1)]
    steepest = lrs[1 + min(range(len(slopes)), key=slopes.__getitem__)] if slopes else lrs[0]
    suggestion = min(lrs[i_min] / 10, steepest) if i_min > 0 else lrs[0]
    return {"lrs": lrs, "losses": losses, "lr_at_min_loss": lrs[i_min], "steepest_lr": steepest,
            "suggested_lr": suggestion}


# --- implementation -----------------------------------------------------------------------------


def _device_name(device: str, threads: int | None) -> str:
    if device.startswith("cuda"):
        import torch

        return torch.cuda.get_device_name(torch.device(device))
    return f"cpu ({threads or os.cpu_count()} threads)"


def _measure_subprocess(cfg, micro_batch, device, precision, steps, threads) -> ProbeResult:
    request = {"cfg": asdict(cfg), "micro_batch_size": micro_batch, "device": device,
               "precision": precision, "steps": steps, "threads": threads}
    ticks, children, started = _busy_ticks(), _children_cpu_seconds(), time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "lunalm.plan.probe", json.dumps(request)],
                          capture_output=True, text=True)
    busy = _others_share(ticks, children, time.perf_counter() - started)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        if proc.returncode < 0 or "out of memory" in proc.stderr.lower() or "memoryerror" in proc.stderr.lower():
            return ProbeResult(micro_batch, cfg.context_length, precision, _device_name(device, threads),
                               math.inf, 0.0, None, oom=True)
        raise RuntimeError(f"probe subprocess failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    return ProbeResult(**{**json.loads(lines[-1]), "busy_share": busy})


def _busy_ticks() -> int | None:
    """Clock ticks the cores this process may run on spent busy since boot (``/proc/stat``'s per-core lines),
    or None where there is no such file."""
    cores = _cores()
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            lines = [line.split() for line in stat if line.startswith("cpu") and line[3].isdigit()]
        fields = [[int(value) for value in line[1:9]] for line in lines if int(line[0][3:]) in cores]
    except (OSError, ValueError, IndexError):
        return None
    return sum(sum(f) - f[3] - f[4] for f in fields) if fields else None  # user..steal, less idle and iowait


def _cores() -> set[int]:
    """The cores this process may run on (a container's CPU set), else all of them."""
    try:
        return set(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return set(range(os.cpu_count() or 1))


def _children_cpu_seconds() -> float | None:
    """CPU seconds of this process's finished children, or None where ``resource`` does not exist (Windows)."""
    try:
        import resource
    except ImportError:
        return None
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _others_share(ticks_before: int | None, children_before: float | None, wall_seconds: float) -> float:
    """Share of the cores that other programs than the probe (a finished child) kept busy over
    ``wall_seconds``; 0.0 where it cannot be told."""
    ticks_after, children_after = _busy_ticks(), _children_cpu_seconds()
    if None in (ticks_before, ticks_after, children_before, children_after) or wall_seconds <= 0:
        return 0.0
    others = (ticks_after - ticks_before) / os.sysconf("SC_CLK_TCK") - (children_after - children_before)
    return round(min(1.0, max(0.0, others / (wall_seconds * len(_cores())))), 2)


def _rss_bytes(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _reset_peak_rss() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
        return True
    except OSError:
        return False


def _measure_here(cfg: ModelConfig, micro_batch: int, device: str, precision: str, steps: int,
                  threads: int | None = None) -> ProbeResult:
    import torch

    from lunalm.config import TrainConfig
    from lunalm.model import LunaLM
    from lunalm.train.device import is_oom, resolve
    from lunalm.train.setup import build_optimizer

    if threads:
        torch.set_num_threads(threads)
    hw = resolve(device, precision)
    cuda = hw.device.type == "cuda"
    generator = torch.Generator().manual_seed(0)
    batches = [torch.randint(0, cfg.vocab_size, (micro_batch, cfg.context_length + 1), generator=generator)
               for _ in range(2)]
    torch.ones(64, 64) @ torch.ones(64, 64)  # load the BLAS kernels before the baseline
    if cuda:
        torch.cuda.synchronize(hw.device)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(hw.device)
        base = torch.cuda.memory_allocated(hw.device)
    else:
        can_reset = _reset_peak_rss()
        base = _rss_bytes("VmRSS")
    try:
        model = LunaLM(cfg).to(hw.device)
        optimizer = build_optimizer(model, TrainConfig(), hw)
        scaler = hw.grad_scaler()
        times = []
        for i in range(steps + WARMUP_STEPS):  # the first allocates the optimizer state
            window = batches[i % 2].to(hw.device)
            if cuda:
                torch.cuda.synchronize(hw.device)
            started = time.perf_counter()
            with hw.autocast():
                loss_sum = model(window[:, :-1], window[:, 1:]).loss_sum
            scaler.scale(loss_sum / window[:, 1:].numel()).backward()
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            if cuda:
                torch.cuda.synchronize(hw.device)
            if i >= WARMUP_STEPS:
                times.append(time.perf_counter() - started)
    except Exception as error:  # noqa: BLE001 - an OOM is a result, anything else is a bug
        if not is_oom(error):
            raise
        if cuda:
            torch.cuda.empty_cache()
        return ProbeResult(micro_batch, cfg.context_length, precision, hw.name, math.inf, 0.0, None, oom=True)
    if cuda:
        peak = torch.cuda.max_memory_allocated(hw.device) - base
    else:
        high = _rss_bytes("VmHWM")
        peak = high - base if (can_reset and high is not None and base is not None) else None
    step_seconds = sorted(times)[len(times) // 2]
    return ProbeResult(micro_batch, cfg.context_length, precision,
                       _device_name(device, threads) if not cuda else hw.name, step_seconds,
                       micro_batch * cfg.context_length / step_seconds, peak)


def _main() -> None:
    request = json.loads(sys.argv[1])
    cfg = ModelConfig(**request["cfg"])
    result = _measure_here(cfg, request["micro_batch_size"], request["device"], request["precision"],
                           request["steps"], request.get("threads"))
    print(json.dumps(asdict(result)))


if __name__ == "__main__":
    _main()
