"""Class- and domain-conditional GAN augmentation for expression recognition.

The library API (gan_aug/api.py), imported on first use so ``import gan_aug`` stays light:
``load_gan(checkpoint) -> Gan`` with ``.sample(label, n)`` and ``.edit(faces, label)``; ``compute_fid(a, b)``.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["Edited", "Gan", "compute_fid", "load_gan"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from gan_aug import api

        return getattr(api, name)
    raise AttributeError(f"module 'gan_aug' has no attribute {name!r}")
