"""The demo chain's ``report.md`` (and ``report.json`` with the same numbers), from the files its steps
wrote: the recognizer runs' ``summary.json``, the FID report, the class-fidelity JSON, the GAN's grids.

Every number in the report is read from a metrics file here and nowhere else computed; ``report.json``
names the file each one came from, so a test can check the report against them.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from expr_common.labels import CLASS_NAMES
from expr_common.runs import read_metrics, resolve_path
from recognizer.ablate import MODALITIES, SUMMARY_FILE, ablate, render_markdown

ARM_LABELS = {
    "baseline": "Baseline (real Aff-Wild2)",
    "synthetic": "+ synthetic",
    "source_real": "+ source-real",
}


def _summary(run_dir: Path) -> dict[str, Any]:
    path = run_dir / SUMMARY_FILE
    summary = json.loads(path.read_text(encoding="utf-8"))
    summary["_file"] = str(path)
    return summary


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def arm_runs(root: Path, seeds: int) -> dict[str, list[Path]]:
    return {
        "baseline": [root / "ablation" / "gcsa_cf_av" / f"seed{s}" for s in range(seeds)],
        "synthetic": [root / "arms" / "synthetic" / f"seed{s}" for s in range(seeds)],
        "source_real": [root / "arms" / "source_real" / f"seed{s}" for s in range(seeds)],
    }


def seed_stats(runs: list[Path], per_class: bool = False) -> dict[str, Any]:
    """The selected validation macro-F1 of each seed's run (best checkpoint, fusion and smoothing chosen on
    validation), their mean and sample std, the summary files, and optionally the mean per-class F1."""
    summaries = [_summary(r) for r in runs]
    f1 = [s["selection"]["val_macro_f1"] for s in summaries]
    mean, std = _mean_std(f1)
    body: dict[str, Any] = {"seeds": f1, "mean": mean, "std": std, "files": [s["_file"] for s in summaries]}
    if per_class:
        body["per_class_f1"] = {}
        for name in CLASS_NAMES:
            values = [s["selection"]["val_metrics"]["per_class_f1"][name] for s in summaries]
            values = [v for v in values if v is not None]
            body["per_class_f1"][name] = statistics.fmean(values) if values else None
    return body


def arm_table(root: Path, seeds: int) -> dict[str, Any]:
    """Per arm: :func:`seed_stats` with the per-class F1."""
    return {arm: seed_stats(runs, per_class=True) for arm, runs in arm_runs(root, seeds).items()}


def modality_table(root: Path, cfg) -> dict[str, Any]:
    """The + GCSA + CF cells per modality over every seed."""
    return {
        modality: seed_stats(
            [root / "ablation" / f"gcsa_cf_{modality}" / f"seed{s}" for s in range(cfg.seeds)]
        )
        for modality in cfg.ablation_modalities
    }


def _seed_row(label: str, body: dict[str, Any]) -> str:
    seeds_text = ", ".join(f"{v:.3f}" for v in body["seeds"])
    return f"| {label} | {body['mean']:.3f} +- {body['std']:.3f} | {seeds_text} |"


def verdict(arms: dict[str, Any]) -> str:
    """A plain statement: did +synthetic beat the baseline, by how much relative to the seed spread, and on
    which classes."""
    base, syn, src = arms["baseline"], arms["synthetic"], arms["source_real"]
    diff = syn["mean"] - base["mean"]
    spread = max(base["std"], syn["std"], 1e-9)
    n = len(base["seeds"])
    spread_text = (
        f"against a seed-to-seed std of {base['std']:.3f} (baseline) and {syn['std']:.3f} (+ synthetic) "
        f"over {n} seeds"
    )
    raised = f"The synthetic data raised macro-F1 by {diff:+.3f}"
    if diff > spread:
        text = f"**Yes.** {raised}, more than the spread ({spread_text})."
    elif diff > 0:
        text = f"**Not clearly.** {raised}, within the spread ({spread_text})."
    else:
        text = f"**No.** With the synthetic data macro-F1 changed by {diff:+.3f} ({spread_text})."
    gains, losses = [], []
    for name in CLASS_NAMES:
        b, s = base["per_class_f1"][name], syn["per_class_f1"][name]
        if b is None or s is None:
            continue
        if s - b > spread:
            gains.append(f"{name} ({s - b:+.3f})")
        elif b - s > spread:
            losses.append(f"{name} ({s - b:+.3f})")
    text += " Classes that gained more than the spread: " + (", ".join(gains) or "none") + "."
    text += " Classes that lost more than the spread: " + (", ".join(losses) or "none") + "."
    text += (
        f" For comparison, adding the real AFEW and CK+ samples directly (+ source-real) changed macro-F1 by "
        f"{src['mean'] - base['mean']:+.3f}."
    )
    return text


def _plot_per_class(arms: dict[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 3.6))
    x = np.arange(len(CLASS_NAMES))
    width = 0.8 / len(arms)
    for k, (arm, body) in enumerate(arms.items()):
        values = [body["per_class_f1"][c] or 0.0 for c in CLASS_NAMES]
        ax.bar(x + (k - (len(arms) - 1) / 2) * width, values, width, label=ARM_LABELS[arm])
    ax.set_xticks(x, CLASS_NAMES, rotation=20)
    ax.set_ylabel("validation F1 (mean over seeds)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _plot_curves(root: Path, seeds: int, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    for arm, runs in arm_runs(root, seeds).items():
        for k, run in enumerate(runs):
            records = read_metrics(run / "metrics.jsonl")
            epochs = [r for r in records if "val_macro_f1" in r]
            steps = [r for r in records if "loss" in r and "step" in r and "val_macro_f1" not in r]
            style = dict(
                color=f"C{list(ARM_LABELS).index(arm)}", alpha=0.8, label=ARM_LABELS[arm] if k == 0 else None
            )
            axes[0].plot([r["epoch"] + 1 for r in epochs], [r["val_macro_f1"] for r in epochs], **style)
            axes[1].plot([r["epoch"] + 1 for r in epochs], [r["train_loss"] for r in epochs], **style)
            axes[2].plot([r["step"] for r in steps], [r["loss"] for r in steps], **style, linewidth=0.7)
    for ax, title in zip(
        axes, ("validation macro-F1", "training loss (epoch mean)", "training loss (steps)")
    ):
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("epoch" if "epoch" in title or "F1" in title else "step")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _fid_section(root: Path) -> tuple[list[str], dict[str, Any]]:
    path = root / "fid" / "report.json"
    report = json.loads(path.read_text(encoding="utf-8"))
    lines = ["| | FID | KID (x 1e3) | intra-FID (per class) | N real / fake used |", "|---|---|---|---|---|"]

    def row(label: str, body: dict[str, Any]) -> str:
        kid = body.get("kid") or {}
        kid_text = f"{kid['mean'] * 1e3:.2f} +- {kid['std'] * 1e3:.2f}" if "mean" in kid else "-"
        intra = (body.get("per_class") or {}).get("intra_fid")
        n_text = f"{body['n']} / {body['n']} (of {body['real']['available']} / {body['fake']['available']})"
        intra_text = f"{intra:.1f}" if isinstance(intra, (int, float)) else "-"
        return f"| {label} | {body['fid']:.1f} | {kid_text} | {intra_text} | {n_text} |"

    lines.append(row("synthetic vs real Aff-Wild2 (train)", report))
    if "floor" in report:
        lines.append(row("real vs real (floor: two disjoint halves)", report["floor"]))
    vs = report.get("vs_floor")
    if vs:
        fid = vs["fid"]
        lines += [
            "",
            f"At one equal N = {vs['n']} against half A of the real data: synthetic FID {fid['fake']:.1f}, "
            f"real half B (the floor) {fid['floor']:.1f}; the synthetic data sits {fid['above_floor']:.1f} "
            "above the floor.",
        ]
    classes = (report.get("per_class") or {}).get("classes") or {}
    if classes:
        lines += ["", "| class | FID | N |", "|---|---|---|"]
        lines += [f"| {name} | {c['fid']:.1f} | {c['n']} |" for name, c in classes.items()]
    for warning in report.get("warnings", []):
        lines.append(f"\n> {warning}")
    return lines, {"file": str(path), **report}


def _fidelity_section(root: Path) -> tuple[list[str], dict[str, Any]]:
    path = root / "fidelity" / "fidelity.json"
    body = json.loads(path.read_text(encoding="utf-8"))
    lines = [
        "| class | synthetic recognised | N synthetic | real val recognised | N real |",
        "|---|---|---|---|---|",
    ]
    for name, c in body["classes"].items():
        syn = "-" if c.get("synth_recall") is None else f"{c['synth_recall']:.2f}"
        real = "-" if c.get("real_recall") is None else f"{c['real_recall']:.2f}"
        lines.append(f"| {name} | {syn} | {c.get('n_synth', 0)} | {real} | {c.get('n_real', 0)} |")
    return lines, {"file": str(path), **body}


def _grid_png(root: Path) -> Path | None:
    grids = sorted((root / "gan" / "samples").glob("step*_affwild2.png"))
    return grids[-1] if grids else None


def _demote(markdown: str) -> list[str]:
    """Headings of an embedded markdown document two levels down (it sits inside a ``##`` section)."""
    return [("##" + line if line.startswith("#") else line) for line in markdown.strip().splitlines()]


def _data_sets(cfg) -> list[str]:
    return [f"data_overrides=[{','.join(cfg.data_overrides)}]"] if cfg.data_overrides else []


def _rel(path: Path, root: Path) -> str:
    return os.path.relpath(path, root)


def write_report(cfg, root: Path, timings: dict[str, float], wall_s: float) -> Path:
    """Gather every step's results into ``root/report.md`` and ``root/report.json``."""
    root = Path(root)
    figures = root / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    arms = arm_table(root, cfg.seeds)
    # Every cell is trained already (summary.json): this only gathers the table.
    ablation = ablate(
        resolve_path(cfg.recognizer),
        root / "ablation",
        seeds=cfg.ablation_seeds,
        rows=cfg.ablation_rows,
        modalities=cfg.ablation_modalities,
        overrides=[*_data_sets(cfg), *cfg.recognizer_overrides],
    )
    fid_lines, fid = _fid_section(root)
    fidelity_lines, fidelity = _fidelity_section(root)
    per_class_png = _plot_per_class(arms, figures / "per_class_f1.png")
    curves_png = _plot_curves(root, cfg.seeds, figures / "training_curves.png")
    grid = _grid_png(root)
    baseline0 = root / "ablation" / "gcsa_cf_av" / "seed0"
    selection = json.loads((baseline0 / "selection.json").read_text(encoding="utf-8"))
    statement = verdict(arms)

    md = [
        "# GAN-augmented expression recognition: demo report",
        "",
        f"Written {time.strftime('%Y-%m-%d %H:%M')} on {platform.node() or 'this machine'} "
        f"({platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}, "
        f"{'CUDA' if torch.cuda.is_available() else 'no GPU'}). Corpus preset `{cfg.preset}`; "
        f"chain wall time **{wall_s / 60:.1f} min** this call (see the step times at the end).",
        "",
        "## Did the synthetic data help?",
        "",
        statement,
        "",
        "## Recognizer arms",
        "",
        "Validation macro-F1 on Aff-Wild2 (per frame, the ABAW metric) of each run's best checkpoint, "
        "after the (m, n) fusion grid search and the smoothing window, both chosen on validation; "
        f"mean +- sample std over {cfg.seeds} seeds.",
        "",
        "| arm | macro-F1 | seeds |",
        "|---|---|---|",
    ]
    md += [_seed_row(ARM_LABELS[arm], body) for arm, body in arms.items()]
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
    for arm, runs in arm_runs(root, cfg.seeds).items():
        md.append(f"- {ARM_LABELS[arm]}: ![{arm}]({_rel(runs[0] / 'confusion_val.png', root)})")
    md += ["", "## Synthetic data", ""]
    if grid is not None:
        md += [
            f"Last sample grid of the GAN (rows = classes, Aff-Wild2 style): ![grid]({_rel(grid, root)})",
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
        f"![synthetic confusion]({_rel(root / 'fidelity' / 'confusion_synthetic.png', root)})",
        "",
    ]
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
        md.append(f"![fusion grid]({_rel(baseline0 / 'fusion_grid.png', root)})")
    modalities = modality_table(root, cfg)
    md += ["", "## V+A against V and A (+ GCSA + CF, the full model)", ""]
    md += ["| branches | macro-F1 | seeds |", "|---|---|---|"]
    md += [_seed_row(MODALITIES[modality], body) for modality, body in modalities.items()]
    md += [
        "",
        "## Ablation (the paper's Table 1 rows on this data)",
        "",
        *_demote(render_markdown(ablation)),
        "",
    ]
    md += ["## How to read this report", ""]
    md += [
        "- Every macro-F1 is measured on the validation split that also chose the checkpoint, the fusion "
        "weights and the smoothing window, so it is optimistic; compare arms with each other, not with the "
        "paper's numbers.",
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
    report_md = root / "report.md"
    report_md.write_text("\n".join(md) + "\n", encoding="utf-8")
    numbers = {
        "wall_s": wall_s,
        "timings_s": timings,
        "arms": arms,
        "modalities": modalities,
        "verdict": statement,
        "fid": fid,
        "fidelity": fidelity,
        "fusion": {
            "file": str(baseline0 / "selection.json"),
            **{k: selection.get(k) for k in ("m", "n", "window", "grid")},
        },
        "ablation": {"file": str(root / "ablation" / "ablation.json")},
    }
    (root / "report.json").write_text(json.dumps(numbers, indent=2) + "\n", encoding="utf-8")
    return report_md
