"""Known accelerators and this machine: memory, bf16 support and realistic training throughput.

Peak figures are the vendors' dense numbers (no sparsity) for the precision lunalm would train in on that
card: bf16 on Ampere and newer, fp16 with tensor cores on Volta/Turing, plain fp16/fp32 ALUs on the
GTX 16xx (which has no tensor cores). ``mfu`` is the share of that peak a well-tuned small-model run
reaches in practice (model FLOPs utilisation); ``luna plan --probe`` replaces it by a measurement.
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass

from lunalm.errors import ConfigError

GB = 10**9
GiB = 2**30


@dataclass(frozen=True)
class Card:
    name: str
    memory_gib: float  # device memory
    bf16: bool  # native bfloat16 (Ampere / Ada / Hopper)
    peak_tflops: float  # dense TFLOP/s in the training precision below
    precision: str  # what lunalm trains in on it: bf16 | fp16 | fp32
    mfu: float  # realistic model-FLOPs utilisation for 10M-150M models
    aliases: tuple[str, ...] = ()
    note: str = ""


CARDS: tuple[Card, ...] = (
    Card("GTX 1650", 4, False, 6.0, "fp16", 0.30, ("1650", "gtx1650"),
         "Turing without tensor cores: fp16 runs at twice the fp32 rate"),
    Card("GTX 1660", 6, False, 10.0, "fp16", 0.30, ("1660", "gtx1660", "gtx 1660 super", "gtx 1660 ti")),
    Card("RTX 2060", 6, False, 26.0, "fp16", 0.30, ("2060", "rtx2060")),
    Card("RTX 3060", 12, True, 25.0, "bf16", 0.35, ("3060", "rtx3060")),
    Card("RTX 3090", 24, True, 71.0, "bf16", 0.35, ("3090", "rtx3090")),
    Card("RTX 4090", 24, True, 165.0, "bf16", 0.35, ("4090", "rtx4090")),
    Card("T4", 16, False, 65.0, "fp16", 0.25, ("tesla t4", "nvidia t4"), "Colab's free GPU"),
    Card("V100", 16, False, 125.0, "fp16", 0.30, ("tesla v100", "v100-sxm2", "v100 16gb")),
    Card("A10", 24, True, 125.0, "bf16", 0.35, ("a10g", "nvidia a10")),
    Card("L4", 24, True, 121.0, "bf16", 0.30, ("nvidia l4",)),
    Card("A100", 80, True, 312.0, "bf16", 0.40, ("a100-sxm4-80gb", "a100 80gb", "a100-80gb")),
    Card("A100 40GB", 40, True, 312.0, "bf16", 0.40, ("a100-sxm4-40gb", "a100-40gb", "a100 40")),
    Card("H100", 80, True, 989.0, "bf16", 0.35, ("h100 sxm", "h100-sxm", "h100 80gb hbm3", "nvidia h100")),
    Card("H100 PCIe", 80, True, 756.0, "bf16", 0.35, ("h100-pcie",)),
    Card("H200", 141, True, 989.0, "bf16", 0.35, ("nvidia h200",)),
    Card("Apple MPS", 16, False, 7.0, "fp32", 0.20, ("mps", "apple", "m1", "m2", "m3", "m4"),
         "unified memory: about two thirds of the Mac's RAM is usable by the GPU"),
)


@dataclass(frozen=True)
class Machine:
    """The device a plan is for."""

    kind: str  # "cpu" | "cuda" | "mps"
    name: str
    memory_bytes: int  # usable for training (VRAM, or RAM on CPU)
    precision: str
    peak_flops: float  # FLOP/s in that precision
    mfu: float
    card: Card | None = None
    cores: int = 1


def normalise(name: str) -> str:
    name = name.lower().replace("nvidia", "").replace("geforce", "").replace("tesla", "")
    return re.sub(r"\s+", " ", name).strip()


def find_card(name: str) -> Card:
    """The known card called ``name`` (case and vendor words ignored); unknown names list close ones."""
    wanted = normalise(name)
    for card in CARDS:
        if wanted in {normalise(card.name), *map(normalise, card.aliases)}:
            return card
    contained = [card for card in CARDS if normalise(card.name) in wanted]  # "rtx 3060 laptop gpu"
    if contained:
        return max(contained, key=lambda card: len(card.name))
    names = [card.name for card in CARDS]
    close = difflib.get_close_matches(name, names, n=4, cutoff=0.3) or names
    raise ConfigError(f"--gpu {name!r}: unknown GPU; closest known: {', '.join(close)}. "
                      "Give the memory instead with --vram (e.g. --vram 8GB)")


def parse_size(text: str) -> int:
    """'4GB', '4 GiB', '3.5g', '4096MB' -> bytes (GB and GiB both read as GiB: cards are sold that way)."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kmgt]?)(i?b?)\s*", text.lower())
    if not match:
        raise ConfigError(f"--vram {text!r}: expected a size such as 4GB, 6GiB or 12288MB")
    value, unit = float(match.group(1)), match.group(2) or "g"
    size = int(value * 1024 ** "kmgt".index(unit) * 1024)
    if size < 2**26:
        raise ConfigError(f"--vram {text!r}: {size} bytes is too small to train anything; "
                          "write the unit, e.g. 4GB")
    return size


def cpu_machine() -> Machine:
    """This computer's CPU: available RAM, cores and a FLOP/s guess (the probe measures the real one)."""
    from lunalm.train.device import cpu_bf16

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    bf16 = cpu_bf16()  # bf16 matmuls at twice the rate: nano's whole step ~1.27x faster (lunalm.train.device)
    return Machine("cpu", f"CPU ({cores} cores)", available_ram(), "bf16" if bf16 else "fp32",
                   peak_flops=cores * 50e9 * (1.25 if bf16 else 1.0), mfu=0.6, cores=cores)


def available_ram() -> int:
    """MemAvailable from /proc/meminfo (what can be allocated without swapping), else total RAM."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 8 * GiB


def card_machine(card: Card, memory_bytes: int | None = None) -> Machine:
    memory = memory_bytes or int(card.memory_gib * GiB)
    kind = "mps" if card.name == "Apple MPS" else "cuda"
    return Machine(kind, card.name, memory, card.precision, card.peak_tflops * 1e12, card.mfu, card)


def detect_cuda() -> Machine | None:
    """The first CUDA GPU PyTorch sees, matched to the table when its name is known."""
    import torch

    if not torch.cuda.is_available():
        return None
    props = torch.cuda.get_device_properties(0)
    precision = "bf16" if props.major >= 8 else "fp16"
    try:
        card = find_card(props.name)
    except ConfigError:
        card = None
    if card is not None:
        return Machine("cuda", props.name, props.total_memory, precision, card.peak_tflops * 1e12,
                       card.mfu, card)
    # an unknown card: a conservative guess from its size, corrected by --probe
    return Machine("cuda", props.name, props.total_memory, precision, 30e12, 0.3)


def vram_machine(memory_bytes: int) -> Machine:
    """A GPU known only by its memory: assume a modest fp16 card of that size (Turing-class)."""
    return Machine("cuda", f"GPU with {memory_bytes / GiB:.3g} GB", memory_bytes, "fp16", 20e12, 0.3)
