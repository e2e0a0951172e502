"""A Trainer output folder without its ``trainer_state.json`` (checkpoints deleted, the folder pushed or
copied into a repository) is read from the model card the Trainer wrote into its README.md, Axolotl's copied
config included. The cards here are shaped as public Axolotl and Trainer outputs show them; before, such a
folder was no attempt at all."""

from __future__ import annotations

import json
from pathlib import Path

from lunalm.runs.scan import scan

MARK = ("<!-- This model card has been generated automatically according to the information the Trainer had access "
        "to. You\nshould probably proofread and complete it, then remove this comment. -->\n")
AXOLOTL = """---
library_name: peft
tags:
- generated_from_trainer
datasets:
- /home/ayse/veri/haberler_alpaca.jsonl
base_model: TinyLlama/TinyLlama-1.1B-Chat-v1.0
model-index:
- name: outputs/tinyllama-haber
  results: []
---

""" + MARK + """
[<img src="https://raw.githubusercontent.com/axolotl-ai-cloud/axolotl/main/image/axolotl-badge-web.png" alt="Built with Axolotl" width="200" height="32"/>](https://github.com/axolotl-ai-cloud/axolotl)
<details><summary>See axolotl config</summary>

axolotl version: `0.9.1`
```yaml
base_model: TinyLlama/TinyLlama-1.1B-Chat-v1.0
model_type: LlamaForCausalLM
load_in_4bit: true
adapter: qlora
lora_r: 32
lora_alpha: 64
lora_dropout: 0.05
lora_target_modules:
  - q_proj
  - v_proj
datasets:
  - path: /home/ayse/veri/haberler_alpaca.jsonl
    type: alpaca
val_set_size: 0.05
output_dir: ./outputs/tinyllama-haber
sequence_len: 1024
gradient_accumulation_steps: 4
micro_batch_size: 2
num_epochs: 3
optimizer: paged_adamw_8bit
lr_scheduler: cosine
learning_rate: 2e-4
bf16: false
fp16: true
early_stopping_patience: 3
```

</details><br>

# outputs/tinyllama-haber

This model is a fine-tuned version of [TinyLlama/TinyLlama-1.1B-Chat-v1.0](https://huggingface.co/TinyLlama/TinyLlama-1.1B-Chat-v1.0) on the /home/ayse/veri/haberler_alpaca.jsonl dataset.
It achieves the following results on the evaluation set:
- Loss: 1.2210

## Training procedure

### Training hyperparameters

The following hyperparameters were used during training:
- learning_rate: 0.0002
- train_batch_size: 2
- eval_batch_size: 2
- seed: 42
- gradient_accumulation_steps: 4
- total_train_batch_size: 8
- optimizer: Use OptimizerNames.PAGED_ADAMW_8BIT with betas=(0.9,0.999) and epsilon=1e-08 and optimizer_args=No additional optimizer arguments
- lr_scheduler_type: cosine
- lr_scheduler_warmup_steps: 10
- num_epochs: 3.0
- mixed_precision_training: Native AMP

### Training results

| Training Loss | Epoch  | Step | Validation Loss |
|:-------------:|:------:|:----:|:---------------:|
| No log        | 0.0125 | 1    | 2.4102          |
| 1.9021        | 0.5    | 40   | 1.5120          |
| 1.9021        | 1.0    | 80   | 1.3311          |
| 1.2904        | 1.5    | 120  | 1.2650          |
| 1.1007        | 2.0    | 160  | 1.2210          |


### Framework versions

- PEFT 0.15.2
- Transformers 4.51.3
"""


def test_a_trainer_output_folder_without_its_state_is_read_from_its_model_card(tmp_path: Path):
    out = tmp_path / "outputs" / "tinyllama-haber"
    out.mkdir(parents=True)
    (out / "README.md").write_text(AXOLOTL, encoding="utf-8")
    (out / "adapter_config.json").write_text(json.dumps(
        {"base_model_name_or_path": "TinyLlama/TinyLlama-1.1B-Chat-v1.0", "peft_type": "LORA", "r": 32,
         "lora_alpha": 64, "target_modules": ["q_proj", "v_proj"]}))
    (out / "training_args.bin").write_bytes(b"\x80\x04 a pickle, never opened")
    [attempt] = list(scan([str(tmp_path)]))
    assert (attempt.source, attempt.name, attempt.outcome, attempt.status) == \
        ("hf-trainer", "outputs/tinyllama-haber", "success", "stopped-early")
    assert attempt.evidence.startswith("README.md: the model card the Trainer writes when training ends at epoch 2 "
                                       "of 3 (early stopping, patience 3 evaluations), final evaluation loss 1.221")
    whole = AXOLOTL.replace("| 1.1007        | 2.0    | 160  | 1.2210          |",
                            "| 1.1007        | 2.0    | 160  | 1.2210          |\n| 1.0500        | 3.0    | 240  | 1.2100 |")
    (out / "README.md").write_text(whole, encoding="utf-8")
    assert next(iter(scan([str(tmp_path)]))).status == "completed"  # all its epochs: not stopped early
    (out / "README.md").write_text(AXOLOTL, encoding="utf-8")
    [attempt] = list(scan([str(tmp_path)]))
    assert [(step, kind, value) for step, kind, value in attempt.metrics if kind == "train"] == \
        [(40, "train", 1.9021), (120, "train", 1.2904), (160, "train", 1.1007)]  # 1.9021 at step 80 repeats
    assert [value for _, kind, value in attempt.metrics if kind == "val"] == [2.4102, 1.512, 1.3311, 1.265, 1.221]
    assert (attempt.steps, attempt.best_val_loss, attempt.final_train_loss) == (160, 1.221, 1.1007)
    assert attempt.model == "TinyLlama/TinyLlama-1.1B-Chat-v1.0"
    assert (attempt.lr, attempt.batch_size, attempt.grad_accum, attempt.epochs) == (0.0002, 2, 4, 3.0)
    assert (attempt.optimizer, attempt.quantization, attempt.precision) == ("paged_adamw_8bit", "4bit", "fp16")
    assert attempt.lora["r"] == 32 and attempt.lora["alpha"] == 64
    assert attempt.corpus == "/home/ayse/veri/haberler_alpaca.jsonl" and attempt.extra["axolotl"] == "0.9.1"


def test_a_plain_trainer_card_and_a_diverged_one(tmp_path: Path):
    card = MARK + """
# results

This model is a fine-tuned version of [dbmdz/bert-base-turkish-cased](https://huggingface.co/dbmdz/bert-base-turkish-cased) on an unknown dataset.

### Training hyperparameters

The following hyperparameters were used during training:
- learning_rate: 5e-05
- train_batch_size: 16
- num_epochs: 2

### Training results

| Training Loss | Epoch | Step | Validation Loss |
|:-------------:|:-----:|:----:|:---------------:|
| 0.6001        | 1.0   | 500  | 0.5004          |
| nan           | 2.0   | 1000 | nan             |
"""
    out = tmp_path / "results"
    out.mkdir()
    (out / "README.md").write_text(card, encoding="utf-8")
    (tmp_path / "README.md").write_text("# My project\n\nA README that is no model card.\n", encoding="utf-8")
    [attempt] = list(scan([str(tmp_path)]))
    assert (attempt.outcome, attempt.status, attempt.error_kind) == ("failure", "diverged", "nan-loss")
    assert (attempt.lr, attempt.batch_size, attempt.epochs, attempt.steps) == (5e-05, 16, 2.0, 1000)
