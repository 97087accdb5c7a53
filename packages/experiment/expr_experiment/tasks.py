"""Running the chain's steps: each step is one or more of the project's command lines, run as child
processes with their log in ``DIR/logs/``; steps that do not depend on each other run side by side (``jobs``
processes, one thread each). A finished step leaves ``DIR/done/<step>``, so running again skips it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Collection
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from expr_common.atomic import write_text
from expr_common.errors import ExprError
from expr_common.logs import get_logger, progress
from expr_experiment.layout import ChainDir

log = get_logger("chain")


@dataclass
class Task:
    name: str
    commands: list[list[str]]  # run one after the other
    deps: tuple[str, ...] = ()
    before: Callable[[], object] | None = None  # run in this process before the commands (their inputs)
    after: Callable[[], object] | None = None  # run in this process once the commands succeeded
    # Rough cost relative to one recognizer run, for the start order only (:func:`start_order`).
    weight: float = 1.0


class ChainError(ExprError, RuntimeError):
    pass


def tool(name: str) -> str:
    """A console script of this environment (beside the running interpreter), whatever PATH says."""
    path = Path(sys.executable).with_name(name)
    return str(path) if path.exists() else name


def start_order(tasks: list[Task], done: Collection[str] = ()) -> dict[str, tuple[float, int]]:
    """Sort key per task: the longest chain of weights from it to the end of the plan, longest first
    (critical-path scheduling), then plan order; steps in ``done`` weigh nothing. A step that others wait
    for, such as the edits behind the editing GAN, starts before a recognizer run that nothing waits for,
    so the chain does not end on one busy process and one idle one."""
    by_name = {t.name: t for t in tasks}
    dependents: dict[str, list[str]] = {t.name: [] for t in tasks}
    for t in tasks:
        for d in t.deps:
            dependents[d].append(t.name)
    path: dict[str, float] = {}
    visiting: set[str] = set()

    def longest(name: str) -> float:
        if name not in path:
            if name in visiting:
                raise ChainError(f"steps wait for each other in a cycle through {name}")
            visiting.add(name)
            own = 0.0 if name in done else by_name[name].weight
            path[name] = own + max((longest(n) for n in dependents[name]), default=0.0)
        return path[name]

    return {t.name: (-longest(t.name), i) for i, t in enumerate(tasks)}


def run_tasks(tasks: list[Task], root: Path, jobs: int) -> dict[str, float]:
    """Run the tasks respecting their dependencies, ``jobs`` at a time; returns seconds per task."""
    layout = ChainDir(root)
    done_dir = layout.done
    done_dir.mkdir(parents=True, exist_ok=True)
    layout.logs.mkdir(parents=True, exist_ok=True)
    names = {t.name for t in tasks}
    for task in tasks:
        missing = [d for d in task.deps if d not in names]
        if missing:
            raise ChainError(f"step {task.name} waits for unknown steps {missing}")
    marker = {t.name: layout.marker(t.name) for t in tasks}
    finished = {t.name for t in tasks if marker[t.name].is_file()}
    timings: dict[str, float] = {}
    order = start_order(tasks, finished)
    pending = sorted((t for t in tasks if t.name not in finished), key=lambda t: order[t.name])
    if finished:
        log.info("%d of %d steps already done (%s); continuing", len(finished), len(tasks), done_dir)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "EXPR_PROGRESS": "0"}
    bar = progress(total=len(tasks), desc="chain", unit="step")
    bar.update(len(finished))
    running: dict[Future, Task] = {}
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        while pending or running:
            ready = [t for t in pending if all(d in finished for d in t.deps)]
            for task in ready[: max(0, jobs - len(running))]:
                pending.remove(task)
                log_file = layout.log(task.name)
                log.info("start %s (log: %s)", task.name, log_file)
                running[pool.submit(_execute, task, log_file, env)] = task
            if not running:
                raise ChainError(f"steps {[t.name for t in pending]} wait for steps that cannot run")
            complete, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in complete:
                task = running.pop(future)
                seconds = future.result()  # re-raises a failed step's ChainError
                timings[task.name] = seconds
                write_text(marker[task.name], f"{seconds:.1f}\n")
                finished.add(task.name)
                bar.update(1)
                log.info("done  %s in %.0f s", task.name, seconds)
    bar.close()
    # Steps finished by an earlier call keep the time they took then (their marker holds it).
    return {t.name: timings.get(t.name) or float(marker[t.name].read_text() or 0) for t in tasks}


def _execute(task: Task, log_file: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    if task.before is not None:
        task.before()
    with open(log_file, "a", encoding="utf-8") as out:
        for cmd in task.commands:
            out.write("$ " + " ".join(cmd) + "\n")
            out.flush()
            code = subprocess.call(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
            if code != 0:
                tail = log_file.read_text(encoding="utf-8", errors="replace").splitlines()[-15:]
                raise ChainError(
                    f"step {task.name} failed (exit {code}): {' '.join(cmd)}\n"
                    f"last lines of {log_file}:\n" + "\n".join(tail)
                )
    if task.after is not None:
        task.after()
    return time.perf_counter() - started
