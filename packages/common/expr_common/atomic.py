"""Atomic file writes: the one temp-then-rename every writer uses.

The content goes to a temp file beside the target (``.<name>.<random>.tmp``), is flushed and fsynced, and
is renamed over the target, so the target is whole at every instant: a crash, a kill or a full disk
mid-write leaves the old file (or none) and at most a temp file that :mod:`expr_common.checkpoint`
recognises as a write that never finished.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

TEMP_SUFFIX = ".tmp"


def _process_umask() -> int:
    mask = os.umask(0o022)  # the only way to read it is to set it: read once, at import, and put back
    os.umask(mask)
    return mask


UMASK = _process_umask()


def temp_path(target: Path) -> Path:
    """A fresh, empty temp file beside ``target`` (same filesystem, so the rename is atomic), with the
    permissions a plain ``open(target, "w")`` would leave: those of the file it will replace, else the
    umask's (``mkstemp`` makes it owner-only, which the rename would carry over to the result)."""
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=TEMP_SUFFIX, dir=target.parent)
    try:
        try:
            mode = os.stat(target).st_mode & 0o7777
        except OSError:  # no file to replace (or none we may read): a new file's mode
            mode = 0o666 & ~UMASK
        os.fchmod(fd, mode)
    except BaseException:
        os.close(fd)
        os.unlink(name)
        raise
    os.close(fd)
    return Path(name)


def fsync_dir(folder: Path) -> None:
    """Make a rename inside ``folder`` durable (where the filesystem supports it)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_write(
    path: str | Path,
    mode: str = "w",
    *,
    fsync: bool = True,
    before_replace: Callable[[], None] | None = None,
) -> Iterator[IO[Any]]:
    """``with atomic_write(path) as handle:`` write ``handle``; on a clean exit it replaces ``path``,
    on an exception the temp file is removed and ``path`` is untouched. ``mode``: ``"w"`` (UTF-8 text,
    newlines as written) or ``"wb"``. ``before_replace`` runs once the temp file is whole, just before the
    rename (a checkpoint keeps the file it replaces there)."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write mode {mode!r}: 'w' or 'wb'")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        text = {"encoding": "utf-8", "newline": ""} if mode == "w" else {}
        with open(tmp, mode, **text) as handle:
            yield handle
            handle.flush()
            if fsync:
                os.fsync(handle.fileno())
        if before_replace is not None:
            before_replace()
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise named(exc, path) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if fsync:
        fsync_dir(path.parent)


def named(exc: OSError, path: str | Path) -> OSError:
    """``exc`` with the file it was writing, when the error itself does not say (a full disk on ``write``)."""
    if exc.filename is not None:
        return exc
    return type(exc)(exc.errno, exc.strerror or str(exc), str(path))


def write_text(path: str | Path, text: str) -> Path:
    with atomic_write(path) as handle:
        handle.write(text)
    return Path(path)


def write_json(path: str | Path, data: Any, indent: int | None = 2) -> Path:
    """``data`` as JSON (with a final newline when indented), atomically."""
    return write_text(path, json.dumps(data, indent=indent) + ("\n" if indent is not None else ""))
