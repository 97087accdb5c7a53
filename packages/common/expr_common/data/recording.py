"""Any recording (a video, a sound file, an image) as the windows a trained recognizer reads, with the same
preprocessing as ``expr-data prepare``: windows of ``window_seconds`` every ``stride_seconds``
(:func:`~expr_common.data.frames.window_spans`), K frames at equal intervals in each, face crops found and
tracked as for training (:func:`~expr_common.data.faces.face_crops`), and the log-mel of the same window
from the file's own sound track.

A video is decoded once, front to back, holding only the last window's frames. The detector runs on
every ``detect_every``-th frame and on every sampled one; a window's crops are made exactly as prepare
makes a clip's (strict detector, permissive retry where none of its frames has a face, nearest box in
time), so a clip gives the crops training saw. Unlike training, a window where no frame has a face is not
scored on a centre crop: it has ``has_video=False`` (audio only, or no prediction). The per-frame face
track (each frame takes the nearest detection within ``max_gap_seconds``) says which frames show a face.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from expr_common.data.audio import load_wave, silent_log_mel, window_log_mel
from expr_common.data.config import PreprocessConfig
from expr_common.data.faces import Box, detect_clip, detectors_for, face_crops, fill_from_nearest, read_image
from expr_common.data.frames import sample_indices
from expr_common.data.readers import AUDIO_SUFFIXES, IMAGE_SUFFIXES
from expr_common.media import MediaError, iter_video, probe

AUDIO_ROWS_PER_SECOND = 30.0  # the time base of a sound file's rows (Aff-Wild2's frame rate)
TRACK_GAP_SECONDS = 0.5  # a frame shows a face if a detection lies at most this far from it in time


@dataclass(frozen=True)
class Recording:
    path: Path
    kind: str  # "video", "audio" or "image"
    fps: float  # rows per second: the video's rate, AUDIO_ROWS_PER_SECOND for sound, 1 for an image
    frames: int  # announced rows (a video's header count; the decode has the last word)
    has_audio: bool


@dataclass
class RecordingWindow:
    start: int  # frame span [start, stop)
    stop: int
    indices: tuple[int, ...]  # the K sampled frames
    video: np.ndarray  # uint8 [K, 3, S, S]
    audio: torch.Tensor  # float32 [1, F, T] (zeros without sound)
    has_video: bool  # a face was found in the window (or the frames are aligned faces)
    has_audio: bool


@dataclass
class FaceTrack:
    """Per frame of a recording, filled while its windows are read."""

    detected: dict[int, Box | None] = field(default_factory=dict)  # the strict detector's answer, where run
    retried: dict[int, Box | None] = field(default_factory=dict)  # the permissive retry's, in faceless windows
    frames: int = 0  # frames decoded
    boxes: list[Box | None] = field(default_factory=list)  # the track: nearest detection within the gap

    def finish(self, max_gap: int) -> None:
        own = [self.detected.get(t) or self.retried.get(t) for t in range(self.frames)]
        self.boxes = fill_from_nearest(own, range(self.frames), max_gap)

    @property
    def has_face(self) -> np.ndarray:
        return np.array([b is not None for b in self.boxes], dtype=bool)


def open_recording(path: str | Path) -> Recording:
    """What ``path`` is, from its header (an image by its suffix); a one-line MediaError otherwise."""
    path = Path(path)
    if not path.is_file():
        raise MediaError(f"{path}: no such file")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        if read_image(str(path)) is None:
            raise MediaError(f"{path}: cannot read the image")
        return Recording(path, "image", 1.0, 1, False)
    info = probe(path)
    if info.has_video and path.suffix.lower() not in AUDIO_SUFFIXES:
        if not info.fps:
            raise MediaError(f"{path}: the video stream has no frame rate")
        return Recording(path, "video", info.fps, info.frames or 0, info.has_audio)
    if not info.has_audio:
        raise MediaError(f"{path}: has neither a video nor an audio stream")
    return Recording(path, "audio", AUDIO_ROWS_PER_SECOND, 0, True)


def recording_windows(
    rec: Recording, cfg: PreprocessConfig, *, detect: bool, track: FaceTrack, detect_every: int = 1
) -> Iterator[RecordingWindow]:
    """The windows of ``rec`` in time order; ``track`` holds the face track once they are all read."""
    wave, problem = load_wave(rec.path, cfg.sample_rate) if rec.has_audio or rec.kind == "audio" else (None, None)
    if rec.kind == "audio":
        if wave is None:
            raise MediaError(f"{rec.path}: {problem or 'no audio'}")
        yield from _audio_windows(rec, cfg, wave, track)
        return
    detectors = detectors_for(cfg) if detect else ()
    if rec.kind == "image":
        image = read_image(str(rec.path))
        assert image is not None  # open_recording read it
        frames = {0: image}
        track.frames = 1
        yield _window(0, 1, frames, cfg, None, detectors, track, rec.fps)
        track.finish(0)
        return
    length = max(1, int(round(cfg.window_seconds * rec.fps)))
    stride = max(1, int(round(cfg.stride_seconds * rec.fps)))
    recent: deque[tuple[int, np.ndarray]] = deque(maxlen=length)
    start, last_stop, frame = 0, 0, -1
    for frame, image in enumerate(iter_video(rec.path)):
        recent.append((frame, image))
        if detectors and frame % detect_every == 0:
            track.detected[frame] = detectors[0](image)
        while start + length - 1 == frame:  # the window [start, start + length) is complete
            yield _window(start, start + length, dict(recent), cfg, wave, detectors, track, rec.fps)
            last_stop, start = start + length, start + stride
    total = frame + 1
    if total == 0:
        raise MediaError(f"{rec.path}: no decodable video frames")
    if total < length or last_stop < total:  # as window_spans: one short window, or the tail's last one
        first = 0 if total < length else total - length
        yield _window(first, total, dict(recent), cfg, wave, detectors, track, rec.fps)
    track.frames = total
    track.finish(int(round(TRACK_GAP_SECONDS * rec.fps)))


def _window(
    start: int,
    stop: int,
    frames: dict[int, np.ndarray],
    cfg: PreprocessConfig,
    wave: np.ndarray | None,
    detectors: tuple,
    track: FaceTrack,
    fps: float,
) -> RecordingWindow:
    indices = tuple(sample_indices(start, stop, cfg.frames))
    images = [frames[i] for i in indices]
    has_video = True
    if detectors:  # prepare's detect_clip, sharing the strict detector's per-frame answers between windows
        boxes = detect_clip(images, indices, detectors, strict_known=track.detected)
        for i, box in zip(indices, boxes):
            if track.detected[i] is None and box is not None:
                track.retried[i] = box
        has_video = any(b is not None for b in boxes)
        crops, _ = face_crops(
            images, indices, size=cfg.image_size, detect=True, margin=cfg.face_margin, boxes=boxes
        )
    else:
        crops, _ = face_crops(images, indices, size=cfg.image_size, detect=False)
    mel = None if wave is None else window_log_mel(wave, cfg, (start, stop), fps)
    audio = silent_log_mel(cfg) if mel is None else mel
    return RecordingWindow(start, stop, indices, crops, audio.float(), has_video, mel is not None)


def _audio_windows(
    rec: Recording, cfg: PreprocessConfig, wave: np.ndarray, track: FaceTrack
) -> Iterator[RecordingWindow]:
    from expr_common.data.frames import window_spans

    total = max(1, int(np.ceil(len(wave) / cfg.sample_rate * rec.fps)))
    blank = np.zeros((cfg.frames, 3, cfg.image_size, cfg.image_size), np.uint8)
    for start, stop in window_spans(total, rec.fps, cfg.window_seconds, cfg.stride_seconds):
        mel = window_log_mel(wave, cfg, (start, stop), rec.fps).float()
        yield RecordingWindow(start, stop, tuple(sample_indices(start, stop, cfg.frames)), blank, mel, False, True)
    track.frames = total
    track.finish(0)
