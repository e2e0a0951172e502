"""`luna plan`: choices against data and memory, the YAML round trip, and clear errors."""

from __future__ import annotations

import dataclasses
import math
import random
import re
import subprocess
import sys

import pytest

from lunalm.config import CorpusConfig, TokenizerConfig, load_yaml, run_config_from_dict
from lunalm.errors import ConfigError, CorpusError
from lunalm.model import count_parameters
from lunalm.plan import hardware
from lunalm.plan.hardware import card_machine, find_card, parse_size, vram_machine
from lunalm.plan.memory import device_bytes
from lunalm.plan.probe import BUSY_SHARE
from lunalm.plan.recommend import CorpusFacts, Request, duration_text, make_plan
from lunalm.plan.history import expected_bits_per_byte, speed_correction
from lunalm.runs.registry import Registry
from tests.conftest import run_luna

GiB = 2**30


def facts(tokens: int, docs: int = 400, median: int = 500, vocab: int = 8192) -> CorpusFacts:
    return CorpusFacts(name="corpus", documents=docs, chars=int(tokens * 4), tokens=tokens, chars_per_token=4.0,
                       median_doc_tokens=median, p90_doc_tokens=4 * median, vocab_size=vocab,
                       tokenizer_kind="bpe")


def cpu_machine():
    """A 2-core CPU with native bf16 and 23 GiB free, whatever the host is: the plans' figures below (~61 steps
    of pico in 0.001 h) depend on a CPU's FLOP/s guess, which is 1.25x higher with bf16 (lunalm.plan.hardware)."""
    return dataclasses.replace(hardware.cpu_machine(), name="CPU (2 cores)", memory_bytes=23 * GiB,
                               precision="bf16", peak_flops=2 * 50e9 * 1.25, cores=2)


def plan_for(tokens, machine, **request):
    return make_plan(facts(tokens), machine, Request(**request), corpus=CorpusConfig(),
                     tokenizer=TokenizerConfig())


def test_gtx_1650_with_840k_tokens_and_50m_model_is_refused_with_a_proposal():
    gtx = card_machine(find_card("GeForce GTX 1650"))
    plan = plan_for(840_000, gtx, preset="small", epochs=15)
    assert plan.config.model.preset in ("nano", "tiny")  # not the requested 50M model
    text = " ".join(plan.warnings)
    assert "far too small for preset small" in text and "gather ~" in text and "epochs" in text
    assert plan.config.train.weight_decay > 0.1  # 15 passes over the text: regularised
    assert plan.config.train.precision == "auto" and gtx.precision == "fp16"
    assert device_bytes(plan.memory.peak, "cuda") <= plan.memory_limit <= 4 * GiB


def test_model_grows_with_data_and_goal():
    gpu = card_machine(find_card("A100"))
    sizes = [count_parameters(plan_for(tokens, gpu).model) for tokens in (5e5, 2e7, 5e8)]
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]
    fast, best = plan_for(2e7, gpu, goal="fast"), plan_for(2e7, gpu, goal="best")
    assert count_parameters(fast.model) <= count_parameters(best.model)
    assert fast.config.train.epochs < best.config.train.epochs


def test_batch_fits_memory_and_keeps_the_global_batch():
    small_card = vram_machine(parse_size("2GB"))
    plan = plan_for(5e7, small_card, preset="small")
    t = plan.config.train
    assert device_bytes(plan.memory.peak, "cuda") <= plan.memory_limit
    big = plan_for(5e7, card_machine(find_card("H100")), preset="small")
    assert t.micro_batch_size < big.config.train.micro_batch_size
    assert t.micro_batch_size * t.grad_accum_steps >= 1
    assert plan.fallbacks["if memory runs out"][0].startswith("train.micro_batch_size:")


def test_hours_budget_shortens_the_run():
    cpu = cpu_machine()
    free = plan_for(3e7, cpu, preset="tiny")
    limited = plan_for(3e7, cpu, preset="tiny", hours=free.estimates["hours"] / 4)
    assert limited.estimates["hours"] <= free.estimates["hours"] / 4 * 1.01
    assert limited.estimates["steps"] < free.estimates["steps"] and limited.config.train.minutes is not None


def test_hours_become_the_runs_time_budget_and_fill_it_with_passes_up_to_16():
    cpu = cpu_machine()
    small = plan_for(2e5, cpu, hours=0.25)  # a small corpus and a quarter of an hour
    assert small.config.train.minutes == 15.0  # the run trains for exactly the time (steps measured then)
    assert small.config.train.epochs == 16  # time for more, but repeats past ~16 teach nothing
    assert small.config.model.dropout > 0 and "at most 16" in small.why["train.epochs"]
    big = plan_for(3e8, cpu, hours=0.25)  # a large corpus: the time ends the run within the first pass
    assert big.config.train.minutes == 15.0 and big.config.train.epochs == 16  # a cap; the minutes bind
    assert big.estimates["tokens"] < 3e8 and "train.minutes ends the run" in big.why["train.epochs"]
    assert plan_for(2e5, cpu).config.train.minutes is None  # no --hours: the goal's epochs, no time limit


def test_dropout_only_where_the_text_is_repeated_more_than_four_times():
    from lunalm.plan.recommend import FRESH_PASSES

    cpu = cpu_machine()
    many = plan_for(2e5, cpu, hours=0.25)  # 16 passes of a small corpus
    assert many.config.model.dropout > 0
    few = plan_for(2e5, cpu, epochs=3)  # three passes: nearly as good as new text
    assert FRESH_PASSES == 4 and few.config.model.dropout == 0.0
    assert "~3 passes" in few.why["model.dropout"] and "dropout would only slow learning" in few.why["model.dropout"]
    five = plan_for(2e5, cpu, epochs=5)
    assert five.config.model.dropout > 0
    # the small-corpus warning says overfitting is the limit only where the text repeats (and names dropout
    # only where there is some): with three passes, the time is the limit
    assert any("overfitting will be the limit (early stopping, weight decay and dropout" in w for w in many.warnings)
    assert not any("overfitting" in w for w in few.warnings)


def test_repeated_text_gets_a_weight_decay_window_of_a_third_of_the_run():
    from lunalm.plan.recommend import DECAY_WINDOW, weight_decay_for

    cpu = cpu_machine()
    many = plan_for(2e5, cpu, hours=0.25)  # 16 passes
    t, steps = many.config.train, many.estimates["steps"]
    assert t.weight_decay == round(max(0.1, 1 / (t.lr * steps * DECAY_WINDOW)), 2) > 0.1
    assert f"{1 / (t.lr * t.weight_decay):,.0f} steps" in many.why["train.weight_decay"]
    assert 0.3 < 1 / (t.lr * t.weight_decay) / steps < 0.36  # the window: a third of the run (decay rounded)
    few = plan_for(2e5, cpu, epochs=3)
    assert few.config.train.weight_decay == 0.1 and "the usual 0.1" in few.why["train.weight_decay"]
    assert weight_decay_for(0.003, 1_000, 16) == 1.0 and weight_decay_for(0.003, 2_000, 16) == 0.5
    assert weight_decay_for(0.001, 300, 16) == 10.0  # past 1 where lr x steps is small: lr x decay = 0.01
    assert weight_decay_for(0.003, 100_000, 16) == 0.1  # a third of a long run is window enough: the usual 0.1
    assert weight_decay_for(0.003, 1_000, 4) == 0.1  # text seen at most 4 times: no more than usual
    six = plan_for(2e5, cpu, epochs=6)  # Muon's range: it steps, and so decays, at 3x the lr
    t, steps = six.config.train, six.estimates["steps"]
    assert "Muon" in six.why["train.optimizer"] and "3x the lr below" in six.why["train.optimizer"]
    window = 1 / (t.lr * 3 * t.weight_decay)
    assert f"~{window:,.0f} steps (1 / (lr x decay) at Muon's 3x lr), {window / steps:.0%} of the" \
        in six.why["train.weight_decay"]
    assert 0.2 < window / steps < 0.25  # Muon's window: 2/9 of the run, what its plans were measured with
    assert t.weight_decay == weight_decay_for(t.lr, steps, 6, 3.0) == round(1 / (t.lr * 3 * steps * 2 / 9), 2)
    assert weight_decay_for(0.003, 1_000, 16, 3.0) == 0.5  # half of AdamW's 1.0 at the same lr and steps


def test_a_cpu_plan_too_short_for_nano_takes_pico_unless_the_text_or_a_choice_limits_it():
    from lunalm.plan.recommend import TOKENS_PER_PARAM_FOR_SIZE

    short = plan_for(2_000_000, cpu_machine(), hours=0.05)  # 3 minutes: ~1M tokens for nano's 0.85M
    assert short.config.model.preset == "pico"
    assert re.fullmatch(r"pico, not nano: --hours 0.05 trains nano on ~[\d,]+ tokens on CPU \(2 cores\), 1\.\d per "
                        r"non-embedding parameter \(below 2\): too big for the time, the smaller model learns more "
                        r"in it", short.why["model.preset"])
    longer = plan_for(2_000_000, cpu_machine(), hours=0.15)  # ~3.6 per parameter: nano
    assert longer.config.model.preset == "nano" and TOKENS_PER_PARAM_FOR_SIZE == 2.0
    assert plan_for(2_000_000, cpu_machine(), hours=0.05, preset="nano").config.model.preset == "nano"
    assert plan_for(2_000_000, cpu_machine(), hours=0.05, epochs=1).config.model.preset == "nano"
    assert plan_for(2_000_000, card_machine(find_card("GeForce GTX 1650")), hours=0.05).config.model.preset != "pico"
    assert plan_for(30_000, cpu_machine(), hours=0.05).config.model.preset == "nano"  # 16 passes end first


def test_time_to_spare_on_a_repeated_text_buys_a_larger_model_down_to_the_floor():
    from lunalm.plan.recommend import MAX_USEFUL_EPOCHS, SPARE_TOKENS_PER_PARAM

    h200 = card_machine(find_card("H200"))
    grown = plan_for(400_000, h200, hours=0.05)  # 360k training tokens, 3 minutes of an H200
    body = count_parameters(grown.model, non_embedding=True)
    seen = 360_000 * MAX_USEFUL_EPOCHS
    assert grown.config.model.preset == "small" and grown.config.train.epochs == MAX_USEFUL_EPOCHS
    assert seen / body >= SPARE_TOKENS_PER_PARAM == 0.15  # medium (~127M) would see < 0.05 per parameter
    assert "16 times" in grown.why["model.preset"] and "time to spare" in grown.why["model.preset"]
    assert grown.config.train.weight_decay > 1  # small's lr (~1e-3) needs a decay past 1 for the window
    assert "a size chosen to use the time" in " ".join(grown.warnings)
    assert plan_for(120_000, h200, hours=0.05).config.model.preset == "tiny"  # small would see < 0.15
    assert plan_for(400_000, h200).config.model.preset == "nano"  # no --hours: the goal's 5 per parameter
    assert plan_for(400_000, h200, hours=0.05, epochs=16).config.model.preset == "nano"  # passes asked for
    cpu = plan_for(400_000, cpu_machine(), hours=0.05)  # 3 CPU minutes: not even nano repeats it 16 times
    assert cpu.config.model.preset == "pico" and "16 times" not in cpu.why["model.preset"]  # (test below)
    long_cpu = plan_for(120_000, cpu_machine(), hours=1.0)  # time to spare on a CPU: no gain measured there
    assert long_cpu.config.model.preset == "nano" and long_cpu.config.train.epochs == MAX_USEFUL_EPOCHS
    as_if_gpu = dataclasses.replace(cpu_machine(), kind="cuda")  # the same speed on a GPU: tiny makes 16 passes
    assert plan_for(120_000, as_if_gpu, hours=1.0).config.model.preset == "tiny"


def test_errors_name_the_problem():
    with pytest.raises(ConfigError, match="closest known: .*GTX 1650"):
        find_card("GTX 1605")
    with pytest.raises(ConfigError, match="too little for even the smallest model"):
        plan_for(1e6, vram_machine(parse_size("0.5GB")))
    with pytest.raises(CorpusError, match="too little to train on"):
        plan_for(1000, cpu_machine())
    with pytest.raises(ConfigError, match="expected a size"):
        parse_size("four gigs")
    assert parse_size("4GB") == parse_size("4 GiB") == 4 * GiB and parse_size("512MB") == GiB // 2


def test_a_plan_too_short_to_learn_is_refused_with_what_would_help(tmp_path, turkish_dir):
    proc = run_luna("plan", str(turkish_dir), "--device", "cpu", "--context", "16", "--out",
                    str(tmp_path / "plan.yaml"), cwd=tmp_path)
    assert proc.returncode == 2 and not (tmp_path / "plan.yaml").exists()
    line = proc.stderr.strip().splitlines()[-1]
    assert "optimizer steps" in line and "too few to learn more than word frequencies" in line and "add text" in line


def test_a_refusal_names_the_limit_time_or_text_and_what_lifts_it():
    """Too little time: how many hours buy a run that learns (and the plan they buy is accepted); too little
    text: how much text in all, not a constant that is wrong for a 3 MB corpus short of time."""
    with pytest.raises(ConfigError, match=r"only ~(61) optimizer steps .*The time is the limit: --hours 0.001 buys "
                                          r"~\1 steps at ~[\d,]+ tokens/s on .*; --hours ([\d.]+) buys ~300") as time:
        plan_for(5_000_000, cpu_machine(), hours=0.001)
    hours = float(re.search(r"--hours ([\d.]+) buys ~300", str(time.value)).group(1))
    assert 290 <= plan_for(5_000_000, cpu_machine(), hours=hours).estimates["steps"] <= 320
    with pytest.raises(CorpusError, match=r"only ~85 optimizer steps .*The text is the limit: add text \(at least "
                                          r"~([\d,]+) characters in all, against 12,000 now\)") as text:
        plan_for(3000, cpu_machine())
    needed = int(re.search(r"~([\d,]+) characters", str(text.value)).group(1).replace(",", ""))
    with pytest.raises(CorpusError):  # the text asked for lifts the refusal (the plan may take fewer passes then)
        plan_for(needed // 4 - 1000, cpu_machine())
    assert plan_for(needed // 4 + 500, cpu_machine()).estimates["steps"] >= 100


def learnable_dir(tmp_path):
    """~10K tokens of distinct sentences in 40 documents: a plan that learns (see the refusal above)."""
    from tests.conftest import TURKISH

    turkish_dir = tmp_path / "corpus"
    turkish_dir.mkdir()
    words = " ".join(TURKISH).split()
    for index in range(40):
        shuffled = random.Random(index).sample(words, len(words))
        sentences = [" ".join(shuffled[i:i + 12]) + "." for i in range(0, len(shuffled), 12)]
        (turkish_dir / f"doc{index}.txt").write_text(" ".join(sentences), encoding="utf-8")
    return turkish_dir


@pytest.mark.slow
def test_a_time_budget_on_this_cpu_is_planned_from_measured_steps(tmp_path):
    import json
    import os

    corpus = learnable_dir(tmp_path)
    env = {**os.environ, "LUNALM_CACHE": str(tmp_path / "cache")}  # no probe result cached from before
    args = [sys.executable, "-m", "lunalm", "plan", str(corpus), "--device", "cpu", "--context", "16",
            "--hours", "0.5", "--json", "--out", str(tmp_path / "plan.yaml")]
    measured = json.loads(subprocess.run(args, capture_output=True, text=True, env=env, check=True).stdout)
    assert measured["estimates"]["tokens_per_s_source"] == "probe (measured)"
    probe = measured["probe"]
    assert probe["seq_len"] == 16 and probe["micro_batch_size"] == measured["config"]["train"]["micro_batch_size"]
    assert measured["estimates"]["tokens_per_s"] == round(probe["tokens_per_s"])  # the shape it probed is planned
    if probe["busy_share"] <= BUSY_SHARE:  # a busy machine's timing is not kept (next test)
        assert len(list((tmp_path / "cache" / "probe").glob("*.json"))) >= 1
    table = json.loads(subprocess.run(args + ["--no-probe"], capture_output=True, text=True, env=env,
                                      check=True).stdout)
    assert table["probe"] is None and "peak x utilisation" in table["estimates"]["tokens_per_s_source"]


def test_cli_writes_yaml_that_train_reads_unchanged(tmp_path):
    turkish_dir = learnable_dir(tmp_path)
    out = tmp_path / "plan.yaml"
    proc = run_luna("plan", str(turkish_dir), "--device", "cpu", "--context", "16", "--explain",
                    "--out", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "peak of a step" in proc.stdout and "if memory runs out" in proc.stdout
    config = run_config_from_dict(load_yaml(str(out)))
    assert config.corpus.paths == (str(turkish_dir),) and config.data.context_length == 16
    assert config.model.preset == "nano" and config.tokenizer.vocab_size is not None
    text = out.read_text(encoding="utf-8")
    assert "# " in text.split("preset:")[1].splitlines()[0]  # the reason rides along as a comment
    # the same YAML trains: a few steps prove `luna train --config` accepts it unchanged
    proc = run_luna("train", "--config", str(out), "--max-steps", "3", "--quiet", "--name", "p",
                    "--runs-dir", str(tmp_path / "runs"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "runs" / "p" / "checkpoints" / "final" / "model.safetensors").is_file()
    row = Registry(tmp_path / "runs" / "registry.sqlite").find()[0]  # the plan's estimate beside the actual
    assert row["plan"]["steps"] == config.plan["steps"] and row["plan"]["device_kind"] == "cpu"
    assert row["status"] == "completed" and row["steps"] >= 1 and row["tokens_per_s"] > 0
    assert config.plan["corpus_bytes"] == sum(f.stat().st_size for f in turkish_dir.iterdir())
    assert "plan in this config was made for" not in proc.stderr
    # the same plan after the corpus tripled (files added since): a warning, the run still goes ahead
    for path in list(turkish_dir.iterdir()):
        for copy in (1, 2):
            (turkish_dir / f"{path.stem}-{copy}.txt").write_text(path.read_text(encoding="utf-8")[::-1], encoding="utf-8")
    proc = run_luna("train", "--config", str(out), "--max-steps", "2", "--quiet", "--name", "q",
                    "--runs-dir", str(tmp_path / "runs"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    mb = config.plan["corpus_bytes"] / 1e6
    assert f"warning: the plan in this config was made for {mb:.2f} MB of text; {turkish_dir} now hold {3 * mb:.2f} MB" \
        in " ".join(proc.stderr.split())
    gpu_plan = tmp_path / "gpu.yaml"  # a plan made for a GPU, trained on this CPU
    gpu_plan.write_text(out.read_text(encoding="utf-8").replace("device_kind: cpu", "device_kind: cuda").replace(
        "corpus_bytes:", "corpus_bytes_old:"), encoding="utf-8")
    proc = run_luna("train", "--config", str(gpu_plan), "--max-steps", "1", "--quiet", "--name", "g",
                    "--runs-dir", str(tmp_path / "runs"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "this run trains on CPU" in proc.stderr and "--device cpu` makes one for it" in " ".join(proc.stderr.split())


def test_past_runs_correct_the_speed_and_forecast_bits_per_byte():
    plan = {"device": "GTX 1650", "tokens_per_s": 1000, "tokens_per_s_source": "GTX 1650 peak x utilisation"}
    rows = [{"source": "lunalm", "status": "completed", "plan": plan, "tokens_per_s": tps} for tps in (500, 600, 700)]
    rows.append({"source": "lunalm", "status": "completed", "plan": {**plan, "device": "T4"}, "tokens_per_s": 9e9})
    assert speed_correction(rows, "GTX 1650") == (0.6, 3)
    assert speed_correction(rows, "A100") == (1.0, 0)
    gtx = card_machine(find_card("GTX 1650"))
    slow = make_plan(facts(2e6), gtx, Request(), corpus=CorpusConfig(), tokenizer=TokenizerConfig(),
                     speed_factor=(0.5, 3))
    assert slow.estimates["tokens_per_s"] == pytest.approx(plan_for(2e6, gtx).estimates["tokens_per_s"] * 0.5, rel=0.01)
    assert "corrected x0.50 from 3" in slow.estimates["tokens_per_s_source"]
    past = [{"corpus": "c", "outcome": "success", "n_params": n, "tokens_seen": d, "best_val_bpb": 3.0 - 0.1 * math.log(n * d)}
            for n, d in ((1e6, 1e7), (4e6, 1e7), (1e6, 4e7), (8e6, 5e7))]
    value, how = expected_bits_per_byte(past, "c", 2e6, 2e7)
    assert value == pytest.approx(3.0 - 0.1 * math.log(2e6 * 2e7), abs=1e-6) and "fit over 4" in how
    assert expected_bits_per_byte(past[:1], "c", 1e9, 1e10) is None  # too far from anything seen
    assert expected_bits_per_byte(past, "other corpus", 2e6, 2e7) is None


def test_a_probe_sets_the_speed_and_other_shapes_scale_from_it_by_flops():
    from lunalm.model import flops_per_token, model_config_from_preset

    cpu = cpu_machine()
    guess = make_plan(facts(2e6), cpu, Request(hours=0.05), corpus=CorpusConfig(), tokenizer=TokenizerConfig())
    probed = guess.model
    fast = make_plan(facts(2e6), cpu, Request(hours=0.05), corpus=CorpusConfig(), tokenizer=TokenizerConfig(),
                     measured=(probed, 8 * guess.estimates["tokens_per_s"]))
    assert fast.estimates["tokens_per_s_source"] == "probe (measured)"
    assert fast.config.train.micro_batch_size * fast.config.train.grad_accum_steps > (
        guess.config.train.micro_batch_size * guess.config.train.grad_accum_steps)  # ~1,000 steps of more tokens
    assert "passes" in fast.why["train.epochs"] and fast.estimates["tokens"] > 3 * guess.estimates["tokens"]
    tiny = make_plan(facts(2e6), cpu, Request(hours=0.05, preset="tiny"), corpus=CorpusConfig(),
                     tokenizer=TokenizerConfig(), measured=(probed, 40_000.0))
    ratio = flops_per_token(probed, probed.context_length) / flops_per_token(tiny.model, tiny.model.context_length)
    assert tiny.model == model_config_from_preset("tiny", tiny.model.vocab_size, tiny.model.context_length)
    assert tiny.estimates["tokens_per_s"] == round(40_000 * ratio)  # the probe timed nano; tiny does more per token


def test_a_cpu_probe_timed_while_other_programs_ran_is_not_cached(tmp_path, monkeypatch):
    import time

    from lunalm.model import model_config_from_preset
    from lunalm.plan import probe

    if probe._busy_ticks() is None or probe._children_cpu_seconds() is None:
        pytest.skip("no /proc/stat or no resource module: the probe cannot tell a busy machine here")
    burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])  # another program, one core
    try:
        time.sleep(0.3)
        ticks, children, started = probe._busy_ticks(), probe._children_cpu_seconds(), time.perf_counter()
        time.sleep(1.0)
        share = probe._others_share(ticks, children, time.perf_counter() - started)
    finally:
        burner.kill()
        burner.wait()
    assert share >= 0.8 / len(probe._cores())  # the burner's core, not this process's sleep

    monkeypatch.setenv("LUNALM_CACHE", str(tmp_path / "cache"))
    cfg = model_config_from_preset("nano", 256, 16)
    monkeypatch.setattr(probe, "_others_share", lambda *args: 0.5)
    busy = probe.measure(cfg, 2, steps=1)
    assert busy.busy_share == 0.5 > BUSY_SHARE and busy.tokens_per_s > 0
    assert not list((tmp_path / "cache" / "probe").glob("*.json"))  # not kept for a later, idle plan
    monkeypatch.setattr(probe, "_others_share", lambda *args: 0.0)
    idle = probe.measure(cfg, 2, steps=1)
    assert idle.busy_share == 0.0 and len(list((tmp_path / "cache" / "probe").glob("*.json"))) == 1
    assert probe.measure(cfg, 2, steps=1) == idle  # the cached one


def test_cli_rejects_contradictions_and_remote_probes(tmp_path):
    proc = run_luna("plan", "--device", "cpu", "--gpu", "T4", cwd=tmp_path)
    assert proc.returncode == 2 and "contradicts" in proc.stderr
    proc = run_luna("plan", "--device", "cpu", "--probe", "--no-probe", cwd=tmp_path)
    assert proc.returncode == 2 and "--probe contradicts --no-probe" in proc.stderr
    proc = run_luna("plan", "--gpu", "T4", "--probe", cwd=tmp_path)
    assert proc.returncode == 2 and "cannot measure T4" in proc.stderr
    proc = run_luna("plan", "--gpu", "Titan Q", cwd=tmp_path)
    assert proc.returncode == 2 and "unknown GPU" in proc.stderr
    assert not (tmp_path / "plan.yaml").exists()


def test_durations_read_like_a_person_would_say_them():
    assert [duration_text(h) for h in (0.0, 13 / 3600, 0.5, 25 / 60, 3.54)] == ["1 s", "13 s", "30 min", "25 min",
                                                                              "3.5 h"]


def test_batch_reason_matches_the_steps_it_gives():
    """A corpus too short for the aimed-at steps says so, with the steps the plan actually gets."""
    cpu = cpu_machine()
    short = plan_for(100_000, cpu, preset="nano", epochs=4)
    reason = short.why["train.grad_accum_steps"]
    assert short.estimates["steps"] < 1000
    assert "a small batch for a small corpus" in reason and f"so ~{short.estimates['steps']:,} steps" in reason
    assert "1,024 tokens per step" in reason  # under the CPU floor (2,048): the 300 steps a run needs
    long = plan_for(5e8, cpu, preset="nano", epochs=1)
    assert "aiming at >= 1,000 steps" in long.why["train.grad_accum_steps"]
    assert long.estimates["steps"] >= 1000


def test_reasons_and_hints_agree_with_the_plans_numbers():
    """The preset's reason states the tokens seen per parameter this plan gives; the hints never propose what
    the plan already does; a small CPU corpus is told plainly that a compressor will likely score better."""
    cpu = cpu_machine()
    tiny = plan_for(24_000, cpu, hours=0.02)  # ~100 KB: 16 passes within the time
    n_body = count_parameters(tiny.model, non_embedding=True)
    train_tokens = int(24_000 * 0.9)
    assert tiny.config.train.epochs == 16
    assert (f"the smallest preset plans choose; it sees only {16 * train_tokens / n_body:.2g} tokens per parameter "
            f"over ~16 passes of {train_tokens:,} tokens, under the >= 5 that goal balanced wants"
            in tiny.why["model.preset"])
    better = tiny.fallbacks["if you want it better"]
    assert any(line.startswith("not more time: the plan already shows the model its text ~16 times") for line in better)
    assert not any("--goal best" in line or "--hours" in line for line in better)
    assert "96,000 characters" in tiny.why["tokenizer.vocab_size"]  # not "0.1M"
    assert any(w.startswith("a compressor will likely predict this text better") for w in tiny.warnings)
    gpu = plan_for(24_000, card_machine(find_card("A100")), hours=0.02)
    assert not any("compressor" in w for w in gpu.warnings)  # measured on a CPU only

    timed = plan_for(5e5, cpu, hours=0.05)  # the time ends the run after a few passes
    passes = timed.estimates["tokens"] / int(5e5 * 0.9)
    assert 1.5 < passes < 15
    assert timed.fallbacks["if you want it better"][0 if passes < 4 else 1] == (
        f"--hours 0.1: ~{min(16, 2 * passes):.2g} passes over the text instead of ~{passes:.2g}")
    hours_per_pass = timed.estimates["hours"] / passes
    assert timed.fallbacks["if you want it faster"][0].startswith(
        f"train.epochs: 1 — ~{duration_text(hours_per_pass)} instead of ~{duration_text(timed.estimates['hours'])}")
    assert not any("compressor" in w for w in timed.warnings)  # 2M characters

    untimed = plan_for(2e6, cpu)  # goal balanced, 4 passes, no time limit: goal best is the next step
    assert "--goal best: up to 10 epochs with dropout and early stopping (~2.5x the time)" in (
        untimed.fallbacks["if you want it better"])
    big = plan_for(5e8, card_machine(find_card("A100")))
    assert "the largest preset with >= 5 tokens seen per parameter that fits" in big.why["model.preset"]


def test_the_context_reason_says_when_the_window_is_shorter_than_a_typical_document():
    long_documents = make_plan(facts(2_000_000, docs=200, median=9_241), cpu_machine(), Request(),
                               corpus=CorpusConfig(), tokenizer=TokenizerConfig())
    assert long_documents.config.data.context_length == 128
    assert long_documents.why["data.context_length"].startswith("shorter than a typical document (median 9,241")
    short_documents = make_plan(facts(2_000_000, docs=20_000, median=90), cpu_machine(), Request(),
                                corpus=CorpusConfig(), tokenizer=TokenizerConfig())
    assert short_documents.why["data.context_length"].startswith("covers a typical document (median 90")
