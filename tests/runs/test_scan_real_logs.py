"""What real training output taught ``luna scan`` and ``luna runs``: progress-bar losses, runs cut off part-way
through their epochs, early stopping, the time a log says it started, and comparing scanned runs. The
lines are shaped as in public repositories (a Lightning project's epoch logs and tqdm bars, Keras, a
Whisper fine-tune's ``trainer_state.json``, Python ``logging`` time stamps)."""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path

from lunalm.runs.registry import Registry
from lunalm.runs.scan import scan
from lunalm.runs.scan.logs import LogParser, time_stamp
from tests.conftest import run_luna


def verdict(lines: list[str]) -> tuple[LogParser, object]:
    parser = LogParser("train.log")
    for number, line in enumerate(lines, start=1):
        parser.feed(number, line)
    return parser, parser.verdict()


EPOCHS = []  # an epoch-by-epoch log whose tqdm bars show a running loss of another scale
for epoch, (valid, running) in enumerate([(6.6384, 2.2583), (6.2336, 2.1209), (6.0232, 2.0123)], start=1):
    EPOCHS += [f"Epoch: {epoch}/30",
               f"Validation: 100%|████████| 19/19 [00:00<00:00, 41.12it/s, val_loss={running}]",
               f"Train Loss: {valid - 0.2:.4f} - Train Perplexity: 500.00",
               f"Valid Loss: {valid} - Valid Perplexity: 763.86"]


def test_a_progress_bars_running_loss_is_not_the_validation_loss():
    parser, _ = verdict(EPOCHS)
    assert [value for _, value in parser.val.all_points()] == [6.6384, 6.2336, 6.0232]
    only_bars, _ = verdict([line for line in EPOCHS if "Valid Loss" not in line])  # nothing else to go on
    assert [value for _, value in only_bars.val.all_points()] == [2.2583, 2.1209, 2.0123]


def test_a_run_that_logged_epoch_3_of_30_last_did_not_finish():
    _, cut = verdict(EPOCHS)
    assert cut.outcome == "unknown" and "the last epoch logged is 3 of 30" in cut.evidence
    assert "loss lines" in cut.evidence and "steps" not in cut.evidence  # the log numbers no steps
    _, whole = verdict(EPOCHS + ["Epoch: 30/30", "Valid Loss: 5.9 - Valid Perplexity: 365.0"])
    assert whole.outcome == "success"
    keras = ["Epoch 1/50", "100/100 [======] - 3s 25ms/step - loss: 2.1 - val_loss: 2.3", "Epoch 2/50",
             "100/100 [======] - 3s 25ms/step - loss: 1.9 - val_loss: 2.4", "Epoch 2: early stopping"]
    _, stopped = verdict(keras)
    assert (stopped.outcome, stopped.status) == ("success", "stopped-early") and "train.log:5" in stopped.evidence


def test_a_log_starts_when_its_first_time_stamp_says(tmp_path: Path):
    assert time_stamp("2024-12-25 06:43:04,790 - INFO - Training started") == \
        datetime(2024, 12, 25, 6, 43, 4).timestamp()
    assert time_stamp("2025-02-16 10:43:29.611931.log") == datetime(2025, 2, 16, 10, 43, 29).timestamp()
    assert time_stamp("[2025-02-16T10:43:29] step 5") is not None and time_stamp("step 2025-02-16") is None
    (tmp_path / "run.log").write_text("2024-12-25 06:43:04,790 - INFO - start\n"
                                      "2024-12-25 06:53:04,100 - INFO - step 500: train loss 2.9\n"
                                      "2024-12-25 07:43:04,100 - INFO - step 1000: train loss 2.5\n")
    named = tmp_path / "2025-02-16 10:43:29.611931.log"
    named.write_text("Epoch: 1/1\nTrain Loss: 5.2\nTrain Loss: 5.0\n")
    found = {Path(attempt.path).name: attempt for attempt in scan([str(tmp_path)])}
    assert found["run.log"].started == datetime(2024, 12, 25, 6, 43, 4).timestamp()
    assert found["run.log"].wall_seconds == 3600.0 and found["run.log"].steps == 1000
    assert found[named.name].started == datetime(2025, 2, 16, 10, 43, 29).timestamp()


def test_an_early_stopped_trainer_run_is_stopped_early(tmp_path: Path):
    state = {"global_step": 1500, "max_steps": 10990, "epoch": 1.36, "num_train_epochs": 10, "best_global_step": 250,
             "log_history": [{"step": 250, "eval_loss": 0.219}, {"step": 500, "eval_loss": 0.25},
                             {"step": 1500, "eval_loss": 0.402}],
             "stateful_callbacks": {"EarlyStoppingCallback": {"args": {"early_stopping_patience": 5},
                                                              "attributes": {"early_stopping_patience_counter": 5}},
                                    "TrainerControl": {"args": {"should_training_stop": True}}}}
    folder = tmp_path / "whisper"
    folder.mkdir()
    (folder / "trainer_state.json").write_text(json.dumps(state))
    [attempt] = list(scan([str(folder)]))
    assert (attempt.outcome, attempt.status) == ("success", "stopped-early")
    assert "after 5 evaluations without improvement (the best at step 250)" in attempt.evidence


def test_scanned_runs_compare_by_their_settings_and_as_json(tmp_path: Path):
    registry = Registry(tmp_path / "runs" / "registry.sqlite")
    for name, lr, epochs in (("lightning_logs/version_0", 2.36e-4, 10), ("lightning_logs/version_12", 5e-6, 1)):
        registry.upsert(f"lightning:{name}", source="lightning", name=name, outcome="success", started=time.time(),
                        lr=lr, epochs=epochs, best_val_loss=3.57)
    where = ["--runs-dir", str(tmp_path / "runs")]
    compared = run_luna("runs", "compare", "lightning:lightning_logs/version_0", "lightning:lightning_logs/version_12",
                        *where)
    assert compared.returncode == 0, compared.stderr
    assert "same config" not in compared.stdout and "no full config recorded" in compared.stdout
    assert compared.stdout.split("\n  lr")[1].split()[:2] == ["0.000236", "5e-06"]
    assert "…ning_logs/version_12" in compared.stdout.splitlines()[0]  # the ends of the names, which differ
    as_json = run_luna("runs", "compare", "lightning:lightning_logs/version_0", "lightning:lightning_logs/version_12",
                       "--json", *where)
    runs = json.loads(as_json.stdout)["runs"]
    assert [run["lr"] for run in runs] == [2.36e-4, 5e-6]
    none = run_luna("runs", "list", "--outcome", "failure", *where)
    assert none.returncode == 0 and none.stdout.strip() == "no runs match"


def test_a_reader_closing_the_pipe_ends_the_listing_quietly(tmp_path: Path):
    import subprocess
    import sys

    registry = Registry(tmp_path / "runs" / "registry.sqlite")
    for n in range(300):
        registry.upsert(f"log:{n:04d}", source="log", name=f"run {n}", outcome="unknown", started=time.time())
    command = f"'{sys.executable}' -m lunalm runs list --json --runs-dir '{tmp_path / 'runs'}' | head -c 10"
    listing = subprocess.run(command, shell=True, capture_output=True, text=True, timeout=120)
    assert listing.stdout.startswith("[") and "Traceback" not in listing.stderr and "Error" not in listing.stderr


def test_llm_c_logs_are_read_and_a_log_without_training_lines_is_listed_as_skipped(tmp_path: Path):
    (tmp_path / "main.log").write_text("s:0 tel:11.0092\ns:0 trl:11.0091 lr:0.000001 norm:15.37\n"
                                       "s:1 trl:10.5 lr:0.000002 norm:9.1\ns:250 tel:4.1\ns:250 trl:4.0 lr:0.0006\n")
    (tmp_path / "died.log").write_text("lr: 0.0001\nbatch_size: 128\nModel Parameter Count: 66829394\n")
    from lunalm.runs.scan import Scanner

    scanner = Scanner()
    [attempt] = list(scanner.scan([str(tmp_path)]))
    assert (attempt.steps, attempt.best_val_loss, attempt.final_train_loss) == (250, 4.1, 4.0)
    assert attempt.outcome == "success" and (0, "val", 11.0092) in attempt.metrics
    assert [(Path(path).name, reason.split(" (")[0]) for path, reason in scanner.stats.skipped] == \
        [("died.log", "no training lines")]


def test_settings_a_log_prints_become_the_runs_settings(tmp_path: Path):
    (tmp_path / "2025-02-16 10:43:29.611931.log").write_text(
        "use_experimental: True\nlr: 0.0001\nnum_epochs: 30\nbatch_size: 128\nEpoch: 1/1\nTrain Loss: 5.2\n"
        "Valid Loss: 5.5\nTrain Loss: 5.0\nValid Loss: 5.4\n")
    (tmp_path / "large.log").write_text(
        "2024-12-25 17:20:43,229 - INFO - [INFO] Eğitim başlıyor: "
        "Model=ytu-ce-cosmos/turkish-gpt2-large, Dataset=v1\n"
        "2024-12-25 17:30:43,229 - INFO - Training Logs at step 500: {'loss': 2.9199, 'learning_rate': 4.8e-05}\n"
        "2024-12-25 17:40:43,229 - INFO - Training Logs at step 1000: {'loss': 2.5, 'learning_rate': 3.1e-05}\n")
    found = {Path(attempt.path).name: attempt for attempt in scan([str(tmp_path)])}
    printed = found["2025-02-16 10:43:29.611931.log"]
    assert (printed.lr, printed.epochs, printed.batch_size) == (0.0001, 30, 128)
    assert printed.extra["sources"]["lr"].endswith(".log:2")
    large = found["large.log"]
    assert (large.model, large.lr, large.steps) == ("ytu-ce-cosmos/turkish-gpt2-large", None, 1000)  # no schedule lr


def test_a_lora_runs_base_model_is_read_from_its_newest_checkpoint(tmp_path: Path):
    out = tmp_path / "gemma-lora"
    (out / "checkpoint-200").mkdir(parents=True)
    (out / "checkpoint-3765").mkdir()
    (out / "trainer_state.json").write_text(json.dumps({"global_step": 3765, "max_steps": 3765, "log_history": [
        {"step": 100, "loss": 1.2}, {"step": 3765, "loss": 0.7}]}))
    (out / "checkpoint-3765" / "adapter_config.json").write_text(json.dumps(
        {"base_model_name_or_path": "google/gemma-3-1b-it", "r": 16, "lora_alpha": 32}))
    [attempt] = list(scan([str(out)]))
    assert attempt.model == "google/gemma-3-1b-it" and attempt.lora["r"] == 16


def test_a_lora_runs_trainable_count_is_not_the_models_size():
    for lines, n_params, trainable in (
            (["***** Running training *****", "  Number of trainable parameters = 48,627,712"], None, 48_627_712),
            (["trainable params: 4,194,304 || all params: 1,104,242,688 || trainable%: 0.3798"],
             1_104_242_688, 4_194_304),
            (["number of parameters: 10.65M"], 10_650_000, None)):
        parser, _ = verdict(lines)
        assert (parser.settings.get("n_params"), parser.settings.get("trainable_params")) == (n_params, trainable)


def test_a_log_with_nul_padding_from_a_crash_is_read_and_a_binary_is_not(tmp_path: Path):
    (tmp_path / "crashed.log").write_bytes(b"step 100: train loss 3.1\nstep 200: train loss 2.9\n" + b"\0" * 217
                                           + b"step 100: train loss 3.0\nstep 200: train loss 2.7\n")
    (tmp_path / "weights.log").write_bytes(bytes(range(256)) * 40)
    from lunalm.runs.scan import Scanner

    scanner = Scanner()
    [attempt] = list(scanner.scan([str(tmp_path)]))
    assert Path(attempt.path).name == "crashed.log" and attempt.final_train_loss == 2.7
    assert [(Path(path).name, reason) for path, reason in scanner.stats.skipped] == \
        [("weights.log", "binary file (NUL bytes)")]


def test_a_model_built_from_a_config_is_not_named_after_its_tokenizer():
    from lunalm.runs.scan.scripts import facts, parse

    source = ('from transformers import PreTrainedTokenizerFast, AutoModelForCausalLM, GPT2Config, Trainer\n'
              'tok = PreTrainedTokenizerFast.from_pretrained("./MyLLM/CrispyTokenizer")\n'
              'model = AutoModelForCausalLM.from_config(GPT2Config(n_layer=4))\n'
              'Trainer(model=model).train()\n')
    assert facts(parse(source, "main.py")).fields.get("model") is None
    tuned = source.replace("AutoModelForCausalLM.from_config(GPT2Config(n_layer=4))",
                           'AutoModelForCausalLM.from_pretrained("gpt2")')
    assert facts(parse(tuned, "main.py")).fields.get("model") == "gpt2"


def test_a_notebooks_evidence_names_the_cell_that_printed_the_loss():
    from lunalm.runs.scan.logs import PARSED_PER_STRIDE

    one = LogParser("nb.ipynb cell 34 output")
    one.feed(1, "{'loss': 0.2259, 'grad_norm': 0.41, 'learning_rate': 0.0002, 'epoch': 0.02}")
    one.label = "nb.ipynb cell 41 output"  # later cells print no loss
    one.feed(1, "Saved to lora_model")
    assert one.verdict().evidence.startswith("nb.ipynb cell 34 output:1: 1 loss line(s)")
    many = LogParser("nb.ipynb cell 34 output")  # so many loss lines that the newest is parsed at the end
    for number in range(1, 2 * PARSED_PER_STRIDE + 2):
        many.feed(number, f"{{'loss': {3 - number / 10_000:.4f}, 'epoch': 0.5}}")
    many.label = "nb.ipynb cell 41 output"
    assert many.verdict().evidence.startswith(f"nb.ipynb cell 34 output:{2 * PARSED_PER_STRIDE + 1}:")
