"""``luna scan`` against labels: attempt precision and recall, and field accuracy, per repository of the
labelled set in ``tests/runs/scan_set`` (real public code and real runs, see its README).

* precision: the attempts the scanner lists that are labelled attempts, over all it lists;
* recall: the labelled attempts it lists, over all labelled;
* field accuracy: over the attempts found, the share of (attempt, field) pairs equal to the label — model,
  lr, batch, accumulation, device, precision, corpus, outcome, and the evidence location (the evidence
  line starts with the labelled file and line or cell). A null label must be matched by None;
* task: attempts whose task (what ``luna report`` groups by) matches the label, counted apart.

    python bench/bench_scan_labels.py            # table per repository, then the total
    python bench/bench_scan_labels.py --misses   # and every wrong field
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SET = ROOT / "tests" / "runs" / "scan_set"
GOALS = {"precision": 0.95, "recall": 0.9, "field_accuracy": 0.95}


def scanned(root: Path = SET) -> dict[str, object]:
    """``{path relative to root: attempt}`` of a fresh scan."""
    sys.path.insert(0, str(ROOT))
    from lunalm.runs.scan import Scanner

    return {os.path.relpath(attempt.path, root): attempt for attempt in Scanner().scan([str(root)])}


def _equal(found, label) -> bool:
    if isinstance(label, float) and isinstance(found, (int, float)):
        return math.isclose(found, label, rel_tol=1e-9)
    return found == label


def score(attempts: dict[str, object], labels: dict) -> dict[str, dict]:
    """Per repository: counts, precision, recall, field accuracy and the wrong fields."""
    results = {}
    for repo, truth in labels["repos"].items():
        expected = {row["path"]: row for row in truth["attempts"]}
        listed = [path for path in attempts if path == repo or path.startswith(repo + "/")]
        hits = [path for path in listed if path in expected]
        misses, task_misses, checked = [], [], 0
        for path in hits:
            attempt, row = attempts[path], expected[path]
            for name in labels["fields"]:
                checked += 1
                if not _equal(getattr(attempt, name), row[name]):
                    misses.append(f"{path}: {name} {getattr(attempt, name)!r}, labelled {row[name]!r}")
            if attempt.extra.get("task") != row["task"]:
                task_misses.append(f"{path}: task {attempt.extra.get('task')!r}, labelled {row['task']!r}")
            checked += 1
            if not attempt.evidence.startswith(row["evidence"]):
                misses.append(f"{path}: evidence {attempt.evidence[:60]!r}, labelled {row['evidence']!r}")
        results[repo] = {
            "listed": len(listed), "labelled": len(expected), "found": len(hits),
            "precision": len(hits) / len(listed) if listed else 1.0,
            "recall": len(hits) / len(expected) if expected else 1.0,
            "fields": checked, "fields_right": checked - len(misses),
            "field_accuracy": (checked - len(misses)) / checked if checked else 1.0,
            "tasks_right": len(hits) - len(task_misses),
            "misses": misses + task_misses + [f"{path}: listed, not an attempt" for path in listed if path not in expected]
            + [f"{path}: not listed" for path in expected if path not in attempts],
        }
    return results


def total(results: dict[str, dict]) -> dict:
    listed = sum(r["listed"] for r in results.values())
    labelled = sum(r["labelled"] for r in results.values())
    found = sum(r["found"] for r in results.values())
    fields = sum(r["fields"] for r in results.values())
    right = sum(r["fields_right"] for r in results.values())
    return {"tasks_right": sum(r["tasks_right"] for r in results.values()),"listed": listed, "labelled": labelled, "found": found, "precision": found / listed if listed else 1.0,
            "recall": found / labelled if labelled else 1.0, "fields": fields, "fields_right": right,
            "field_accuracy": right / fields if fields else 1.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--misses", action="store_true", help="list every wrong field")
    args = parser.parse_args()
    labels = json.loads((SET / "labels.json").read_text(encoding="utf-8"))
    results = score(scanned(), labels)
    print(f"{'repository':24} {'listed':>6} {'labelled':>8} {'precision':>9} {'recall':>6} {'fields':>9} {'accuracy':>8}"
          f" {'task':>6}")
    rows = [*results.items(), ("total", total(results))]
    for repo, r in rows:
        print(f"{repo:24} {r['listed']:6} {r['labelled']:8} {r['precision']:9.3f} {r['recall']:6.3f} "
              f"{r['fields_right']:4}/{r['fields']:<4} {r['field_accuracy']:8.3f} {r['tasks_right']:3}/{r['found']:<3}")
    whole = rows[-1][1]
    print("goals: " + ", ".join(f"{name} >= {goal} {'met' if whole[name] >= goal else 'NOT met'}"
                                for name, goal in GOALS.items()))
    for repo, r in results.items():
        for miss in r["misses"] if args.misses else ():
            print(f"  {miss}")


if __name__ == "__main__":
    main()
