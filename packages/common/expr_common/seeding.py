"""Seeding of python, numpy and torch (and DataLoader workers), and RNG state that fits in a checkpoint."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch
from accelerate.utils import set_seed


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed python, numpy and torch (all devices); ``deterministic`` also asks torch for deterministic
    kernels, which resume-equality tests need."""
    set_seed(seed, deterministic=deterministic)


def worker_init_fn(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: numpy and python RNGs follow torch's per-worker seed, so workers
    neither repeat each other's augmentations nor change between runs with the same seed."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def make_generator(seed: int) -> torch.Generator:
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator


def rng_state() -> dict[str, Any]:
    """Every global RNG's state as tensors and plain values (loadable with ``weights_only=True``)."""
    py_state = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    state: dict[str, Any] = {
        "python": [py_state[0], list(py_state[1]), py_state[2]],
        "numpy": [
            np_name,
            torch.from_numpy(np.asarray(np_keys, dtype=np.int64)),
            int(np_pos),
            int(np_has_gauss),
            float(np_gauss),
        ],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` captured."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
