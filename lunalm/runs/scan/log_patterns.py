"""The patterns a training log is read with (``lunalm.runs.scan.logs``): steps, losses in dict lines, the
end of training, runtimes, early stopping, progress bars, and the settings trainers print."""

from __future__ import annotations

import re

from lunalm.runs.scan.classify import HINT_WORDS, any_word
from lunalm.runs.scan.log_lines import NUMBER as _NUMBER

# Patterns run on the lower-cased line (re.IGNORECASE makes Python's alternations many times slower).
# Only a step the log names: a tqdm/Keras counter ("450/1000 [") restarts every epoch, so those lines are
# counted instead (a step that goes back means a resume, see LossSeries, or a new run, see ``restarts``).
_STEP = re.compile(r"\b(?:global[ _]step|step|iter(?:ation)?)\s*[:=#]?\s*(\d+)(?:\s*/\s*(\d+))?")
# transformers 5.x prints the values as strings: {'loss': '6.799', 'learning_rate': '4.8e-05'}
_DICT_PAIR = re.compile(r"[\"'](\w+)[\"']\s*:\s*[\"']?(" + _NUMBER + r")(?![\w.])[\"']?")
_TRAIN_KEYS = {"", "train", "training", "avg", "average", "mean", "running", "total", "lm", "batch"}
_VAL_KEYS = {"val", "valid", "validation", "eval", "dev"}
_DONE = re.compile(r"\btraining (?:is )?(?:complete|completed|finished|done)\b|\b(?:finished|done) training\b|"
                   r"\btrain_runtime\b|`?max_(?:epochs|steps)=\d+`? reached")
# A mean over the whole run, not the loss at its end: the Trainer's "TrainOutput(global_step=500,
# training_loss=0.64, ...)" and its metrics table ("  train_loss               =     0.4479")
_MEAN_LOSS = re.compile(r"trainoutput\(|^train_loss +=")
_FINAL_STEP = re.compile(r"trainoutput\(global_step=(\d+)")
# How long train() ran: "train_runtime = 17:52:38.15" (the metrics table), "'train_runtime': 64358.151"
_RUNTIME = re.compile(r"train_runtime[\"']?\s*[:=]\s*(?:(\d+):(\d\d):)?(\d+(?:\.\d+)?)")
# litgpt: "Training time: 412.33s" (finetune), "| - Training Time : 412.33 s" (pretrain)
_TRAINING_TIME = re.compile(r"\btraining time\s*:\s*(\d+(?:\.\d+)?)\s*s\b")
# LLaMA-Factory's trainer_log.jsonl: "elapsed_time": "6:48:06" (or "1 day, 0:08:23")
_ELAPSED = re.compile(r"[\"']elapsed_time[\"']\s*:\s*[\"'](?:(\d+) days?, )?(\d+):(\d\d):(\d\d)")
# llm.c (train_gpt2.cu) writes its main.log as "s:0 trl:11.0091 lr:0.000001 norm:15.37" and "s:500 tel:3.2722"
_LLMC = re.compile(r"s:(\d+) (trl|tel):(" + _NUMBER + r")(?![\w.])")
# Early stopping as trainers announce it (Keras "Epoch 00007: early stopping", Lightning's EarlyStopping)
_EARLY_STOP = re.compile(r"epoch \d+: early stopping|early stopping (?:at|triggered)|signaling trainer to stop|"
                         r"stopping early\b")
# "Epoch 8/30", "epoch: 8/30", "Epoch [8/30]": how far a run got of the epochs it planned
_EPOCH_OF = re.compile(r"\bepoch\s*[:=]?\s*\[?\s*(\d+)\s*/\s*(\d+)\b")
_KERAS_BAR = re.compile(r"\s*\d+/(\d+) \[[=>.]*\]")  # "126/126 [==============================] - 817s"
_PROGRESS_BAR = re.compile(r"\d%\|[^|]*\|\s*\d+/\d+\s*\[|\d+/\d+\s*\[[^\]]*(?:it/s|s/it)")  # tqdm
# What launchers and trainers put before a line: torchrun's "[rank0]:" or "[default0]:", srun's "0: ", and
# torchtitan's "[titan] " ("[rank0]:[titan] 2025-06-04 08:51:48,074 - root - INFO - step: 10  loss: 10.7069")
_RANK_PREFIX = re.compile(r"^(?:\d{1,4}: (?=\[))?(?:\[(?:rank|default)\d+\]:\s*)?(?:\[titan\]\s*)?")
# torchtitan's evaluation: "validate step: 10  loss:  5.2317  memory: ..." (no key before its "loss")
_VALIDATE_STEP = re.compile(r"\b(?:validat(?:e|ion)|eval(?:uation)?) step\b")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_SETTING_HINT = re.compile(r"param|epochs|batch size|accumulation|optimization steps|device")
_PRINTED_HINT = re.compile(r"\blr\b|learning[ _]rate|batch[ _]size|epochs|model|optimi[sz]er|precision")
# Any word that makes a line worth more than counting its loss: error hints (classify), a traceback, the
# end of training (_DONE), settings (_SETTINGS).
_ATTENTION = any_word(HINT_WORDS + ["traceback", "train", "reached", "param", "epochs", "batch size",
                                    "accumulation", "optimization steps", "device"])
_SETTINGS = [  # (field, pattern): what trainers print about the run before it starts
    ("n_params", re.compile(r"number of parameters\s*[:=]\s*([\d.,]+)\s*([kmb])?")),
    ("n_params", re.compile(r"\ball params\s*[:=]\s*([\d,]+)()")),  # peft's print_trainable_parameters()
    ("n_params", re.compile(r"(?<!trainable )\bparam(?:eter)? count\s*[:=]\s*([\d.,]+)\s*([kmb])?")),  # slm_training
    # Unsloth's banner: "Trainable parameters = 3,194,880 of 856,180,800 (0.37% trained)" ("8,798,208/500,000,000")
    ("n_params", re.compile(r"trainable parameters\s*=\s*[\d,]+\s*(?:of\s*|/)([\d,]+)()")),
    # litgpt's pretrain "Total parameters: 1,100,048,384", Keras's summary "Total params: 6,110,208"
    ("n_params", re.compile(r"\btotal param(?:eter)?s\s*[:=]\s*([\d,]+)()")),
    ("n_params", re.compile(r"\bsize: ([\d,]+) total param")),  # torchtitan "Model llama3 8B size: 8,030,261,248 total
    #                                                            parameters"
    # what the optimizer updates: a LoRA adapter's share ("Number of trainable parameters = 48,627,712" for a
    # 3B model), kept apart from the model's size; with the frozen rest (litgpt's finetune "Number of
    # non-trainable parameters: 1,100,048,384") the two make the model's size
    ("trainable_params", re.compile(r"(?:number of )?(?<!non-)trainable param(?:eter)?s\s*[:=]\s*([\d.,]+)\s*"
                                    r"([kmb])?")),
    ("frozen_params", re.compile(r"non-trainable param(?:eter)?s\s*[:=]\s*([\d,]+)()")),
    ("epochs", re.compile(r"num epochs\s*=\s*([\d.,]+)")),
    ("batch_size", re.compile(r"(?:instantaneous )?batch size per device\s*=\s*([\d,]+)")),  # Unsloth: no "inst."
    ("batch_size", re.compile(r"\blocal batch size\s*[:=]?\s*(\d+)")),  # torchtitan's "Training starts at step 1,
    #                                                                    with local batch size 8, ..."
    ("grad_accum", re.compile(r"gradient accumulation steps\s*[:=]?\s*([\d,]+)")),
    # Unsloth: "Total steps = 60"; torchtitan: "..., total steps 3000 (warmup 200)"
    ("max_steps", re.compile(r"total (?:optimization )?steps\s*[:=]?\s*([\d,]+)")),
    ("device", re.compile(r"\b(?:using|running on) device\s*[:=]?\s*['\"]?(cuda|cpu|mps)\b")),
]
# A run's settings printed as "key: value" or "key=value" ("lr: 0.0001", "batch_size: 128", "num_epochs: 30",
# "Model=ytu-ce-cosmos/turkish-gpt2-large"): kept as the log's overrides (``effective``), under the name a
# script would give them, so a config file or a script beside the log layers with them as with nanoGPT's
# "Overriding:". A quoted key is not one: {'learning_rate': 4.8e-05} is the schedule's value at a step.
_PRINTED = [
    ("lr", re.compile(r"(?<!['\"\w])(?:lr|learning[_ ]rate)\s*[:=]\s*(" + _NUMBER + r")(?![\w.])")),
    ("batch_size", re.compile(r"(?<!['\"\w])batch[_ ]size\s*[:=]\s*(\d+)\b")),
    ("num_epochs", re.compile(r"(?<!['\"\w])(?:num_(?:train_)?epochs|epochs)\s*[:=]\s*(\d+)\b")),
    ("optimizer", re.compile(r"(?<!['\"\w])optimi[sz]er\s*[:=]\s*['\"]?([a-z][a-z0-9_]*)\b")),  # a sweep's config
    ("precision", re.compile(r"(?<!['\"\w])precision\s*[:=]\s*['\"]?((?:bf|fp)(?:8|16|32)(?:-mixed)?|b?float(?:16|32)"
                             r"|(?:16|32)(?:-mixed)?)(?![\w.])")),  # "Precision: fp32" (not a metric's 0.85)
    ("model_name_or_path", re.compile(r"(?<![\w'\"])model(?:_name(?:_or_path)?| name)?\s*[:=]\s*['\"]?"
                                      r"([a-z0-9][\w.-]*/[\w.-]+)", re.I)),
]
