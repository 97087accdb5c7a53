"""Open every media file a dataset's references name, as ``expr-data check`` does before any training: each
image decoded, each video's header read and its first frame decoded, each sound track's first frame
decoded; ``deep`` decodes every video frame and all the sound as well (and finds a video cut short of
what its header announces). A file that fails is a one-line message naming it; nothing raises."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import av
from PIL import Image, UnidentifiedImageError

from expr_common.data.refs import SampleRef
from expr_common.media import MediaError, iter_video, probe, read_audio, short_of_header


@dataclass
class MediaReport:
    files: dict[str, int] = field(default_factory=lambda: {"image": 0, "video": 0, "audio": 0})
    unreadable: list[str] = field(default_factory=list)  # "path: what is wrong"


def media_files(refs: Iterable[SampleRef]) -> Iterator[tuple[Path, str]]:
    """Each distinct (file, kind) the references read: frame images, videos, sound tracks."""
    seen: set[tuple[Path, str]] = set()
    for ref in refs:
        named = [(p, "image") for p in ref.frame_paths or () if p is not None]
        named += [(ref.video, "video")] if ref.video is not None else []
        named += [(ref.audio, "audio")] if ref.audio is not None else []
        for item in named:
            if item not in seen:
                seen.add(item)
                yield item


def check_media(refs: Iterable[SampleRef], deep: bool = False) -> MediaReport:
    report = MediaReport()
    checks = {"image": _image_problem, "video": _video_problem, "audio": _audio_problem}
    for path, kind in media_files(refs):
        if not path.is_file():
            continue  # a missing file is the reader's to count
        report.files[kind] += 1
        problem = checks[kind](path, deep)
        if problem:
            report.unreadable.append(f"{path}: {problem}")
    return report


def _image_problem(path: Path, deep: bool) -> str | None:
    try:
        with Image.open(path) as image:
            image.load()  # the whole image: a cut-off JPEG or PNG fails here, not at the header
    except UnidentifiedImageError:
        return "not an image (unknown or empty format)"
    except (OSError, ValueError, SyntaxError) as exc:
        return f"cannot decode image ({exc})"
    return None


def _video_problem(path: Path, deep: bool) -> str | None:
    try:
        announced = probe(path).frames or 0
        frames = iter_video(path)
        decoded = sum(1 for _ in frames) if deep else int(next(frames, None) is not None)
        if not deep:
            frames.close()
    except MediaError as exc:
        return _without_path(exc, path)
    if decoded == 0:
        return "no decodable video frames"
    if deep and short_of_header(announced, decoded):
        return f"decodes {decoded} of the {announced} frames its header announces (truncated)"
    return None


def _audio_problem(path: Path, deep: bool) -> str | None:
    try:
        if deep:
            wave = read_audio(path)
            return None if len(wave) else "empty audio track"
        return _first_audio_frame_problem(path)
    except MediaError as exc:
        return _without_path(exc, path)


def _first_audio_frame_problem(path: Path) -> str | None:
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                return None  # a file without sound: the readers flag it (silent videos)
            frame = next(container.decode(container.streams.audio[0]), None)
    except (av.FFmpegError, OSError) as exc:
        return f"cannot decode audio: {exc}"
    return None if frame is not None else "empty audio track"


def _without_path(exc: MediaError, path: Path) -> str:
    text = str(exc)
    return text[len(f"{path}: ") :] if text.startswith(f"{path}: ") else text
