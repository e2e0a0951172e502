"""``luna scan`` on Unsloth's console output: its banner (batch per device, accumulation, planned steps, the
model's size beside the trainable share), the Trainer's quoted log dicts of transformers 5, and the notebook's
progress table copied into a text log. Lines in the format of real runs found in public repositories."""

from __future__ import annotations

from pathlib import Path

from lunalm.runs.scan import scan

BANNER = ['==((====))==  Unsloth - 2x faster free finetuning | Num GPUs used = 1',
          '   \\\\   /|    Num examples = 20 | Num Epochs = 30 | Total steps = 90',
          'O^O/ \\_/ \\    Batch size per device = 4 | Gradient accumulation steps = 2',
          '\\        /    Data Parallel GPUs = 1 | Total batch size (4 x 2 x 1) = 8',
          ' "-____-"     Trainable parameters = 50,462,720 of 1,150,511,104 (4.39% trained)']
TABLE = [' [90/90 01:55, Epoch 30/30]', 'Step\tTraining Loss', '10\t1.898500', '20\t0.925200', '30\t0.647600',
         '40\t0.392000', '50\t0.177500', '60\t0.085500', '70\t0.055200', '80\t0.046800', '90\t0.044500',
         'Device set to use cuda:0']


def test_a_copied_progress_table_and_the_unsloth_banner_are_read(tmp_path: Path):
    (tmp_path / "train_output.txt").write_text("\n".join(["Map: 100%", *BANNER, "", *TABLE]) + "\n")
    [run] = list(scan([str(tmp_path)]))
    assert (run.source, run.outcome, run.batch_size, run.grad_accum, run.epochs) == ("log", "success", 4, 2, 30.0)
    assert (run.n_params, run.extra["trainable_params"], run.extra["max_steps"]) == (1150511104, 50462720, 90)
    assert [row for row in run.metrics if row[0] in (10, 90)] == [(10, "train", 1.8985), (90, "train", 0.0445)]
    assert (run.steps, run.final_train_loss) == (90, 0.0445)
    assert run.evidence.startswith("train_output.txt:18: train loss 1.9 → 0.0445 over steps 10–90")


def test_the_older_banner_and_transformers_5_quoted_log_dicts(tmp_path: Path):
    old = ['==((====))==  Unsloth - 2x faster free finetuning | Num GPUs = 1',
           '   \\\\   /|    Num examples = 51,760 | Num Epochs = 1',
           'O^O/ \\_/ \\    Batch size per device = 2 | Gradient Accumulation steps = 4',
           '\\        /    Total batch size = 8 | Total steps = 60',
           ' "-____-"     Number of trainable parameters = 41,943,040']
    losses = ["{'loss': '2.007', 'grad_norm': '2.271', 'learning_rate': '0', 'epoch': '0.006593'}",
              "{'loss': '1.966', 'grad_norm': '2.192', 'learning_rate': '4e-05', 'epoch': '0.01319'}",
              "{'loss': '1.862', 'grad_norm': '1.34', 'learning_rate': '0.0002', 'epoch': '0.03956'}",
              "{'loss': '1.538', 'grad_norm': '0.7279', 'learning_rate': '0.0001978', 'epoch': '0.07253'}"]
    (tmp_path / "finetune.log").write_text("\n".join([*old, *losses]) + "\n")
    [run] = list(scan([str(tmp_path)]))
    assert (run.batch_size, run.grad_accum, run.epochs, run.n_params) == (2, 4, 1.0, None)
    assert (run.extra["max_steps"], run.extra["trainable_params"], run.final_train_loss) == (60, 41943040, 1.538)
    assert run.lr == 0.0002 and "highest logged" in run.extra["sources"]["lr"]
