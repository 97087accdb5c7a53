"""Launching 2 CPU processes over gloo the two documented ways: accelerate's launcher with
configs/accelerate/cpu_2proc.yaml, and torchrun (both with ACCELERATE_USE_CPU=true)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from expr_common.paths import repo_root

REPO = repo_root()
REPLICAS = Path(__file__).resolve().parent / "replicas.py"
CPU_2PROC = REPO / "configs" / "accelerate" / "cpu_2proc.yaml"
# The documented launch lines, with this interpreter's environment.
ACCELERATE = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(CPU_2PROC)]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
TWO_PROCESSES = "accelerate: 2 process(es), DistributedType.MULTI_CPU (gloo)"  # the trainers' log line


@dataclass
class Launched:
    output: str  # stdout + stderr of every process
    wall_s: float


def launch(launcher: list[str], args: list[str], timeout: int = 300) -> Launched:
    """Run ``launcher + args`` from the repo root with 2 CPU processes; fails the test on a non-zero exit."""
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1", "EXPR_PROGRESS": "0"}
    started = time.perf_counter()
    command = [*launcher, *args]
    try:
        done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as late:
        output = "".join(_text(x) for x in (late.stdout, late.stderr))
        raise AssertionError(f"{' '.join(command)} ran past {timeout} s:\n{output[-6000:]}") from None
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    return Launched(output, time.perf_counter() - started)


def _text(data: bytes | str | None) -> str:
    return data.decode(errors="replace") if isinstance(data, bytes) else data or ""


def run_files(run: Path) -> list[str]:
    """The files of a run directory, relative, with TensorBoard's per-run names (time, host, pid) masked."""
    names = []
    for path in (p for p in run.rglob("*") if p.is_file()):
        parts = list(path.relative_to(run).parts)
        if parts[0] == "tb":
            parts = ["tb", *("<run>" if part[:1].isdigit() else part for part in parts[1:-1])]
            parts.append("events.out.tfevents.*" if path.name.startswith("events.out") else path.name)
        names.append("/".join(parts))
    return sorted(names)
