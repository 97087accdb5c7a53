"""Sizes of the procedural corpus: ``tiny`` (tests, seconds), ``demo`` (``make demo``), ``full``."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

PRESET_NAMES = ("tiny", "demo", "full")


@dataclass
class CkplusSpec:
    subjects: int = 20
    sequences_per_subject: tuple[int, int] = (2, 4)  # CK+ has 1-11 per subject, about 5 on average
    frames: tuple[int, int] = (8, 14)  # neutral -> apex; CK+ sequences run 10-60 frames
    width: int = 640
    height: int = 490  # a few subjects are shot at 640x480, as in CK+
    render_size: int = 128  # faces are drawn at this size and scaled up into the 640-wide frame
    labelled_fraction: float = 0.55  # CK+: 327 of 593 sequences have an Emotion file


@dataclass
class AfewSpec:
    train_per_class: int = 20
    val_per_class: int = 8
    frames: tuple[int, int] = (12, 24)
    fps: float = 12.0  # AFEW is 25 fps; fewer frames keep the demo fast without changing the layout
    width: int = 160
    height: int = 120
    sample_rate: int = 22050  # not 16 kHz on purpose: readers must resample


@dataclass
class AffWild2Spec:
    # Many short videos rather than a few long ones: a recognizer generalises across people only if it
    # has seen enough of them (12 subjects were memorised, not learnt from; at the same 300 s of training
    # video, 72 people and ~180 episodes lifted the demo's V macro-F1 from chance, 0.12, to 0.20-0.26).
    train_videos: int = 72
    val_videos: int = 18
    test_videos: int = 2
    seconds: tuple[float, float] = (3.5, 5.5)  # per video
    fps: float = 10.0  # Aff-Wild2 is 30 fps
    width: int = 192
    height: int = 144
    crop_size: int = 64  # real crops are 112x112
    # Aligned crops are tight around the face (brows to chin fill the crop): the crop is the central
    # 1/crop_zoom of the face's box in the video, rendered at crop_size * crop_zoom.
    crop_zoom: float = 1.4
    sample_rate: int = 22050
    segment_seconds: tuple[float, float] = (1.2, 2.5)  # one expression episode
    # per split, so every class can be scored even in small presets (and the rare classes are learnt from
    # more than one or two people)
    min_segments_per_class: int = 4
    unlabelled_runs: tuple[int, int] = (0, 2)  # runs of -1 per video
    missing_crop_rate: float = 0.015  # annotated frames whose face was not detected (no crop file)

    def __post_init__(self) -> None:
        if not self.crop_zoom >= 1.0:
            raise ValueError(
                f"crop_zoom must be >= 1 (the crop lies inside the face box), got {self.crop_zoom}"
            )


@dataclass
class SynthConfig:
    preset: str = "demo"
    seed: int = 0
    workers: int = 2  # processes that render in parallel
    ckplus: CkplusSpec = field(default_factory=CkplusSpec)
    afew: AfewSpec = field(default_factory=AfewSpec)
    affwild2: AffWild2Spec = field(default_factory=AffWild2Spec)


def preset(name: str, seed: int = 0) -> SynthConfig:
    """The named preset with ``seed``."""
    if name == "demo":
        return SynthConfig(preset=name, seed=seed)
    if name == "tiny":
        return SynthConfig(
            preset=name,
            seed=seed,
            ckplus=CkplusSpec(subjects=5, sequences_per_subject=(2, 3), frames=(4, 6), render_size=64),
            afew=AfewSpec(train_per_class=2, val_per_class=1, frames=(6, 8), fps=8.0, width=96, height=72),
            affwild2=AffWild2Spec(
                train_videos=3,
                val_videos=2,
                test_videos=1,
                seconds=(6.0, 8.0),
                fps=8.0,
                width=96,
                height=72,
                crop_size=48,
                segment_seconds=(0.6, 1.5),
                min_segments_per_class=1,
                unlabelled_runs=(1, 1),
                missing_crop_rate=0.03,
            ),
        )
    if name == "full":
        return SynthConfig(
            preset=name,
            seed=seed,
            ckplus=CkplusSpec(subjects=120, sequences_per_subject=(3, 7), frames=(10, 30), render_size=192),
            afew=AfewSpec(
                train_per_class=110, val_per_class=55, frames=(25, 100), fps=25.0, width=320, height=240
            ),
            affwild2=replace(
                AffWild2Spec(),
                train_videos=60,
                val_videos=20,
                test_videos=20,
                seconds=(40.0, 120.0),
                fps=30.0,
                width=480,
                height=360,
                crop_size=112,
                sample_rate=44100,
                segment_seconds=(1.5, 5.0),  # long videos: the longer episodes of real recordings
                min_segments_per_class=6,
            ),
        )
    raise ValueError(f"unknown synthetic preset {name!r}: expected one of {', '.join(PRESET_NAMES)}")
