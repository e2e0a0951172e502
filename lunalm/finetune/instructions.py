"""Instruction data: Alpaca-style or chat records (JSONL, JSON, CSV) -> chat template -> padded windows with
the prompt masked.

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
SUFFIXES = (".jsonl", ".json", ".csv", ".tsv")
# Field names real instruction datasets use, in the order they are looked for (Alpaca; Dolly; Q&A sets;
# Turkish "soru"/"cevap"); "input" is the prompt's context beside an instruction, else the prompt itself
PROMPT_FIELDS = ("instruction", "prompt", "question", "query", "soru", "talimat", "input")
ANSWER_FIELDS = ("output", "response", "answer", "completion", "target", "cevap", "yanit", "yanıt")
CONTEXT_FIELDS = ("input", "context")
# ShareGPT's "from" values (and role names under other spellings)
_SPEAKERS = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "model": "assistant",
             "bot": "assistant", "chatgpt": "assistant", "system": "system"}


def jsonl_files(paths) -> list[Path]:
    """The instruction files: the given files, and in folders every .jsonl, .json, .csv and .tsv."""
    files = []
    for path in map(Path, paths):
        files.extend(sorted(f for f in path.rglob("*") if f.suffix.lower() in SUFFIXES) if path.is_dir() else [path])
    missing = [str(f) for f in files if not f.is_file()]
    if missing or not files:
        raise DataError(f"instruction data: {', '.join(missing) or 'no .jsonl, .json, .csv or .tsv files'} not found")
    return files


def detect_format(paths) -> str:
    """'alpaca', 'chat' or 'text' from the first record of the first instruction file (.jsonl, .json array,
    .csv, .tsv): chat for "messages" or ShareGPT's "conversations", alpaca for a prompt and an answer field
    (see PROMPT_FIELDS, ANSWER_FIELDS), text otherwise and for other files."""
    files = [Path(p) for p in paths]
    missing = [str(f) for f in files if not f.exists()]
    if missing:
        raise DataError(f"{', '.join(missing)}: no such file or directory; pass existing .jsonl files, text "
                        "files or folders")
    if not files or not all(f.is_file() and f.suffix.lower() in SUFFIXES for f in files):
        return "text"
    first = next(records(files[0]), None)
    if first is None:
        return "text"
    where, record = first
    if isinstance(record, str) or record is None:  # a JSON string per line (or null): documents, as luna train reads
        return "text"
    if not isinstance(record, dict):
        raise DataError(f"{where}: expected a JSON object or string per record, got {type(record).__name__}; "
                        "give --format")
    keys = set(record)
    if keys & {"messages", "conversations"}:
        return "chat"
    if keys & set(ANSWER_FIELDS) and keys & set(PROMPT_FIELDS):
        return "alpaca"
    return "text"


def records(path: Path):
    """``(where, record)`` for each record of an instruction file, whatever its encoding (the corpus
    reader's detection and repair: a cp1254 file reads as it should): JSON lines, a JSON array (or an
    object holding one), CSV or TSV rows with a header."""
    text = _decoded(path)
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        import csv

        from lunalm.corpus.tables import csv_delimiter

        reader = csv.DictReader(text.splitlines(), delimiter="\t" if suffix == ".tsv" else csv_delimiter(path))
        for number, row in enumerate(reader, 2):
            yield f"{path}:{number}", {key: value for key, value in row.items() if key is not None}
        return
    if suffix == ".json" or (text.lstrip()[:1] == "[" and suffix != ".jsonl"):
        try:
            value = json.loads(text)
        except ValueError as error:
            raise DataError(f"{path}: not valid JSON ({error})") from None
        if isinstance(value, dict):
            lists = [item for item in value.values() if isinstance(item, list)]
            value = lists[0] if len(lists) == 1 else [value]
        for number, record in enumerate(value if isinstance(value, list) else [value], 1):
            yield f"{path}: record {number}", record
        return
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            yield f"{path}:{number}", json.loads(line)
        except ValueError as error:
            raise DataError(f"{path}:{number}: not valid JSON ({error}); a JSON array belongs in a .json "
                            "file") from None


_LAST_DECODED: dict = {}  # the file decoded last: the format check reads its first record, then all of it


def _decoded(path: Path) -> str:
    """The text of ``path``, decoded and repaired; the last file's text is kept for the next call, so the
    format check and the reading decode a large file once, not twice."""
    from lunalm.corpus.encoding import decode_bytes

    try:
        stat = path.stat()
        key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
        if _LAST_DECODED.get("key") != key:
            _LAST_DECODED.clear()
            _LAST_DECODED.update(key=key, text=decode_bytes(path.read_bytes(), str(path)).text.lstrip("\ufeff"))
    except OSError as error:
        raise DataError(f"{path}: cannot be read ({error.strerror or error})") from None
    return _LAST_DECODED["text"]


def read_examples(path: Path, fmt: str) -> list[list[dict]]:
    """Every record of ``path`` as messages (an example with an empty prompt or answer is None); a bad
    record raises DataError naming the file and line."""
    try:
        return [_messages(record, fmt, where) for where, record in records(path)]
    finally:
        _LAST_DECODED.clear()  # read whole: the text is not needed again


def _text_field(record: dict, names: tuple[str, ...], where: str, skip: tuple[str, ...] = ()) -> tuple[str, str] | None:
    """(name, text) of the first of ``names`` the record has; a value that is not text is an error."""
    for name in names:
        if name in record and name not in skip:
            value = record[name]
            if value is None or (isinstance(value, float) and value != value):
                return name, ""  # null / NaN: an empty field
            if not isinstance(value, str):
                raise DataError(f"{where}: field {name!r} holds {type(value).__name__} {value!r}, not text")
            return name, value
    return None


def _sharegpt(turns: list[dict], where: str) -> list[dict]:
    """ShareGPT turns as messages. A speaker the table does not know is the assistant when the others are
    the user and the system (a dataset naming its assistant: "from": "jessy"); two unknown ones are an error
    naming them."""
    unknown = sorted({str(t.get("from")) for t in turns if str(t.get("from")).lower() not in _SPEAKERS})
    if len(unknown) > 1:
        raise DataError(f"{where}: the conversation's speakers {', '.join(unknown)} are unknown; ShareGPT "
                        "turns come \"from\" human (or user), gpt (or assistant) and system")
    return [{"role": _SPEAKERS.get(str(t.get("from")).lower(), "assistant"), "content": t.get("value")}
            for t in turns]


def _messages(record, fmt: str, where: str) -> list[dict] | None:
    if not isinstance(record, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(record).__name__}")
    if fmt == "alpaca":
        prompt = _text_field(record, PROMPT_FIELDS, where)
        answer = _text_field(record, ANSWER_FIELDS, where)
        if prompt is None or answer is None:
            raise DataError(f"{where}: found fields {', '.join(map(str, record)) or 'none'}; an instruction example "
                            f"needs a prompt ({', '.join(PROMPT_FIELDS)}) and an answer ({', '.join(ANSWER_FIELDS)})")
        context = _text_field(record, CONTEXT_FIELDS, where, skip=(prompt[0],))
        text = prompt[1] + (f"\n\n{context[1]}" if context and context[1].strip() else "")
        if not text.strip() or not answer[1].strip():
            return None
        return [{"role": "user", "content": text}, {"role": "assistant", "content": answer[1]}]
    messages = record.get("messages", record.get("conversations"))
    if isinstance(messages, list) and all(isinstance(m, dict) and "from" in m for m in messages):  # ShareGPT
        messages = _sharegpt(messages, where)
    ok = isinstance(messages, list) and all(isinstance(m, dict) and m.get("role") in ROLES and
                                            isinstance(m.get("content"), str) for m in messages)
    if not ok or not any(m["role"] == "assistant" for m in messages):
        raise DataError(f"{where}: --format chat needs \"messages\": a list of {{\"role\": system|user|"
                        "assistant, \"content\": text} (or ShareGPT's \"conversations\" of {\"from\": human|gpt, "
                        "\"value\": text}) with at least one assistant turn")
    if not any(m["role"] == "assistant" and m["content"].strip() for m in messages):
        return None
    return messages


# --- rendering -----------------------------------------------------------------------------------
class TemplateRefused(Exception):
    """A chat template's own ``raise_exception("...")``: the conversation breaks its rules (a system turn
    where the model has none, roles that do not alternate)."""


def _raise_exception(message: str):
    raise TemplateRefused(message)


def _strftime_now(form: str) -> str:
    import datetime

    return datetime.datetime.now().strftime(form)


def compile_template(template: str):
    """The Jinja template, with the helpers transformers gives chat templates (``raise_exception``,
    ``strftime_now``) so real templates (Gemma's, Llama 3's) render as they do there."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    environment = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    environment.globals.update(raise_exception=_raise_exception, strftime_now=_strftime_now)
    return environment.from_string(template)


def bos_of(tokenizer) -> str:
    """The begin-of-text token a chat template writes first (Llama 3's <|begin_of_text|>, Gemma's <bos>): the
    base's, or nothing (lunalm's own tokenizers have none)."""
    return getattr(tokenizer, "bos_token", None) or ""


_SENTINEL = "\x02answer\x03"


def turn_end_ids(template, tokenizer) -> tuple[int, ...]:
    """The ids that end an assistant turn: end-of-text, and the special token the template writes right
    after an answer (``<|im_end|>``, ``<end_of_turn>``, ``<|eot_id|>``) when it is another one, so chat and
    samples stop where the model learnt to stop."""
    messages = [{"role": "user", "content": "?"}, {"role": "assistant", "content": _SENTINEL}]
    try:
        text = template.render(messages=messages, add_generation_prompt=False, eos_token=tokenizer.eot_token,
                               bos_token=bos_of(tokenizer))
    except Exception:  # a template that refuses this conversation: end-of-text alone
        return (tokenizer.eot_id,)
    after = text.split(_SENTINEL, 1)[1].lstrip(" ") if _SENTINEL in text else ""
    special = set(tokenizer.inner.get_added_tokens_decoder())
    first = next(iter(tokenizer.encode(after)), None) if after else None
    return (tokenizer.eot_id,) + ((first,) if first is not None and first in special and first != tokenizer.eot_id
                                  else ())


def tokenize_example(messages: list[dict], template, tokenizer, counts: dict | None = None,
                     limit: int | None = None) -> tuple[list[int], list[bool]]:
    """Token ids of the rendered conversation and, per token, whether it is a target (assistant text).
    ``counts["last_only"]`` counts conversations of which only the last answer could be masked apart.
    ``limit``: the tokens that matter (a window's); text far past them is not encoded (a 20 M-character
    answer took a minute and 8.6 GB to encode for a 256-token window)."""
    def render(upto: list[dict], prompt: bool) -> str:
        try:
            return template.render(messages=upto, add_generation_prompt=prompt, eos_token=tokenizer.eot_token,
                                   bos_token=bos_of(tokenizer))
        except TemplateRefused as refusal:
            raise DataError(f"the chat template refuses this conversation: {refusal}") from None

    pieces = _turn_pieces(messages, render, tokenizer.eot_token)
    if pieces is None:  # the template moves text between turns (Mistral-Nemo writes the system message into the
        pieces = _last_answer(messages, render)  # last user turn of a prompt only): the last answer alone
        if counts is not None:
            counts["last_only"] = counts.get("last_only", 0) + 1
    ids, targets = [], []
    for text, is_target in pieces:
        if limit is not None:
            if len(ids) > limit:
                break  # past the window: truncated anyway
            text = text[:(limit + 1 - len(ids)) * MAX_TOKEN_CHARS]  # whole tokens up to the window, and more
        piece = tokenizer.encode(text)
        ids += piece
        targets += [is_target] * len(piece)
    return ids, targets


MAX_TOKEN_CHARS = 64  # characters a token covers at most, for cutting text long past a window before encoding


def _turn_pieces(messages: list[dict], render, eos: str) -> list[tuple[str, bool]] | None:
    """(text, is_answer) pieces of the conversation, each answer after the prompt that leads to it, when the
    template renders the conversation as growing prefixes; None when it does not. A template that closes a
    whole conversation with end-of-text (Phi-3: "<|end|>" after every turn, "<|endoftext|>" after the last)
    keeps it on the last answer only."""
    pieces, done = [], ""
    for index, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        before, after = render(messages[:index], True), render(messages[:index + 1], False)
        if not before.startswith(done) and eos and done.endswith(eos) and before.startswith(done[:-len(eos)]):
            done = done[:-len(eos)]
            pieces[-1] = (pieces[-1][0][:-len(eos)], True)
        if not (before.startswith(done) and after.startswith(before)):
            return None
        pieces += [(before[len(done):], False), (after[len(before):], True)]
        done = after
    return pieces


def _last_answer(messages: list[dict], render) -> list[tuple[str, bool]]:
    """The prompt of the last answer as the template renders it for generation, and that answer as it renders
    it in a whole conversation (with the system turns left out where they change the earlier text)."""
    last = max(i for i, m in enumerate(messages) if m["role"] == "assistant")
    prompt = render(messages[:last], True)
    for kept in (messages, [m for m in messages if m["role"] != "system"]):
        index = last if kept is messages else sum(m["role"] != "system" for m in messages[:last])
        before, after = render(kept[:index], True), render(kept[:index + 1], False)
        if after.startswith(before):
            return [(prompt, False), (after[len(before):], True)]
    raise DataError("the chat template does not render an answer after its prompt, so the prompt cannot be "
                    "masked")


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
    empty: int = 0  # examples left out: an empty (or null) prompt or answer
    duplicates: int = 0  # examples left out: the same rendered conversation again
    no_room: int = 0  # examples left out: the prompt alone fills the window (no answer token to train)
    last_only: int = 0  # conversations whose earlier answers are not trained (see tokenize_example)
    read: int = 0  # examples read, before any was left out

    def left_out(self) -> str:
        """"" or " (N left out: …)": the examples read that are not among those scored or trained."""
        why = [f"{n:,} {what}" for n, what in ((self.empty, "with an empty prompt or answer"),
                                              (self.duplicates, "duplicate"),
                                              (self.no_room, "whose prompt fills the window")) if n]
        return f" ({sum((self.empty, self.duplicates, self.no_room)):,} left out: {', '.join(why)})" if why else ""


def build_instruction_data(paths, fmt: str, tokenizer, context_length: int, val_fraction: float,
                           seed: int, dedup: bool = True) -> InstructionData:
    """Read, render, tokenize and split (by example, deterministic from ``seed``)."""
    template = compile_template(tokenizer.chat_template or DEFAULT_TEMPLATE)
    rows, truncated, empty, seen, duplicates, counts, no_room, read = [], 0, 0, set(), 0, {}, 0, 0
    for path in jsonl_files(paths):
        for number, messages in enumerate(read_examples(path, fmt), 1):
            read += 1
            if messages is None:  # an empty prompt or answer teaches nothing (or to answer nothing)
                empty += 1
                continue
            try:
                ids, targets = tokenize_example(messages, template, tokenizer, counts, limit=context_length + 1)
            except DataError as error:
                raise DataError(f"{path}: example {number}: {error}") from None
            key = hash((tuple(ids), tuple(targets)))
            if dedup and key in seen:  # a copy would also land in validation as an example seen in training
                duplicates += 1
                continue
            seen.add(key)
            truncated += len(ids) > context_length + 1
            inputs, labels = to_window(ids, targets, context_length, tokenizer.pad_id)
            if (labels != IGNORE_INDEX).any():  # a prompt that fills the window teaches nothing
                rows.append((inputs, labels))
            else:
                no_room += 1
    if not rows:
        why = [f"{empty:,} have an empty prompt or answer (an example needs both)"] if empty \
            else []
        why += [f"{duplicates:,} repeat an earlier example"] if duplicates else []
        why += [f"{no_room:,} have no answer within context_length {context_length} (the prompt fills the window: "
                "fine-tune with a larger --context, or shorten the prompts)"] if no_room else []
        raise DataError(f"{', '.join(map(str, paths))}: no example to train on: of the {read:,} read, "
                        + ("; ".join(why) or "none was an example"))
    order = np.random.default_rng([seed, 7]).permutation(len(rows))
    n_val = int(len(rows) * val_fraction) if len(rows) > 1 else 0
    split = {"val": order[:n_val], "train": order[n_val:]}
    arrays = {name: (np.stack([rows[i][0] for i in idx]) if len(idx) else np.zeros((0, context_length), np.int64),
                     np.stack([rows[i][1] for i in idx]) if len(idx) else np.zeros((0, context_length), np.int64))
              for name, idx in split.items()}
    return InstructionData(arrays["train"], arrays["val"], truncated, empty, duplicates, no_room,
                           counts.get("last_only", 0), read)


def sample_chat(model, tokenizer, data: InstructionData, cfg, device, n: int = 2) -> list[tuple[str, str]]:
    """(rendered prompt, answer) for the first ``n`` held-out examples (training ones without a validation
    split): their prompt up to the first answer, exactly the ids the model trains on, so samples show
    what `luna chat` will answer. Decoded with the model's KV cache, stopping at end-of-turn."""
    from lunalm.generate import generate_ids

    inputs, labels = data.val if len(data.val[0]) else data.train
    stops = turn_end_ids(compile_template(tokenizer.chat_template or DEFAULT_TEMPLATE), tokenizer)
    pairs = []
    for row, targets in zip(inputs[:n], labels[:n]):
        first = int(np.flatnonzero(targets != IGNORE_INDEX)[0])  # labels[t] is token t + 1: the answer's
        prompt = row[:first + 1].tolist()
        answer = generate_ids(model, prompt, cfg, stop_id=stops, device=device)
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
