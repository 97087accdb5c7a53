"""The procedural corpus on demand: a data config that points at a missing ``data/synthetic_<preset>/``
gets that corpus generated first, so every ``tiny`` config runs on a fresh clone as it is.

The command lines ask for it (:func:`enable`, called by each command's ``main``): it registers
:func:`provide` with the data floor (``expr_common.data.roots``), which only reads and asks its providers
when a root is missing. Library calls, which do not enable it, never generate a corpus.
"""

from __future__ import annotations

import fcntl
from pathlib import Path

from expr_common.data.roots import add_root_provider
from expr_common.errors import MissingDataError
from expr_common.logs import get_logger
from expr_common.paths import SYNTHETIC_PREFIX
from expr_common.synth.presets import PRESET_NAMES, preset

log = get_logger("data")


def enable() -> None:
    """Let this process's data loads generate a missing synthetic corpus (the command lines, the tests)."""
    add_root_provider(provide)


def provide(path: Path) -> bool:
    """Generate the synthetic corpus the missing root ``path`` lies in (False: ``path`` is in none)."""
    corpus = synthetic_corpus_of(path)
    if corpus is None:
        return False
    ensure_synthetic(corpus)
    if not path.exists():
        raise MissingDataError(f"{path} is not part of the synthetic corpus generated in {corpus}")
    return True


def ensure_synthetic(corpus: Path, seed: int = 0) -> Path:
    """Generate ``<data>/synthetic_<preset>`` unless it is there; concurrent callers wait on a lock."""
    from expr_common.synth.corpus import generate

    name = corpus.name.removeprefix(SYNTHETIC_PREFIX)
    corpus.parent.mkdir(parents=True, exist_ok=True)
    with open(corpus.parent / f".{corpus.name}.lock", "a") as lock:  # "a": taking the lock changes no file
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not corpus.exists():
            log.info("generating the synthetic '%s' corpus in %s (once)", name, corpus)
            generate(preset(name, seed), corpus)
    return corpus


def synthetic_corpus_of(path: Path) -> Path | None:
    """The ``synthetic_<preset>`` folder ``path`` lies in (None: not in one)."""
    for folder in (path, *path.parents):
        if (
            folder.name.startswith(SYNTHETIC_PREFIX)
            and folder.name.removeprefix(SYNTHETIC_PREFIX) in PRESET_NAMES
        ):
            return folder
    return None
