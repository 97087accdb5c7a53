"""A tiny recognizer trained once per session on the tiny corpus, shared by the training, evaluation,
submission and ablation tests (its cache lives in a temporary folder, never under the repo)."""

from __future__ import annotations

import pytest

from expr_common.paths import repo_root

TINY_CONFIG = str(repo_root() / "configs" / "recognizer" / "tiny.yaml")


@pytest.fixture(scope="session")
def recognizer_cache_root(tiny_corpus, tmp_path_factory):
    return tmp_path_factory.mktemp("recognizer_cache") / "tiny"


@pytest.fixture(scope="session")
def tiny_recognizer_run(recognizer_cache_root, tmp_path_factory):
    from recognizer.cli import main

    run = tmp_path_factory.mktemp("recognizer_runs") / "train"
    argv = ["train", "--config", TINY_CONFIG, "--run-dir", str(run)]
    assert main([*argv, "--set", f"data_overrides=[cache.root={recognizer_cache_root}]"]) == 0
    return run
