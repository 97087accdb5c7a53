"""Generic CSV manifest reader: any other data, single images, audio-only samples, and ``gan-aug generate``
output (docs/datasets.md, "Generic manifest")."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from expr_common.atomic import atomic_write

from expr_common.data.readers import (
    AUDIO_SUFFIXES,
    IMAGE_SUFFIXES,
    VIDEO_SUFFIXES,
    DatasetFormatError,
    Problems,
    ReadResult,
    audio_of,
    check_splits,
    list_files,
    probe_cached,
    read_text,
    require_samples,
)
from expr_common.data.refs import DOMAINS, SPLITS, SampleRef, valid_domain
from expr_common.labels import UNLABELLED, parse_label
from expr_common.media import MediaError

MANIFEST = "manifest.csv"
COLUMNS = ("sample_id", "frames", "audio", "label", "split", "subject", "domain")


def manifest_path(root: str | Path) -> Path:
    """The CSV itself, or ``manifest.csv`` in the given folder."""
    path = Path(root)
    if path.is_dir():
        path = path / MANIFEST
        if not path.is_file():
            raise DatasetFormatError(
                f"no {MANIFEST} in this folder (expected a CSV with {','.join(COLUMNS)})", root
            )
    elif not path.is_file():
        raise DatasetFormatError(
            f"does not exist; expected a manifest CSV or a folder holding {MANIFEST}", root
        )
    return path.absolute()


def write(
    path: str | Path, rows: Iterable[Mapping[str, Any]], extra_columns: Sequence[str] = ()
) -> Path:
    """Write a manifest CSV atomically: the :data:`COLUMNS` (every row must give each; ``label`` a class
    name, ``frames``/``audio`` relative to the CSV's folder or ``""``), then ``extra_columns`` (kept by the
    reader in a sample's ``meta``). The one place the manifest schema is written."""
    columns = [*COLUMNS, *(c for c in extra_columns if c not in COLUMNS)]
    with atomic_write(path) as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, lineterminator="\n", extrasaction="raise")
        writer.writeheader()
        for row in rows:
            missing = [c for c in COLUMNS if c not in row]
            if missing:
                raise ValueError(f"manifest row {dict(row)} lacks column(s) {', '.join(missing)}")
            writer.writerow(row)
    return Path(path)


def _frames(value: str, base: Path) -> tuple[Path, str]:
    """(path, kind) of a ``frames`` cell: kind is "folder", "video" or "image"; "" when unrecognised."""
    path = base / value
    suffix = path.suffix.lower()
    if path.is_dir():
        return path, "folder"
    if suffix in VIDEO_SUFFIXES:
        return path, "video"
    if suffix in IMAGE_SUFFIXES:
        return path, "image"
    return path, "folder" if not suffix else ""  # a suffix-less path that does not exist: a missing folder


def parse_row(row: dict[str, str], where: str, base: Path) -> tuple[dict, list[Path]]:
    """SampleRef fields of one row and the files it needs (not checked here); raises ``ValueError`` with
    the reason for a malformed row (the caller adds file and line)."""
    sample_id = row["sample_id"].strip()
    if not sample_id:
        raise ValueError("empty sample_id")
    fields: dict = {"sample_id": sample_id, "dataset": "manifest", "source": where}
    needed: list[Path] = []
    frames, sound = row["frames"].strip(), row["audio"].strip()
    if not frames and not sound:
        raise ValueError(f"sample {sample_id} has neither frames nor audio")
    if frames:
        path, kind = _frames(frames, base)
        if not kind:
            raise ValueError(
                f"frames {frames!r} is neither a folder of images, a video ({'/'.join(VIDEO_SUFFIXES)}) "
                f"nor an image ({'/'.join(IMAGE_SUFFIXES)})"
            )
        needed.append(path)
        if kind == "video":
            fields["video"] = path
        elif kind == "image":
            fields["frame_paths"] = (path,)  # a one-frame clip
        else:
            fields["frame_folder"] = path  # listed once the folder is known to exist
    if sound:
        path = base / sound
        if path.suffix.lower() not in AUDIO_SUFFIXES + VIDEO_SUFFIXES:
            raise ValueError(
                f"audio {sound!r} is neither a sound file ({'/'.join(AUDIO_SUFFIXES)}) nor a video"
            )
        needed.append(path)
        fields["audio"] = path
    label = row["label"].strip()
    fields["label"] = parse_label(label) if label else UNLABELLED
    split = row["split"].strip()
    if split not in SPLITS:
        raise ValueError(f"split {split!r} is not one of {', '.join(SPLITS)}")
    fields["split"] = split
    fields["subject"] = row["subject"].strip() or sample_id
    domain = row["domain"].strip() or "other"
    if not valid_domain(domain):
        raise ValueError(
            f"domain {domain!r} is not a lower-case name (a letter, then letters, digits, _ or -; "
            f"e.g. {', '.join(DOMAINS)})"
        )
    fields["domain"] = domain
    if row.get("fps", "").strip():  # optional extra column: the frame rate of a folder of frames
        fps = float(row["fps"])
        if not math.isfinite(fps) or fps <= 0:
            raise ValueError(f"fps {row['fps'].strip()!r} is not a positive frame rate")
        fields["fps"] = fps
    # Other extra columns ride along for the user's own bookkeeping.
    fields["meta"] = {k: v for k, v in row.items() if k not in COLUMNS and k != "fps"}
    return fields, needed


def _sound_file(path: Path, result: ReadResult) -> Path | None:
    """``path`` if its header opens as a sound file, else None (counted): what ``prepare`` would find."""
    try:
        info = probe_cached(path)
    except (MediaError, OSError) as exc:  # e.g. a zero-byte .wav
        result.skipped["unreadable audio"] += 1
        result.warnings.append(f"{path}: cannot be probed ({exc}); its samples get has_audio=False")
        return None
    if not info.has_audio:
        result.skipped["audio file without audio stream"] += 1
        result.warnings.append(f"{path}: has no audio stream; its samples get has_audio=False")
        return None
    return path


def _rows(reader, bad_row: Callable[[str, int], None]) -> Iterator[tuple[int, list[str]]]:
    """(line, cells) of each row after the header. A CSV syntax error (for instance an unclosed quote that
    swallows the rest of the file into one oversized cell) is reported at its line and ends the file."""
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            bad_row(f"not readable as CSV ({exc}); rows after it ignored", reader.line_num)
            return
        yield reader.line_num, values


def read(
    root: str | Path,
    splits: tuple[str, ...] | None = None,
    *,
    strict: bool = True,
    check_audio: bool = False,  # probe video files used as audio for a sound track (`expr-data check` does)
) -> ReadResult:
    path = manifest_path(root)
    base = path.parent
    wanted = check_splits(splits, SPLITS)
    result = ReadResult(refs=[])
    problems = Problems(strict, result)
    # Decoded whole (not streamed) so that a byte that is not UTF-8 is an error naming its line.
    reader = csv.reader(io.StringIO(read_text(path, "manifest"), newline=""))
    try:
        header = [c.strip() for c in next(reader, [])]
    except csv.Error as exc:
        raise DatasetFormatError(f"not a readable CSV header: {exc}", path, 1) from None
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise DatasetFormatError(
            f"header lacks column(s) {', '.join(missing)}: expected {','.join(COLUMNS)}, "
            f"found {','.join(header)[:200] or 'nothing'}",
            path,
            1,
        )

    def bad_row(message: str, line: int) -> None:
        problems.report(DatasetFormatError(message, path, line))
        result.skipped["bad row"] += 1  # reached only when not strict (`expr-data check`, `strict: false`)

    lines: dict[str, int] = {}
    for line, values in _rows(reader, bad_row):
        if not any(v.strip() for v in values):
            continue
        if len(values) != len(header):
            bad_row(f"{len(values)} cells for {len(header)} columns", line)
            continue
        row = dict(zip(header, values))
        try:
            fields, needed = parse_row(row, f"{path}:{line}", base)
        except (ValueError, OSError) as exc:  # OSError: e.g. a file name too long for the file system
            bad_row(str(exc), line)
            continue
        sample_id = fields["sample_id"]
        if sample_id in lines:
            bad_row(f"sample_id {sample_id!r} repeats the one on line {lines[sample_id]}", line)
            continue
        lines[sample_id] = line
        if fields["split"] not in wanted:
            continue
        try:
            absent = [p for p in needed if not p.exists()]
        except OSError as exc:
            bad_row(f"{sample_id}: {exc}", line)
            continue
        if absent:  # the table is fine, the data is not all there: report it, keep the rest
            result.skipped["missing file"] += 1
            result.warnings.append(f"{path}:{line}: {sample_id}: missing {', '.join(map(str, absent))}")
            continue
        folder = fields.pop("frame_folder", None)
        if folder is not None:
            images = list_files(folder, IMAGE_SUFFIXES)
            if not images:
                result.skipped["empty frame folder"] += 1
                result.warnings.append(f"{path}:{line}: {sample_id}: no images in {folder}")
                continue
            fields["frame_paths"] = tuple(images)
        audio = fields.get("audio")
        if check_audio and audio is not None and audio.suffix.lower() in VIDEO_SUFFIXES:
            fields["audio"], _ = audio_of(audio, result)
        elif check_audio and audio is not None:
            fields["audio"] = _sound_file(audio, result)
        result.refs.append(SampleRef(**fields))
    return require_samples(result, path, f"rows with split in {wanted}", strict)
