"""The one subcommand helper behind ``expr-data``, ``gan-aug``, ``recognizer`` and ``expr-experiment``.

Each subcommand lives in its own module, which provides ``add_arguments(parser)`` and ``run(args) -> int``,
optionally ``USER_ERRORS`` (more exception types to treat as the user's, beside the project's own
:class:`~expr_common.errors.ExprError`) and ``stop_note(args) -> str | None`` (where a long run stands when
it stops early: the last checkpoint and the ``--resume`` line). What happens to an exception:

- a project error (a bad config, data, checkpoint or run folder): one line
  ``<prog> <command>: error: <message>``, exit code 2;
- a full disk: one line naming the file being written, and the stop note, exit code 2;
- a folder or file the user may not write (or read): one line naming it, exit code 2;
- Ctrl-C: one line with the stop note, exit code 130;
- anything else is a bug: its traceback, then a line asking for a bug report, exit code 1.

A module is imported only when its subcommand is parsed, so ``--help`` stays fast and one broken module
cannot break the others.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import sys
import traceback
from collections.abc import Mapping, Sequence
from types import ModuleType

from expr_common.errors import ExprError
from expr_common.run_lock import release_run_locks

USER_ERROR_EXIT = 2
BUG_EXIT = 1
INTERRUPTED_EXIT = 130  # 128 + SIGINT, as shells report a Ctrl-C
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
NOT_ALLOWED = (errno.EACCES, errno.EPERM, errno.EROFS)  # a read-only folder or disk, another user's file
BUG_REPORT = (
    "this is a bug in the toolkit, not a problem with your input: please report it with the traceback above "
    "and the command line"
)

# name -> (module, one-line help)
Registry = Mapping[str, tuple[str, str]]


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1 (batch sizes, worker and sample counts)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {value}")
    return value


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
    """``module.run(args)`` with the exception policy of this module's docstring."""
    user_errors = (ExprError, *getattr(module, "USER_ERRORS", ()))
    where = f"{prog} {command}"
    try:
        return int(module.run(args) or 0)
    except KeyboardInterrupt:
        _say(f"{where}: interrupted", _stop_note(module, args))
        return INTERRUPTED_EXIT
    except user_errors as exc:
        _say(f"{where}: error: {exc}")
        return USER_ERROR_EXIT
    except OSError as exc:
        if exc.errno in NOT_ALLOWED:
            _say(f"{where}: error: {(exc.strerror or 'not allowed').lower()}: {exc.filename or 'a file'}")
            return USER_ERROR_EXIT
        if exc.errno not in DISK_FULL:
            return _bug(where)
        target = exc.filename or "a file"
        _say(f"{where}: error: the disk is full: no space left writing {target}", _stop_note(module, args))
        return USER_ERROR_EXIT
    except Exception:
        return _bug(where)
    finally:
        release_run_locks()  # the command is over: its run folders are free (in-process callers too)


def _stop_note(module: ModuleType, args: argparse.Namespace) -> str | None:
    note = getattr(module, "stop_note", None)
    return note(args) if note is not None else None


def _say(line: str, note: str | None = None) -> None:
    print(line + (f"; {note}" if note else ""), file=sys.stderr)


def _bug(where: str) -> int:
    traceback.print_exc()
    print(f"{where}: internal error: {BUG_REPORT}", file=sys.stderr)
    return BUG_EXIT


def main(prog: str, description: str, registry: Registry, argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(prog, description, registry, argv).parse_args(argv)
    module = importlib.import_module(registry[args.command][0])
    return run_module(prog, args.command, module, args)
