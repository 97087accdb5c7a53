"""Writes the AFEW layout: short colour movie clips (whole frames, face off-centre) with a voice track."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from expr_common.labels import AFEW_FOLDER_OF
from expr_common.media import write_video
from expr_common.synth import styles
from expr_common.synth.expressions import animate, envelope, sample_apex
from expr_common.synth.face import sample_identity
from expr_common.synth.presets import AfewSpec
from expr_common.synth.voice import sample_speaker, speak

SPLIT_DIRS = {"train": "Train", "val": "Val"}


@dataclass(frozen=True)
class ClipJob:
    clip_id: str  # nine digits, like AFEW's
    split: str
    label: int
    frames: int
    seed: tuple[int, ...]


def plan(spec: AfewSpec, rng: np.random.Generator, seed: int) -> list[ClipJob]:
    jobs = []
    counts = {"train": spec.train_per_class, "val": spec.val_per_class}
    total = sum(counts.values()) * len(AFEW_FOLDER_OF)
    ids: list[int] = []
    while len(ids) < total:  # distinct nine-digit ids without materialising the id space
        candidate = int(rng.integers(100_000_000, 1_000_000_000))
        if candidate not in ids:
            ids.append(candidate)
    k = 0
    for split, per_class in counts.items():
        for label in sorted(AFEW_FOLDER_OF):
            for _ in range(per_class):
                frames = int(rng.integers(spec.frames[0], spec.frames[1] + 1))
                jobs.append(ClipJob(f"{ids[k]:09d}", split, label, frames, (seed, 2, k)))
                k += 1
    return jobs


def clip_path(job: ClipJob) -> str:
    return f"{SPLIT_DIRS[job.split]}/{AFEW_FOLDER_OF[job.label]}/{job.clip_id}.avi"


def render_clip(job: ClipJob, root: Path, spec: AfewSpec) -> dict:
    rng = np.random.default_rng(job.seed)
    style = styles.AFEW
    identity = sample_identity(rng)
    speaker = sample_speaker(rng, identity.is_female)
    intensity = rng.uniform(*style.intensity)
    apex = sample_apex(job.label, intensity, rng)
    # A movie excerpt can start mid-expression and end before the offset.
    onset = rng.uniform(0.05, 0.4)
    env = envelope(job.frames, onset, rng.uniform(onset + 0.2, 0.95), rng.uniform(1.0, 1.6))
    env = np.maximum(env, rng.uniform(0.0, 0.5) * (np.arange(job.frames) < 2))
    track = env[:, None] * apex[None, :]
    duration = job.frames / spec.fps
    labels = np.full(job.frames, job.label)
    audio, talking = speak(
        duration, spec.sample_rate, speaker, labels, env * intensity / max(intensity, 1e-6), rng
    )
    base_pose = replace(styles.sample_pose(style, rng), scale=0.88)
    poses = animate(track, base_pose, spec.fps, rng, motion=1.0, talking=talking)
    bg = styles.background("afew", spec.height, spec.width, rng)
    side = int(spec.height * rng.uniform(0.45, 0.7))
    # off-centre, drifting face position (whole movie frames, not crops)
    cx = rng.uniform(0.2, 0.8) * (spec.width - side)
    cy = rng.uniform(0.1, 0.9) * (spec.height - side)
    drift = rng.normal(0, 0.6, 2)
    light = (float(rng.uniform(-0.8, 0.8)), float(rng.uniform(-0.6, 0.2)))
    light_strength = rng.uniform(*style.light_strength)
    grade = styles.colour_grade(rng, 1.0)
    blur = rng.uniform(*style.blur)
    lowres = 2.0 if rng.random() < style.lowres_prob else 1.0
    frames = np.empty((job.frames, spec.height, spec.width, 3), np.uint8)
    render_size = min(side, 96)
    boxes = []
    for i, (aus, pose) in enumerate(poses):
        frame = bg.copy()
        x0 = int(np.clip(cx + drift[0] * i, 0, spec.width - side))
        y0 = int(np.clip(cy + drift[1] * i, 0, spec.height - side))
        boxes.append([x0, y0, side])
        styles.draw_face(frame, (x0, y0, side), identity, aus, pose, render_size, light, light_strength)
        vignette = 1.0 - 0.35 * (
            np.linspace(-1, 1, spec.width)[None, :] ** 2 + np.linspace(-1, 1, spec.height)[:, None] ** 2
        )
        frame *= vignette[..., None]
        frames[i] = styles.to_uint8(styles.degrade(frame, style, rng, blur, lowres, grade))
    path = root / clip_path(job)
    write_video(path, frames, spec.fps, audio, spec.sample_rate, quality=40)
    return {
        "dataset": "afew",
        "clip_id": job.clip_id,
        "split": job.split,
        "label": job.label,
        "frames": job.frames,
        "path": clip_path(job),
        "face_boxes": boxes,  # per frame, the square the face is drawn into: x0, y0, side
    }
