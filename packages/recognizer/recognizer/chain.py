"""``recognizer chain``: the whole GAN-augmentation experiment in one command (``make demo``).

corpus -> check -> prepare -> GAN training -> Aff-Wild2-style samples -> FID / KID / per-class FID with the
real-vs-real floor -> class fidelity -> recognizer baseline, +synthetic and +source-real over N seeds, and
the Table 1 ablation cells -> ``report.md`` (recognizer/report.py).

Every step is the project's own command line, run as a child process with its log in ``DIR/logs/``; steps
that do not depend on each other run side by side (``jobs`` processes, one thread each). A finished step
leaves ``DIR/done/<step>``, so running the chain again skips it: an interrupted chain continues (a GAN or
recognizer run that was cut off resumes from its ``last.pt``).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from expr_common.config import load_config, save_config
from expr_common.data.config import load_data_config
from expr_common.logs import get_logger, progress
from expr_common.runs import RunDir, add_override_argument, resolve_data_path, resolve_path
from recognizer.ablate import ROWS, cell_config, write_cell_summary
from recognizer.settings import load_recognizer_config

log = get_logger("chain")
ARMS = ("baseline", "synthetic", "source_real")  # baseline = the + GCSA + CF, V+A ablation cell


@dataclass
class GenerateStep:
    domain: str = "affwild2"  # whose style the GAN draws
    fill_to_max: bool = True  # top every class up to the largest real class (else per_class)
    per_class: int = 0
    clip_len: int = 8  # frames per synthetic clip (the recognizer's K)
    truncation: float = 1.0
    seed: int = 0


@dataclass
class FidStep:
    n: int | None = None  # images per side; None = the smaller source
    per_class: bool = True
    kid: bool = True
    floor: bool = True  # the real-vs-real floor on two disjoint halves of the real target data
    allow_small_n: bool = True  # the demo corpus has far fewer than 2,048 faces; the report says so
    batch_size: int = 50


@dataclass
class ChainConfig:
    preset: str = "demo"  # `expr-data synth` preset written to data/synthetic_<preset>
    corpus_seed: int = 0
    data: str = "configs/data/synthetic_demo.yaml"
    data_overrides: list[str] = field(default_factory=list)  # --set style, for every step that reads data
    gan: str = "configs/gan_aug/demo.yaml"
    gan_overrides: list[str] = field(default_factory=list)
    recognizer: str = "configs/recognizer/demo.yaml"
    recognizer_overrides: list[str] = field(default_factory=list)
    seeds: int = 3  # per arm (baseline, + synthetic, + source-real)
    ablation_seeds: int = 1  # per Base / + GCSA cell; at most `seeds` (+ GCSA + CF cells get `seeds`)
    ablation_rows: list[str] = field(default_factory=lambda: list(ROWS))
    ablation_modalities: list[str] = field(default_factory=lambda: ["v", "a", "av"])
    generate: GenerateStep = field(default_factory=GenerateStep)
    fid: FidStep = field(default_factory=FidStep)
    jobs: int = 2  # child processes at once (each one thread): the CPU's cores
    fidelity_split: str = "val"

    def __post_init__(self) -> None:
        if "gcsa_cf" not in self.ablation_rows or "av" not in self.ablation_modalities:
            raise ValueError("the chain's baseline arm is the gcsa_cf / av ablation cell: keep both")
        if self.seeds < 1 or self.jobs < 1 or not 1 <= self.ablation_seeds <= self.seeds:
            raise ValueError("seeds and jobs must be >= 1, and 1 <= ablation_seeds <= seeds")


@dataclass
class Task:
    name: str
    commands: list[list[str]]  # run one after the other
    deps: tuple[str, ...] = ()
    after: Callable[[], object] | None = None  # run in this process once the commands succeeded


class ChainError(RuntimeError):
    pass


def _tool(name: str) -> str:
    """A console script of this environment (beside the running interpreter), whatever PATH says."""
    path = Path(sys.executable).with_name(name)
    return str(path) if path.exists() else name


def plan(cfg: ChainConfig, root: Path) -> list[Task]:
    """The chain's steps and what each waits for."""
    data_cfg = load_data_config(resolve_path(cfg.data), cfg.data_overrides)
    data_sets = [f"data_overrides=[{','.join(cfg.data_overrides)}]"] if cfg.data_overrides else []
    corpus = resolve_data_path(f"data/synthetic_{cfg.preset}")
    affwild2 = next(s for s in data_cfg.sources if s.format == "affwild2")
    cache = resolve_path(data_cfg.cache.root)
    expr_data, gan_aug = _tool("expr-data"), _tool("gan-aug")
    gan_run, synthetic = root / "gan", root / "synthetic"
    tasks = [
        Task(
            "corpus",
            [
                [expr_data, "synth", "--out", str(corpus), "--preset", cfg.preset]
                + ["--seed", str(cfg.corpus_seed), "--reuse"],
                [expr_data, "check", str(resolve_data_path(affwild2.root)), "--format", "affwild2"],
            ],
        ),
        Task(
            "prepare", [[expr_data, "prepare", "--config", cfg.data, *_sets(cfg.data_overrides)]], ("corpus",)
        ),
        Task("fid_weights", [[gan_aug, "fid-weights"]]),
    ]
    gan_cmd = [gan_aug, "train", "--config", cfg.gan, "--run-dir", str(gan_run)]
    gan_cmd += _sets([*data_sets, *cfg.gan_overrides])
    if RunDir(gan_run).last_checkpoint.is_file():
        gan_cmd.append("--resume")
    tasks.append(Task("gan", [gan_cmd], ("prepare",)))
    gen = cfg.generate
    amount = ["--fill-to-max"] if gen.fill_to_max else ["--per-class", str(gen.per_class)]
    tasks.append(
        Task(
            "generate",
            [
                [gan_aug, "generate", "--checkpoint", str(RunDir(gan_run).last_checkpoint)]
                + ["--out", str(synthetic), "--domain", gen.domain, *amount, "--clip-len", str(gen.clip_len)]
                + ["--truncation", str(gen.truncation), "--seed", str(gen.seed), "--overwrite"]
            ],
            ("gan",),
        )
    )
    fid = cfg.fid
    fid_cmd = [gan_aug, "fid", "--real", str(cache), "--real-domain", gen.domain, "--real-split", "train"]
    fid_cmd += ["--fake", str(synthetic), "--out", str(root / "fid" / "report.json")]
    fid_cmd += ["--batch-size", str(fid.batch_size), "--cache-dir", str(root / "fid" / "cache")]
    fid_cmd += [flag for flag, on in (("--per-class", fid.per_class), ("--kid", fid.kid)) if on]
    fid_cmd += [flag for flag, on in (("--floor", fid.floor), ("--allow-small-n", fid.allow_small_n)) if on]
    fid_cmd += ["--n", str(fid.n)] if fid.n else []
    tasks.append(Task("fid", [fid_cmd], ("generate", "fid_weights")))

    base = load_recognizer_config(resolve_path(cfg.recognizer))
    rec_overrides = [*data_sets, *cfg.recognizer_overrides]
    for row in cfg.ablation_rows:
        for modality in cfg.ablation_modalities:
            # The full model's row gets every seed in each modality: V+A against V and against A is the
            # comparison a fusion method must win, and it needs the seed spread.
            for seed in range(cfg.seeds if row == "gcsa_cf" else cfg.ablation_seeds):
                run_dir = root / "ablation" / f"{row}_{modality}" / f"seed{seed}"
                cell = cell_config(base, rec_overrides, row, modality, seed)
                tasks.append(_recognizer_task(f"ablation/{row}_{modality}/seed{seed}", cell, run_dir))
    baseline_cell = "ablation/gcsa_cf_av"
    for seed in range(cfg.seeds):
        cell = cell_config(base, rec_overrides, "gcsa_cf", "av", seed)
        for arm, flags, deps in (
            ("synthetic", ["--with-synthetic", "--synthetic", str(synthetic)], ("generate",)),
            ("source_real", ["--with-source-real"], ("prepare",)),
        ):
            run_dir = root / "arms" / arm / f"seed{seed}"
            tasks.append(_recognizer_task(f"arms/{arm}/seed{seed}", cell, run_dir, flags, deps))
    fidelity_ckpt = root / baseline_cell / "seed0"  # the baseline recognizer, trained on real data only
    tasks.append(
        Task(
            "fidelity",
            [
                [gan_aug, "fidelity", "--checkpoint", str(RunDir(fidelity_ckpt).best_checkpoint)]
                + ["--synthetic", str(synthetic), "--real", str(cache), "--split", cfg.fidelity_split]
                + ["--out", str(root / "fidelity")]
            ],
            ("generate", f"{baseline_cell}/seed0"),
        )
    )
    return tasks


def _sets(overrides: list[str]) -> list[str]:
    return [item for o in overrides for item in ("--set", o)]


def _recognizer_task(
    name: str, cell, run_dir: Path, flags: list[str] | None = None, deps: tuple[str, ...] = ("prepare",)
) -> Task:
    """One recognizer training run of a resolved config (written beside the run, so the child trains
    exactly the cell the ablation table will describe)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    config = run_dir / "cell.yaml"
    save_config(cell, config)
    cmd = [_tool("recognizer"), "train", "--config", str(config), "--run-dir", str(run_dir), *(flags or [])]
    if RunDir(run_dir).last_checkpoint.is_file():
        cmd.append("--resume")
    return Task(name, [cmd], deps, after=lambda: write_cell_summary(cell, run_dir))


def run_tasks(tasks: list[Task], root: Path, jobs: int) -> dict[str, float]:
    """Run the tasks respecting their dependencies, ``jobs`` at a time; returns seconds per task."""
    done_dir, logs = root / "done", root / "logs"
    done_dir.mkdir(parents=True, exist_ok=True)
    logs.mkdir(parents=True, exist_ok=True)
    names = {t.name for t in tasks}
    for task in tasks:
        missing = [d for d in task.deps if d not in names]
        if missing:
            raise ChainError(f"step {task.name} waits for unknown steps {missing}")
    marker = {t.name: done_dir / (t.name.replace("/", "__") + ".done") for t in tasks}
    finished = {t.name for t in tasks if marker[t.name].is_file()}
    timings: dict[str, float] = {}
    pending = [t for t in tasks if t.name not in finished]
    if finished:
        log.info("%d of %d steps already done (%s); continuing", len(finished), len(tasks), done_dir)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "EXPR_PROGRESS": "0"}
    bar = progress(total=len(tasks), desc="demo chain", unit="step")
    bar.update(len(finished))
    running: dict[Future, Task] = {}
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        while pending or running:
            ready = [t for t in pending if all(d in finished for d in t.deps)]
            for task in ready[: max(0, jobs - len(running))]:
                pending.remove(task)
                log_file = logs / (task.name.replace("/", "__") + ".log")
                log.info("start %s (log: %s)", task.name, log_file)
                running[pool.submit(_execute, task, log_file, env)] = task
            if not running:
                raise ChainError(f"steps {[t.name for t in pending]} wait for steps that cannot run")
            complete, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in complete:
                task = running.pop(future)
                seconds = future.result()  # re-raises a failed step's ChainError
                timings[task.name] = seconds
                marker[task.name].write_text(f"{seconds:.1f}\n")
                finished.add(task.name)
                bar.update(1)
                log.info("done  %s in %.0f s", task.name, seconds)
    bar.close()
    # Steps finished by an earlier call keep the time they took then (their marker holds it).
    return {t.name: timings.get(t.name) or float(marker[t.name].read_text() or 0) for t in tasks}


def _execute(task: Task, log_file: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
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


def run_chain(cfg: ChainConfig, root: Path) -> Path:
    """Run (or continue) the chain in ``root`` and write ``root/report.md``; returns the report path."""
    from recognizer.report import write_report

    root.mkdir(parents=True, exist_ok=True)
    save_config(cfg, root / "config.yaml")
    started = time.perf_counter()
    timings = run_tasks(plan(cfg, root), root, cfg.jobs)
    return write_report(cfg, root, timings, time.perf_counter() - started)


def add_chain_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default="configs/chain/demo.yaml", help="chain YAML (configs/chain/)")
    parser.add_argument(
        "--run-dir", type=Path, default=Path("runs/demo"), help="output folder; rerun resumes"
    )
    add_override_argument(parser, example="seeds=1")


def chain_command(args: argparse.Namespace) -> int:
    cfg = load_config(resolve_path(args.config), ChainConfig, args.overrides)
    try:
        report = run_chain(cfg, Path(args.run_dir))
    except ChainError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"report written to {report}")
    return 0
