"""The memory model: parts add up, scale as they should, and match a measured CPU step."""

from __future__ import annotations

import dataclasses

import pytest

from lunalm.model import count_parameters, model_config_from_preset
from lunalm.plan.memory import (activation_bytes_per_token, device_bytes, estimate_training_memory,
                                usable_bytes)


def test_parts_and_peak_by_hand_for_nano():
    cfg = model_config_from_preset("nano", 4096, 256)  # C=128, F=384, H=4
    est = estimate_training_memory(cfg, 8)
    n = count_parameters(cfg)
    tokens = 8 * 256
    assert est.weights == 4 * n and est.optimizer == 8 * n
    assert activation_bytes_per_token(cfg, "fp32") == (4 * (9 * 128 + 2 * 128 + 4 * 384 + 4), 12 * 128)
    per_layer, head = activation_bytes_per_token(cfg, "fp32")
    assert est.activations == tokens * (4 * per_layer + head + 8)
    rows = 2**20 // 4096  # one CPU chunk of the fused head at nano's width 128: 256 of the 2048 rows
    assert est.logits == 8 * rows * 4096 + 8 * tokens * 128 + 4 * 4096 * 128
    assert est.gradients == 4 * 4096 * 128  # one micro-batch: only the (tied) head's gradient at the peak
    assert est.peak == est.weights + est.optimizer + est.activations + est.logits + est.gradients


def test_scaling_accumulation_precision_and_checkpointing():
    cfg = model_config_from_preset("tiny", 8192, 512)
    one, two = estimate_training_memory(cfg, 4), estimate_training_memory(cfg, 8)
    assert two.activations == pytest.approx(2 * one.activations, rel=1e-9)
    assert two.logits - one.logits == 8 * 4 * 512 * 192  # chunk-bounded: only the input gradients grow
    gpu = estimate_training_memory(cfg, 4, device_kind="cuda")
    assert gpu.logits == 8 * 2048 * 8192 + 8 * 2048 * 192 + 4 * 8192 * 192  # 2^25 elements: one chunk
    accum = estimate_training_memory(cfg, 4, grad_accum_steps=4)
    assert accum.gradients == 4 * count_parameters(cfg)  # earlier micro-batches' gradients are alive
    bf16 = estimate_training_memory(cfg, 4, precision="bf16")
    assert bf16.weight_copies > 0 and bf16.activations < one.activations
    ckpt = estimate_training_memory(dataclasses.replace(cfg, activation_checkpointing=True), 4)
    assert ckpt.activations < 0.25 * one.activations


def test_head_chunk_sizes_follow_the_fused_head():
    """The estimate sizes the head's chunk with lunalm.loss's own rule, float16 cap included."""
    from lunalm.loss import CHUNK_ELEMENTS, HALF_CHUNK_ROWS, chunk_rows
    from lunalm.plan.memory import head_loss_bytes

    cfg = model_config_from_preset("small", 8192, 512)
    tokens = 16 * 512
    cuda_rows = CHUNK_ELEMENTS["cuda"] // 8192  # 4096 rows in bf16
    assert head_loss_bytes(cfg, tokens, "bf16", "cuda") - head_loss_bytes(cfg, tokens, "fp16", "cuda") \
        == 8 * 8192 * (cuda_rows - HALF_CHUNK_ROWS)
    assert head_loss_bytes(cfg, tokens, "fp32", "cuda") - head_loss_bytes(cfg, tokens, "fp32", "cpu") \
        == 8 * 8192 * (cuda_rows - chunk_rows("cpu", 8192, tokens, width=512))
    assert chunk_rows("cpu", 8192, tokens, width=512) == 512  # small is 512 wide: 2^22 elements on a CPU


def test_a_bigger_card_is_planned_with_the_bigger_chunks_it_trains_with():
    from lunalm.plan.memory import head_loss_bytes

    cfg = model_config_from_preset("small", 50257, 1024)
    tokens = 16 * 1024
    small_card = head_loss_bytes(cfg, tokens, "bf16", "cuda", 4 * 2**30)
    big_card = head_loss_bytes(cfg, tokens, "bf16", "cuda", 80 * 2**30)
    assert big_card - small_card == 8 * 50257 * (tokens - 2**25 // 50257)  # all rows in one chunk
    estimate = estimate_training_memory(cfg, 16, precision="bf16", device_kind="cuda", device_memory=80 * 2**30)
    assert estimate.logits == big_card


def test_device_overheads():
    assert device_bytes(1000, "cuda") == 1000
    assert device_bytes(2**30, "cpu") > 1.2 * 2**30
    assert usable_bytes(4 * 2**30, "cuda") < 0.92 * 4 * 2**30


@pytest.mark.slow
def test_memory_model_matches_a_measured_cpu_step_within_15_percent():
    from lunalm.plan.probe import measure

    cfg = model_config_from_preset("tiny", 8192, 256)
    result = measure(cfg, 8, device="cpu", steps=2, threads=2, use_cache=False)
    predicted = device_bytes(estimate_training_memory(cfg, 8).peak, "cpu")
    assert result.peak_bytes is not None
    assert abs(predicted / result.peak_bytes - 1) <= 0.15, (predicted, result.peak_bytes)
    assert result.tokens_per_s > 0
