"""One process owns a run folder at a time: ``<folder>/.lock``, held with ``flock`` for as long as the
command runs and holding its owner (pid, host, command, start time) for the message another process gets.

The kernel drops a ``flock`` when its process dies, so a lock left by a killed run never blocks: the next
command takes it over and says whose it was. Within one process the lock is re-entrant (a chain that
trains and then evaluates in one folder), and in a multi-process launch (``RANK`` set by accelerate or
torchrun) only the main process takes it; :func:`release_run_locks` ends a command's locks (the command
runner calls it), and process exit ends them anyway.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import sys
import time
from pathlib import Path
from typing import IO

from expr_common.errors import RunDirError

LOCK_FILE = ".lock"
log = logging.getLogger("expr.runs")
_held: dict[Path, IO[str]] = {}


class RunInUseError(RunDirError):
    """Another live process holds the run folder's lock."""


def lock_run_dir(root: str | Path) -> None:
    """Take the lock of ``root`` (created if missing) or raise :class:`RunInUseError` naming its owner."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    key = (root / LOCK_FILE).resolve()
    if key in _held or os.environ.get("RANK", "0") != "0":  # a launch's folder is its main process's
        return
    handle = key.open("a+", encoding="utf-8")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        owner = _owner_text(handle)
        handle.close()
        raise RunInUseError(
            f"{root} is in use by {owner or 'another process'}: wait for it to end (or stop it), "
            "or give another --run-dir"
        ) from None
    stale = _owner_text(handle)
    if stale:
        log.warning("%s: took over the lock of %s, which is no longer running", root, stale)
    handle.seek(0)
    handle.truncate()
    owner = {"pid": os.getpid(), "host": socket.gethostname(), "command": " ".join(sys.argv[:2])}
    handle.write(json.dumps(owner | {"since": time.strftime("%Y-%m-%d %H:%M:%S")}) + "\n")
    handle.flush()
    _held[key] = handle


def release_run_lock(root: str | Path) -> None:
    """Give up the lock of ``root`` (if this process holds it): the owner line is cleared first, so the
    next command finds a free folder and nothing to report."""
    handle = _held.pop((Path(root) / LOCK_FILE).resolve(), None)
    if handle is not None:
        handle.seek(0)
        handle.truncate()
        handle.close()  # closing the last descriptor drops the flock


def release_run_locks() -> None:
    for key in list(_held):
        release_run_lock(key.parent)


def _owner_text(handle: IO[str]) -> str:
    handle.seek(0)
    text = handle.read().strip()
    try:
        owner = json.loads(text) if text else None
    except json.JSONDecodeError:
        return text[:200]
    if not isinstance(owner, dict):
        return text[:200]
    pid, host, command, since = (owner.get(k) for k in ("pid", "host", "command", "since"))
    return f"pid {pid} on {host} ({command}, since {since})"
