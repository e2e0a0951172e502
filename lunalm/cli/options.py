"""Command-line conventions shared by every ``luna`` command: help that shows defaults, corpus paths
including ``--hf-dataset``, the ``--report-to`` list. argparse only (``luna --help`` stays fast)."""

from __future__ import annotations

import argparse


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions as written; every option's help ends with its default unless it already names one."""

    def _get_help_string(self, action: argparse.Action) -> str:
        return help_with_default(action)


def help_with_default(action: argparse.Action) -> str:
    """``action.help``, plus "(default X)" for a value-taking option whose default is set and unnamed."""
    text = action.help or ""
    if not action.option_strings or action.nargs == 0 or "default" in text or action.default in (None, [], ()) \
            or action.default is argparse.SUPPRESS:
        return text
    return f"{text} (default %(default)s)".lstrip()


def config_default(config_class: str, field: str):
    """A config field's default, for help texts that stay true when the default changes."""
    import dataclasses

    from lunalm import config

    return next(f.default for f in dataclasses.fields(getattr(config, config_class)) if f.name == field)


HF_DATASET_HELP = ("a Hugging Face dataset, streamed: a folder saved with save_to_disk or holding a Hub dataset's "
                   "files, or a Hub id through the HF cache; rows of --text-field are documents (default: none)")


def corpus_paths(args: argparse.Namespace) -> tuple[str, ...]:
    """PATH arguments plus the data files of --hf-dataset (lunalm.corpus.hf_dataset)."""
    if not getattr(args, "hf_dataset", None):
        return tuple(args.paths)
    from lunalm.corpus.hf_dataset import hf_dataset_files

    return (*args.paths, *hf_dataset_files(args.hf_dataset))


def tracker_list(text: str) -> tuple[str, ...]:
    """argparse type of --report-to: comma-separated tracker names; "none" = metrics.jsonl only."""
    from lunalm.config import REPORT_TO

    names = tuple(name.strip() for name in text.split(",") if name.strip() and name.strip() != "none")
    unknown = [name for name in names if name not in REPORT_TO]
    if unknown:
        raise argparse.ArgumentTypeError(f"{', '.join(unknown)}: unknown; choose from {', '.join(REPORT_TO)}, none")
    return names
