"""The experiment's tests build tiny recognizers and GANs."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _seed_and_one_thread(one_thread_seeded: None) -> None:
    """Every experiment test: see ``one_thread_seeded`` (tests/conftest.py)."""
