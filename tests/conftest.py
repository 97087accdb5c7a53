"""Shared fixtures: the tiny synthetic corpus, generated once per test session through the same
on-demand path a fresh clone uses (``data/synthetic_tiny``), but under a temporary data root."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("EXPR_PROGRESS", "0")  # no progress bars in test logs


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("data")
    previous = os.environ.get("EXPR_DATA_DIR")
    os.environ["EXPR_DATA_DIR"] = str(path)
    yield path
    if previous is None:
        os.environ.pop("EXPR_DATA_DIR", None)
    else:
        os.environ["EXPR_DATA_DIR"] = previous


@pytest.fixture(scope="session")
def tiny_corpus(data_dir):
    from expr_common.runs import dataset_root

    return dataset_root("data/synthetic_tiny")
