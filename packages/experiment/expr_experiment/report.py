"""The demo chain's ``report.md`` (and ``report.json`` with the same numbers), from the files its steps
wrote: the recognizer runs' ``summary.json``, the FID report, the class-fidelity JSON, the GAN's grids.

Every number in the report is read from a metrics file (:mod:`expr_experiment.report_tables`) and nowhere
else computed; ``report.json`` names the file each one came from, so a test can check the report against
them. ``expr-experiment report`` (:mod:`expr_experiment.report_command`) writes it again.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import torch

from expr_common.atomic import write_json, write_text
from expr_common.labels import CLASS_NAMES
from expr_common.paths import resolve_path
from expr_experiment.chain_config import ChainConfig
from expr_experiment.layout import BASELINE_ROW, FIDELITY_JSON, ChainDir
from expr_experiment.report_figures import plot_curves, plot_per_class
from expr_experiment.report_filter import edit_counts_section
from expr_experiment.report_tables import (
    ARM_LABELS,
    arm_table,
    fid_section,
    fidelity_section,
    modality_table,
    pretrain_lines,
    pretrain_table,
    seed_row,
    verdict,
)
from recognizer.ablate import MODALITIES, ablation_table, render_markdown
from recognizer.outputs import ABLATION_JSON, CONFUSION_FILE, FUSION_GRID_FILE, SELECTION_FILE

SPLIT_NAMES = {"val": "Validation", "test": "Test"}


def _demote(markdown: str) -> list[str]:
    """Headings of an embedded markdown document two levels down (it sits inside a ``##`` section)."""
    return [("##" + line if line.startswith("#") else line) for line in markdown.strip().splitlines()]


def _rel(path: Path, root: Path) -> str:
    return os.path.relpath(path, root)


def _or_dash(value) -> str:
    return "-" if value is None else f"{value:.4f}"


def _share(count: int | None, total: int, rate: float) -> str:
    """``count of total (rate)``, the rate to two decimals of a percent: 269 of 299 is 89.97%, not 90.0%,
    which a goal of 90% would read as met."""
    return f"{count} of {total} clips ({rate:.2%})" if count is not None else f"{rate:.2%} of the clips"


def edited_section(cfg: ChainConfig, root: Path) -> dict:
    """The + edited arm's inputs: the editing GAN's last grid, the edits' FID beside the floor, how well
    they keep their people (``edit_report.json``) and their class fidelity; ``lines`` for report.md."""
    layout = ChainDir(root, cfg.modality)
    grids = layout.gan_edit_grids(cfg.generate_domain)
    fid_lines, fid = fid_section(root, cfg.target, layout.fid_edit_report, "edited", "val")
    fidelity_lines, fidelity = fidelity_section(root, layout.fidelity_edit / FIDELITY_JSON)
    identity = json.loads(layout.edit_report.read_text(encoding="utf-8"))
    lines = ["## Edited real faces (the + edited arm)", ""]
    if grids:
        lines += [
            f"Last grid of the editing GAN: real {cfg.target} training faces in the first row, each row "
            f"below them edited to one class: ![edit grid]({_rel(grids[-1], root)})",
            "",
        ]
    lines += [
        "### FID / KID of the edits",
        "",
        "Against the real validation videos (none of them edited) and their own floor: an edit keeps its "
        "source's person and background, so against the training frames it was made from it would score "
        "better than real data.",
        "",
        *fid_lines,
        "",
    ]
    own = identity.get("nearest_own_source")
    lines += [
        "### Identity",
        "",
        f"{identity['clips']} edited clips of {identity['source_windows']} training windows "
        f"({identity['subjects']} subjects"
        + (f"; windows of {', '.join(identity['source_classes'])}" if identity.get("source_classes") else "")
        + "). Mean change outside the mask "
        f"{_or_dash(identity['mean_abs_change_outside_mask'])}, inside it "
        f"{_or_dash(identity['mean_abs_change_inside_mask'])} (pixel range 0-1"
        + ("; '-': the mask never passed 0.5" if identity["mean_abs_change_inside_mask"] is None else "")
        + "); the edited face is nearer its own source than any other subject's face in "
        + (
            _share(identity.get("nearest_own_source_clips"), identity["compared"], own)
            if own is not None
            else "-"
        )
        + ".",
        "",
        "### Class fidelity of the edits",
        "",
        *fidelity_lines,
        "",
    ]
    count_lines, counts = edit_counts_section(layout)
    return {
        "lines": lines + count_lines,
        "counts": counts,
        "fid": fid,
        "fidelity": fidelity,
        "identity": {"file": str(layout.edit_report), **identity},
    }


def ablation_request(cfg: ChainConfig, layout: ChainDir) -> dict:
    """The chain's ablation table as ``recognizer.ablate`` takes it: its folder, rows, seeds, overrides."""
    return {
        "cfg": resolve_path(cfg.recognizer),
        "run_dir": layout.ablation,
        "seeds": cfg.ablation_seeds,
        "rows": cfg.ablation_rows,
        "modalities": cfg.ablation_modalities,
        "overrides": [*cfg.recognizer_sets, *cfg.recognizer_overrides],
        "row_seeds": {BASELINE_ROW: cfg.seeds},  # the chain trains the full model's row on every seed
    }


def write_report(cfg: ChainConfig, root: Path, timings: dict[str, float], wall_s: float | None) -> Path:
    """Gather every step's results into ``root/report.md`` and ``root/report.json``."""
    root = Path(root)
    layout = ChainDir(root, cfg.modality)
    figures = layout.figures
    figures.mkdir(parents=True, exist_ok=True)
    arms = arm_table(layout, cfg.seeds, cfg.arms, cfg.score_split)
    # Every cell is trained already (summary.json): the table is read, never trained or written.
    ablation = ablation_table(**ablation_request(cfg, layout))
    fid_lines, fid = fid_section(root, cfg.target, split=cfg.fid.real_split)
    fidelity_lines, fidelity = fidelity_section(root)
    per_class_png = plot_per_class(arms, layout.per_class_png)
    curves_png = plot_curves(layout, cfg.seeds, layout.curves_png, cfg.arms)
    grids = layout.gan_grids(cfg.generate_domain)
    grid = grids[-1] if grids else None
    baseline0 = layout.arm("baseline", 0)
    selection = json.loads((baseline0 / SELECTION_FILE).read_text(encoding="utf-8"))
    statement = verdict(arms, cfg.target, cfg.sources)

    md = [
        "# GAN-augmented expression recognition: demo report",
        "",
        f"Written {time.strftime('%Y-%m-%d %H:%M')} on {platform.node() or 'this machine'} "
        f"({platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}, "
        f"{'CUDA' if torch.cuda.is_available() else 'no GPU'}). Corpus preset `{cfg.preset}`; "
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
        "## Recognizer arms",
        "",
        f"{SPLIT_NAMES[cfg.score_split]} macro-F1 on {cfg.target} (per frame, the ABAW metric) of each run's "
        "best checkpoint, after the (m, n) fusion grid search and the smoothing window, both chosen on "
        "validation; "
        f"mean +- sample std over {cfg.seeds} seeds.",
        "",
        "| arm | macro-F1 | seeds |",
        "|---|---|---|",
    ]
    md += [seed_row(ARM_LABELS[arm], body) for arm, body in arms.items()]
    md += [
        "",
        "Per-class F1 (mean over seeds):",
        "",
        "| class | " + " | ".join(ARM_LABELS[a] for a in arms) + " |",
    ]
    md.append("|---" * (len(arms) + 1) + "|")
    for name in CLASS_NAMES:
        cells = [arms[a]["per_class_f1"][name] for a in arms]
        md.append(f"| {name} | " + " | ".join("-" if v is None else f"{v:.3f}" for v in cells) + " |")
    md += [
        "",
        f"![per-class F1]({_rel(per_class_png, root)})",
        "",
        f"![training curves]({_rel(curves_png, root)})",
    ]
    md += ["", "Confusion matrices (validation, seed 0):", ""]
    for arm, runs in layout.arm_runs(cfg.seeds, cfg.arms).items():
        md.append(f"- {ARM_LABELS[arm]}: ![{arm}]({_rel(runs[0] / CONFUSION_FILE, root)})")
    md += ["", "## Synthetic data", ""]
    if grid is not None:
        md += [
            f"Last sample grid of the GAN (rows = classes, {cfg.target} style): ![grid]({_rel(grid, root)})",
            "",
        ]
    md += ["### FID / KID", "", *fid_lines, ""]
    md += [
        "### Class fidelity",
        "",
        "How often the baseline recognizer (trained on real data only, seed 0) recognises each class of the "
        "synthetic clips (visual branch), beside its rate on real validation data of that class.",
        "",
        *fidelity_lines,
        "",
        f"![synthetic confusion]({_rel(layout.fidelity_confusion, root)})",
        "",
    ]
    edited = edited_section(cfg, root) if cfg.edit.enabled else None
    if edited is not None:
        md += edited.pop("lines")
    md += ["## Fusion grid (baseline, seed 0)", ""]
    if selection.get("grid") is not None:
        md.append("Validation macro-F1 of P = (m Pa + n Pv) / (m + n); rows m = 1..5, columns n = 1..5.")
        md += ["", "| m \\ n | 1 | 2 | 3 | 4 | 5 |", "|---|---|---|---|---|---|"]
        md += [
            f"| {m + 1} | " + " | ".join(f"{v:.3f}" for v in row) + " |"
            for m, row in enumerate(selection["grid"])
        ]
        md += [
            "",
            f"Chosen m={selection['m']}, n={selection['n']}, smoothing window {selection['window']}.",
            "",
        ]
        md.append(f"![fusion grid]({_rel(baseline0 / FUSION_GRID_FILE, root)})")
    modalities = modality_table(root, cfg)
    md += ["", "## V+A against V and A (+ GCSA + CF, the full model)", ""]
    md += ["| branches | macro-F1 | seeds |", "|---|---|---|"]
    md += [seed_row(MODALITIES[modality], body) for modality, body in modalities.items()]
    pretraining = pretrain_table(root, cfg, modalities) if cfg.pretrain.enabled else None
    if pretraining is not None:
        md += ["", "## Initial pre-training (the paper, section 2.2)", ""]
        md += pretrain_lines(pretraining, modalities, MODALITIES, cfg.target)
    md += [
        "",
        "## Ablation (the paper's Table 1 rows on this data, validation macro-F1)",
        "",
        *_demote(render_markdown(ablation)),
        "",
    ]
    md += ["## How to read this report", ""]
    md += [
        (
            "- The arms' and modalities' macro-F1 are measured on the test split, with the checkpoint, the "
            "fusion weights and the smoothing window chosen on validation; the ablation table reads "
            "validation."
            if cfg.score_split == "test"
            else "- Every macro-F1 is measured on the validation split that also chose the checkpoint, the "
            "fusion weights and the smoothing window, so it is optimistic; compare arms with each other, not "
            "with the paper's numbers."
        ),
        "- A difference smaller than the seed-to-seed std is noise.",
        "- FID below 2,048 images per side is biased upwards; the floor row (real vs real at the same N) is "
        "the value a perfect generator would get here.",
        "- Class fidelity near the real rate means the GAN's class conditioning carries the expression.",
        "",
        "## Step times",
        "",
        "| step | seconds |",
        "|---|---|",
    ]
    md += [f"| {name} | {seconds:.0f} |" for name, seconds in timings.items()]
    report_md = write_text(layout.report, "\n".join(md) + "\n")
    numbers = {
        "wall_s": wall_s,
        "timings_s": timings,
        "arms": arms,
        "modalities": modalities,
        "pretraining": pretraining,
        "verdict": statement,
        "fid": fid,
        "fidelity": fidelity,
        "edited": edited,
        "fusion": {
            "file": str(baseline0 / SELECTION_FILE),
            **{k: selection.get(k) for k in ("m", "n", "window", "grid")},
        },
        "ablation": {"file": str(layout.ablation / ABLATION_JSON)},
    }
    write_json(layout.report_json, numbers)
    return report_md
