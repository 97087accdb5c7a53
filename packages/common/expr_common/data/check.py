"""``expr-data check``: read a dataset the way training will, but collect every problem instead of stopping
at the first, and print what is there (per class and split) and what is wrong (file:line)."""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path
from typing import Any

from expr_common.data.affwild2 import SHORT_OF_VIDEO
from expr_common.data.media_check import check_media
from expr_common.data.readers import FORMATS, read_dataset
from expr_common.data.refs import SPLITS
from expr_common.labels import CLASS_NAMES, UNLABELLED

# Skip reasons that real, healthy data has (Aff-Wild2's undetected faces and -1 runs, CK+'s unlabelled
# sequences, ...): reported, but not a reason to fail. Any other reason is a problem.
INFO_REASONS = frozenset(
    {
        "-1 frames",
        "annotated frame without crop",
        "annotation line past last frame",
        SHORT_OF_VIDEO,
        "unlabelled sequence",
        "track without video",
    }
)
_AUDIO_PROBING = ("afew", "manifest")  # readers that can probe for a sound track (Aff-Wild2 always does)
_SHOWN_WARNINGS = 50


def check_dataset(format: str, root: str | Path, deep: bool = False, **options: Any) -> dict[str, Any]:
    """A report of one dataset; never raises for bad data (a wrong root or format is a problem too). Every
    media file is opened (``media_check``): images decoded, videos and sound to their first frame, or
    ``deep``: every frame and all the sound."""
    report: dict[str, Any] = {
        "format": format,
        "root": str(root),
        "unit": "frames" if format == "affwild2" else "samples",
        "samples": {},
        "counts": {},
        "skipped": {},
        "missing_crops": 0,
        "missing_files": 0,
        "bad_lines": [],
        "silent_videos": [],
        "media_files": {},
        "unreadable_media": [],
        "warnings": [],
        "problems": [],
        "ok": False,
    }
    if format in _AUDIO_PROBING:
        options.setdefault("check_audio", True)
    try:
        result = read_dataset(format, root, strict=False, **options)
    except (ValueError, OSError) as exc:  # wrong root, wrong format name: nothing to count
        report["problems"].append(str(exc))
        return report
    counts: dict[str, Counter[str]] = {}
    for ref in result.refs:
        report["samples"][ref.split] = report["samples"].get(ref.split, 0) + 1
        table = counts.setdefault(ref.split, Counter())
        for label in ref.frame_labels if ref.frame_labels is not None else (ref.label,):
            table[CLASS_NAMES[label] if label != UNLABELLED else "unlabelled"] += 1
    report["counts"] = {s: dict(counts[s]) for s in SPLITS if s in counts}
    report["skipped"] = dict(sorted(result.skipped.items()))
    report["missing_crops"] = result.skipped["annotated frame without crop"]
    report["missing_files"] = result.skipped["missing file"] + result.skipped["track without crop folder"]
    report["bad_lines"] = [str(e) for e in result.errors]
    report["silent_videos"] = [str(p) for p in result.silent_videos]
    report["warnings"] = list(result.warnings)
    media = check_media(result.refs, deep=deep)
    report["media_files"], report["unreadable_media"] = media.files, media.unreadable
    problems = report["problems"]
    if media.unreadable:
        problems.append(f"{len(media.unreadable)} unreadable media files")
    if result.errors:
        problems.append(f"{len(result.errors)} bad lines or files")
    for reason, n in report["skipped"].items():
        if reason not in INFO_REASONS and n:
            problems.append(f"{n} {reason}")
    if result.silent_videos:
        problems.append(f"{len(result.silent_videos)} videos without an audio stream")
    if not result.refs:
        problems.append("no usable samples")
    report["ok"] = not problems
    return report


def format_report(report: dict[str, Any]) -> str:
    """The report as a table and lists for the terminal."""
    lines = [f"{report['format']} dataset at {report['root']}"]
    if report["counts"]:
        lines.append(f"{report['unit']} per class and split:")
        lines.append(
            f"{'split':<8}" + "".join(f"{n[:7]:>9}" for n in CLASS_NAMES) + f"{'-1':>8}{'samples':>9}"
        )
        for split, table in report["counts"].items():
            cells = "".join(f"{table.get(n, 0):>9}" for n in CLASS_NAMES)
            lines.append(f"{split:<8}{cells}{table.get('unlabelled', 0):>8}{report['samples'][split]:>9}")
    if report["skipped"]:
        lines.append("skipped or flagged:")
        lines += [f"  {n:>7}  {reason}" for reason, n in report["skipped"].items()]
    if report["format"] == "affwild2":
        lines.append(f"annotated frames without a crop: {report['missing_crops']}")
    if report["bad_lines"]:
        lines.append(f"bad lines ({len(report['bad_lines'])}):")
        lines += [f"  {e}" for e in report["bad_lines"]]
    if report["unreadable_media"]:
        lines.append(f"unreadable media files ({len(report['unreadable_media'])}):")
        lines += [f"  {m}" for m in report["unreadable_media"][:_SHOWN_WARNINGS]]
    if report["silent_videos"]:
        lines.append(f"videos without audio ({len(report['silent_videos'])}):")
        lines += [f"  {p}" for p in report["silent_videos"]]
    silent = set(report["silent_videos"])  # already listed above
    warnings = [w for w in report["warnings"] if w.split(": ", 1)[0] not in silent]
    if warnings:
        lines.append(f"warnings ({len(warnings)}):")
        lines += [f"  {w}" for w in warnings[:_SHOWN_WARNINGS]]
        if len(warnings) > _SHOWN_WARNINGS:
            lines.append(f"  ... {len(warnings) - _SHOWN_WARNINGS} more (--json FILE keeps them all)")
    if report["ok"]:
        lines.append("OK: no problems found")
    else:
        lines.append("PROBLEMS: " + "; ".join(report["problems"]))
    return "\n".join(lines)
