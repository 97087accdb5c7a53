"""Writes the CK+ layout: grayscale studio sequences from neutral to a posed apex, and Emotion files for
about half of them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from expr_common.data.ckplus import EMOTION_DIR, EMOTION_SUFFIX, IMAGES_DIR
from expr_common.labels import CKPLUS_CONTEMPT, ckplus_to_abaw
from expr_common.synth import styles
from expr_common.synth.expressions import animate, contempt_apex, sample_apex, smoothstep
from expr_common.synth.face import Pose, sample_identity
from expr_common.synth.presets import CkplusSpec

# Relative frequency of CK+ codes 1..7 among its 327 labelled sequences.
CODE_WEIGHTS = {1: 45, 2: 18, 3: 59, 4: 25, 5: 69, 6: 28, 7: 83}


@dataclass(frozen=True)
class Sequence:
    number: int
    code: int  # CK+ emotion code 1-7
    frames: int
    labelled: bool


@dataclass(frozen=True)
class SubjectJob:
    subject: str  # "S005"
    seed: tuple[int, ...]
    width: int
    height: int
    sequences: tuple[Sequence, ...]


def plan(spec: CkplusSpec, rng: np.random.Generator, seed: int) -> list[SubjectJob]:
    codes = np.array(list(CODE_WEIGHTS))
    weights = np.array(list(CODE_WEIGHTS.values()), float)
    numbers = np.sort(rng.choice(np.arange(5, 5 + 8 * spec.subjects), spec.subjects, replace=False))
    jobs = []
    for index, number in enumerate(numbers):
        count = int(rng.integers(spec.sequences_per_subject[0], spec.sequences_per_subject[1] + 1))
        sequences = tuple(
            Sequence(
                number=s + 1,
                code=int(rng.choice(codes, p=weights / weights.sum())),
                frames=int(rng.integers(spec.frames[0], spec.frames[1] + 1)),
                labelled=bool(rng.random() < spec.labelled_fraction),
            )
            for s in range(count)
        )
        height = 480 if rng.random() < 0.1 else spec.height
        jobs.append(SubjectJob(f"S{number:03d}", (seed, 1, index), spec.width, height, sequences))
    # At least one labelled sequence of every code (contempt included) so every mapping is exercised.
    present = {s.code for job in jobs for s in job.sequences if s.labelled}
    for code in CODE_WEIGHTS:
        if code not in present:
            job_i = int(rng.integers(len(jobs)))
            job = jobs[job_i]
            extra = Sequence(len(job.sequences) + 1, code, spec.frames[1], True)
            jobs[job_i] = SubjectJob(job.subject, job.seed, job.width, job.height, job.sequences + (extra,))
    return jobs


def render_subject(job: SubjectJob, root: Path, spec: CkplusSpec) -> list[dict]:
    """Write one subject's sequences; returns one record per sequence."""
    rng = np.random.default_rng(job.seed)
    identity = sample_identity(rng)
    style = styles.CKPLUS
    bg = styles.background("ckplus", job.height, job.width, rng)
    side = int(job.height * rng.uniform(0.58, 0.66))
    records = []
    for seq in job.sequences:
        label = ckplus_to_abaw(seq.code)
        intensity = rng.uniform(*style.intensity)
        apex = (
            contempt_apex(intensity, rng)
            if seq.code == CKPLUS_CONTEMPT
            else sample_apex(label, intensity, rng, 0.1)
        )
        strength = smoothstep(np.linspace(-0.15, 1.0, seq.frames))  # the first frame(s) are neutral
        track = strength[:, None] * apex[None, :]
        pose = Pose(
            yaw=float(rng.normal(0, style.yaw_sd)), roll=float(rng.normal(0, style.roll_sd)), scale=0.88
        )
        light_strength = rng.uniform(*style.light_strength)
        x0 = (job.width - side) // 2 + int(rng.integers(-20, 21))
        y0 = (job.height - side) // 2 - int(job.height * 0.02) + int(rng.integers(-10, 11))
        folder = root / IMAGES_DIR / job.subject / f"{seq.number:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        for i, (aus, frame_pose) in enumerate(animate(track, pose, 30.0, rng, motion=0.15), start=1):
            frame = bg.copy()
            styles.draw_face(
                frame,
                (x0, y0, side),
                identity,
                aus,
                frame_pose,
                spec.render_size,
                (0.0, -0.4),
                light_strength,
            )
            frame = styles.degrade(frame, style, rng, blur=0.0, lowres=1.0, grade=None)
            image = Image.fromarray(styles.to_uint8(frame[..., 0]), mode="L")
            image.save(folder / f"{job.subject}_{seq.number:03d}_{i:08d}.png", compress_level=1)
        if seq.labelled:
            emo = root / EMOTION_DIR / job.subject / f"{seq.number:03d}"
            emo.mkdir(parents=True, exist_ok=True)
            peak = f"{job.subject}_{seq.number:03d}_{seq.frames:08d}{EMOTION_SUFFIX}"
            # CK+ writes the code as a float in e-notation with three leading spaces.
            (emo / peak).write_text(f"   {float(seq.code):.7e}\n", encoding="ascii")
        stem = f"{job.subject}_{seq.number:03d}"
        records.append(
            {
                "dataset": "ckplus",
                "subject": job.subject,
                "sequence": f"{seq.number:03d}",
                "frames": seq.frames,
                "label": label if seq.labelled else -1,
                "code": seq.code,
                "peak": f"{IMAGES_DIR}/{job.subject}/{seq.number:03d}/{stem}_{seq.frames:08d}.png",
                "face_box": [int(x0), int(y0), side],  # every frame's face square: x0, y0, side
            }
        )
    return records
