"""A data config's dataset roots: where they are, and who may supply one that is missing.

The data floor only reads. A root that is not there is a :class:`~expr_common.errors.MissingDataError`,
unless a provider registered by the process makes it: the command lines register the procedural corpus
(:func:`expr_common.synth.ondemand.enable`), so a ``tiny`` config runs on a fresh clone, while a library
call (a notebook, the package APIs) generates nothing and gets the one line that says how to make it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from expr_common.errors import MissingDataError
from expr_common.paths import SYNTHETIC_PREFIX, resolve_data_path

# Makes the missing root it is given (True), or says it is not its kind (False).
RootProvider = Callable[[Path], bool]

_providers: list[RootProvider] = []


def add_root_provider(provider: RootProvider) -> None:
    """Let ``provider`` make missing dataset roots in this process (once, however often it is added)."""
    if provider not in _providers:
        _providers.append(provider)


def remove_root_provider(provider: RootProvider) -> None:
    if provider in _providers:
        _providers.remove(provider)


def dataset_root(path: str | Path) -> Path:
    """The resolved dataset root of ``path``; a missing one is asked of the providers, then an error."""
    resolved = resolve_data_path(path)
    if not resolved.exists():
        for provider in list(_providers):
            if provider(resolved):
                break
    if not resolved.exists():
        raise MissingDataError(f"dataset root {resolved} does not exist (from {path!s}){_hint(resolved)}")
    return resolved


def _hint(path: Path) -> str:
    corpus = next((p for p in (path, *path.parents) if p.name.startswith(SYNTHETIC_PREFIX)), None)
    if corpus is None:
        return ""
    name = corpus.name.removeprefix(SYNTHETIC_PREFIX)
    return (
        f"; it is part of the procedural corpus: make it with `expr-data synth --preset {name} --out {corpus}`"
        " (the command lines make it on first use)"
    )
