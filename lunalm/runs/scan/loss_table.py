"""The Trainer's progress table, Step (or Epoch) | Training Loss | Validation Loss | ...: in a notebook's HTML
output, and as it reads when that output was copied into a text log, its cells separated by tabs (an Unsloth
Colab run: ``Step<TAB>Training Loss`` then ``10<TAB>1.898500``)."""

from __future__ import annotations

import re

EPOCH_BAR = re.compile(r"\[\d+/(\d+)[^\]]*?Epoch [\d.]+/(\d+)\]")  # "[500/500 2:15:01, Epoch 1/1]"
COLUMNS = ("Step", "Epoch", "Training Loss", "Validation Loss")
_TEXT_HEADER = re.compile(r"(?:Step|Epoch)\tTraining Loss(?:\t|$)")


def columns_of(header: list[str]) -> dict[str, int]:
    return {name: header.index(name) for name in COLUMNS if name in header}


def add_rows(parser, columns: dict[str, int], rows: list[list[str]], bar: str, number: int | None = None) -> None:
    """Each row's losses into ``parser`` (a ``LogParser``). A table by epoch takes its steps from the bar
    above it (``bar``: 500 steps in 1 epoch); without one the rows are counted."""
    found = EPOCH_BAR.search(bar) if "Step" not in columns and "Epoch" in columns else None
    per_epoch = int(found.group(1)) / int(found.group(2)) if found and int(found.group(2)) else None
    for row in rows:
        step = _number(row, columns.get("Step"))
        if per_epoch and (epoch := _number(row, columns["Epoch"])) is not None:
            step = round(epoch * per_epoch)
        for name, kind in (("Training Loss", "train"), ("Validation Loss", "val")):
            value = _number(row, columns.get(name))
            if value is not None:
                parser.add_loss(kind, int(step) if step is not None else None, value, number)


def _number(row: list[str], column: int | None) -> float | None:
    if column is None or column >= len(row):
        return None
    try:
        return float(row[column])
    except ValueError:  # "No log"
        return None


class TextTable:
    """The table as a log's lines arrive: its header, then rows of numbers, until a line that is neither."""

    def __init__(self):
        self.columns: dict[str, int] | None = None
        self.bar = ""  # the newest "[90/90 01:55, Epoch 30/30]" line

    def feed(self, parser, number: int | None, line: str) -> bool:
        """Whether ``line`` (stripped) was the table's: its header or one of its rows."""
        if "Epoch " in line and EPOCH_BAR.search(line):
            self.bar = line
        if "\t" not in line:
            self.columns = None
            return False
        if _TEXT_HEADER.match(line):
            self.columns = columns_of(line.split("\t"))
            return True
        cells = line.split("\t")
        if self.columns is None or _number(cells, 0) is None:
            self.columns = None
            return False
        add_rows(parser, self.columns, [cells], self.bar, number)
        return True
