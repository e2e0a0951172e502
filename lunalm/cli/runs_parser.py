"""``luna runs ACTION``: one real subcommand per action, each with its own help, flags and examples
(the actions themselves are in ``lunalm.cli.runs``)."""

from __future__ import annotations

import argparse
import textwrap

DESCRIPTION = """\
    Every `luna train` and `luna finetune` registers itself in a SQLite registry (status, config,
    device, parameters, tokens, best metrics, time, the plan's estimate beside the actual figures);
    `luna scan` adds past work found on disk. A run that died silently is marked crashed."""

ACTIONS = {  # name -> (one-line help, description, examples)
    "list": ("every recorded run, newest first, with filters",
             "List recorded runs, newest first: status, model (fine-tunes: LoRA or full, of which base, "
             "on which data), parameters, tokens, best validation loss.",
             "luna runs list\n  luna runs list --status crashed --since 2026-11-01\n  luna runs list --json"),
    "show": ("one run in full: config, metrics, plan against actual, the fix for its error",
             "Show one run: its recorded fields (the task, LoRA and quantisation included; --json adds the "
             "metrics and everything else a scan kept), the plan's estimate against the actual figures, and "
             "for a failed run the fix that works for its error class.",
             "luna runs show nano-20261123-120000\n  luna runs show 3f2a --json"),
    "compare": ("two or more runs side by side: metrics, config differences, curves",
                "Compare runs: their metrics side by side, the config settings that differ, and with "
                "--plot their loss curves in one PNG.",
                "luna runs compare RUN1 RUN2\n  luna runs compare RUN1 RUN2 RUN3 --plot curves.png"),
    "rm": ("forget runs (their files stay on disk)",
           "Remove runs from the registry. Their folders and files are not touched.",
           "luna runs rm RUN\n  luna runs rm RUN1 RUN2"),
    "repair": ("rebuild a damaged registry (the old file is kept)",
               "Move a damaged registry aside and rebuild it from the rows still readable and the runs' side "
               "logs (RUN/registry-pending.jsonl, written when the registry could not be).",
               "luna runs repair\n  luna runs repair --runs-dir /shared/runs"),
}


def add_runs_parser(commands) -> None:
    from lunalm.cli import _formatter

    parser = commands.add_parser("runs", formatter_class=_formatter, help="the run registry: list, show, compare, rm, repair",
                                 description=textwrap.dedent(DESCRIPTION),
                                 epilog="examples:\n  luna runs list\n  luna runs show RUN\n  luna runs repair\n\n"
                                        "each action has its own help: luna runs list --help")
    actions = parser.add_subparsers(title="actions", metavar="ACTION", dest="action", required=True)
    for name, (summary, description, examples) in ACTIONS.items():
        sub = actions.add_parser(name, formatter_class=_formatter, help=summary, description=textwrap.fill(description, 100),
                                 epilog=f"examples:\n  {examples}")
        _add_arguments(sub, name)
        sub.set_defaults(run=_run)


def _add_arguments(parser: argparse.ArgumentParser, action: str) -> None:
    if action in ("list", "repair"):
        parser.set_defaults(ids=[])
        if action == "list":
            _add_filters(parser)
    else:
        many = "two or more" if action == "compare" else "one" if action == "show" else "one or more"
        parser.add_argument("ids", nargs=1 if action == "show" else "+", metavar="RUN",
                            help=f"{many} run ids (or unique prefixes), names or paths")
    if action == "compare":
        parser.add_argument("--plot", metavar="PNG", help="draw the runs' loss curves into this PNG (default: no plot)")
    if action not in ("rm", "repair"):
        parser.add_argument("--json", action="store_true", help="machine-readable output")
    from lunalm.cli import _add_registry_arguments

    _add_registry_arguments(parser)


def _add_filters(parser: argparse.ArgumentParser) -> None:
    filters = parser.add_argument_group("filters")
    filters.add_argument("--status", help="running, completed, stopped-early, diverged, oom, interrupted, crashed, "
                                          "disk-full (default: any)")
    filters.add_argument("--outcome", choices=["success", "failure", "unknown"], help="default: any")
    filters.add_argument("--model", help="preset, model id or fine-tune base (substring; default: any)")
    filters.add_argument("--corpus", help="corpus path (substring; default: any)")
    filters.add_argument("--source", help="lunalm, hf-trainer, lightning, tensorboard, mlflow, wandb, log, notebook, "
                                          "script (default: any)")
    filters.add_argument("--since", metavar="DATE", help="started on or after this date, YYYY-MM-DD (default: any)")
    filters.add_argument("--limit", type=int, help="at most this many rows (default: all)")


def _run(args) -> int:
    from lunalm.cli.runs import run_runs

    return run_runs(args)
