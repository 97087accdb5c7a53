"""SIGKILL a real training process once it has written a checkpoint, ``--resume`` it, and get, to the bit,
what an uninterrupted run gets: the final checkpoints (weights, optimizer, RNG, counters) and metrics.jsonl.

The killed run is a ``python -m <package> train`` subprocess; the uninterrupted run goes through the same
CLI in this process while the child starts (importing torch takes seconds), and so does the resumed run.
Both sides run one intra-op thread on the CPU with deterministic kernels.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from expr_common.checkpoint import load_checkpoint
from expr_common.paths import repo_root
from expr_common.runs import read_metrics

RECOGNIZER_TINY = str(repo_root() / "configs" / "recognizer" / "tiny.yaml")
GAN_TINY = str(repo_root() / "configs" / "gan_aug" / "tiny.yaml")
DATA_TINY = repo_root() / "configs" / "data" / "synthetic_tiny.yaml"  # what both tiny configs read
START_TIMEOUT_S = 240  # the child imports torch and accelerate first: slow on a loaded machine


@pytest.fixture(scope="module")
def cache_override(tiny_corpus, data_dir) -> str:
    """The tiny data config's cache (where tests/gan_aug keeps it), prepared before any child starts."""
    from expr_common.data.config import load_data_config
    from expr_common.data.prepare import prepare_cached

    root = data_dir / "cache" / "gan_synthetic_tiny"
    prepare_cached(load_data_config(DATA_TINY, [f"cache.root={root}"]))
    return f"data_overrides=[cache.root={root}]"


class Killed:
    """What became of the child: ``outcome`` is "killed" (SIGKILLed after its first checkpoint), "ended"
    (it exited by itself first), "timeout" or "stopped" (the test failed meanwhile)."""

    def __init__(self, child: subprocess.Popen, log: Path):
        self.child, self.log, self.outcome = child, log, "running"

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace")


@contextlib.contextmanager
def _kill_after_first_checkpoint(argv: list[str], run: Path, log: Path) -> Iterator[Killed]:
    """Start ``python -m`` ``argv`` and a watcher that SIGKILLs it as soon as ``run``/checkpoints/last.pt
    exists (renamed into place whole, so complete the moment it appears); the body runs meanwhile."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "EXPR_PROGRESS": "0"}
    env["CUDA_VISIBLE_DEVICES"] = ""  # CPU, like the in-process runs it is compared with
    last, stop = run / "checkpoints" / "last.pt", threading.Event()
    with log.open("wb") as out:
        child = subprocess.Popen(
            [sys.executable, "-m", *argv], cwd=repo_root(), env=env, stdout=out, stderr=subprocess.STDOUT
        )
    killed = Killed(child, log)

    def watch() -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while child.poll() is None:
            if last.exists():
                child.send_signal(signal.SIGKILL)
                killed.outcome = "killed"
                return
            if stop.is_set() or time.monotonic() > deadline:
                killed.outcome = "stopped" if stop.is_set() else "timeout"
                return
            time.sleep(0.005)
        killed.outcome = "ended"

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield killed
        watcher.join()
    finally:
        stop.set()
        watcher.join()
        child.kill()  # a no-op once it is dead; never left running when the test fails
        child.wait(timeout=60)


def _sets(*overrides: str) -> list[str]:
    return [arg for override in overrides for arg in ("--set", override)]


def test_recognizer_killed_and_resumed_equals_an_uninterrupted_run(
    cache_override, tmp_path, logged, same_state, steady_metrics
):
    from recognizer.cli import main

    epochs = 5  # killed right after epoch 1's checkpoint: four epochs (seconds) are still to go
    argv = ["train", "--config", RECOGNIZER_TINY]
    argv += _sets(
        cache_override,
        f"train.epochs={epochs}",
        "train.max_steps_per_epoch=3",
        "train.log_every=1",
        "train.deterministic=true",
    )
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    with _kill_after_first_checkpoint(
        ["recognizer", *argv, "--run-dir", str(killed)], killed, tmp_path / "log"
    ) as kill:
        assert main([*argv, "--run-dir", str(whole)]) == 0
    assert kill.outcome == "killed", kill.output
    assert kill.child.returncode == -signal.SIGKILL, kill.output  # it was still running when killed
    at_kill = load_checkpoint(killed / "checkpoints" / "last.pt")
    assert at_kill["epoch"] < epochs - 1 and not (killed / "selection.json").exists()  # it had not finished

    logged.clear()
    assert main([*argv, "--run-dir", str(killed), "--resume"]) == 0
    last = killed / "checkpoints" / "last.pt"
    assert f"resumed from {last} at epoch {at_kill['epoch'] + 1}" in logged  # continued, not restarted
    same_state(load_checkpoint(whole / "checkpoints" / "last.pt"), load_checkpoint(last))
    best = "checkpoints/best.pt"
    same_state(load_checkpoint(whole / best), load_checkpoint(killed / best))  # with the fusion selection
    volatile = "train_clips_per_s"
    assert steady_metrics(killed / "metrics.jsonl", volatile) == steady_metrics(
        whole / "metrics.jsonl", volatile
    )
    assert (killed / "selection.json").read_text() == (whole / "selection.json").read_text()


def test_gan_killed_and_resumed_equals_an_uninterrupted_run(
    cache_override, tmp_path, logged, same_state, steady_metrics
):
    from gan_aug.cli import main

    steps = 20  # killed right after step 1's checkpoint: 19 steps (seconds) are still to go
    argv = ["train", "--config", GAN_TINY]
    argv += _sets(
        cache_override,
        f"train.steps={steps}",
        "train.checkpoint_every=1",
        "train.log_every=1",
        "train.sample_every=1000",  # grids at the last step only
    )
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    with _kill_after_first_checkpoint(
        ["gan_aug", *argv, "--run-dir", str(killed)], killed, tmp_path / "log"
    ) as kill:
        assert main([*argv, "--run-dir", str(whole)]) == 0
    assert kill.outcome == "killed", kill.output
    assert kill.child.returncode == -signal.SIGKILL, kill.output
    at_kill = load_checkpoint(killed / "checkpoints" / "last.pt")["step"]
    assert at_kill < steps and not list((killed / "samples").glob(f"step{steps:07d}_*.png"))

    logged.clear()
    assert main([*argv, "--run-dir", str(killed), "--resume"]) == 0
    assert f"resumed {killed} from {killed / 'checkpoints' / 'last.pt'} at step {at_kill}" in logged
    end_whole = load_checkpoint(whole / "checkpoints" / "last.pt")
    end_killed = load_checkpoint(killed / "checkpoints" / "last.pt")
    # Everything, the global torch RNG included (restored after the loader drew its seed).
    same_state(end_whole, end_killed)
    records = read_metrics(killed / "metrics.jsonl")
    assert [r["step"] for r in records] == list(range(1, steps + 1))  # nothing logged twice or lost
    assert steady_metrics(killed / "metrics.jsonl", "images_per_s") == steady_metrics(
        whole / "metrics.jsonl", "images_per_s"
    )
