"""Tests for lunalm.model: HF parity, loss contract, KV cache, parameter counts, checkpointing, config."""

import json
import math

import pytest
import torch
import torch.nn.functional as F

from lunalm.errors import ConfigError
from lunalm.model import (
    PRESETS,
    LunaLM,
    ModelConfig,
    count_parameters,
    flops_per_token,
    fused_linear,
    load_pretrained,
    model_config_from_preset,
    optimizer_param_groups,
    save_pretrained,
)


def tiny_config(**overrides) -> ModelConfig:
    values = dict(vocab_size=97, context_length=32, n_layer=2, n_head=4, d_model=64)
    return ModelConfig(**{**values, **overrides})


def random_ids(cfg: ModelConfig, batch: int = 2, length: int = 16, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, cfg.vocab_size, (batch, length), generator=generator)


def built_model(cfg: ModelConfig, seed: int = 0) -> LunaLM:
    torch.manual_seed(seed)
    model = LunaLM(cfg).eval()
    with torch.no_grad():  # non-trivial norm weights so a wrong norm layout would show
        for param in model.parameters():
            if param.dim() == 1:
                param.uniform_(0.5, 1.5)
    return model


# --- Hugging Face parity -------------------------------------------------------------------------

@pytest.mark.parametrize("tie, n_kv_head", [(True, 4), (False, 4), (True, 2), (False, 1)])
def test_transformers_loads_saved_model_with_same_logits(tmp_path, tie, n_kv_head):
    transformers = pytest.importorskip("transformers")
    cfg = tiny_config(tie_embeddings=tie, n_kv_head=n_kv_head, rope_theta=500.0)
    model = built_model(cfg)
    save_pretrained(model, tmp_path, eos_token_id=0)
    hf, info = transformers.AutoModelForCausalLM.from_pretrained(tmp_path, output_loading_info=True)
    assert not any(info[key] for key in ("missing_keys", "unexpected_keys", "mismatched_keys"))
    hf.eval()
    ids = random_ids(cfg, length=cfg.context_length)
    with torch.no_grad():
        ours, theirs = model(ids).logits, hf(ids).logits
    assert torch.allclose(ours, theirs, atol=1e-4), (ours - theirs).abs().max()
    tied_in_hf = hf.lm_head.weight.data_ptr() == hf.model.embed_tokens.weight.data_ptr()
    assert tied_in_hf == tie


def test_save_load_roundtrip_is_exact(tmp_path):
    model = built_model(tiny_config(tie_embeddings=False, n_kv_head=2))
    save_pretrained(model, tmp_path)
    loaded = load_pretrained(tmp_path, dropout=0.1)
    assert loaded.config.dropout == 0.1 and loaded.config.n_kv_head == 2
    for (name, ours), (_, theirs) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(ours, theirs), name


def test_tied_checkpoint_stores_embedding_once_and_reties(tmp_path):
    from safetensors.torch import load_file

    model = built_model(tiny_config(tie_embeddings=True))
    save_pretrained(model, tmp_path)
    assert "lm_head.weight" not in load_file(tmp_path / "model.safetensors")
    assert json.loads((tmp_path / "config.json").read_text())["tie_word_embeddings"] is True
    loaded = load_pretrained(tmp_path)
    assert loaded.lm_head.weight is loaded.model.embed_tokens.weight


def test_load_pretrained_names_missing_files(tmp_path):
    with pytest.raises(ConfigError, match="config.json"):
        load_pretrained(tmp_path)


# --- loss contract -------------------------------------------------------------------------------

def test_loss_uses_labels_as_given_without_shifting():
    cfg = tiny_config()
    model = built_model(cfg)
    ids = random_ids(cfg)
    labels = random_ids(cfg, seed=1)
    labels[0, :5] = -100
    labels[1, -3:] = -100
    out = model(ids, labels=labels)
    expected = F.cross_entropy(out.logits.view(-1, cfg.vocab_size), labels.view(-1), ignore_index=-100)
    assert out.n_targets.item() == labels.numel() - 8
    assert out.loss_sum.dtype == torch.float32
    assert torch.allclose(out.loss_sum / out.n_targets, expected, atol=1e-6)
    assert torch.allclose(out.loss, expected, atol=1e-6)


# --- KV cache ------------------------------------------------------------------------------------

@pytest.mark.parametrize("n_kv_head", [4, 2])
def test_incremental_decoding_with_cache_matches_full_forward(n_kv_head):
    cfg = tiny_config(n_kv_head=n_kv_head)
    model = built_model(cfg)
    ids = random_ids(cfg, length=12)
    with torch.no_grad():
        full = model(ids).logits  # (B, T, V)
        cache = model.new_kv_cache(batch_size=2)
        steps = [model(ids[:, :5], kv_cache=cache).logits]  # prefill 5 tokens
        steps.append(model(ids[:, 5:8], kv_cache=cache, start_pos=5).logits)  # a 3-token chunk
        steps += [model(ids[:, t:t + 1], kv_cache=cache, start_pos=t).logits for t in range(8, 12)]
    assert torch.allclose(torch.cat(steps, dim=1), full, atol=1e-5)


def test_positions_beyond_context_are_refused():
    cfg = tiny_config()
    model = built_model(cfg)
    with pytest.raises(ValueError, match="context_length"):
        model(random_ids(cfg, length=4), start_pos=cfg.context_length - 2)


# --- parameter counts and presets ----------------------------------------------------------------

@pytest.mark.parametrize("name", list(PRESETS))
@pytest.mark.parametrize("tie", [True, False])
def test_count_parameters_matches_built_model(name, tie):
    cfg = model_config_from_preset(name, vocab_size=8192, context_length=256, tie_embeddings=tie)
    with torch.device("meta"):
        model = LunaLM(cfg)
    assert count_parameters(cfg) == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("config", [tiny_config(), tiny_config(n_kv_head=1, d_ff=100, tie_embeddings=False)])
def test_count_parameters_matches_small_models(config):
    assert count_parameters(config) == sum(p.numel() for p in LunaLM(config).parameters())


@pytest.mark.parametrize("name, vocab, low, high", [
    ("pico", 4288, 0.8e6, 0.9e6), ("nano", 4288, 1.35e6, 1.45e6),
    ("tiny", 32000, 8e6, 12e6), ("small", 32000, 40e6, 60e6), ("medium", 32000, 130e6, 170e6),
    ("gpt2", 50257, 120e6, 128e6),
])
def test_preset_sizes(name, vocab, low, high):
    assert low <= count_parameters(model_config_from_preset(name, vocab, 1024)) <= high


def test_nano_preset_is_cpu_sized():
    cfg = model_config_from_preset("nano", 8192, 256)
    assert 0.5e6 <= count_parameters(cfg, non_embedding=True) <= 1e6


def test_unknown_preset_lists_known_ones():
    with pytest.raises(ConfigError, match="nano.*tiny.*small.*medium.*gpt2"):
        model_config_from_preset("huge", 8192, 256)


def test_default_d_ff_is_swiglu_width_rounded_to_64():
    assert tiny_config(d_model=768, n_head=12).d_ff == 2048
    assert tiny_config(d_model=64).d_ff == 192


def test_flops_per_token_follows_palm_formula():
    cfg = tiny_config()
    n_matmul = count_parameters(cfg, non_embedding=True) + cfg.vocab_size * cfg.d_model
    assert flops_per_token(cfg) == 6 * n_matmul + 12 * 2 * 4 * 16 * 32
    assert LunaLM(cfg).flops_per_token(seq_len=8) == 6 * n_matmul + 12 * 2 * 4 * 16 * 8


# --- training behaviour ----------------------------------------------------------------------------

def loss_and_grads(model: LunaLM, ids, labels):
    model.zero_grad()
    out = model(ids, labels=labels)
    out.loss.backward()
    return out.loss.detach(), {name: p.grad.clone() for name, p in model.named_parameters()}


@pytest.mark.parametrize("dropout", [0.0, 0.1])
def test_activation_checkpointing_keeps_loss_and_gradients(dropout):
    plain_cfg = tiny_config(dropout=dropout, n_kv_head=2)
    plain = built_model(plain_cfg).train()
    recomputed = LunaLM(tiny_config(dropout=dropout, n_kv_head=2, activation_checkpointing=True)).train()
    recomputed.load_state_dict(plain.state_dict())
    ids, labels = random_ids(plain_cfg), random_ids(plain_cfg, seed=1)
    torch.manual_seed(7)
    loss_a, grads_a = loss_and_grads(plain, ids, labels)
    torch.manual_seed(7)
    loss_b, grads_b = loss_and_grads(recomputed, ids, labels)
    assert torch.allclose(loss_a, loss_b, atol=1e-6)
    for name, grad in grads_a.items():
        assert torch.allclose(grad, grads_b[name], atol=1e-6), name


def test_dropout_is_inactive_in_eval():
    cfg = tiny_config(dropout=0.5)
    model = built_model(cfg)
    ids = random_ids(cfg)
    with torch.no_grad():
        assert torch.equal(model(ids).logits, model(ids).logits)


def test_init_scales_residual_projections():
    cfg = model_config_from_preset("nano", 8192, 64)
    torch.manual_seed(0)
    model = LunaLM(cfg)
    expected = cfg.init_std / math.sqrt(2 * cfg.n_layer)
    assert model.model.layers[0].mlp.down_proj.weight.std().item() == pytest.approx(expected, rel=0.05)
    assert model.model.layers[0].mlp.up_proj.weight.std().item() == pytest.approx(cfg.init_std, rel=0.05)
    assert torch.equal(model.model.norm.weight, torch.ones(cfg.d_model))


@pytest.mark.parametrize("tie", [True, False])
def test_param_groups_cover_each_parameter_once(tie):
    model = LunaLM(tiny_config(tie_embeddings=tie))
    decay, no_decay = optimizer_param_groups(model, weight_decay=0.1)
    grouped = [id(p) for p in decay["params"] + no_decay["params"]]
    assert sorted(grouped) == sorted(id(p) for p in model.parameters())
    assert len(grouped) == len(set(grouped))
    assert no_decay["weight_decay"] == 0.0 and decay["weight_decay"] == 0.1
    assert all(p.dim() == 1 for p in no_decay["params"]) and all(p.dim() >= 2 for p in decay["params"])
    torch.optim.AdamW(optimizer_param_groups(model, 0.1))  # accepted as-is


# --- config validation ------------------------------------------------------------------------------

def test_invalid_config_names_every_bad_field():
    with pytest.raises(ConfigError) as excinfo:
        ModelConfig(vocab_size=0, context_length=16, n_layer=2, n_head=4, d_model=64, dropout=1.0,
                    norm_eps=0.0)
    message = str(excinfo.value)
    for field in ("vocab_size", "dropout", "norm_eps"):
        assert field in message


def test_invalid_head_layout_names_fields_and_rule():
    with pytest.raises(ConfigError) as excinfo:
        ModelConfig(vocab_size=10, context_length=16, n_layer=2, n_head=3, n_kv_head=2, d_model=64)
    message = str(excinfo.value)
    assert "d_model: must be a multiple of n_head=3" in message
    assert "n_kv_head: must divide n_head=3" in message
    with pytest.raises(ConfigError, match="head_dim"):
        ModelConfig(vocab_size=10, context_length=16, n_layer=2, n_head=4, d_model=20)


def test_unknown_override_is_config_error():
    with pytest.raises(ConfigError, match="n_heads"):
        model_config_from_preset("nano", 8192, 256, n_heads=3)


def test_bf16_attention_on_the_cpu_runs_in_fp32_and_returns_bf16():
    """CPU flash attention is 3x slower in bf16: under bf16 autocast it gets fp32 inputs and its output is
    cast back, so the result is fp32 attention of the same numbers."""
    from lunalm.model import causal_attention

    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 4, 16, 8, dtype=torch.bfloat16, requires_grad=True) for _ in range(3))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = causal_attention(q, k, v, 0, 0.0)
    expected = F.scaled_dot_product_attention(q.float(), k.float(), v.float(), is_causal=True).to(torch.bfloat16)
    assert out.dtype == torch.bfloat16 and torch.equal(out, expected)
    out.float().sum().backward()
    assert all(t.grad is not None and t.grad.dtype == torch.bfloat16 for t in (q, k, v))
    cached = causal_attention(q[:, :, -1:], k, v, 15, 0.0)  # decoding against a cache takes the same path
    assert torch.equal(cached, expected[:, :, -1:])


@pytest.mark.parametrize("n_kv_head", [4, 2])
def test_fused_projections_match_the_layers_one_by_one(n_kv_head):
    """q/k/v and gate/up run as one matmul against stacked weights: same outputs and gradients as the
    separate layers, in float32 and under bf16 autocast."""
    cfg = tiny_config(n_kv_head=n_kv_head)
    model = built_model(cfg)
    x = torch.randn(4, 128, cfg.d_model, generator=torch.Generator().manual_seed(1))  # rows >= outputs: stacked
    for module, names in ((model.model.layers[0].self_attn, ("q_proj", "k_proj", "v_proj")),
                          (model.model.layers[0].mlp, ("gate_proj", "up_proj"))):
        layers = tuple(getattr(module, name) for name in names)
        assert 4 * 128 >= sum(layer.out_features for layer in layers)
        for autocast in (False, True):
            grads = []
            for fused in (True, False):
                module.zero_grad()
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                    outs = fused_linear(x, layers) if fused else tuple(layer(x) for layer in layers)
                sum((out.float() * (i + 1)).sum() for i, out in enumerate(outs)).backward()
                grads.append(([out.float() for out in outs], [layer.weight.grad.clone() for layer in layers]))
            (fused_outs, fused_grads), (plain_outs, plain_grads) = grads
            tol = dict(rtol=1e-2, atol=1e-2) if autocast else dict(rtol=1e-5, atol=1e-6)
            assert [out.shape for out in fused_outs] == [out.shape for out in plain_outs]
            for a, b in zip(fused_outs + fused_grads, plain_outs + plain_grads):
                torch.testing.assert_close(a, b, **tol)


def test_fused_projections_leave_other_layers_to_themselves():
    """A layer that is not a plain bias-free nn.Linear (LoRA, quantized, biased) is called as itself."""
    calls = []

    class Wrapped(torch.nn.Linear):
        def forward(self, x):
            calls.append(self.out_features)
            return super().forward(x)

    torch.manual_seed(0)
    plain, wrapped = torch.nn.Linear(8, 4, bias=False), Wrapped(8, 6, bias=False)
    x = torch.randn(12, 8)  # enough rows to stack plain layers: only the wrapped one keeps them apart
    a, b = fused_linear(x, (plain, wrapped))
    assert calls == [6] and a.shape == (12, 4) and b.shape == (12, 6)
    torch.testing.assert_close(a, plain(x))
    torch.testing.assert_close(b, x @ wrapped.weight.T)


def test_fused_projections_skip_stacking_for_fewer_rows_than_outputs(monkeypatch):
    """Decoding a token (1 row) reads the weights once per layer instead of copying them into a stack."""
    stacked = []
    real_cat = torch.cat

    def counting_cat(tensors, *args, **kwargs):
        stacked.append(len(tensors))
        return real_cat(tensors, *args, **kwargs)

    monkeypatch.setattr(torch, "cat", counting_cat)
    torch.manual_seed(0)
    layers = (torch.nn.Linear(8, 4, bias=False), torch.nn.Linear(8, 4, bias=False))
    few, many = torch.randn(1, 7, 8), torch.randn(1, 8, 8)  # 7 rows < 4 + 4 outputs <= 8 rows
    for x, expected in ((few, []), (many, [2])):
        stacked.clear()
        outs = fused_linear(x, layers)
        assert stacked == expected
        for out, layer in zip(outs, layers):
            torch.testing.assert_close(out, layer(x))
