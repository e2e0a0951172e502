"""Logs of litgpt and torchtitan, and the "Loss Train: … | Loss Val: …" lines of hobby scripts, as ``luna scan``
reads them. The lines are shaped as the programs print them (litgpt's ``finetune/lora.py`` and ``pretrain.py``,
torchtitan's ``MetricsProcessor``; litgpt's own tutorial shows the finetune log used here) and as public
repositories show them."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from lunalm.runs.scan import scan
from lunalm.runs.scan.log_lines import find_losses
from lunalm.runs.scan.logs import LogParser

LITGPT_SETTINGS = """{'checkpoint_dir': PosixPath('checkpoints/microsoft/phi-2'),
 'data': Alpaca2k(mask_prompt=False,
                  val_split_fraction=0.03847,
                  prompt_style=<litgpt.prompts.Alpaca object at 0x7f5fa2867e80>,
                  download_dir=PosixPath('data/alpaca2k')),
 'devices': 1,
 'eval': EvalArgs(interval=100, max_new_tokens=100, max_iters=100),
 'logger_name': 'csv',
 'lora_alpha': 16,
 'lora_dropout': 0.05,
 'lora_r': 8,
 'out_dir': PosixPath('out/finetune/lora-phi-2'),
 'precision': 'bf16-true',
 'quantize': 'bnb.nf4',
 'train': TrainArgs(save_interval=800,
                    global_batch_size=8,
                    micro_batch_size=4,
                    epochs=1,
                    max_steps=5,
                    learning_rate=0.0002,
                    min_lr=6e-05)}
Seed set to 1337
Number of trainable parameters: 12,226,560
Number of non-trainable parameters: 2,779,683,840
Validating ...
Missing logger folder: out/finetune/lora-phi-2/logs/csv
"""


def parsed(lines: list[str]) -> LogParser:
    parser = LogParser("train.log")
    for number, line in enumerate(lines, start=1):
        parser.feed(number, line)
    parser.finish()
    return parser


def test_a_litgpt_finetune_log_gives_its_losses_settings_and_end(tmp_path: Path):
    losses = [1.646, 1.660, 1.687, 1.597, 1.640, 1.703, 1.678, 1.741, 1.689, 1.524]
    steps = "".join(f"Epoch 1 | iter {i} step {i // 2} | loss train: {loss:.3f}, val: n/a | iter time: 520.31 ms"
                    f"{' (step)' if i % 2 == 0 else ''}\n" for i, loss in enumerate(losses, start=1))
    (tmp_path / "finetune.log").write_text(
        LITGPT_SETTINGS + steps + "Training time: 11.20s\nMemory used: 13.90 GB\n"
        "Saving LoRA weights to 'out/finetune/lora-phi-2/final/lit_model.pth.lora'\n")
    [attempt] = list(scan([str(tmp_path)]))
    assert (attempt.outcome, attempt.status) == ("success", "completed")
    assert attempt.evidence.startswith("finetune.log:") and attempt.evidence.endswith("Training time: 11.20s")
    assert [value for _, kind, value in attempt.metrics if kind == "train"] == losses
    assert (attempt.final_train_loss, attempt.steps, attempt.wall_seconds) == (1.524, 10, 11.2)
    assert (attempt.model, attempt.precision, attempt.quantization) == ("microsoft/phi-2", "bf16", "4bit")
    assert attempt.lora == {"r": 8, "alpha": 16, "dropout": 0.05}
    assert (attempt.lr, attempt.batch_size, attempt.grad_accum, attempt.epochs) == (0.0002, 4, 2, 1.0)
    assert attempt.n_params == 12_226_560 + 2_779_683_840  # the adapter and the frozen model
    assert attempt.extra["trainable_params"] == 12_226_560
    assert attempt.extra["sources"]["model"] == "finetune.log:1"


def test_litgpts_repeated_validation_loss_is_one_point_and_the_final_one_comes_last():
    def step(iteration: int, loss: str, val: str) -> str:  # litgpt pretrain.py's line
        return (f"Epoch 1 | iter {iteration} step {iteration // 4} | loss train: {loss}, val: {val} | iter time: "
                "345.12 ms (step) remaining time: 0:10:00")

    parser = parsed([
        "Total parameters: 1,100,048,384",
        step(100, "7.812", "n/a"),
        "iter 100: val loss 7.9021, val time: 1234.56 ms",
        step(200, "6.400", "7.902"),
        step(300, "5.900", "7.902"),
        "iter 300: val loss 6.1000, val time: 1234.56 ms",
        step(400, "5.500", "6.100"),
        "| Performance",
        "| - Training Time : 412.33 s",
        "Validating ...",
        "Final evaluation | val loss: 5.800 | val ppl: 330.300",
    ])
    assert parser.train.all_points() == [(100, 7.812), (200, 6.4), (300, 5.9), (400, 5.5)]
    assert parser.val.all_points() == [(100, 7.9021), (300, 6.1), (400, 5.8)]
    assert (parser.settings["n_params"], parser.runtime) == (1_100_048_384, 412.33)


def test_an_epochs_training_time_ends_nothing_when_training_goes_on():
    parser = parsed(["Epoch 1/3 | Loss Train: 2.5 | Loss Val: 2.6", "Training time: 30.1s",
                     "Epoch 2/3 | Loss Train: 2.2 | Loss Val: 2.4"])
    assert parser.completed is None and parser.runtime == 30.1
    ended = parsed(["Epoch 1/1 | Loss Train: 2.5 | Loss Val: 2.6", "Training time: 30.1s"])
    assert ended.completed is not None and ended.verdict().evidence == "train.log:2: Training time: 30.1s"


def test_a_torchtitan_log_gives_its_steps_validation_size_and_times(tmp_path: Path):
    lines = [
        "[rank0]:[titan] 2025-06-04 08:50:40,001 - root - INFO - Starting job: Llama 3 8B training",
        "[rank0]:[titan] 2025-06-04 08:50:48,074 - root - INFO - Model llama3 8B size: 8,030,261,248 total parameters",
        "[rank0]:[titan] 2025-06-04 08:51:00,100 - root - INFO - Training starts at step 1, with local batch size 1, "
        "global batch size 8, sequence length 8192, total steps 30 (warmup 10)",
    ]
    for step, loss in ((1, 12.2254), (10, 10.7069), (20, 8.9196), (30, 7.8234)):
        lines.append(f"[rank0]:[titan] 2025-06-04 08:5{step // 10 + 1}:10,224 - root - INFO - step: {step:2}  "
                     f"loss: {loss:7.4f}  grad_norm:  2.1345  memory: 30.99GiB(32.62%)  tps: 7,022  tflops: 406.65  "
                     "mfu: 41.12%")
    lines += ["[rank0]:[titan] 2025-06-04 08:54:20,000 - root - INFO - validate step: 30  loss:  7.9012  "
              "memory: 30.99GiB(32.62%)  tps: 21,022",
              "[rank0]:[titan] 2025-06-04 08:54:30,000 - root - INFO - Sleeping 2 seconds for other ranks to complete",
              "[rank0]:[titan] 2025-06-04 08:54:32,000 - root - INFO - Training completed"]
    (tmp_path / "titan.log").write_text("\n".join(lines) + "\n")
    [attempt] = list(scan([str(tmp_path)]))
    assert (attempt.outcome, attempt.status, attempt.steps) == ("success", "completed", 30)
    assert [(step, kind, value) for step, kind, value in attempt.metrics if kind == "val"] == [(30, "val", 7.9012)]
    assert attempt.final_train_loss == 7.8234  # the validation's loss is not a train loss
    assert (attempt.n_params, attempt.batch_size, attempt.extra["max_steps"]) == (8_030_261_248, 1, 30)
    assert attempt.started == datetime(2025, 6, 4, 8, 50, 40).timestamp()
    assert attempt.wall_seconds == 232.0  # first to last time stamp
    srun = parsed(["0: [titan] 2026-03-25 13:37:04,721 - root - INFO - step: 90  loss:  3.1000",
                   "12: loss 2.5"])  # srun's task label goes; a line's own number before a colon stays
    assert srun.first_time == datetime(2026, 3, 25, 13, 37, 4).timestamp()
    assert srun.train.all_points()[0] == (90, 3.1)


def test_a_loss_followed_by_its_kind_is_read():
    assert find_losses("epoch 1/30 | loss train: 1.2345 | loss val: 1.1234 | acc: 45.67%") == \
        [("train", 1.2345), ("val", 1.1234)]
    assert find_losses("20240101 12:00:00: loss train: 2.1, valid: 2.3") == [("train", 2.1), ("valid", 2.3)]
    assert find_losses("loss_val=0.9") == [("val", 0.9)]
    assert find_losses("loss train: 0.3\t test: 0.4") == [("train", 0.3), ("test", 0.4)]  # test: not a val loss
    assert find_losses("loss_train = 0") == []  # code setting a variable
    assert find_losses("loss train: 1.646, val: n/a | iter time: 820.31 ms") == [("train", 1.646)]
    parser = parsed([f"Época {epoch}/5 | Loss Train: {2.0 - epoch / 10:.4f} | Loss Val: {2.1 - epoch / 20:.4f}"
                     for epoch in range(1, 6)])
    assert [value for _, value in parser.val.all_points()] == [2.05, 2.0, 1.95, 1.9, 1.85]
    assert parser.train.last == (5, 1.5)


def test_keras_counts_and_a_one_line_dict_are_not_settings():
    parser = parsed(["Total params: 6,110,208 (23.31 MB)", "Trainable params: 6,110,208 (23.31 MB)",
                     "Non-trainable params: 0 (0.00 B)",
                     "{'loss': 2.1, 'learning_rate': 5e-05, 'epoch': 0.5}"])
    assert (parser.settings["n_params"], parser.settings["trainable_params"]) == (6_110_208, 6_110_208)
    assert "learning_rate" not in parser.log_settings.overrides  # the schedule's value at a step, not a setting


LITGPT_HYPERPARAMETERS = """checkpoint_dir: checkpoints/TinyLlama/TinyLlama-1.1B-intermediate-step-1431k-3T
out_dir: out/finetune/lora-tiny
precision: bf16-true
quantize:
devices: 2
lora_r: 16
lora_alpha: 32
lora_dropout: 0.05
data:
  class_path: litgpt.data.Alpaca2k
  init_args:
    val_split_fraction: 0.03847
    seed: 42
train:
  global_batch_size: 16
  micro_batch_size: 2
  epochs: 3
  max_steps:
  max_seq_length: 512
optimizer:
  class_path: torch.optim.AdamW
  init_args:
    lr: 0.0002
    weight_decay: 0.0
"""


def _litgpt_out(out: Path, logger: str) -> Path:
    """litgpt's output folder: its settings in final/ and a step-* folder, its metrics under logs/<logger>."""
    for folder in ("final", "step-000800"):
        (out / folder).mkdir(parents=True)
        (out / folder / "hyperparameters.yaml").write_text(LITGPT_HYPERPARAMETERS)
        (out / folder / "lit_model.pth.lora").write_bytes(b"\x80\x02 not opened")
    run = out / "logs" / logger / "version_0"
    run.mkdir(parents=True)
    return run


def test_a_litgpt_output_folder_is_one_attempt_with_its_settings(tmp_path: Path):
    run = _litgpt_out(tmp_path / "out" / "finetune" / "lora-tiny", "csv")
    rows = ["loss,iter,step,epoch,iter_time,tokens,total_tokens,learning_rate,val_loss,val_ppl"]
    for iteration in range(1, 301):  # Fabric's CSVLogger: the train rows, and a validation row every 100 steps
        rows.append(f"{2.0 - iteration / 300:.4f},{iteration},{iteration - 1},0,0.5,{iteration * 1024},"
                    f"{iteration * 2048},0.0002,,")
        if iteration % 100 == 0:
            rows.append(f",,{iteration},,,,,,{1.9 - iteration / 600:.4f},1.0")
    (run / "metrics.csv").write_text("\n".join(rows) + "\n")
    [attempt] = list(scan([str(tmp_path)]))
    assert (attempt.source, attempt.name, attempt.outcome) == ("lightning", "lora-tiny/version_0", "success")
    assert attempt.model == "TinyLlama/TinyLlama-1.1B-intermediate-step-1431k-3T"
    assert (attempt.lr, attempt.batch_size, attempt.grad_accum, attempt.epochs) == (0.0002, 2, 4, 3.0)
    assert (attempt.precision, attempt.lora) == ("bf16", {"r": 16, "alpha": 32, "dropout": 0.05})
    assert attempt.extra["sources"]["lr"] == "final/hyperparameters.yaml"
    assert (attempt.steps, attempt.best_val_loss, attempt.final_train_loss) == (300, 1.4, 1.0)
    assert [value for _, kind, value in attempt.metrics if kind == "val"] == [1.7333, 1.5667, 1.4]


def test_a_litgpt_tensorboard_folder_takes_the_newest_checkpoints_settings(tmp_path: Path):
    tensorboard = __import__("pytest").importorskip("torch.utils.tensorboard")
    out = tmp_path / "pretrain" / "tiny"
    run = _litgpt_out(out, "tensorboard")
    (out / "final" / "hyperparameters.yaml").unlink()  # stopped before the end: only step-000800 has them
    writer = tensorboard.SummaryWriter(log_dir=str(run))
    for step, loss in ((0, 10.9), (400, 6.1), (800, 4.2)):
        writer.add_scalar("loss", loss, step, new_style=True)
    writer.close()
    [attempt] = list(scan([str(tmp_path)]))
    assert (attempt.name, attempt.final_train_loss, attempt.lr) == ("tiny/version_0", 4.2, 0.0002)
    assert attempt.extra["sources"]["lr"] == "step-000800/hyperparameters.yaml"
    [alone] = list(scan([str(run)]))  # the run folder given alone still finds its out_dir's settings
    assert alone.lr == 0.0002
    (out / "step-000800" / "hyperparameters.yaml").write_text("train: [unclosed\n")  # broken: the curves stay
    [broken] = list(scan([str(tmp_path)]))
    assert (broken.final_train_loss, broken.lr) == (4.2, None)
    (out / "step-000800" / "hyperparameters.yaml").write_bytes(b"a: 1\n" * 400_000)  # past the size read
    [large] = list(scan([str(tmp_path)]))
    assert large.final_train_loss == 4.2 and large.extra["settings_unreadable"].startswith(
        "step-000800/hyperparameters.yaml: ")
