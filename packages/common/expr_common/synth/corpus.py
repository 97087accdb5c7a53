"""``expr-data synth``: plans and renders the whole procedural corpus in parallel, then writes a
manifest beside each dataset, a contact sheet and ``corpus.json``."""

from __future__ import annotations

import json
import multiprocessing
import shutil
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np

from expr_common.config import to_dict
from expr_common.data import affwild2 as layout
from expr_common.data import manifest
from expr_common.data.manifest import MANIFEST
from expr_common.errors import ExprError
from expr_common.labels import CLASS_NAMES, UNLABELLED
from expr_common.logs import get_logger, progress
from expr_common.synth import afew, affwild2, ckplus
from expr_common.synth.presets import SynthConfig

DATASETS = ("ckplus", "afew", "affwild2")
CORPUS_INFO = "corpus.json"
CONTACT_SHEET = "contact_sheet.png"
FACE_BOXES = "face_boxes.json"  # where the renderer drew each face (benchmarks/face_detectors.py)
_SPLIT_ORDER = ("labelled", "unlabelled", "train", "val", "test")
CKPLUS_VAL_EVERY = 5  # every 5th CK+ subject goes to the manifest's val split (subject-wise)

log = get_logger("synth")


def _render(kind: str, job: Any, root: str, spec: Any) -> tuple[str, Any]:
    base = Path(root) / kind
    if kind == "ckplus":
        return kind, ckplus.render_subject(job, base, spec)
    if kind == "afew":
        return kind, [afew.render_clip(job, base, spec)]
    return kind, affwild2.render_video(job, base, spec)


class CorpusExistsError(ExprError, FileExistsError):
    """``--out`` is taken: by a corpus (replaced only with ``--force``) or by anything else (never)."""


def generate(config: SynthConfig, out: str | Path, force: bool = False) -> dict[str, Any]:
    """Render the corpus into ``out`` (atomically: a temporary sibling folder renamed at the end).
    Returns the summary written to ``corpus.json``."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise CorpusExistsError(f"--out {out} is a file, not a folder")
    if out.exists() and any(out.iterdir()):
        if not force:
            raise CorpusExistsError(f"{out} exists and is not empty; pass --force to replace it")
        if not (out / CORPUS_INFO).is_file():  # --force replaces a corpus, never any folder
            raise CorpusExistsError(
                f"{out} is not empty and holds no corpus written by `expr-data synth` (no {CORPUS_INFO}); "
                "refusing to delete it: choose an empty or new --out"
            )
    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    started = time.perf_counter()

    plan_rng = np.random.default_rng([config.seed, 0])
    jobs: list[tuple[str, Any, Any]] = []
    jobs += [("affwild2", j, config.affwild2) for j in affwild2.plan(config.affwild2, plan_rng, config.seed)]
    jobs += [("ckplus", j, config.ckplus) for j in ckplus.plan(config.ckplus, plan_rng, config.seed)]
    jobs += [("afew", j, config.afew) for j in afew.plan(config.afew, plan_rng, config.seed)]

    records: dict[str, list[dict]] = {name: [] for name in DATASETS}
    bar = progress(total=len(jobs), desc=f"synth {config.preset}", unit="job")
    if config.workers > 1:
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=config.workers, mp_context=context) as pool:
            futures = [pool.submit(_render, kind, job, str(tmp), spec) for kind, job, spec in jobs]
            for future in as_completed(futures):
                kind, recs = future.result()
                records[kind].extend(recs)
                bar.update()
    else:
        for kind, job, spec in jobs:
            records[kind].extend(_render(kind, job, str(tmp), spec)[1])
            bar.update()
    bar.close()
    for name in DATASETS:  # completion order varies between runs; the files must not
        records[name].sort(key=lambda r: json.dumps(r, sort_keys=True))

    (tmp / "affwild2" / layout.TEST_LIST).write_text(
        "".join(
            f"{r['track']}\n"
            for r in sorted(records["affwild2"], key=lambda r: r["track"])
            if r["split"] == "test"
        ),
        encoding="ascii",
    )
    _write_manifests(tmp, records)
    summary = _summary(config, records)
    (tmp / CORPUS_INFO).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    boxes = {
        "afew": {r["path"]: r["face_boxes"] for r in records["afew"]},
        "ckplus": {f"{r['subject']}/{r['sequence']}": r["face_box"] for r in records["ckplus"]},
    }
    (tmp / FACE_BOXES).write_text(json.dumps(boxes) + "\n", encoding="utf-8")
    from expr_common.synth.contact import contact_sheet  # matplotlib is slow to import; only here

    contact_sheet(tmp, records, tmp / CONTACT_SHEET)
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    summary["seconds"] = round(time.perf_counter() - started, 2)
    summary["bytes"] = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    return summary


def _write_manifests(root: Path, records: dict[str, list[dict]]) -> None:
    rows: dict[str, list[tuple]] = {name: [] for name in DATASETS}
    subjects = sorted({r["subject"] for r in records["ckplus"]})
    for r in records["ckplus"]:
        if r["label"] == UNLABELLED:
            continue  # no Emotion file, no label
        split = "val" if subjects.index(r["subject"]) % CKPLUS_VAL_EVERY == CKPLUS_VAL_EVERY - 1 else "train"
        rows["ckplus"].append(
            (
                f"{r['subject']}_{r['sequence']}",
                r["peak"],
                "",
                CLASS_NAMES[r["label"]],
                split,
                r["subject"],
                "ckplus",
            )
        )
    for r in records["afew"]:
        rows["afew"].append(
            (r["clip_id"], r["path"], r["path"], CLASS_NAMES[r["label"]], r["split"], r["clip_id"], "afew")
        )
    for r in records["affwild2"]:
        if r["split"] == "test":
            continue
        for i, label in enumerate(r["labels"], start=1):
            if label == UNLABELLED or i in r["missing"]:
                continue
            crop = f"{layout.CROPS_DIR}/{r['track']}/{i:05d}.jpg"
            rows["affwild2"].append(
                (f"{r['track']}/{i:05d}", crop, "", CLASS_NAMES[label], r["split"], r["track"], "affwild2")
            )
    for name, table in rows.items():
        manifest.write(root / name / MANIFEST, (dict(zip(manifest.COLUMNS, row)) for row in sorted(table)))


def _summary(config: SynthConfig, records: dict[str, list[dict]]) -> dict[str, Any]:
    counts: dict[str, dict[str, dict[str, int]]] = {}
    for r in records["ckplus"]:
        split = "labelled" if r["label"] != UNLABELLED else "unlabelled"
        key = CLASS_NAMES[r["label"]] if r["label"] != UNLABELLED else "unlabelled"
        counts.setdefault("ckplus", {}).setdefault(split, Counter())[key] += 1
    for r in records["afew"]:
        counts.setdefault("afew", {}).setdefault(r["split"], Counter())[CLASS_NAMES[r["label"]]] += 1
    extra: Counter = Counter()
    for r in records["affwild2"]:
        table = counts.setdefault("affwild2", {}).setdefault(r["split"], Counter())
        if r["split"] == "test":
            table["frames"] += r["frames"]
            continue
        for i, label in enumerate(r["labels"], start=1):
            table[CLASS_NAMES[label] if label != UNLABELLED else "unlabelled"] += 1
            extra["missing_crops"] += int(i in r["missing"] and label != UNLABELLED)
    return {
        "preset": config.preset,
        "seed": config.seed,
        "config": to_dict(config),
        "counts": {
            d: {s: dict(sorted(counts[d][s].items())) for s in _SPLIT_ORDER if s in counts[d]}
            for d in DATASETS
            if d in counts
        },
        "ckplus_sequences": len(records["ckplus"]),
        "afew_clips": len(records["afew"]),
        "affwild2_tracks": len(records["affwild2"]),
        "affwild2_missing_crops": extra["missing_crops"],
    }


def format_summary(summary: dict[str, Any]) -> str:
    """A per-class table of the corpus for the terminal."""
    names = list(CLASS_NAMES)
    lines = [f"synthetic corpus '{summary['preset']}' (seed {summary['seed']})"]
    header = f"{'dataset/split':<22}" + "".join(f"{n[:7]:>9}" for n in names) + f"{'-1':>7}"
    lines.append(header)
    for dataset, splits in summary["counts"].items():
        for split, table in splits.items():
            if "frames" in table:
                lines.append(f"{dataset + '/' + split:<22}  {table['frames']} unannotated test frames")
                continue
            row = "".join(f"{table.get(n, 0):>9}" for n in names) + f"{table.get('unlabelled', 0):>7}"
            lines.append(f"{dataset + '/' + split:<22}{row}")
    lines.append(
        f"CK+ sequences {summary['ckplus_sequences']}, AFEW clips {summary['afew_clips']}, "
        f"Aff-Wild2 tracks {summary['affwild2_tracks']} "
        f"({summary['affwild2_missing_crops']} annotated frames without a crop)"
    )
    if "seconds" in summary:
        lines.append(f"{summary['bytes'] / 1e6:.1f} MB written in {summary['seconds']:.1f} s")
    return "\n".join(lines)
