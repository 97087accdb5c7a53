"""The data floor only reads: a missing dataset root is one line unless a provider (the command lines'
procedural corpus) makes it; library calls generate nothing."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from expr_common.data.config import load_data_config
from expr_common.data.prepare import prepare_cached
from expr_common.data.roots import add_root_provider, dataset_root, remove_root_provider
from expr_common.errors import MissingDataError
from expr_common.paths import repo_root
from expr_common.synth import ondemand

TINY_DATA = repo_root() / "configs" / "data" / "synthetic_tiny.yaml"


@pytest.fixture
def library_only(tmp_path, monkeypatch):
    """An empty data root and no provider: what a notebook that never ran a command line sees."""
    monkeypatch.setenv("EXPR_DATA_DIR", str(tmp_path / "data"))
    remove_root_provider(ondemand.provide)
    yield tmp_path / "data"
    add_root_provider(ondemand.provide)


def test_a_library_load_generates_no_corpus_and_says_how_to_make_it(library_only, tmp_path):
    config = load_data_config(TINY_DATA, [f"cache.root={tmp_path / 'cache'}"])
    with pytest.raises(MissingDataError) as caught:
        prepare_cached(config)
    message = str(caught.value)
    assert "synthetic_tiny" in message and "expr-data synth --preset tiny" in message
    assert "\n" not in message
    assert not library_only.exists()  # nothing generated, not even the parent folder


def test_a_plain_missing_root_gets_no_corpus_hint(library_only, tmp_path):
    with pytest.raises(MissingDataError, match="does not exist") as caught:
        dataset_root(tmp_path / "elsewhere")
    assert "expr-data synth" not in str(caught.value)


def test_a_registered_provider_makes_the_missing_root(library_only, tmp_path):
    asked: list[Path] = []

    def provider(path: Path) -> bool:
        asked.append(path)
        path.mkdir(parents=True)
        return True

    add_root_provider(provider)
    add_root_provider(provider)  # once, however often it is added
    try:
        assert dataset_root(tmp_path / "made") == tmp_path / "made"
        assert dataset_root(tmp_path / "made") == tmp_path / "made"  # there now: not asked again
    finally:
        remove_root_provider(provider)
    assert asked == [tmp_path / "made"]


def test_the_corpus_provider_leaves_other_paths_alone(tmp_path):
    assert ondemand.provide(tmp_path / "not_a_corpus") is False
    assert not (tmp_path / "not_a_corpus").exists()


@pytest.mark.parametrize(
    "cli", ["expr_common.cli", "gan_aug.cli", "recognizer.cli", "expr_experiment.cli", "gan_aug.train"]
)
def test_every_command_line_makes_a_missing_corpus(cli, library_only, monkeypatch, capsys):
    made: list[Path] = []

    def generate(corpus: Path, seed: int = 0) -> Path:  # stands in for the corpus renderer
        made.append(corpus)
        (corpus / "afew").mkdir(parents=True)
        return corpus

    monkeypatch.setattr(ondemand, "ensure_synthetic", generate)
    with pytest.raises(MissingDataError):
        dataset_root("data/synthetic_tiny/afew")  # before the command line: a library call
    with pytest.raises(SystemExit):
        importlib.import_module(cli).main(["--help"])
    assert dataset_root("data/synthetic_tiny/afew") == library_only / "synthetic_tiny" / "afew"
    assert made == [library_only / "synthetic_tiny"]
