"""``--optimizer muon``: the orthogonalisation, the update rule, which parameters each half gets, the
combined state in checkpoints (exact resume) and the refusals."""

import io
import math

import pytest
import torch
from runhelp import assert_same_weights, tiny_config, train_losses, write_corpus

from lunalm.config import FinetuneConfig, RunConfig, TrainConfig
from lunalm.errors import ConfigError
from lunalm.model import LunaLM, ModelConfig
from lunalm.train import state_dicts
from lunalm.train.device import resolve
from lunalm.train.loop import Faults, SilentUI
from lunalm.train.optim import (RMS_MATCH, Muon, MuonAdamW, orthogonalize, orthogonalize_together,
                                same_shape_batches)
from lunalm.train.session import _check_compatible, resume, start
from lunalm.train.setup import build_optimizer

BLOCK_MATRICES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@pytest.mark.parametrize("shape", [(48, 48), (24, 80), (80, 24)])
def test_orthogonalize_keeps_the_shape_and_pushes_singular_values_towards_one(shape):
    generator = torch.Generator().manual_seed(0)
    k = min(shape)
    u, _ = torch.linalg.qr(torch.randn(shape[0], k, generator=generator))
    v, _ = torch.linalg.qr(torch.randn(shape[1], k, generator=generator))
    singular_in = torch.logspace(-1, 1, k)  # a 100x spread of singular values
    matrix = u @ torch.diag(singular_in) @ v.T
    out = orthogonalize(matrix)
    assert out.shape == matrix.shape and out.dtype == matrix.dtype
    singular = torch.linalg.svdvals(out)
    assert singular.min() > 0.6 and singular.max() < 1.25, singular
    cosine = (out * (u @ v.T)).sum() / (out.norm() * (u @ v.T).norm())
    assert cosine > 0.95  # the exact orthogonal factor U V^T, approximately


def test_matrices_of_one_shape_are_orthogonalised_together_as_each_alone():
    generator = torch.Generator().manual_seed(3)
    matrices = [torch.randn(shape, generator=generator) for shape in [(24, 80), (80, 24), (24, 80)]]
    together = orthogonalize_together(matrices)
    for alone, batched in zip(matrices, together):
        assert batched.shape == alone.shape
        assert torch.allclose(batched, orthogonalize(alone), atol=1e-5)
    in_bf16 = orthogonalize_together(matrices, torch.bfloat16)  # the iteration in bf16, the result in fp32
    assert all(b.dtype == torch.float32 and (b - a).norm() / a.norm() < 0.05 for a, b in zip(together, in_bf16))


def test_same_shape_batches_group_both_orientations_and_cap_the_elements():
    q, k, up, down = torch.zeros(8, 8), torch.zeros(8, 8), torch.zeros(8, 24), torch.zeros(24, 8)
    batches = same_shape_batches([q, up, k, down])
    assert [[id(p) for p in b] for b in batches] == [[id(q), id(k)], [id(up), id(down)]]
    capped = same_shape_batches([q, up, k, down], max_elements=200)  # 8 x 24 = 192: one such matrix a batch
    assert [len(b) for b in capped] == [2, 1, 1]
    assert [len(b) for b in same_shape_batches([up, down], max_elements=10)] == [1, 1]  # never empty


def test_muon_step_is_nesterov_momentum_orthogonalised_with_decay_and_rms_matching():
    torch.manual_seed(0)
    weight = torch.nn.Parameter(torch.randn(16, 40))
    start_value, grads = weight.detach().clone(), [torch.randn(16, 40) for _ in range(2)]
    optimizer = Muon([weight], lr=0.01, weight_decay=0.1, momentum=0.9)
    expected, buffer = start_value.clone(), torch.zeros(16, 40)
    for grad in grads:
        weight.grad = grad.clone()
        optimizer.step()
        buffer = 0.9 * buffer + grad
        update = orthogonalize(grad + 0.9 * buffer)
        expected = expected * (1 - 0.01 * 0.1) - 0.01 * RMS_MATCH * math.sqrt(40) * update
    assert torch.allclose(weight.detach(), expected, atol=1e-6)
    assert torch.equal(optimizer.state[weight]["momentum_buffer"], buffer)


@pytest.mark.skipif(not hasattr(torch.optim, "Muon"), reason="torch.optim.Muon arrived in torch 2.9")
def test_muon_matches_torchs_muon_with_adamw_rms_matching():
    """An independent implementation (bfloat16 Newton-Schulz, hence the tolerance) agrees."""
    torch.manual_seed(1)
    ours, theirs = (torch.nn.Parameter(torch.randn(32, 64)) for _ in range(2))
    theirs.data.copy_(ours.data)
    mine = Muon([ours], lr=0.02, weight_decay=0.1, momentum=0.95)
    reference = torch.optim.Muon([theirs], lr=0.02, weight_decay=0.1, momentum=0.95,
                                 adjust_lr_fn="match_rms_adamw")
    before = ours.detach().clone()
    for _ in range(3):
        grad = torch.randn(32, 64)
        ours.grad, theirs.grad = grad.clone(), grad.clone()
        mine.step()
        reference.step()
    ours_moved, theirs_moved = ours.detach() - before, theirs.detach() - before
    assert (ours_moved - theirs_moved).norm() / theirs_moved.norm() < 0.03


def tiny(tie: bool) -> LunaLM:
    torch.manual_seed(0)
    return LunaLM(ModelConfig(vocab_size=64, context_length=16, n_layer=2, n_head=2, d_model=32,
                              tie_embeddings=tie))


@pytest.mark.parametrize("tie", [True, False])
def test_muon_gets_the_block_matrices_and_adamw_the_rest_each_parameter_once(tie):
    model = tiny(tie)
    optimizer = build_optimizer(model, TrainConfig(optimizer="muon", weight_decay=0.1), resolve("cpu", "fp32"))
    assert isinstance(optimizer, MuonAdamW)
    muon, adamw = optimizer.parts
    names = {id(p): name for name, p in model.named_parameters()}
    muon_names = {names[id(p)] for g in muon.param_groups for p in g["params"]}
    assert muon_names == {name for name in names.values() if name.split(".")[-2] in BLOCK_MATRICES}
    assert len(muon_names) == 2 * 7
    decayed = {names[id(p)] for g in adamw.param_groups if g["weight_decay"] == 0.1 for p in g["params"]}
    plain = {names[id(p)] for g in adamw.param_groups if g["weight_decay"] == 0.0 for p in g["params"]}
    assert decayed == {"model.embed_tokens.weight"} | (set() if tie else {"lm_head.weight"})
    assert plain and all("norm" in name for name in plain)
    assert sorted(muon_names | decayed | plain) == sorted(names.values())  # every parameter, once
    assert optimizer.param_groups == muon.param_groups + adamw.param_groups  # what the loop sets lr on


def test_muon_steps_both_halves_at_its_lr_scale_and_the_groups_keep_the_loops_lr():
    from lunalm.config import MUON_LR_SCALE

    hw = resolve("cpu", "fp32")
    scaled_model, plain_model = tiny(True), tiny(True)
    scaled = build_optimizer(scaled_model, TrainConfig(optimizer="muon", weight_decay=0.1), hw)
    assert scaled.lr_scale == MUON_LR_SCALE == 3.0
    plain = MuonAdamW(*build_optimizer(plain_model, TrainConfig(optimizer="muon", weight_decay=0.1), hw).parts)
    assert plain.lr_scale == 1.0
    train_steps(scaled_model, scaled, 3, seed=0, lr=0.01)
    train_steps(plain_model, plain, 3, seed=0, lr=0.01 * MUON_LR_SCALE)  # the same product, so the same bits
    for (name, a), b in zip(scaled_model.state_dict().items(), plain_model.state_dict().values()):
        assert torch.equal(a, b), name
    assert {g["lr"] for g in scaled.param_groups} == {0.01}  # what the loop set (and logs), not the scaled value
    assert scaled.state_dict()["param_groups"][0]["lr"] == 0.01  # a checkpoint resumes at the loop's lr


def test_hugging_face_models_keep_embeddings_and_untied_heads_out_of_muon():
    import transformers as tf

    from lunalm.train.optim import muon_parameters

    llama = tf.LlamaForCausalLM(tf.LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64,
                                               num_hidden_layers=1, num_attention_heads=2,
                                               tie_word_embeddings=False))
    gpt2 = tf.GPT2LMHeadModel(tf.GPT2Config(vocab_size=64, n_positions=16, n_embd=32, n_layer=1, n_head=2))
    for model, expected in ((llama, {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}),
                            (gpt2, {"c_attn", "c_proj", "c_fc"})):  # GPT-2's Conv1D matrices, not wte/wpe
        chosen = muon_parameters(model)
        names = {name.split(".")[-2] for name, p in model.named_parameters() if id(p) in chosen}
        assert names == expected, names


def train_steps(model, optimizer, steps: int, seed: int, lr: float = 0.01) -> None:
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # dropout
    for _ in range(steps):
        ids = torch.randint(0, 64, (4, 16), generator=generator)
        model(ids, ids).loss.backward()
        for group in optimizer.param_groups:
            group["lr"] = lr
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)


def test_combined_state_round_trips_through_name_keyed_checkpoints():
    hw, train = resolve("cpu", "fp32"), TrainConfig(optimizer="muon")
    model = tiny(True)
    optimizer = build_optimizer(model, train, hw)
    train_steps(model, optimizer, 3, seed=0)
    buffer = io.BytesIO()  # through bytes as a checkpoint goes (and no tensor shared with the original)
    torch.save(state_dicts.to_named(optimizer, model), buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)
    assert any("momentum_buffer" in v for v in saved["state"].values())  # Muon's
    assert any("exp_avg_sq" in v for v in saved["state"].values())  # AdamW's
    copy = tiny(True)
    copy.load_state_dict(model.state_dict())
    restored = build_optimizer(copy, train, hw)
    restored.load_state_dict(state_dicts.from_named(saved, restored, copy))
    train_steps(model, optimizer, 2, seed=1, lr=0.02)  # a new lr must reach both halves after loading
    train_steps(copy, restored, 2, seed=1, lr=0.02)
    for (name, a), b in zip(model.state_dict().items(), copy.state_dict().values()):
        assert torch.equal(a, b), name


def test_crash_then_resume_with_muon_is_bit_exact(tmp_path):
    corpus = write_corpus(tmp_path / "corpus")
    fields = {"max_steps": 8, "checkpoint_every": 3, "optimizer": "muon"}
    reference, status = start(tiny_config(tmp_path, corpus, name="reference", **fields), SilentUI(), progress=False)
    assert status == "completed"
    with pytest.raises(RuntimeError, match="injected crash"):
        start(tiny_config(tmp_path, corpus, name="crashed", **fields), SilentUI(), Faults(crash=(0, 5)),
              progress=False)
    run, status = resume(tmp_path / "runs" / "crashed", SilentUI(), progress=False)
    assert status == "completed" and run.state.step == 8
    assert_same_weights(run.run_dir / "checkpoints" / "final", reference.run_dir / "checkpoints" / "final")
    assert train_losses(run.run_dir)[-3:] == train_losses(reference.run_dir)[-3:]


def test_muon_is_refused_with_fsdp_lora_and_on_resume_of_an_adamw_run():
    with pytest.raises(ConfigError, match="train.optimizer.*FSDP"):
        TrainConfig(optimizer="muon", shard=True)
    with pytest.raises(ConfigError, match="train.optimizer"):
        TrainConfig(optimizer="sgd")
    with pytest.raises(ConfigError, match="LoRA"):
        RunConfig(train=TrainConfig(optimizer="muon"), finetune=FinetuneConfig(base="x", lora=True))
    with pytest.raises(ConfigError, match="train.optimizer: 'adamw' -> 'muon'"):
        _check_compatible(RunConfig(train=TrainConfig(optimizer="adamw")), RunConfig(train=TrainConfig(optimizer="muon")),
                          SilentUI())


def test_cli_flag_reaches_the_config_and_auto_is_the_default(tmp_path):
    from lunalm.cli import build_parser
    from lunalm.cli.train import build_config

    args = build_parser().parse_args(["train", str(tmp_path), "--optimizer", "muon"])
    assert build_config(args).train.optimizer == "muon"
    assert build_config(build_parser().parse_args(["train", str(tmp_path)])).train.optimizer == "auto"
    args = build_parser().parse_args(["train", str(tmp_path), "--optimizer", "adamw"])
    assert build_config(args).train.optimizer == "adamw"


def test_auto_is_muon_for_a_short_run_from_scratch_on_a_cpu_else_adamw_and_config_yaml_records_it(tmp_path):
    from lunalm.config import MUON_MAX_PASSES, resolve_optimizer

    assert TrainConfig().optimizer == RunConfig().train.optimizer == "auto"
    assert resolve_optimizer(TrainConfig(), "cpu", passes=MUON_MAX_PASSES) == "muon"
    assert resolve_optimizer(TrainConfig(), "cpu", passes=MUON_MAX_PASSES + 0.5) == "adamw"  # text repeated more
    assert resolve_optimizer(TrainConfig(), "cpu") == "adamw"  # passes not known
    assert resolve_optimizer(TrainConfig(), "cuda", passes=1) == resolve_optimizer(TrainConfig(), "mps", passes=1) == "adamw"
    assert resolve_optimizer(TrainConfig(), "cpu", from_scratch=False, passes=1) == "adamw"  # fine-tunes
    assert resolve_optimizer(TrainConfig(shard=True), "cpu", passes=1) == "adamw"
    assert resolve_optimizer(TrainConfig(optimizer="muon"), "cuda") == "muon"
    assert resolve_optimizer(TrainConfig(optimizer="adamw"), "cpu", passes=1) == "adamw"
    RunConfig(finetune=FinetuneConfig(base="x", lora=True))  # auto with LoRA is fine (it becomes adamw)
    model = LunaLM(ModelConfig(vocab_size=64, context_length=16, n_layer=2, n_head=2, d_model=32))
    hw = resolve("cpu", "fp32")
    assert isinstance(build_optimizer(model, TrainConfig(), hw, passes=2), MuonAdamW)
    assert isinstance(build_optimizer(model, TrainConfig(), hw), torch.optim.AdamW)
    assert isinstance(build_optimizer(model, TrainConfig(), hw, from_scratch=False, passes=2), torch.optim.AdamW)
    corpus = write_corpus(tmp_path / "corpus")
    for asked, steps, ran in (("auto", 2, "muon"), ("adamw", 2, "adamw"), ("auto", 400, "adamw")):
        run, status = start(tiny_config(tmp_path, corpus, max_steps=steps, optimizer=asked, name=f"{asked}-{steps}"),
                            SilentUI(), progress=False)
        assert (run.passes <= MUON_MAX_PASSES) == (steps == 2)
        assert run.config.train.optimizer == ran
        assert f"optimizer: {ran}" in (run.run_dir / "config.yaml").read_text(encoding="utf-8")  # what ran
        assert isinstance(run.optimizer, MuonAdamW) == (ran == "muon")


@pytest.mark.parametrize("step_seconds, muon", [(0.05, True), (0.002, False)])
def test_a_time_budget_chooses_the_optimizer_for_the_steps_it_timed(tmp_path, monkeypatch, step_seconds, muon):
    """``train.minutes`` with auto: built for a count not known yet (adamw), chosen again once the steps
    are timed (the timing is fixed here, so the passes are: ~2 and ~50); the run says so and records it."""
    from lunalm.config import MUON_MAX_PASSES
    from lunalm.train import budget

    monkeypatch.setattr(budget, "seconds_per_step", lambda run: step_seconds)
    # no re-timing by the clock halfway: on a loaded machine it would count fewer steps (fewer passes) than
    # the fixed timing above, and this test is about the choice made from the timing
    monkeypatch.setattr(budget.Retime, "plan", classmethod(lambda cls, *args: None))
    messages = []

    class Recording(SilentUI):
        def message(self, text):
            messages.append(text)

    run, status = start(tiny_config(tmp_path, write_corpus(tmp_path / "corpus"), minutes=0.02, optimizer="auto"),
                        Recording(), progress=False)
    assert (run.passes <= MUON_MAX_PASSES) == muon and isinstance(run.optimizer, MuonAdamW) == muon
    assert run.config.train.optimizer == ("muon" if muon else "adamw")
    said = [m for m in messages if m.startswith("optimizer Muon")]
    assert bool(said) == muon, messages
    if muon:
        assert run.optimizer.lr_scale == 3.0 and f"at 3x the lr (peak {run.peak_lr * 3:.3g})" in said[0]
