"""The end-to-end chains' shared fixture."""

from __future__ import annotations

import shutil

import pytest

from gan_aug.fid.weights import WEIGHTS_FILE


@pytest.fixture
def torch_home(weights, tmp_path, monkeypatch):
    """A torch hub cache holding the converted FID weights, where the chain's `gan-aug fid-weights`
    step finds them (no download in the test)."""
    home = tmp_path / "torch"
    (home / "hub" / "checkpoints").mkdir(parents=True)
    shutil.copy(weights, home / "hub" / "checkpoints" / WEIGHTS_FILE)
    monkeypatch.setenv("TORCH_HOME", str(home))
    return home
