"""Multi-process runs on the CPU share one prepared cache of the tiny corpus (tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from expr_common.paths import repo_root


@pytest.fixture(scope="session")
def mp_cache(tiny_corpus, tmp_path_factory) -> Path:
    """The tiny corpus prepared once, in this process: the launched processes only read it."""
    from expr_common.data.config import load_data_config
    from expr_common.data.prepare import prepare_cached

    root = tmp_path_factory.mktemp("multiproc_cache") / "tiny"
    data = repo_root() / "configs" / "data" / "synthetic_tiny.yaml"
    prepare_cached(load_data_config(data, [f"cache.root={root}"]), None)
    return root
