"""How many distinct expressive faces does a from-scratch CNN need before it recognises expressions on people
it has never seen? And where does the demo corpus's Aff-Wild2 training split stand?

Two kinds of training set, each scored by macro-F1 on held-out identities with the same small CNN (four
conv-BN-ReLU-pool blocks, AdamW, a fixed number of steps, CPU, seeded):
- ``rendered``: faces drawn by the corpus's own renderer (expr_common.synth) for ``--identities`` people x
  8 classes x ``--per-class`` apex expressions each, with Aff-Wild2 poses, backgrounds and the tight
  aligned crop; ``--degrade`` adds the Aff-Wild2 camera chain (colour grade, low resolution, blur, noise,
  JPEG 55-85). 20 % of the identities are held out.
- ``cache``: the windows of a prepared cache (``--cache cache/synthetic_demo``), trained on the Aff-Wild2
  training split and scored on its validation split (other people), one prediction per window (mean of its
  K frames' logits).
Prints one JSON object per setting. The recognizer's visual branch needs the same thing this CNN does:
the number of distinct (person, expression) examples, not the number of frames, decides whether it learns.

``--compare 48gray 112rgb``: the recognizer's default RHCNN (GCSA, coarse-fine loss, its stem resolved for
the size) beside a plain VGG-style CNN, side by side on the same rendered faces (degraded, held-out people),
the same epochs and recipe (visual_models.py); at 48 px also the RHCNN with the 4x stem of 112-px crops, the
cost and gain of the adaptive stem. ``--models`` names other variants (``rhcnn:kernel_size=5``,
``rhcnn:loss=ce``). One JSON object per setting and model.

Usage: python benchmarks/visual_sample_size.py [--identities 40 96] [--per-class 1 3] [--degrade]
       python benchmarks/visual_sample_size.py --cache cache/synthetic_demo
       python benchmarks/visual_sample_size.py --compare 48gray 112rgb --identities 60 --per-class 3
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from sklearn.metrics import f1_score
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))

import visual_models  # noqa: E402  (first: it puts this folder after the packages on the path)
from common import machine  # noqa: E402

from expr_common.data.dataset import CachedClips  # noqa: E402
from expr_common.labels import NUM_CLASSES  # noqa: E402
from expr_common.logs import progress  # noqa: E402
from expr_common.synth import styles  # noqa: E402
from expr_common.synth.affwild2 import aligned_crop_window  # noqa: E402
from expr_common.synth.expressions import sample_apex  # noqa: E402
from expr_common.synth.face import render_face, sample_identity  # noqa: E402
from expr_common.synth.presets import AffWild2Spec  # noqa: E402
from recognizer.config import VisualConfig  # noqa: E402
from recognizer.rhcnn import LUMA  # noqa: E402

SIZE = 64


def rendered(
    identities: int, per_class: int, degrade: bool, seed: int, size: int = SIZE
) -> tuple[torch.Tensor, ...]:
    """[N, 1, 3, S, S] faces in [0, 1], labels and identity ids, drawn as the Aff-Wild2 writer draws its
    crops."""
    rng = np.random.default_rng(seed)
    style, spec = styles.AFFWILD2, AffWild2Spec(crop_size=size)
    render, lo = aligned_crop_window(spec)
    images, labels, people = [], [], []
    for person in progress(range(identities), desc=f"render {identities} people", unit="person"):
        identity = sample_identity(rng)
        for label in range(NUM_CLASSES):
            for _ in range(per_class):
                background = styles.background("affwild2", render, render, rng)
                pose = replace(styles.sample_pose(style, rng), scale=0.95)
                aus = sample_apex(label, rng.uniform(*style.intensity), rng)
                face, _ = render_face(identity, aus, pose, render, background=background)
                crop = face[lo : lo + size, lo : lo + size]
                if degrade:
                    lowres = 2.0 if rng.random() < style.lowres_prob else 1.0
                    crop = styles.degrade(
                        crop, style, rng, rng.uniform(*style.blur), lowres, styles.colour_grade(rng, 0.6)
                    )
                    buffer = io.BytesIO()
                    quality = int(rng.integers(style.jpeg_quality[0], style.jpeg_quality[1] + 1))
                    Image.fromarray(styles.to_uint8(crop)).save(buffer, "JPEG", quality=quality)
                    crop = np.asarray(Image.open(buffer), np.float32) / 255.0
                images.append(crop)
                labels.append(label)
                people.append(person)
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2)[:, None].float()
    return x, torch.tensor(labels), torch.tensor(people)


def compare(setting: str, args: argparse.Namespace) -> None:
    """``48gray`` / ``112rgb``: render once, then train each model on the same faces and print its JSON."""
    colour = setting.endswith("rgb")
    size = int(setting.removesuffix("rgb").removesuffix("gray"))
    for identities in args.identities:
        for per_class in args.per_class:
            x, y, people = rendered(identities, per_class, True, args.seed, size)
            if not colour:  # luma, one channel: the RHCNN replicates it for its RGB stem
                x = torch.einsum("nkchw,c->nkhw", x, torch.tensor(LUMA))[:, :, None]
            x = (x * 255).round().to(torch.uint8)
            train = people < int(0.8 * identities)
            shared = {
                "setting": setting, "identities": identities, "per_class": per_class, "degrade": True,
                "train_faces": int(train.sum()), "held_out_faces": int((~train).sum()), "epochs": args.epochs,
            }  # fmt: skip
            specs = args.models or ["vgg", "rhcnn"]
            if not args.models and VisualConfig().for_image_size(size).stem_strides != (2, 2):
                specs.append("rhcnn:stem_stride=2")
            for spec in specs:
                kind, visual, loss = visual_models.parse_model(spec)  # checked in main() already
                result = visual_models.fit_and_score(
                    kind, x[train], y[train], x[~train], y[~train], args.epochs, args.seed, visual, loss
                )
                print(json.dumps({**shared, "spec": spec, **result, "machine": machine()}), flush=True)


def cached(root: str, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    clips = CachedClips(root, split=split, source=["affwild2"], labelled_only=True, train=False)
    items = [clips[i] for i in range(len(clips))]
    video = torch.stack([item["video"] for item in items]).float()
    if video.max() > 1.5:  # uint8 frames
        video = video / 255.0
    return video, torch.tensor([int(item["label"]) for item in items])


def probe_cnn() -> nn.Module:
    def block(cin: int, cout: int) -> nn.Module:
        conv = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        return nn.Sequential(conv, nn.BatchNorm2d(cout), nn.ReLU(), nn.MaxPool2d(2))

    return nn.Sequential(
        block(3, 16), block(16, 32), block(32, 64), block(64, 96),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(96, NUM_CLASSES),
    )  # fmt: skip


def fit_and_score(xtr, ytr, xva, yva, steps: int, seed: int) -> dict[str, float]:
    """Train on [N, K, 3, S, S] clips (class-balanced batches of 32), score macro-F1 per clip."""
    torch.manual_seed(seed)
    net = probe_cnn()
    opt = torch.optim.AdamW(net.parameters(), 2e-3, weight_decay=0.05)
    mean = xtr.mean(dim=(0, 1, 3, 4), keepdim=True)[0]
    weights = 1.0 / torch.bincount(ytr, minlength=NUM_CLASSES).clamp(min=1).float()
    order = torch.multinomial(weights[ytr], steps * 32, replacement=True)

    def logits(x: torch.Tensor) -> torch.Tensor:
        b, k = x.shape[:2]
        return net((x - mean).flatten(0, 1)).unflatten(0, (b, k)).mean(dim=1)

    started = time.perf_counter()
    net.train()
    for step in progress(range(steps), desc="probe CNN", unit="step"):
        idx = order[step * 32 : (step + 1) * 32]
        loss = nn.functional.cross_entropy(logits(xtr[idx]), ytr[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    with torch.no_grad():
        pred = torch.cat([logits(xva[i : i + 256]).argmax(1) for i in range(0, len(xva), 256)])
        train_pred = torch.cat([logits(xtr[i : i + 256]).argmax(1) for i in range(0, len(xtr), 256)])
    return {
        "val_macro_f1": round(float(f1_score(yva, pred, average="macro")), 3),
        "train_macro_f1": round(float(f1_score(ytr, train_pred, average="macro")), 3),
        "seconds": round(time.perf_counter() - started, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--identities", type=int, nargs="+", default=[40, 96])
    parser.add_argument("--per-class", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--degrade", action="store_true", help="add the Aff-Wild2 camera chain")
    parser.add_argument("--cache", help="a prepared cache: probe its Aff-Wild2 train -> val windows instead")
    parser.add_argument("--steps", type=int, default=1200, help="training steps of 32 (all settings alike)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--compare", nargs="+", metavar="SIZE{gray,rgb}", help="RHCNN vs VGG, e.g. 48gray")
    parser.add_argument("--epochs", type=int, default=30, help="--compare: epochs of each model")
    parser.add_argument(
        "--models", nargs="+", metavar="SPEC",
        help="--compare: models to train, e.g. vgg rhcnn rhcnn:kernel_size=5 rhcnn:gcsa=false,loss=ce "
        "(VisualConfig fields, and loss=coarse_fine|ce); default vgg, rhcnn and at 48 px the 4x-stem RHCNN",
    )  # fmt: skip
    args = parser.parse_args()
    for spec in args.models or []:  # a typo fails now, not after the models before it have trained
        visual_models.parse_model(spec)
    for setting in args.compare or []:
        compare(setting, args)
    if args.compare:
        return
    if args.cache:
        xtr, ytr = cached(args.cache, "train")
        xva, yva = cached(args.cache, "val")
        result = fit_and_score(xtr, ytr, xva, yva, args.steps, args.seed)
        setting = {
            "setting": "cache",
            "cache": args.cache,
            "train_windows": len(ytr),
            "val_windows": len(yva),
        }
        print(json.dumps({**setting, **result, "machine": machine()}))
        return
    for identities in args.identities:
        for per_class in args.per_class:
            x, y, people = rendered(identities, per_class, args.degrade, args.seed)
            train = people < int(0.8 * identities)
            result = fit_and_score(x[train], y[train], x[~train], y[~train], args.steps, args.seed)
            setting = {
                "setting": "rendered",
                "identities": identities,
                "per_class": per_class,
                "degrade": args.degrade,
                "train_faces": int(train.sum()),
                "held_out_faces": int((~train).sum()),
            }
            print(json.dumps({**setting, **result, "machine": machine()}))


if __name__ == "__main__":
    main()
