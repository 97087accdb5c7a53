"""The project's own error types: a problem with what the user gave (a config, data, a checkpoint, a run
folder) or with the machine (a full disk), said in one line by every command line
(:mod:`expr_common.subcommands`). Anything else is a bug and keeps its traceback.

Each type also keeps the builtin base it has always had (``ValueError``, ``RuntimeError``,
``FileNotFoundError``), so ``except ValueError`` around a library call still catches it.
"""

from __future__ import annotations


class ExprError(Exception):
    """Base of every error the command lines print as one line (exit code 2)."""


class RunDirError(ExprError, ValueError):
    """A run folder cannot be used as asked: it holds another run (and neither --resume nor --overwrite
    was given), or --resume finds nothing to continue."""


class NothingToResumeError(RunDirError, FileNotFoundError):
    """--resume on a run folder without ``checkpoints/last.pt``."""


class DataError(ExprError, ValueError):
    """The data asked for is not there in usable form (an empty split, no labelled windows)."""


class MissingDataError(ExprError, FileNotFoundError):
    """A dataset root, corpus or cache that a config names does not exist."""
