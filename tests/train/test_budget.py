"""The time budget: `train.minutes` becomes a step count measured at the start, written to config.yaml,
so the schedule is fixed and `luna resume` continues it exactly."""

from __future__ import annotations

import math
import shutil

import pytest
import yaml

from lunalm.train import budget
from lunalm.train.loop import SilentUI
from lunalm.train.session import resume, start
from tests.train.runhelp import assert_same_weights, tiny_config, write_corpus


def test_steps_for_minutes_keeps_a_share_for_evaluation():
    assert budget.steps_for_minutes(1.0, 0.5) == 96  # 60 s * 0.8 / 0.5 s
    assert budget.steps_for_minutes(0.001, 10.0) == 1  # never zero steps


class Messages(SilentUI):
    def __init__(self):
        self.lines = []

    def message(self, text):
        self.lines.append(text)


def test_minutes_size_the_run_from_the_measured_step_time_and_resume_exactly(tmp_path, monkeypatch):
    corpus = write_corpus(tmp_path / "corpus")
    monkeypatch.setattr(budget, "seconds_per_step", lambda run: 0.8)  # this machine, as measured
    ui = Messages()
    run, status = start(tiny_config(tmp_path, corpus, name="timed", minutes=0.2, checkpoint_every=4), ui,
                        progress=False)
    assert status == "completed" and run.total_steps == run.state.step == 12  # 12 s * 0.8 / 0.8 s
    assert run.warmup_steps == 1  # 5 % of the timed steps, not of the placeholder
    saved = yaml.safe_load((run.run_dir / "config.yaml").read_text(encoding="utf-8"))["train"]
    assert saved["minutes"] == 0.2 and saved["max_steps"] == 12 and saved["warmup_steps"] == 1
    assert any(line.startswith("time budget 12 s: 12 steps at 0.80 s per step") for line in ui.lines)
    # resume from step 8 re-measures nothing (a slower machine now would not change the schedule)
    final = run.run_dir / "checkpoints" / "final"
    shutil.copytree(final, tmp_path / "first-final")
    shutil.rmtree(run.run_dir / "checkpoints" / "step-00000012", ignore_errors=True)
    shutil.rmtree(final)
    monkeypatch.setattr(budget, "seconds_per_step", lambda run: pytest.fail("resume must not re-time steps"))
    resumed, status = resume(run.run_dir, SilentUI(), progress=False)
    assert status == "completed" and resumed.total_steps == 12
    assert_same_weights(tmp_path / "first-final", resumed.run_dir / "checkpoints" / "final")


def test_a_new_run_fixes_its_step_count_again_from_the_pace_it_kept_and_resumes_exactly(tmp_path, monkeypatch):
    """Warmup-stable-decay holds the lr flat until the decay, so the count a time budget estimated can be
    corrected mid-run from the real pace (evaluation and checkpoints included) without changing any
    learning rate already used; the new count goes to config.yaml, and a resume follows it exactly."""
    import json
    import math

    from lunalm.train.schedule import lr_at

    corpus = write_corpus(tmp_path / "corpus")
    monkeypatch.setattr(budget, "seconds_per_step", lambda run: 0.01)  # 3 s * 0.8 / 0.01 s: 240 steps estimated
    calls = iter(range(10**6))  # the plan (call 0), then one call after each step

    def ticks() -> float:  # 100.0 at the plan, 100.5 at step 48 (20 % of 240), 101.22 at step 120 (50 %)
        step = next(calls)
        return 100.0 + 0.5 * step / 48 if step <= 48 else 100.5 + (step - 48) * 0.01

    monkeypatch.setattr(budget, "clock", ticks)
    left = []  # the seconds of the budget still left when the plan was made
    plan = budget.Retime.plan.__func__

    def recording_plan(cls, cap, seconds_left, estimated_steps):
        left.append(seconds_left)
        return plan(cls, cap, seconds_left, estimated_steps)

    monkeypatch.setattr(budget.Retime, "plan", classmethod(recording_plan))
    config = tiny_config(tmp_path, corpus, name="retimed", minutes=0.05, checkpoint_every=100, eval_every=50)
    run, status = start(config, SilentUI(), progress=False)
    expected = 120 + math.floor((100.0 + left[0] - 101.22) / ((101.22 - 100.5) / 72))
    assert 0 < left[0] <= 3 and expected > 240  # the pace was faster than the timed passes said
    assert status == "completed" and run.state.step == run.total_steps == expected
    saved = yaml.safe_load((run.run_dir / "config.yaml").read_text(encoding="utf-8"))["train"]
    assert (saved["max_steps"], saved["warmup_steps"]) == (expected, 12)  # warmup stays 5 % of the estimate
    events = [json.loads(line) for line in (run.run_dir / "events.jsonl").read_text(encoding="utf-8").splitlines()]
    retimed = [e for e in events if e["kind"] == "retime"]
    assert [(e["step"], e["total_steps"], e["estimated_steps"]) for e in retimed] == [(120, expected, 240)]
    lrs = {r["step"]: r["lr"] for r in map(json.loads, (run.run_dir / "metrics.jsonl").open()) if r["kind"] == "train"}
    schedule = dict(peak=run.peak_lr, warmup=12, min_ratio=run.config.train.min_lr_ratio, decay_share=0.3)
    for step in range(1, 121):  # the lrs used before the count changed are the new schedule's too
        assert lrs[step] == lr_at(step - 1, total=240, **schedule) == lr_at(step - 1, total=expected, **schedule)
    assert lrs[expected] == lr_at(expected - 1, total=expected, **schedule)  # the decay ends on the new count
    assert run.average.steps == 240  # the average's horizon is the estimate's, before and after
    # resuming from step 100, before the count changed, continues the re-timed run bit for bit
    final = run.run_dir / "checkpoints" / "final"
    shutil.copytree(final, tmp_path / "first-final")
    for later in run.run_dir.glob("checkpoints/step-*"):
        if later.name != "step-00000100":
            shutil.rmtree(later)
    shutil.rmtree(final)
    monkeypatch.setattr(budget, "clock", lambda: pytest.fail("a resumed run keeps the count in config.yaml"))
    resumed, status = resume(run.run_dir, SilentUI(), progress=False)
    assert status == "completed" and resumed.state.step == expected
    assert_same_weights(tmp_path / "first-final", resumed.run_dir / "checkpoints" / "final")


def test_seconds_per_step_leaves_the_sampler_and_weights_alone(tmp_path):
    import torch

    from lunalm.train.prepare import prepare_data
    from lunalm.train.setup import build_run

    config = tiny_config(tmp_path, write_corpus(tmp_path / "corpus"), max_steps=5)
    run = build_run(config, tmp_path / "run", prepare_data(config, progress=False, log=lambda m: None))
    position = run.sampler.state_dict()
    weights = {k: v.clone() for k, v in run.model.state_dict().items()}
    assert budget.seconds_per_step(run) > 0
    assert run.sampler.state_dict() == position
    assert all(torch.equal(weights[k], v) for k, v in run.model.state_dict().items())
    assert all(p.grad is None for p in run.model.parameters())


def test_luna_train_with_no_budget_trains_for_the_default_minutes(tmp_path):
    from lunalm.cli import DEFAULT_TRAIN_MINUTES, build_parser
    from lunalm.cli.train import build_config

    parser = build_parser()
    assert build_config(parser.parse_args(["train"])).train.minutes == DEFAULT_TRAIN_MINUTES
    assert build_config(parser.parse_args(["train", "--minutes", "2"])).train.minutes == 2
    explicit = build_config(parser.parse_args(["train", "--max-steps", "50"])).train
    assert explicit.minutes is None and explicit.max_steps == 50
    on_cpu = build_config(parser.parse_args(["train", "--device", "cpu"]))  # short windows, small batches
    assert (on_cpu.data.context_length, on_cpu.train.micro_batch_size) == (128, 16)
    chosen = build_config(parser.parse_args(["train", "--device", "cpu", "--context", "64", "--batch-size", "4"]))
    assert (chosen.data.context_length, chosen.train.micro_batch_size) == (64, 4)
    on_gpu = build_config(parser.parse_args(["train", "--device", "cuda"]))
    assert (on_gpu.data.context_length, on_gpu.train.micro_batch_size) == (256, 16)
    assert on_cpu.train.weight_decay is None and explicit.weight_decay is None  # the plan's rule, once timed
    plan = tmp_path / "plan.yaml"
    plan.write_text("train:\n  minutes: 1\n", encoding="utf-8")
    assert build_config(parser.parse_args(["train", "--config", str(plan)])).train.weight_decay == 0.1  # the file's


def thirty_documents(folder):
    """30 short documents of the conftest's words: a validation split of several documents."""
    import random

    from tests.conftest import TURKISH

    folder.mkdir()
    words = " ".join(TURKISH).split()
    for index in range(30):
        (folder / f"d{index}.txt").write_text(" ".join(random.Random(index).sample(words, 60)), encoding="utf-8")
    return folder


def test_summary_scores_the_validation_documents_beside_ppmd(tmp_path):
    import json
    import math

    corpus = thirty_documents(tmp_path / "corpus")
    run, status = start(tiny_config(tmp_path, corpus, max_steps=4, eval_every=2), SilentUI(), progress=False)
    heldout = json.loads((run.run_dir / "summary.json").read_text(encoding="utf-8"))["heldout"]
    shards = run.data.shards
    assert heldout["documents"] == shards.n_documents("val") > 0
    assert heldout["tokens"] == shards.n_tokens("val") - heldout["documents"]  # every target, no boundary token
    assert heldout["bytes"] >= heldout["tokens"]  # char tokens: at least one UTF-8 byte each
    assert 0 < heldout["bits_per_byte"] < 10 and 0 < heldout["ppmd_bits_per_byte"] < 10
    assert heldout["ppmd_order"] in (5, 8, 12) and "stride 16" in heldout["method"]
    assert math.isclose(heldout["loss"] * heldout["tokens"] / math.log(2) / heldout["bytes"], heldout["bits_per_byte"])


def test_the_end_of_run_check_scores_a_share_of_what_was_trained(tmp_path, monkeypatch):
    """A short run on a large corpus is not kept waiting on a million scored tokens."""
    import json

    from lunalm.train import heldout_check

    assert heldout_check.heldout_tokens(0) == 100_000  # a floor, for a figure good to ~1 %
    assert heldout_check.heldout_tokens(868_352) == 217_088  # a 3-minute CPU run: a quarter of its tokens
    assert heldout_check.heldout_tokens(10**9) == 1_000_000
    monkeypatch.setattr(heldout_check, "MIN_HELDOUT_TOKENS", 1)
    monkeypatch.setattr(heldout_check, "HELDOUT_SHARE", 1e-9)
    corpus = thirty_documents(tmp_path / "corpus")
    run, status = start(tiny_config(tmp_path, corpus, max_steps=2, eval_every=2), SilentUI(), progress=False)
    heldout = json.loads((run.run_dir / "summary.json").read_text(encoding="utf-8"))["heldout"]
    assert run.data.shards.n_documents("val") > 1 and heldout["documents"] == 1  # whole documents, the first


def test_one_slow_pass_does_not_set_the_step_time(tmp_path, monkeypatch):
    """The median of the timed passes: a pass slowed by another process on the machine is ignored."""
    import time

    from lunalm.train import loop
    from lunalm.train.prepare import prepare_data
    from lunalm.train.setup import build_run

    config = tiny_config(tmp_path, write_corpus(tmp_path / "corpus"), max_steps=5)
    run = build_run(config, tmp_path / "run", prepare_data(config, progress=False, log=lambda m: None))
    durations = iter([0.0, 0.02, 0.6, 0.02, 0.02, 0.02])  # the untimed pass, then one spike among five

    def fake_pass(run, inputs, labels, faults):
        time.sleep(next(durations))
        return 0.0, 1

    monkeypatch.setattr(loop, "forward_backward", fake_pass)
    assert budget.TIMED_PASSES == 5
    assert 0.02 <= budget.seconds_per_step(run) < 0.1  # the mean would be 0.136


def test_a_machine_three_times_slower_than_its_timed_passes_is_re_timed_by_the_clock(tmp_path, monkeypatch):
    """The count is fixed again once half the time has gone, not only at half the estimated steps: at
    three times the timed pace, step 120 of 240 came when the budget had run out."""
    import json

    corpus = write_corpus(tmp_path / "corpus")
    monkeypatch.setattr(budget, "seconds_per_step", lambda run: 0.01)  # 240 steps estimated for 3 s * 0.8
    calls = iter(range(10**6))
    monkeypatch.setattr(budget, "clock", lambda: 100.0 + 0.03 * next(calls))  # 0.03 s a step, call 0 the plan
    left = []
    plan = budget.Retime.plan.__func__
    monkeypatch.setattr(budget.Retime, "plan", classmethod(
        lambda cls, cap, seconds_left, estimated: left.append(seconds_left) or plan(cls, cap, seconds_left, estimated)))
    config = tiny_config(tmp_path, corpus, name="slow", minutes=0.05, checkpoint_every=100, eval_every=50)
    run, status = start(config, SilentUI(), progress=False)
    events = [json.loads(line) for line in (run.run_dir / "events.jsonl").read_text(encoding="utf-8").splitlines()]
    [retimed] = [e for e in events if e["kind"] == "retime"]
    assert retimed["step"] <= 0.5 * left[0] / 0.03 + 1 < 120  # half the time, long before half the steps
    assert status == "completed" and run.total_steps == retimed["total_steps"]
    assert run.total_steps * 0.03 <= left[0]  # the run ends within its budget at the pace it really kept


def test_a_retimed_run_decides_its_automatic_weight_decay_again_before_its_first_checkpoint(tmp_path, monkeypatch):
    """A QA run timed its first steps while another program held the CPU: 47 steps, ~1.1 passes, so decay
    0.1; re-timed, it made 373 steps (~8.9 passes) and kept 0.1 where the rule gives the decay of a run that
    sees its text many times. Before any step checkpoint the new decay applies from the re-timing on, and is
    what config.yaml and the optimizer hold; after one, it stays (a resume from it would go on with it)."""
    import json

    from lunalm.plan.recommend import weight_decay_for

    corpus = write_corpus(tmp_path / "corpus")
    monkeypatch.setattr(budget, "seconds_per_step", lambda run: 0.06)  # 3 s * 0.8 / 0.06 s: 40 steps, ~3.6 passes
    calls = iter(range(10**6))
    monkeypatch.setattr(budget, "clock", lambda: 100.0 + 0.005 * next(calls))  # really 0.005 s a step
    for every, switched in ((1000, True), (4, False)):
        ui = Messages()
        config = tiny_config(tmp_path, corpus, name=f"decay{every}", minutes=0.05, checkpoint_every=every,
                             eval_every=1000, weight_decay=None)
        run, status = start(config, ui, progress=False)
        [first] = [line for line in ui.lines if line.startswith("weight decay")]
        assert first.startswith("weight decay 0.1: ~") and status == "completed" and run.total_steps > 100
        events = [json.loads(line) for line in (run.run_dir / "events.jsonl").open(encoding="utf-8")]
        [retimed] = [e for e in events if e["kind"] == "retime"]
        saved = yaml.safe_load((run.run_dir / "config.yaml").read_text(encoding="utf-8"))["train"]["weight_decay"]
        decays = {group["weight_decay"] for group in run.optimizer.param_groups} - {0.0}
        if switched:
            expected = weight_decay_for(run.peak_lr, run.total_steps, run.passes, getattr(run.optimizer, "lr_scale", 1))
            assert expected > 0.1 and saved == expected and decays == {expected}
            assert f"; weight decay {expected:g} from here (was 0.1)" in retimed["message"]
        else:
            assert saved == 0.1 and decays == {0.1} and "weight decay" not in retimed["message"]


def test_a_run_stopped_before_its_count_was_fixed_again_fixes_it_when_resumed(tmp_path, monkeypatch):
    """A time-budget run killed before its re-timing kept the first estimate in config.yaml; resumed, it went
    on to that estimate whatever the pace (a 30-second plan took 69 s). Now the resumed run measures its pace
    and fixes the count for the budget's seconds the checkpoint had not spent."""
    import json

    import torch

    from lunalm.train.loop import Faults

    corpus = write_corpus(tmp_path / "corpus")
    monkeypatch.setattr(budget, "seconds_per_step", lambda run: 0.2)  # 60 s * 0.8 / 0.2 s: 240 steps estimated
    calls = iter(range(10**6))
    monkeypatch.setattr(budget, "clock", lambda: 100.0 + 0.001 * next(calls))  # far faster: never by the clock
    config = tiny_config(tmp_path, corpus, name="cut", minutes=1.0, checkpoint_every=40, eval_every=1000)
    with pytest.raises(RuntimeError, match="injected crash"):
        start(config, SilentUI(), faults=Faults(crash=(0, 60)), progress=False)
    run_dir = tmp_path / "runs" / "cut"
    assert yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8"))["train"]["max_steps"] == 240
    state = torch.load(run_dir / "checkpoints" / "step-00000040" / "train_state.pt", weights_only=True)["state"]
    assert state["retime"]["estimate"] == 240 and state["retime"]["cap"] > 240
    spent = state["elapsed_s"]

    calls = iter(range(10**6))
    monkeypatch.setattr(budget, "clock", lambda: 200.0 + 0.4 * next(calls))  # 0.4 s a step, call 0 the plan
    ui = Messages()
    resumed, status = resume(run_dir, ui, progress=False)
    assert any(line.startswith(f"time budget: {spent / 60:.1f} of 1 min spent before this checkpoint; the 240 "
                               "steps estimated then are fixed again at step 120") for line in ui.lines)
    events = [json.loads(line) for line in (run_dir / "events.jsonl").open(encoding="utf-8")]
    [retimed] = [e for e in events if e["kind"] == "retime"]
    # fixed at step 120, or once half the budget's time has gone (at 0.4 s a step, maybe a little before)
    at = retimed["step"]
    assert at <= 120 and (at == 120 or 200.0 + 0.4 * (at - 40) >= 200.0 + 30 - spent)
    # the plan at 200.0 (call 0), the pace from step 41 (call 1) to ``at`` is 0.4 s; the deadline 60 - spent later
    expected = at + math.floor((60 - spent - 0.4 * (at - 40)) / 0.4 + 1e-9)
    assert status == "completed" and abs(resumed.state.step - expected) <= 1 and resumed.state.step < 200
    assert (retimed["estimated_steps"], retimed["total_steps"]) == (240, resumed.state.step)
    assert yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8"))["train"]["max_steps"] == \
        resumed.state.step
    later = torch.load(run_dir / "checkpoints" / "step-00000160" / "train_state.pt", weights_only=True)["state"]
    assert later["retime"] == {}  # fixed: a resume from here keeps config.yaml's count


def test_a_resumed_run_whose_decay_has_begun_keeps_its_count():
    """The steps of the estimate's decay already ran at its lower lrs: a new count would raise them again."""
    assert budget.Retime.resumed(10**6, 50.0, 240, step=160, spent=10.0, decay_from=168) is None
    plan = budget.Retime.resumed(10**6, 50.0, 240, step=40, spent=10.0, decay_from=168)
    assert (plan.start, plan.at) == (48, 120)
    assert budget.Retime.resumed(10**6, 50.0, 240, step=100, spent=10.0, decay_from=168).start == 101


def test_a_cpu_too_slow_for_nano_in_the_time_gets_pico_unless_a_model_was_chosen(tmp_path, monkeypatch):
    """`luna train` with no --preset sizes the model for the time: nano would see far fewer than 2 tokens per
    parameter in 12 s at 1 s a step, so pico trains, named so; a chosen preset, a budget the text limits
    (its passes), or a shape of one's own are kept."""
    import dataclasses

    from lunalm.config import ModelChoice

    corpus = write_corpus(tmp_path / "corpus")
    monkeypatch.setattr(budget, "seconds_per_step", lambda run: 1.0)
    config = dataclasses.replace(tiny_config(tmp_path, corpus, minutes=0.2), name=None, model=ModelChoice(preset="nano"))
    ui = Messages()
    run, status = start(config, ui, progress=False, size_by_time=True)
    assert status == "completed" and run.config.model.preset == "pico" and run.model.config.d_model == 96
    assert run.run_dir.name.startswith("pico-") and run.total_steps == 9  # 12 s * 0.8 / 1 s, timed again
    assert [path.name for path in (tmp_path / "runs").iterdir() if path.is_dir()] == [run.run_dir.name]  # no nano-…
    saved = yaml.safe_load((run.run_dir / "config.yaml").read_text(encoding="utf-8"))
    assert saved["model"]["preset"] == "pico"
    [why] = [line for line in ui.lines if line.startswith("model pico, not nano")]
    assert why.endswith("trains nano on ~1,152 tokens, 0.0014 per parameter (below 2: too big for the time; "
                        "--preset nano keeps it)")  # 9 steps x 4 x 32 tokens, 0.8M parameters
    assert [line for line in ui.lines if line.startswith("time budget")] == \
        [line for line in ui.lines if line.startswith("time budget 12 s: 9 steps at 1.00 s per step")]
    chosen, _ = start(dataclasses.replace(config, name="chosen"), Messages(), progress=False)
    assert chosen.config.model.preset == "nano"
    monkeypatch.setattr(budget, "seconds_per_step", lambda run: 0.0001)  # the text's 1 pass ends first
    capped, _ = start(dataclasses.replace(config, name="capped", train=dataclasses.replace(config.train, epochs=1)),
                      Messages(), progress=False, size_by_time=True)
    assert capped.config.model.preset == "nano"
    monkeypatch.setattr(budget, "seconds_per_step", lambda run: 1.0)
    shaped, _ = start(dataclasses.replace(tiny_config(tmp_path, corpus, minutes=0.2), name="shaped"), Messages(),
                      progress=False, size_by_time=True)
    assert shaped.config.model.preset == "nano" and shaped.model.config.d_model == 32
