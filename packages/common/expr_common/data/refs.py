"""Sample references: what every reader yields and what preprocessing consumes.

A reference says where a sample's frames and sound are and what its labels are; it holds no pixels.
Readers never decode media (cheap to list a dataset); ``prepare`` decodes each reference once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from expr_common.labels import UNLABELLED

# The domains the readers and the GAN use by default; a manifest may name any other (see valid_domain).
DOMAINS = ("affwild2", "afew", "ckplus", "synthetic", "other")
SYNTHETIC_DOMAIN = "synthetic"  # samples written by the GAN: never a domain the GAN trains on
_DOMAIN_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")


def valid_domain(name: str) -> bool:
    """A domain is any lower-case name: a letter, then letters, digits, ``_`` or ``-`` (rafdb, my-lab)."""
    return bool(_DOMAIN_NAME.match(name))
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class SampleRef:
    """One sample: a clip (a frame sequence, possibly one frame) with optional sound.

    Frames come either from ``frame_paths`` (images in time order; ``None`` where a frame has no image,
    e.g. an Aff-Wild2 frame whose face was not detected) or from ``video`` (a media file decoded with
    PyAV). ``label`` is the clip's class; ``frame_labels`` (same length as the frames) is set instead for
    per-frame-annotated data (Aff-Wild2), where ``-1`` marks unannotated frames.
    """

    sample_id: str  # unique within its dataset, stable across runs (used in predictions.csv)
    dataset: str  # reader name: "affwild2", "afew", "ckplus", "manifest"
    domain: str  # a lower-case name (DOMAINS by default): where the pixels come from (GAN conditioning)
    split: str  # one of SPLITS
    subject: str  # identity, for subject-wise splits
    label: int = UNLABELLED  # ABAW index of the whole clip, -1 when only per-frame labels exist
    frame_paths: tuple[Path | None, ...] | None = None
    video: Path | None = None  # frames decoded from this file when frame_paths is None
    audio: Path | None = None  # wav/flac, or a video file with a sound track; None = no audio
    frame_labels: tuple[int, ...] | None = None  # per-frame ABAW labels (-1 = not annotated)
    fps: float | None = None  # frame rate of the frame sequence, to cut the matching audio window
    source: str = ""  # the file the reference came from (annotation, manifest row), for error messages
    meta: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        if self.frame_paths is not None and self.video is not None:
            raise ValueError(f"{self.sample_id}: give frame_paths or video, not both")
        if self.frame_labels is not None and self.frame_paths is not None:
            if len(self.frame_labels) != len(self.frame_paths):
                labels, frames = len(self.frame_labels), len(self.frame_paths)
                raise ValueError(f"{self.sample_id}: {labels} frame labels for {frames} frames")

    @property
    def has_video(self) -> bool:
        return self.frame_paths is not None or self.video is not None

    @property
    def has_audio(self) -> bool:
        return self.audio is not None
