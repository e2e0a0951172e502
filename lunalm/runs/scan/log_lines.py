"""Pieces of one log line: its losses, a printed number, a setting's value and its time stamp."""

from __future__ import annotations

import re
from datetime import datetime

NUMBER = r"[-+]?(?:nan|inf(?:inity)?|\d+(?:\.\d*)?(?:e[-+]?\d+)?|\.\d+(?:e[-+]?\d+)?)"
_LOSS_VALUE = re.compile(r"loss\b\s*(?:[:=]|is)?\s*(?:tensor\()?(" + NUMBER + r")(?!\w)")  # at each "loss"
_LOSS_PREFIX = re.compile(r"(?:^|[^a-z0-9])([a-z]+)[ _/-]$")  # "train " in "step 5: train loss 2.1"
# The kind after "loss": "loss train: 1.646, val: 1.198" (litgpt), "Loss Train: 4.23 | Loss Val: 4.12",
# "loss_val=0.9", "LOSS train: 2.1, valid: 2.3"; a second kind may follow the first value
_KIND = r"(train(?:ing)?|val(?:id(?:ation)?)?|eval|dev|test)"
_LOSS_KIND = re.compile(r"loss[ _/-]?" + _KIND + r"\s*[:=]\s*(" + NUMBER + r")(?![\w.])")
_NEXT_KIND = re.compile(r"\s*[,;|\t]\s*" + _KIND + r"\s*[:=]\s*(" + NUMBER + r")(?![\w.])")
_TIME_STAMP = re.compile(r"\[?(20\d\d-\d\d-\d\d)[ T_](\d\d[:.]\d\d[:.]\d\d)")
# The Hugging Face example scripts' logging format: "03/22/2024 09:51:20 - WARNING - __main__"
_US_TIME_STAMP = re.compile(r"(\d\d)/(\d\d)/(20\d\d)[ ,]+(\d\d:\d\d:\d\d)")
_SCALE = {"k": 1e3, "m": 1e6, "b": 1e9}


def find_losses(lower: str) -> list[tuple[str, float]]:
    """(key, value) for each ``<key> loss <number>`` in a lower-cased line: ``("train", 1.9)`` for
    "train loss 1.9", ``("val", 0.13)`` for "val_loss: 0.13", ``("", 2.3)`` for "loss=2.3"; and for each
    ``loss <key>: <number>``: ``("train", 1.646), ("val", 1.198)`` for "loss train: 1.646, val: 1.198"."""
    found = []
    start = lower.find("loss")
    while start >= 0:
        before = lower[start - 1] if start else " "
        match = _LOSS_VALUE.match(lower, start) if not before.isalnum() else None
        if match and match.group(1) != "0":  # "val_loss = 0" sets a variable (code saved as .txt): no loss
            prefix = _LOSS_PREFIX.search(lower, max(0, start - 24), start) if before in " _/-" else None
            found.append((prefix.group(1) if prefix else "", float(match.group(1))))
        elif not before.isalnum() and (match := _LOSS_KIND.match(lower, start)) and match.group(2) != "0":
            found.append((_kind(match.group(1)), float(match.group(2))))
            if (after := _NEXT_KIND.match(lower, match.end())) and after.group(1) != match.group(1):
                found.append((_kind(after.group(1)), float(after.group(2))))
        start = lower.find("loss", start + 4)
    return found


def _kind(word: str) -> str:
    """"training" reads as "train", "validation" as "valid": the keys :func:`find_losses` gives."""
    return "train" if word.startswith("train") else "valid" if word.startswith("valid") else word


def setting_value(name: str, match: re.Match) -> object:
    text = match.group(1).replace(",", "")
    if name == "device":
        return text.lower()
    scale = _SCALE.get(match.group(2) or "", 1.0) if match.re.groups > 1 else 1.0
    try:
        value = float(text) * scale
    except ValueError:  # "1.2.3"
        return None
    return value if name == "epochs" else int(value)


def literal_number(text: str) -> int | float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return int(value) if value.is_integer() and "." not in text and "e" not in text else value


def time_stamp(text: str) -> float | None:
    """The local time a line or file name starts with ("2024-12-25 06:43:04,790 - INFO",
    "[2025-02-16T10:43:29]", "2025-02-16 10:43:29.611931.log", "03/22/2024 09:51:20 - WARNING"), as unix
    time; None if it starts otherwise."""
    match = _TIME_STAMP.match(text)
    if match is not None:
        day, clock = match.group(1), match.group(2).replace(".", ":")
    elif (match := _US_TIME_STAMP.match(text)) is not None:  # month first, unless the first number cannot be one
        first, second, year, clock = match.groups()
        month, day_of_month = (second, first) if int(first) > 12 else (first, second)
        day = f"{year}-{month}-{day_of_month}"
    else:
        return None
    try:
        return datetime.strptime(f"{day} {clock}", "%Y-%m-%d %H:%M:%S").timestamp()
    except ValueError:  # "2024-13-45 …"
        return None
