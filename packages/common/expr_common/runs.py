"""The run contract (docs/design.md, "Run folders"): run directories, file names, the metrics file and CLI
arguments.

Scripts and tests rely on these names; every package takes them from here.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from expr_common.atomic import atomic_write, named
from expr_common.errors import NothingToResumeError, RunDirError
from expr_common.paths import repo_root
from expr_common.run_lock import lock_run_dir, release_run_lock

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.jsonl"
CHECKPOINT_DIR = "checkpoints"
LAST_CHECKPOINT = "last.pt"
BEST_CHECKPOINT = "best.pt"
TENSORBOARD_DIR = "tb"
REPORT_FILE = "report.md"
EVAL_METRICS_FILE = "metrics.json"
PREDICTIONS_FILE = "predictions.csv"


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


def default_run_dir(command: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return repo_root() / "runs" / command / stamp


def run_contents(run: RunDir) -> list[str]:
    """What in ``run`` marks it as holding a run (finished or partial): its config, metrics, checkpoints."""
    held = [p.name for p in (run.config, run.metrics) if p.is_file()]
    if run.checkpoints.is_dir():
        held += [f"{CHECKPOINT_DIR}/{p.name}" for p in sorted(run.checkpoints.glob("*.pt"))]
    return held


def open_run_dir(
    path: str | Path | None,
    command: str,
    *,
    resume: bool = False,
    overwrite: bool = False,
    create: bool = True,
    fresh: bool = True,
) -> RunDir:
    """The run directory for ``command``: ``path`` or ``runs/<command>/<timestamp>``. With ``resume`` it
    must already hold ``checkpoints/last.pt``. Without it, a folder that already holds a run is refused
    (:class:`RunDirError`) unless ``overwrite``, which moves that run aside to ``<folder>.replaced-<time>``
    first (``fresh=False``: a command that only adds files, like ``evaluate``, may write into any folder).
    ``create=False`` (non-main processes) only resolves it: the main process looks and moves. A created
    folder is locked for this process (:mod:`expr_common.run_lock`): another live one is refused."""
    if resume and overwrite:
        raise RunDirError("--resume continues the run in --run-dir and --overwrite moves it aside: give one")
    if path is None:
        if resume:
            raise RunDirError("--resume needs --run-dir: the run directory to continue")
        path = default_run_dir(command)
    run = RunDir(Path(path))
    if resume and not run.last_checkpoint.is_file():
        raise NothingToResumeError(f"--resume: {run.last_checkpoint} does not exist; nothing to resume")
    if create:
        lock_run_dir(run.root)  # before looking inside: one process at a time (run_lock.py)
    if create and fresh and not resume and (held := run_contents(run)):
        if not overwrite:
            raise RunDirError(
                f"{run.root} already holds a run ({', '.join(held[:4])}): pass --resume to continue it, or "
                "--overwrite to move it aside and start again"
            )
        aside = _aside(run.root)
        release_run_lock(run.root)
        run.root.rename(aside)
        print(f"--overwrite: moved the earlier run in {run.root} to {aside}", file=sys.stderr)
        lock_run_dir(run.root)
    if create:
        run.checkpoints.mkdir(parents=True, exist_ok=True)
    return run


def _aside(root: Path) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    candidate, k = root.with_name(f"{root.name}.replaced-{stamp}"), 1
    while candidate.exists():
        candidate, k = root.with_name(f"{root.name}.replaced-{stamp}-{k}"), k + 1
    return candidate


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
    parser.add_argument(
        "--overwrite", action="store_true", help="RUN_DIR holds a run: move it aside and start again"
    )


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
        try:
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(record, sort_keys=False) + "\n")
        except OSError as exc:  # a full disk: say which file
            raise named(exc, self.path) from None


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """All records of a ``metrics.jsonl``."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def truncate_metrics(path: str | Path, key: str, last: int) -> None:
    """On resume, keep the records whose ``key`` (``step`` or ``epoch``) is at most ``last`` (records
    without it are kept): the steps after the checkpoint run again and are logged again. Rewritten
    atomically, so a kill here loses nothing."""
    path = Path(path)
    if not path.is_file():
        return
    records = read_metrics(path)
    kept = [r for r in records if r.get(key, last) <= last]
    if len(kept) < len(records):
        with atomic_write(path) as handle:
            handle.writelines(json.dumps(r, sort_keys=False) + "\n" for r in kept)


def resume_note(args: argparse.Namespace, command: str, flags: Sequence[str] = ()) -> str | None:
    """For a training command stopped early (Ctrl-C, a full disk): the last good checkpoint in
    ``args.run_dir`` and the command line that continues from it, with the same ``--config``, ``--set``
    and ``flags`` (the command's own options that shape the run); None before the folder is known."""
    if args.run_dir is None:
        return None
    run = RunDir(Path(args.run_dir))
    config = f" --config {args.config}" if getattr(args, "config", None) else ""
    sets = "".join(f" --set {o}" for o in getattr(args, "overrides", []))
    again = f"{command}{config}{sets}{''.join(' ' + f for f in flags)} --run-dir {run.root}"
    if not run.last_checkpoint.is_file():
        return f"no checkpoint was written yet in {run.root}; start again with: {again} --overwrite"
    return f"the last good checkpoint is {run.last_checkpoint}; continue with: {again} --resume"
