"""Where things are: the workspace root, the data root and the resolution of configured paths.

Configs name paths relative to the repository root; datasets under ``data/`` follow ``$EXPR_DATA_DIR``; a
config path may start from an environment variable (``$EXPR_REALBENCH/sfew/manifest.csv``), never a machine's
own folder.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from expr_common.errors import ExprError

SYNTHETIC_PREFIX = (
    "synthetic_"  # data/synthetic_<preset>/ is generated on demand (expr_common.synth.ondemand)
)
DATA_DIR_ENV = "EXPR_DATA_DIR"
_WORKSPACE_MARKER = "[tool.uv.workspace]"
_VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


class UnsetVariableError(ExprError, KeyError):
    """A config path names an environment variable that is not set."""

    def __str__(self) -> str:
        return str(self.args[0])


def repo_root() -> Path:
    """The workspace root: the nearest folder above the working directory (or this package) whose
    ``pyproject.toml`` declares the uv workspace; the working directory when there is none."""
    for start in (Path.cwd(), Path(__file__).resolve().parent):
        for folder in (start, *start.parents):
            marker = folder / "pyproject.toml"
            if marker.is_file() and _WORKSPACE_MARKER in marker.read_text(encoding="utf-8", errors="replace"):
                return folder
    return Path.cwd()


def data_root() -> Path:
    """Where datasets live: ``$EXPR_DATA_DIR`` if set, else ``<repo>/data``."""
    env = os.environ.get(DATA_DIR_ENV)
    return Path(env) if env else repo_root() / "data"


def cli_path(text: str) -> Path:
    """A path typed on a command line (argparse ``type=``): a relative one is taken from the current folder,
    as a shell user expects, never from the installation. Paths inside config files: :func:`resolve_path`."""
    return Path(text).expanduser().absolute()


def expand_variables(path: str | Path) -> Path:
    """``$NAME`` and ``${NAME}`` in a config path replaced by the environment's value; an unset one is one
    line that names it and the path."""

    def value(match: re.Match) -> str:
        name = match.group(1) or match.group(2)
        if name not in os.environ:
            raise UnsetVariableError(f"{path}: environment variable ${name} is not set")
        return os.environ[name]

    return Path(_VARIABLE.sub(value, str(path))).expanduser()


def resolve_path(path: str | Path) -> Path:
    """A path from a config: absolute as given; relative ones are taken from the repo root, so a config
    works from any working directory. Environment variables are expanded first."""
    path = expand_variables(path)
    return path if path.is_absolute() else repo_root() / path


def resolve_data_path(path: str | Path) -> Path:
    """A dataset path from a config. ``data/...`` lives under :func:`data_root` (so ``$EXPR_DATA_DIR``
    moves every dataset at once); other relative paths are taken from the repo root."""
    path = expand_variables(path)
    if not path.is_absolute() and path.parts and path.parts[0] == "data":
        return data_root().joinpath(*path.parts[1:])
    return resolve_path(path)
