"""AFEW reader: ``<root>/{Train,Val}/<Emotion>/<id>.avi``, one sample per clip, label from the folder
(docs/datasets.md, "AFEW"). The clip is both the frame source and the sound track."""

from __future__ import annotations

from pathlib import Path

from expr_common.data.readers import (
    DatasetFormatError,
    Problems,
    ReadResult,
    audio_of,
    check_splits,
    list_files,
    require_folder,
    require_samples,
)
from expr_common.data.refs import SampleRef
from expr_common.labels import AFEW_FOLDERS, afew_folder_to_abaw

# Folder name (lower case) -> split; AFEW ships Train/ and Val/, some copies are lower-cased.
SPLIT_NAMES = {"train": "train", "val": "val", "validation": "val"}
CLIP_SUFFIXES = (".avi", ".mp4")


def split_folders(root: Path) -> dict[str, Path]:
    """Split -> its folder under ``root`` (names matched case-insensitively)."""
    found: dict[str, Path] = {}
    for child in sorted(root.iterdir()):
        split = SPLIT_NAMES.get(child.name.lower())
        if split is not None and child.is_dir():
            found.setdefault(split, child)
    return found


def folder_label(folder: Path, problems: Problems) -> int | None:
    """ABAW label of an emotion folder; an unknown name is a format error naming the folder."""
    try:
        return afew_folder_to_abaw(folder.name)
    except ValueError:
        problems.report(
            DatasetFormatError(f"unknown emotion folder: expected one of {', '.join(AFEW_FOLDERS)}", folder)
        )
        return None


def read(
    root: str | Path,
    splits: tuple[str, ...] | None = None,
    *,
    strict: bool = True,
    check_audio: bool = False,  # probe every clip for a sound track (slower; `expr-data check` does)
) -> ReadResult:
    root = require_folder(Path(root), "an AFEW root with Train/ and Val/ (emotion folders of .avi clips)")
    folders = split_folders(root)
    if not folders:
        raise DatasetFormatError(f"no Train/ or Val/ folder (any case) under {root}", root)
    result = ReadResult(refs=[])
    problems = Problems(strict, result)
    seen: dict[str, Path] = {}
    for split in check_splits(splits, ("train", "val")):
        if split not in folders:
            continue
        for emotion in sorted(
            p for p in folders[split].iterdir() if p.is_dir() and not p.name.startswith(".")
        ):
            label = folder_label(emotion, problems)
            if label is None:
                result.skipped["unknown emotion folder"] += 1
                continue
            for clip in list_files(emotion, CLIP_SUFFIXES):
                if clip.stem in seen:  # sample ids must be unique; keep the first, say so
                    result.skipped["duplicate clip id"] += 1
                    result.warnings.append(f"{clip}: clip id {clip.stem} already read from {seen[clip.stem]}")
                    continue
                seen[clip.stem] = clip
                audio: Path | None = clip
                fps = None
                if check_audio:
                    audio, info = audio_of(clip, result)
                    if info is None:  # not even a header: prepare could not decode it either
                        continue
                    fps = info.fps
                result.refs.append(
                    SampleRef(
                        sample_id=clip.stem,
                        dataset="afew",
                        domain="afew",
                        split=split,
                        subject=clip.stem,  # AFEW has no identities; a clip is its own subject
                        label=label,
                        video=clip,
                        audio=audio,
                        fps=fps,
                        source=str(clip),
                    )
                )
    return require_samples(result, root, "emotion folders of .avi clips under Train/ and Val/", strict)
