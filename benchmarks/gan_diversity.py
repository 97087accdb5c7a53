"""Diversity of the sampling GAN within a class (issue 17, part 5): are the columns of a class row different
people, or one face per class?

For a sampling checkpoint (``model.kind: sample``) and the prepared cache it was trained on, per class and
in the target domain's style:
- ``within``: mean pairwise distance between ``--n`` samples of the class (different z);
- ``real``: mean pairwise distance between ``--n`` real training frames of the class in that domain
  (different people and moments): the diversity the samples should reach;
- ``across``: mean distance between the same z drawn as this class and as each other class: what the
  class alone changes;
- ``within_vs_real`` = within / real (1: as varied as the real class) and ``class_share`` =
  across / (across + within) (near 1: the class decides the picture and z hardly matters).
Distances are the mean absolute pixel difference (0-1 scale, at the GAN's resolution) and the L2 distance of
Inception pool3 features (pytorch-fid's network, the space FID is computed in). Also the generator's
conditioning: the norm of the class and domain embeddings beside that of a block's z chunk (the two condition
the same batch norms), i.e. how much of the conditioning input the class carries.

Usage: python benchmarks/gan_diversity.py --checkpoint runs/demo/gan/checkpoints/last.pt \
           --cache cache/synthetic_demo [--n 32] [--domain affwild2] [--seed 0] [--truncation 1.0]
(no truncation by default: the generator's own spread)
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from common import machine  # noqa: E402

from expr_common.labels import CLASS_NAMES  # noqa: E402
from gan_aug.config import domain_index  # noqa: E402
from gan_aug.fid.features import FeatureExtractor  # noqa: E402
from gan_aug.generate import load_generator, sample_generator, truncated_normal  # noqa: E402
from gan_aug.run_config import stored_config  # noqa: E402
from gan_aug.sampling import build_frame_table  # noqa: E402


def mean_pairwise(x: torch.Tensor, metric: str) -> float:
    """Mean distance over all unordered pairs of the rows of ``x`` [N, D]."""
    if metric == "pixel_l1":
        d = torch.cdist(x, x, p=1) / x.shape[1]
    else:
        d = torch.cdist(x, x, p=2)
    n = len(x)
    return float(d.sum() / max(1, n * (n - 1)))


def paired(a: torch.Tensor, b: torch.Tensor, metric: str) -> float:
    """Mean distance between row i of ``a`` and row i of ``b`` (the same z in two classes)."""
    diff = a - b
    return float(diff.abs().mean(1).mean() if metric == "pixel_l1" else diff.norm(dim=1).mean())


def describe(images: torch.Tensor, extractor: FeatureExtractor) -> dict[str, torch.Tensor]:
    """Pixels (0-1, flattened) and Inception features of ``images`` [N, 3, R, R] in [-1, 1]."""
    pixels = ((images.float() + 1) / 2).clamp(0, 1).flatten(1)
    feats = torch.from_numpy(extractor.features(images, value_range=(-1.0, 1.0)))
    return {"pixel_l1": pixels, "inception_l2": feats}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--checkpoint", required=True, help="a sampling GAN's last.pt / best.pt")
    parser.add_argument("--cache", required=True, help="the prepared cache it was trained on")
    parser.add_argument("--domain", default=None, help="the style to draw (default: the GAN's target)")
    parser.add_argument("--n", type=int, default=32, help="samples (and real frames) per class")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--truncation", type=float, default=None, help="z truncation (the chain's: 1.0)")
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    G, state = load_generator(args.checkpoint, "cpu")
    config = stored_config(state, args.checkpoint)
    if config.model.kind != "sample":
        raise SystemExit(f"{args.checkpoint}: an editing GAN; this measures the sampling mode")
    domains = list(config.model.domains)
    domain = args.domain or config.target_domain
    d = domain_index(domain, domains)
    resolution = config.model.generator.resolution
    table = build_frame_table(args.cache, G.num_classes, domains)
    extractor = FeatureExtractor(batch_size=50)
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    gens = [sample_generator(args.seed, 0, i) for i in range(args.n)]
    z = torch.stack([truncated_normal((G.cfg.z_dim,), args.truncation, g) for g in gens])
    drawn: dict[int, dict[str, torch.Tensor]] = {}
    with torch.no_grad():
        for c in range(G.num_classes):
            y = torch.full((args.n,), c)
            drawn[c] = describe(G(z, y, torch.full_like(y, d)), extractor)
    per_class: dict[str, dict] = {}
    for c in range(G.num_classes):
        rows = torch.nonzero((table.label == c) & (table.domain == d)).flatten()
        entry: dict = {"real_frames": int(len(rows))}
        real = None
        if len(rows) >= 2:
            pick = torch.from_numpy(rng.choice(len(rows), min(args.n, len(rows)), replace=False))
            real = describe(table.images(rows[pick], resolution), extractor)
        for metric in ("pixel_l1", "inception_l2"):
            within = mean_pairwise(drawn[c][metric], metric)
            across = float(
                np.mean([paired(drawn[c][metric], drawn[o][metric], metric) for o in drawn if o != c])
            )
            body = {"within": round(within, 4), "across": round(across, 4)}
            body["class_share"] = round(across / max(across + within, 1e-12), 3)
            if real is not None:
                real_within = mean_pairwise(real[metric], metric)
                body |= {"real": round(real_within, 4), "within_vs_real": round(within / real_within, 3)}
            entry[metric] = body
        per_class[CLASS_NAMES[c]] = entry
    # The conditioning's make-up: the class and domain vectors against the z chunk of the first layer.
    with torch.no_grad():
        class_norm = float(G.class_embed.weight.norm(dim=1).mean())
        domain_norm = float(G.domain_embed.weight.norm(dim=1).mean())
    # The class vector conditions the blocks' batch norms beside each block's z chunk (chunk 0 feeds the
    # first linear layer only): ~sqrt(chunk size) is a standard normal chunk's norm.
    z_block = float(np.sqrt(G.z_chunks[-1]))
    summary = {
        metric: {
            key: round(float(np.mean([v[metric][key] for v in per_class.values() if key in v[metric]])), 3)
            for key in ("within_vs_real", "class_share")
        }
        for metric in ("pixel_l1", "inception_l2")
    }
    result = {
        "benchmark": "gan_diversity",
        "checkpoint": args.checkpoint,
        "domain": domain,
        "n": args.n,
        "summary": summary,
        "per_class": per_class,
        "conditioning": {
            "class_embedding_norm": round(class_norm, 3),
            "domain_embedding_norm": round(domain_norm, 3),
            "block_z_chunk_norm": round(z_block, 3),
            "z_chunks": list(G.z_chunks),
            "class_loss_weight": config.model.loss.class_weight,
            "ema_half_life_kimg": config.model.ema.half_life_kimg,
        },
        "seconds": round(time.perf_counter() - started, 1),
        "machine": machine(),
    }
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
