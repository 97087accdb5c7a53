"""``recognizer validate-submission``: check an ABAW test submission (``recognizer predict`` writes one).

Format (docs/datasets.md, "Test submission"): the header :data:`SUBMISSION_HEADER`, then one line
``<track>/<frame:05d>.jpg,<label 0-7>`` for every frame 1..N of every track of the test list.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from pathlib import Path

from expr_common.data.affwild2 import TEST_LIST, crop_index, video_stem
from expr_common.data.readers import VIDEO_SUFFIXES
from expr_common.errors import ExprError
from expr_common.labels import CLASS_NAMES, NUM_CLASSES, SUBMISSION_HEADER
from expr_common.media import MediaError, probe

MAX_PROBLEMS = 50  # a broken file can have a million bad lines; the first ones say what is wrong
# ASCII digits only: \d would also match other scripts' digits ("٣"), which int() reads but checkers refuse.
_LINE = re.compile(r"^(?P<video>[^,/\s]+)/(?P<frame>[0-9]{5})\.jpg,(?P<label>[^,]*)$")
_UTF8_BOM = "\ufeff"


class SubmissionError(ExprError, ValueError):
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
    listed = read_video_list(videos)
    list_line = {name: number for number, name in enumerate(listed, start=1)}  # one name per line
    lines = _submission_lines(path)
    if not lines:
        return [f"{path}:1: expected the header {SUBMISSION_HEADER!r}, found an empty file"]
    problems: list[str] = []
    start = 1
    if lines[0] != SUBMISSION_HEADER:
        problems.append(f"{path}:1: expected the header {SUBMISSION_HEADER!r}, found {lines[0][:120]!r}")
        start = 0 if _LINE.match(lines[0]) else 1  # a missing header: still check line 1 as a frame
    last = _check_lines(path, lines, start, list_line, videos, problems)
    video_dir = None if video_dir is None else Path(video_dir)
    where = _Listing(path, videos, list_line, len(lines) + 1, cropped, video_dir)
    for video in listed:
        _check_video(where, video, last.get(video), problems)
    if len(problems) > limit:
        problems = [*problems[:limit], f"... and {len(problems) - limit} more problems"]
    return problems


def _submission_lines(path: Path) -> list[str]:
    """The submission's lines, without the newline that ends the last one and without CRs (CRLF files are
    still one frame per line)."""
    lines = _read_text(path, "submission").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.rstrip("\r") for line in lines]


def _check_lines(
    path: Path, lines: list[str], start: int, list_line: dict[str, int], videos: Path, problems: list[str]
) -> dict[str, tuple[int, int]]:
    """Check every frame line from ``start`` (appending to ``problems``); returns, per video, the highest
    frame its lines reach and the line of it."""
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
    return last


@dataclass(frozen=True)
class _Listing:
    path: Path  # the submission
    videos: Path  # the test list
    list_line: dict[str, int]  # video -> its line in the test list
    end: int  # the line after the submission's last: where a missing video's lines would go
    cropped: Path  # the crops' folder, a folder per video
    video_dir: Path | None  # the videos (their frame counts), if given


def _check_video(where: _Listing, video: str, last: tuple[int, int] | None, problems: list[str]) -> None:
    """Does the submission cover the listed ``video`` (``last``: its highest frame and line, None: no
    line)? N is the highest crop number: a frame whose face was not detected has no crop but the challenge
    still asks for a line for it, and every frame that has a crop must have its line, so a file that stops
    before the last crop is incomplete however many crops are missing before it. With the videos, their own
    frame count (a face lost before the video ends) is accepted as well."""
    path, listed_at, cropped = where.path, f"{where.videos}:{where.list_line[video]}", where.cropped
    crops = crop_index(cropped / video)
    if crops is None:
        problems.append(f"{listed_at}: video {video} has no crop folder {cropped / video}")
        return
    highest_crop = max(crops, default=0)
    allowed = [highest_crop]
    why = f"{len(crops)} crops in {cropped / video}, the last numbered {highest_crop}"
    frames = video_frame_count(where.video_dir, video)
    if frames and frames > highest_crop:
        allowed.append(frames)
        why += f", {frames} frames in its video"
    rule = " or ".join(str(n) for n in allowed)
    if last is None:
        problems.append(
            f"{path}:{where.end}: no lines for video {video} (listed at {listed_at}); "
            f"expected frames 1..{rule} ({why})"
        )
    elif last[0] not in allowed:
        highest, line = last
        problems.append(f"{path}:{line}: video {video} has frames 1..{highest}; expected 1..{rule} ({why})")


def count_submission(path: str | Path) -> tuple[int, int]:
    """(videos, frames) of a submission that validated: for the closing 'OK' line."""
    names = [line.split("/", 1)[0] for line in Path(path).read_text(encoding="utf-8-sig").splitlines()[1:]]
    return len(set(filter(None, names))), sum(1 for name in names if name)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path)
    parser.add_argument("--videos", type=Path, required=True, help=f"test list ({TEST_LIST})")
    parser.add_argument("--cropped", type=Path, required=True, help="cropped_aligned/ folder")
    parser.add_argument(
        "--video-dir",
        type=Path,
        default=None,
        help="folder of the videos (e.g. videos/): also accept each video's own frame count as N",
    )


def run(args: argparse.Namespace) -> int:
    problems = validate_submission(args.file, args.videos, args.cropped, video_dir=args.video_dir)
    if problems:
        print("\n".join(problems))
        print(f"INVALID: {args.file}")
        return 1
    videos, frames = count_submission(args.file)
    print(f"OK: {videos} videos, {frames} frames")
    return 0
