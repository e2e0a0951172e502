"""Precision by device: fp32 on CPU, bf16 on Ampere and newer (compute capability >= 8), fp16 with a
GradScaler on older GPUs. The capability query is mocked, so this runs without a GPU."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from lunalm.errors import ConfigError
from lunalm.train import device as device_module
from lunalm.train.device import resolve


@pytest.fixture
def fake_gpu(monkeypatch):
    """A CUDA GPU of the compute capability the test sets; returns the setter."""
    card = {"capability": (7, 5)}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: card["capability"])
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: card["capability"][0] >= 8)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device=None: SimpleNamespace(
        name="Fake GPU", total_memory=4 * 2**30, major=card["capability"][0], minor=card["capability"][1]))
    return lambda capability: card.update(capability=capability)


@pytest.mark.parametrize("capability, expected", [((6, 1), "fp16"), ((7, 0), "fp16"), ((7, 5), "fp16"),
                                                  ((8, 0), "bf16"), ((8, 6), "bf16"), ((9, 0), "bf16")])
def test_auto_precision_follows_the_gpu_generation(fake_gpu, capability, expected):
    fake_gpu(capability)
    hw = resolve("cuda", "auto")
    assert hw.precision == expected and hw.device.type == "cuda"
    assert hw.autocast_dtype == {"bf16": torch.bfloat16, "fp16": torch.float16}[expected]
    assert hw.name == f"Fake GPU (4.0 GB, sm_{capability[0]}{capability[1]})"


def test_bf16_is_refused_on_a_pre_ampere_gpu_and_cpu_stays_fp32(fake_gpu):
    fake_gpu((7, 5))
    with pytest.raises(ConfigError, match="bf16' needs an Ampere"):
        resolve("cuda", "bf16")
    assert resolve("cuda", "fp16").precision == "fp16"
    assert resolve("cpu", "auto").precision == "fp32"
    assert device_module._auto_precision(torch.device("cpu")) == "fp32"
