"""Numbers the golden-loss test alone would not pin down: gradient clipping, the 10 % learning-rate floor
as the loop applies it, target tokens counted without padding, and exact resume with dropout on."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from runhelp import assert_same_weights, tiny_config, train_losses, write_corpus

from lunalm.config import TrainConfig
from lunalm.train.loop import Faults, SilentUI, _clip, forward_backward, train_loop
from lunalm.train.metrics import read_jsonl
from lunalm.train.prepare import prepare_data
from lunalm.train.schedule import lr_at
from lunalm.train.session import resume, start
from lunalm.train.setup import build_run


@pytest.fixture
def corpus(tmp_path):
    return write_corpus(tmp_path / "corpus")


def built(tmp_path, corpus, **train):
    config = tiny_config(tmp_path, corpus, **train)
    data = prepare_data(config, progress=False, log=lambda text: None)
    return build_run(config, tmp_path / "runs" / "run", data)


def gradient_norm(run) -> float:
    grads = [p.grad for p in run.model.parameters() if p.grad is not None]
    return float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads])))


@pytest.mark.parametrize("clip", [1e-3, 0.0])
def test_clipping_scales_the_global_norm_to_the_limit_and_reports_the_norm_before(tmp_path, corpus, clip):
    run = built(tmp_path, corpus, grad_clip=clip)
    inputs, labels = run.sampler.next_batch(run.world_batch)
    forward_backward(run, inputs, labels, Faults())
    before = gradient_norm(run)
    grads = [p.grad.clone() for p in run.model.parameters()]
    assert before > 1e-2  # a fresh model's gradient is far above the 1e-3 limit
    reported = _clip(run)
    assert reported == pytest.approx(before, rel=1e-5)
    if clip:
        assert gradient_norm(run) == pytest.approx(clip, rel=1e-4)
        scale = clip / (before + 1e-6)  # torch's clip_grad_norm_: max_norm / (norm + 1e-6)
        for old, p in zip(grads, run.model.parameters()):
            torch.testing.assert_close(p.grad, old * scale, rtol=1e-5, atol=0)
    else:  # 0 = off: gradients untouched, bit for bit
        assert all(torch.equal(old, p.grad) for old, p in zip(grads, run.model.parameters()))


def test_the_loop_applies_warmup_cosine_and_the_ten_percent_floor(tmp_path, corpus):
    assert TrainConfig().min_lr_ratio == 0.1
    run, status = start(tiny_config(tmp_path, corpus, max_steps=12, lr=2e-3, warmup_steps=2, schedule="cosine"),
                        SilentUI(), progress=False)
    assert status == "completed"
    logged = {r["step"]: r["lr"] for r in read_jsonl(run.run_dir / "metrics.jsonl") if r["kind"] == "train"}
    expected = {s + 1: lr_at(s, peak=2e-3, warmup=2, total=12, min_ratio=0.1) for s in range(12)}
    assert logged == expected  # record of step s+1 carries the lr step s was taken with
    assert logged[1] == 1e-3 and logged[2] == 2e-3
    assert logged[12] == pytest.approx(2e-4 + 0.5 * 1.8e-3 * (1 + math.cos(math.pi * 9 / 10)), rel=1e-12)
    assert min(logged.values()) >= 2e-4  # never below 10 % of the peak
    group_lrs = {group["lr"] for group in run.optimizer.param_groups}
    assert group_lrs == {logged[12]}


def test_the_loop_holds_the_peak_then_decays_linearly_by_default(tmp_path, corpus):
    run, status = start(tiny_config(tmp_path, corpus, max_steps=20, lr=2e-3, warmup_steps=2), SilentUI(),
                        progress=False)
    assert status == "completed" and run.config.train.schedule == "wsd"
    logged = {r["step"]: r["lr"] for r in read_jsonl(run.run_dir / "metrics.jsonl") if r["kind"] == "train"}
    assert logged[1] == 1e-3 and all(logged[s + 1] == 2e-3 for s in range(1, 15))  # held through step 14
    for s in range(14, 20):  # the last 30 % (6 steps): equal decrements towards 2e-4, reached after step 19
        assert logged[s + 1] == pytest.approx(2e-3 - 1.8e-3 * (s - 14) / 6, rel=1e-12)
    assert logged == {s + 1: lr_at(s, peak=2e-3, warmup=2, total=20, min_ratio=0.1, decay_share=0.3)
                      for s in range(20)}


class PaddedSampler:
    """Real windows with the last ``pad`` labels of every row set to -100, as right-padded instruction
    batches are; remembers how many labels each step really scored."""

    def __init__(self, inner, pad: int):
        self.inner, self.pad, self.scored = inner, pad, []

    def next_batch(self, n: int):
        inputs, labels = self.inner.next_batch(n)
        labels = labels.clone()
        labels[: n // 2, -self.pad:] = -100  # half the rows padded: uneven counts across micro-batches
        self.scored.append(int((labels != -100).sum()))
        return inputs, labels

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_tokens_seen_counts_scored_targets_never_padding(tmp_path, corpus):
    run = built(tmp_path, corpus, max_steps=5, micro_batch_size=2, grad_accum_steps=2)
    run.sampler = PaddedSampler(run.sampler, pad=7)
    assert train_loop(run, SilentUI()) == "completed"
    window = run.config.data.context_length
    assert run.state.tokens_seen == sum(run.sampler.scored) == 5 * (4 * window - 2 * 7)
    records = [r for r in read_jsonl(run.run_dir / "metrics.jsonl") if r["kind"] == "train"]
    assert records and all(r["tokens_per_s"] > 0 for r in records)


def test_resume_is_bit_exact_with_dropout(tmp_path, corpus):
    """Dropout draws from torch's RNG every step: resume must restore it, or the masks (and weights) differ."""
    def config(name):
        base = tiny_config(tmp_path, corpus, name=name, max_steps=8, checkpoint_every=4)
        return dataclasses.replace(base, model=dataclasses.replace(base.model, dropout=0.2))

    reference, status = start(config("reference"), SilentUI(), progress=False)
    assert status == "completed"

    class StopAtFour(SilentUI):
        def progress(self, run, record):
            if run.state.step == 4:
                run.stop_reason = "interrupted"  # as SIGTERM does: checkpoint, then stop

    stopped, status = start(config("stopped"), StopAtFour(), progress=False)
    assert status == "interrupted" and stopped.state.step == 4
    resumed, status = resume(stopped.run_dir, SilentUI(), progress=False)
    assert status == "completed"
    assert train_losses(resumed.run_dir) == train_losses(reference.run_dir)
    assert_same_weights(resumed.run_dir / "checkpoints" / "final", reference.run_dir / "checkpoints" / "final")
    plain = tiny_config(tmp_path, corpus, name="no-dropout", max_steps=8, checkpoint_every=4)
    other, _ = start(plain, SilentUI(), progress=False)
    assert train_losses(other.run_dir) != train_losses(reference.run_dir)  # dropout was really on


def test_a_bf16_run_on_the_cpu_learns_and_resumes_bit_exactly(tmp_path, corpus):
    """CPUs with AVX-512 BF16 train in bf16 by default: the same guarantees as fp32 (the weights stay fp32)."""
    def config(name):
        return tiny_config(tmp_path, corpus, name=name, max_steps=8, checkpoint_every=4, precision="bf16")

    reference, status = start(config("reference"), SilentUI(), progress=False)
    assert status == "completed" and reference.hw.precision == "bf16"
    assert all(p.dtype == torch.float32 for p in reference.model.parameters())
    losses = train_losses(reference.run_dir)
    assert losses[-1] < losses[0]

    class StopAtFour(SilentUI):
        def progress(self, run, record):
            if run.state.step == 4:
                run.stop_reason = "interrupted"

    stopped, _ = start(config("stopped"), StopAtFour(), progress=False)
    resumed, status = resume(stopped.run_dir, SilentUI(), progress=False)
    assert status == "completed" and train_losses(resumed.run_dir) == losses
    assert_same_weights(resumed.run_dir / "checkpoints" / "final", reference.run_dir / "checkpoints" / "final")
    fp32, _ = start(tiny_config(tmp_path, corpus, name="fp32", max_steps=8, precision="fp32"), SilentUI(),
                    progress=False)
    assert train_losses(fp32.run_dir) != losses  # bf16 was really on
