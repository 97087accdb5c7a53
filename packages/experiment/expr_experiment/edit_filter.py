"""Keep only the generated or edited samples that a judge trained on real target data names by their own
class (``expr-experiment fidelity --keep-recognised DIR``; SynFER-style label calibration): a new manifest
of the kept rows, paths made absolute so it reads from any folder, and ``filter.json`` with how many each
class had and kept. Pure bookkeeping over the judge's predictions; the scoring is :mod:`fidelity`'s."""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path
from typing import Any

from expr_common.atomic import write_json
from expr_common.data import manifest
from expr_common.errors import DataError, RunDirError
from expr_common.labels import CLASS_NAMES, parse_label
from expr_experiment.fidelity_summary import Scored

FILTER_JSON = "filter.json"


def check_keep_dir(out_dir: str | Path) -> None:
    """Before any scoring: the folder may be new, empty or an earlier filter's (``filter.json`` beside its
    manifest); a folder holding anything else is never written into."""
    out = Path(out_dir)
    if out.is_file():
        raise RunDirError(f"--keep-recognised {out}: a file, not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / FILTER_JSON).is_file():
        raise RunDirError(f"--keep-recognised {out}: holds other files; give a new or empty folder")


def recognised_ids(scored: Scored) -> set[str]:
    """Manifest rows every one of whose samples the judge named by its label."""
    verdicts: dict[str, list[bool]] = defaultdict(list)
    for sample_id, label, pred in zip(scored.ids, scored.labels, scored.preds, strict=True):
        verdicts[sample_id].append(label == pred)
    return {sample_id for sample_id, hits in verdicts.items() if sample_id and all(hits)}


def _absolute(row: dict[str, str], base: Path) -> dict[str, str]:
    return {**row, **{k: str(base / row[k]) for k in ("frames", "audio") if row.get(k)}}


def keep_recognised(synthetic: str | Path, scored: Scored, out_dir: str | Path) -> dict[str, Any]:
    """Write ``out_dir/manifest.csv`` (the rows of ``synthetic`` in :func:`recognised_ids`) and
    ``out_dir/filter.json`` (per class: rows made, rows scored, rows kept); returns that summary."""
    csv_path = manifest.manifest_path(synthetic)
    with open(csv_path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        rows, columns = list(reader), list(reader.fieldnames or [])
    keep, scored_ids = recognised_ids(scored), set(scored.ids)
    table = {name: {"made": 0, "scored": 0, "kept": 0} for name in CLASS_NAMES}
    kept_rows = []
    for row in rows:
        name = CLASS_NAMES[parse_label(row["label"])] if row["label"].strip() else None
        if name is None:
            continue
        table[name]["made"] += 1
        table[name]["scored"] += row["sample_id"] in scored_ids
        if row["sample_id"] in keep:
            table[name]["kept"] += 1
            kept_rows.append(_absolute(row, csv_path.parent))
    if not kept_rows:
        raise DataError(
            f"{csv_path}: the judge named none of its {len(rows)} samples by their class: nothing kept"
        )
    out = Path(out_dir)
    manifest.write(out / manifest.MANIFEST, kept_rows, extra_columns=columns)
    summary = {
        "source": str(csv_path),
        "rule": "kept where the judge names the sample's own class",
        "per_class": table,
        "made": sum(c["made"] for c in table.values()),
        "kept": len(kept_rows),
    }
    write_json(out / FILTER_JSON, summary)
    return summary
