"""The numbers of the chain's report, read from the files its steps wrote (recognizer ``summary.json``, the
FID report, ``fidelity.json``) and nowhere else computed: per-arm and per-modality seed statistics, the
verdict, the FID and class-fidelity tables. Each body names the file(s) it came from."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from expr_common.labels import CLASS_NAMES
from expr_experiment.layout import BASELINE_ROW, ChainDir
from recognizer.outputs import SUMMARY_FILE

ARM_LABELS = {
    "baseline": "Baseline (real target data)",
    "synthetic": "+ synthetic",
    "source_real": "+ source-real",
    "augmented": "+ classic augmentation",
    "edited": "+ edited",
}


def _summary(run_dir: Path) -> dict[str, Any]:
    path = run_dir / SUMMARY_FILE
    summary = json.loads(path.read_text(encoding="utf-8"))
    summary["_file"] = str(path)
    return summary


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def _scores(run: Path, split: str) -> dict[str, Any]:
    """One run's macro-F1 and per-class F1 on ``split`` (best checkpoint, fusion and smoothing chosen on
    validation): its selection for "val", else its ``recognizer evaluate`` of that split."""
    if split == "val":
        summary = _summary(run)
        return {**summary["selection"]["val_metrics"], "_file": summary["_file"]}
    path = ChainDir.scored(run, split).eval_metrics
    return {**json.loads(path.read_text(encoding="utf-8")), "_file": str(path)}


def seed_stats(runs: list[Path], per_class: bool = False, split: str = "val") -> dict[str, Any]:
    """The macro-F1 of each seed's run on ``split`` (:func:`_scores`), their mean and sample std, the files
    they came from, and optionally the mean per-class F1."""
    scores = [_scores(r, split) for r in runs]
    f1 = [s["macro_f1"] for s in scores]
    mean, std = _mean_std(f1)
    body: dict[str, Any] = {"seeds": f1, "mean": mean, "std": std, "files": [s["_file"] for s in scores]}
    body["split"] = split
    if per_class:
        body["per_class_f1"] = {}
        for name in CLASS_NAMES:
            values = [s["per_class_f1"][name] for s in scores]
            values = [v for v in values if v is not None]
            body["per_class_f1"][name] = statistics.fmean(values) if values else None
    return body


def arm_table(
    layout: ChainDir, seeds: int, arms: tuple[str, ...] | None = None, split: str = "val"
) -> dict[str, Any]:
    """Per arm (``arms``: the chain's, default the three of every chain): :func:`seed_stats` on ``split``
    with the per-class F1."""
    runs = layout.arm_runs(seeds, arms) if arms else layout.arm_runs(seeds)
    return {arm: seed_stats(paths, per_class=True, split=split) for arm, paths in runs.items()}


def modality_table(root: Path, cfg) -> dict[str, Any]:
    """The + GCSA + CF cells per modality over every seed."""
    layout = ChainDir(root)
    return {
        modality: seed_stats(
            [layout.cell(BASELINE_ROW, modality, s) for s in range(cfg.seeds)], split=cfg.score_split
        )
        for modality in cfg.ablation_modalities
    }


def pretrain_table(root: Path, cfg, modalities: dict[str, Any]) -> dict[str, Any]:
    """The pre-training run's own validation macro-F1 (on the source domains), and per fine-tuned modality
    the + GCSA + CF cells from scratch (``modalities``: :func:`modality_table`) beside the same cells (same
    seeds) started from it."""
    layout = ChainDir(root)
    pre = _summary(layout.pretrain.root)
    rows = {
        modality: {
            "scratch": modalities[modality],
            "pretrained": seed_stats(
                [layout.pretrained(modality, s) for s in range(cfg.seeds)], split=cfg.score_split
            ),
        }
        for modality in cfg.pretrained_cells
    }
    run = {"file": pre["_file"], "val_macro_f1": pre["selection"]["val_macro_f1"]}
    return {"sources": cfg.pretrain_sources, "run": run, "rows": rows, "start_arms": cfg.pretrain.start_arms}


def pretrain_lines(
    body: dict[str, Any], modalities: dict[str, Any], labels: dict[str, str], target: str
) -> list[str]:
    sources = " + ".join(body["sources"])
    if body.get("start_arms"):
        return [
            f"A V-only recognizer trained first on the {sources} training faces (validation macro-F1 "
            f"{body['run']['val_macro_f1']:.3f} on their validation split). Every arm and every V or V+A "
            "cell of this report starts its visual branch and head from that checkpoint "
            f"(`pretrain.start_arms`) and is then trained on {target}: the baseline is the pre-trained "
            "model.",
        ]
    lines = [
        f"A V-only recognizer trained first on the {sources} training faces (validation macro-F1 "
        f"{body['run']['val_macro_f1']:.3f} on their validation split); each cell below starts its visual "
        f"branch and head from that checkpoint (`train.init_from`) and is then trained on {target} exactly "
        "as the cell from scratch, with the same seeds.",
        "",
        "| branches | from scratch | pre-trained | change | seeds (pre-trained) |",
        "|---|---|---|---|---|",
    ]
    for modality, label in labels.items():
        if modality in body["rows"]:
            scratch, pre = body["rows"][modality]["scratch"], body["rows"][modality]["pretrained"]
            seeds = ", ".join(f"{v:.3f}" for v in pre["seeds"])
            lines.append(
                f"| {label} | {scratch['mean']:.3f} +- {scratch['std']:.3f} | {pre['mean']:.3f} +- "
                f"{pre['std']:.3f} | {pre['mean'] - scratch['mean']:+.3f} | {seeds} |"
            )
        elif modality in modalities:
            scratch = modalities[modality]
            lines.append(
                f"| {label} | {scratch['mean']:.3f} +- {scratch['std']:.3f} | (not pre-trained: no visual "
                "branch) | - | - |"
            )
    return lines


def seed_row(label: str, body: dict[str, Any]) -> str:
    seeds_text = ", ".join(f"{v:.3f}" for v in body["seeds"])
    return f"| {label} | {body['mean']:.3f} +- {body['std']:.3f} | {seeds_text} |"


def verdict(arms: dict[str, Any], target: str, sources: list[str]) -> str:
    """A plain statement: did +synthetic beat the baseline, by how much relative to the seed spread, and on
    which classes (``target``, ``sources``: the chain's data, by name)."""
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
        f" For comparison, adding the real {' and '.join(sources)} samples directly (+ source-real) changed "
        "macro-F1 by "
        f"{src['mean'] - base['mean']:+.3f}."
    )
    if "augmented" in arms:
        text += (
            " Adding the target's own training faces again, augmented afresh and as many per class "
            f"(+ classic augmentation), changed it by {arms['augmented']['mean'] - base['mean']:+.3f}."
        )
    if "edited" in arms:
        text += " " + edited_verdict(base, arms["edited"], target)
    return text


def class_changes(base: dict[str, Any], arm: dict[str, Any]) -> str:
    """Every class's mean F1 change from the baseline to ``arm``."""
    changes = [
        f"{name} {arm['per_class_f1'][name] - base['per_class_f1'][name]:+.3f}"
        for name in CLASS_NAMES
        if arm["per_class_f1"][name] is not None and base["per_class_f1"][name] is not None
    ]
    return ", ".join(changes)


def edited_verdict(base: dict[str, Any], edited: dict[str, Any], target: str) -> str:
    """Did training with the edited real faces beat the baseline by more than one seed std?"""
    diff = edited["mean"] - base["mean"]
    spread = max(base["std"], edited["std"], 1e-9)
    head = (
        f"**+ edited** (real {target} training windows edited into other classes by the editing GAN) "
        f"changed macro-F1 by {diff:+.3f} against a seed std of {spread:.3f}: "
    )
    if diff > spread:
        head += "it beats the baseline by more than the spread."
    elif diff > 0:
        head += "it does not beat the baseline by more than the spread."
    else:
        head += "it does not beat the baseline."
    return head + f" Per class: {class_changes(base, edited)}."


def fid_section(
    root: Path, target: str, path: Path | None = None, what: str = "synthetic", split: str = "val"
) -> tuple[list[str], dict[str, Any]]:
    """The FID table of the sampled faces (``path``: another report of the same command, e.g. the edits',
    against the real frames of ``split``)."""
    path = path or ChainDir(root).fid_report
    report = json.loads(path.read_text(encoding="utf-8"))
    lines = ["| | FID | KID (x 1e3) | intra-FID (per class) | N real / fake used |", "|---|---|---|---|---|"]

    def row(label: str, body: dict[str, Any]) -> str:
        kid = body.get("kid") or {}
        kid_text = f"{kid['mean'] * 1e3:.2f} +- {kid['std'] * 1e3:.2f}" if "mean" in kid else "-"
        intra = (body.get("per_class") or {}).get("intra_fid")
        n_text = f"{body['n']} / {body['n']} (of {body['real']['available']} / {body['fake']['available']})"
        intra_text = f"{intra:.1f}" if isinstance(intra, (int, float)) else "-"
        return f"| {label} | {body['fid']:.1f} | {kid_text} | {intra_text} | {n_text} |"

    lines.append(row(f"{what} vs real {target} ({split})", report))
    if "floor" in report:
        lines.append(row("real vs real (floor: two disjoint halves)", report["floor"]))
    vs = report.get("vs_floor")
    if vs:
        fid = vs["fid"]
        lines += [
            "",
            f"At one equal N = {vs['n']} against half A of the real data: {what} FID {fid['fake']:.1f}, "
            f"real half B (the floor) {fid['floor']:.1f}: the {what} data's FID is "
            f"{fid['fake'] / max(fid['floor'], 1e-9):.2f}x the floor ({fid['above_floor']:+.1f}).",
        ]
    classes = (report.get("per_class") or {}).get("classes") or {}
    if classes:
        lines += ["", "| class | FID | N |", "|---|---|---|"]
        lines += [f"| {name} | {c['fid']:.1f} | {c['n']} |" for name, c in classes.items()]
    for warning in report.get("warnings", []):
        lines.append(f"\n> {warning}")
    return lines, {"file": str(path), **report}


def fidelity_section(root: Path, path: Path | None = None) -> tuple[list[str], dict[str, Any]]:
    path = path or ChainDir(root).fidelity_json
    body = json.loads(path.read_text(encoding="utf-8"))
    overall = body.get("overall", {})
    # Edits of real training windows add how often the judge names them by their source's class, and its
    # recall on the real training windows (the people it learnt, the edits' sources among them).
    extra = [
        (key, title)
        for key, title in (
            ("kept_source_rate", "called by source class"),
            ("train_recall", "real train recognised"),
        )
        if any(key in c for c in body["classes"].values())
    ]
    lines = [
        "| class | synthetic recognised | N synthetic | real val recognised | N real |"
        + "".join(f" {title} |" for _, title in extra),
        "|---|---|---|---|---|" + "---|" * len(extra),
    ]

    def rate(c: dict, key: str) -> str:
        return "-" if c.get(key) is None else f"{c[key]:.2f}"

    for name, c in body["classes"].items():
        row = f"| {name} | {rate(c, 'synth_recall')} | {c.get('n_synth', 0)} | {rate(c, 'real_recall')} | "
        lines.append(row + f"{c.get('n_real', 0)} |" + "".join(f" {rate(c, key)} |" for key, _ in extra))
    if "kept_source_rate" in overall:
        lines += [
            "",
            f"The recognizer names {overall['kept_source_rate']:.1%} of the edits by their source window's "
            f"class and {overall['synth_accuracy']:.1%} by their target class"
            + (
                f"; on the real training windows it recognises {overall['train_accuracy']:.1%}, on the "
                f"validation windows {overall['real_accuracy']:.1%}"
                if "train_accuracy" in overall
                else ""
            )
            + ". A judge that knows the training people by heart reads an edit of them by its old class.",
        ]
    return lines, {"file": str(path), **body}
