"""Is the procedural corpus learnable but not trivial, and do sight and sound fail on different classes?

On the demo preset's Aff-Wild2 part (the target domain) two deliberately simple classifiers are trained
on the training split and scored on the validation split, per frame, on apex frames (the middle half of
each expression episode):
- visual: logistic regression on 16x16 grayscale face crops minus the person's mean crop (a classic,
  simple identity normalisation: without it a linear model sees identity, not expression);
- audio: logistic regression on log-mel statistics (per-band mean and std, 64 bands) of the 1 s of sound
  around the frame.
Also the same two on AFEW (audio from each clip; visual from its middle frame downsampled whole, with no
face detection, so near chance by design: it shows why the data pipeline needs a face detector).
Prints one JSON object: macro-F1, accuracy, per-class recall of each, chance levels.

Usage: python benchmarks/corpus_difficulty.py [--corpus data/synthetic_demo] [--every 3]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torchaudio
from PIL import Image
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, recall_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine  # noqa: E402

from expr_common.data.roots import dataset_root  # noqa: E402
from expr_common.labels import CLASS_NAMES, parse_label  # noqa: E402
from expr_common.media import probe, read_audio, read_video  # noqa: E402

SR = 16000
MEL = torchaudio.transforms.MelSpectrogram(SR, n_fft=400, hop_length=160, n_mels=64)


def mel_stats(wave: np.ndarray) -> np.ndarray:
    spec = torch.log(MEL(torch.from_numpy(wave).float()) + 1e-6)
    return torch.cat([spec.mean(dim=1), spec.std(dim=1)]).numpy()


def read_manifest(path: Path) -> list[dict]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


def apex_rows(rows: list[dict], every: int) -> list[dict]:
    """Frames in the middle half of each constant-label run of each track (the apex of an episode)."""
    by_track: dict[str, list[dict]] = {}
    for row in rows:
        by_track.setdefault(row["subject"], []).append(row)
    chosen = []
    for track_rows in by_track.values():
        track_rows.sort(key=lambda r: int(r["sample_id"].rsplit("/", 1)[1]))
        start = 0
        while start < len(track_rows):
            stop = start
            while stop < len(track_rows) and track_rows[stop]["label"] == track_rows[start]["label"]:
                stop += 1
            run = track_rows[start:stop]
            quarter = len(run) // 4
            chosen += run[quarter : len(run) - quarter : every]
            start = stop
    return chosen


def affwild2_features(root: Path, every: int) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    rows = apex_rows(read_manifest(root / "manifest.csv"), every)
    audio_cache: dict[str, tuple[np.ndarray, float]] = {}
    out: dict[str, list] = {"train": [[], [], []], "val": [[], [], []]}
    for row in rows:
        track, frame = row["sample_id"].rsplit("/", 1)
        video = track.removesuffix("_left").removesuffix("_right")
        if video not in audio_cache:
            path = root / "videos" / f"{video}.mp4"
            audio_cache[video] = (read_audio(path, SR), probe(path).fps)
        wave, fps = audio_cache[video]
        centre = int((int(frame) - 1) / fps * SR)
        window = wave[max(0, centre - SR // 2) : centre + SR // 2]
        window = np.pad(window, (0, SR - len(window)))
        image = Image.open(root / row["frames"]).convert("L").resize((16, 16), Image.BILINEAR)
        bucket = out[row["split"]]
        bucket[0].append(np.asarray(image, np.float32).reshape(-1) / 255.0)
        bucket[1].append(mel_stats(window))
        bucket[2].append(parse_label(row["label"]))
    tracks = {"train": [], "val": []}
    for row in rows:
        tracks[row["split"]].append(row["subject"])
    result = {}
    for split, (images, audio, labels) in out.items():
        images, owners = np.stack(images), np.array(tracks[split])
        for owner in set(owners.tolist()):
            images[owners == owner] -= images[owners == owner].mean(axis=0)
        result[split] = (images, np.stack(audio), np.array(labels))
    return result


def afew_features(root: Path) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    out: dict[str, list] = {"train": [[], [], []], "val": [[], [], []]}
    for row in read_manifest(root / "manifest.csv"):
        path = root / row["frames"]
        frames = read_video(path)
        image = Image.fromarray(frames[len(frames) // 2]).convert("L").resize((24, 18), Image.BILINEAR)
        bucket = out[row["split"]]
        bucket[0].append(np.asarray(image, np.float32).reshape(-1) / 255.0)
        bucket[1].append(mel_stats(read_audio(path, SR)))
        bucket[2].append(parse_label(row["label"]))
    return {k: (np.stack(v[0]), np.stack(v[1]), np.array(v[2])) for k, v in out.items()}


def score(train_x, train_y, val_x, val_y) -> dict:
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=0.1, class_weight="balanced"))
    model.fit(train_x, train_y)
    pred = model.predict(val_x)
    classes = sorted(set(val_y.tolist()))
    recall = recall_score(val_y, pred, labels=classes, average=None, zero_division=0)
    return {
        "macro_f1": round(float(f1_score(val_y, pred, labels=classes, average="macro", zero_division=0)), 3),
        "accuracy": round(float(accuracy_score(val_y, pred)), 3),
        "per_class_recall": {CLASS_NAMES[c]: round(float(r), 3) for c, r in zip(classes, recall)},
        "n_train": int(len(train_y)),
        "n_val": int(len(val_y)),
    }


def compare(visual: dict, audio: dict) -> dict:
    names = list(visual["per_class_recall"])
    gap = {n: round(visual["per_class_recall"][n] - audio["per_class_recall"][n], 3) for n in names}
    return {
        "visual_better_on": [n for n in names if gap[n] >= 0.15],
        "audio_better_on": [n for n in names if gap[n] <= -0.15],
        "recall_gap_visual_minus_audio": gap,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", default="data/synthetic_demo")
    parser.add_argument(
        "--every", type=int, default=3, help="take every n-th apex frame (frames are correlated)"
    )
    args = parser.parse_args()
    started = time.perf_counter()
    corpus = dataset_root(args.corpus)
    result: dict = {"benchmark": "corpus_difficulty", "machine": machine(), "config": vars(args)}
    for name, feats in (
        ("affwild2", affwild2_features(corpus / "affwild2", args.every)),
        ("afew", afew_features(corpus / "afew")),
    ):
        (tv, ta, ty), (vv, va, vy) = feats["train"], feats["val"]
        visual, audio = score(tv, ty, vv, vy), score(ta, ty, va, vy)
        both = score(np.concatenate([tv, ta], 1), ty, np.concatenate([vv, va], 1), vy)
        classes = len(set(vy.tolist()))
        result[name] = {
            "chance_macro_f1": round(1.0 / classes, 3),
            "visual": visual,
            "audio": audio,
            "visual_plus_audio_features": {k: both[k] for k in ("macro_f1", "accuracy")},
            "errors": compare(visual, audio),
        }
    result["wall_s"] = round(time.perf_counter() - started, 1)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
