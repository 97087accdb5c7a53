"""Aff-Wild2 EXPR reader: one sample per annotated face track, frames from ``cropped_aligned/``, sound from
the shared video (docs/datasets.md, "Aff-Wild2")."""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path

from expr_common.data.readers import (
    VIDEO_SUFFIXES,
    DatasetFormatError,
    Problems,
    ReadResult,
    audio_of,
    check_splits,
    read_text,
    require_folder,
    require_samples,
    split_lines,
)
from expr_common.data.refs import SampleRef
from expr_common.labels import AFFWILD2_HEADER, NUM_CLASSES, UNLABELLED
from expr_common.media import MediaInfo

ANNOTATION_DIRS = ("EXPR_Recognition_Challenge", "EXPR_Classification_Challenge")  # new, older editions
SPLIT_DIRS = {"train": "Train_Set", "val": "Validation_Set"}
VIDEO_DIRS = ("videos", "batch1", "batch2", "new_vids")
CROPS_DIR = "cropped_aligned"
TEST_LIST = "Expression_Recognition_Challenge_test_set_release.txt"
SHORT_ANNOTATION = "frame past the annotation's end"  # crops the annotation file does not reach
SHORT_OF_VIDEO = "video frame past the annotation's end"  # only the video is longer: informational
SIDE_SUFFIXES = ("_left", "_right")  # two-person videos: one track per face, one shared video
_INTEGER = re.compile(r"[+-]?[0-9]{1,9}")  # more digits: no label, and int() may refuse them


def parse_annotation(path: Path, problems: Problems) -> list[int] | None:
    """Per-frame labels of one annotation file (header checked, one integer in -1..7 per line).

    Every bad line goes to ``problems`` (which raises at the first when strict); returns None when the
    file had any, so a half-valid file never becomes a sample."""
    try:
        lines = split_lines(read_text(path, "annotation file"))
    except DatasetFormatError as exc:
        problems.report(exc)
        return None
    while lines and not lines[-1].strip():  # a trailing newline or two is not a frame
        lines.pop()
    before = problems.count()
    if not lines or lines[0].strip() != AFFWILD2_HEADER:
        found = repr(lines[0][:80]) if lines else "an empty file"
        problems.report(
            DatasetFormatError(f"expected the header {AFFWILD2_HEADER!r}, found {found}", path, 1)
        )
    labels: list[int] = []
    for number, text in enumerate(lines[1:], start=2):
        token = text.strip()
        if not _INTEGER.fullmatch(token):  # not int(): it also takes "0_3" and non-ASCII digits
            problems.report(
                DatasetFormatError(f"expected one integer label in -1..7, found {token[:80]!r}", path, number)
            )
            continue
        value = int(token)
        if value != UNLABELLED and not 0 <= value < NUM_CLASSES:
            problems.report(DatasetFormatError(f"label {value} is outside -1..7", path, number))
            continue
        labels.append(value)
    return None if problems.count() > before else labels


def video_stem(track: str) -> str:
    """The video a track comes from: ``video59_right`` -> ``video59``."""
    for suffix in SIDE_SUFFIXES:
        if track.endswith(suffix):
            return track[: -len(suffix)]
    return track


def find_videos(root: Path) -> dict[str, Path]:
    """Video stem -> file over all video folders (listed once, not looked up per track)."""
    videos: dict[str, Path] = {}
    for folder in (root / name for name in VIDEO_DIRS):
        if folder.is_dir():
            for path in sorted(folder.iterdir()):
                if path.suffix.lower() in VIDEO_SUFFIXES and not path.name.startswith("."):
                    videos.setdefault(path.stem, path)
    return videos


def crop_index(folder: Path) -> dict[int, str] | None:
    """Frame number -> crop file name (``00001.jpg`` is frame 1); None when the folder is missing."""
    try:
        if not folder.is_dir():
            return None
    except OSError as exc:  # a track name too long for the file system (a garbled test list): no folder
        if exc.errno == errno.ENAMETOOLONG:
            return None
        raise
    crops = {}
    for name in (entry.name for entry in os.scandir(folder)):
        stem, _, suffix = name.partition(".")
        if stem.isdigit() and suffix.lower() in ("jpg", "jpeg", "png"):
            crops[int(stem)] = name
    return crops


def _video_frames(info: MediaInfo | None) -> int | None:
    """The video's frame count, estimated from its duration where the container has none."""
    if info is None:
        return None
    if info.frames is None and info.duration_s and info.fps:  # some containers lack a frame count
        return round(info.duration_s * info.fps)
    return info.frames


def _fit_labels(
    labels: list[int], video_frames: int | None, highest: int, where: tuple[Path, str, Path | None],
    result: ReadResult,
) -> list[int]:  # fmt: skip
    """A training track's per-frame labels fitted to its frames (the video's count, or its crops'): lines
    past the last frame are dropped, a short file is noted; both counted in ``result``."""
    source, name, video = where
    # Crops past the video's end mean its frame count is off, not the crops; without a video the crops are
    # all we know, and then only the documented off-by-one is trimmed.
    if video_frames:
        frames = max(video_frames, highest)
        extra = len(labels) - frames
    else:
        frames = highest
        extra = len(labels) - highest if highest else 0
        if extra > 1:  # lines past the last crop: frames whose face was lost, kept unannotated-free
            extra = 0
    if extra > 0:
        result.skipped["annotation line past last frame"] += extra
        if extra > 1:
            result.warnings.append(
                f"{source}: {extra} annotation lines past the last of {frames} frames of {video}; ignored"
            )
        return labels[:frames]
    if extra < 0 and labels:  # a short file: the frames past its end have no label at all
        # Short of the crops, the file is cut (a problem); short only of the video's frame count (which may
        # be an estimate from its duration), the last frames may simply have lost the face (a note).
        cut = highest > len(labels)
        result.skipped[SHORT_ANNOTATION if cut else SHORT_OF_VIDEO] += -extra
        result.warnings.append(
            f"{source}: {len(labels)} annotation lines for the {frames} frames of track {name}"
            + (f" (crops up to {highest})" if cut else "")
            + f"; the last {-extra} frames are left out (never trained on, never scored)"
        )
    return labels


def _track(
    name: str,
    split: str,
    labels: list[int] | None,
    source: Path,
    root: Path,
    videos: dict[str, Path],
    result: ReadResult,
    no_video: list[str],
) -> SampleRef | None:
    crop_dir = root / CROPS_DIR / name
    crops = crop_index(crop_dir)
    if crops is None:
        result.skipped["track without crop folder"] += 1
        result.warnings.append(f"{source}: track {name} has no crop folder {crop_dir}; skipped")
        return None
    video = videos.get(name) or videos.get(video_stem(name))
    audio, info = None, None
    if video is None:
        no_video.append(name)
    else:
        audio, info = audio_of(video, result)
    video_frames, highest = _video_frames(info), max(crops, default=0)
    if labels is None:  # a test track: every frame the video (or the crops) has, none labelled
        labels = [UNLABELLED] * max(video_frames or 0, highest)
    else:
        labels = _fit_labels(labels, video_frames, highest, (source, name, video), result)
    if not labels:
        result.skipped["track without frames"] += 1
        result.warnings.append(
            f"{source}: track {name} has no frames (an empty annotation, or no crops and no video); skipped"
        )
        return None
    paths = tuple(crop_dir / crops[i] if i in crops else None for i in range(1, len(labels) + 1))
    if split != "test":
        result.skipped["-1 frames"] += sum(label == UNLABELLED for label in labels)
        result.skipped["annotated frame without crop"] += sum(
            path is None and label != UNLABELLED for path, label in zip(paths, labels)
        )
    return SampleRef(
        sample_id=name,
        dataset="affwild2",
        domain="affwild2",
        split=split,
        subject=name,
        frame_paths=paths,
        audio=audio,
        frame_labels=tuple(labels),
        fps=info.fps if info is not None else None,
        source=str(source),
    )


def _test_tracks(root: Path, problems: Problems) -> list[str]:
    path = root / TEST_LIST
    if not path.is_file():
        return []
    try:
        entries = read_text(path, "test list").split()
    except DatasetFormatError as exc:
        problems.report(exc)
        return []
    # Entries are track names; some lists carry a video suffix.
    return [Path(e).stem if Path(e).suffix.lower() in VIDEO_SUFFIXES else e for e in entries]


def read(root: str | Path, splits: tuple[str, ...] | None = None, *, strict: bool = True) -> ReadResult:
    root = require_folder(
        Path(root), f"an Aff-Wild2 root with {ANNOTATION_DIRS[0]}/, {CROPS_DIR}/ and videos/"
    )
    annotations = next((root / d for d in ANNOTATION_DIRS if (root / d).is_dir()), None)
    if annotations is None:
        raise DatasetFormatError(f"no {ANNOTATION_DIRS[0]}/ or {ANNOTATION_DIRS[1]}/ under {root}", root)
    if not any((annotations / d).is_dir() for d in SPLIT_DIRS.values()):
        raise DatasetFormatError(
            f"no {' or '.join(d + '/' for d in SPLIT_DIRS.values())} under it", annotations
        )
    if not (root / CROPS_DIR).is_dir():
        raise DatasetFormatError(f"no {CROPS_DIR}/ (the aligned face crops) under {root}", root)
    wanted = check_splits(splits, ("train", "val", "test"))
    result = ReadResult(refs=[])
    problems = Problems(strict, result)
    videos = find_videos(root)
    no_video: list[str] = []
    seen: dict[str, Path] = {}
    for split in ("train", "val"):
        if split not in wanted:
            continue
        for path in sorted((annotations / SPLIT_DIRS[split]).glob("*.txt")):
            if path.stem in seen:
                problems.report(
                    DatasetFormatError(f"track {path.stem} is also annotated in {seen[path.stem]}", path)
                )
                continue
            seen[path.stem] = path
            labels = parse_annotation(path, problems)
            if labels is None:
                result.skipped["bad annotation file"] += 1
                continue
            ref = _track(path.stem, split, labels, path, root, videos, result, no_video)
            if ref is not None:
                result.refs.append(ref)
    if "test" in wanted:
        for name in _test_tracks(root, problems):
            if name in seen:  # a test track must never carry (or be scored against) training labels
                problems.report(
                    DatasetFormatError(
                        f"test track {name} is also annotated in {seen[name]}", root / TEST_LIST
                    )
                )
                continue
            seen[name] = root / TEST_LIST
            ref = _track(name, "test", None, root / TEST_LIST, root, videos, result, no_video)
            if ref is not None:
                result.refs.append(ref)
    if no_video:
        shown = ", ".join(no_video[:5]) + (", ..." if len(no_video) > 5 else "")
        result.skipped["track without video"] += len(no_video)
        result.warnings.append(
            f"{root}: {len(no_video)} tracks have no video under {'/, '.join(VIDEO_DIRS)}/ ({shown}): "
            "no audio, fps unknown"
        )
    return require_samples(
        result, root, f"annotation files under {annotations}/{{Train_Set,Validation_Set}}", strict
    )
