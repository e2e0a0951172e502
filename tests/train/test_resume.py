"""Resume through real processes: kill -9, SIGTERM, a corrupted checkpoint, edited configs, bad input.

Every training process runs with OMP_NUM_THREADS=1 (see runhelp.luna_env), the interrupted runs and
the uninterrupted reference alike, and every resumed run must end with *bit-identical* weights.
"""

import json
import os
import pickle
import shutil
import signal

import pytest
import torch
import yaml
from runhelp import (assert_same_weights, run_luna, sealed_step_checkpoints, spawn_luna, tiny_config,
                     train_losses, wait_for, write_corpus, write_yaml)

from lunalm.train.loop import SilentUI
from lunalm.train.metrics import read_jsonl
from lunalm.runs.attempt import run_fingerprint
from lunalm.runs.registry import Registry
from lunalm.train.session import start

STEPS, EVERY = 40, 5


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """Corpus, YAML and runs folder shared by the module, plus the uninterrupted reference run."""
    root = tmp_path_factory.mktemp("resume")
    corpus = write_corpus(root / "corpus")
    config = write_yaml(root / "tiny.yaml", root / "cache")
    runs = root / "runs"

    def train_args(name: str) -> list[str]:
        return ["train", str(corpus), "--config", str(config), "--name", name, "--runs-dir", str(runs),
                "--tokenizer", "char", "--preset", "nano", "--context", "32", "--batch-size", "4",
                "--max-steps", str(STEPS), "--checkpoint-every", str(EVERY), "--eval-every", "1000",
                "--sample-every", "0", "--device", "cpu", "--quiet"]

    result = run_luna(*train_args("reference"))
    assert result.returncode == 0, result.stderr
    reference = runs / "reference"
    assert json.loads((reference / "summary.json").read_text())["status"] == "completed"
    return {"root": root, "runs": runs, "train_args": train_args, "reference": reference}


def start_then(setup, name: str, log_name: str | None = None):
    process = spawn_luna(*setup["train_args"](name), log=setup["root"] / f"{log_name or name}.log")
    return process, setup["runs"] / name


def assert_finishes_like_reference(run_dir, reference) -> None:
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["steps"] == STEPS
    assert_same_weights(run_dir / "checkpoints" / "final", reference / "checkpoints" / "final")
    assert train_losses(run_dir) == train_losses(reference)  # every step's loss, to the last bit


@pytest.mark.slow
def test_kill_9_then_resume_is_bit_exact(setup):
    process, run_dir = start_then(setup, "killed")
    wait_for(lambda: sealed_step_checkpoints(run_dir), process, "the first step checkpoint")
    os.kill(process.pid, signal.SIGKILL)
    assert process.wait(timeout=60) == -signal.SIGKILL
    assert not (run_dir / "checkpoints" / "final").exists(), "the run finished before it was killed"
    registry = Registry(setup["runs"] / "registry.sqlite")
    assert registry.get(run_fingerprint(str(run_dir)))["status"] == "running"
    assert registry.mark_stale() == 1  # the process is gone: found and marked crashed
    assert registry.get(run_fingerprint(str(run_dir)))["status"] == "crashed"
    result = run_luna("resume", str(run_dir), "--quiet")
    assert result.returncode == 0, result.stderr
    assert_finishes_like_reference(run_dir, setup["reference"])
    row = registry.get(run_fingerprint(str(run_dir)))
    assert row["status"] == "completed" and row["steps"] == STEPS and row["outcome"] == "success"
    resumes = [e for e in read_jsonl(run_dir / "events.jsonl") if e["kind"] == "resume"]
    assert len(resumes) == 1


def flip_byte(path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # in the tensor data: the file still parses, only the hash tells
    path.write_bytes(bytes(data))


@pytest.mark.slow
def test_corrupted_newest_checkpoint_falls_back_and_stays_bit_exact(setup):
    process, run_dir = start_then(setup, "corrupted")
    wait_for(lambda: len(sealed_step_checkpoints(run_dir)) >= 2, process, "two step checkpoints")
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=60)
    assert not (run_dir / "checkpoints" / "final").exists(), "the run finished before it was killed"
    *_, previous, newest = sealed_step_checkpoints(run_dir)
    flip_byte(newest / "model.safetensors")
    result = run_luna("resume", str(run_dir))
    assert result.returncode == 0, result.stderr
    assert "falling back" in result.stderr and newest.name in result.stderr
    assert result.stderr.count("is damaged") == 1, result.stderr  # said once (a log line repeated it)
    assert f"from {previous.name}" in result.stderr  # "resuming … from step-… (step N of 40)"
    assert_finishes_like_reference(run_dir, setup["reference"])


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_then_resume_is_bit_exact(setup):
    process, run_dir = start_then(setup, "terminated")

    def past_step_seven():
        return any(r["kind"] == "train" and r["step"] >= 7 for r in read_jsonl(run_dir / "metrics.jsonl"))

    wait_for(past_step_seven, process, "step 7")
    os.kill(process.pid, signal.SIGTERM)
    assert process.wait(timeout=120) == 130
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "interrupted" and 7 <= summary["steps"] < STEPS
    here = run_dir / "checkpoints" / f"step-{summary['steps']:08d}"
    assert (here / "manifest.json").is_file(), f"no checkpoint at the step it stopped ({here.name})"
    assert not (run_dir / "checkpoints" / "final").exists()
    result = run_luna("resume", str(run_dir), "--quiet")
    assert result.returncode == 0, result.stderr
    assert_finishes_like_reference(run_dir, setup["reference"])


# --- editing config.yaml between train and resume ------------------------------------------------
@pytest.fixture
def finished_run(tmp_path):
    """A 4-step run (step checkpoints at 2 and 4), trained in this process to save a start-up."""
    corpus = write_corpus(tmp_path / "corpus")
    run, status = start(tiny_config(tmp_path, corpus, max_steps=4, checkpoint_every=2), SilentUI(),
                        progress=False)
    assert status == "completed"
    return run.run_dir


def edit_config(run_dir, section: str, **values) -> None:
    path = run_dir / "config.yaml"
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    config[section].update(values)
    path.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True), encoding="utf-8")


def test_resume_refuses_a_changed_model_naming_the_field(finished_run):
    edit_config(finished_run, "model", n_layer=3)
    edit_config(finished_run, "train", max_steps=6)  # work left to do, so the model is compared
    result = run_luna("resume", str(finished_run), "--quiet")
    assert result.returncode == 2
    assert result.stderr.startswith("error:") and "Traceback" not in result.stderr
    assert "model.n_layer: 2 -> 3" in result.stderr


def test_resume_warns_about_a_changed_micro_batch_and_runs(finished_run):
    edit_config(finished_run, "train", micro_batch_size=2, max_steps=6)  # two more steps
    result = run_luna("resume", str(finished_run))
    assert result.returncode == 0, result.stderr
    assert "warning: train.micro_batch_size changed from 4 to 2" in result.stderr
    assert json.loads((finished_run / "summary.json").read_text())["steps"] == 6


def test_changed_micro_batch_takes_effect_on_resume(finished_run):
    """The warning says the resumed run 'will no longer match an uninterrupted run': the edited
    micro-batch must actually be used (restore() currently puts the checkpoint's value back)."""
    edit_config(finished_run, "train", micro_batch_size=2, max_steps=6)
    result = run_luna("resume", str(finished_run), "--quiet")
    assert result.returncode == 0, result.stderr
    saved = torch.load(finished_run / "checkpoints" / "step-00000006" / "train_state.pt", weights_only=True)
    assert saved["state"]["micro_batch_size"] == 2


def test_quiet_resume_still_prints_warnings(finished_run):
    """--quiet hides the progress bar and samples (its help says so), not warnings about the run."""
    edit_config(finished_run, "train", micro_batch_size=2, max_steps=6)
    result = run_luna("resume", str(finished_run), "--quiet")
    assert result.returncode == 0, result.stderr
    assert "warning: train.micro_batch_size changed from 4 to 2" in result.stderr


def test_resume_without_any_good_checkpoint_is_a_clear_error(finished_run):
    for checkpoint in sealed_step_checkpoints(finished_run):
        flip_byte(checkpoint / "model.safetensors")
    edit_config(finished_run, "train", max_steps=6)
    result = run_luna("resume", str(finished_run), "--quiet")
    assert result.returncode == 2
    assert "no complete step checkpoint" in result.stderr and "Traceback" not in result.stderr


def test_resuming_a_finished_run_says_so_and_writes_nothing(finished_run):
    before = {p: p.stat().st_mtime_ns for p in finished_run.rglob("*")}
    result = run_luna("resume", str(finished_run), "--quiet")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{finished_run} already finished (completed at step 4): there is nothing to resume" in result.stderr
    model = finished_run / "checkpoints" / ("best" if (finished_run / "checkpoints" / "best").is_dir() else "final")
    assert f"its model is in {model}." in " ".join(result.stderr.split())  # the one the summary said to use
    assert "raise train.max_steps" in result.stderr
    assert {p: p.stat().st_mtime_ns for p in finished_run.rglob("*")} == before
    for checkpoint in sealed_step_checkpoints(finished_run):  # a run that kept no step checkpoint
        shutil.rmtree(checkpoint)
    result = run_luna("resume", str(finished_run), "--quiet")
    assert result.returncode == 2 and "it cannot be continued" in result.stderr
    assert f"luna train --config {finished_run / 'config.yaml'} --name NEW_NAME" in result.stderr


# --- bad input through the CLI -------------------------------------------------------------------
def one_error_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    return lines[0]


@pytest.mark.parametrize("flag,value,field", [("--context", "0", "data.context_length"),
                                              ("--batch-size", "0", "train.micro_batch_size"),
                                              ("--max-steps", "-5", "train.max_steps")])
def test_train_rejects_invalid_values_naming_the_field(tmp_path, flag, value, field):
    corpus = write_corpus(tmp_path / "corpus")
    result = run_luna("train", str(corpus), flag, value, "--runs-dir", str(tmp_path / "runs"), "--quiet")
    assert field in one_error_line(result)
    assert not (tmp_path / "runs").exists()


def test_resume_of_a_missing_folder_exits_2(tmp_path):
    line = one_error_line(run_luna("resume", str(tmp_path / "nonexistent")))
    assert "not a lunalm run directory" in line


def test_generate_from_a_missing_checkpoint_exits_2(tmp_path):
    line = one_error_line(run_luna("generate", str(tmp_path / "nonexistent"), "--prompt", "x"))
    assert "does not exist" in line


class _Trap:
    """Unpickling this creates ``path``: proof that something unpickled the file."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_generate_refuses_pickle_weights_without_unpickling(tmp_path):
    folder = tmp_path / "hf_model"
    folder.mkdir()
    marker = tmp_path / "unpickled"
    (folder / "pytorch_model.bin").write_bytes(pickle.dumps({"weight": _Trap(marker)}))
    line = one_error_line(run_luna("generate", str(folder), "--prompt", "x"))
    assert "pickle" in line and "pytorch_model.bin" in line and "safetensors" in line
    assert not marker.exists()


# --- hostile situations (issue 19) -----------------------------------------------------------------
def test_a_second_process_on_the_same_run_is_refused(finished_run):
    import fcntl

    edit_config(finished_run, "train", max_steps=6)
    with open(finished_run / ".lock", "a+") as held:  # another `luna resume` of this run, mid-training
        fcntl.flock(held.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        result = run_luna("resume", str(finished_run), "--quiet")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{finished_run} is being trained right now" in result.stderr
    assert not list(finished_run.glob("checkpoints/step-00000006"))


def test_sealed_but_unloadable_train_state_falls_back_to_the_previous_checkpoint(finished_run, tmp_path):
    from lunalm.train.checkpoint import _sha256

    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    newest = finished_run / "checkpoints" / "step-00000004"
    (newest / "train_state.pt").write_bytes(pickle.dumps({"state": Payload()}))
    manifest = json.loads((newest / "manifest.json").read_text())  # sealed again, as an attacker would
    manifest["files"]["train_state.pt"] = {"size": (newest / "train_state.pt").stat().st_size,
                                           "sha256": _sha256(newest / "train_state.pt")}
    (newest / "manifest.json").write_text(json.dumps(manifest))
    edit_config(finished_run, "train", max_steps=6)
    result = run_luna("resume", str(finished_run), "--quiet")
    assert result.returncode == 0, result.stderr
    assert "checkpoint step-00000004 is damaged" in result.stderr and "falling back" in result.stderr
    assert not marker.exists()
    events_seen = [r for r in read_jsonl(finished_run / "events.jsonl") if r["kind"] == "resume"]
    assert events_seen[-1]["message"] == "resumed from step-00000002"
    assert json.loads((finished_run / "summary.json").read_text())["steps"] == 6


def test_train_and_resume_give_the_same_advice_for_a_run_without_a_checkpoint(finished_run):
    checkpoints = finished_run / "checkpoints"
    for path in list(checkpoints.iterdir()):
        shutil.rmtree(path)
    (checkpoints / "step-00000002").mkdir()  # killed during its first checkpoint: no manifest
    advice = f"Nothing can be continued: delete {finished_run} and run the same `luna train ... --name run` again"
    resumed = run_luna("resume", str(finished_run), "--quiet")
    corpus = finished_run.parents[1] / "corpus"
    trained = run_luna("train", str(corpus), "--name", "run", "--runs-dir", str(finished_run.parent), "--quiet")
    for result in (resumed, trained):
        assert result.returncode == 2 and "Traceback" not in result.stderr
        assert advice in result.stderr and "continue it with `luna resume" not in result.stderr


def test_sigterm_during_start_up_ends_like_ctrl_c(tmp_path):
    corpus = write_corpus(tmp_path / "corpus")
    config = write_yaml(tmp_path / "tiny.yaml", tmp_path / "cache")
    process = spawn_luna("train", str(corpus), "--config", str(config), "--runs-dir", str(tmp_path / "runs"),
                         "--quiet", log=tmp_path / "log.txt")

    def loading_torch():  # main() is running: the CLI imports torch only inside the command
        try:
            return "torch" in open(f"/proc/{process.pid}/maps").read()
        except OSError:
            return False

    wait_for(loading_torch, process, "torch being imported", timeout=60)
    os.kill(process.pid, signal.SIGTERM)
    assert process.wait(timeout=60) == 130
    log = (tmp_path / "log.txt").read_text()
    assert log.strip().splitlines()[-1] == "interrupted" and "Traceback" not in log


@pytest.mark.parametrize("left", [("config.yaml", "metrics.jsonl"), ("checkpoints/best/lunalm.json",)])
def test_a_name_whose_run_died_before_a_step_checkpoint_is_refused_with_one_advice(tmp_path, left):
    """Killed before its first checkpoint, a run leaves its config and metrics: a new run of the same name
    appended to them and took over its registry row. Killed after its first evaluation, it leaves best/
    alone: train said "resume it", and resume said "train again"."""
    from lunalm.errors import LunaError
    from lunalm.train.session import start

    config = tiny_config(tmp_path, write_corpus(tmp_path / "corpus"), name="reuse", max_steps=2)
    for part in left:
        (tmp_path / "runs" / "reuse" / part).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "runs" / "reuse" / part).write_text("{}", encoding="utf-8")
    with pytest.raises(LunaError, match=r"stopped before its first complete step checkpoint\. Nothing can be "
                                        r"continued: delete .*reuse and run the same `luna train \.\.\. --name reuse`"):
        start(config, SilentUI(), progress=False)


def test_a_yaml_number_written_3e_3_is_a_number():
    from lunalm.config import run_config_from_dict
    from lunalm.errors import ConfigError

    assert run_config_from_dict({"train": {"lr": "3e-3", "weight_decay": "1E-1"}}).train.lr == 0.003
    with pytest.raises(ConfigError, match="train.lr = 'fast': expected a number"):
        run_config_from_dict({"train": {"lr": "fast"}})
