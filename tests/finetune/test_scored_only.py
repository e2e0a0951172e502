"""Padding and prompts cost no compute, and the results are those of the full computation.

Three mechanisms, each checked against the plain full-width, full-head computation: the loop cuts a
micro-batch after its last scored column (``scored_widths``), the output head runs on scored positions
only (``head_with_loss``, for lunalm's model and for every Hugging Face architecture in
``PLAIN_HEAD_TYPES``, LoRA-wrapped or not), and the instruction sampler groups examples of similar length.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lunalm.data.batches import IGNORE_INDEX, scored_layout, scored_widths
from lunalm.finetune.adapter import PLAIN_HEAD_TYPES, HFCausalLM
from lunalm.finetune.instructions import GROUP_CHUNK, InstructionSampler
from lunalm.model import LunaLM, ModelConfig, output_with_loss
from tests.finetune.fthelp import tiny_base


def padded_batch(vocab: int, lengths=(20, 7, 13, 3), prompt=(4, 2, 6, 1), T=24, seed=0):
    """Right-padded rows: label -100 on each row's prompt and after its length."""
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randint(0, vocab, (len(lengths), T), generator=generator)
    labels = torch.randint(0, vocab, (len(lengths), T), generator=generator)
    for row, (length, masked) in enumerate(zip(lengths, prompt)):
        labels[row, :masked] = IGNORE_INDEX
        labels[row, length:] = IGNORE_INDEX
    return inputs, labels


def loss_and_grads(model, compute):
    model.zero_grad(set_to_none=True)
    loss_sum, n_targets = compute()
    loss_sum.backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    return float(loss_sum.detach()), int(n_targets), grads


def assert_same(full, fast, tol=1e-5):
    assert fast[1] == full[1]
    assert fast[0] == pytest.approx(full[0], rel=1e-6, abs=tol)
    assert fast[2].keys() == full[2].keys()
    worst = max((fast[2][k] - full[2][k]).abs().max().item() for k in full[2])
    assert worst <= tol, worst


# --- trimming ------------------------------------------------------------------------------------
def test_scored_widths_cut_after_the_last_target_rounded_to_eight():
    _, labels = padded_batch(50)
    assert scored_widths(labels, 4) == [24]  # row 0 is scored up to column 19 -> 20 -> 24 (= T)
    assert scored_widths(labels, 2) == [24, 16]  # rows 0-1: 20 -> 24; rows 2-3: 13 -> 16
    assert scored_widths(labels, 1) == [24, 8, 16, 8]
    nothing = torch.full((2, 24), IGNORE_INDEX)
    assert scored_widths(nothing, 2) == [8]  # no target: the smallest width, still a forward pass
    assert scored_widths(torch.zeros(3, 5, dtype=torch.long), 3) == [5]  # never beyond T
    assert scored_layout(labels, 2) == ([24, 16], [False, False])  # each block has a prompt or padding
    every = torch.zeros(4, 24, dtype=torch.long)
    every[3, 0] = IGNORE_INDEX
    assert scored_layout(every, 2) == ([24, 24], [True, False])  # plain text: the head needs no check


# --- the output head on scored positions only -----------------------------------------------------
def test_lunalm_head_on_scored_positions_equals_the_full_head():
    torch.manual_seed(0)
    model = LunaLM(ModelConfig(vocab_size=50, context_length=24, n_layer=2, n_head=2, d_model=32)).train()
    inputs, labels = padded_batch(50)
    full = loss_and_grads(model, lambda: _full(output_with_loss(model.lm_head(model.model(inputs)), labels)))
    out = model(inputs, labels)
    assert out.logits is None  # the head ran fused with the loss (lunalm.loss): no logits kept
    fast = loss_and_grads(model, lambda: _full(model(inputs, labels)))
    assert_same(full, fast)
    model.eval()  # evaluation keeps (B, T, V) logits: accuracy reads them
    assert model(inputs, labels).logits.shape == (4, 24, 50)


def _full(out):
    return out.loss_sum, out.n_targets


@pytest.fixture(scope="module")
def bases(tmp_path_factory):
    root = tmp_path_factory.mktemp("archs")
    return {arch: tiny_base(root / arch, arch) for arch in sorted(PLAIN_HEAD_TYPES)}


@pytest.mark.parametrize("arch", sorted(PLAIN_HEAD_TYPES))
def test_hf_head_on_scored_positions_equals_the_full_model(bases, arch):
    from transformers import AutoModelForCausalLM

    inner = AutoModelForCausalLM.from_pretrained(str(bases[arch]), use_safetensors=True, dtype=torch.float32)
    model = HFCausalLM(inner, base=str(bases[arch]), lora=False).train()
    inner.eval()  # dropout off inside, while the wrapper is in training mode (the fast path)
    inputs, labels = padded_batch(model.config.vocab_size)
    full = loss_and_grads(model, lambda: _full(output_with_loss(inner(input_ids=inputs).logits, labels)))
    out = model(inputs, labels)
    assert out.logits is None  # the split, fused path really ran
    fast = loss_and_grads(model, lambda: _full(model(inputs, labels)))
    assert_same(full, fast)


def test_lora_wrapped_model_takes_the_fast_path_with_the_same_adapter_gradients(bases):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    inner = AutoModelForCausalLM.from_pretrained(str(bases["llama"]), use_safetensors=True, dtype=torch.float32)
    inner = get_peft_model(inner, LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["q_proj", "v_proj"],
                                             task_type="CAUSAL_LM"))
    for name, param in inner.named_parameters():  # B starts at zero: give A's gradient something to see
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.1)
    model = HFCausalLM(inner, base=str(bases["llama"]), lora=True).train()
    inputs, labels = padded_batch(model.config.vocab_size)
    full = loss_and_grads(model, lambda: _full(output_with_loss(inner(input_ids=inputs).logits, labels)))
    assert len(full[2]) == 8 and all("lora_" in name for name in full[2])  # 2 layers x q, v x A, B
    fast = loss_and_grads(model, lambda: _full(model(inputs, labels)))
    assert_same(full, fast)


def test_other_architectures_keep_the_plain_forward(bases):
    from transformers import AutoModelForCausalLM

    inner = AutoModelForCausalLM.from_pretrained(str(bases["llama"]), use_safetensors=True, dtype=torch.float32)
    model = HFCausalLM(inner, base="x", lora=False).train()
    inner.config.model_type = "gemma2"  # soft-capped logits: the head must not be split off
    inputs, labels = padded_batch(model.config.vocab_size)
    assert model(inputs, labels).logits.shape == (4, 24, model.config.vocab_size)


# --- length-grouped instruction batches ----------------------------------------------------------
def rows_of_lengths(lengths, T=64):
    labels = np.full((len(lengths), T), IGNORE_INDEX, dtype=np.int64)
    for row, length in enumerate(lengths):
        labels[row, 1:length] = 5  # a one-token prompt, then targets up to the length
    return np.zeros_like(labels), labels


def test_grouped_sampler_visits_every_example_once_per_epoch_in_similar_length_groups():
    lengths = np.random.default_rng(0).integers(2, 65, 1000)
    sampler = InstructionSampler(rows_of_lengths(lengths), seed=3, group=8)
    assert sampler.lengths.tolist() == lengths.tolist()
    epochs = []
    for _ in range(2):
        epoch = np.concatenate([sampler.next_starts(8) for _ in range(125)])
        assert sorted(epoch.tolist()) == list(range(1000))  # each example exactly once
        epochs.append(epoch)
    assert not np.array_equal(epochs[0], epochs[1])  # reshuffled per epoch
    padded = lambda order: sum(lengths[order[i:i + 8]].max() * 8 for i in range(0, 1000, 8))  # noqa: E731
    waste_grouped = padded(epochs[0]) / lengths.sum() - 1
    waste_plain = padded(np.random.default_rng(1).permutation(1000)) / lengths.sum() - 1
    assert waste_grouped < 0.1 and waste_plain > 0.5, (waste_grouped, waste_plain)
    assert 8 * GROUP_CHUNK < 1000 < 2 * 8 * GROUP_CHUNK  # a full chunk and a partial one: both sorted


def test_grouped_sampler_resumes_exactly_and_is_reproducible():
    rows = rows_of_lengths(np.random.default_rng(1).integers(2, 65, 300))
    first = InstructionSampler(rows, seed=7, group=4)
    [first.next_starts(4) for _ in range(20)]
    state = first.state_dict()
    expected = np.concatenate([first.next_starts(4) for _ in range(100)])  # crosses into epoch 2
    second = InstructionSampler(rows, seed=7, group=4)
    second.load_state_dict(state)
    assert np.array_equal(np.concatenate([second.next_starts(4) for _ in range(100)]), expected)
    plain = InstructionSampler(rows, seed=7)  # no group: the WindowSampler permutation
    assert np.array_equal(plain.next_starts(300), np.random.default_rng([7, 0]).permutation(300))
