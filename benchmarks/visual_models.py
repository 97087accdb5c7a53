"""The recognizer's default visual branch beside a plain VGG-style CNN on the same faces (issue 15, part 3).

Both train for the same epochs with the same recipe: AdamW (lr 2e-3, weight decay 0.05) on a one-cycle
schedule, batches of 32, flips and shifts (the library's ClipAugment: horizontal flip and a random resized
crop of >= 85 % of the area). The RHCNN is ``VisualConfig()`` as shipped (GCSA on, its stem resolved for the
image size) with its classifier head and the coarse-fine loss; the VGG is three blocks of two 3x3 convs at
32/64/128 channels with BatchNorm and max-pooling, trained with cross-entropy. Scored by macro-F1 on the
held-out people. Imported by ``visual_sample_size.py --compare``.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

# benchmarks/recognizer.py shares its name with the recognizer package: move this folder to the end of the
# path so that "import recognizer" imports the package (common.py still loads).
_HERE = Path(__file__).resolve().parent
sys.path = [p for p in sys.path if Path(p or ".").resolve() != _HERE] + [str(_HERE)]

import torch  # noqa: E402
import yaml  # noqa: E402
from sklearn.metrics import f1_score  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from expr_common.data.config import AugmentConfig  # noqa: E402
from expr_common.data.dataset import normalize_video  # noqa: E402
from expr_common.data.video_augment import ClipAugment  # noqa: E402
from expr_common.labels import NUM_CLASSES  # noqa: E402
from expr_common.logs import progress  # noqa: E402
from recognizer.config import LossConfig, ModelConfig, VisualConfig  # noqa: E402
from recognizer.losses import build_loss  # noqa: E402
from recognizer.model import AudioVisualRecognizer  # noqa: E402

BATCH = 32
FLIPS_AND_SHIFTS = AugmentConfig(hflip=True, crop_scale=0.85, color_jitter=0.0)


def vgg(in_channels: int) -> nn.Module:
    def block(cin: int, cout: int) -> list[nn.Module]:
        layers: list[nn.Module] = []
        for c in (cin, cout):
            layers += [nn.Conv2d(c, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]
        return [*layers, nn.MaxPool2d(2)]

    return nn.Sequential(
        *block(in_channels, 32), *block(32, 64), *block(64, 128),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(128, NUM_CLASSES),
    )  # fmt: skip


class VGGClips(nn.Module):
    """The VGG on [B, K, C, H, W] clips: one image per frame, logits averaged over the K frames."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.net = vgg(in_channels)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        b, k = video.shape[:2]
        return self.net(video.flatten(0, 1)).unflatten(0, (b, k)).mean(dim=1)


class RHCNNClips(nn.Module):
    """The default visual branch and head (a "v" recognizer); returns probabilities (the CF loss's input)."""

    def __init__(self, image_size: int, visual: VisualConfig | None = None) -> None:
        super().__init__()
        self.visual_cfg = (visual or VisualConfig()).for_image_size(image_size)
        self.net = AudioVisualRecognizer(ModelConfig(visual=self.visual_cfg, modalities="v"))

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        return self.net(video=video)["prob"]


def parse_model(spec: str) -> tuple[str, VisualConfig | None, str]:
    """``vgg``, ``rhcnn`` or ``rhcnn:key=value,...`` (VisualConfig fields, values read as YAML; ``loss`` is
    ``coarse_fine`` or ``ce``) -> (kind, the RHCNN's config or None for the default, loss kind)."""
    kind, _, options = spec.partition(":")
    if kind not in ("vgg", "rhcnn") or (kind == "vgg" and options):
        raise SystemExit(f"--models {spec!r}: expected vgg, rhcnn or rhcnn:key=value,...")
    fields, loss = {}, "coarse_fine"
    for item in filter(None, re.split(r",(?=\w+=)", options)):  # "stem_stride=[2,1],loss=ce": 2 items
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--models {spec!r}: {item!r} is not key=value")
        parsed = yaml.safe_load(value)
        if key == "loss":
            loss = parsed
        else:
            fields[key] = tuple(parsed) if isinstance(parsed, list) else parsed
    if loss not in ("coarse_fine", "ce"):
        raise SystemExit(f"--models {spec!r}: loss must be coarse_fine or ce, got {loss!r}")
    try:
        return kind, VisualConfig(**fields) if fields else None, loss
    except (TypeError, ValueError) as error:
        raise SystemExit(f"--models {spec!r}: {error}") from None


def gflops_per_image(model: nn.Module, channels: int, size: int) -> float:
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 1, channels, size, size))
    return round(counter.get_total_flops() / 1e9, 4)


def fit_and_score(
    kind: str, xtr: torch.Tensor, ytr: torch.Tensor, xva: torch.Tensor, yva: torch.Tensor, epochs: int,
    seed: int, visual: VisualConfig | None = None, loss: str = "coarse_fine",
) -> dict:  # fmt: skip
    """Train one model on uint8 clips [N, K, C, S, S] for ``epochs``; macro-F1 on the held-out clips."""
    torch.manual_seed(seed)
    channels, size = xtr.shape[2], xtr.shape[-1]
    model = RHCNNClips(size, visual) if kind == "rhcnn" else VGGClips(channels)
    flops = gflops_per_image(model, channels, size)
    loss_fn = build_loss(LossConfig(kind=loss)) if kind == "rhcnn" else nn.CrossEntropyLoss()
    steps = epochs * (len(ytr) // BATCH)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.05)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=2e-3, total_steps=steps)
    augment = ClipAugment(FLIPS_AND_SHIFTS)
    gen = torch.Generator().manual_seed(seed)
    started = time.perf_counter()
    model.train()
    for _ in progress(range(epochs), desc=f"{kind} {size}px", unit="epoch"):
        order = torch.randperm(len(ytr), generator=gen)
        for i in range(len(ytr) // BATCH):
            idx = order[i * BATCH : (i + 1) * BATCH]
            out = model(normalize_video(augment(xtr[idx])))
            loss = loss_fn(out, ytr[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
    seconds = time.perf_counter() - started
    model.eval()
    with torch.no_grad():
        pred = torch.cat(
            [model(normalize_video(xva[i : i + 128])).argmax(1) for i in range(0, len(yva), 128)]
        )
    result = {
        "model": kind,
        "val_macro_f1": round(float(f1_score(yva, pred, average="macro")), 3),
        "val_accuracy": round(float((pred == yva).float().mean()), 3),
        "train_seconds": round(seconds, 1),
        "gflops_per_image": flops,
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    if kind == "rhcnn":
        result["stem_stride"] = list(model.visual_cfg.stem_strides)
    return result
