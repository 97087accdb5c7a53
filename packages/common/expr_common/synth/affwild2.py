"""Writes the Aff-Wild2 EXPR layout: long in-the-wild videos with sound, 1-based aligned face crops, and
per-frame annotation files with the real class shares, -1 runs, missing crops and left/right pairs."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image

from expr_common.config import ConfigError
from expr_common.data.affwild2 import ANNOTATION_DIRS, CROPS_DIR, SPLIT_DIRS, VIDEO_DIRS
from expr_common.labels import (
    AFFWILD2_HEADER,
    AFFWILD2_TRAIN_SHARES,
    AFFWILD2_VAL_SHARES,
    NUM_CLASSES,
    UNLABELLED,
)
from expr_common.media import write_video
from expr_common.synth import styles
from expr_common.synth.expressions import animate, envelope, sample_apex
from expr_common.synth.face import NUM_AUS, sample_identity
from expr_common.synth.presets import AffWild2Spec
from expr_common.synth.voice import sample_speaker, speak

# The layout's names belong to the reader; the writer takes them from there.
VIDEOS_DIR = VIDEO_DIRS[0]
ANNOTATIONS_DIR = ANNOTATION_DIRS[0]  # the current edition's folder name


@dataclass(frozen=True)
class Track:
    """One annotated face: a whole video, or one side of a two-person video."""

    name: str  # annotation / crop-folder name, e.g. "video7_left"
    labels: tuple[int, ...]  # what the face shows, per frame (the truth the annotation is made from)
    annotated: tuple[bool, ...]  # False inside -1 runs
    missing: tuple[bool, ...]  # annotated frames without a crop (face not detected)
    extra_line: bool  # the annotation file is one line longer than the video


@dataclass(frozen=True)
class VideoJob:
    video: str  # media file stem, shared by a left/right pair
    split: str  # train, val or test
    frames: int
    tracks: tuple[Track, ...]
    seed: tuple[int, ...]


def _video_name(index: int, rng: np.random.Generator, spec: AffWild2Spec) -> str:
    style = index % 3  # the three naming patterns of Aff-Wild2
    if style == 0:
        return f"{index + 1}-30-{spec.width}x{spec.height}"
    if style == 1:
        return f"video{index + 1}"
    return str(100 + index)


def plan(spec: AffWild2Spec, rng: np.random.Generator, seed: int) -> list[VideoJob]:
    jobs: list[VideoJob] = []
    index = 0
    for split, count, shares in (
        ("train", spec.train_videos, AFFWILD2_TRAIN_SHARES),
        ("val", spec.val_videos, AFFWILD2_VAL_SHARES),
        ("test", spec.test_videos, AFFWILD2_VAL_SHARES),
    ):
        # (video, side) units; the first training video is a two-person video with _left/_right tracks
        videos = []
        for v in range(count):
            frames = int(rng.uniform(*spec.seconds) * spec.fps)
            sides = ("_left", "_right") if (split == "train" and v == 0) else ("",)
            videos.append((_video_name(index, rng, spec), frames, sides))
            index += 1
        # Cut every track into expression episodes, then give the episodes classes: each class at
        # least `min_segments_per_class` times per split, the rest drawn with the real class shares.
        segments = []  # (video i, side, start, stop)
        for vi, (_, frames, sides) in enumerate(videos):
            for side in sides:
                start = 0
                while start < frames:
                    length = max(2, int(rng.uniform(*spec.segment_seconds) * spec.fps))
                    segments.append((vi, side, start, min(frames, start + length)))
                    start += length
        required = [c for c in range(NUM_CLASSES) for _ in range(spec.min_segments_per_class)]
        if len(segments) < len(required) and split != "test":
            raise ConfigError(  # a user's --set reaches this: one line, not a traceback
                f"synthetic Aff-Wild2 {split}: {len(segments)} episodes cannot hold "
                f"{spec.min_segments_per_class} of each class (affwild2.min_segments_per_class); add videos "
                "or seconds to the preset"
            )
        drawn = rng.choice(
            NUM_CLASSES, max(0, len(segments) - len(required)), p=np.array(shares) / sum(shares)
        )
        classes = rng.permutation(np.concatenate([required, drawn]).astype(int))[: len(segments)]
        per_track: dict[tuple[int, str], np.ndarray] = {}
        for (vi, side, a, b), c in zip(segments, classes):
            per_track.setdefault((vi, side), np.zeros(videos[vi][1], int))[a:b] = c
        for vi, (name, frames, sides) in enumerate(videos):
            tracks = []
            for side in sides:
                annotated = np.ones(frames, bool)
                for _ in range(int(rng.integers(spec.unlabelled_runs[0], spec.unlabelled_runs[1] + 1))):
                    run = int(rng.uniform(0.05, 0.15) * frames)
                    start = int(rng.integers(0, max(1, frames - run)))
                    annotated[start : start + run] = False
                missing = (rng.random(frames) < spec.missing_crop_rate) & annotated
                if split != "test" and not missing.any():  # every split shows at least one missing crop
                    missing[int(rng.choice(np.flatnonzero(annotated)))] = True
                tracks.append(
                    Track(
                        name=name + side,
                        labels=tuple(int(x) for x in per_track[(vi, side)]),
                        annotated=tuple(bool(x) for x in annotated),
                        missing=tuple(bool(x) for x in missing),
                        extra_line=(vi == count - 1 and split != "test"),
                    )
                )
            jobs.append(VideoJob(name, split, frames, tuple(tracks), (seed, 3, len(jobs))))
    return jobs


def aligned_crop_window(spec: AffWild2Spec) -> tuple[int, int]:
    """``(render_size, offset)``: the face box is rendered at ``render_size`` and the aligned crop is its
    ``crop_size`` square starting at ``offset`` on both axes (the central 1/crop_zoom of the box)."""
    render_size = max(spec.crop_size, int(round(spec.crop_size * spec.crop_zoom)))
    return render_size, (render_size - spec.crop_size) // 2


def expression_track(
    labels: np.ndarray, style: styles.DomainStyle, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame expression parameters and strength for a label sequence: one episode per run of equal
    labels, with its own apex, intensity and onset-apex-offset envelope."""
    n = len(labels)
    track = np.zeros((n, NUM_AUS), np.float32)
    strength = np.zeros(n, np.float32)
    start = 0
    while start < n:
        stop = start
        while stop < n and labels[stop] == labels[start]:
            stop += 1
        intensity = rng.uniform(*style.intensity)
        apex = sample_apex(int(labels[start]), intensity, rng)
        env = envelope(stop - start, rng.uniform(0.15, 0.35), rng.uniform(0.6, 0.85), 1.0)
        env = 0.35 + 0.65 * env  # spontaneous expressions rarely return fully to rest between episodes
        track[start:stop] = env[:, None] * apex[None, :]
        strength[start:stop] = env * intensity
        start = stop
    return track, strength


def render_video(job: VideoJob, root: Path, spec: AffWild2Spec) -> list[dict]:
    rng = np.random.default_rng(job.seed)
    style = styles.AFFWILD2
    bg = styles.background("affwild2", spec.height, spec.width, rng)
    n = job.frames
    grade = styles.colour_grade(rng, 0.6)
    lowres = 2.0 if rng.random() < style.lowres_prob else 1.0
    blur = rng.uniform(*style.blur)
    frames = np.repeat(bg[None], n, axis=0)
    voice = np.zeros(int(round(n / spec.fps * spec.sample_rate)), np.float32)
    records = []
    for t_i, track in enumerate(job.tracks):
        identity = sample_identity(rng)
        speaker = sample_speaker(rng, identity.is_female)
        labels = np.array(track.labels)
        expression, strength = expression_track(labels, style, rng)
        audio, talking = speak(
            n / spec.fps, spec.sample_rate, speaker, labels, strength, rng, speech_fraction=0.6
        )
        voice[: len(audio)] += audio[: len(voice)] / len(job.tracks)
        base_pose = replace(styles.sample_pose(style, rng), scale=0.95)
        poses = animate(expression, base_pose, spec.fps, rng, motion=1.5, talking=talking)
        width_share = spec.width // len(job.tracks)
        side = int(min(spec.height * rng.uniform(0.5, 0.75), width_share * 0.9))
        cx = t_i * width_share + rng.uniform(0.2, 0.8) * (width_share - side)
        cy = rng.uniform(0.2, 0.8) * (spec.height - side)
        light = (float(rng.uniform(-0.7, 0.7)), float(rng.uniform(-0.6, 0.3)))
        light_strength = rng.uniform(*style.light_strength)
        crop_dir = root / CROPS_DIR / track.name
        crop_dir.mkdir(parents=True, exist_ok=True)
        quality = int(rng.integers(style.jpeg_quality[0], style.jpeg_quality[1] + 1))
        wander = rng.normal(0, 0.04 * side, (n, 2)).cumsum(axis=0) * 0.2
        render_size, lo = aligned_crop_window(spec)
        for i, (aus, pose) in enumerate(poses):
            x0 = int(np.clip(cx + wander[i, 0], 0, spec.width - side))
            y0 = int(np.clip(cy + wander[i, 1], 0, spec.height - side))
            face = styles.draw_face(
                frames[i], (x0, y0, side), identity, aus, pose, render_size, light, light_strength
            )
            if not track.missing[i]:
                crop = face[lo : lo + spec.crop_size, lo : lo + spec.crop_size]
                crop = styles.degrade(crop, style, rng, blur * render_size / side, lowres, grade)
                Image.fromarray(styles.to_uint8(crop)).save(crop_dir / f"{i + 1:05d}.jpg", quality=quality)
        records.append(
            {
                "dataset": "affwild2",
                "track": track.name,
                "video": job.video,
                "split": job.split,
                "frames": n,
                "labels": [int(x) if a else UNLABELLED for x, a in zip(track.labels, track.annotated)],
                "missing": [i + 1 for i, m in enumerate(track.missing) if m],
            }
        )
        if job.split in SPLIT_DIRS:
            lines = [str(r) for r in records[-1]["labels"]]
            if track.extra_line:  # real files can be one line longer than the decodable frames
                lines.append(lines[-1])
            ann = root / ANNOTATIONS_DIR / SPLIT_DIRS[job.split] / f"{track.name}.txt"
            ann.parent.mkdir(parents=True, exist_ok=True)
            ann.write_text(AFFWILD2_HEADER + "\n" + "\n".join(lines) + "\n", encoding="ascii")
    video = np.empty((n, spec.height, spec.width, 3), np.uint8)
    for i in range(n):
        video[i] = styles.to_uint8(styles.degrade(frames[i], style, rng, blur, 1.0, grade))
    write_video(root / VIDEOS_DIR / f"{job.video}.mp4", video, spec.fps, voice, spec.sample_rate, quality=28)
    return records
