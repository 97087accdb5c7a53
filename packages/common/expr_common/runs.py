"""The run contract of DESIGN.md: run directories, file names, data locations and CLI arguments.

Scripts and tests rely on these names; every package takes them from here.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.jsonl"
CHECKPOINT_DIR = "checkpoints"
LAST_CHECKPOINT = "last.pt"
BEST_CHECKPOINT = "best.pt"
TENSORBOARD_DIR = "tb"
REPORT_FILE = "report.md"
EVAL_METRICS_FILE = "metrics.json"
PREDICTIONS_FILE = "predictions.csv"

SYNTHETIC_PREFIX = "synthetic_"  # data/synthetic_<preset>/ is generated on demand
DATA_DIR_ENV = "EXPR_DATA_DIR"
_WORKSPACE_MARKER = "[tool.uv.workspace]"


@dataclass(frozen=True)
class RunDir:
    """Paths inside one run directory."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / CONFIG_FILE

    @property
    def metrics(self) -> Path:
        return self.root / METRICS_FILE

    @property
    def checkpoints(self) -> Path:
        return self.root / CHECKPOINT_DIR

    @property
    def last_checkpoint(self) -> Path:
        return self.checkpoints / LAST_CHECKPOINT

    @property
    def best_checkpoint(self) -> Path:
        return self.checkpoints / BEST_CHECKPOINT

    @property
    def tensorboard(self) -> Path:
        return self.root / TENSORBOARD_DIR

    @property
    def report(self) -> Path:
        return self.root / REPORT_FILE

    @property
    def eval_metrics(self) -> Path:
        return self.root / EVAL_METRICS_FILE

    @property
    def predictions(self) -> Path:
        return self.root / PREDICTIONS_FILE


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


def resolve_path(path: str | Path) -> Path:
    """A path from a config: absolute as given; relative ones are taken from the repo root, so a config
    works from any working directory."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else repo_root() / path


def resolve_data_path(path: str | Path) -> Path:
    """A dataset path from a config. ``data/...`` lives under :func:`data_root` (so ``$EXPR_DATA_DIR``
    moves every dataset at once); other relative paths are taken from the repo root."""
    path = Path(path).expanduser()
    if not path.is_absolute() and path.parts and path.parts[0] == "data":
        return data_root().joinpath(*path.parts[1:])
    return resolve_path(path)


def dataset_root(path: str | Path) -> Path:
    """Resolve a configured dataset root, generating it first when it belongs to a missing synthetic
    preset (``data/synthetic_<preset>/...``), so a fresh clone runs every ``tiny`` config as it is."""
    resolved = resolve_data_path(path)
    if resolved.exists():
        return resolved
    corpus = _synthetic_corpus_of(resolved)
    if corpus is None:
        raise FileNotFoundError(f"dataset root {resolved} does not exist (from {path!s})")
    ensure_synthetic(corpus)
    if not resolved.exists():
        raise FileNotFoundError(f"{resolved} is not part of the synthetic corpus generated in {corpus}")
    return resolved


def ensure_synthetic(corpus: Path, seed: int = 0) -> Path:
    """Generate ``<data>/synthetic_<preset>`` unless it is there; concurrent callers wait on a lock."""
    import fcntl

    from expr_common.logs import get_logger
    from expr_common.synth.corpus import generate
    from expr_common.synth.presets import preset

    name = corpus.name.removeprefix(SYNTHETIC_PREFIX)
    corpus.parent.mkdir(parents=True, exist_ok=True)
    with open(corpus.parent / f".{corpus.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not corpus.exists():
            get_logger("data").info("generating the synthetic '%s' corpus in %s (once)", name, corpus)
            generate(preset(name, seed), corpus)
    return corpus


def _synthetic_corpus_of(path: Path) -> Path | None:
    from expr_common.synth.presets import PRESET_NAMES

    for folder in (path, *path.parents):
        if (
            folder.name.startswith(SYNTHETIC_PREFIX)
            and folder.name.removeprefix(SYNTHETIC_PREFIX) in PRESET_NAMES
        ):
            return folder
    return None


def default_run_dir(command: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return repo_root() / "runs" / command / stamp


def open_run_dir(
    path: str | Path | None, command: str, *, resume: bool = False, create: bool = True
) -> RunDir:
    """The run directory for ``command``: ``path`` or ``runs/<command>/<timestamp>``. With ``resume`` it
    must already hold ``checkpoints/last.pt``. ``create=False`` (non-main processes) only resolves it."""
    if path is None:
        if resume:
            raise ValueError("--resume needs --run-dir: the run directory to continue")
        path = default_run_dir(command)
    run = RunDir(Path(path))
    if resume and not run.last_checkpoint.is_file():
        raise FileNotFoundError(f"--resume: {run.last_checkpoint} does not exist; nothing to resume")
    if create:
        run.checkpoints.mkdir(parents=True, exist_ok=True)
    return run


def add_override_argument(parser: argparse.ArgumentParser, example: str = "train.lr=0.01") -> None:
    """``--set KEY=VALUE`` (repeatable), collected in ``args.overrides`` for ``load_config``."""
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"override a config key, e.g. --set {example} (repeatable)",
    )


def add_run_arguments(parser: argparse.ArgumentParser, *, config_required: bool = False) -> None:
    """The options every results-writing command shares."""
    parser.add_argument("--config", type=Path, required=config_required, help="experiment YAML")
    add_override_argument(parser)
    parser.add_argument(
        "--run-dir", type=Path, default=None, help="output folder (default runs/<command>/<time>)"
    )
    parser.add_argument("--resume", action="store_true", help="continue from RUN_DIR/checkpoints/last.pt")


class MetricsWriter:
    """Appends one JSON object per line to ``metrics.jsonl``; a no-op on non-main processes."""

    def __init__(self, path: str | Path, enabled: bool = True):
        self.path = Path(path)
        self.enabled = enabled

    def write(self, **record: Any) -> None:
        if not self.enabled:
            return
        if "step" not in record and "epoch" not in record:
            raise ValueError("a metrics record needs a 'step' or an 'epoch'")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, sort_keys=False) + "\n")


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """All records of a ``metrics.jsonl``."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]
