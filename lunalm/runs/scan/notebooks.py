"""Jupyter notebooks: the code cells read like a script (through ``ast``), their saved outputs read like a
log (stream text, tracebacks, the Hugging Face Trainer's HTML loss table). Nothing is executed: the JSON is
parsed and the outputs are whatever the last run left in the file.
"""

from __future__ import annotations

import ast
import html
import os
import re

from lunalm.runs.attempt import Attempt
from lunalm.runs.scan.effective import settle
from lunalm.runs.scan.log_files import run_fingerprint
from lunalm.runs.scan.loss_table import add_rows, columns_of
from lunalm.runs.scan.logs import LogParser
from lunalm.runs.scan.reading import ScanStats, Unreadable, read_json
from lunalm.runs.scan.astfacts import dotted
from lunalm.runs.scan.scripts import TRAIN_FUNCTIONS, apply_facts, facts, parse
from lunalm.runs.scan.walk import FileEntry

MAX_NOTEBOOK_BYTES = 32 << 20  # outputs with embedded images make notebooks big; this is plenty
_PYTHON_CELL_MAGICS = {"time", "timeit", "capture", "writefile", "prun", "debug"}  # the body is Python
_SHELL_LINE = re.compile(r"^(\s*)(?:[!%?]|\w+\s*=\s*[!%])")  # !pip install, %matplotlib, files = !ls
MAX_TABLE_CHARS = 4 << 20  # of one output's HTML; the Trainer's table of 10,000 logged steps is ~1 MB
# A tag ends at the next ">" and cannot contain "<", so splitting on tags is one linear pass even over
# "<tr<tr<tr..." (the lazy "<tr>(.*?)</tr>" pattern this replaced rescanned to the end from every "<tr").
_TAG = re.compile(r"(<[^<>]*>)")
_RUN_SCRIPT = re.compile(r"^\s*[!%](?:run\b|.*\b(?:python3?|torchrun|accelerate launch)\s+\S+\.py\b)")


def read_notebook(entry: FileEntry, stats: ScanStats) -> list[Attempt]:
    """The attempts a notebook records, one per run its outputs hold (``restarts``: a W&B sweep cell holds
    several), or none when it does not train: no cell steps an optimizer (or builds one and calls a
    ``train*()`` loop), and none runs a training script with losses in its output. A calculator, a plot
    or an autograd demo with "loss" in its output is not a training attempt."""
    document = read_json(entry.path, stats, MAX_NOTEBOOK_BYTES, "notebook")
    book = _Book(entry.name)
    for index, cell in enumerate(_cells(document), start=1):
        stats.check_time()
        if isinstance(cell, dict) and cell.get("cell_type") == "code":
            book.cell(index, cell)
    script = facts(ast.Module(body=book.bodies, type_ignores=[]))
    if script.role != "trainer" and not (book.runs_script and book.parser.signals):
        return []
    runs = [*book.parser.runs, book.parser]
    attempts = [_attempt(entry, run, book.executed, index, len(runs)) for index, run in enumerate(runs, start=1)]
    # Settings are read from the cells up to the last one that trains (of a run: up to its cell): later
    # cells (loading other weights for a demo, the next exercise's data) describe something else.
    known = {}
    for run, attempt in zip(runs, attempts):
        upto = run.context_at_loss if len(runs) > 1 and run.context_at_loss else book.trained_upto
        if upto not in known:
            known[upto] = facts(ast.Module(body=book.bodies[:upto], type_ignores=[])) if upto else script
        if len(runs) > 1:  # what each run printed (a sweep's config) wins over the code's first value
            settle(attempt, known[upto].fields, os.path.dirname(entry.path), entry.name, stats)
        apply_facts(attempt, known[upto])
        attempt.device = _gpu_name(document) or attempt.device
        attempt.extra["executed_cells"] = book.executed
        for key, value in (("unparsable_cells", book.unparsable), ("errors_outside_training", book.side_errors)):
            if value:
                attempt.extra[key] = value
    return attempts


class _Book:
    """The cells read so far: their code (one tree), and their outputs fed to one log parser. An error
    in a cell that neither trains nor calls a function that does is a demo or a typo, not the end of a
    training attempt: it is listed in ``side_errors`` instead (memory errors always count)."""

    def __init__(self, name: str):
        self.name, self.parser = name, LogParser(name)
        self.bodies: list[ast.stmt] = []
        self.unparsable: list[str] = []
        self.side_errors: list[str] = []
        self.executed = 0
        self.lines = 0  # source lines of the cells read so far
        self.trained_upto = 0  # statements in ``bodies`` up to the end of the last training cell
        self.runs_script = False  # a "!python train.py" cell: the training ran outside the notebook
        self.training_functions: set[str] = set(TRAIN_FUNCTIONS)

    def cell(self, index: int, cell: dict) -> None:
        self.executed += bool(cell.get("execution_count"))
        label = f"{self.name} cell {index}"
        try:
            body = _cell_tree(cell, label)
        except Unreadable as error:
            self.unparsable.append(f"cell {index}: {error}")
            body = []
        for statement in body:  # line numbers run on through the notebook, so source order is cell order
            ast.increment_lineno(statement, self.lines)
        self.lines += _text(cell.get("source")).count("\n") + 1
        self.bodies.extend(body)
        self.parser.context = len(self.bodies)  # a run whose losses are in this cell's output: these cells
        self.runs_script = self.runs_script or _runs_script(cell)
        self.parser.label = f"{label} output"
        trains = self._trains(body) or _runs_script(cell)
        self.trained_upto = len(self.bodies) if trains else self.trained_upto
        _feed_outputs(self.parser, cell.get("outputs"), trains, self.side_errors, index)

    def _trains(self, body: list[ast.stmt]) -> bool:
        """Whether this cell trains, or calls a function that trains; remembers the functions it defines."""
        tree = ast.Module(body=body, type_ignores=[])
        role = facts(tree).role
        defined = {node.name for node in body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}
        if role is not None:
            self.training_functions |= defined
        called = {dotted(node.func).rpartition(".")[2] for node in ast.walk(tree) if isinstance(node, ast.Call)}
        return role == "trainer" or bool(called & self.training_functions)


def _runs_script(cell: dict) -> bool:
    return any(_RUN_SCRIPT.match(line) for line in _text(cell.get("source")).split("\n"))


def _attempt(entry: FileEntry, parser: LogParser, executed: int, index: int, count: int) -> Attempt:
    parent = os.path.basename(os.path.dirname(os.path.abspath(entry.path)))
    name = f"{parent}/{entry.name}" if parent else entry.name
    attempt = Attempt(source="notebook", path=entry.path, fingerprint=run_fingerprint("notebook", entry.path, index),
                      name=name if count == 1 else f"{name} (run {index} of {count})", started=entry.mtime)
    if count > 1:
        attempt.extra["runs_in_file"] = {"run": index, "of": count}
    if parser.signals:
        return parser.fill(attempt)
    attempt.evidence = (f"{entry.name}: training code, {executed} cell(s) executed, but no saved output "
                        "shows losses, an error or the end of training")
    return attempt


def _cells(document) -> list:
    if isinstance(document, dict) and isinstance(document.get("cells"), list):
        return document["cells"]
    if isinstance(document, dict) and "worksheets" in document:
        raise Unreadable("nbformat 3 notebook (before 2015): open and save it in Jupyter to upgrade it")
    raise Unreadable("not a Jupyter notebook (no cells)")


def _text(value) -> str:
    """Notebook text fields are a string or a list of strings (lines with their own newlines)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(part for part in value if isinstance(part, str))
    return ""


def _cell_tree(cell: dict, label: str) -> list[ast.stmt]:
    """Statements of a code cell; IPython magics and shell escapes become ``pass`` (same indentation)."""
    lines = _text(cell.get("source")).split("\n")
    if lines and lines[0].startswith("%%"):
        magic = lines[0][2:].split(maxsplit=1)[0] if lines[0][2:].strip() else ""
        if magic not in _PYTHON_CELL_MAGICS:
            return []  # %%bash, %%html, ...: not Python
        lines = lines[1:]
    cleaned = [(match.group(1) + "pass") if (match := _SHELL_LINE.match(line)) else line for line in lines]
    return parse("\n".join(cleaned), label).body


def _feed_outputs(parser: LogParser, outputs, trains: bool, side_errors: list[str], index: int) -> None:
    for output in outputs if isinstance(outputs, list) else []:
        if not isinstance(output, dict):
            continue
        kind = output.get("output_type")
        if kind == "stream":
            _feed_text(parser, _text(output.get("text")))
        elif kind == "error" and not trains and "memory" not in str(output.get("ename")).lower():
            side_errors.append(f"cell {index}: {output.get('ename')}: {str(output.get('evalue'))[:200]}")
        elif kind == "error":
            frames = [line for frame in output.get("traceback") or [] if isinstance(frame, str)
                      for line in frame.split("\n")]
            _feed_text(parser, "\n".join(["Traceback (most recent call last):", *frames[:-1],
                                          f"{output.get('ename')}: {output.get('evalue')}"]))
        elif kind in ("execute_result", "display_data") and isinstance(output.get("data"), dict):
            data = output["data"]
            _feed_text(parser, _text(data.get("text/plain")))
            _feed_loss_table(parser, _text(data.get("text/html")))


def _feed_text(parser: LogParser, text: str) -> None:
    for number, line in enumerate(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"), start=1):
        parser.feed(number, line)


def _feed_loss_table(parser: LogParser, markup: str) -> None:
    """The Trainer's notebook progress table (``loss_table``), from its HTML."""
    if "Training Loss" not in markup:
        return
    rows = _table_rows(markup[:MAX_TABLE_CHARS])
    header = next((row for row in rows if "Training Loss" in row), None)
    if header is not None:
        add_rows(parser, columns_of(header), rows[rows.index(header) + 1:], markup)


def _table_rows(markup: str) -> list[list[str]]:
    """The text of each ``<td>``/``<th>`` cell, row by row, in one pass over the tags."""
    rows: list[list[str]] = []
    cell: list[str] | None = None
    for index, piece in enumerate(_TAG.split(markup)):
        if index % 2 == 0:  # text between tags
            if cell is not None:
                cell.append(piece)
            continue
        name = piece[1:-1].strip().split(maxsplit=1)[0].lower() if piece[1:-1].strip() else ""
        if name in ("/td", "/th", "/tr", "td", "th", "tr") and cell is not None and rows:
            rows[-1].append(html.unescape("".join(cell)).strip())
            cell = None
        if name == "tr":
            rows.append([])
        elif name in ("td", "th") and rows:
            cell = []
    return rows


def _gpu_name(document: dict) -> str | None:
    """Colab/Kaggle record the accelerator in the notebook metadata ("T4", "GPU")."""
    metadata = document.get("metadata") if isinstance(document.get("metadata"), dict) else {}
    colab = metadata.get("colab") if isinstance(metadata.get("colab"), dict) else {}
    name = colab.get("gpuType") or metadata.get("accelerator")
    if not isinstance(name, str) or not name or name.lower() == "none":
        return None
    return "cuda" if name.upper() == "GPU" else name
