"""The fix that works for each error kind (the table itself lives with the classifier that assigns them)."""

from __future__ import annotations

GENERIC = "read the error message and the last lines of the log; `luna runs show RUN` keeps them"


# Error kinds only lunalm's own runs record (not in attempt.ERROR_KINDS: the scan classifier never assigns them).
OWN = {"disk-full": "free space on the run's disk (old runs, the token cache), then `luna resume RUN`: "
                    "the checkpoints written before the disk filled are intact"}


def fix_for(kind: str | None) -> str:
    from lunalm.runs.scan.classify import FIXES

    return OWN.get(kind or "") or FIXES.get(kind or "", GENERIC)
