"""Which script wrote a log, by the shape of its lines: a script's f-string ``f"Time: {elapsed:.2f}s - LR:
{lr:.2e}"`` and the log line ``Time: 122.57s - LR: 9.94e-05`` both read ``time: #s - lr: #`` once every
number and every formatted value is ``#``. Used when a folder holds several training scripts and the log's
name names none of them (``pairing``): 0Xero7/slm_training's ``classic.txt`` lies beside ``train.py``,
``train_lightning.py`` and ``sweep_lightning.py``, and only ``train.py`` prints its lines.
"""

from __future__ import annotations

import ast
import re

MAX_SHAPES = 8  # distinct line shapes kept from one log (its loss and lr lines)
MAX_SCRIPT_SHAPES = 300
MAX_CHARS = 160
_NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:e[-+]?\d+)?")
_SPACES = re.compile(r"\s+")


def line_shape(text: str) -> str:
    """The line with every number as ``#``, lower-cased, its spaces collapsed."""
    return _SPACES.sub(" ", _NUMBER.sub("#", text.lower())).strip()[:MAX_CHARS]


def script_shapes(tree: ast.Module) -> frozenset[str]:
    """The shape of each line of each f-string in the script that formats a value and holds a word."""
    shapes: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.JoinedStr) or not any(isinstance(part, ast.FormattedValue)
                                                          for part in node.values):
            continue
        text = "".join(part.value if isinstance(part, ast.Constant) and isinstance(part.value, str) else "0"
                       for part in node.values)
        shapes.update(shape for line in text.split("\n") if re.search(r"[a-z]{2}", shape := line_shape(line)))
        if len(shapes) >= MAX_SCRIPT_SHAPES:
            break
    return frozenset(shapes)


def shared(log_shapes, script: frozenset[str]) -> int:
    """How many of the log's line shapes the script prints."""
    return sum(1 for shape in log_shapes or () if shape in script)
