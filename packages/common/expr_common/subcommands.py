"""The one subcommand helper behind ``expr-data``, ``gan-aug``, ``recognizer`` and ``expr-experiment``.

Each subcommand lives in its own module, which provides ``add_arguments(parser)``, ``run(args) -> int``
and optionally ``USER_ERRORS``: the exception types that are the user's mistake (a bad config, a missing
file, a refused checkpoint), printed as one line ``<prog> <command>: error: <message>`` with exit code 2.
Anything else keeps its traceback. A module is imported only when its subcommand is parsed, so ``--help``
stays fast and one broken module cannot break the others.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Mapping, Sequence
from types import ModuleType

USER_ERROR_EXIT = 2

# name -> (module, one-line help)
Registry = Mapping[str, tuple[str, str]]


def build_parser(
    prog: str, description: str, registry: Registry, argv: Sequence[str]
) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    chosen = next((a for a in argv if not a.startswith("-")), None)
    for name, (module, summary) in registry.items():
        child = sub.add_parser(name, help=summary, description=summary)
        if name == chosen:  # only the chosen subcommand's module needs its arguments
            importlib.import_module(module).add_arguments(child)
    return parser


def run_module(prog: str, command: str, module: ModuleType, args: argparse.Namespace) -> int:
    """``module.run(args)``; its ``USER_ERRORS`` become one line on stderr and exit code 2."""
    try:
        return int(module.run(args) or 0)
    except getattr(module, "USER_ERRORS", ()) as exc:
        print(f"{prog} {command}: error: {exc}", file=sys.stderr)
        return USER_ERROR_EXIT


def main(prog: str, description: str, registry: Registry, argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(prog, description, registry, argv).parse_args(argv)
    module = importlib.import_module(registry[args.command][0])
    return run_module(prog, args.command, module, args)
