"""Tests for lunalm.generate: cache equivalence, determinism, filters, streaming, config validation."""

import random

import pytest
import torch
from torch import nn

from lunalm.errors import ConfigError
from lunalm.generate import (
    SamplingConfig,
    apply_repetition_penalty,
    filter_top_k,
    filter_top_p,
    generate,
    generate_ids,
)
from lunalm.model import LunaLM, ModelConfig, ModelOutput
from lunalm.tokenizer import train_bpe, train_char

TEXT = "Karadeniz'in hırçın dalgaları kıyıya vururken balıkçılar ağlarını topluyordu. Hamsi mevsimi 🐟🌊!"
GREEDY = SamplingConfig(temperature=0, max_new_tokens=40)


def random_model(vocab_size: int, context_length: int = 64, seed: int = 0) -> LunaLM:
    torch.manual_seed(seed)
    cfg = ModelConfig(vocab_size=vocab_size, context_length=context_length, n_layer=2, n_head=2,
                      d_model=32, init_std=0.3)  # large init: peaked logits, no near-ties in argmax
    return LunaLM(cfg)


def greedy_without_cache(model, prompt_ids, n_new):
    """Reference: re-run the whole window each step, sliding exactly as generate documents."""
    context_length = model.config.context_length
    tokens = list(prompt_ids)
    window_start = max(0, len(tokens) - context_length)
    with torch.no_grad():
        for _ in range(n_new):
            logits = model(torch.tensor([tokens[window_start:]])).logits[0, -1]
            tokens.append(int(logits.argmax()))
            if len(tokens) - window_start > context_length:
                window_start = len(tokens) - context_length // 2
    return tokens[len(prompt_ids):]


@pytest.mark.parametrize("context_length, prompt_length", [(64, 5), (16, 5), (16, 30)])
def test_cached_greedy_equals_full_reforward(context_length, prompt_length):
    model = random_model(50, context_length)
    prompt = torch.randint(0, 50, (prompt_length,), generator=torch.Generator().manual_seed(1)).tolist()
    cached = generate_ids(model, prompt, GREEDY)
    assert len(cached) == GREEDY.max_new_tokens  # no stop id: runs past the context by sliding
    assert cached == greedy_without_cache(model, prompt, GREEDY.max_new_tokens)


def test_same_seed_same_text_different_seed_different_text():
    tokenizer = train_char([TEXT])
    model = random_model(tokenizer.vocab_size)
    sampled = [generate(model, tokenizer, "Hamsi", SamplingConfig(seed=seed, temperature=1.0,
                                                                  max_new_tokens=30)) for seed in (1, 1, 2)]
    assert sampled[0] == sampled[1]
    assert sampled[0] != sampled[2]


def test_top_k_one_equals_greedy():
    model = random_model(50)
    sampling = SamplingConfig(top_k=1, temperature=1.3, top_p=1.0, seed=5, max_new_tokens=40)
    assert generate_ids(model, [3, 4, 5], sampling) == generate_ids(model, [3, 4, 5], GREEDY)


class ScriptedModel(nn.Module):
    """Predicts a fixed token sequence, one per forward call, whatever the input."""

    def __init__(self, script, vocab_size):
        super().__init__()
        self.config = ModelConfig(vocab_size=vocab_size, context_length=1024, n_layer=1, n_head=1,
                                  d_model=2)
        self.anchor = nn.Parameter(torch.zeros(1))  # gives generate a device to read
        self.script = list(script)

    def new_kv_cache(self, batch_size, max_length):
        return None

    def forward(self, input_ids, labels=None, kv_cache=None, start_pos=0):
        logits = torch.zeros(1, input_ids.shape[1], self.config.vocab_size)
        logits[0, -1, self.script.pop(0)] = 1.0
        return ModelOutput(logits)


def test_generate_stops_at_end_of_text_and_restores_train_mode():
    tokenizer = train_char([TEXT])
    script = tokenizer.encode("ağ") + [tokenizer.eot_id] + tokenizer.encode("never")
    model = ScriptedModel(script, tokenizer.vocab_size)
    model.train()
    assert generate(model, tokenizer, "Hamsi", GREEDY) == "ağ"
    assert model.training


def byte_token_ids(tokenizer, text):
    """One token per UTF-8 byte, so multi-byte characters are split across tokens."""
    ids = [tokenizer.inner.token_to_id(_byte_level_char(byte)) for byte in text.encode("utf-8")]
    assert None not in ids
    return ids


def _byte_level_char(byte: int) -> str:
    """GPT-2's bytes_to_unicode: printable bytes map to themselves, the others to 256, 257, ... in order."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), 256)]
    if byte in printable:
        return chr(byte)
    return chr(256 + sorted(set(range(256)) - set(printable)).index(byte))


def test_streamed_pieces_never_split_a_character():
    tokenizer = train_bpe([TEXT] * 20, vocab_size=300)
    rng = random.Random(0)
    wanted = "".join(rng.choice("ğüşıöçİĞÜŞÖÇ🐟🌊🇹🇷ab ") for _ in range(60))
    script = byte_token_ids(tokenizer, wanted) + [tokenizer.eot_id]
    model = ScriptedModel(script, tokenizer.vocab_size)
    pieces = []
    text = generate(model, tokenizer, "Hamsi", SamplingConfig(temperature=0, max_new_tokens=500),
                    on_text=pieces.append)
    assert text == wanted == "".join(pieces)
    assert not any("\ufffd" in piece for piece in pieces)
    assert len(pieces) > 10  # really streamed, not emitted at the end


def test_streamed_pieces_concatenate_to_the_text_for_random_bytes():
    tokenizer = train_bpe([TEXT] * 20, vocab_size=300)
    model = random_model(tokenizer.vocab_size)
    pieces = []
    text = generate(model, tokenizer, "Hamsi", SamplingConfig(seed=3, temperature=1.0, max_new_tokens=60),
                    on_text=pieces.append)
    assert "".join(pieces) == text


def test_repetition_penalty_lowers_repeated_tokens():
    logits = torch.tensor([2.0, -1.0, 0.5, 3.0])
    penalised = apply_repetition_penalty(logits, torch.tensor([0, 1, 1]), 2.0)
    assert penalised.tolist() == [1.0, -2.0, 0.5, 3.0]
    before, after = logits.softmax(-1), penalised.softmax(-1)
    assert after[0] < before[0] and after[1] < before[1]
    assert after[2] > before[2] and after[3] > before[3]
    assert torch.equal(apply_repetition_penalty(logits, torch.tensor([0]), 1.0), logits)


def test_temperature_zero_is_the_raw_argmax_whatever_the_penalty():
    from lunalm.generate import next_token

    logits = torch.tensor([2.0, 1.9, -1.0])  # token 0 is in context: a 1.1 penalty would make it 1.82
    greedy = SamplingConfig(temperature=0, repetition_penalty=1.1, top_k=1, top_p=0.5)
    assert next_token(logits, torch.tensor([0]), greedy, None) == 0


def test_temperature_zero_with_the_cli_penalty_is_plain_greedy_of_a_transformers_model(tmp_path):
    """`luna generate --temperature 0` (the CLI's penalty 1.1 included) = argmax of transformers' logits,
    re-run on the whole text at every step (what greedy decoding means, without any cache)."""
    from transformers import AutoModelForCausalLM

    from tests.finetune.fthelp import tiny_base
    from lunalm.finetune.adapter import HFCausalLM

    inner = AutoModelForCausalLM.from_pretrained(str(tiny_base(tmp_path / "gpt2", "gpt2", seed=3))).eval()
    prompt = [7, 8, 9]
    ours = generate_ids(HFCausalLM(inner, base="", lora=False).eval(), prompt,
                        SamplingConfig(temperature=0, repetition_penalty=1.1, max_new_tokens=12))
    ids = list(prompt)
    with torch.no_grad():
        for _ in range(12):
            ids.append(int(inner(input_ids=torch.tensor([ids]), use_cache=False).logits[0, -1].argmax()))
    assert ours == ids[len(prompt):] and len(set(ours)) < len(ours)  # it repeats: no penalty applied


def test_top_k_and_top_p_filters():
    logits = torch.tensor([1.0, 4.0, 3.0, 2.0])
    assert torch.isinf(filter_top_k(logits, 2)).tolist() == [True, False, False, True]
    probs = torch.tensor([0.5, 0.3, 0.15, 0.05]).log()
    assert torch.isinf(filter_top_p(probs, 0.7)).tolist() == [False, False, True, True]
    assert torch.isinf(filter_top_p(probs, 0.1)).tolist() == [False, True, True, True]
    assert torch.equal(filter_top_p(probs, 1.0), probs)


@pytest.mark.parametrize("field, value", [
    ("max_new_tokens", 0), ("max_new_tokens", 2.5), ("temperature", -0.1), ("top_k", -1),
    ("top_p", 0.0), ("top_p", 1.5), ("repetition_penalty", 0), ("seed", -3), ("seed", "x"),
    ("temperature", True),
])
def test_invalid_sampling_config_names_the_field(field, value):
    with pytest.raises(ConfigError, match=rf"{field}: must be"):
        SamplingConfig(**{field: value})


def test_invalid_sampling_config_reports_every_field():
    with pytest.raises(ConfigError) as error:
        SamplingConfig(top_k=-1, top_p=2.0)
    assert "top_k" in str(error.value) and "top_p" in str(error.value)
