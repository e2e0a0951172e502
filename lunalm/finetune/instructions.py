"""Instruction data: Alpaca or chat JSONL -> chat template -> padded windows with the prompt masked.

Each example becomes a list of messages (Alpaca: the instruction (+ input) as the user turn, the output as
the assistant turn), is rendered through the tokenizer's Jinja chat template (ours, ``DEFAULT_TEMPLATE``,
when the base has none; it is saved with the tokenizer), and tokenized piece by piece so every token
knows whether it belongs to an assistant turn. Only assistant tokens are targets: everything else gets
label -100 and contributes exactly nothing to the loss or its gradient.

One example per window of ``context_length`` (no packing): ``inputs = ids[:-1]``, ``labels = ids[1:]``
with the mask applied, right-padded with the pad id and label -100; longer examples are truncated.
``InstructionSampler`` is ``WindowSampler`` over example rows (same resumable state) whose epoch order
groups examples of similar length into the same micro-batch, so the loop's trimming of unscored trailing
columns (``lunalm.data.batches.scored_widths``) leaves little padding to compute: each epoch is shuffled,
cut into chunks of ``GROUP_CHUNK`` micro-batches, each chunk sorted by length and cut into micro-batches,
and those micro-batches shuffled. Every example is still visited exactly once per epoch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lunalm.data.batches import IGNORE_INDEX, WindowSampler, scored_widths
from lunalm.errors import DataError

# A plain-text template: works with any tokenizer (no new special tokens); eos ends each turn so the
# model learns to stop after its answer.
DEFAULT_TEMPLATE = (
    "{% for message in messages %}{{ '### ' + message['role'] + ':\\n' + message['content'] + eos_token + '\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '### assistant:\\n' }}{% endif %}")
ROLES = ("system", "user", "assistant")


# --- reading -------------------------------------------------------------------------------------
def jsonl_files(paths) -> list[Path]:
    files = []
    for path in map(Path, paths):
        files.extend(sorted(path.rglob("*.jsonl")) if path.is_dir() else [path])
    missing = [str(f) for f in files if not f.is_file()]
    if missing or not files:
        raise DataError(f"instruction data: {', '.join(missing) or 'no .jsonl files'} not found")
    return files


def detect_format(paths) -> str:
    """'alpaca', 'chat' or 'text' from the first record of the first .jsonl file (text for other files)."""
    files = [Path(p) for p in paths]
    missing = [str(f) for f in files if not f.exists()]
    if missing:
        raise DataError(f"{', '.join(missing)}: no such file or directory; pass existing .jsonl files, text "
                        "files or folders")
    if not files or not all(f.suffix == ".jsonl" for f in files):
        return "text"
    try:
        with files[0].open(encoding="utf-8-sig") as handle:  # -sig: a BOM from Windows editors is fine
            first = next((line for line in handle if line.strip()), None)
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"{files[0]}: cannot be read as UTF-8 JSON lines ({error}); check the file") from None
    if first is None:
        return "text"
    try:
        keys = set(json.loads(first))
    except (ValueError, TypeError):
        raise DataError(f"{files[0]}: the first line is not a JSON object; give --format") from None
    return "chat" if "messages" in keys else "alpaca" if "instruction" in keys else "text"


def read_examples(path: Path, fmt: str) -> list[list[dict]]:
    """Every line of ``path`` as messages; a bad line raises DataError naming the file and line."""
    examples = []
    with open(path, encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as error:
                raise DataError(f"{path}:{number}: not valid JSON ({error})") from None
            examples.append(_messages(record, fmt, f"{path}:{number}"))
    return examples


def _messages(record, fmt: str, where: str) -> list[dict]:
    if not isinstance(record, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(record).__name__}")
    if fmt == "alpaca":
        missing = [k for k in ("instruction", "output") if not isinstance(record.get(k), str)]
        if missing:
            raise DataError(f"{where}: missing field(s) {', '.join(missing)} for --format alpaca (each line "
                            "needs instruction, output and optionally input)")
        prompt = record["instruction"] + (f"\n\n{record['input']}" if record.get("input") else "")
        return [{"role": "user", "content": prompt}, {"role": "assistant", "content": record["output"]}]
    messages = record.get("messages")
    ok = isinstance(messages, list) and all(isinstance(m, dict) and m.get("role") in ROLES and
                                            isinstance(m.get("content"), str) for m in messages)
    if not ok or not any(m["role"] == "assistant" for m in messages):
        raise DataError(f"{where}: --format chat needs \"messages\": a list of {{\"role\": system|user|"
                        "assistant, \"content\": text}} with at least one assistant turn")
    return messages


# --- rendering -----------------------------------------------------------------------------------
def compile_template(template: str):
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    return ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True).from_string(template)


def tokenize_example(messages: list[dict], template, tokenizer) -> tuple[list[int], list[bool]]:
    """Token ids of the rendered conversation and, per token, whether it is a target (assistant text)."""
    def render(upto: list[dict], prompt: bool) -> str:
        return template.render(messages=upto, add_generation_prompt=prompt, eos_token=tokenizer.eot_token,
                               bos_token="")

    pieces, done = [], ""
    for index, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        before, after = render(messages[:index], True), render(messages[:index + 1], False)
        if not (before.startswith(done) and after.startswith(before)):
            raise DataError("the chat template does not render conversations as growing prefixes, so the "
                            "prompt cannot be masked; use a standard template")
        pieces += [(before[len(done):], False), (after[len(before):], True)]
        done = after
    ids, targets = [], []
    for text, is_target in pieces:
        piece = tokenizer.encode(text)
        ids += piece
        targets += [is_target] * len(piece)
    return ids, targets


def to_window(ids: list[int], targets: list[bool], context_length: int, pad_id: int):
    """(inputs, labels), each (T,) int64: labels shifted by one, -100 on prompt and padding."""
    ids, targets = ids[:context_length + 1], targets[:context_length + 1]
    inputs = np.full(context_length, pad_id, dtype=np.int64)
    labels = np.full(context_length, IGNORE_INDEX, dtype=np.int64)
    n = len(ids) - 1
    inputs[:n] = ids[:-1]
    labels[:n] = np.where(targets[1:], ids[1:], IGNORE_INDEX)  # label t is token t + 1, kept if a target
    return inputs, labels


@dataclass
class InstructionData:
    train: tuple[np.ndarray, np.ndarray]  # (inputs, labels), each (N, T) int64
    val: tuple[np.ndarray, np.ndarray]
    truncated: int  # examples cut at context_length


def build_instruction_data(paths, fmt: str, tokenizer, context_length: int, val_fraction: float,
                           seed: int) -> InstructionData:
    """Read, render, tokenize and split (by example, deterministic from ``seed``)."""
    template = compile_template(tokenizer.chat_template or DEFAULT_TEMPLATE)
    rows, truncated = [], 0
    for path in jsonl_files(paths):
        for messages in read_examples(path, fmt):
            ids, targets = tokenize_example(messages, template, tokenizer)
            truncated += len(ids) > context_length + 1
            inputs, labels = to_window(ids, targets, context_length, tokenizer.pad_id)
            if (labels != IGNORE_INDEX).any():  # a prompt that fills the window teaches nothing
                rows.append((inputs, labels))
    if not rows:
        raise DataError(f"{', '.join(map(str, paths))}: no example has an answer within context_length "
                        f"{context_length}; use a larger --context")
    order = np.random.default_rng([seed, 7]).permutation(len(rows))
    n_val = int(len(rows) * val_fraction) if len(rows) > 1 else 0
    split = {"val": order[:n_val], "train": order[n_val:]}
    arrays = {name: (np.stack([rows[i][0] for i in idx]) if len(idx) else np.zeros((0, context_length), np.int64),
                     np.stack([rows[i][1] for i in idx]) if len(idx) else np.zeros((0, context_length), np.int64))
              for name, idx in split.items()}
    return InstructionData(arrays["train"], arrays["val"], truncated)


def sample_chat(model, tokenizer, data: InstructionData, cfg, device, n: int = 2) -> list[tuple[str, str]]:
    """(rendered prompt, answer) for the first ``n`` held-out examples (training ones without a validation
    split): their prompt up to the first answer, exactly the ids the model trains on, so samples show
    what `luna chat` will answer. Decoded with the model's KV cache, stopping at end-of-turn."""
    from lunalm.generate import generate_ids

    inputs, labels = data.val if len(data.val[0]) else data.train
    pairs = []
    for row, targets in zip(inputs[:n], labels[:n]):
        first = int(np.flatnonzero(targets != IGNORE_INDEX)[0])  # labels[t] is token t + 1: the answer's
        prompt = row[:first + 1].tolist()
        answer = generate_ids(model, prompt, cfg, stop_id=tokenizer.eot_id, device=device)
        pairs.append((tokenizer.decode(prompt), tokenizer.decode(answer)))
    return pairs


GROUP_CHUNK = 64  # micro-batches sorted together: long enough to find equal lengths, short enough to mix


class InstructionSampler(WindowSampler):
    """WindowSampler over example rows, length-grouped into ``group``-sized runs (None: plain shuffle)."""

    def __init__(self, rows: tuple[np.ndarray, np.ndarray], seed: int = 1337, group: int | None = None):
        self.inputs, self.labels = rows
        self.context_length = self.inputs.shape[1]
        self.starts = np.arange(len(self.inputs), dtype=np.int64)  # (n_examples,): row indices
        self.seed = seed
        self.group = group
        self.shift = False  # starts are row indices, not token offsets: never moved
        self.epoch, self.position = 0, 0
        self._order_epoch, self._order = -1, np.empty(0, np.int64)

    @property
    def lengths(self) -> np.ndarray:
        """(n_examples,) columns up to and including the last scored one: what a batch must keep."""
        scored = self.labels != IGNORE_INDEX
        return self.context_length - np.argmax(scored[:, ::-1], axis=1)  # every row has a target

    def _epoch_order(self) -> np.ndarray:
        if self._order_epoch == self.epoch or not self.group or self.group >= self.n_windows:
            return super()._epoch_order()
        rng = np.random.default_rng([self.seed, self.epoch])
        order, lengths = rng.permutation(self.n_windows), self.lengths
        chunk = self.group * GROUP_CHUNK
        blocks = []
        for begin in range(0, len(order), chunk):
            part = order[begin:begin + chunk]
            part = part[np.argsort(lengths[part], kind="stable")]
            blocks += [part[i:i + self.group] for i in range(0, len(part), self.group)]
        full = len(blocks) - (len(blocks[-1]) < self.group)  # a short last block stays last: alignment
        self._order = np.concatenate([blocks[i] for i in rng.permutation(full)] + blocks[full:])
        self._order_epoch = self.epoch
        return self._order

    def next_batch(self, batch_size: int):
        import torch

        rows = self.next_starts(batch_size)
        return torch.from_numpy(self.inputs[rows]), torch.from_numpy(self.labels[rows])  # (B, T) each


def eval_batches(rows: tuple[np.ndarray, np.ndarray], batch_size: int, n_batches: int) -> list:
    import torch

    inputs, labels = rows
    count = min(len(inputs), batch_size * n_batches)
    batches = []
    for i in range(0, count, batch_size):
        x, y = torch.from_numpy(inputs[i:i + batch_size]), torch.from_numpy(labels[i:i + batch_size])
        width = scored_widths(y, batch_size)[0]  # trailing padding: nothing to score, nothing to compute
        batches.append((x[:, :width], y[:, :width]))
    return batches
