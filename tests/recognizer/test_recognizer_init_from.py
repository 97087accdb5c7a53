"""Initial pre-training (issue 15, part 5): ``--init-from`` loads every part of an earlier recognizer whose
tensors fit, says what it loaded and skipped, and ``train.freeze_epochs`` keeps the loaded parts fixed."""

from __future__ import annotations

import json

import pytest
import torch

from expr_common.checkpoint import load_checkpoint
from expr_common.paths import repo_root
from recognizer.cli import main
from recognizer.init_from import InitFromError, load_matching
from recognizer.model import AudioVisualRecognizer
from recognizer.run_config import load_recognizer_config

TINY = str(repo_root() / "configs" / "recognizer" / "tiny.yaml")


def _argv(run, cache, *sets: str) -> list[str]:
    argv = ["train", "--config", TINY, "--run-dir", str(run), "--set", f"data_overrides=[cache.root={cache}]"]
    return argv + [item for s in sets for item in ("--set", s)]


@pytest.fixture(scope="module")
def pretrained(tiny_corpus, tmp_path_factory):
    """A visual-only recognizer: the 'large face set' stand-in."""
    root = tmp_path_factory.mktemp("pretrain")
    assert main(_argv(root / "v", root / "cache", "model.modalities=v", "train.epochs=1")) == 0
    return root / "v" / "checkpoints" / "best.pt", root / "cache"


def _part(state: dict, prefix: str) -> dict[str, torch.Tensor]:
    return {k: v for k, v in state.items() if k.startswith(prefix + ".")}


def test_fine_tuning_starts_from_the_pretrained_branch_and_freezes_it(pretrained, tmp_path):
    checkpoint, cache = pretrained
    run = tmp_path / "ft"
    argv = [*_argv(run, cache, "train.epochs=2", "train.freeze_epochs=1"), "--init-from", str(checkpoint)]
    assert main(argv) == 0
    table = json.loads((run / "init_from.json").read_text())
    assert table["loaded_parts"] == ["visual", "head_v"]
    assert table["parts"]["audio"]["loaded"] == 0 and table["parts"]["audio"]["why"]
    assert set(table["parts"]["audio"]["why"]) == {"not in the checkpoint"}
    source = load_checkpoint(checkpoint)["model"]
    after_frozen = load_checkpoint(run / "checkpoints" / "last.prev.pt")  # epoch 0: frozen
    after_free = load_checkpoint(run / "checkpoints" / "last.pt")  # epoch 1: trained
    assert after_frozen["epoch"] == 0 and after_free["epoch"] == 1
    for name, tensor in {**_part(source, "visual"), **_part(source, "head_v")}.items():
        assert torch.equal(after_frozen["model"][name], tensor), name  # weights and BN statistics
    moved = [n for n, t in _part(source, "visual").items() if not torch.equal(after_free["model"][n], t)]
    assert moved  # unfrozen in epoch 1, the branch fine-tunes
    audio0 = AudioVisualRecognizer(load_recognizer_config(TINY).model)  # never loaded: it trained from fresh
    assert any(
        not torch.equal(after_frozen["model"][n], t) for n, t in _part(audio0.state_dict(), "audio").items()
    )


def test_what_does_not_fit_is_skipped_with_the_reason(pretrained):
    checkpoint, _ = pretrained
    wider = AudioVisualRecognizer(load_recognizer_config(TINY, ["model.visual.stage_widths=[8,32]"]).model)
    table = load_matching(wider, checkpoint)
    visual = table["parts"]["visual"]
    assert visual["loaded"] > 0 and visual["skipped"] > 0
    assert any(reason.startswith("shape ") for reason in visual["why"])
    assert "visual" not in table["loaded_parts"] and "head_v" not in table["loaded_parts"]  # 32-d features
    audio_only = AudioVisualRecognizer(load_recognizer_config(TINY, ["model.modalities=a"]).model)
    with pytest.raises(InitFromError, match="no tensor fits"):
        load_matching(audio_only, checkpoint)


def test_freeze_epochs_needs_something_to_freeze():
    with pytest.raises(ValueError, match="freeze_epochs"):
        load_recognizer_config(TINY, ["train.freeze_epochs=2"])
