"""The report's account of how many edits each class got and, with ``edit.filter``, how many the judge
kept and how another seed's judge reads the kept ones. Reads the files the steps wrote; computes nothing."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path
from typing import Any

from expr_common.data.manifest import MANIFEST
from expr_common.labels import CLASS_NAMES, parse_label
from expr_experiment.edit_filter import FILTER_JSON
from expr_experiment.layout import FIDELITY_JSON, ChainDir
from expr_experiment.report_tables import fidelity_section


def _made_per_class(folder: Path) -> dict[str, int]:
    with open(folder / MANIFEST, newline="", encoding="utf-8") as handle:
        labels = [row["label"] for row in csv.DictReader(handle) if row["label"].strip()]
    counts = Counter(CLASS_NAMES[parse_label(label)] for label in labels)
    return {name: counts.get(name, 0) for name in CLASS_NAMES}


def edit_counts_section(layout: ChainDir) -> tuple[list[str], dict[str, Any]]:
    """Per class: edits made and (with the filter) kept; the kept edits' fidelity by the other judge."""
    kept_file = layout.edited_kept / FILTER_JSON
    if kept_file.is_file():
        body = json.loads(kept_file.read_text(encoding="utf-8"))
        body["file"] = str(kept_file)
    else:
        made = _made_per_class(layout.edited)
        body = {"file": str(layout.edited / MANIFEST), "per_class": {k: {"made": v} for k, v in made.items()}}
    filtered = "kept" in body
    lines = ["### Edits per class", ""]
    if filtered:
        lines += [
            f"The baseline (seed 0) named {body['kept']} of {body['made']} edits by their own class; the "
            "+ edited arm trained on those only.",
            "",
        ]
    lines += [
        "| class | edits made |" + (" kept |" if filtered else ""),
        "|---|---|" + ("---|" if filtered else ""),
    ]
    for name, row in body["per_class"].items():
        if row["made"]:
            lines.append(f"| {name} | {row['made']} |" + (f" {row['kept']} |" if filtered else ""))
    kept_fidelity = layout.fidelity_kept / FIDELITY_JSON
    if filtered and kept_fidelity.is_file():
        fid_lines, fidelity = fidelity_section(layout.root, kept_fidelity)
        lines += ["", "Class fidelity of the kept edits by the seed-1 baseline (it chose none of them):", ""]
        lines += fid_lines
        body["fidelity_by_other_judge"] = fidelity
    return lines + [""], body
