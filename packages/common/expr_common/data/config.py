"""The data config (``configs/data/*.yaml``): which datasets to read, how to preprocess them, where the
cache goes. Loaded with :func:`expr_common.config.load_config` into :class:`DataConfig`.

Only ``sources`` and ``preprocess`` (and the shard size) decide what the cache holds; they make the
cache's hash. ``augment`` acts at training time and ``cache.root`` / ``cache.workers`` only say where and
how fast, so changing them never rebuilds a cache.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from expr_common.config import load_config, to_dict

CACHE_VERSION = 1  # bump when the cache layout or the preprocessing code changes what a config produces


@dataclass
class SourceConfig:
    name: str  # unique within the config; recorded per sample as `source`
    format: Literal["affwild2", "afew", "ckplus", "manifest"]  # which reader (data/readers.py)
    root: str  # dataset folder (manifest: the CSV); `data/...` resolves under $EXPR_DATA_DIR
    splits: list[str] | None = None  # None = every split the reader finds
    # "auto": Aff-Wild2 crops and synthetic (GAN) frames are already aligned faces, everything else is
    # a whole frame that needs the detector; "crops"/"detect" force one or the other for a source.
    faces: Literal["auto", "crops", "detect"] = "auto"
    options: dict[str, str | int | float | bool] = field(default_factory=dict)  # passed to the reader


@dataclass
class PreprocessConfig:
    # K per sample (docs/method.md, "Preprocessing"); enough to see onset-apex-offset in a 2 s window
    frames: int = 8
    image_size: int = 112  # Aff-Wild2's aligned crops are 112x112; demo/tiny configs use smaller faces
    window_seconds: float = 2.0  # span of one Aff-Wild2 sample; expression episodes last ~1-5 s
    stride_seconds: float = 1.0  # half-window overlap: every annotated frame lands in about two windows
    sample_rate: int = 16000  # speech models' usual rate; voice energy is well below 8 kHz
    n_mels: int = 64  # docs/method.md, "Preprocessing"
    win_ms: float = 25.0  # standard speech frame: a few pitch periods
    hop_ms: float = 10.0  # standard speech hop: 100 spectrogram steps per second
    # haar: OpenCV's bundled cascade; mtcnn: facenet-pytorch's MTCNN (both ship in their wheels); none
    face_detector: Literal["haar", "mtcnn", "none"] = "haar"
    face_align: bool = True  # turn each crop so the eyes are level, where the detector gives eyes (mtcnn)
    # Haar boxes hug brows-to-mouth; 0.35 of the box side on each side frames the whole face the way
    # Aff-Wild2's aligned crops do (face ~60% of the crop).
    face_margin: float = 0.35
    face_min_neighbors: int = 5  # OpenCV's default; fewer raise recall but add false boxes, so ...
    face_retry_min_neighbors: int = 3  # ... only a clip with no box at all is searched again this loosely
    # Frames are scaled (both ways) to this longer side before detection: 640x490 CK+ gets 2-3x faster
    # and small AFEW-like faces grow past the cascade's 24 px window.
    detect_side: int = 320

    def __post_init__(self) -> None:
        if self.frames < 1 or self.image_size < 8:
            raise ValueError("preprocess.frames must be >= 1 and preprocess.image_size >= 8")
        if self.window_seconds <= 0 or self.stride_seconds <= 0:
            raise ValueError("preprocess.window_seconds and stride_seconds must be positive")
        if self.hop_ms <= 0 or self.win_ms < self.hop_ms:
            raise ValueError("preprocess.win_ms must be >= hop_ms > 0")

    @property
    def window_samples(self) -> int:
        """Audio samples per window: every log-mel has the same number of steps."""
        return int(round(self.window_seconds * self.sample_rate))

    @property
    def n_fft(self) -> int:
        return int(round(self.win_ms * self.sample_rate / 1000))

    @property
    def hop_length(self) -> int:
        return int(round(self.hop_ms * self.sample_rate / 1000))

    @property
    def mel_steps(self) -> int:
        """T of every ``[1, F, T]`` log-mel (centred STFT frames: one per hop, plus one)."""
        return self.window_samples // self.hop_length + 1


@dataclass
class AugmentConfig:
    freq_mask_param: int = 8  # SpecAugment-style: up to 8 of 64 mel bands masked per mask
    freq_masks: int = 1  # masks per training sample; 0 turns frequency masking off
    time_mask_param: int = 0  # SpecAugment time masks: up to this many log-mel steps per mask
    time_masks: int = 0  # time masks per training sample; 0 = off
    gain_db: float = 0.0  # random gain of up to this many dB either way; 0 = off
    time_shift: float = 0.0  # circular shift of up to this share of the window either way; 0 = off
    # Video, per clip (the same draw for all K frames): data/video_augment.py
    hflip: bool = True  # random horizontal flip
    crop_scale: float = 0.85  # random resized crop of at least this share of the area; 1.0 = off
    color_jitter: float = 0.2  # brightness/contrast/saturation strength (hue a quarter of it); 0 = off

    def __post_init__(self) -> None:
        if not 0.1 <= self.crop_scale <= 1.0 or self.color_jitter < 0:
            raise ValueError("augment.crop_scale must be in [0.1, 1] and augment.color_jitter >= 0")
        if min(self.time_mask_param, self.time_masks, self.freq_mask_param, self.freq_masks) < 0:
            raise ValueError("augment's mask sizes and counts must be >= 0")
        if self.gain_db < 0 or not 0.0 <= self.time_shift <= 0.5:
            raise ValueError("augment.gain_db must be >= 0 and augment.time_shift in [0, 0.5]")


@dataclass
class CacheConfig:
    root: str = "cache/data"  # repo-relative (git-ignored /cache/); `expr-data prepare --out` overrides
    shard_size: int = 512  # samples per shard: ~50 MB at 112 px, K=8; small enough to mmap lazily
    workers: int = 2  # preprocessing processes; does not change the cache's contents


@dataclass
class DataConfig:
    name: str = "data"
    sources: list[SourceConfig] = field(default_factory=list)
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    cache: CacheConfig = field(default_factory=CacheConfig)

    def __post_init__(self) -> None:
        names = [s.name for s in self.sources]
        if len(set(names)) != len(names):
            raise ValueError(f"source names must be unique, got {names}")
        if self.cache.shard_size < 1:
            raise ValueError("cache.shard_size must be >= 1")


def load_data_config(path: str | Path | None, overrides: list[str] | tuple[str, ...] = ()) -> DataConfig:
    return load_config(path, DataConfig, overrides)


def cache_key(config: DataConfig, roots: dict[str, str] | None = None) -> dict[str, Any]:
    """What decides the cache's contents: sources (with reader options and resolved roots),
    preprocessing, shard size and the cache version."""
    sources = []
    for source in to_dict(config)["sources"]:
        if roots is not None:
            source["root"] = roots[source["name"]]
        sources.append(source)
    return {
        "version": CACHE_VERSION,
        "sources": sources,
        "preprocess": to_dict(config.preprocess),
        "shard_size": config.cache.shard_size,
    }


def config_hash(config: DataConfig, roots: dict[str, str] | None = None) -> str:
    text = json.dumps(cache_key(config, roots), sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
