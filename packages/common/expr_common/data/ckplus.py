"""CK+ reader: labelled image sequences (``cohn-kanade-images/`` + ``Emotion/``), one sample of the last
``peak_frames`` images per labelled sequence, split by subject (docs/datasets.md, "CK+")."""

from __future__ import annotations

import re
from pathlib import Path

from expr_common.config import ConfigError
from expr_common.data.readers import (
    IMAGE_SUFFIXES,
    DatasetFormatError,
    Problems,
    ReadResult,
    check_splits,
    list_files,
    read_text,
    require_folder,
    require_samples,
    stable_fraction,
)
from expr_common.data.refs import SampleRef
from expr_common.labels import NEUTRAL, ckplus_to_abaw

IMAGES_DIR = "cohn-kanade-images"
EMOTION_DIR = "Emotion"
EMOTION_SUFFIX = "_emotion.txt"
_CODE = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")  # a decimal number, ASCII only


def parse_emotion(path: Path, problems: Problems) -> int | None:
    """ABAW label of one ``*_emotion.txt`` file (one float CK+ code such as ``   3.0000000e+00``)."""
    try:
        text = read_text(path, "emotion file")
    except DatasetFormatError as exc:
        problems.report(exc)
        return None
    try:
        (token,) = text.split()  # exactly one number, whatever the padding
        if not _CODE.fullmatch(token):  # not float() alone: it also takes "nan", "0_3", non-ASCII digits
            raise ValueError(token)
        return ckplus_to_abaw(float(token))
    except (ValueError, OverflowError):  # OverflowError: "inf", "1e999" (no integer code)
        shown = text.strip()[:40]
        problems.report(
            DatasetFormatError(
                f"expected one CK+ emotion code 0-7 such as '3.0000000e+00', found {shown!r}", path, 1
            )
        )
        return None


def subject_split(subject: str, val_fraction: float) -> str:
    """Whole subjects go to train or val, by a stable hash of the id: never one person on both sides."""
    return "val" if stable_fraction(subject) < val_fraction else "train"


def _emotion_files(root: Path) -> dict[tuple[str, str], list[Path]]:
    """(subject, sequence) -> its emotion files, from one walk of ``Emotion/``."""
    found: dict[tuple[str, str], list[Path]] = {}
    for path in sorted((root / EMOTION_DIR).glob(f"*/*/*{EMOTION_SUFFIX}")):
        found.setdefault((path.parent.parent.name, path.parent.name), []).append(path)
    return found


def _peak_index(images: list[Path], emotion: Path) -> int:
    """Index of the image the emotion file names (``S005_001_00000011_emotion.txt`` -> ``..._00000011``);
    CK+ always names the last image, so that is the fallback."""
    stem = emotion.name[: -len(EMOTION_SUFFIX)]
    for i, image in enumerate(images):
        if image.stem == stem:
            return i
    return len(images) - 1


def read(
    root: str | Path,
    splits: tuple[str, ...] | None = None,
    *,
    strict: bool = True,
    peak_frames: int = 3,  # the apex and the frames just before it: the clearest expression
    neutral_first: bool = False,  # also the first frame of each labelled sequence as a Neutral sample
    val_fraction: float = 0.2,  # share of subjects (not images) sent to val
) -> ReadResult:
    if peak_frames < 1:
        raise ConfigError(f"peak_frames must be at least 1, got {peak_frames}")
    if not 0.0 <= val_fraction <= 1.0:
        raise ConfigError(f"val_fraction must be in [0, 1], got {val_fraction}")
    root = require_folder(Path(root), f"a CK+ root with {IMAGES_DIR}/ and {EMOTION_DIR}/")
    images_root = root / IMAGES_DIR
    if not images_root.is_dir():
        raise DatasetFormatError(f"no {IMAGES_DIR}/ under {root} (CK+ image sequences Sxxx/yyy/*.png)", root)
    if not (root / EMOTION_DIR).is_dir():
        raise DatasetFormatError(
            f"no {EMOTION_DIR}/ under {root}: CK+ labels come from {EMOTION_DIR}/Sxxx/yyy/*{EMOTION_SUFFIX}",
            root,
        )
    wanted = check_splits(splits, ("train", "val"))
    result = ReadResult(refs=[])
    problems = Problems(strict, result)
    emotions = _emotion_files(root)
    used: set[tuple[str, str]] = set()
    for subject_dir in sorted(p for p in images_root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        subject = subject_dir.name
        split = subject_split(subject, val_fraction)
        for seq_dir in sorted(p for p in subject_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
            key = (subject, seq_dir.name)
            files = emotions.get(key)
            used.add(key)
            if not files:
                result.skipped["unlabelled sequence"] += 1
                continue
            if len(files) > 1:
                result.warnings.append(
                    f"{files[0].parent}: {len(files)} emotion files; using {files[-1].name}"
                )
            label = parse_emotion(files[-1], problems)
            if label is None:
                result.skipped["bad emotion file"] += 1
                continue
            if split not in wanted:
                continue
            images = list_files(seq_dir, IMAGE_SUFFIXES)
            if not images:
                result.skipped["labelled sequence without images"] += 1
                result.warnings.append(f"{seq_dir}: labelled by {files[-1]} but holds no images; skipped")
                continue
            peak = _peak_index(images, files[-1])
            sample_id = f"{subject}_{seq_dir.name}"
            common = dict(
                dataset="ckplus", domain="ckplus", split=split, subject=subject, source=str(files[-1])
            )
            result.refs.append(
                SampleRef(
                    sample_id=sample_id,
                    label=label,
                    frame_paths=tuple(images[max(0, peak + 1 - peak_frames) : peak + 1]),
                    **common,
                )
            )
            if neutral_first and peak > 0:  # CK+ sequences start from a neutral face
                result.refs.append(
                    SampleRef(
                        sample_id=f"{sample_id}_neutral", label=NEUTRAL, frame_paths=(images[0],), **common
                    )
                )
    for key, files in emotions.items():
        if key not in used:
            result.skipped["emotion file without images"] += 1
            result.warnings.append(f"{files[0]}: no image sequence {IMAGES_DIR}/{key[0]}/{key[1]}/; skipped")
    return require_samples(
        result, root, f"labelled sequences ({EMOTION_DIR}/ files) for splits {wanted}", strict
    )
