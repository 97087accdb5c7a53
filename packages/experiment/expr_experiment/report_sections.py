"""The sections of the chain's ``report.md``, each a function of numbers already read (by
:mod:`expr_experiment.report_tables`) that returns its markdown lines. They read no file and compute no
number; :func:`expr_experiment.report.write_report` puts them together."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path
from typing import Any

import torch

from expr_common.labels import CLASS_NAMES
from expr_experiment.chain_config import ChainConfig
from expr_experiment.layout import ChainDir
from expr_experiment.report_tables import ARM_LABELS, pretrain_lines, seed_row
from recognizer.ablation import MODALITIES
from recognizer.outputs import CONFUSION_FILE, FUSION_GRID_FILE

SPLIT_NAMES = {"val": "Validation", "test": "Test"}


def rel(path: Path, root: Path) -> str:
    return os.path.relpath(path, root)


def header_lines(cfg: ChainConfig, wall_s: float | None, statement: str) -> list[str]:
    """Title, machine, wall time and the plain answer to "did the synthetic data help?"."""
    data = f"Corpus preset `{cfg.preset}`" if cfg.preset else f"Target `{cfg.target}`, sources "
    data += "" if cfg.preset else ", ".join(f"`{s}`" for s in cfg.sources)
    return [
        "# GAN-augmented expression recognition: chain report",
        "",
        f"Written {time.strftime('%Y-%m-%d %H:%M')} on {platform.node() or 'this machine'} "
        f"({platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}, "
        f"{'CUDA' if torch.cuda.is_available() else 'no GPU'}). {data}; "
        + (
            f"chain wall time **{wall_s / 60:.1f} min** this call (see the step times at the end)."
            if wall_s is not None
            else "report written again from the finished steps (their times are at the end)."
        ),
        "",
        "## Did the synthetic data help?",
        "",
        statement,
        "",
    ]


def arm_lines(
    cfg: ChainConfig, layout: ChainDir, arms: dict[str, Any], figures: tuple[Path, Path]
) -> list[str]:
    """The arms' macro-F1 and per-class F1, the figures and the confusion matrices."""
    root = layout.root
    md = [
        "## Recognizer arms",
        "",
        f"{SPLIT_NAMES[cfg.score_split]} macro-F1 on {cfg.target} (per frame, the ABAW metric) of each run's "
        "best checkpoint, after the (m, n) fusion grid search and the smoothing window, both chosen on "
        f"validation; mean +- sample std over {cfg.seeds} seeds.",
        "",
        "| arm | macro-F1 | seeds |",
        "|---|---|---|",
        *[seed_row(ARM_LABELS[arm], body) for arm, body in arms.items()],
        "",
        "Per-class F1 (mean over seeds):",
        "",
        "| class | " + " | ".join(ARM_LABELS[a] for a in arms) + " |",
        "|---" * (len(arms) + 1) + "|",
    ]
    for name in CLASS_NAMES:
        cells = [arms[a]["per_class_f1"][name] for a in arms]
        md.append(f"| {name} | " + " | ".join("-" if v is None else f"{v:.3f}" for v in cells) + " |")
    per_class_png, curves_png = figures
    md += [
        "",
        f"![per-class F1]({rel(per_class_png, root)})",
        "",
        f"![training curves]({rel(curves_png, root)})",
    ]
    md += ["", "Confusion matrices (validation, seed 0):", ""]
    for arm, runs in layout.arm_runs(cfg.seeds, cfg.arms).items():
        md.append(f"- {ARM_LABELS[arm]}: ![{arm}]({rel(runs[0] / CONFUSION_FILE, root)})")
    return md


def synthetic_lines(
    cfg: ChainConfig, layout: ChainDir, grid: Path | None, fid_lines: list[str], fidelity_lines: list[str]
) -> list[str]:
    """The sampling GAN's last grid, its FID / KID and its class fidelity."""
    root = layout.root
    md = ["", "## Synthetic data", ""]
    if grid is not None:
        md += [
            f"Last sample grid of the GAN (rows = classes, {cfg.target} style): ![grid]({rel(grid, root)})",
            "",
        ]
    return md + [
        "### FID / KID",
        "",
        *fid_lines,
        "",
        "### Class fidelity",
        "",
        "How often the baseline recognizer (trained on real data only, seed 0) recognises each class of the "
        "synthetic clips (visual branch), beside its rate on real validation data of that class.",
        "",
        *fidelity_lines,
        "",
        f"![synthetic confusion]({rel(layout.fidelity_confusion, root)})",
        "",
    ]


def fusion_lines(layout: ChainDir, selection: dict[str, Any]) -> list[str]:
    """The baseline's (m, n) grid and the chosen fusion and smoothing."""
    md = ["## Fusion grid (baseline, seed 0)", ""]
    if selection.get("grid") is None:
        return md
    md.append("Validation macro-F1 of P = (m Pa + n Pv) / (m + n); rows m = 1..5, columns n = 1..5.")
    md += ["", "| m \\ n | 1 | 2 | 3 | 4 | 5 |", "|---|---|---|---|---|---|"]
    md += [
        f"| {m + 1} | " + " | ".join(f"{v:.3f}" for v in row) + " |"
        for m, row in enumerate(selection["grid"])
    ]
    md += ["", f"Chosen m={selection['m']}, n={selection['n']}, smoothing window {selection['window']}.", ""]
    baseline0 = layout.arm("baseline", 0)
    return md + [f"![fusion grid]({rel(baseline0 / FUSION_GRID_FILE, layout.root)})"]


def modality_lines(
    cfg: ChainConfig, modalities: dict[str, Any], pretraining: dict[str, Any] | None
) -> list[str]:
    """V+A against V and A, and the cells fine-tuned from the pre-training run beside them."""
    md = ["", "## V+A against V and A (+ GCSA + CF, the full model)", ""]
    md += ["| branches | macro-F1 | seeds |", "|---|---|---|"]
    md += [seed_row(MODALITIES[modality], body) for modality, body in modalities.items()]
    if pretraining is not None:
        md += ["", "## Initial pre-training (the paper, section 2.2)", ""]
        md += pretrain_lines(pretraining, modalities, MODALITIES, cfg.target)
    return md


def reading_lines(cfg: ChainConfig, timings: dict[str, float]) -> list[str]:
    """How to read the numbers, and every step's time."""
    split = (
        "- The arms' and modalities' macro-F1 are measured on the test split, with the checkpoint, the "
        "fusion weights and the smoothing window chosen on validation; the ablation table reads validation."
        if cfg.score_split == "test"
        else "- Every macro-F1 is measured on the validation split that also chose the checkpoint, the "
        "fusion weights and the smoothing window, so it is optimistic; compare arms with each other, not "
        "with the paper's numbers."
    )
    return [
        "## How to read this report",
        "",
        split,
        "- A difference smaller than the seed-to-seed std is noise.",
        "- FID below 2,048 images per side is biased upwards; the floor row (real vs real at the same N) is "
        "the value a perfect generator would get here.",
        "- Class fidelity near the real rate means the GAN's class conditioning carries the expression.",
        "",
        "## Step times",
        "",
        "| step | seconds |",
        "|---|---|",
        *[f"| {name} | {seconds:.0f} |" for name, seconds in timings.items()],
    ]
