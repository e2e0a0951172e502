"""The ``luna`` command line: a thin layer over library functions.

Only argparse is imported at module level so ``luna --help`` answers instantly; each command imports
what it needs. User errors (``LunaError``) become one ``error:`` line and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
import textwrap

EPILOG = """\
examples:
  luna analyze                         statistics of the built-in Turkish corpus (Atatürk's speeches)
  luna analyze my_texts/ --files       per-file statistics, encodings found, mojibake repaired
  luna analyze data/ --filter --fix clean/   write the repaired, prose-only UTF-8 corpus to clean/

Every command has its own --help with examples.
"""


def _formatter(prog: str) -> argparse.HelpFormatter:
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=32)


def _add_corpus_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("corpus")
    group.add_argument("paths", nargs="*", metavar="PATH",
                       help="text files or folders (.txt .md .jsonl, optionally .gz); none = built-in corpus")
    group.add_argument("--include", action="append", metavar="GLOB",
                       help="file-name pattern to read inside folders (repeatable; default: *.txt *.md *.jsonl and .gz)")
    group.add_argument("--exclude", action="append", metavar="GLOB", default=[],
                       help="file-name or relative-path pattern to skip (repeatable)")
    group.add_argument("--text-field", default="text", metavar="NAME",
                       help="JSONL field holding the text (default: text)")
    group.add_argument("--filter", action="store_true",
                       help="drop text that is not prose: indexes, tables, lists, boilerplate")
    group.add_argument("--no-dedup", action="store_true", help="keep exact-duplicate documents")


def _corpus_config(args: argparse.Namespace):
    from lunalm.config import DEFAULT_INCLUDE, CorpusConfig

    return CorpusConfig(paths=tuple(args.paths), include=tuple(args.include or DEFAULT_INCLUDE),
                        exclude=tuple(args.exclude), text_field=args.text_field,
                        filter_non_prose=args.filter, dedup=not args.no_dedup)


def _add_analyze(commands) -> None:
    parser = commands.add_parser(
        "analyze", formatter_class=_formatter, help="corpus statistics, encoding repair, non-prose report",
        description=textwrap.dedent("""\
            Read a corpus, detect each file's encoding, repair mojibake (UTF-8 text that was once
            decoded as cp1254/cp1252), normalise to NFC, drop exact duplicates, and report documents,
            words, characters, tokens, Turkish letters and text that is not prose (indexes, tables,
            boilerplate). Streams: memory stays flat on large corpora."""),
        epilog=textwrap.dedent("""\
            examples:
              luna analyze                          the built-in corpus
              luna analyze books/ --files           one row per file
              luna analyze dump.jsonl --text-field content --json > stats.json
              luna analyze old_files/ --filter --fix clean/   repaired, filtered UTF-8 copy in clean/"""))
    _add_corpus_arguments(parser)
    parser.add_argument("--files", action="store_true", help="also print statistics per file")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON instead of tables")
    parser.add_argument("--fix", metavar="OUT", help="write the repaired (and with --filter, filtered) "
                        "UTF-8 corpus into the new folder OUT")
    parser.add_argument("--tokenizer", metavar="PATH",
                        help="count tokens with this tokenizer.json / HF folder (default: a BPE trained "
                             "quickly on the corpus)")
    parser.set_defaults(run=_run_analyze)


def _run_analyze(args: argparse.Namespace) -> int:
    from lunalm.cli.analyze import run_analyze

    return run_analyze(_corpus_config(args), show_files=args.files, as_json=args.json,
                       fix_dir=args.fix, tokenizer_path=args.tokenizer)


def build_parser() -> argparse.ArgumentParser:
    from lunalm import __version__

    parser = argparse.ArgumentParser(
        prog="luna", formatter_class=_formatter, epilog=EPILOG,
        description="lunalm: turn your own text corpus into a good small language model.")
    parser.add_argument("--version", action="version", version=f"lunalm {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    _add_analyze(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    from lunalm.errors import LunaError

    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 0
    try:
        return args.run(args)
    except LunaError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
