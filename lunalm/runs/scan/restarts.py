"""Several runs in one file: a step counter that goes back to its start after rising begins a new run.

A notebook cell that runs a W&B sweep prints 20 runs of ``Iteration: 100 … 4000`` one after the other, a
``log.md`` keeps a dozen runs of ``step 0 … 49``; read as one curve, their first loss came from one run
and the last from another. A counter that goes back only part of the way is a resume from a checkpoint
(``LossSeries`` replaces the steps it repeats); one that goes back at a new epoch is an epoch's own count.
"""

from __future__ import annotations

import re

from lunalm.runs.scan.series import LossSeries

MAX_RUNS = 200  # runs told apart in one file; later restarts are read as resumes (bounded memory)
RESTART_SHARE = 10  # back to at most 1/10 of the steps reached: a new run
# "epoch 3", "Epoch: 2/10", "[Epoch 4]"; not "1 epoch = 2640 batches" (its length)
_EPOCH = re.compile(r"\bepoch\s*[:=#]?\s*\[?\s*(\d+)\b(?!\s*(?:batch|step|iter|sample|token|example))")


def restarts(series: LossSeries, step: int) -> bool:
    """Whether ``step`` starts a new run after the points of ``series`` (real steps, one run so far):
    the counter rose, then went back to 1/RESTART_SHARE of its newest value or less (a rerun that logs
    from step 100 after one that reached 200 is read as a resume, as before)."""
    first, last = series.first, series.last
    if first is None or last is None or last[0] <= first[0] or step >= last[0]:
        return False
    return step <= last[0] // RESTART_SHARE


def epoch_named(lower: str) -> int | None:
    """The epoch a lower-cased line names ("epoch 3", "Epoch: 2/10", "[Epoch 4]"), or None."""
    match = _EPOCH.search(lower) if "epoch" in lower else None
    return int(match.group(1)) if match else None


def same_epoch(now: int | None, at_last_loss: int | None) -> bool:
    """A step that goes back is a restart only if no new epoch began since the run's last loss (an epoch's
    own counter starts again at every epoch); an epoch count that went back too restarts with it."""
    return now == at_last_loss or (now is not None and at_last_loss is not None and now < at_last_loss)
