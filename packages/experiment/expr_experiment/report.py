"""The demo chain's ``report.md`` (and ``report.json`` with the same numbers), from the files its steps
wrote: the recognizer runs' ``summary.json``, the FID report, the class-fidelity JSON, the GAN's grids.

Every number in the report is read from a metrics file (:mod:`expr_experiment.report_tables`) and nowhere
else computed; ``report.json`` names the file each one came from, so a test can check the report against
them. ``expr-experiment report`` (:mod:`expr_experiment.report_command`) writes it again.
"""

from __future__ import annotations

import json
from pathlib import Path

from expr_common.atomic import write_json, write_text
from expr_common.paths import resolve_path
from expr_experiment.chain_config import ChainConfig
from expr_experiment.layout import BASELINE_ROW, FIDELITY_JSON, ChainDir
from expr_experiment.pretrain_start import modality_overrides
from expr_experiment.report_figures import plot_curves, plot_per_class
from expr_experiment.report_filter import edit_counts_section
from expr_experiment.report_sections import (
    arm_lines,
    fusion_lines,
    header_lines,
    modality_lines,
    reading_lines,
    rel,
    synthetic_lines,
)
from expr_experiment.report_tables import (
    arm_table,
    fid_section,
    fidelity_section,
    modality_table,
    pretrain_table,
    verdict,
)
from recognizer.ablation import ablation_table, render_markdown
from recognizer.outputs import ABLATION_JSON, SELECTION_FILE


def _demote(markdown: str) -> list[str]:
    """Headings of an embedded markdown document two levels down (it sits inside a ``##`` section)."""
    return [("##" + line if line.startswith("#") else line) for line in markdown.strip().splitlines()]


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
            f"below them edited to one class: ![edit grid]({rel(grids[-1], root)})",
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
        "modality_overrides": modality_overrides(cfg, layout),  # pretrain.start_arms: from its checkpoint
        "row_seeds": {BASELINE_ROW: cfg.seeds},  # the chain trains the full model's row on every seed
    }


def write_report(cfg: ChainConfig, root: Path, timings: dict[str, float], wall_s: float | None) -> Path:
    """Gather every step's results into ``root/report.md`` and ``root/report.json``."""
    root = Path(root)
    layout = ChainDir(root, cfg.modality)
    layout.figures.mkdir(parents=True, exist_ok=True)
    arms = arm_table(layout, cfg.seeds, cfg.arms, cfg.score_split)
    # Every cell is trained already (summary.json): the table is read, never trained or written.
    ablation = ablation_table(**ablation_request(cfg, layout))
    fid_lines, fid = fid_section(root, cfg.target, split=cfg.fid.real_split)
    fidelity_lines, fidelity = fidelity_section(root)
    figures = (
        plot_per_class(arms, layout.per_class_png),
        plot_curves(layout, cfg.seeds, layout.curves_png, cfg.arms),
    )
    grids = layout.gan_grids(cfg.generate_domain)
    selection_file = layout.arm("baseline", 0) / SELECTION_FILE
    selection = json.loads(selection_file.read_text(encoding="utf-8"))
    statement = verdict(arms, cfg.target, cfg.sources)
    edited = edited_section(cfg, root) if cfg.edit.enabled else None
    modalities = modality_table(root, cfg)
    pretraining = pretrain_table(root, cfg, modalities) if cfg.pretrain.enabled else None
    md = header_lines(cfg, wall_s, statement) + arm_lines(cfg, layout, arms, figures)
    md += synthetic_lines(cfg, layout, grids[-1] if grids else None, fid_lines, fidelity_lines)
    md += (edited.pop("lines") if edited is not None else []) + fusion_lines(layout, selection)
    md += modality_lines(cfg, modalities, pretraining)
    md += ["", "## Ablation (the paper's Table 1 rows on this data, validation macro-F1)", ""]
    md += [*_demote(render_markdown(ablation)), ""] + reading_lines(cfg, timings)
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
            "file": str(selection_file),
            **{k: selection.get(k) for k in ("m", "n", "window", "grid")},
        },
        "ablation": {"file": str(layout.ablation / ABLATION_JSON)},
    }
    write_json(layout.report_json, numbers)
    return report_md
