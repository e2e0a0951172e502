"""What a QA scan of real public repositories found, each checked on the real file it was found in
(``tests/runs/scan_set``, see its README for the source repository of each folder)."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

import pytest

from lunalm.runs.registry import Registry
from lunalm.runs.scan import scan

SET = Path(__file__).parent / "scan_set"
RUN_FOLDERS = {  # a run folder of each kind, as its repository holds it
    "hf-trainer": "tinyLlama-finetune",
    "lightning": "slm_training/lightning_logs/version_11",
    "wandb": "jackokeefe11-nanoGPT/wandb/run-20240214_195452-kt2awly2/files",
}


def _scan_into(registry: Registry, root: Path) -> list[bool]:
    return [registry.upsert_attempt(attempt) for attempt in scan([str(root)])]


@pytest.mark.parametrize("source", sorted(RUN_FOLDERS))
def test_a_renamed_run_folder_replaces_its_record(tmp_path: Path, source: str):
    """Renaming the run folder itself (a Trainer output folder, a Lightning ``version_N``, a W&B run's
    files) gave it a second record: only a log's or notebook's file name was matched, and a folder's name
    is what a rename changes. The folder's record files now identify it."""
    shutil.copytree(SET / RUN_FOLDERS[source], tmp_path / "scanned" / "a")
    registry = Registry(tmp_path / "reg.sqlite")
    assert _scan_into(registry, tmp_path / "scanned") == [True]
    (tmp_path / "scanned" / "a").rename(tmp_path / "scanned" / "b_renamed")
    assert _scan_into(registry, tmp_path / "scanned") == [False]  # 0 new
    rows = registry.find()
    assert [(row["source"], Path(row["path"]).name) for row in rows] == [(source, "b_renamed")]


def test_a_copy_of_a_run_folder_beside_it_stays_a_record_of_its_own(tmp_path: Path):
    """The old record goes only when its path is gone: two copies that both exist are two records."""
    for name in ("a", "b"):
        shutil.copytree(SET / RUN_FOLDERS["hf-trainer"], tmp_path / "scanned" / name)
    registry = Registry(tmp_path / "reg.sqlite")
    assert _scan_into(registry, tmp_path / "scanned") == [True, True]
    assert _scan_into(registry, tmp_path / "scanned") == [False, False]
    assert len(registry.find()) == 2


def test_a_warmup_logs_lr_is_its_peak_not_its_first_value(tmp_path: Path):
    """dhairyag/ShakespeareGPT-Forge's log (build-nanoGPT's loop: 10 warmup steps of 100) logs lr 1e-05
    at step 0 and 0.001 at step 100; the scan reported 1e-05 as the run's lr."""
    shutil.copy(SET / "ShakespeareGPT-Forge" / "log.md", tmp_path / "train.log")  # the QA copy, renamed
    (run,) = scan([str(tmp_path)])
    assert run.lr == 0.001 and run.extra["peak_logged_lr_step"] == 100
    assert run.extra["sources"]["lr"] == ("train.log:77: highest logged learning rate of 26 "
                                          "(the configured value was not found)")


def test_a_log_takes_the_lr_of_the_one_script_that_prints_its_lines(tmp_path: Path):
    """0Xero7/slm_training's classic.txt logs the cosine schedule's lr after each epoch (9.94e-05 first);
    train.py, one of the training scripts beside it, sets lr = 1e-4 and prints those lines."""
    for name in ("classic.txt", "train.py", "train_lightning.py"):
        shutil.copy(SET / "slm_training" / name, tmp_path / name)
    runs = {Path(run.path).name: run for run in scan([str(tmp_path)])}
    log = runs["classic.txt"]
    assert (log.lr, log.extra["sources"]["lr"], log.extra["script"]) == \
        (1e-4, "train.py (in the script)", str(tmp_path / "train.py"))
    assert "train.py" not in runs  # its log is the evidence that it ran
    for name in ("train.py", "train_lightning.py"):  # alone: the highest logged value, named as such
        (tmp_path / name).unlink()
    alone = next(run for run in scan([str(tmp_path)]) if run.path.endswith("classic.txt"))
    assert alone.lr == 9.94e-05 and alone.extra["sources"]["lr"].startswith("classic.txt:4: highest logged")


def test_a_log_saved_as_markdown_is_read_and_other_markdown_is_not(tmp_path: Path):
    """dhairyag/ShakespeareGPT-Forge keeps its run's console output as log.md (26 `step N | loss: X` lines):
    it was not read at all. Its README quotes the same lines, and AvataRL-SAC's first_run_report.md talks
    about losses: neither is a run."""
    for name in ("log.md", "README.md"):
        shutil.copy(SET / "ShakespeareGPT-Forge" / name, tmp_path / name)
    shutil.copy(SET / "AvataRL-SAC" / "first_run_report.md", tmp_path / "first_run_report.md")
    (run,) = scan([str(tmp_path)])
    assert (Path(run.path).name, run.source, run.steps, run.final_train_loss, run.outcome) == \
        ("log.md", "log", 250, 0.0052, "success")
    assert run.lr == 0.001  # the highest logged: no script beside it here


def test_wandbs_own_logs_are_no_attempts_and_their_ctrl_c_ends_the_run(tmp_path: Path):
    """jackokeefe11/nanoGPT run ilvpsbbn: its files say nothing of how it ended, its W&B ``logs/debug.log``
    ends in a KeyboardInterrupt. That debug.log was listed as an interrupted attempt of its own beside an
    'unknown' W&B record; now it is the one record's evidence."""
    run_folder = "jackokeefe11-nanoGPT/wandb/run-20240214_190909-ilvpsbbn"
    shutil.copytree(SET / run_folder, tmp_path / "wandb" / "run-20240214_190909-ilvpsbbn")
    (run,) = scan([str(tmp_path)])
    assert (run.source, run.outcome, run.status, run.error_kind, run.evidence) == \
        ("wandb", "failure", "interrupted", "keyboard-interrupt", "logs/debug.log:38: KeyboardInterrupt")


def test_two_runs_that_reached_their_planned_iterations_both_finished(tmp_path: Path):
    """jackokeefe11/nanoGPT runs mw8ngzqq and kt2awly2: max_iters 5000 in both configs, both output.logs end
    at ``iter 5000``; kt2awly2 was 'unknown' (its val loss rose to 4.92 while it overfit)."""
    names = ("run-20240214_191836-mw8ngzqq", "run-20240214_195452-kt2awly2")
    for name in names:
        shutil.copytree(SET / "jackokeefe11-nanoGPT" / "wandb" / name, tmp_path / "wandb" / name)
    runs = sorted(scan([str(tmp_path)]), key=lambda run: run.path)
    assert [(run.outcome, run.status, run.steps, run.extra["max_steps"]) for run in runs] == \
        [("success", "completed", 5000, 5000)] * 2
    assert {run.evidence for run in runs} == {"config.yaml: 5000 steps planned, and step 5000 was logged"}


def _runs_of(attempts: list, name: str) -> list:
    return sorted((a for a in attempts if Path(a.path).name == name), key=lambda a: a.extra["runs_in_file"]["run"])


def test_each_run_of_a_notebook_is_an_attempt_of_its_own():
    """shrutipangare/ChatbotSeq-to-Seq's notebook trains once in cell 47 (Adam, lr 1e-4, 4000 iterations,
    8.9605 → 2.6653), then runs a 20-run W&B sweep in cell 50. It was one "success" whose first loss came
    from cell 47 and its last (4.708) from the sweep's last run, with cell 47's lr and optimizer."""
    runs = _runs_of(list(scan([str(SET / "ChatbotSeq-to-Seq")])), "Final_chatbot_tutorial.ipynb")
    assert len(runs) == 21 and {run.extra["runs_in_file"]["of"] for run in runs} == {21}
    first = runs[0]
    assert (first.optimizer, first.lr, first.steps, first.final_train_loss) == ("Adam", 0.0001, 4000, 2.6653)
    assert first.metrics[0] == (1, "train", 8.9605) and "cell 47" in first.evidence
    sweep = runs[1:]
    assert all(run.metrics[0][0] == 100 and run.steps == 4000 and "cell 50" in run.evidence for run in sweep)
    # the sweep's runs, as each printed its config: kn7ma4di first, cme851yh last
    assert (sweep[0].optimizer, sweep[0].lr, sweep[0].final_train_loss) == ("SGD", 0.00025, 4.4966)
    assert (sweep[-1].optimizer, sweep[-1].lr, sweep[-1].final_train_loss) == ("SGD", 0.0001, 4.708)
    assert sweep[-1].metrics[0] == (100, "train", 8.9013)
    # three runs with clip 0 never learned (8.9722 → 8.9721): no improvement, not a success
    stuck = [run for run in sweep if run.outcome == "unknown"]
    assert [round(run.final_train_loss, 2) for run in stuck] == [8.97, 8.96, 8.95]
    assert all("no improvement" in run.evidence for run in stuck)
    assert len({run.fingerprint for run in runs}) == 21


def test_each_run_of_a_log_is_an_attempt_of_its_own():
    """aakashvardhan/s21-gpt2's log.md holds 14 runs (13 of steps 0–49, then one of 1–4999), read as one
    record before. "1 epoch = 2640 batches" is the data's length, not an epoch that began."""
    runs = _runs_of(list(scan([str(SET / "s21-gpt2")])), "log.md")
    assert len(runs) == 14
    assert [(run.metrics[0][0], run.steps) for run in runs] == [(0, 49)] * 13 + [(1, 4999)]
    assert (runs[0].metrics[0][2], runs[0].final_train_loss) == (10.899394989013672, 0.06201247125864029)
    assert runs[1].metrics[0][2] == 10.959087371826172 and runs[-1].final_train_loss == 0.012582
    assert runs[0].name == "s21-gpt2/log.md (run 1 of 14)"


def test_a_counter_of_each_epoch_or_a_resume_is_no_new_run(tmp_path: Path):
    """A step count that starts again at each epoch, or goes back only to a checkpoint, stays one run."""
    epochs = "".join(f"Epoch {epoch}\n" + "".join(f"step {step}: loss {5 - epoch - step / 1000:.3f}\n"
                                                   for step in range(0, 500, 50)) for epoch in range(1, 4))
    resumed = "".join(f"step {step}: loss {5 - step / 1000:.3f}\n" for step in [*range(0, 1001, 100),
                                                                                   *range(800, 2001, 100)])
    (tmp_path / "epochs.log").write_text(epochs)
    (tmp_path / "resumed.log").write_text(resumed)
    found = {Path(run.path).name: run for run in scan([str(tmp_path)])}
    assert sorted(found) == ["epochs.log", "resumed.log"]
    assert found["resumed.log"].steps == 2000 and "runs_in_file" not in found["resumed.log"].extra


def test_macos_zip_metadata_is_no_script(tmp_path: Path):
    """jackokeefe11/nanoGPT keeps a ``__MACOSX/`` folder of AppleDouble files (``._model.py``: 163 binary
    bytes); each was reported as a script with a syntax error. They are skipped, also outside that folder."""
    from lunalm.runs.scan import Scanner

    shutil.copytree(SET / "jackokeefe11-nanoGPT" / "__MACOSX", tmp_path / "__MACOSX")
    shutil.copy(SET / "jackokeefe11-nanoGPT" / "__MACOSX" / "._model.py", tmp_path / "._train.py")
    scanner = Scanner()
    assert list(scanner.scan([str(tmp_path)])) == []
    assert scanner.stats.skipped == [] and scanner.stats.files_seen == 0


def test_a_llamafactory_log_takes_its_settings_from_the_config_its_slurm_script_trains(tmp_path: Path):
    """rameyjm7/SFT-Training-LLM: ``run_LF_train_baseline.slurm`` runs ``llamafactory-cli train sft_config.yaml``
    (Qwen2.5-3B-Instruct, full fine-tune, lr 1.0e-5, batch 1 x 8, 7 epochs, bf16); its ``trainer_log.jsonl``
    logs the schedule as "lr". Only the highest logged lr (9.99995e-06) and the steps were known."""
    shutil.copytree(SET / "SFT-Training-LLM", tmp_path / "repo")
    (run,) = scan([str(tmp_path / "repo")])
    assert (run.model, run.lr, run.batch_size, run.grad_accum, run.epochs, run.precision) == \
        ("Qwen/Qwen2.5-3B-Instruct", 1e-05, 1, 8, 7.0, "bf16")
    assert (run.extra["finetuning"], run.extra["task"], run.lora) == ("full fine-tune", "fine-tuning", None)
    assert run.extra["sources"]["lr"] == "sft_config.yaml (named by run_LF_train_baseline.slurm:35)"
    assert run.extra["peak_logged_lr"] == 9.999953642250429e-06  # the "lr" key, read as the schedule's
    assert (run.steps, run.extra["max_steps"]) == (6560, 6566)
    (tmp_path / "repo" / "run_LF_train_baseline.slurm").unlink()  # the config alone, beside the log
    (alone,) = scan([str(tmp_path / "repo")])
    assert (alone.lr, alone.extra["sources"]["lr"]) == (1e-05, "sft_config.yaml (beside the log)")
    (tmp_path / "repo" / "other.yaml").write_text((SET / "SFT-Training-LLM" / "sft_config.yaml").read_text())
    (unsure,) = scan([str(tmp_path / "repo")])  # two configs and nothing to choose between them: neither
    assert unsure.lr == 9.999953642250429e-06 and unsure.model is None


def test_a_logs_printed_parameter_count_and_precision_are_recorded(tmp_path: Path):
    """0Xero7/slm_training's timestamped logs print their settings, then ``Precision: fp32`` and ``Model
    Parameter Count: 47621306``: lr, batch and epochs were read, the size and the precision were not."""
    shutil.copytree(SET / "slm_training" / "logs", tmp_path / "logs")
    (run,) = scan([str(tmp_path)])
    assert (run.n_params, run.precision, run.lr, run.batch_size, run.epochs) == (47_621_306, "fp32", 1e-4, 128, 30.0)
    assert run.extra["sources"]["precision"] == "2025-02-17 21.36.38.665813.log:13"
    assert run.started == datetime(2025, 2, 17, 21, 36, 38).timestamp()  # from the file's name


def test_one_spelling_of_each_optimizer_and_device_in_the_records_and_the_report(tmp_path: Path):
    """shrutipangare/ChatbotSeq-to-Seq: cell 47 builds ``optim.Adam``, the sweep prints ``optimizer: adam`` /
    ``sgd``; Colab's metadata says ``T4``, the W&B run's ``Tesla T4``. The report listed Adam and adam as
    one row named 'adam', and T4 and Tesla T4 as two rows."""
    from lunalm.runs.report import build_report

    registry = Registry(tmp_path / "reg.sqlite")
    attempts = list(scan([str(SET / "ChatbotSeq-to-Seq")]))
    assert {a.optimizer for a in attempts} - {None} == {"Adam", "SGD"}
    assert {a.device for a in attempts} == {"T4"} and len(attempts) == 22
    for attempt in attempts:
        registry.upsert_attempt(attempt)
    old = [{**registry.find()[0], "device": device, "optimizer": optimizer}  # as registries written before
           for device, optimizer in (("NVIDIA A100-SXM4-40GB", "adamw"), ("A100", "AdamW"), ("Tesla T4", "adam"))]
    sections = {s.title: s for s in build_report(registry.find() + old, registry.scans(), tmp_path / "rep")}
    devices = {row[0]: row[1] for row in sections["Devices"].tables[0][1]}
    assert devices == {"T4": "23", "A100 (A100-SXM4-40GB 1, A100 1)": "2"}  # a GPU's memory variants kept
    optimizers = {row[0]: row[1] for row in sections["Optimizers"].tables[0][1]}
    assert optimizers == {"SGD": "10", "Adam": "12", "AdamW": "2"}


def test_copies_of_a_log_in_other_encodings_are_one_attempt(tmp_path: Path):
    """ShakespeareGPT-Forge's log.md saved as UTF-8, as UTF-16 (PowerShell's ``Tee-Object``) and with CRLF
    line ends (the QA variants, byte for byte): three attempts of one run before."""
    from lunalm.runs.scan import Scanner

    text = (SET / "ShakespeareGPT-Forge" / "log.md").read_bytes()
    (tmp_path / "train_utf8.log").write_bytes(text)
    (tmp_path / "train_utf16_powershell.log").write_bytes(("\ufeff" + text.decode()).encode("utf-16-le"))
    (tmp_path / "train_crlf.log").write_bytes(text.replace(b"\n", b"\r\n"))
    scanner = Scanner()
    (run,) = scanner.scan([str(tmp_path)])
    assert (Path(run.path).name, run.steps, run.final_train_loss) == ("train_crlf.log", 250, 0.0052)
    assert [Path(path).name for path in run.extra["copies"]] == ["train_utf16_powershell.log", "train_utf8.log"]
    assert [reason for _, reason in scanner.stats.skipped] == [f"a copy of {run.path} (the same lines)"] * 2
    (tmp_path / "train_utf8.log").write_bytes(text.replace(b"loss", b"LOSS", 1))  # one word differs: a run
    assert len(list(scan([str(tmp_path)]))) == 2
