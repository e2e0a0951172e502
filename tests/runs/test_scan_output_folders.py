"""What a second round of real repositories taught ``luna scan``: a run's console log or notebook saved in
its own Trainer output folder, the Trainer's end-of-run summary (a mean, not the last loss), LLaMA-Factory's
``trainer_log.jsonl``, the Hugging Face example scripts' time stamps, a project write-up that mentions NaN
losses, and the Hub cache path a config was loaded from. The lines are shaped as in those repositories."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from lunalm.runs.registry import Registry
from lunalm.runs.scan import scan
from lunalm.runs.scan.classify import classify_line
from lunalm.runs.scan.hf_trainer import hub_id
from lunalm.runs.scan.logs import LogParser, time_stamp
from tests.conftest import run_luna


def _state(steps: int, max_steps: int, evals: list[float], lr_at: dict[int, float] | None = None) -> dict:
    history = [{"step": (i + 1) * steps // len(evals), "eval_loss": value} for i, value in enumerate(evals)]
    history += [{"step": step, "loss": 1.0 + step / 1e4, "learning_rate": lr} for step, lr in (lr_at or {}).items()]
    return {"global_step": steps, "max_steps": max_steps, "num_train_epochs": 1, "epoch": 1.0,
            "log_history": sorted(history, key=lambda entry: entry["step"])}


CONSOLE = ["03/22/2024 09:51:20 - WARNING - __main__ - Process rank: 0, device: cuda:0, n_gpu: 1",
           "  0%|          | 0/600 [00:00<?, ?it/s]",
           "{'loss': 1.1409, 'grad_norm': 2.75, 'learning_rate': 1.8e-05, 'epoch': 0.91}",
           "{'eval_loss': 0.6597, 'eval_rouge-1': 46.5, 'eval_runtime': 2725.7, 'epoch': 1.0}",
           "{'loss': 0.2645, 'grad_norm': 3.68, 'learning_rate': 1.78e-06, 'epoch': 9.11}",
           "{'eval_loss': 0.4853, 'eval_rouge-1': 49.8, 'eval_runtime': 3032.1, 'epoch': 10.0}",
           "{'train_runtime': 64358.151, 'train_samples_per_second': 0.511, 'train_loss': 0.4479, 'epoch': 10.0}",
           "***** train metrics *****",
           "  epoch                    =       10.0",
           "  train_loss               =     0.4479",
           "  train_runtime            = 17:52:38.15",
           "learning_rate=2e-05,"]


def test_a_console_log_in_its_trainer_output_folder_is_that_run_not_a_second_one(tmp_path: Path):
    folder = tmp_path / "cpt"
    folder.mkdir()
    (folder / "trainer_state.json").write_text(json.dumps(_state(600, 600, [0.6597, 0.4853], {540: 1.8e-05})))
    (folder / "cmd.txt").write_text("\n".join(CONSOLE) + "\n")
    [run] = list(scan([str(folder)]))
    assert run.source == "hf-trainer" and run.extra["paired"] == [str(folder / "cmd.txt")]
    assert run.final_train_loss == pytest.approx(1.054)  # the state's last logged loss, not the mean 0.4479
    assert run.wall_seconds is not None and run.lr == 2e-05  # the log's configured lr, not a logged value
    other = tmp_path / "other"  # a log of another run in the same kind of folder stays apart
    other.mkdir()
    (other / "trainer_state.json").write_text(json.dumps(_state(600, 600, [0.7, 0.61])))
    (other / "cmd.txt").write_text("\n".join(CONSOLE) + "\n")
    assert sorted(run.source for run in scan([str(other)])) == ["hf-trainer", "log"]


def test_a_notebook_that_ran_past_the_last_checkpoint_completes_the_folders_run(tmp_path: Path):
    folder = tmp_path / "tinyllama"
    folder.mkdir()
    (folder / "trainer_state.json").write_text(json.dumps(_state(2800, 2808, [1.3, 1.1219])))
    table = ("<progress value='2808' max='2808'></progress> [2808/2808 4:35:52, Epoch 2/2]<table><thead><tr>"
             "<th>Step</th><th>Training Loss</th><th>Validation Loss</th></tr></thead><tbody>"
             "<tr><td>1400</td><td>1.2</td><td>1.3</td></tr><tr><td>2800</td><td>1.025</td><td>1.1219</td></tr>"
             "</tbody></table>")
    summary = ("TrainOutput(global_step=2808, training_loss=1.2032487703184795, metrics={'train_runtime': "
               "16552.9917, 'train_loss': 1.2032487703184795, 'epoch': 2.0})")
    cells = [{"cell_type": "code", "source": "trainer = Trainer(model=model, args=args)\ntrainer.train()",
              "outputs": [{"output_type": "display_data", "data": {"text/html": table}},
                          {"output_type": "execute_result", "data": {"text/plain": summary}}]}]
    (folder / "finetune.ipynb").write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4}))
    [run] = list(scan([str(folder)]))
    assert (run.source, run.outcome, run.status, run.steps) == ("hf-trainer", "success", "completed", 2808)
    assert run.final_train_loss == 1.025 and run.wall_seconds == pytest.approx(16552.9917)


def test_the_trainers_mean_loss_is_not_the_final_loss_and_its_runtime_is_the_wall_time():
    parser = LogParser("cmd.txt")
    for number, line in enumerate(CONSOLE, start=1):
        parser.feed(number, line)
    parser.finish()
    assert parser.train.last[1] == 0.2645 and [v for _, v in parser.train.all_points()] == [1.1409, 0.2645]
    assert parser.runtime == 17 * 3600 + 52 * 60 + 38.15
    assert parser.first_time == datetime(2024, 3, 22, 9, 51, 20).timestamp()
    assert time_stamp("22/03/2024 09:51:20 - INFO") == datetime(2024, 3, 22, 9, 51, 20).timestamp()
    assert time_stamp("3/22/2024 step") is None


def test_an_epoch_table_is_placed_at_its_steps_and_evaluate_after_it_at_the_last_one(tmp_path: Path):
    table = ("<progress value='500' max='500'></progress> [500/500 2:15:01, Epoch 1/1]<table><thead><tr>"
             "<th>Epoch</th><th>Training Loss</th><th>Validation Loss</th></tr></thead><tbody><tr><td>1</td>"
             "<td>0.643600</td><td>0.589307</td></tr></tbody></table>")
    cells = [{"cell_type": "code", "source": "trainer.train()",
              "outputs": [{"output_type": "display_data", "data": {"text/html": table}}]},
             {"cell_type": "code", "source": "trainer.evaluate()",
              "outputs": [{"output_type": "stream", "text": "{'eval_loss': 0.5893072485923767, 'epoch': 1.0}"}]}]
    (tmp_path / "model.ipynb").write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4}))
    [run] = list(scan([str(tmp_path)]))
    assert run.metrics == [(500, "train", 0.6436), (500, "val", 0.5893072485923767)] and run.steps == 500


def test_llama_factory_trainer_log_gives_steps_time_and_the_adapter(tmp_path: Path):
    lines = []
    for step in range(10, 6760, 10):
        record = {"current_steps": step, "total_steps": 6750, "loss": round(2.2 - step / 10_000, 4),
                  "lr": 1e-4 * (1 - step / 6750), "epoch": 3 * step / 6750, "percentage": 100 * step / 6750,
                  "elapsed_time": f"{step * 3.63 // 3600:.0f}:{step * 3.63 % 3600 // 60:02.0f}:{step * 3.63 % 60:02.0f}",
                  "remaining_time": "0:00:00"}
        lines += [json.dumps(record)] * 2  # two processes wrote every step
    (tmp_path / "trainer_log.jsonl").write_text("\n".join(lines) + "\n")
    (tmp_path / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "./Qwen2.5-7B-Instruct",
                                                              "r": 8, "lora_alpha": 16}))
    (tmp_path / "all_results.json").write_text(json.dumps({"epoch": 3.0, "eval_loss": 1.5778,
                                                           "train_runtime": 24486.754}))
    [run] = list(scan([str(tmp_path)]))
    assert run.steps == 6750 and "steps_counted" not in run.extra and len(run.metrics) == 675
    assert run.wall_seconds == 24502 and run.best_val_loss == 1.5778  # the last elapsed_time, 6:48:22 and run.extra["max_steps"] == 6750
    assert run.model == "./Qwen2.5-7B-Instruct" and run.lora["r"] == 8


def test_a_write_up_that_says_there_were_no_nan_losses_is_no_failure(tmp_path: Path):
    assert classify_line("- No numerical errors: Training logs show no NaN gradients or loss explosion") is None
    assert classify_line("Trained 3 epochs without CUDA out of memory errors") is None
    assert classify_line("RuntimeError: could not finish: CUDA out of memory. Tried to allocate 2 GiB") == "cuda-oom"
    assert classify_line("ERROR: could not allocate, CUDA out of memory") == "cuda-oom"
    assert classify_line("step 40: loss is nan") == "nan-loss"
    (tmp_path / "project proposal.txt").write_text(
        "Results\n- Batch size: 2\n- No numerical errors: Training logs show no NaN gradients or loss explosion\n")
    assert list(scan([str(tmp_path)])) == []


def test_a_late_logged_lr_is_not_taken_for_the_configured_one_and_new_configs_leave_the_task_open(tmp_path: Path):
    late = tmp_path / "late"
    late.mkdir()
    (late / "trainer_state.json").write_text(json.dumps(_state(500, 500, [], {500: 4e-08})))
    (late / "config.json").write_text(json.dumps({"architectures": ["GPTNeoXForCausalLM"], "model_type": "gpt_neox",
                                                  "transformers_version": "4.51.3"}))
    [run] = list(scan([str(late)]))
    assert run.lr is None and run.extra["peak_logged_lr"] == 4e-08 and "task" not in run.extra
    early = tmp_path / "early"
    early.mkdir()
    (early / "trainer_state.json").write_text(json.dumps(_state(500, 500, [], {50: 2e-05, 500: 4e-08})))
    (early / "config.json").write_text(json.dumps({"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2",
                                                   "transformers_version": "4.38.1"}))
    [run] = list(scan([str(early)]))
    assert run.lr == 2e-05 and run.extra["task"] == "causal-LM pretraining"  # old configs named their source


def test_a_hub_cache_path_is_named_by_its_model_id():
    assert hub_id(r"C:\Users\me\.cache\huggingface\hub\models--fnlp--cpt-large\snapshots\f07323ad") == "fnlp/cpt-large"
    assert hub_id("/root/.cache/huggingface/hub/models--gpt2/snapshots/607a30d") == "gpt2"
    assert hub_id("TinyLlama/TinyLlama-1.1B-Chat-v1.0") == "TinyLlama/TinyLlama-1.1B-Chat-v1.0"


def test_runs_show_prints_the_lora_quantisation_and_task(tmp_path: Path):
    registry = Registry(tmp_path / "runs" / "registry.sqlite")
    registry.upsert("hf-trainer:abc", source="hf-trainer", name="tinyllama", outcome="success", quantization="4bit",
                    lora={"r": 8, "alpha": 32, "dropout": 0.05, "target_modules": ["q_proj", "v_proj"]},
                    extra={"task": "fine-tuning"})
    shown = run_luna("runs", "show", "hf-trainer:abc", "--runs-dir", str(tmp_path / "runs"))
    assert shown.returncode == 0, shown.stderr
    assert "quantization      4bit" in shown.stdout
    assert "lora              r 8, alpha 32, dropout 0.05, on q_proj, v_proj" in shown.stdout
    assert "task              fine-tuning" in shown.stdout


def test_a_wandb_run_is_one_attempt_with_its_config_summary_and_console_output(tmp_path: Path):
    files = tmp_path / "wandb" / "run-20260122_085403-2pbgb5l6" / "files"
    files.mkdir(parents=True)
    (files / "config.yaml").write_text(
        "wandb_version: 1\n_wandb:\n  desc: null\n  value:\n    start_time: 1769072044\n"
        "learning_rate:\n  desc: null\n  value: 5.0e-05\nper_device_train_batch_size:\n  desc: null\n  value: 8\n"
        "num_train_epochs:\n  desc: null\n  value: 3\n_name_or_path:\n  desc: null\n  value: gpt2\n"
        "model_name_or_path:\n  desc: null\n  value: ytu-ce-cosmos/turkish-gpt2\n")
    (files / "wandb-summary.json").write_text(json.dumps(
        {"_runtime": 2543, "_timestamp": 1769074587.0, "_step": 13, "train/loss": 2.91, "eval/loss": 3.05,
         "train/global_step": 1500, "train/epoch": 3.0, "train/train_runtime": 2500.1}))
    (files / "output.log").write_text("{'loss': 3.9, 'learning_rate': 4e-05, 'epoch': 1.0}\n"
                                      "{'loss': 2.91, 'learning_rate': 1e-05, 'epoch': 3.0}\n")
    (files / "requirements.txt").write_text("torch==2.5.1\ntransformers==4.57.3\n")
    [run] = list(scan([str(tmp_path)]))
    assert (run.source, run.name, run.outcome) == ("wandb", "wandb/run-20260122_085403-2pbgb5l6", "success")
    assert run.started == 1769072044 and run.wall_seconds == 2500.1 and run.steps == 1500  # train_runtime
    assert (run.lr, run.batch_size, run.epochs, run.model) == (5e-05, 8, 3, "ytu-ce-cosmos/turkish-gpt2")
    assert run.final_train_loss == 2.91 and run.best_val_loss == 3.05
    assert run.extra["sources"]["best_val_loss"] == "wandb-summary.json: the last value logged"
    assert [loss for _, kind, loss in run.metrics if kind == "train"] == [3.9, 2.91]


def test_wandb_files_beside_a_script_are_the_evidence_that_it_ran(tmp_path: Path):
    (tmp_path / "train_simple.py").write_text(
        "import torch\nimport argparse\np = argparse.ArgumentParser()\np.add_argument('--lr', default=3e-4)\n"
        "model = torch.nn.Linear(2, 2)\nopt = torch.optim.Adam(model.parameters(), lr=3e-4)\n"
        "for epoch in range(100):\n    loss = model(torch.ones(2)).sum()\n    loss.backward()\n    opt.step()\n")
    (tmp_path / "wandb-metadata.json").write_text(json.dumps(
        {"startedAt": "2021-02-17T17:10:51.377193", "program": "train_simple.py", "gpu": "GeForce RTX 3090",
         "args": ["--batch_size=256", "--epochs", "50", "--lr=0.0016751916797300658"], "state": "running"}))
    (tmp_path / "wandb-summary.json").write_text(json.dumps({"bce_loss": 0.277, "epoch": 49, "_runtime": 383}))
    [run] = list(scan([str(tmp_path)]))
    assert run.source == "wandb" and run.extra["script"] == str(tmp_path / "train_simple.py")
    # "GeForce RTX 3090": the brand word is dropped (``names``)
    assert (run.lr, run.batch_size, run.epochs, run.device) == (0.0016751916797300658, 256, 50, "RTX 3090")
    assert (run.outcome, run.wall_seconds) == ("success", 383)
    assert run.evidence == "wandb-summary.json: epoch 49 (counted from 0) of 50 logged last"
    assert run.started == datetime(2021, 2, 17, 17, 10, 51, 377193).timestamp()


def test_a_long_logs_validation_lines_are_all_read_and_a_run_cut_off_at_step_n_of_m_did_not_finish():
    from lunalm.runs.scan.logs import PARSED_PER_STRIDE

    parser = LogParser("train.log")
    lines = ["val_loss = 0", "  --train_steps = 20000"]  # the script's source printed first, as modded-nanogpt does
    for step in range(0, 8 * PARSED_PER_STRIDE):
        lines.append(f"step:{step}/20000 train_loss:{5 - step / 4000:.6e} train_time:{step * 4450}ms")
        if step % 1000 == 0:
            lines.append(f"step:{step}/20000 val_loss:{1 / (step + 1):.4e} train_time:{step * 4450}ms")
    for number, line in enumerate(lines, start=1):
        parser.feed(number, line)
    verdict = parser.verdict()
    assert [step for step, _ in parser.val.all_points()] == list(range(0, 8000, 1000))  # none thinned out
    assert min(value for _, value in parser.val.all_points()) == pytest.approx(1 / 7001, rel=1e-3)
    assert verdict.outcome == "unknown" and "the last step logged is 7999 of 20000" in verdict.evidence
    done = LogParser("train.log")
    for number, line in enumerate(["step:19990/20000 train_loss:2.1", "step:20000/20000 val_loss:2.3"], start=1):
        done.feed(number, line)
    assert done.verdict().outcome != "unknown" or "of 20000" not in done.verdict().evidence


def test_code_saved_as_text_is_no_run_and_keras_running_values_are_not_the_epochs_loss(tmp_path: Path):
    (tmp_path / "train_gpt.txt").write_text("import torch\n\ndef train():\n    val_loss = 0\n    return val_loss\n")
    assert list(scan([str(tmp_path)])) == []
    parser = LogParser("output.log")
    for number, line in enumerate(["Epoch 1/2", " 50/100 [=====>....] - ETA: 2s - loss: 1.2105",
                                   "100/100 [==========] - 5s 50ms/step - loss: 1.1000 - val_loss: 1.0500",
                                   "Epoch 2/2", " 50/100 [=====>....] - ETA: 2s - loss: 0.5000",
                                   "100/100 [==========] - 5s 50ms/step - loss: 0.4426 - val_loss: 0.3682",
                                   "31/31 [==========] - 1s 5s/step - loss: 0.3682 - accuracy: 0.8669"], start=1):
        parser.feed(number, line)  # the last line: model.evaluate() on the validation data, not training
    parser.finish()
    assert [value for _, value in parser.train.all_points()] == [1.1, 0.4426]


def test_trainer_output_results_files_and_start_time(tmp_path: Path):
    folder = tmp_path / "t5"
    (folder / "runs" / "Mar24_22-23-40_DESKTOP").mkdir(parents=True)
    (folder / "runs" / "Mar24_22-23-40_DESKTOP" / "events.out.tfevents.1742826235.DESKTOP.1234.0").write_bytes(b"x")
    state = _state(1000, 1000, [])
    state["log_history"].append({"step": 1000, "train_runtime": 54713.0, "train_loss": 2.0})
    (folder / "trainer_state.json").write_text(json.dumps(state))
    (folder / "eval_results.json").write_text(json.dumps({"eval_loss": 1.633907675743103, "epoch": 1.0}))
    [run] = list(scan([str(folder)]))
    assert run.best_val_loss == 1.633907675743103 and run.extra["sources"]["best_val_loss"] == "eval_results.json: eval_loss"
    assert run.started == 1742826235.0
    (folder / "runs" / "Mar24_22-23-40_DESKTOP" / "events.out.tfevents.1742826235.DESKTOP.1234.0").unlink()
    [run] = list(scan([str(folder)]))
    assert run.started == pytest.approx((folder / "trainer_state.json").stat().st_mtime - 54713.0)


def test_nested_lightning_hparams_are_read(tmp_path: Path):
    run_dir = tmp_path / "lightning_logs" / "version_0"
    run_dir.mkdir(parents=True)
    (run_dir / "hparams.yaml").write_text("cfg:\n  data:\n    batch_size: 64\n  model:\n    learning_rate: 0.0003\n"
                                          "  trainer:\n    max_steps: 500\n")
    (run_dir / "metrics.csv").write_text("step,train_loss,val_loss\n100,3.0,\n200,2.5,2.6\n")
    [run] = list(scan([str(tmp_path)]))
    assert (run.lr, run.batch_size) == (0.0003, 64)


def _wandb_run(files: Path, summary: dict, metadata: dict | None = None) -> None:
    files.mkdir(parents=True)
    (files / "wandb-summary.json").write_text(json.dumps(summary))
    if metadata is not None:
        (files / "wandb-metadata.json").write_text(json.dumps(metadata))


def test_a_wandb_run_joins_its_trainer_output_and_names_its_script_elsewhere(tmp_path: Path):
    results = tmp_path / "results"
    results.mkdir()
    state = _state(68559, 68559, [1.40, 1.3609], {100: 2e-4, 68559: 1e-9})
    (results / "trainer_state.json").write_text(json.dumps(state))
    summary = {"train/global_step": 68559, "train/loss": state["log_history"][-1]["loss"], "eval/loss": 1.3627,
               "_runtime": 90000}
    _wandb_run(tmp_path / "wandb" / "run-20250101_000000-abc" / "files", summary)
    _wandb_run(tmp_path / "wandb" / "latest-run" / "files", summary)  # committed as a copy, not a link
    runs = list(scan([str(tmp_path)]))
    assert [run.source for run in runs] == ["hf-trainer"]
    assert runs[0].extra["paired"] == [str(tmp_path / "wandb" / "run-20250101_000000-abc" / "files")]

    project = tmp_path / "alpaca"
    (project / "src").mkdir(parents=True)
    (project / "src" / "train-rg.py").write_text(
        "from transformers import AutoModelForCausalLM, Trainer, TrainingArguments\n"
        "model = AutoModelForCausalLM.from_pretrained('gpt2')\n"
        "Trainer(model=model, args=TrainingArguments(output_dir='out', learning_rate=2e-5)).train()\n")
    for name in ("run-1-a", "run-2-b"):
        _wandb_run(project / "wandb" / name / "files", {"train/loss": 1.2, "_runtime": 60},
                   {"program": "/home/me/alpaca/src/train-rg.py", "started_at": "2025-01-01T00:00:00Z",
                    "gpu_type": "NVIDIA A100-PCIE-40GB", "args": ["--model_name_or_path", "llama-7b"]})
    runs = list(scan([str(project)]))
    assert sorted(run.source for run in runs) == ["wandb", "wandb"]  # the script ran: it is no attempt of its own
    assert {run.extra["script"] for run in runs} == {str(project / "src" / "train-rg.py")}
    assert {(run.model, run.lr, run.device, run.extra["task"]) for run in runs} == \
        {("llama-7b", 2e-5, "A100-PCIE-40GB", "fine-tuning")}  # vendor word dropped
    assert {run.started for run in runs} == {datetime.fromisoformat("2025-01-01T00:00:00+00:00").timestamp()}


def test_a_scripts_tokenizer_written_file_and_second_optimizer_are_not_its_model_corpus_and_lr():
    from lunalm.runs.scan.scripts import facts, parse

    source = ("import torch\nfrom transformers import AutoTokenizer\n"
              "tokenizer = AutoTokenizer.from_pretrained('distilroberta-base')\n"
              "model = GPT(vocab_size=50304)\n"
              "optimizer1 = torch.optim.Adam([dict(params=head, lr=0.22)], betas=(0.8, 0.95))\n"
              "optimizer2 = Muon(hidden, lr=0.05, momentum=0.95)\n"
              "with open('metrics.csv', 'w') as f:\n    f.write('step,loss')\n"
              "for step in range(100):\n    loss = model(x)\n    loss.backward()\n    optimizer1.step()\n")
    fields = facts(parse(source, "train_diffusion.py")).fields
    assert fields.get("model") is None and fields.get("corpus") is None and fields["lr"] == 0.22  # an Adam group's
    assert fields["optimizer"] == "Adam"
    read = source.replace("open('metrics.csv', 'w')", "open('input.txt')")
    assert facts(parse(read, "train.py")).fields["corpus"] == "input.txt"
    labelled = source + "model_name = 'ModdedGPT'\n"
    assert facts(parse(labelled, "train.py")).extra["task"] == "causal-LM pretraining"
    hub = source + "model_name = 'gpt2'\n"
    assert facts(parse(hub, "train.py")).extra["task"] == "fine-tuning"


def test_a_moved_folder_is_rescanned_as_the_same_runs_not_new_ones(tmp_path: Path):
    old = tmp_path / "a" / "cpt"
    old.mkdir(parents=True)
    (old / "trainer_state.json").write_text(json.dumps(_state(600, 600, [0.66, 0.4853])))
    (old / "train.log").write_text("step 100: train loss 2.5\nstep 200: train loss 2.1\n")
    where = ["--registry", str(tmp_path / "reg.sqlite"), "--quiet"]
    first = run_luna("scan", str(tmp_path), *where)
    assert "2 training attempts (2 new)" in first.stdout, first.stdout + first.stderr
    (tmp_path / "b").mkdir()
    old.rename(tmp_path / "b" / "cpt")
    again = run_luna("scan", str(tmp_path), *where)
    assert "2 training attempts (0 new)" in again.stdout, again.stdout
    rows = Registry(tmp_path / "reg.sqlite").find()
    assert sorted(Path(row["path"]).relative_to(tmp_path).as_posix() for row in rows) == ["b/cpt", "b/cpt/train.log"]


def test_llama_boards_training_args_yaml_in_the_trainer_output_folder_gives_its_settings(tmp_path: Path):
    """aa-n/Qwen3_Lora: LLaMA-Board wrote training_args.yaml (and llamaboard_config.yaml, no config) into the
    output folder, whose trainer_state.json logged no loss and no lr."""
    folder = tmp_path / "Qwen3_Lora"
    folder.mkdir()
    (folder / "training_args.yaml").write_text(
        "bf16: true\ndataset: tcm,mdk,NLI\nfinetuning_type: lora\ngradient_accumulation_steps: 8\n"
        "learning_rate: 5.0e-05\nlora_alpha: 16\nlora_rank: 8\nmodel_name_or_path: /dev/shm/Qwen/Qwen3-14B\n"
        "num_train_epochs: 3.0\noptim: adamw_torch\noutput_dir: saves/Qwen3-14B-Instruct/lora/train_2025-04-29-14-28-08\n"
        "per_device_train_batch_size: 2\nstage: sft\n")
    (folder / "llamaboard_config.yaml").write_text("top.model_name: Qwen3-14B-Instruct\ntrain.learning_rate: 5e-5\n")
    history = [{"epoch": 2.9965936739659367, "num_input_tokens_seen": 24689312, "step": 768,
                "train_loss": 0.9732094605763754, "train_runtime": 5980.6912}]
    (folder / "trainer_state.json").write_text(json.dumps(
        {"global_step": 768, "max_steps": 768, "num_train_epochs": 3, "epoch": 2.9965936739659367,
         "num_input_tokens_seen": 24689312, "train_batch_size": 2, "log_history": history}))
    [run] = list(scan([str(tmp_path)]))
    assert (run.lr, run.grad_accum, run.optimizer, run.precision, run.corpus, run.tokens_seen) == \
        (5e-05, 8, "adamw_torch", "bf16", "tcm,mdk,NLI", 24689312)
    assert run.extra["sources"]["lr"] == "training_args.yaml (in the output folder)"
    assert (run.model, run.lora["r"], run.extra["task"]) == ("/dev/shm/Qwen/Qwen3-14B", 8, "fine-tuning")
