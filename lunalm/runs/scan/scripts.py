"""Python training scripts: what they would train and how, read through ``ast`` (never executed or
imported), and whether they look like training at all.

A script's *role* decides what becomes of it:

* ``"trainer"``: it runs training (``loss.backward()``, ``optimizer.step()``, ``trainer.train()``, a
  ``Trainer``/``SFTTrainer`` built) — it becomes an attempt, or lends its settings to the logs beside it;
* ``"helper"``: it only builds parts (an optimizer inside ``configure_optimizers``, a ``train()``
  function) — it fills gaps in a trainer of the same folder, and stands alone only without one;
* ``None``: anything else (data prep, inference), ignored.
"""

from __future__ import annotations

import ast
import os
import re
from dataclasses import dataclass, field

from lunalm.runs.attempt import Attempt, fingerprint
from lunalm.runs.scan.astfacts import collect, dotted, named_values, resolve
from lunalm.runs.scan.shapes import script_shapes
from lunalm.runs.scan.reading import ScanStats, Unreadable, read_bytes
from lunalm.runs.scan.task import FROM_SCRATCH, task_of
from lunalm.runs.scan.walk import FileEntry

MAX_SCRIPT_BYTES = 2 << 20  # bigger .py files are generated code, not training scripts
OPTIMIZERS = frozenset({
    "SGD", "Adam", "AdamW", "Adagrad", "Adadelta", "Adamax", "RMSprop", "RAdam", "NAdam", "LBFGS", "SparseAdam",
    "Adafactor", "Lion", "LAMB", "Lamb", "SophiaG", "Muon", "Shampoo", "Prodigy", "Adan", "AdEMAMix",
    "Adam8bit", "AdamW8bit", "PagedAdamW", "PagedAdamW8bit", "PagedAdamW32bit", "Lion8bit", "PagedLion8bit",
    "SGD8bit", "FusedAdam", "DeepSpeedCPUAdam", "ScheduleFreeAdamW", "GaLoreAdamW", "GaLoreAdamW8bit"})
TRAINER_CLASSES = frozenset({"Trainer", "SFTTrainer", "Seq2SeqTrainer", "DPOTrainer", "ORPOTrainer", "KTOTrainer",
                             "GRPOTrainer", "PPOTrainer", "RewardTrainer"})
TRAIN_FUNCTIONS = frozenset({"train", "train_step", "training_step", "train_epoch", "train_one_epoch",
                             "train_loop", "training_loop"})
_NOT_A_MODEL = ("Tokenizer", "Processor", "Config", "FeatureExtractor", "PeftModel")
_ALIASES = {  # Attempt field (or extra key) -> names that carry it, most specific first
    "lr": ("learning_rate", "lr", "max_lr", "peak_lr", "base_lr"),
    "batch_size": ("per_device_train_batch_size", "micro_batch_size", "train_micro_batch_size_per_gpu",
                   "per_gpu_train_batch_size", "train_batch_size", "batch_size", "B"),  # B: llm.c/build-nanogpt
    "grad_accum": ("gradient_accumulation_steps", "grad_accum_steps", "accumulate_grad_batches", "grad_accum",
                   "accumulation_steps"),
    "epochs": ("num_train_epochs", "num_epochs", "max_epochs", "epochs", "n_epochs"),
    "max_steps": ("max_steps", "max_iters", "num_training_steps", "total_steps"),
    "corpus": ("dataset_name", "dataset", "dataset_id", "train_file", "data_path", "data_root"),
    "model_name": ("model_name_or_path", "pretrained_model_name_or_path", "model_name", "model_id", "base_model",
                   "model_checkpoint", "init_from", "choose_model", "_name_or_path",
                   "model_type"),  # model_type last: an architecture, not a checkpoint
    "context_length": ("max_seq_length", "block_size", "context_length", "seq_len", "max_length"),
    "output_dir": ("output_dir", "out_dir"),
}
_PRECISION_WORDS = {"bfloat16": "bf16", "bf16": "bf16", "bf16-mixed": "bf16", "float16": "fp16", "half": "fp16",
                    "fp16": "fp16", "16": "fp16", "16-mixed": "fp16", "float32": "fp32", "fp32": "fp32",
                    "32": "fp32", "float": "fp32",
                    "fp8": "fp8", "bf16-true": "bf16", "16-true": "fp16", "32-true": "fp32"}  # the last: litgpt
_DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom)
_DEVICE_RANK = {"cuda": 3, "tpu": 2, "mps": 1, "cpu": 0}


@dataclass
class ScriptFacts:
    role: str | None = None  # "trainer" | "helper" | None (see the module docstring)
    fields: dict = field(default_factory=dict)  # Attempt field -> value
    extra: dict = field(default_factory=dict)
    values: dict = field(default_factory=dict)  # every resolved value of every name (``named_values``)
    incidental: bool = False  # a test or benchmark (set by the scanner, see ``pairing.incidental``)
    shapes: frozenset = frozenset()  # the shapes of the lines it prints (``shapes.script_shapes``)


@dataclass
class _Calls:
    """What the calls of a script say (before names and keywords are weighed)."""

    models: list[tuple[int, str]] = field(default_factory=list)  # (preference, id); 0 = a model class
    optimizers: list[str] = field(default_factory=list)
    optimizer_lr: list[float | None] = field(default_factory=list)  # the lr of each optimizer built, if given
    devices: list[str] = field(default_factory=list)
    corpora: list[str] = field(default_factory=list)
    trainers: list[str] = field(default_factory=list)
    lora: dict | None = None
    grad_scaler: bool = False
    trains: bool = False  # an optimizer step: optimizer.step / trainer.train / fit
    builds: bool = False  # an optimizer, model.train(), loss.backward() without a step
    calls_train: bool = False  # a call to train_*(...) with arguments
    fits: bool = False  # trainer.fit(...)
    opened: list[str] = field(default_factory=list)  # data files the code opens
    from_config: bool = False  # a model class built from a config (AutoModelForCausalLM.from_config): new weights


def parse(source: bytes | str, filename: str) -> ast.Module:
    """``ast`` only (``compile`` with ONLY_AST builds a tree and runs nothing); ``Unreadable`` if invalid."""
    flags = ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT  # notebooks may ``await`` at top level
    try:
        return compile(source, filename, "exec", flags=flags, dont_inherit=True)
    except SyntaxError as error:
        where = f" at line {error.lineno}" if error.lineno else ""
        raise Unreadable(f"syntax error{where}: {error.msg}") from None
    except (ValueError, RecursionError, MemoryError) as error:  # NUL bytes, absurd nesting
        raise Unreadable(f"cannot parse: {type(error).__name__}") from None


def read_script(entry: FileEntry, stats: ScanStats) -> ScriptFacts:
    return facts(parse(read_bytes(entry.path, stats, MAX_SCRIPT_BYTES, "script"), entry.path))


def facts(tree: ast.Module) -> ScriptFacts:
    """Everything the tree says about a training run (see ``astfacts`` for how values are resolved)."""
    calls, pairs, functions = collect(tree)
    constants, values = named_values(pairs)
    found = _Calls()
    for call in calls:
        _inspect_call(call, constants, found)
    found.trains = found.trains or _updates_by_hand(tree)
    result = ScriptFacts(role=_role(found, functions, _runs_at_top(tree, constants, functions)))
    result.fields = _fields(found, values, constants)
    result.extra = _extras(found, values)
    result.values = values
    result.shapes = script_shapes(tree)
    pretrained = any(rank == 0 and name not in FROM_SCRATCH for rank, name in found.models) or _first(
        values, _ALIASES["model_name"][:-1], _names_a_checkpoint) is not None
    task = task_of([dotted(call.func) for call in calls], functions, values, pretrained)
    if task:
        result.extra["task"] = task
    return result


def fields_from_values(values: dict[str, list]) -> dict:
    """Attempt fields that named values alone give (a config file's or a log's ``{name: [value]}``)."""
    return _fields(_Calls(), values)


def fill_fields(attempt: Attempt, values: dict, source: str, replace: bool = True) -> None:
    """Set the attempt fields that named values give (``fields_from_values``), each with ``source`` in
    ``extra["sources"]``; ``replace=False`` fills only fields still unknown."""
    for name, value in fields_from_values({key: [value] for key, value in values.items()}).items():
        if replace or getattr(attempt, name) is None:
            setattr(attempt, name, value)
            attempt.extra.setdefault("sources", {})[name] = source


def litgpt_values(found: dict) -> dict:
    """litgpt's settings (printed, or its ``hyperparameters.yaml``) with what they say beyond their names:
    the model is the ``checkpoint_dir`` below ``checkpoints/``, and the accumulation is the global batch
    over the micro-batches of all devices. ``found`` is changed and returned."""
    checkpoint = found.get("checkpoint_dir")
    if isinstance(checkpoint, str) and checkpoint.startswith("checkpoints/") and "model_name" not in found:
        found["model_name"] = checkpoint.removeprefix("checkpoints/")
    micro, total, devices = (found.get(name) for name in ("micro_batch_size", "global_batch_size", "devices"))
    devices = devices if _positive_int(devices) else 1
    if _positive_int(micro) and _positive_int(total) and total % (micro * devices) == 0:
        found.setdefault("gradient_accumulation_steps", total // (micro * devices))
    return found


def yaml_number(value):
    """A config value, with a number YAML 1.1 read as text (``1e-5``, ``2e-4``: no dot) made a number."""
    if isinstance(value, str) and re.fullmatch(r"[-+]?\d+(?:\.\d*)?[eE][-+]?\d+", value.strip()):
        return float(value)
    return value


def planned_steps(values: dict[str, list]) -> int | None:
    """The steps a run planned (``max_steps``, nanoGPT's ``max_iters``, ...) among named values."""
    return _first(values, _ALIASES["max_steps"], _positive_int)


def flat_values(config: dict, depth: int = 0) -> dict:
    """A config's scalar values by their own names, nested sections (``optimizer: {lr: 1e-05}``,
    ``cfg: {data: {batch_size: 64}}``) flattened, the outer names first."""
    flat, nested = {}, []
    for key, value in config.items():
        if isinstance(value, dict) and depth < 3:
            nested.append(value)
        elif isinstance(key, str) and isinstance(value, (bool, int, float, str)):
            flat[key] = value
    for section in nested:
        for key, value in flat_values(section, depth + 1).items():
            flat.setdefault(key, value)
    return flat


def _inspect_call(call: ast.Call, constants: dict, found: _Calls) -> None:
    """What one call says: a model id, an optimizer (and its lr), a trainer, LoRA, a dataset, ..."""
    name = dotted(call.func)
    receiver, _, last = name.rpartition(".")
    if last == "from_pretrained":
        _from_pretrained(call, receiver, constants, found)
    elif last == "from_config" and not any(word in receiver.rpartition(".")[2] for word in _NOT_A_MODEL):
        found.from_config = True
    elif last in OPTIMIZERS or (".optim." in f".{name}" and last[:1].isupper() and last != "Optimizer"
                                and "lr_scheduler" not in name):
        found.optimizers.append(last)
        found.builds = True
        lr = _argument(call, 1, "lr", constants)
        found.optimizer_lr.append(float(lr) if isinstance(lr, (int, float)) and not isinstance(lr, bool) else None)
    elif last in TRAINER_CLASSES:
        found.trainers.append(last)
        found.trains = True
        model = _argument(call, None, "model", constants)
        if isinstance(model, str):
            found.models.append((2, model))
    elif last in ("LoraConfig", "get_peft_model"):
        found.lora = _lora(call, constants) or found.lora
    elif last == "load_dataset":
        corpus = _argument(call, 0, "path", constants)
        if isinstance(corpus, str):
            found.corpora.append(corpus)
    elif name == "open" and _is_data_file(_argument(call, 0, "file", constants)) \
            and not any(letter in str(_argument(call, 1, "mode", constants) or "r") for letter in "wax"):
        found.opened.append(_argument(call, 0, "file", constants))  # text = open("input.txt").read()
    else:
        _inspect_other(call, name, receiver, last, constants, found)


def _inspect_other(call: ast.Call, name: str, receiver: str, last: str, constants: dict, found: _Calls) -> None:
    """Device moves, training-loop calls and precision helpers."""
    if last == "to" or name in ("torch.device", "device"):
        device = _argument(call, 0, "device", constants)
        if isinstance(device, str):
            found.devices.append(device)
    elif last == "cuda" and receiver and not call.args:
        found.devices.append("cuda")
    elif last == "step" and _steps_optimizer(receiver, call):
        found.trains = True
    elif last == "backward":
        found.builds = True  # gradients alone (an autograd demo) train nothing
    elif last in ("train", "fit") and "trainer" in receiver.lower():
        found.trains = True
        found.fits = found.fits or last == "fit"  # trainer.fit(model): Lightning (HF's Trainer has .train())
    elif last == "train" and not call.args:
        found.builds = True  # model.train(): a training mode switch
    elif last.startswith("train") and call.args or call.keywords and last.startswith("train"):
        found.calls_train = True  # train_model_simple(model, loader, optimizer, ...): a loop defined elsewhere
    elif last == "GradScaler":
        found.grad_scaler = True


def _updates_by_hand(tree: ast.Module) -> bool:
    """``p.data -= lr * p.grad`` or ``p.data.add_(p.grad, alpha=-lr)`` (micrograd, from-scratch tutorials):
    an optimizer step written out."""
    for node in ast.walk(tree):
        if isinstance(node, ast.AugAssign) and _mentions_grad(node.value):
            return True
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("add_", "sub_") \
                and any(_mentions_grad(argument) for argument in node.args):
            return True
    return False


def _mentions_grad(node: ast.AST) -> bool:
    return any(isinstance(part, ast.Attribute) and part.attr == "grad" for part in ast.walk(node))


def _steps_optimizer(receiver: str, call: ast.Call) -> bool:
    """``optimizer.step()``, ``opt.step()``, ``scaler.step(optimizer)`` (not ``scheduler.step()``)."""
    owner = receiver.rpartition(".")[2].lower()
    return "optim" in owner or owner == "opt" or ("scaler" in owner and bool(call.args))


def _argument(call: ast.Call, position: int | None, keyword: str, constants: dict):
    for item in call.keywords:
        if item.arg == keyword:
            return resolve(item.value, constants)
    if position is not None and len(call.args) > position and not isinstance(call.args[position], ast.Starred):
        return resolve(call.args[position], constants)
    return None


def _from_pretrained(call: ast.Call, receiver: str, constants: dict, found: _Calls) -> None:
    """``AutoModelForCausalLM.from_pretrained("gpt2")``: a model id; tokenizers and configs rank lower."""
    model = _argument(call, 0, "pretrained_model_name_or_path", constants)
    for keyword in ("model_name", "model_id"):
        model = model if isinstance(model, str) else _argument(call, None, keyword, constants)
    if isinstance(model, str) and model:
        cls = receiver.rpartition(".")[2]
        found.models.append((1 if any(word in cls for word in _NOT_A_MODEL) else 0, model))


def _lora(call: ast.Call, constants: dict) -> dict | None:
    keys = {"r": "r", "lora_alpha": "alpha", "lora_dropout": "dropout", "target_modules": "target_modules"}
    lora = {}
    for item in call.keywords:
        if item.arg in keys:
            value = resolve(item.value, constants)
            if value is not None:
                lora[keys[item.arg]] = value
    return lora if ("r" in lora or "alpha" in lora) else None


def _runs_at_top(tree: ast.Module, constants: dict, functions: set[str]) -> bool:
    """Whether running the file trains: a training call in its top-level code (a notebook's cells are
    top-level), or top-level code that uses a function or class the file defines (``main()``,
    ``fire.Fire(train)``). A module whose training loop only sits in definitions is a library."""
    top = [statement for statement in tree.body if not isinstance(statement, _DEFINITIONS)]
    classes = {statement.name for statement in tree.body if isinstance(statement, ast.ClassDef)}
    if any(isinstance(node, ast.Name) and node.id in functions | classes
           for statement in top for node in ast.walk(statement)):
        return True
    found = _Calls()
    for node in (node for statement in top for node in ast.walk(statement)):
        if isinstance(node, ast.Call):
            _inspect_call(node, constants, found)
    return found.trains or bool(found.optimizers and found.calls_train) \
        or _updates_by_hand(ast.Module(body=top, type_ignores=[]))


def _role(found: _Calls, functions: set[str], runs: bool = True) -> str | None:
    if found.trains or (found.optimizers and found.calls_train):
        return "trainer" if runs else "helper"  # a library's training loop: a helper until something runs it
    if found.builds or found.trainers or functions & TRAIN_FUNCTIONS:
        return "helper"
    return None


def _first(values: dict[str, list], names: tuple[str, ...], accept) -> object | None:
    """The first accepted value of the first name that has one (``LEARNING_RATE`` counts as
    ``learning_rate``: module constants are often upper case)."""
    for name in names:
        for value in values.get(name, ()) or values.get(name.upper(), ()):
            if accept(value):
                return value
    return None


def _positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _positive_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def _fields(found: _Calls, values: dict[str, list], constants: dict | None = None) -> dict:
    """Attempt fields from the calls and named values; ``constants`` (names assigned at the top level of
    the code) state the micro-batch ahead of keyword arguments, which may belong to a demo DataLoader."""
    assigned = {name: [value] for name, value in (constants or {}).items()}
    # the first optimizer's own lr (a second one's, Muon's 0.05 beside Adam's groups, is not its lr)
    lr = found.optimizer_lr[0] if found.optimizer_lr and found.optimizer_lr[0] is not None \
        else _first(values, _ALIASES["lr"], lambda v: _positive_number(v) and v <= 10)
    optim = _first(values, ("optim", "optimizer"), lambda v: isinstance(v, str) and v.isidentifier())
    epochs = _first(values, _ALIASES["epochs"], _positive_number)
    fields = {
        "model": _model(found, values),
        "optimizer": found.optimizers[0] if found.optimizers else optim,
        "lr": float(lr) if lr is not None else None,
        "batch_size": _first(assigned, _ALIASES["batch_size"], _positive_int)
        or _first(values, _ALIASES["batch_size"], _positive_int),
        "grad_accum": _first(values, _ALIASES["grad_accum"], _positive_int) or (1 if found.trainers else None),
        "epochs": float(epochs) if epochs is not None else None,
        "precision": _precision(found, values),
        "quantization": _quantization(values),
        "lora": found.lora or _named_lora(values),
        "device": _device(found, values),
        "corpus": found.corpora[0] if found.corpora else _first(values, _ALIASES["corpus"], _is_text)
        or _first(values, ("file_path", "data_file", "text_file", "data_file_path"), _is_data_file)
        or (found.opened[0] if found.opened else None),
    }
    return {name: value for name, value in fields.items() if value is not None}


def _is_data_file(value) -> bool:
    """A path to a data file (``file_path = "instruction-data.json"``), not any string named like one."""
    return isinstance(value, str) and value.lower().endswith((".txt", ".json", ".jsonl", ".tsv", ".csv", ".parquet"))


def _names_a_checkpoint(value) -> bool:
    """``gpt2``, ``TinyLlama/TinyLlama-1.1B``, ``./out/ckpt``: a model to load; not ``scratch``, and not a label
    in CamelCase (``model_name = "ModdedGPT"`` names a class written in the script)."""
    return _is_text(value) and value not in FROM_SCRATCH and not (value.isidentifier() and value != value.lower())


def _is_text(value) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _model(found: _Calls, values: dict[str, list]) -> str | None:
    if found.models:
        rank, model = min(found.models, key=lambda item: item[0])  # stable: the first of the best kind
        if rank == 1:  # only a tokenizer's or a config's id: the model itself was built here, not loaded
            return None
        return model
    return _first(values, _ALIASES["model_name"], lambda v: _is_text(v) and v not in FROM_SCRATCH)


def _precision(found: _Calls, values: dict[str, list]) -> str | None:
    for flag in ("bf16", "fp16"):  # TrainingArguments(bf16=True)
        if True in values.get(flag, ()):
            return flag
    words = _first(values, ("mixed_precision", "precision", "torch_dtype", "dtype", "ptdtype", "compute_dtype"),
                   lambda v: str(v).lower() in _PRECISION_WORDS)
    if words is not None:
        return _PRECISION_WORDS[str(words).lower()]
    if found.grad_scaler:
        return "fp16"
    return "fp32" if found.trainers else None  # a Trainer without fp16=/bf16= trains in fp32


def _quantization(values: dict[str, list]) -> str | None:
    for flag, name in (("load_in_4bit", "4bit"), ("load_in_8bit", "8bit")):
        if True in values.get(flag, ()):
            return name
    quantize = _first(values, ("quantize",), _is_text)  # litgpt: "bnb.nf4", "bnb.nf4-dq", "bnb.fp4", "bnb.int8"
    if quantize is not None and quantize.startswith("bnb."):
        return "8bit" if "int8" in quantize else "4bit"
    return None


def _named_lora(values: dict[str, list]) -> dict | None:
    """LoRA as settings name it rather than a ``LoraConfig`` call (litgpt's ``lora_r``, ``lora_alpha``)."""
    rank = _first(values, ("lora_r", "lora_rank"), _positive_int)
    if rank is None:
        return None
    lora = {"r": rank}
    for key, names in (("alpha", ("lora_alpha",)), ("dropout", ("lora_dropout",))):
        value = _first(values, names, lambda v: isinstance(v, (int, float)) and not isinstance(v, bool))
        if value is not None:
            lora[key] = value
    return lora


def _device(found: _Calls, values: dict[str, list]) -> str | None:
    """The most capable device the script moves work to (it was written for that one)."""
    if True in values.get("use_cpu", ()) or True in values.get("no_cuda", ()):  # TrainingArguments(use_cpu=True)
        return "cpu"
    candidates = found.devices + [v for v in values.get("device", ()) if isinstance(v, str)]
    candidates += [v for v in values.get("accelerator", ()) if v in ("gpu", "cuda", "cpu", "mps", "tpu")]
    normal = {_normal_device(value) for value in candidates} - {None}
    return max(normal, key=_DEVICE_RANK.__getitem__) if normal else None


def _normal_device(value: str) -> str | None:
    value = value.lower()
    for name in ("cuda", "mps", "cpu", "tpu"):
        if value.startswith(name):
            return name
    return "cuda" if value == "gpu" else None


def _extras(found: _Calls, values: dict[str, list]) -> dict:
    extra = {}
    for key in ("max_steps", "context_length", "output_dir"):
        accept = _is_text if key == "output_dir" else _positive_int
        value = _first(values, _ALIASES[key], accept)
        if value is not None:
            extra[key] = value
    if found.trainers:
        extra["trainer"] = found.trainers[0]
    if found.fits:
        extra["lightning"] = True
    if True in values.get("gradient_checkpointing", ()):
        extra["gradient_checkpointing"] = True
    for key, names in (("quant_type", ("bnb_4bit_quant_type",)), ("device_map", ("device_map",))):
        value = _first(values, names, _is_text)
        if value:
            extra[key] = value
    shape = {name: values[name][0] for name in ("n_layer", "n_head", "n_embd", "d_model")
             if name in values and _positive_int(values[name][0])}
    if shape:
        extra["architecture"] = shape
    return extra


def apply_facts(attempt: Attempt, facts: ScriptFacts, script_path: str | None = None) -> Attempt:
    """Fill the attempt's unknown fields from a script's facts (what the attempt itself recorded wins)."""
    for name, value in facts.fields.items():
        if getattr(attempt, name) is None:
            setattr(attempt, name, value)
    for key, value in facts.extra.items():
        attempt.extra.setdefault(key, value)
    if script_path:
        attempt.extra.setdefault("script", script_path)
    return attempt


def script_attempt(entry: FileEntry, facts: ScriptFacts) -> Attempt:
    """A script on its own: settings known, outcome not (nothing shows it ran)."""
    parent = os.path.basename(os.path.dirname(os.path.abspath(entry.path)))
    attempt = Attempt(source="script", path=entry.path, fingerprint=fingerprint("script", entry.path),
                      name=f"{parent}/{entry.name}" if parent else entry.name, started=entry.mtime,
                      evidence=f"{entry.name}: a training script with no log or output beside it; "
                               "no evidence that it ran")
    return apply_facts(attempt, facts)
