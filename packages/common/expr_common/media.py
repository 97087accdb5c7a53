"""Media encoding and decoding with PyAV (FFmpeg inside its wheel); the only module that opens media.

torchaudio 2.11 decodes through torchcodec, which needs a system FFmpeg; PyAV does not. Everything that
reads or writes a video or sound file goes through here.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from expr_common.errors import ExprError

# Container -> (video codec, audio codec, pixel format). AVI mirrors AFEW (MPEG-4 Part 2 + MP3);
# MP4 mirrors Aff-Wild2 (H.264 + AAC).
_CODECS = {
    ".avi": ("mpeg4", "mp3", "yuv420p"),
    ".mp4": ("libx264", "aac", "yuv420p"),
}


class MediaError(ExprError, RuntimeError):
    """A media file cannot be opened or decoded; the message names the file."""


@dataclass(frozen=True)
class MediaInfo:
    path: Path
    has_video: bool
    has_audio: bool
    fps: float | None
    frames: int | None
    width: int | None
    height: int | None
    sample_rate: int | None
    duration_s: float | None


def write_video(
    path: str | Path,
    frames: np.ndarray,
    fps: float,
    audio: np.ndarray | None = None,
    sample_rate: int = 16000,
    quality: int = 23,
) -> Path:
    """Encode ``frames`` (uint8 ``[T, H, W, 3]``, even H and W) and optional mono ``audio`` (float in
    [-1, 1]) into ``path`` (.avi or .mp4). Single-threaded encoders keep the bytes identical per input.
    ``quality``: x264 constant QP for mp4, MPEG-4 qscale*8 for avi (lower is better)."""
    path = Path(path)
    if path.suffix.lower() not in _CODECS:
        raise MediaError(
            f"{path}: unsupported container {path.suffix!r} (expected one of {', '.join(_CODECS)})"
        )
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise MediaError(f"{path}: frames must be uint8 [T, H, W, 3], got {frames.dtype} {frames.shape}")
    if frames.shape[1] % 2 or frames.shape[2] % 2:
        raise MediaError(
            f"{path}: frame height and width must be even for 4:2:0 video, got {frames.shape[1:3]}"
        )
    vcodec, acodec, pix_fmt = _CODECS[path.suffix.lower()]
    path.parent.mkdir(parents=True, exist_ok=True)
    _, height, width, _ = frames.shape
    rate = Fraction(fps).limit_denominator(1001)
    # AVI: MP3's priming samples start before 0, and the muxer's default shift of every stream to make them
    # non-negative moved the video one frame late, so the trailer padded it with an empty "drop" frame: the
    # header said T + 1 frames where T decode. Not shifting keeps the header's count (the decoded sound and
    # frames are the same either way); MP4 keeps its default (edit lists).
    options = {"avoid_negative_ts": "disabled"} if path.suffix.lower() == ".avi" else {}
    with av.open(str(path), mode="w", options=options) as container:
        vstream = container.add_stream(vcodec, rate=rate)
        vstream.width, vstream.height, vstream.pix_fmt = width, height, pix_fmt
        vstream.codec_context.thread_count = 1
        if vcodec == "libx264":
            # Constant QP and one thread: x264's CRF rate control gave different bytes for the same
            # frames from call to call; the corpus must be byte-identical per seed.
            vstream.codec_context.options = {
                "qp": str(quality),
                "preset": "veryfast",
                "x264-params": "threads=1:lookahead-threads=1:sync-lookahead=0",
            }
        else:
            # MPEG-4 Part 2 takes a fixed quantiser (1 best .. 31 worst) through the global-quality flag.
            vstream.codec_context.qscale = max(1, min(31, quality // 8))
        astream = None
        if audio is not None:
            astream = container.add_stream(acodec, rate=sample_rate)
            astream.layout = "mono"
            astream.codec_context.thread_count = 1
        for image in frames:
            frame = av.VideoFrame.from_ndarray(rgb_to_yuv420p(image), format="yuv420p")
            for packet in vstream.encode(frame):
                container.mux(packet)
        for packet in vstream.encode():
            container.mux(packet)
        if astream is not None:
            _encode_audio(container, astream, audio, sample_rate)
    return path


def rgb_to_yuv420p(image: np.ndarray) -> np.ndarray:
    """BT.601 limited-range RGB -> planar YUV 4:2:0 in PyAV's packed layout ``[H * 3 / 2, W]``.

    Done here rather than by swscale because swscale's SIMD paths are not bit-exact from call to call
    (the first frame a process converts can differ), and the corpus must be byte-identical per seed."""
    rgb = image.astype(np.float32) / 255.0
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = 16.0 + 65.481 * r + 128.553 * g + 24.966 * b
    cb = 128.0 - 37.797 * r - 74.203 * g + 112.0 * b
    cr = 128.0 + 112.0 * r - 93.786 * g - 18.214 * b
    height, width = y.shape

    def subsample(plane: np.ndarray) -> np.ndarray:
        return plane.reshape(height // 2, 2, width // 2, 2).mean(axis=(1, 3))

    planes = [y.reshape(-1), subsample(cb).reshape(-1), subsample(cr).reshape(-1)]
    packed = np.concatenate(planes)
    return np.clip(np.rint(packed), 0, 255).astype(np.uint8).reshape(height * 3 // 2, width)


def _encode_audio(container, stream, audio: np.ndarray, sample_rate: int) -> None:
    samples = np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0)
    frame_size = stream.codec_context.frame_size or 1024
    fmt = stream.codec_context.format.name
    pts = 0
    for start in range(0, len(samples), frame_size):
        chunk = samples[start : start + frame_size]
        if fmt.startswith("s32"):
            data = (chunk * (2**31 - 1)).astype(np.int32)
        elif fmt.startswith("s16"):
            data = (chunk * (2**15 - 1)).astype(np.int16)
        else:
            data = chunk
        frame = av.AudioFrame.from_ndarray(data[None, :], format=fmt, layout="mono")
        frame.sample_rate = sample_rate
        frame.pts = pts
        pts += len(chunk)
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)


def short_of_header(announced: int, decoded: int) -> bool:
    """A video that decodes clearly fewer frames than its header announces: cut short (prepare skips it)."""
    return announced - decoded > max(2, 0.1 * announced)


def probe(path: str | Path) -> MediaInfo:
    """What a media file holds, without decoding it."""
    path = Path(path)
    try:
        with av.open(str(path)) as container:
            video = container.streams.video[0] if container.streams.video else None
            audio = container.streams.audio[0] if container.streams.audio else None
            duration = float(container.duration / av.time_base) if container.duration else None
            return MediaInfo(
                path=path,
                has_video=video is not None,
                has_audio=audio is not None,
                fps=float(video.average_rate) if video is not None and video.average_rate else None,
                frames=int(video.frames) if video is not None and video.frames else None,
                width=video.codec_context.width if video is not None else None,
                height=video.codec_context.height if video is not None else None,
                sample_rate=audio.codec_context.sample_rate if audio is not None else None,
                duration_s=duration,
            )
    except (av.FFmpegError, OSError) as exc:
        raise MediaError(f"{path}: cannot open media file: {exc}") from None


def _decoded(path: Path) -> Iterator[av.VideoFrame]:
    """The first video stream's frames, in order; an error names the file."""
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise MediaError(f"{path}: has no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            yield from container.decode(stream)
    except (av.FFmpegError, OSError) as exc:
        raise MediaError(f"{path}: cannot decode video: {exc}") from None


def read_video(path: str | Path, indices: list[int] | None = None) -> np.ndarray:
    """Decode video frames as uint8 ``[T, H, W, 3]`` RGB; with ``indices``, only those frames (0-based),
    in the given order (an index past the end is an error naming the file)."""
    path = Path(path)
    wanted = None if indices is None else set(indices)
    kept: dict[int, np.ndarray] = {}
    last = max(wanted) if wanted else None
    frames = _decoded(path)
    for i, frame in enumerate(frames):
        if wanted is None or i in wanted:
            kept[i] = frame.to_ndarray(format="rgb24")
        if last is not None and i >= last:
            frames.close()  # the container closes with the generator
            break
    if not kept:
        raise MediaError(f"{path}: no decodable video frames")
    if indices is None:
        return np.stack([kept[i] for i in sorted(kept)])
    missing = [i for i in indices if i not in kept]
    if missing:
        raise MediaError(f"{path}: frame {missing[0]} requested but the video decodes {len(kept)} of them")
    return np.stack([kept[i] for i in indices])


def read_audio(path: str | Path, sample_rate: int = 16000) -> np.ndarray:
    """Decode the first audio stream, mixed to mono and resampled to ``sample_rate``: float32 ``[N]``."""
    path = Path(path)
    resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
    chunks: list[np.ndarray] = []
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise MediaError(f"{path}: has no audio stream")
            for frame in container.decode(container.streams.audio[0]):
                frame.pts = None
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
    except (av.FFmpegError, OSError) as exc:
        raise MediaError(f"{path}: cannot decode audio: {exc}") from None
    if not chunks:
        return np.zeros(0, dtype=np.float32)
    return np.concatenate(chunks).astype(np.float32, copy=False)


def iter_video(path: str | Path) -> Iterator[np.ndarray]:
    """The frames of the first video stream, decoded one at a time (uint8 ``[H, W, 3]`` RGB): a long
    recording never sits in memory whole. An error names the file."""
    for frame in _decoded(Path(path)):
        yield frame.to_ndarray(format="rgb24")


# Audio codecs an MP4 carries as they are; any other sound track is decoded and encoded again as AAC.
_MP4_AUDIO = {"aac", "mp3", "ac3", "eac3", "opus", "alac", "flac"}


class VideoWriter:
    """An H.264 MP4 written frame by frame (``write``), with the sound track of ``audio_from`` kept:
    copied packet for packet when MP4 can carry its codec (its timestamps moved so that it starts where the
    source's video starts), else decoded and encoded as AAC. Used as a context manager; the file appears at
    ``path`` only when closed without an error, and a failure leaves no temp file behind."""

    def __init__(self, path: str | Path, fps: float, audio_from: str | Path | None = None) -> None:
        from expr_common.atomic import temp_path

        self.path, self.fps, self.audio_from = Path(path), fps, audio_from
        if self.path.suffix.lower() != ".mp4":
            raise MediaError(f"{self.path}: the annotated video is written as .mp4")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = temp_path(self.path)
        try:
            self.container = av.open(str(self.tmp), mode="w", format="mp4")
        except (av.FFmpegError, OSError) as exc:
            self.tmp.unlink(missing_ok=True)
            raise MediaError(f"{self.path}: cannot write video: {exc}") from None
        self.stream = None
        self.source = self.packets = self.copied = None
        self.reencode, self.shift, self.frames = False, 0, 0

    def __enter__(self) -> VideoWriter:
        return self

    def _open_streams(self, height: int, width: int) -> None:
        self.stream = self.container.add_stream("libx264", rate=Fraction(self.fps).limit_denominator(1001))
        self.stream.width, self.stream.height, self.stream.pix_fmt = width, height, "yuv420p"
        self.stream.codec_context.options = {"preset": "veryfast", "crf": "23"}
        if self.audio_from is None:
            return
        try:
            self.source = av.open(str(self.audio_from))
            if not self.source.streams.audio:
                return
            audio = self.source.streams.audio[0]
            codec = audio.codec_context.name.removesuffix("float").removesuffix("_fixed")  # decoder -> format
            if codec not in _MP4_AUDIO:  # encoded again at close, from the decoded sound
                self.copied = self.container.add_stream("aac", rate=16000)
                self.copied.layout = "mono"
                self.reencode = True
                return
            self.copied = self.container.add_stream_from_template(audio)
            video = self.source.streams.video[0] if self.source.streams.video else None
            if video is not None and video.start_time and audio.time_base:  # the new video starts at 0
                self.shift = int(round(float(video.start_time * video.time_base / audio.time_base)))
            self.packets = (p for p in self.source.demux(audio) if p.dts is not None)
        except (av.FFmpegError, ValueError) as exc:
            raise MediaError(f"{self.audio_from}: cannot copy its sound track: {exc}") from None

    def write(self, image: np.ndarray) -> None:
        """One RGB frame (uint8 ``[H, W, 3]``); odd sizes lose their last row or column (4:2:0 video)."""
        height, width = image.shape[0] // 2 * 2, image.shape[1] // 2 * 2
        if self.stream is None:
            self._open_streams(height, width)
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image[:height, :width]), format="rgb24")
        for packet in self.stream.encode(frame):
            self.container.mux(packet)
        self.frames += 1
        self._mux_audio_until(self.frames / self.fps)

    def _mux_audio_until(self, seconds: float | None) -> None:
        """Copy the source's sound packets up to ``seconds`` (all of them when None), interleaved; what lies
        before the video's start is left out."""
        if self.packets is None:
            return
        for packet in self.packets:
            when = packet.pts if packet.pts is not None else packet.dts  # MP3 in AVI often has no pts
            if when - self.shift < 0:
                continue
            if packet.pts is not None:
                packet.pts -= self.shift
            packet.dts -= self.shift
            packet.stream = self.copied
            self.container.mux(packet)
            if seconds is not None and float((when - self.shift) * packet.time_base) > seconds:
                return
        self.packets = None

    def close(self, ok: bool = True) -> Path:
        done = False
        try:
            if ok and self.stream is not None:
                for packet in self.stream.encode():
                    self.container.mux(packet)
                self._mux_audio_until(None)
                if self.reencode:  # a codec MP4 cannot carry: AAC from the decoded sound
                    _encode_audio(self.container, self.copied, read_audio(self.audio_from, 16000), 16000)
                done = True
        except (av.FFmpegError, ValueError) as exc:
            raise MediaError(f"{self.path}: cannot write video: {exc}") from None
        finally:
            try:
                self.container.close()
            finally:
                if self.source is not None:
                    self.source.close()
                if not done:
                    self.tmp.unlink(missing_ok=True)
        if ok and not done:
            raise MediaError(f"{self.path}: no frames to write")
        if done:
            self.tmp.replace(self.path)
        return self.path

    def __exit__(self, kind, exc, traceback) -> None:
        self.close(ok=kind is None)
