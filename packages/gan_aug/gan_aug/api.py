"""The GAN as a library: load a ``gan-aug train`` checkpoint, sample faces of a class or edit real faces
into one, and measure FID between two sets of faces.

    from gan_aug import compute_fid, load_gan
    gan = load_gan("runs/gan/checkpoints/last.pt")
    faces = gan.sample("Disgust", 16, seed=0)           # a sampling GAN: uint8 [16, 3, S, S]
    edited = gan.edit(real_faces, "Disgust")             # an editing GAN: .images uint8, .mask [N, 1, S, S]
    compute_fid(faces, real_faces)                       # pytorch-fid's FID (its InceptionV3, local weights)

Samples are those ``gan-aug generate`` writes for the same seed, class and number (one frame each).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from expr_common.labels import CLASS_NAMES
from gan_aug.edit_networks import edit_frames
from gan_aug.fid.features import FeatureExtractor
from gan_aug.fid.metrics import fid_from_features
from gan_aug.generate import load_generator, sample_generator, to_uint8, truncated_normal
from gan_aug.run_config import stored_config


@dataclass(frozen=True)
class Edited:
    images: np.ndarray  # uint8 [N, 3, S, S]: outside the mask the input, untouched
    mask: np.ndarray  # float32 [N, 1, S, S] in [0, 1]: where the GAN wrote


class Gan:
    """A trained generator (see :func:`load_gan`): ``kind`` is ``sample`` or ``edit``."""

    def __init__(self, G: torch.nn.Module, state: dict[str, Any], source: Path) -> None:
        self.G, self.source = G, source
        self.config = stored_config(state, source)
        self.device = next(G.parameters()).device

    @property
    def kind(self) -> str:
        return "edit" if self.config.model.kind == "edit" else "sample"

    @property
    def domains(self) -> tuple[str, ...]:
        return tuple(self.config.model.domains)

    def sample(
        self,
        label: str | int,
        n: int,
        *,
        domain: str | None = None,
        seed: int = 0,
        truncation: float | None = None,
    ) -> np.ndarray:
        """``n`` faces of class ``label`` in the style of ``domain`` (default: the target domain)."""
        self._need("sample")
        c, d = _class_index(label), self._domain_index(domain)
        z = torch.stack(
            [
                truncated_normal((self.G.cfg.z_dim,), truncation, sample_generator(seed, c, k))
                for k in range(n)
            ]
        )
        y = torch.full((n,), c, device=self.device)
        with torch.no_grad():
            return to_uint8(self.G(z.to(self.device), y, torch.full_like(y, d))).cpu().numpy()

    def edit(self, faces: Any, label: str | int, *, domain: str | None = None) -> Edited:
        """Real faces (uint8 ``[N, 3, S, S]``, any S) edited into class ``label``; ``domain`` is the faces'
        own domain (default: the target domain)."""
        self._need("edit")
        x = torch.as_tensor(np.asarray(faces))
        if x.dtype != torch.uint8 or x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"edit: faces must be uint8 [N, 3, S, S], got {x.dtype} {list(x.shape)}")
        x = x.float().div(127.5).sub(1).to(self.device)
        c = torch.full((len(x),), _class_index(label), device=self.device)
        d = torch.full_like(c, self._domain_index(domain))
        with torch.no_grad():
            parts = edit_frames(self.G, x, c, d)
        return Edited(to_uint8(parts.image).cpu().numpy(), parts.mask.float().cpu().numpy())

    def _need(self, kind: str) -> None:
        if self.kind != kind:
            raise ValueError(f"{self.source}: a {self.kind} GAN (model.kind), it cannot {kind}")

    def _domain_index(self, domain: str | None) -> int:
        name = domain or self.config.target_domain
        if name not in self.domains:
            raise ValueError(f"domain {name!r}: this GAN was trained on {', '.join(self.domains)}")
        return self.domains.index(name)


def load_gan(checkpoint: str | Path, device: str | None = None) -> Gan:
    """A ``gan-aug train`` checkpoint's G_ema, in eval mode on ``device`` (default: CPU)."""
    G, state = load_generator(checkpoint, device or "cpu")
    return Gan(G, state, Path(checkpoint))


def compute_fid(a: Any, b: Any, *, weights: str | Path | None = None, batch_size: int = 50) -> float:
    """FID between two sets of faces, uint8 ``[N, 3, H, W]`` each (any size: resized to 299 as pytorch-fid
    does), with pytorch-fid's InceptionV3 from the local weights (``gan-aug fid-weights`` puts them there)."""
    extractor = FeatureExtractor(weights, batch_size=batch_size)
    feats = [extractor.features(torch.as_tensor(np.asarray(x))) for x in (a, b)]
    return float(fid_from_features(*feats))


def _class_index(label: str | int) -> int:
    if isinstance(label, str):
        if label not in CLASS_NAMES:
            raise ValueError(f"class {label!r}: one of {', '.join(CLASS_NAMES)}")
        return CLASS_NAMES.index(label)
    if not 0 <= int(label) < len(CLASS_NAMES):
        raise ValueError(f"class {label}: an index in 0..{len(CLASS_NAMES) - 1}")
    return int(label)
