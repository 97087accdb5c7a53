"""``expr-experiment chain``: the whole GAN-augmentation experiment in one command (``make demo``), on the
procedural corpus or on any data config that names a target and sources (:mod:`expr_experiment.chain_data`).

corpus (when a preset asks) -> check -> prepare -> GAN training -> target-style samples -> FID / KID /
per-class FID with the real-vs-real floor -> class fidelity -> recognizer baseline, +synthetic and
+source-real over N seeds, and the Table 1 ablation cells -> ``report.md`` (:mod:`expr_experiment.report`).

Every step is the project's own command line (:mod:`expr_experiment.tasks`); an interrupted chain
continues where it stopped (a GAN or recognizer run that was cut off resumes from its ``last.pt``). Where
each step writes is :class:`~expr_experiment.layout.ChainDir`'s business.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from expr_common.config import ConfigError, apply_overrides, from_dict, load_config, save_config, to_dict
from expr_common.data.config import load_data_config
from expr_common.paths import SYNTHETIC_PREFIX, cli_path, resolve_data_path, resolve_path
from expr_common.run_lock import lock_run_dir
from expr_common.runs import RunDir, add_override_argument, run_contents
from expr_experiment.chain_config import ChainConfig
from expr_experiment.chain_data import check_chain_data, source_configs
from expr_experiment.layout import BASELINE_ROW, PRETRAIN_TASK, ChainDir
from expr_experiment.pretrain_start import init_overrides, start_overrides
from expr_experiment.report import ablation_request, write_report
from expr_experiment.tasks import Task, run_tasks, tool
from recognizer.ablation import cell_config, write_ablation, write_cell_summary
from recognizer.run_config import RecognizerConfig

# Rough costs against one recognizer run, for the start order only (tasks.start_order): on the demo a GAN
# trains for about 6 recognizer runs' time and an FID for 2.
GAN_WEIGHT, FID_WEIGHT = 6.0, 2.0

DEMO_CHAIN = "configs/chain/demo.yaml"  # the repository's, whatever the current folder


def plan(cfg: ChainConfig, root: Path) -> list[Task]:
    """The chain's steps and what each waits for. Planning writes nothing: each recognizer step writes its
    run's ``cell.yaml`` when it starts (the report command plans only to learn the step names)."""
    layout = ChainDir(root, cfg.modality)
    data_cfg = load_data_config(resolve_path(cfg.data), cfg.data_overrides)
    cache = resolve_path(data_cfg.cache.root)
    expr_data, gan_aug = tool("expr-data"), tool("gan-aug")
    tasks = [
        Task("corpus", _corpus_commands(cfg, data_cfg)),
        Task(
            "prepare", [[expr_data, "prepare", "--config", cfg.data, *_sets(cfg.data_overrides)]], ("corpus",)
        ),
        Task("fid_weights", [[gan_aug, "fid-weights"]]),
    ]
    gan_cmd = [gan_aug, "train", "--config", cfg.gan, "--run-dir", str(layout.gan.root)]
    gan_cmd += _sets([*cfg.gan_sets, *cfg.gan_overrides])
    gan_cmd += _continue(layout.gan)
    tasks.append(Task("gan", [gan_cmd], ("prepare",), weight=GAN_WEIGHT))
    gen = cfg.generate
    amount = _amount(gen)
    tasks.append(
        Task(
            "generate",
            [
                [gan_aug, "generate", "--checkpoint", str(layout.gan.last_checkpoint)]
                + ["--out", str(layout.synthetic), "--domain", cfg.generate_domain, *amount]
                + ["--clip-len", str(gen.clip_len), "--truncation", str(gen.truncation)]
                + ["--seed", str(gen.seed), "--overwrite"]
            ],
            ("gan",),
        )
    )
    fid_cmd = _fid_command(cfg, layout, cache, layout.synthetic, layout.fid_report, cfg.fid.real_split)
    tasks.append(Task("fid", [fid_cmd], ("generate", "fid_weights"), weight=FID_WEIGHT))

    base = resolve_path(cfg.recognizer)  # loaded per cell with its overrides (the stem fits their data)
    rec_overrides = [*cfg.recognizer_sets, *cfg.recognizer_overrides]
    tasks += _cell_tasks(cfg, layout, base, rec_overrides)
    if cfg.pretrain.enabled:
        tasks += _pretrain_tasks(cfg, layout, base, rec_overrides, data_cfg)
    if cfg.edit.enabled:
        start, after = _start(cfg, layout, cfg.modality)
        tasks += _edit_tasks(cfg, layout, cache, base, [*rec_overrides, *start], after)
    judge = RunDir(layout.arm("baseline", 0))  # the baseline recognizer, trained on real data only
    tasks.append(
        Task(
            "fidelity",
            [
                [tool("expr-experiment"), "fidelity", "--checkpoint", str(judge.best_checkpoint)]
                + ["--synthetic", str(layout.synthetic), "--real", str(cache), "--split", cfg.fidelity_split]
                + ["--out", str(layout.fidelity)]
            ],
            ("generate", layout.arm_task("baseline", 0)),
        )
    )
    return tasks


def _cell_tasks(cfg: ChainConfig, layout: ChainDir, base: Path, overrides: list[str]) -> list[Task]:
    """The ablation cells and the arms (+ synthetic, + source-real, + classic augmentation), every seed."""
    tasks = []
    for row in cfg.ablation_rows:
        for modality in cfg.ablation_modalities:
            start, after = _start(cfg, layout, modality)
            # The full model's row gets every seed in each modality: V+A against V and against A is the
            # comparison a fusion method must win, and it needs the seed spread.
            for seed in range(cfg.seeds if row == BASELINE_ROW else cfg.ablation_seeds):
                cell = cell_config(base, [*overrides, *start], row, modality, seed)
                task = ChainDir.cell_task(row, modality, seed)
                run_dir = layout.cell(row, modality, seed)
                deps = ("prepare", *after)
                tasks.append(_recognizer_task(task, cell, run_dir, deps=deps, score=cfg.score_split))
    start, after = _start(cfg, layout, cfg.modality)
    for seed in range(cfg.seeds):
        cell = cell_config(base, [*overrides, *start], BASELINE_ROW, cfg.modality, seed)
        for arm, flags, deps in (
            ("synthetic", ["--with-synthetic", "--synthetic", str(layout.synthetic)], ("generate",)),
            ("source_real", ["--with-source-real"], ("prepare",)),
            *([("augmented", ["--with-augmented-copies"], ("prepare",))] if cfg.augmented_arm else []),
        ):
            task = layout.arm_task(arm, seed)
            run_dir = layout.arm(arm, seed)
            deps = (*deps, *after)
            tasks.append(_recognizer_task(task, cell, run_dir, flags, deps, score=cfg.score_split))
    return tasks


def _start(cfg: ChainConfig, layout: ChainDir, modality: str) -> tuple[list[str], tuple[str, ...]]:
    """The overrides and the dependency that start a cell of ``modality`` from the pre-training run, if
    it does (:func:`~expr_experiment.pretrain_start.start_overrides`)."""
    start = start_overrides(cfg, layout, modality)
    return start, ((PRETRAIN_TASK,) if start else ())


def _pretrain_tasks(cfg: ChainConfig, layout: ChainDir, base: Path, overrides: list[str], data_cfg):
    """The V-only pre-training run on the source domains, then each listed cell fine-tuned from it."""
    step = cfg.pretrain
    names = [s.name for s in data_cfg.sources]
    for key, listed in (("sources", cfg.pretrain_sources), ("val_sources", cfg.pretrain_val_sources)):
        unknown = [s for s in listed if s not in names]
        if unknown:
            raise ConfigError(f"pretrain.{key} {unknown} are not sources of {cfg.data} ({', '.join(names)})")
    sources, val = ",".join(cfg.pretrain_sources), ",".join(cfg.pretrain_val_sources)
    pre = cell_config(base, [*overrides, *step.overrides], BASELINE_ROW, "v", 0)
    pre = from_dict(
        apply_overrides(to_dict(pre), [f"train.train_sources=[{sources}]", f"train.val_sources=[{val}]"]),
        RecognizerConfig,
        "the chain's pre-training run",
    )
    tasks = [_recognizer_task(PRETRAIN_TASK, pre, layout.pretrain.root)]
    init = init_overrides(cfg, layout)
    for modality in cfg.pretrained_cells:
        for seed in range(cfg.seeds):
            cell = cell_config(base, [*overrides, *init], BASELINE_ROW, modality, seed)
            run_dir = layout.pretrained(modality, seed)
            task = ChainDir.pretrained_task(modality, seed)
            deps = (PRETRAIN_TASK,)
            tasks.append(_recognizer_task(task, cell, run_dir, deps=deps, score=cfg.score_split))
    return tasks


def _fid_command(
    cfg: ChainConfig, layout: ChainDir, cache: Path, fake: Path, out: Path, split: str
) -> list[str]:
    """``gan-aug fid`` of ``fake`` against the real target frames of ``split`` (and their floor)."""
    fid = cfg.fid
    cmd = [tool("gan-aug"), "fid", "--real", str(cache), "--real-domain", cfg.generate_domain]
    # --overwrite: the report is the chain's own file (a step run again replaces it)
    cmd += ["--real-split", split, "--fake", str(fake), "--out", str(out), "--overwrite"]
    cmd += ["--batch-size", str(fid.batch_size), "--cache-dir", str(layout.fid_cache)]
    cmd += [flag for flag, on in (("--per-class", fid.per_class), ("--kid", fid.kid)) if on]
    cmd += [flag for flag, on in (("--floor", fid.floor), ("--allow-small-n", fid.allow_small_n)) if on]
    return cmd + (["--n", str(fid.n)] if fid.n else [])


def _edit_tasks(cfg: ChainConfig, layout: ChainDir, cache: Path, base: Path, overrides, after=()):
    """The + edited arm: the editing GAN, its edits of real training windows, their FID (the same command
    as the sampled faces', on the edits) and class fidelity, and the recognizer trained with them (after
    ``after``: the pre-training its cells start from, if any)."""
    step, gan_aug = cfg.edit, tool("gan-aug")
    train = [gan_aug, "train", "--config", step.gan, "--run-dir", str(layout.gan_edit.root)]
    train += _sets([*cfg.edit_gan_sets, *step.gan_overrides]) + _continue(layout.gan_edit)
    amount = _amount(step)
    edit = [gan_aug, "generate", "--mode", "edit", "--checkpoint", str(layout.gan_edit.last_checkpoint)]
    edit += ["--from", cfg.data, *[x for o in cfg.data_overrides for x in ("--from-set", o)]]
    edit += ["--source", cfg.edit_source, *amount, "--clip-len", str(step.clip_len)]
    edit += ["--seed", str(step.seed), "--out", str(layout.edited), "--overwrite"]
    edit += ["--source-classes", ",".join(step.source_classes)] if step.source_classes else []
    # The edits keep their sources' people and backgrounds, so they are measured against the validation
    # videos (none of them edited), beside those videos' own floor; against the training frames they
    # were made from they would look better than real data.
    fid = _fid_command(cfg, layout, cache, layout.edited, layout.fid_edit_report, "val")
    judge = RunDir(layout.arm("baseline", 0))
    fidelity = [tool("expr-experiment"), "fidelity", "--checkpoint", str(judge.best_checkpoint)]
    fidelity += ["--synthetic", str(layout.edited), "--real", str(cache), "--split", cfg.fidelity_split]
    fidelity += ["--out", str(layout.fidelity_edit)]
    fidelity += ["--keep-recognised", str(layout.edited_kept)] if step.filter else []
    tasks = [
        Task("gan_edit", [train], ("prepare",), weight=GAN_WEIGHT),
        Task("edit", [edit], ("gan_edit",)),
        Task("fid_edit", [fid], ("edit", "fid_weights"), weight=FID_WEIGHT),
        Task("fidelity_edit", [fidelity], ("edit", layout.arm_task("baseline", 0))),
    ]
    if step.filter and cfg.seeds > 1:
        tasks.append(_kept_fidelity_task(cfg, layout, cache))
    trained_on, after_edits = (
        (layout.edited_kept, "fidelity_edit") if step.filter else (layout.edited, "edit")
    )
    for seed in range(cfg.seeds):
        cell = cell_config(base, overrides, BASELINE_ROW, cfg.modality, seed)
        flags = ["--with-synthetic", "--synthetic", str(trained_on)]
        run_dir, task = layout.arm("edited", seed), layout.arm_task("edited", seed)
        deps = (after_edits, *after)
        tasks.append(_recognizer_task(task, cell, run_dir, flags, deps, score=cfg.score_split))
    return tasks


def _kept_fidelity_task(cfg: ChainConfig, layout: ChainDir, cache: Path) -> Task:
    """Class fidelity of the kept edits judged by seed 1's baseline: seed 0's chose them, so its own
    verdict on them is 1.0 by construction."""
    judge = RunDir(layout.arm("baseline", 1))
    cmd = [tool("expr-experiment"), "fidelity", "--checkpoint", str(judge.best_checkpoint)]
    cmd += ["--synthetic", str(layout.edited_kept), "--real", str(cache), "--split", cfg.fidelity_split]
    cmd += ["--out", str(layout.fidelity_kept)]
    return Task("fidelity_kept", [cmd], ("fidelity_edit", layout.arm_task("baseline", 1)))


def _corpus_commands(cfg: ChainConfig, data_cfg) -> list[list[str]]:
    """The procedural corpus written first when the config names a preset; then ``expr-data check`` of the
    target and every source (counts, bad lines, unreadable media, in the step's log)."""
    expr_data, commands = tool("expr-data"), []
    if cfg.preset:
        out = resolve_data_path(f"data/{SYNTHETIC_PREFIX}{cfg.preset}")
        commands.append([expr_data, "synth", "--out", str(out), "--preset", cfg.preset])
        commands[-1] += ["--seed", str(cfg.corpus_seed), "--reuse"]
    for source in source_configs(cfg, data_cfg, str(cfg.data)).values():
        commands.append([expr_data, "check", str(resolve_data_path(source.root)), "--format", source.format])
    return commands


def _amount(step) -> list[str]:
    """How many samples a generate or edit step writes: fill_to_max, else counts, else per_class."""
    if step.fill_to_max:
        return ["--fill-to-max"]
    if step.counts:
        return ["--counts", ",".join(f"{name}={n}" for name, n in step.counts.items())]
    return ["--per-class", str(step.per_class)]


def _continue(run: RunDir) -> list[str]:
    """A step cut off mid-run resumes from its last.pt; one cut off before any checkpoint starts again
    (its partial attempt moved aside by --overwrite)."""
    if run.last_checkpoint.is_file():
        return ["--resume"]
    return ["--overwrite"] if run_contents(run) else []


def _sets(overrides: list[str]) -> list[str]:
    return [item for o in overrides for item in ("--set", o)]


def _recognizer_task(
    name: str,
    cell,
    run_dir: Path,
    flags: list[str] | None = None,
    deps: tuple[str, ...] = ("prepare",),
    *,
    score: str = "val",
) -> Task:
    """One recognizer training run of a resolved config (written beside the run, so the child trains
    exactly the cell the ablation table will describe); with ``score="test"`` its best checkpoint is then
    evaluated on the test split (``ChainDir.scored``), as selected on validation."""
    config = ChainDir.cell_config(run_dir)
    run = RunDir(run_dir)
    cmd = [tool("recognizer"), "train", "--config", str(config), "--run-dir", str(run_dir), *(flags or [])]
    commands = [cmd + _continue(run)]
    if score != "val":
        scored = ChainDir.scored(run_dir, score)
        commands.append(
            [tool("recognizer"), "evaluate", "--checkpoint", str(run.best_checkpoint), "--split", score]
            + ["--run-dir", str(scored.root), "--overwrite"]
        )
    return Task(
        name,
        commands,
        deps,
        before=lambda: save_config(cell, config),
        after=lambda: write_cell_summary(cell, run_dir),
    )


def run_chain(cfg: ChainConfig, root: Path) -> Path:
    """Run (or continue) the chain in ``root`` and write ``root/report.md``; returns the report path."""
    layout = ChainDir(root, cfg.modality)
    check_chain_data(cfg, load_data_config(resolve_path(cfg.data), cfg.data_overrides), "the chain config")
    lock_run_dir(root)  # one chain per folder: a second one would run the same steps into it
    save_config(cfg, layout.config)
    started = time.perf_counter()
    timings = run_tasks(plan(cfg, root), root, cfg.jobs)
    write_ablation(**ablation_request(cfg, layout))  # the table of the cells the tasks trained
    return write_report(cfg, root, timings, time.perf_counter() - started)


def stop_note(args: argparse.Namespace) -> str:
    """Ctrl-C or a full disk: what is kept, and how to go on."""
    done = ChainDir(Path(args.run_dir)).done
    return f"finished steps are kept in {done}; run the same command again to continue"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", type=cli_path, default=None, help="chain YAML (default: configs/chain/demo.yaml)"
    )
    parser.add_argument(
        "--run-dir", type=Path, default=Path("runs/demo"), help="output folder; rerun resumes"
    )
    add_override_argument(parser, example="seeds=1")


def run(args: argparse.Namespace) -> int:
    cfg = load_config(args.config or resolve_path(DEMO_CHAIN), ChainConfig, args.overrides)
    report = run_chain(cfg, Path(args.run_dir))
    print(f"report written to {report}")
    return 0
