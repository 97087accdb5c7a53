"""The plain references of the real-data bench, trained on the same prepared cache, splits and epochs as
the recognizer: a VGG-style CNN on the face crops (three blocks of two 3x3 convs, 32/64/128, BN, max-pool;
flips and shifts) and a 3-block CNN on the log-mels. Both: AdamW (lr 2e-3, weight decay 0.05) on a one-cycle
schedule, batches of 32, cross-entropy; the epoch with the best validation macro-F1 is scored on test, as
the recognizer's ``best.pt`` is."""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn
from visual_models import BATCH, FLIPS_AND_SHIFTS, VGGClips

from expr_common.data.dataset import CachedClips, normalize_video
from expr_common.data.video_augment import ClipAugment
from expr_common.labels import NUM_CLASSES
from expr_common.metrics import evaluate_predictions

LR, WEIGHT_DECAY = 2e-3, 0.05


def audio_cnn() -> nn.Module:
    """Three conv-BN-ReLU-max-pool blocks (32/64/128) on ``[B, 1, F, T]`` log-mels, global average pool."""

    def block(cin: int, cout: int) -> list[nn.Module]:
        return [
            nn.Conv2d(cin, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(),
            nn.MaxPool2d(2),
        ]

    return nn.Sequential(
        nn.BatchNorm2d(1), *block(1, 32), *block(32, 64), *block(64, 128),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(128, NUM_CLASSES),
    )  # fmt: skip


def load_split(cache: Path, split: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(video uint8 [N, K, C, H, W], log-mel [N, 1, F, T], labels [N]) of a split's labelled samples."""
    data = CachedClips(cache, split=split, labelled_only=True)
    batch = data.__getitems__(list(range(len(data))))
    return batch["video"], batch["audio"], batch["label"]


def _predict(model: nn.Module, x: torch.Tensor, modality: str) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        chunks = [x[i : i + 128] for i in range(0, len(x), 128)]
        return torch.cat([model(_inputs(c, modality)).argmax(1) for c in chunks])


def _inputs(x: torch.Tensor, modality: str) -> torch.Tensor:
    return normalize_video(x) if modality == "v" else x


def fit_plain(cache: Path, modality: str, epochs: int, seed: int) -> dict[str, Any]:
    """Train the plain reference of ``modality`` on the cache's train split; test metrics of the epoch
    that scored best on validation, the training seconds and the training samples seen."""
    torch.manual_seed(seed)
    splits = {s: load_split(cache, s) for s in ("train", "val", "test")}
    pick = 0 if modality == "v" else 1
    (xtr, ytr), (xva, yva), (xte, yte) = ((v[pick], v[2]) for v in splits.values())
    model = VGGClips(xtr.shape[2]) if modality == "v" else audio_cnn()
    steps_per_epoch = max(1, len(ytr) // BATCH)
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=LR, total_steps=epochs * steps_per_epoch)
    augment, loss_fn = ClipAugment(FLIPS_AND_SHIFTS), nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(seed)
    best, best_state, started = -1.0, None, time.perf_counter()
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(ytr), generator=gen)
        for i in range(steps_per_epoch):
            idx = order[i * BATCH : (i + 1) * BATCH]
            x = augment(xtr[idx]) if modality == "v" else xtr[idx]
            loss = loss_fn(model(_inputs(x, modality)), ytr[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
        val_f1 = evaluate_predictions(yva.numpy(), _predict(model, xva, modality).numpy())["macro_f1"]
        if val_f1 > best:
            best, best_state = val_f1, copy.deepcopy(model.state_dict())
    seconds = time.perf_counter() - started
    model.load_state_dict(best_state)
    metrics = evaluate_predictions(yte.numpy(), _predict(model, xte, modality).numpy())
    return {"metrics": metrics, "train_s": seconds, "items": epochs * steps_per_epoch * BATCH, "val": best}
