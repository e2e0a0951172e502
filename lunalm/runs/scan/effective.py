"""The settings a run actually used, from what its log says ran rather than the script's defaults.

Layers, weakest first (each later one wins, and ``Attempt.extra["sources"]`` says where each value came
from):

1. the script's own values (module constants, argparse defaults, keyword arguments);
2. config files the log names (nanoGPT's ``python train.py config/x.py`` prints "Overriding config with
   config/x.py:" and the file), read from the printed text, else from disk beside the script;
3. values the log prints: ``Overriding: batch_size = 8`` (nanoGPT's configurator), argparse's
   ``Namespace(lr=0.001, ...)``, a printed ``TrainingArguments(`` (one ``name=value,`` a line) and a
   pretty-printed dict of settings over several lines (litgpt's ``{'checkpoint_dir': PosixPath(...),
   ... 'train': TrainArgs(micro_batch_size=4, ...)}``).

Nothing is executed: printed and on-disk config files are parsed with ``ast``, values with
``ast.literal_eval``.
"""

from __future__ import annotations

import ast
import os
import re

from lunalm.runs.attempt import Attempt
from lunalm.runs.scan.astfacts import collect, named_values
from lunalm.runs.scan.reading import ScanStats, Unreadable, read_bytes
from lunalm.runs.scan.scripts import fields_from_values, litgpt_values

MAX_CONFIG_LINES = 300  # a printed config file longer than this is cut (nanoGPT's are ~40 lines)
MAX_CONFIG_BYTES = 256 << 10
MAX_SETTINGS = 2000  # names kept from one log (a hostile log may print a million "Overriding:" lines)
MAX_CONFIG_FILES = 20
_OVERRIDE = re.compile(r"^overriding:\s*(\w+)\s*=\s*(.*)$", re.IGNORECASE)
_CONFIG_FILE = re.compile(r"^overriding config with (.+?):?$", re.IGNORECASE)
_NAMESPACE = re.compile(r"\bNamespace\((.*)\)\s*$")
_ARGUMENTS = re.compile(r"^\w*(?:Arguments|Config)\($")  # TrainingArguments(, SFTConfig(, DPOConfig(
_ARGUMENT = re.compile(r"^(\w+)=(.*?),?$")
_DICT_START = re.compile(r"^\{'\w+': ")  # pprint's first line of a dict of settings
_REPR = re.compile(r"<[^<>\n]*>")  # "<litgpt.prompts.Alpaca object at 0x7f5f...>": no literal, read as None
_PATHS = ("PosixPath", "WindowsPath", "Path")


class LogSettings:
    """Fed every stripped log line by ``LogParser``; keeps the overrides and config files it prints."""

    def __init__(self):
        self.overrides: dict[str, list] = {}  # name -> [value, "train.log:45"]
        self.config_files: list[dict] = []  # {"path", "where", "values": {name: value}}
        self._printed: list[str] | None = None  # lines of the config file being printed
        self._dict: list[str] | None = None  # lines of a pretty-printed dict of settings, while inside it
        self._dict_where = ""
        self._arguments: str | None = None  # where a printed TrainingArguments( began, while inside it
        self._argument_count = 0
        self._before_mark: dict[str, list | None] = {}  # names set since ``mark()``: their value before it
        self._after_mark: dict[str, list] = {}  # printed again since ``mark()`` (the first value kept stays)
        self._files_at_mark: int | None = None  # config files printed before the newest ``mark()``

    def mark(self) -> None:
        """A train loss was logged: what is printed from here on may belong to the next run (``split``)."""
        if self._before_mark or self._after_mark or self._files_at_mark != len(self.config_files):
            self._before_mark, self._after_mark, self._files_at_mark = {}, {}, len(self.config_files)

    def split(self) -> LogSettings:
        """A new run began: the settings printed since ``mark()`` are moved to a new ``LogSettings`` (the
        new run's), and this one is left as it was at the mark (the run that ended)."""
        self._close()
        after = LogSettings()
        after.overrides.update(self._after_mark)
        for name, before in self._before_mark.items():
            after.overrides[name] = self.overrides[name]
            if before is None:
                del self.overrides[name]
            else:
                self.overrides[name] = before
        after.config_files = self.config_files[self._files_at_mark or 0:]
        del self.config_files[self._files_at_mark or 0:]
        self._before_mark, self._after_mark = {}, {}
        return after

    def _argument_line(self, where: str, line: str) -> None:
        """``print(training_args)``: "TrainingArguments(", then one ``name=value,`` a line, then ")"."""
        if self._arguments is None:
            self._arguments, self._argument_count = where, 0
            return
        pair = _ARGUMENT.match(line)
        self._argument_count += 1
        if pair is None or self._argument_count > MAX_CONFIG_LINES:
            self._arguments = None  # ")" or anything else ends it
            return
        self._set(pair.group(1), literal(pair.group(2)), self._arguments, replace=False)

    def _set(self, name: str, value, where: str, replace: bool) -> None:
        if not replace and name in self.overrides and self._files_at_mark is not None \
                and name not in self._before_mark and name not in self._after_mark:
            self._after_mark[name] = [value, where]  # a run printing its settings after an earlier run's losses
        if (replace or name not in self.overrides) and (name in self.overrides or len(self.overrides) < MAX_SETTINGS):
            if name not in self._before_mark:
                self._before_mark[name] = self.overrides.get(name)
            self.overrides[name] = [value, where]

    def printed(self, name: str, value, where: str) -> None:
        """A setting the log printed as "key: value" (``log_patterns._PRINTED``); the first of each name counts."""
        self._set(name, value, where, replace=False)

    @property
    def capturing(self) -> bool:
        return self._printed is not None or self._arguments is not None or self._dict is not None

    def _dict_line(self, where: str, line: str) -> None:
        """One line of a pretty-printed dict of settings: at its last (brackets balanced, or too long to
        be one), the names in it and in the calls it holds, with their literal values."""
        if self._dict is None:
            self._dict, self._dict_where = [], where
        self._dict.append(line)
        text = "\n".join(self._dict)
        if _depth(text) > 0 and len(self._dict) < MAX_CONFIG_LINES:
            return
        self._dict = None
        for name, value in _printed_settings(text).items():
            self._set(name, value, self._dict_where, replace=False)

    def feed(self, where: str, line: str) -> None:
        if self._arguments is not None or _ARGUMENTS.match(line):
            self._argument_line(where, line)
            return
        if self._dict is not None or (line[:2] == "{'" and _DICT_START.match(line) and _depth(line) > 0):
            self._dict_line(where, line)
            return
        override = _OVERRIDE.match(line) if line[:1] in "Oo" else None
        if override or _CONFIG_FILE.match(line):
            self._close()
        if override:
            self._set(override.group(1), literal(override.group(2).strip()), where, replace=True)
        elif (config := _CONFIG_FILE.match(line)) is not None and len(self.config_files) < MAX_CONFIG_FILES:
            self.config_files.append({"path": config.group(1).strip(), "where": where, "values": {}})
            self._printed = []
        elif self._printed is not None:
            self._printed.append(line)
            if len(self._printed) >= MAX_CONFIG_LINES:
                self._close()
        elif "Namespace(" in line and (namespace := _NAMESPACE.search(line)):
            for name, value in _keywords(namespace.group(0)).items():
                self._set(name, value, where, replace=False)

    def _close(self) -> None:
        """The printed config file ended: keep the assignments of its longest parsable start."""
        lines, self._printed = self._printed, None
        if lines is None:
            return
        while lines:
            try:
                tree = ast.parse("\n".join(lines))
            except (SyntaxError, ValueError, RecursionError, MemoryError):
                lines = lines[:-1]  # the program's own output after the file: drop it
                continue
            self.config_files[-1]["values"] = assigned(tree)
            return

    def record(self, extra: dict) -> None:
        """Into an attempt's ``extra`` (JSON): what the log says ran."""
        self._close()
        if self.overrides:
            extra["log_overrides"] = self.overrides
        if self.config_files:
            extra["config_files"] = self.config_files


def assigned(tree: ast.Module) -> dict:
    """``{name: value}`` of the literal assignments in a config file (the last assignment wins, as when run)."""
    _, pairs, _ = collect(tree)
    _, values = named_values([pair for pair in pairs if pair[2]])
    return {name: found[-1] for name, found in values.items()}


def settle(attempt: Attempt, script_fields: dict, script_dir: str, script_name: str, stats: ScanStats) -> None:
    """Set the attempt's fields from the layers (see the module docstring) and record their sources.

    Fields the log itself stated (``Instantaneous batch size per device = 8``) stay as they are."""
    chosen = {name: (value, f"{script_name} (in the script)") for name, value in script_fields.items()}
    layers = []
    for config in attempt.extra.get("config_files", []):
        values = config["values"] or _from_disk(os.path.join(script_dir, config["path"]), stats)
        layers.append((f"{config['path']} (named at {config['where']})", {k: [v] for k, v in values.items()}))
    overrides = attempt.extra.get("log_overrides", {})
    printed: dict[str, dict] = {}  # the names each line (or printed block) set, together: lora_r beside lora_alpha
    for name, (value, where) in overrides.items():
        printed.setdefault(where, {})[name] = [value]
    layers += list(printed.items())
    for source, values in layers:
        for name, value in fields_from_values(values).items():
            chosen[name] = (value, source)
    _cpu_precision(chosen, script_name)
    sources = attempt.extra.setdefault("sources", {})
    for name, (value, source) in chosen.items():
        if getattr(attempt, name) is None:
            setattr(attempt, name, value)
            sources[name] = source


def _cpu_precision(chosen: dict[str, tuple[object, str]], script_name: str) -> None:
    """A script's half-precision setting is written for CUDA: when the log or a config moved the run to the
    CPU, it trained in fp32 (nanoGPT, for one, wraps the CPU forward in ``nullcontext``)."""
    device, precision = chosen.get("device"), chosen.get("precision")
    if device and device[0] == "cpu" and not device[1].endswith("(in the script)") and precision \
            and precision[1].endswith("(in the script)"):
        chosen["precision"] = ("fp32", f"{device[1]}: device cpu (the half-precision default of "
                                       f"{script_name} applies to CUDA)")


def _from_disk(path: str, stats: ScanStats) -> dict:
    if not os.path.isfile(path) or os.path.islink(path):
        return {}
    try:
        return assigned(ast.parse(read_bytes(path, stats, MAX_CONFIG_BYTES, "config file")))
    except (Unreadable, OSError, SyntaxError, ValueError, RecursionError, MemoryError):
        return {}


def literal(text: str):
    """A printed or stored value as the Python literal it spells (bool, number, string), else the text."""
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, RecursionError, MemoryError):
        return text
    return value if isinstance(value, (bool, int, float, str)) else text


def _depth(text: str) -> int:
    """Brackets opened and not closed (quotes are not followed: settings rarely hold a bracket in a string)."""
    return sum(text.count(c) for c in "{([") - sum(text.count(c) for c in "})]")


def _printed_settings(text: str) -> dict:
    """``{name: value}`` of a printed dict of settings: its string keys, and the keyword arguments of the
    calls among its values (``TrainArgs(micro_batch_size=4)``), outer names first. A path prints as
    ``PosixPath('checkpoints/microsoft/phi-2')``: its string. With litgpt's derived values (``litgpt_values``)."""
    try:
        node = ast.parse(_REPR.sub("None", text[:MAX_CONFIG_BYTES]), mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return {}
    found: dict = {}
    pending = [node]
    while pending and len(found) < MAX_SETTINGS:
        node = pending.pop(0)
        pairs = []
        if isinstance(node, ast.Dict):
            pairs = [(key.value, value) for key, value in zip(node.keys, node.values)
                     if isinstance(key, ast.Constant) and isinstance(key.value, str)]
        elif isinstance(node, ast.Call):
            pairs = [(keyword.arg, keyword.value) for keyword in node.keywords if keyword.arg]
        for name, value in pairs:
            if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id in _PATHS \
                    and len(value.args) == 1 and isinstance(value.args[0], ast.Constant):
                value = value.args[0]
            if isinstance(value, ast.Constant) and isinstance(value.value, (bool, int, float, str)):
                found.setdefault(name, value.value)
            elif isinstance(value, (ast.Dict, ast.Call)):
                pending.append(value)
    return litgpt_values(found)


def _keywords(call: str) -> dict:
    """Literal keyword values of a printed ``Namespace(a=1, b='x')``."""
    try:
        node = ast.parse(call[:20_000], mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return {}
    if not isinstance(node, ast.Call):
        return {}
    found = {}
    for keyword in node.keywords:
        try:
            value = ast.literal_eval(keyword.value)
        except (ValueError, SyntaxError, RecursionError, MemoryError):
            continue
        if keyword.arg and isinstance(value, (bool, int, float, str)):
            found[keyword.arg] = value
    return found
