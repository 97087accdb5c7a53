"""ABAW test submissions: ``recognizer predict`` writes one, ``recognizer validate-submission`` checks one.

Format (DATASETS.md, "Test submission"): the header :data:`SUBMISSION_HEADER`, then one line
``<track>/<frame:05d>.jpg,<label 0-7>`` for every frame 1..N of every track of the test list.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from expr_common.data.affwild2 import TEST_LIST, crop_index, video_stem
from expr_common.data.readers import VIDEO_SUFFIXES
from expr_common.labels import CLASS_NAMES, NUM_CLASSES, SUBMISSION_HEADER
from expr_common.media import MediaError, probe

MAX_PROBLEMS = 50  # a broken file can have a million bad lines; the first ones say what is wrong
# ASCII digits only: \d would also match other scripts' digits ("٣"), which int() reads but checkers refuse.
_LINE = re.compile(r"^(?P<video>[^,/\s]+)/(?P<frame>[0-9]{5})\.jpg,(?P<label>[^,]*)$")
_UTF8_BOM = "\ufeff"


class SubmissionError(ValueError):
    """A file that ``validate-submission`` needs (the test list, the submission) cannot be read as text; the
    message names it."""


def _read_text(path: Path, what: str) -> str:
    """UTF-8 text of ``path`` without a leading BOM; an unreadable or non-UTF-8 file is a
    :class:`SubmissionError` naming the file (and the line of the first bad byte)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SubmissionError(f"{path}: cannot read the {what}: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise SubmissionError(
            f"{path}:{line}: the {what} is not UTF-8 text "
            f"(byte 0x{data[exc.start]:02x} at offset {exc.start})"
        ) from None
    return text[1:] if text.startswith(_UTF8_BOM) else text


def read_video_list(path: str | Path) -> list[str]:
    """Track names of a test list, one per whitespace-separated entry (as the Aff-Wild2 reader reads it:
    some lists carry a video suffix, which is not part of the crop-folder name)."""
    entries = _read_text(Path(path), "test list").split()
    return [Path(e).stem if Path(e).suffix.lower() in VIDEO_SUFFIXES else e for e in entries]


def fill_frames(n_frames: int, frames: np.ndarray, prob: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """Per-frame probabilities ``[n_frames, C]`` from those of the observed ``frames`` (sorted, 0-based):
    every other frame takes its nearest observed frame in time (the earlier one on a tie), and a track
    with no observed frame at all takes ``fallback`` (the split's mean), so no frame is ever left out."""
    if len(frames) == 0:
        return np.repeat(np.asarray(fallback, np.float64)[None], n_frames, axis=0)
    everyone = np.arange(n_frames)
    right = np.clip(np.searchsorted(frames, everyone), 0, len(frames) - 1)
    left = np.clip(right - 1, 0, len(frames) - 1)
    nearest = np.where(np.abs(frames[left] - everyone) <= np.abs(frames[right] - everyone), left, right)
    return np.asarray(prob, np.float64)[nearest]


def predict_tracks(
    checkpoint: str | Path,
    *,
    data: str | Path | None = None,
    split: str = "test",
    source: str = "affwild2",
    batch_size: int = 64,
    accelerator=None,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Track -> (probabilities ``[N, C]``, filled ``[N]`` bool) for every frame of every track of ``split``
    in submission order, with the checkpoint's fusion (m, n) and smoothing window; ``{}`` on non-main
    processes. N is the reader's frame count, frames without a crop included."""
    from accelerate import Accelerator

    from expr_common.data.config import load_data_config
    from expr_common.data.dataset import CachedClips, make_loader
    from expr_common.data.prepare import prepare_cached
    from expr_common.data.readers import read_dataset
    from expr_common.runs import dataset_root, resolve_path
    from recognizer.evaluate import load_model
    from recognizer.evaluation import frames_from_windows, predict_windows

    accelerator = accelerator or Accelerator()
    model, cfg, state = load_model(checkpoint)
    data_path, overrides = (data, []) if data else (cfg.data, cfg.data_overrides)
    data_cfg = load_data_config(resolve_path(data_path), overrides)
    configured = {s.name: s for s in data_cfg.sources}
    if source not in configured:
        raise ValueError(f"no source {source!r} in the data config; it has {', '.join(configured)}")
    root = dataset_root(configured[source].root)
    refs = read_dataset(configured[source].format, root, splits=(split,)).refs
    refs = [r for r in refs if r.split == split and r.frame_paths is not None]
    listed = root / TEST_LIST
    if split == "test" and listed.is_file():  # the reader yields test tracks in the list's order
        missing = sorted(set(read_video_list(listed)) - {r.sample_id for r in refs})
        if missing:  # a submission without them would be rejected: say so now, not at upload time
            raise ValueError(f"tracks of {listed} without frames or crop folder: {', '.join(missing)}")
    else:
        refs.sort(key=lambda r: r.sample_id)
    if not refs:
        raise ValueError(f"source {source!r} ({root}) has no {split} tracks with frames")

    cache = prepare_cached(data_cfg, accelerator).path
    dataset = CachedClips(cache, split=split, source=source)
    if len(dataset) == 0:
        raise ValueError(f"split {split!r} of {cache} has no samples from source {source!r}")
    loader = accelerator.prepare(make_loader(dataset, batch_size, workers=cfg.train.workers))
    preds = predict_windows(accelerator.prepare(model), loader, accelerator)
    if not accelerator.is_main_process:
        return {}
    table = frames_from_windows(dataset, preds)
    selection = state.get("selection") or {"m": cfg.model.fusion.m, "n": cfg.model.fusion.n}
    m, n, window = selection.get("m"), selection.get("n"), int(selection.get("window") or 1)
    prob = table.smoothed(table.prob if m is None or n is None else table.fused(m, n), window)
    fallback = prob.mean(axis=0) if len(prob) else np.full(NUM_CLASSES, 1.0 / NUM_CLASSES)

    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for ref in refs:
        n_frames = len(ref.frame_paths)
        rows = np.flatnonzero((table.ref_id == ref.sample_id) & (table.frame < n_frames))
        # A covered frame without a crop only saw a neighbour's pixels (prepare substitutes them), so it
        # is not evidence of its own: it takes its nearest frame that has a crop, like uncovered frames.
        has_crop = np.array([ref.frame_paths[f] is not None for f in table.frame[rows]], dtype=bool)
        rows = rows[has_crop] if has_crop.any() else rows
        observed = np.zeros(n_frames, bool)
        observed[table.frame[rows]] = True
        out[ref.sample_id] = (fill_frames(n_frames, table.frame[rows], prob[rows], fallback), ~observed)
    return out


def _write_atomic(path: Path, lines: list[str]) -> Path:
    """Temp file + rename: an interrupted run never leaves a half submission that looks complete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_submission(tracks: dict[str, tuple[np.ndarray, np.ndarray]], path: str | Path) -> Path:
    """The ABAW file: the header, then ``<track>/<frame:05d>.jpg,<argmax>`` for frames 1..N of each track,
    tracks in the order of ``tracks``."""
    lines = [SUBMISSION_HEADER]
    for track, (prob, _) in tracks.items():
        lines.extend(f"{track}/{i:05d}.jpg,{label}" for i, label in enumerate(prob.argmax(axis=1), start=1))
    return _write_atomic(Path(path), lines)


def write_probabilities(tracks: dict[str, tuple[np.ndarray, np.ndarray]], path: str | Path) -> Path:
    """Per-frame probabilities in the submission's columns, plus ``filled`` (1: the frame had no crop or no
    window and took its nearest observed frame's probabilities)."""
    lines = [f"{SUBMISSION_HEADER},filled"]
    for track, (prob, filled) in tracks.items():
        for i, (row, gap) in enumerate(zip(prob, filled), start=1):
            lines.append(f"{track}/{i:05d}.jpg," + ",".join(f"{p:.6f}" for p in row) + f",{int(gap)}")
    return _write_atomic(Path(path), lines)


def video_frame_count(video_dir: Path | None, track: str) -> int | None:
    """Frames of the video a track comes from (``_left``/``_right`` share one), or None if not found."""
    if video_dir is None:
        return None
    for suffix in VIDEO_SUFFIXES:
        candidate = video_dir / f"{video_stem(track)}{suffix}"
        try:
            if candidate.is_file():
                return probe(candidate).frames
        except (MediaError, OSError):  # a broken video, a name too long for the file system: use the crops
            return None
    return None


def validate_submission(
    path: str | Path,
    videos: str | Path,
    cropped: str | Path,
    *,
    limit: int = MAX_PROBLEMS,
    video_dir: str | Path | None = None,
) -> list[str]:
    """Every problem of a submission file, each as ``file:line: what is wrong (what was expected)``; the
    first ``limit`` of them plus a count of the rest. An empty list means the file is valid. With
    ``video_dir``, a video's own frame count is also accepted as N (a face lost before the video ends
    leaves frames past the last crop, and the challenge wants a line for every frame). A submission or test
    list that cannot be read as UTF-8 text raises :class:`SubmissionError` naming it."""
    path, videos, cropped = Path(path), Path(videos), Path(cropped)
    video_dir = None if video_dir is None else Path(video_dir)
    problems: list[str] = []
    listed = read_video_list(videos)
    list_line = {name: number for number, name in enumerate(listed, start=1)}  # one name per line
    text = _read_text(path, "submission")
    lines = text.split("\n")
    if lines and lines[-1] == "":  # the newline that ends the last line
        lines.pop()
    lines = [line.rstrip("\r") for line in lines]  # CRLF files are still one frame per line
    if not lines:
        return [f"{path}:1: expected the header {SUBMISSION_HEADER!r}, found an empty file"]
    start = 1
    if lines[0] != SUBMISSION_HEADER:
        problems.append(f"{path}:1: expected the header {SUBMISSION_HEADER!r}, found {lines[0][:120]!r}")
        start = 0 if _LINE.match(lines[0]) else 1  # a missing header: still check line 1 as a frame
    seen: dict[tuple[str, int], int] = {}  # (video, frame) -> line
    last: dict[str, tuple[int, int]] = {}  # video -> (highest frame so far, its line)
    for number, line in enumerate(lines[start:], start=start + 1):
        match = _LINE.match(line)
        if match is None:
            problems.append(
                f"{path}:{number}: expected '<video>/<5 digits>.jpg,<label 0-7>', found {line[:120]!r}"
            )
            continue
        video, frame, label = match["video"], int(match["frame"]), match["label"]
        if not re.fullmatch(r"-?[0-9]{1,9}", label):
            problems.append(f"{path}:{number}: expected an integer label 0-7, found {label!r}")
        elif not 0 <= int(label) < NUM_CLASSES:
            problems.append(f"{path}:{number}: label {int(label)} is outside 0-7 ({', '.join(CLASS_NAMES)})")
        if video not in list_line:
            if video not in last:  # once per video, at its first line
                problems.append(f"{path}:{number}: video {video!r} is not in {videos}")
            last[video] = (max(frame, last.get(video, (0, 0))[0]), number)
            continue
        if (video, frame) in seen:
            problems.append(
                f"{path}:{number}: duplicate of line {seen[video, frame]} ({video}/{frame:05d}.jpg)"
            )
            continue
        seen[video, frame] = number
        expected = last.get(video, (0, 0))[0] + 1
        if frame != expected:
            problems.append(
                f"{path}:{number}: expected {video}/{expected:05d}.jpg (frames numbered 1..N in order), "
                f"found {video}/{frame:05d}.jpg"
            )
        last[video] = (max(frame, expected - 1), number)
    end = len(lines) + 1  # where a missing video's lines would have to go
    for video in listed:
        crops = crop_index(cropped / video)
        if crops is None:
            problems.append(
                f"{videos}:{list_line[video]}: video {video} has no crop folder {cropped / video}"
            )
            continue
        # Two rules for N, both accepted: the number of crops (what checkers that count files expect),
        # and the highest crop number, because a frame whose face was not detected has no crop but the
        # challenge still asks for a line for it, so a complete submission can run past the crop count.
        allowed = sorted({len(crops), max(crops, default=0)})
        why = f"{len(crops)} crops in {cropped / video}, highest number {max(crops, default=0)}"
        frames = video_frame_count(video_dir, video)
        if frames:
            allowed = sorted({*allowed, frames})
            why += f", {frames} frames in its video"
        rule = " or ".join(str(n) for n in allowed)
        if video not in last:
            problems.append(
                f"{path}:{end}: no lines for video {video} (listed at {videos}:{list_line[video]}); "
                f"expected frames 1..{rule} ({why})"
            )
            continue
        highest, line = last[video]
        if highest not in allowed:
            problems.append(
                f"{path}:{line}: video {video} has frames 1..{highest}; expected 1..{rule} ({why})"
            )
    if len(problems) > limit:
        problems = [*problems[:limit], f"... and {len(problems) - limit} more problems"]
    return problems


def count_submission(path: str | Path) -> tuple[int, int]:
    """(videos, frames) of a submission that validated: for the closing 'OK' line."""
    names = [line.split("/", 1)[0] for line in Path(path).read_text(encoding="utf-8-sig").splitlines()[1:]]
    return len(set(filter(None, names))), sum(1 for name in names if name)


def _predict_command(args) -> int:
    tracks = predict_tracks(
        args.checkpoint, data=args.data, split=args.split, source=args.source, batch_size=args.batch_size
    )
    if not tracks:  # a non-main process of a multi-process run: the main one writes
        return 0
    write_submission(tracks, args.out)
    if args.probs is not None:
        write_probabilities(tracks, args.probs)
    frames = sum(len(prob) for prob, _ in tracks.values())
    filled = sum(int(gap.sum()) for _, gap in tracks.values())
    print(
        f"{args.out}: {len(tracks)} videos, {frames} frames ({filled} without a crop or a window took "
        "their nearest observed frame's prediction)"
    )
    return 0


def _validate_command(args) -> int:
    problems = validate_submission(args.file, args.videos, args.cropped, video_dir=args.video_dir)
    if problems:
        print("\n".join(problems))
        print(f"INVALID: {args.file}")
        return 1
    videos, frames = count_submission(args.file)
    print(f"OK: {videos} videos, {frames} frames")
    return 0


def add_parsers(sub) -> None:
    """``recognizer predict`` and ``recognizer validate-submission`` on the ``recognizer`` subcommands."""
    predict = sub.add_parser("predict", help="ABAW submission file: a label for every frame of a split")
    predict.add_argument("--checkpoint", type=Path, required=True)
    predict.add_argument("--data", default=None, help="data config (default: the checkpoint's)")
    predict.add_argument("--out", type=Path, required=True, help="submission file to write")
    predict.add_argument("--split", default="test", choices=("train", "val", "test"))
    predict.add_argument("--source", default="affwild2", help="data-config source to predict")
    predict.add_argument("--probs", type=Path, default=None, help="also write per-frame probabilities")
    predict.add_argument("--batch-size", type=int, default=64)
    predict.set_defaults(func=_predict_command)

    validate = sub.add_parser("validate-submission", help="check an ABAW submission file")
    validate.add_argument("file", type=Path)
    validate.add_argument("--videos", type=Path, required=True, help=f"test list ({TEST_LIST})")
    validate.add_argument("--cropped", type=Path, required=True, help="cropped_aligned/ folder")
    validate.add_argument(
        "--video-dir",
        type=Path,
        default=None,
        help="folder of the videos (e.g. videos/): also accept each video's own frame count as N",
    )
    validate.set_defaults(func=_validate_command)
