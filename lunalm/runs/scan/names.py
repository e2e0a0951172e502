"""One spelling for each optimizer and device, whichever file named it: a sweep's config prints ``adam``
and ``sgd`` where code builds ``torch.optim.Adam``; Colab's notebook metadata says ``T4`` where W&B's says
``Tesla T4``. Without this the registry and the report list one thing under two names.

Imports nothing heavy: the report uses it too (for registries written before it).
"""

from __future__ import annotations

import re

from lunalm.runs.scan.scripts import OPTIMIZERS

# A name that is an optimizer class whatever its case gets the class's spelling ("adamw" -> "AdamW");
# Hugging Face's ``optim`` values (``adamw_torch``, ``paged_adamw_8bit``, ``adamw_8bit``) name more than the
# class (the implementation, 8-bit states, paging) and stay as the Trainer wrote them.
_OPTIMIZER_CLASSES = {name.lower(): name for name in sorted(OPTIMIZERS)} | {"lamb": "LAMB"}
# Vendor and brand words before a GPU's model ("NVIDIA GeForce RTX 3090", "Tesla T4", "NVIDIA A100-SXM4-40GB")
_GPU_PREFIX = re.compile(r"^(?:(?:nvidia|tesla|geforce)\s+)+", re.IGNORECASE)
# What follows a GPU's model: form factor and memory ("A100-SXM4-40GB", "H100 80GB HBM3", "A100-PCIE-40GB")
_GPU_VARIANT = re.compile(r"[- ](?:sxm\d*|pcie|nvl|hbm\d*e?|\d+\s?gb|mig\b).*$", re.IGNORECASE)


def canonical_optimizer(name: str | None) -> str | None:
    """``adam`` -> ``Adam``, ``sgd`` -> ``SGD``, ``rmsprop`` -> ``RMSprop``; other names unchanged."""
    if not isinstance(name, str):
        return name
    return _OPTIMIZER_CLASSES.get(name.strip().lower(), name)


def canonical_device(name: str | None) -> str | None:
    """``Tesla T4`` -> ``T4``, ``NVIDIA A100-SXM4-40GB`` -> ``A100-SXM4-40GB`` (the memory variant kept);
    ``cuda``, ``cpu``, ``mps`` unchanged."""
    if not isinstance(name, str):
        return name
    stripped = _GPU_PREFIX.sub("", name.strip())
    return stripped or name


def device_family(name: str | None) -> str | None:
    """The GPU model without its variant, to group by: ``A100-SXM4-40GB`` and ``A100`` are both ``A100``."""
    device = canonical_device(name)
    if not isinstance(device, str):
        return device
    return _GPU_VARIANT.sub("", device) or device
