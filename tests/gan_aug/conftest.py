"""Tiny GAN configs for CPU tests: a few channels per layer, so a forward pass takes milliseconds."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from gan_aug.config import DiscriminatorConfig, GanModelConfig, GeneratorConfig


def _tiny_config(resolution: int = 32, width: int = 4) -> GanModelConfig:
    return GanModelConfig(
        generator=GeneratorConfig(resolution=resolution, width=width, z_dim=16, embed_dim=8),
        discriminator=DiscriminatorConfig(resolution=resolution, width=width),
    )


@pytest.fixture
def tiny_config() -> Callable[..., GanModelConfig]:
    """Factory (a fixture, not an import: other test folders have their own conftest modules)."""
    return _tiny_config


@pytest.fixture(autouse=True)
def _seed_and_one_thread(one_thread_seeded: None) -> None:
    """Every GAN test: see ``one_thread_seeded`` (tests/conftest.py)."""


@pytest.fixture(scope="session")
def edit_cache(tiny_corpus: Path, data_dir: Path) -> Path:
    """The editing GAN's tiny data (the sampling GAN's tests use the same cache)."""
    return data_dir / "cache" / "gan_synthetic_tiny"
