"""Precision by device: bf16 on Ampere and newer (compute capability >= 8) and on CPUs with native bf16
(AVX-512 BF16 or AMX), fp16 with a GradScaler on older GPUs, fp32 on other CPUs. The capability queries are
mocked, so this runs without a GPU and on any CPU."""

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


def test_bf16_is_refused_on_a_pre_ampere_gpu(fake_gpu):
    fake_gpu((7, 5))
    with pytest.raises(ConfigError, match="bf16' needs an Ampere"):
        resolve("cuda", "bf16")
    assert resolve("cuda", "fp16").precision == "fp16"


@pytest.mark.parametrize("capabilities, expected", [
    ({"avx512_bf16": True, "amx_bf16": False}, "bf16"), ({"avx512_bf16": False, "amx_bf16": True}, "bf16"),
    ({"avx512_bf16": False, "amx_bf16": False, "avx2": True}, "fp32"), ({}, "fp32")])
def test_auto_precision_on_a_cpu_is_bf16_only_where_it_is_native(monkeypatch, capabilities, expected):
    from lunalm.plan.hardware import cpu_machine

    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: capabilities)
    assert resolve("cpu", "auto").precision == expected
    assert cpu_machine().precision == expected  # the plan estimates what the run will do
    assert resolve("cpu", "fp32").precision == "fp32"  # asking for fp32 always gets it


def test_a_pytorch_without_the_capability_query_keeps_the_cpu_in_fp32(monkeypatch):
    monkeypatch.delattr(torch.cpu, "get_capabilities")
    assert device_module.cpu_bf16() is False and resolve("cpu", "auto").precision == "fp32"
