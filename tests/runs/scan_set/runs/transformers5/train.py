"""A tiny causal LM trained with the transformers Trainer on a few lines of text (CPU, seconds)."""
import sys

import torch
from transformers import GPT2Config, GPT2LMHeadModel, Trainer, TrainingArguments

text = open(sys.argv[1], encoding="utf-8").read()
chars = sorted(set(text))
ids = [chars.index(c) for c in text]
block = 32
rows = [ids[i:i + block] for i in range(0, len(ids) - block, block)]
train = [{"input_ids": torch.tensor(r), "labels": torch.tensor(r)} for r in rows[:-8]]
held = [{"input_ids": torch.tensor(r), "labels": torch.tensor(r)} for r in rows[-8:]]
config = GPT2Config(vocab_size=len(chars), n_positions=block, n_embd=32, n_layer=2, n_head=2)
model = GPT2LMHeadModel(config)
args = TrainingArguments(output_dir="out", learning_rate=5e-4, per_device_train_batch_size=4,
                         gradient_accumulation_steps=2, max_steps=30, logging_steps=5, eval_strategy="steps",
                         eval_steps=10, save_steps=15, warmup_steps=5, report_to=[], use_cpu=True, seed=0)
Trainer(model=model, args=args, train_dataset=train, eval_dataset=held).train()
