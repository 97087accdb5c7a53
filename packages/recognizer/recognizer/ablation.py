"""The paper's Table 1 ablation as files: where each (row, modality, seed) cell's run lives, its resolved
config, its ``summary.json``, and the table and markdown over the finished cells. It only reads (and writes
a finished cell's summary and the table's files); training the cells is :mod:`recognizer.ablate`'s.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from expr_common.atomic import write_json, write_text
from expr_common.config import ConfigError, apply_overrides, from_dict, save_config, to_dict
from expr_common.errors import RunDirError
from expr_common.runs import RunDir, read_metrics
from recognizer.outputs import ABLATION_JSON, ABLATION_MD, SELECTION_FILE, SUMMARY_FILE
from recognizer.run_config import RecognizerConfig, load_recognizer_config

# row -> (label, GCSA on both branches, loss kind)
ROWS: dict[str, tuple[str, bool, str]] = {
    "base": ("Base", False, "ce"),
    "gcsa": ("+ GCSA", True, "ce"),
    "gcsa_cf": ("+ GCSA + CF", True, "coarse_fine"),
}
MODALITIES: dict[str, str] = {"v": "V", "av": "V+A", "a": "A"}
# Yu et al. 2025, Table 1: Aff-Wild2 validation macro-F1 in %, (V, V+A); the paper has no A-only column.
PAPER: dict[str, dict[str, float]] = {
    "base": {"v": 31.89, "av": 42.62},
    "gcsa": {"v": 33.53, "av": 45.92},
    "gcsa_cf": {"v": 35.59, "av": 46.51},
}
METRIC_NOTE = (
    "selection val_macro_f1: validation macro-F1 of the best checkpoint after the (m, n) fusion grid search "
    "and the smoothing-window choice, both made on validation (so optimistic by the selection)"
)


def cell_dir(root: str | Path, row: str, modality: str, seed: int) -> Path:
    """Where one (row, modality, seed) cell's training run lives under an ablation folder."""
    return Path(root) / f"{row}_{modality}" / f"seed{seed}"


def cell_config(
    cfg: RecognizerConfig | str | Path, overrides: list[str], row: str, modality: str, seed: int
) -> RecognizerConfig:
    """The resolved config of one sub-run: the base config, the user's overrides, then the row's switches
    (which win: an ablation row that a ``--set`` could silently undo would not be that row)."""
    if isinstance(cfg, RecognizerConfig):
        data = apply_overrides(to_dict(cfg), overrides)
    else:  # loaded with the overrides: an "auto" visual stem is resolved for the data they name
        data = to_dict(load_recognizer_config(cfg, overrides))
    _, gcsa, loss = ROWS[row]
    switches = [
        f"model.visual.gcsa={str(gcsa).lower()}",
        f"model.audio.gcsa={str(gcsa).lower()}",
        f"loss.kind={loss}",
        f"model.modalities={modality}",
        f"train.seed={seed}",
    ]
    where = f"ablation cell {row}_{modality} seed {seed}"
    return from_dict(apply_overrides(data, switches), RecognizerConfig, where)


def finished_cell(cfg: RecognizerConfig, run_dir: Path) -> dict[str, Any] | None:
    """The summary of a cell trained with ``cfg``, or None when it has not finished; a cell trained with
    another config is an error (it reads only)."""
    summary_path = run_dir / SUMMARY_FILE
    if not summary_path.is_file():
        return None
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    # JSON turns nothing of to_dict's output into something else, so equal configs compare equal.
    if summary.get("config") != to_dict(cfg):
        raise RunDirError(
            f"{run_dir} was trained with another config than this ablation asks for; "
            "use a new --run-dir (or delete that sub-run)"
        )
    return summary | {"skipped": True}


def write_cell_summary(cfg: RecognizerConfig, run_dir: str | Path) -> dict[str, Any]:
    """``summary.json`` of a finished training run, from its own files (``metrics.jsonl`` and
    ``selection.json``): also for cells trained by another process (``recognizer train`` from the demo
    chain), which this module then reads back like its own."""
    run = RunDir(Path(run_dir))
    history = [r for r in read_metrics(run.metrics) if "val_macro_f1" in r]
    selection_path = run.root / SELECTION_FILE
    if not history or not selection_path.is_file():
        raise RunDirError(f"{run.root} holds no finished training run (metrics.jsonl, selection.json)")
    summary = {
        "config": to_dict(cfg),
        "seed": cfg.train.seed,
        "best_val_macro_f1": max(r["val_macro_f1"] for r in history),
        "selection": json.loads(selection_path.read_text(encoding="utf-8")),
        "epochs": cfg.train.epochs,
        "history": history,
    }
    write_json(run.root / SUMMARY_FILE, summary)  # atomic: a half-written summary must never mark a run done
    return summary


def _stats(values: list[float]) -> tuple[float, float]:
    # Sample standard deviation (n - 1) across seeds; 0 for a single seed.
    mean = statistics.fmean(values)
    return mean, (statistics.stdev(values) if len(values) > 1 else 0.0)


def write_ablation(cfg: RecognizerConfig | str | Path, run_dir: str | Path, **options: Any) -> dict[str, Any]:
    """:func:`ablation_table` of the finished cells (``options``: its keywords), written as ``ablation.json``,
    ``ablation.md`` and ``config.yaml``."""
    root = Path(run_dir)
    result = ablation_table(cfg, root, **options)
    # The first cell's resolved config, as a record of the base config and overrides (written last, so a
    # refused re-run with other overrides does not overwrite it).
    modality = result["modalities"][0]
    overrides = [*result["overrides"], *result["modality_overrides"].get(modality, [])]
    first = cell_config(cfg, overrides, result["rows"][0], modality, 0)
    save_config(first, root / "config.yaml")
    write_json(root / ABLATION_JSON, result)
    write_text(root / ABLATION_MD, render_markdown(result))
    return result


def ablation_table(
    cfg: RecognizerConfig | str | Path,
    run_dir: str | Path,
    seeds: int = 3,
    rows: list[str] | tuple[str, ...] = ("base", "gcsa", "gcsa_cf"),
    modalities: list[str] | tuple[str, ...] = ("v", "av"),
    overrides: list[str] | tuple[str, ...] = (),
    row_seeds: dict[str, int] | None = None,
    trained: frozenset = frozenset(),
    modality_overrides: dict[str, list[str]] | None = None,
) -> dict[str, Any]:
    """The table over the finished cells of ``run_dir``: it only reads (an unfinished cell is an error).
    ``trained``: the (row, modality, seed) cells the caller has just trained (``skipped`` False);
    ``modality_overrides``: overrides after ``overrides`` for the cells of one modality (a chain whose V
    cells start from its pre-training run)."""
    request = checked_request(seeds, rows, modalities, overrides, row_seeds)
    extra = dict(modality_overrides or {})
    root = Path(run_dir)
    cells: dict[str, dict[str, Any]] = {}
    for row in request["rows"]:
        for modality in request["modalities"]:
            runs = []
            cell_overrides = [*request["overrides"], *extra.get(modality, [])]
            for seed in range(request["per_row"][row]):
                sub = cell_dir(root, row, modality, seed)
                summary = finished_cell(cell_config(cfg, cell_overrides, row, modality, seed), sub)
                if summary is None:
                    raise RunDirError(f"{sub} has not finished training: no {SUMMARY_FILE}")
                runs.append(
                    _run_entry(seed, sub, summary | {"skipped": (row, modality, seed) not in trained})
                )
            cells.setdefault(row, {})[modality] = _cell_stats(runs)
    return {
        "metric": METRIC_NOTE,
        "std": "sample standard deviation over seeds (n - 1); 0 for one seed",
        "seeds": seeds,
        "row_seeds": dict(request["per_row"]),
        "rows": request["rows"],
        "modalities": request["modalities"],
        "overrides": request["overrides"],
        "modality_overrides": {m: extra[m] for m in request["modalities"] if extra.get(m)},
        "cells": cells,
        "paper": {"values_percent": PAPER, "note": "Yu et al. 2025 Table 1, real Aff-Wild2 validation"},
    }


def checked_request(seeds, rows, modalities, overrides, row_seeds) -> dict[str, Any]:
    """The checked request: rows and modalities in canonical order, seeds per row, overrides as a list."""
    bad = [r for r in rows if r not in ROWS] + [m for m in modalities if m not in MODALITIES]
    if bad or not rows or not modalities:
        raise ConfigError(
            f"unknown or missing rows/modalities {bad}; rows: {list(ROWS)}, modalities: {list(MODALITIES)}"
        )
    unknown = [row for row in row_seeds or {} if row not in ROWS]
    if unknown:
        raise ConfigError(f"row_seeds names unknown rows {unknown}; rows: {list(ROWS)}")
    per_row = {row: (row_seeds or {}).get(row, seeds) for row in rows}
    low = {row: n for row, n in per_row.items() if not isinstance(n, int) or n < 1}
    if low:
        raise ConfigError(f"seeds must be whole numbers >= 1, got {low}")
    # Canonical order, whatever order the user typed: the table reads like the paper's.
    ordered = [r for r in ROWS if r in rows]
    return {
        "rows": ordered,
        "modalities": [m for m in MODALITIES if m in modalities],
        "per_row": {row: per_row[row] for row in ordered},
        "overrides": list(overrides),
    }


def request_cells(request: dict[str, Any]):
    for row in request["rows"]:
        for modality in request["modalities"]:
            for seed in range(request["per_row"][row]):
                yield row, modality, seed


def _run_entry(seed: int, sub: Path, summary: dict[str, Any]) -> dict[str, Any]:
    selection = summary.get("selection") or {}
    return {
        "seed": seed,
        "run_dir": str(sub),
        "val_macro_f1": selection.get("val_macro_f1"),
        "best_val_macro_f1": summary["best_val_macro_f1"],
        "m": selection.get("m"),
        "n": selection.get("n"),
        "window": selection.get("window"),
        "skipped": summary["skipped"],
    }


def _cell_stats(runs: list[dict[str, Any]]) -> dict[str, Any]:
    selected = [r["val_macro_f1"] for r in runs if r["val_macro_f1"] is not None]
    mean, std = _stats(selected) if selected else (float("nan"), float("nan"))
    best_mean, best_std = _stats([r["best_val_macro_f1"] for r in runs])
    return {
        "runs": runs,
        "n": len(selected),
        "mean": mean,
        "std": std,
        "best_mean": best_mean,
        "best_std": best_std,
    }


def _cell(mean: float, std: float, n: int) -> str:
    return f"{100 * mean:.2f} ± {100 * std:.2f} (n={n})"


def render_markdown(result: dict[str, Any]) -> str:
    rows, modalities, cells = result["rows"], result["modalities"], result["cells"]
    heads = [MODALITIES[m] for m in modalities]
    paper_mods = ["v", "av"]
    lines = [
        "# Ablation (paper Table 1 rows)",
        "",
        f"Shown: **{METRIC_NOTE}**, in %, mean ± std over {_seeds_text(result)} ({result['std']}).",
        "",
        "| Method | " + " | ".join(heads) + " | paper V | paper V+A |",
        "|---|" + "---|" * (len(heads) + 2),
    ]
    for row in rows:
        ours = [_cell(cells[row][m]["mean"], cells[row][m]["std"], cells[row][m]["n"]) for m in modalities]
        paper = [f"{PAPER[row][m]:.2f}" for m in paper_mods]
        lines.append(f"| {ROWS[row][0]} | " + " | ".join(ours + paper) + " |")
    lines += [
        "",
        "Paper columns: Yu et al. 2025, Table 1, macro-F1 % on the real Aff-Wild2 validation set; ours "
        "are on whatever data the config names, so only the ordering of the rows is comparable.",
        "",
        "## Unsmoothed: best_val_macro_f1 (best epoch, config fusion m, n, no smoothing), in %",
        "",
        "| Method | " + " | ".join(heads) + " |",
        "|---|" + "---|" * len(heads),
    ]
    for row in rows:
        ours = [
            _cell(cells[row][m]["best_mean"], cells[row][m]["best_std"], len(cells[row][m]["runs"]))
            for m in modalities
        ]
        lines.append(f"| {ROWS[row][0]} | " + " | ".join(ours) + " |")
    return "\n".join(lines) + "\n"


def _seeds_text(result: dict[str, Any]) -> str:
    counts = result.get("row_seeds") or {row: result["seeds"] for row in result["rows"]}
    if len(set(counts.values())) == 1:
        return f"seeds 0..{next(iter(counts.values())) - 1}"
    return "seeds " + ", ".join(f"0..{n - 1} ({ROWS[row][0]})" for row, n in counts.items())
