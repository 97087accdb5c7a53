"""The procedural corpus on demand: a data config that points at a missing ``data/synthetic_<preset>/``
gets that corpus generated first, so every ``tiny`` config runs on a fresh clone as it is.

Callers (the command lines and trainers) ask for it before preparing data: :func:`prepare_data`. The data
floor below (``expr_common.data``) only reads what is there and never generates anything.
"""

from __future__ import annotations

import fcntl
from pathlib import Path
from typing import Any

from expr_common.data.config import DataConfig
from expr_common.data.prepare import PrepareSummary, prepare_cached
from expr_common.errors import MissingDataError
from expr_common.logs import get_logger
from expr_common.paths import SYNTHETIC_PREFIX, resolve_data_path
from expr_common.synth.presets import PRESET_NAMES, preset

log = get_logger("data")


def dataset_root(path: str | Path) -> Path:
    """Resolve a configured dataset root, generating it first when it belongs to a missing synthetic
    preset (``data/synthetic_<preset>/...``)."""
    resolved = resolve_data_path(path)
    if resolved.exists():
        return resolved
    corpus = synthetic_corpus_of(resolved)
    if corpus is None:
        raise MissingDataError(f"dataset root {resolved} does not exist (from {path!s})")
    ensure_synthetic(corpus)
    if not resolved.exists():
        raise MissingDataError(f"{resolved} is not part of the synthetic corpus generated in {corpus}")
    return resolved


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


def ensure_sources(config: DataConfig) -> DataConfig:
    """Generate every missing synthetic corpus that ``config``'s sources point at; returns ``config``."""
    for source in config.sources:
        dataset_root(source.root)
    return config


def prepare_data(
    config: DataConfig, accelerator: Any = None, out_dir: str | Path | None = None
) -> PrepareSummary:
    """:func:`~expr_common.data.prepare.prepare_cached` after :func:`ensure_sources`: what a trainer or a
    command calls to get the cache of a data config."""
    if accelerator is None:
        ensure_sources(config)
    else:
        with accelerator.main_process_first():
            ensure_sources(config)
    return prepare_cached(config, accelerator, out_dir)
