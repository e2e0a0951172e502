"""Data-parallel training through torchrun on CPU (gloo, 2 processes): the same losses as one process with
the same global batch, resume across world sizes, a crashing rank stopping the job cleanly, bad input."""

from __future__ import annotations

import json

import pytest
import yaml

from lunalm.runs.registry import Registry
from tests.train.runhelp import run_luna, sealed_step_checkpoints, train_losses, write_corpus, write_yaml

STEPS = 20
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp")
    corpus = write_corpus(root / "corpus")
    config = write_yaml(root / "tiny.yaml", root / "cache", checkpoint_every=5, max_steps=STEPS)
    runs = root / "runs"

    def train(name: str, nproc: int, accum: int, *extra: str, env_fault: str | None = None):
        args = ["train", str(corpus), "--config", str(config), "--name", name, "--runs-dir", str(runs),
                "--grad-accum", str(accum), "--quiet", *extra]
        if nproc > 1:
            args += ["--nproc", str(nproc)]
        if env_fault:
            import os

            os.environ["LUNALM_FAULT_CRASH"] = env_fault
            try:
                return run_luna(*args)
            finally:
                del os.environ["LUNALM_FAULT_CRASH"]
        return run_luna(*args)

    reference = train("one", 1, 2)  # micro-batch 4 x accumulation 2 = global batch 8
    assert reference.returncode == 0, reference.stderr
    return {"runs": runs, "train": train}


def test_two_processes_match_one_with_the_same_global_batch(setup):
    result = setup["train"]("two", 2, 1)  # 2 ranks x micro-batch 4 = global batch 8
    assert result.returncode == 0, result.stderr
    one, two = train_losses(setup["runs"] / "one"), train_losses(setup["runs"] / "two")
    assert len(one) == len(two) == STEPS
    assert max(abs(a - b) for a, b in zip(one, two)) <= 1e-5
    summary = json.loads((setup["runs"] / "two" / "summary.json").read_text())
    assert summary["tokens_seen"] == json.loads((setup["runs"] / "one" / "summary.json").read_text())["tokens_seen"]
    row = Registry(setup["runs"] / "registry.sqlite").get("two")
    assert row["status"] == "completed"  # one registry row, written by rank 0


def _set_accum(run_dir, accum: int) -> None:
    path = run_dir / "config.yaml"
    values = yaml.safe_load(path.read_text(encoding="utf-8"))
    values["train"]["grad_accum_steps"] = accum
    path.write_text(yaml.safe_dump(values, allow_unicode=True, sort_keys=False), encoding="utf-8")


def test_a_crashing_rank_stops_the_job_then_resume_with_one_process(setup):
    result = setup["train"]("crash2", 2, 1, env_fault="1:12")  # rank 1 dies during step 13
    assert result.returncode != 0
    assert "a training process failed" in result.stderr and "luna resume" in result.stderr
    run_dir = setup["runs"] / "crash2"
    assert [p.name for p in sealed_step_checkpoints(run_dir)][-1] == "step-00000010"
    row = Registry(setup["runs"] / "registry.sqlite").get("crash2")
    assert row["status"] == "crashed" and row["outcome"] == "failure"
    _set_accum(run_dir, 2)  # 1 process x micro 4 x accum 2 keeps the global batch of 8
    resumed = run_luna("resume", str(run_dir), "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    reference = train_losses(setup["runs"] / "one")
    assert max(abs(a - b) for a, b in zip(train_losses(run_dir)[-10:], reference[-10:])) <= 1e-5


def test_one_process_run_resumes_with_two(setup):
    result = setup["train"]("crash1", 1, 2, env_fault="0:12")
    assert result.returncode != 0
    run_dir = setup["runs"] / "crash1"
    _set_accum(run_dir, 1)  # 2 processes x micro 4 x accum 1
    resumed = run_luna("resume", str(run_dir), "--quiet", "--nproc", "2")
    assert resumed.returncode == 0, resumed.stderr
    reference = train_losses(setup["runs"] / "one")
    assert max(abs(a - b) for a, b in zip(train_losses(run_dir)[-10:], reference[-10:])) <= 1e-5
    assert json.loads((run_dir / "summary.json").read_text())["steps"] == STEPS


def test_bad_distributed_input_is_refused(setup, tmp_path):
    import os

    too_many = run_luna("train", "--nproc", str((os.cpu_count() or 1) + 1), "--device", "cpu",
                        "--runs-dir", str(tmp_path))
    assert too_many.returncode == 2 and "CPU cores" in too_many.stderr
    os.environ["LUNALM_DIST_BACKEND"] = "nccl"
    try:
        nccl = setup["train"]("nccl", 2, 1)
    finally:
        del os.environ["LUNALM_DIST_BACKEND"]
    assert nccl.returncode != 0 and "NCCL backend needs CUDA" in nccl.stderr


def test_fsdp_two_processes_match_one_and_resume_without_sharding(setup):
    result = setup["train"]("fsdp", 2, 1, "--shard", env_fault="1:12")  # FSDP, rank 1 dies during step 13
    assert result.returncode != 0 and "a training process failed" in result.stderr
    run_dir = setup["runs"] / "fsdp"
    reference = train_losses(setup["runs"] / "one")
    assert max(abs(a - b) for a, b in zip(train_losses(run_dir)[:12], reference[:12])) <= 1e-5
    assert [p.name for p in sealed_step_checkpoints(run_dir)][-1] == "step-00000010"  # gathered full state
    _set_accum(run_dir, 2)  # continue as 1 plain process: checkpoints hold full weights and named AdamW state
    resumed = run_luna("resume", str(run_dir), "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    assert max(abs(a - b) for a, b in zip(train_losses(run_dir)[-10:], reference[-10:])) <= 1e-5


def test_plain_run_resumes_sharded(setup):
    result = setup["train"]("plain", 1, 2, env_fault="0:12")  # one process, crashes during step 13
    assert result.returncode != 0
    run_dir = setup["runs"] / "plain"
    _set_accum(run_dir, 1)
    values = yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8"))
    values["train"]["shard"] = True
    (run_dir / "config.yaml").write_text(yaml.safe_dump(values, allow_unicode=True, sort_keys=False), encoding="utf-8")
    resumed = run_luna("resume", str(run_dir), "--quiet", "--nproc", "2")
    assert resumed.returncode == 0, resumed.stderr
    reference = train_losses(setup["runs"] / "one")
    assert max(abs(a - b) for a, b in zip(train_losses(run_dir)[-10:], reference[-10:])) <= 1e-5


def test_the_early_anneal_reaches_every_rank(setup):
    """Under DDP only rank 0 evaluates; its decision to go back to the best weights and anneal must reach the
    other rank, or the ranks would train different weights (and end at different steps)."""
    overfit = ("--lr", "0.02", "--warmup-steps", "0", "--eval-every", "2", "--patience", "1", "--cooldown", "0.5")
    one = setup["train"]("anneal-one", 1, 2, *overfit)
    two = setup["train"]("anneal-two", 2, 1, *overfit)
    assert one.returncode == 0 and two.returncode == 0, two.stderr
    events = [json.loads(line) for line in (setup["runs"] / "anneal-two" / "events.jsonl").read_text().splitlines()]
    assert [e["kind"] for e in events].count("cooldown") == 1  # patience ran out, and the anneal began
    losses_one, losses_two = train_losses(setup["runs"] / "anneal-one"), train_losses(setup["runs"] / "anneal-two")
    assert len(losses_one) == len(losses_two) < STEPS
    assert max(abs(a - b) for a, b in zip(losses_one, losses_two)) <= 1e-4
