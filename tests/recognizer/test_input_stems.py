"""The input stems fit the data: the visual stem the image size (stem_stride "auto"), the audio stem pool the
log-mel (stem_pool "auto"), both resolved when the config is loaded and stored resolved; grayscale frames."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from expr_common.checkpoint import CheckpointError, load_checkpoint
from expr_common.config import ConfigError, dump_config, from_dict, to_dict
from expr_common.paths import repo_root
from recognizer.cli import main
from recognizer.config import STEM_MIN_MAP, AudioConfig, VisualConfig
from recognizer.mcnn import MCNN
from recognizer.model import AudioVisualRecognizer
from recognizer.rhcnn import LUMA, RHCNN
from recognizer.run_config import (
    RecognizerConfig,
    check_same_stems,
    load_recognizer_config,
    stored_recognizer_config,
)

TINY_V = VisualConfig(stem_widths=(8, 8), stage_widths=(8, 16), blocks_per_stage=1)
TINY = repo_root() / "configs" / "recognizer" / "tiny.yaml"


@pytest.mark.parametrize(
    ("size", "strides", "first_map"),
    [(112, (2, 2), 28), (64, (2, 1), 32), (48, (2, 1), 24), (32, (1, 1), 32)],
)
def test_auto_stem_keeps_the_residual_stages_at_least_24_px(size, strides, first_map) -> None:
    cfg = TINY_V.for_image_size(size)
    assert cfg.stem_strides == strides
    net = RHCNN(cfg)
    stem_out = net.stem(torch.zeros(1, 3, size, size))
    assert stem_out.shape[-2:] == (first_map, first_map) and first_map >= STEM_MIN_MAP
    assert net(torch.zeros(2, 1, 3, size, size)).shape == (2, 16)


def test_explicit_strides_are_kept_and_checked() -> None:
    assert replace(TINY_V, stem_stride=2).for_image_size(48).stem_strides == (2, 2)  # a 112-px-style stem
    assert replace(TINY_V, stem_stride=(1, 2)).for_image_size(112).stem_strides == (1, 2)
    with pytest.raises(ValueError, match="stem_stride"):
        replace(TINY_V, stem_stride=3)
    with pytest.raises(ValueError, match="unresolved"):
        RHCNN(TINY_V)  # "auto" without an image size


def test_the_loaded_config_names_the_strides_the_model_was_built_with() -> None:
    cfg = load_recognizer_config(TINY)  # the tiny data config's faces are 48 px
    assert cfg.model.visual.stem_stride == (2, 1)
    stored = to_dict(cfg)
    assert stored["model"]["visual"]["stem_stride"] == [2, 1]
    assert "stem_stride: [2, 1]" in dump_config(cfg)  # config.yaml
    again = from_dict(stored, RecognizerConfig)  # what a checkpoint rebuilds from
    assert again.model.visual.stem_strides == (2, 1)
    big = load_recognizer_config(TINY, ["data_overrides=[preprocess.image_size=112]"])
    assert big.model.visual.stem_stride == (2, 2)
    fixed = load_recognizer_config(TINY, ["model.visual.stem_stride=2"])
    assert fixed.model.visual.stem_stride == 2
    with pytest.raises(ConfigError, match="stem_stride"):
        load_recognizer_config(TINY, ["model.visual.stem_stride=fast"])
    audio_only = load_recognizer_config(TINY, ["model.modalities=a"])  # no visual branch: left as written
    assert audio_only.model.visual.stem_stride == "auto"
    assert AudioVisualRecognizer(audio_only.model).visual is None


def test_grayscale_frames_are_replicated_for_an_rgb_stem() -> None:
    torch.manual_seed(0)
    net = RHCNN(TINY_V.for_image_size(48)).eval()
    gray = torch.randn(2, 3, 1, 48, 48)
    with torch.no_grad():
        assert torch.allclose(net(gray), net(gray.expand(-1, -1, 3, -1, -1)), atol=1e-6)


def test_a_grayscale_stem_reduces_rgb_to_luma() -> None:
    torch.manual_seed(0)
    net = RHCNN(replace(TINY_V, in_channels=1).for_image_size(48)).eval()
    assert net.stem[0][0].in_channels == 1
    rgb = torch.randn(2, 1, 3, 48, 48)
    luma = (rgb * torch.tensor(LUMA).view(1, 1, 3, 1, 1)).sum(dim=2, keepdim=True)
    with torch.no_grad():
        assert torch.allclose(net(rgb), net(luma), atol=1e-5)
        assert not torch.allclose(net(rgb), net(rgb[:, :, :1]), atol=1e-3)  # not simply the red channel
    with pytest.raises(ValueError, match="2 channels"):
        net(torch.randn(1, 1, 2, 48, 48))


@pytest.mark.parametrize(
    ("n_mels", "hop_ms", "pool"),
    [(64, 10.0, (2, 4)), (40, 20.0, (2, 2)), (32, 10.0, (1, 4)), (64, 40.0, (2, 1))],
)
def test_auto_audio_pool_brings_the_log_mel_to_40_ms_steps(n_mels, hop_ms, pool) -> None:
    cfg = AudioConfig(branch_widths=(4, 8)).for_spectrogram(n_mels, hop_ms)
    assert cfg.stem_pools == pool
    net = MCNN(cfg)
    steps = int(1000 / hop_ms) + 1  # one second of log-mel
    assert net.stem(torch.zeros(1, 1, n_mels, steps)).shape[-2:] == (
        -(-n_mels // pool[0]),
        -(-steps // pool[1]),
    )


def test_the_loaded_config_names_the_audio_pool() -> None:
    assert load_recognizer_config(TINY).model.audio.stem_pool == (2, 4)  # the tiny data: 64 mels, 10 ms
    coarse = load_recognizer_config(TINY, ["data_overrides=[preprocess.n_mels=40,preprocess.hop_ms=20.0]"])
    assert coarse.model.audio.stem_pool == (2, 2)
    paper = load_recognizer_config(TINY, ["model.audio.stem_pool=[1,1]"])
    assert (
        paper.model.audio.stem_pool == (1, 1)
        and MCNN(paper.model.audio).stem.__class__.__name__ == "Identity"
    )
    assert load_recognizer_config(TINY, ["model.modalities=v"]).model.audio.stem_pool == "auto"
    with pytest.raises(ValueError, match="unresolved"):
        MCNN(AudioConfig())


def test_a_checkpoint_from_before_the_audio_pool_rebuilds_at_full_resolution(tiny_recognizer_run) -> None:
    state = load_checkpoint(tiny_recognizer_run / "checkpoints" / "best.pt")
    assert state["config"]["model"]["audio"]["stem_pool"] == [2, 4]  # stored resolved
    old = {**state["config"], "model": {**state["config"]["model"]}}
    old["model"]["audio"] = {k: v for k, v in old["model"]["audio"].items() if k != "stem_pool"}
    cfg = stored_recognizer_config({**state, "config": old}, "old checkpoint")
    assert cfg.model.audio.stem_pool == (1, 1)  # what the code computed then, never "auto"
    assert stored_recognizer_config(state, "checkpoint").model.audio.stem_pool == (2, 4)


def test_a_checkpoint_from_before_gcsa_start_keeps_gates_of_gain_one(tiny_recognizer_run) -> None:
    state = load_checkpoint(tiny_recognizer_run / "checkpoints" / "best.pt")
    assert stored_recognizer_config(state, "checkpoint").model.visual.gcsa_start == "identity"  # the default
    old = {**state["config"], "model": dict(state["config"]["model"])}
    for branch in ("visual", "audio"):
        old["model"][branch] = {k: v for k, v in old["model"][branch].items() if k != "gcsa_start"}
    cfg = stored_recognizer_config({**state, "config": old}, "old checkpoint")
    assert cfg.model.visual.gcsa_start == cfg.model.audio.gcsa_start == "uniform"  # sigmoid gates, gain 1
    model = AudioVisualRecognizer(cfg.model)
    assert model.visual.attention.gain == model.audio.attention.gain == 1.0


def test_resume_refuses_another_gate_gain_and_allows_another_initialisation() -> None:
    stored = load_recognizer_config(TINY, ["model.visual.gcsa_start=uniform"])
    check_same_stems(stored, load_recognizer_config(TINY, ["model.visual.gcsa_start=random"]), "last.pt")
    with pytest.raises(CheckpointError, match=r"model.visual.gcsa_start uniform there, identity here"):
        check_same_stems(stored, load_recognizer_config(TINY), "last.pt")


def test_resume_refuses_other_stems(tiny_recognizer_run, recognizer_cache_root, tmp_path, capsys) -> None:
    run = tmp_path / "run"
    sets = ["--set", f"data_overrides=[cache.root={recognizer_cache_root}]", "--set", "train.epochs=1"]
    argv = ["train", "--config", str(TINY), "--run-dir", str(run), *sets]
    assert main([*argv, "--set", "model.audio.stem_pool=[1,1]"]) == 0
    metrics = (run / "metrics.jsonl").read_text()
    assert main([*argv, "--set", "train.epochs=2", "--resume"]) == 2  # "auto" resolves to [2, 4] here
    err = capsys.readouterr().err
    assert "model.audio.stem_pool [1, 1] there, [2, 4] here" in err and len(err.strip().splitlines()) == 1
    assert (run / "metrics.jsonl").read_text() == metrics  # nothing written
    resumed = ["--set", "train.epochs=2", "--set", "model.audio.stem_pool=[1,1]", "--resume"]
    assert main([*argv, *resumed]) == 0
