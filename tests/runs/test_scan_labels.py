"""``luna scan`` on real public code and real runs (``tests/runs/scan_set``, see its README): the labelled
set's goals, and each fact of issue 16 on the file that shows it."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from lunalm.runs.scan import Scanner, scan

SET = Path(__file__).parent / "scan_set"
BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_scan_labels.py"


@pytest.fixture(scope="module")
def attempts():
    return {str(Path(a.path).relative_to(SET)): a for a in scan([str(SET)])}


def test_labelled_set_meets_its_goals(attempts):
    spec = importlib.util.spec_from_file_location("bench_scan_labels", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    results = bench.score(attempts, json.loads((SET / "labels.json").read_text(encoding="utf-8")))
    whole = bench.total(results)
    assert (whole["listed"], whole["labelled"], whole["found"]) == (19, 19, 19)
    assert whole["precision"] >= 0.95 and whole["recall"] >= 0.9 and whole["field_accuracy"] >= 0.95, results
    assert results["minbpe"]["listed"] == 0  # a tokenizer trainer and its tests are no training attempts
    assert whole["tasks_right"] >= 18  # the Lightning char model gives no sign that it is a language model


def test_nanogpt_settings_come_from_what_ran(attempts):
    """The log's `Overriding:` lines beat the config file it names, which beats train.py's defaults."""
    run = attempts["nanogpt/train.log"]
    assert (run.lr, run.batch_size, run.grad_accum, run.device, run.precision, run.corpus) == \
        (1e-3, 8, 1, "cpu", "fp32", "shakespeare_char")
    config = "config/train_shakespeare_char.py (named at train.log:1)"
    assert run.extra["sources"] == {
        "model": "train.py (in the script)", "optimizer": "train.py (in the script)", "lr": config,
        "grad_accum": config, "corpus": config, "batch_size": "train.log:45", "device": "train.log:40",
        "precision": "train.log:40: device cpu (the half-precision default of train.py applies to CUDA)"}
    assert run.extra["log_overrides"]["batch_size"] == [8, "train.log:45"]
    assert run.extra["config_files"][0]["values"]["learning_rate"] == 1e-3
    assert "nanogpt/train.py" not in attempts and "nanogpt/bench.py" not in attempts


def test_config_file_named_in_the_log_is_read_from_disk_when_not_printed(tmp_path):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "small.py").write_text("learning_rate = 3e-3\nbatch_size = 4\n")
    (tmp_path / "train.py").write_text((SET / "nanogpt" / "train.py").read_text())
    (tmp_path / "train.log").write_text("Overriding config with config/small.py:\nOverriding: batch_size = 2\n"
                                        "iter 0: loss 4.0\niter 1: loss 3.0\niter 2: loss 2.0\n")
    (run,) = scan([str(tmp_path)])
    assert (run.lr, run.batch_size, run.grad_accum) == (3e-3, 2, 40)  # 40: train.py's default
    assert run.extra["sources"]["lr"] == "config/small.py (named at train.log:1)"


def test_argparse_namespace_printed_in_the_log_beats_the_defaults(tmp_path):
    (tmp_path / "train.py").write_text(
        "import argparse, torch\np = argparse.ArgumentParser()\np.add_argument('--lr', type=float, default=0.1)\n"
        "p.add_argument('--batch-size', type=int, default=64)\nargs = p.parse_args()\n"
        "opt = torch.optim.SGD([], lr=args.lr)\nopt.step()\n")
    (tmp_path / "train.log").write_text("Namespace(batch_size=16, lr=0.003)\nstep 1 loss 2.0\nstep 2 loss 1.5\n")
    (run,) = scan([str(tmp_path)])
    assert (run.lr, run.batch_size) == (0.003, 16)
    assert run.extra["sources"]["lr"] == "train.log:1"


@pytest.mark.parametrize("version", ["4", "5"])
def test_trainer_logs_of_transformers_4_and_5(version):
    """5.x prints {'loss': '3.618', ...} with strings; both give the same curve shape as trainer_state."""
    (log,) = scan([str(SET / "runs" / f"transformers{version}" / "train.log")])
    state = json.loads((SET / "runs" / f"transformers{version}" / "out" / "checkpoint-30" / "trainer_state.json")
                       .read_text())
    logged = [row["loss"] for row in state["log_history"] if "loss" in row]
    train = [value for _, kind, value in log.metrics if kind == "train"]
    assert len(train) == len(logged) == 6 and train == pytest.approx(logged, abs=6e-4)
    assert len([row for row in log.metrics if row[1] == "val"]) == 3
    assert (log.outcome, log.status) == ("success", "completed")


@pytest.mark.parametrize("version", ["4", "5"])
def test_log_script_and_checkpoints_of_one_run_are_one_attempt(version):
    found = list(scan([str(SET / "runs" / f"transformers{version}")]))
    (run,) = found
    assert run.source == "hf-trainer" and run.extra["paired"] == [str(SET / "runs" / f"transformers{version}" /
                                                                       "train.log")]
    assert run.lr == 5e-4 and run.extra["peak_logged_lr"] == pytest.approx(4.2e-4)  # configured, not logged max
    assert (run.batch_size, run.grad_accum, run.device, run.steps) == (4, 2, "cpu", 30)


def test_script_beside_its_trainer_state_is_one_attempt(attempts):
    run = attempts["hf-trainer-lora-imdb"]
    assert (run.model, run.lr, run.corpus, run.lora["r"]) == ("distilbert-base-uncased", 2e-4, "imdb", 8)
    assert "hf-trainer-lora-imdb/main.py" not in attempts


def test_evidence_cites_the_cell_with_the_losses_and_labels_smoothing(attempts):
    run = attempts["llms-from-scratch/ch05/01_main-chapter-code/ch05.ipynb"]
    assert run.evidence == ("ch05.ipynb cell 78 output:27: val loss 9.92 → 6.37 over steps 0–85 (first and last "
                            "logged; smoothed, means of 5: 7.68 → 6.26), no error")


def notebook(*cells) -> dict:
    return {"cells": [{"cell_type": "code", "execution_count": i, "source": source, "outputs": outputs}
                      for i, (source, outputs) in enumerate(cells, start=1)], "metadata": {}, "nbformat": 4}


def stream(text: str) -> list:
    return [{"output_type": "stream", "name": "stdout", "text": text}]


def error(name: str, value: str) -> list:
    return [{"output_type": "error", "ename": name, "evalue": value, "traceback": [f"{name}: {value}"]}]


TRAIN_CELL = ("import torch\nopt = torch.optim.AdamW(model.parameters(), lr=1e-3)\nfor step in range(3):\n"
              "    loss = model(x).mean()\n    loss.backward()\n    opt.step()\n    print(f'step {step} loss {loss}')\n")


def test_an_error_outside_the_training_cells_is_not_a_crash(tmp_path):
    book = notebook(("d = {'a': 1}\nd['Hello']", error("KeyError", "'Hello'")),
                    (TRAIN_CELL, stream("step 0 loss 3.0\nstep 1 loss 2.0\nstep 2 loss 1.0\n")))
    (tmp_path / "demo.ipynb").write_text(json.dumps(book))
    (run,) = scan([str(tmp_path)])
    assert (run.outcome, run.error_kind) == ("success", None)
    assert run.extra["errors_outside_training"] == ["cell 1: KeyError: 'Hello'"]
    assert run.evidence.startswith("demo.ipynb cell 2 output:3: train loss 3 → 1")


def test_an_error_in_a_training_cell_is_a_crash(tmp_path):
    book = notebook(("def train_epoch(model, opt):\n    opt.step()\n", []),
                    ("train_epoch(model, opt)", error("RuntimeError", "CUDA error: device-side assert triggered")))
    (tmp_path / "crash.ipynb").write_text(json.dumps(book))
    (run,) = scan([str(tmp_path)])
    assert (run.outcome, run.error_kind) == ("failure", "other-exception")
    assert run.evidence.startswith("crash.ipynb cell 2 output")


def test_without_an_optimizer_step_there_is_no_attempt(tmp_path):
    autograd = notebook(("import torch\nx = torch.ones(2, requires_grad=True)\nloss = (x * 2).sum()\nloss.backward()",
                         stream("loss 4.0\nloss 3.0\n")))
    (tmp_path / "autograd.ipynb").write_text(json.dumps(autograd))
    (tmp_path / "chinchilla.py").write_text("def L(N, D):\n    return 1.69 + 406.4 / N**0.34\nprint('loss', L(1e9, 2e10))\n")
    assert list(scan([str(tmp_path)])) == []
    assert "nanogpt/scaling_laws.ipynb" not in scan_paths(SET / "nanogpt")


def scan_paths(root: Path) -> set[str]:
    return {str(Path(a.path).relative_to(root.parent)) for a in scan([str(root)])}


def test_tests_and_benchmarks_are_attempts_only_with_a_log_of_their_own(tmp_path):
    trains = "import torch\nopt = torch.optim.SGD([], lr=0.1)\nopt.step()\n"
    for name in ("test_training.py", "bench_step.py", "conftest.py"):
        (tmp_path / name).write_text(trains)
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "loop.py").write_text(trains)
    assert list(scan([str(tmp_path)])) == []
    (tmp_path / "bench_step.log").write_text("step 1 loss 2.0\nstep 2 loss 1.0\n")
    (run,) = scan([str(tmp_path)])
    assert (run.source, run.lr, run.extra["script"]) == ("log", 0.1, str(tmp_path / "bench_step.py"))


def test_the_labelled_set_scans_in_a_few_seconds():
    scanner = Scanner()
    labelled = json.loads((SET / "labels.json").read_text(encoding="utf-8"))["repos"]
    found = [Path(attempt.path).relative_to(SET).parts[0] for attempt in scanner.scan([str(SET)])]
    assert len([repo for repo in found if repo in labelled]) == 19  # the rest: QA folders (see the README)
    assert scanner.stats.skipped == []


def test_runs_show_names_the_source_of_each_setting(tmp_path):
    from tests.conftest import run_luna

    registry = str(tmp_path / "reg.sqlite")
    assert run_luna("scan", str(SET / "nanogpt"), "--registry", registry, "--quiet").returncode == 0
    shown = run_luna("runs", "show", "nanogpt/train.log", "--registry", registry)
    assert shown.returncode == 0, shown.stderr
    assert "  lr                0.001   (from config/train_shakespeare_char.py (named at train.log:1))" in shown.stdout
    assert "  batch_size        8   (from train.log:45)" in shown.stdout


def test_printed_training_arguments_beat_the_script(tmp_path):
    """`print(training_args)` as transformers 5.24 prints it: one `name=value,` a line."""
    (tmp_path / "train.py").write_text(
        "from transformers import Trainer, TrainingArguments\n"
        "args = TrainingArguments(output_dir='o', learning_rate=5e-5, per_device_train_batch_size=8)\n"
        "Trainer(model=model, args=args).train()\n")
    (tmp_path / "train.log").write_text(
        "TrainingArguments(\naccelerator_config={'split_batches': False, 'dispatch_batches': None},\n"
        "adam_beta1=0.9,\nbf16=False,\ngradient_accumulation_steps=4,\nlearning_rate=0.0003,\n"
        "per_device_train_batch_size=2,\nuse_cpu=True,\n)\n"
        "{'loss': '3.618', 'grad_norm': '1.738', 'learning_rate': '0.0004', 'epoch': '0.2439'}\n"
        "{'loss': '3.544', 'grad_norm': '1.223', 'learning_rate': '0.00042', 'epoch': '0.4878'}\n")
    (run,) = scan([str(tmp_path)])
    assert (run.lr, run.batch_size, run.grad_accum, run.device) == (3e-4, 2, 4, "cpu")
    assert run.extra["sources"]["lr"] == "train.log:1"
    assert [row[2] for row in run.metrics] == [3.618, 3.544]


def test_an_assigned_batch_size_beats_a_demo_loaders_keyword(tmp_path):
    (tmp_path / "train.py").write_text(
        "import torch\ndemo = DataLoader(data[:4], batch_size=2)\nbatch_size = 8\n"
        "loader = DataLoader(data, batch_size=batch_size)\nopt = torch.optim.AdamW([], lr=1e-4)\nopt.step()\n")
    (run,) = scan([str(tmp_path)])
    assert run.batch_size == 8


def test_a_data_file_joined_to_a_path_names_the_corpus(tmp_path):
    (tmp_path / "train.py").write_text(
        "import torch\nfrom pathlib import Path\ndata_file_path = Path(extracted) / 'SMSSpamCollection.tsv'\n"
        "opt = torch.optim.AdamW([], lr=1e-4)\nopt.step()\n")
    (run,) = scan([str(tmp_path)])
    assert run.corpus == "SMSSpamCollection.tsv"


def test_cells_after_the_last_training_cell_do_not_set_the_attempts_settings(tmp_path):
    """ch05 of LLMs-from-scratch trains from scratch, then loads GPT-2 weights for a demo."""
    book = notebook(("model = GPTModel(cfg)\nbatch_size = 2", []),
                    (TRAIN_CELL, stream("step 0 loss 3.0\nstep 1 loss 2.0\nstep 2 loss 1.0\n")),
                    ("model_name = 'gpt2-small (124M)'\nbatch_size = 16\nload_weights(model, model_name)", []))
    (tmp_path / "book.ipynb").write_text(json.dumps(book))
    (run,) = scan([str(tmp_path)])
    assert (run.model, run.batch_size, run.lr, run.extra["task"]) == (None, 2, 1e-3, "causal-LM pretraining")


def test_benchmarks_nested_below_a_benchmarks_folder_are_not_attempts_but_a_tests_root_is_scanned(tmp_path):
    trains = "import torch\nopt = torch.optim.SGD([], lr=0.1)\nopt.step()\n"
    (tmp_path / "benchmarks" / "fp8" / "ddp").mkdir(parents=True)
    (tmp_path / "benchmarks" / "fp8" / "ddp" / "train.py").write_text(trains)
    assert list(scan([str(tmp_path)])) == []
    (tmp_path / "tests" / "exp").mkdir(parents=True)
    (tmp_path / "tests" / "exp" / "train.py").write_text(trains)
    assert [a.name for a in scan([str(tmp_path / "tests" / "exp")])] == ["exp/train.py"]


def test_a_notebook_and_the_trainer_state_it_wrote_are_one_attempt(tmp_path):
    source = ("from transformers import Trainer, TrainingArguments\n"
              "args = TrainingArguments(output_dir='out', learning_rate=5e-4, per_device_train_batch_size=4)\n"
              "trainer = Trainer(model=model, args=args)\ntrainer.train()")
    (tmp_path / "finetune.ipynb").write_text(json.dumps(notebook((source, stream("{'loss': '3.618'}\n")))))
    (tmp_path / "out" / "checkpoint-30").mkdir(parents=True)
    state = SET / "runs" / "transformers5" / "out" / "checkpoint-30" / "trainer_state.json"
    (tmp_path / "out" / "checkpoint-30" / "trainer_state.json").write_bytes(state.read_bytes())
    (run,) = scan([str(tmp_path)])
    assert (run.source, run.lr, run.outcome, run.steps) == ("hf-trainer", 5e-4, "success", 30)
    assert run.extra["paired"] == [str(tmp_path / "finetune.ipynb")]


@pytest.mark.parametrize("update", ["p.data -= 0.1 * p.grad", "p.data.add_(p.grad, alpha=-0.1)"])
def test_an_optimizer_step_written_out_by_hand_is_an_attempt(tmp_path, update):
    (tmp_path / "micro.py").write_text(f"for step in range(10):\n    loss.backward()\n    for p in params:\n"
                                       f"        {update}\n")
    assert [a.name for a in scan([str(tmp_path)])] == [f"{tmp_path.name}/micro.py"]


class _Marker:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_a_lightning_run_its_script_and_its_log_are_one_attempt(tmp_path):
    import pickle
    import shutil

    shutil.copytree(SET / "runs" / "lightning", tmp_path / "project")
    run_dir = tmp_path / "project" / "logs" / "char" / "version_0"
    (run_dir / "checkpoints").mkdir()
    marker = tmp_path / "unpickled"
    (run_dir / "checkpoints" / "epoch=3-step=40.ckpt").write_bytes(pickle.dumps(_Marker(str(marker))))
    (run,) = scan([str(tmp_path / "project")])
    assert (run.source, run.name, run.outcome, run.steps) == ("lightning", "char/version_0", "success", 39)
    assert (run.lr, run.batch_size, run.device, run.corpus) == (3e-3, 16, "cpu", "text.txt")
    assert run.extra["sources"]["lr"] == run.extra["sources"]["batch_size"] == "hparams.yaml"
    assert run.extra["sources"]["corpus"] == "train.py (in the script)"  # what the log's script lent the run
    assert run.extra["paired"] == [str(tmp_path / "project" / "train.log")]
    assert run.extra["checkpoints"] == ["epoch=3-step=40.ckpt"] and not marker.exists()
    assert run.evidence.startswith("metrics.csv:25: val loss 3.35 → 2.57 over steps 9–39")
    assert len([row for row in run.metrics if row[1] == "val"]) == 4


def test_settings_under_a_test_mode_branch_are_not_the_runs(tmp_path):
    (tmp_path / "train.py").write_text(
        "import torch\nif args.test_mode:\n    model_name = 'tiny-test'\n    batch_size = 2\nelse:\n"
        "    model_name = 'gpt2-medium'\n    batch_size = 32\nopt = torch.optim.AdamW([], lr=1e-4)\nopt.step()\n")
    (run,) = scan([str(tmp_path)])
    assert (run.model, run.batch_size) == ("gpt2-medium", 32)


LIBRARY_TRAINER = """\
import torch

class Trainer:
    def __init__(self, model, lr=3e-4):
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=lr)

    def run(self, batches):
        for batch in batches:
            self.optimizer.zero_grad()
            self.model(batch).backward()
            self.optimizer.step()
"""


def test_a_library_module_with_a_training_loop_is_not_an_attempt_until_something_runs_it(tmp_path):
    """minGPT's mingpt/trainer.py defines the loop; projects/chargpt/chargpt.py runs it."""
    (tmp_path / "trainer.py").write_text(LIBRARY_TRAINER)
    assert list(scan([str(tmp_path)])) == []
    (tmp_path / "trainer.py").write_text(LIBRARY_TRAINER + "\nif __name__ == '__main__':\n    Trainer(m).run(b)\n")
    assert len(list(scan([str(tmp_path)]))) == 1
    (tmp_path / "trainer.py").write_text(LIBRARY_TRAINER + "\ndef main():\n    Trainer(m).run(b)\n\nfire.Fire(main)\n")
    assert len(list(scan([str(tmp_path)]))) == 1


def test_mingpt_settings_architecture_device_and_an_eval_loader(attempts):
    demo = attempts["minGPT/demo.ipynb"]
    assert (demo.model, demo.device, demo.extra["task"]) == ("gpt-nano", "cuda", "causal-LM pretraining")
    adder = attempts["minGPT/projects/adder/adder.py"]
    assert adder.batch_size is None  # 100 is eval_split's DataLoader; the training batch is the library default
    assert "minGPT/mingpt/trainer.py" not in attempts
