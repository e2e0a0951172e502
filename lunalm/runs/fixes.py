"""The fix that works for each error kind (the table itself lives with the classifier that assigns them)."""

from __future__ import annotations

GENERIC = "read the error message and the last lines of the log; `luna runs show RUN` keeps them"


def fix_for(kind: str | None) -> str:
    from lunalm.runs.scan.classify import FIXES

    return FIXES.get(kind or "", GENERIC)
