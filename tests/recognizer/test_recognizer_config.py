"""The recognizer's config sections: defaults from the label module, YAML round trips, validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from expr_common.config import ConfigError, from_dict, load_config, to_dict
from expr_common.labels import DEFAULT_COARSE_GROUPS, DEFAULT_MU, NUM_CLASSES
from recognizer.config import AudioConfig, FusionConfig, LossConfig, ModelConfig, VisualConfig


def test_defaults_come_from_the_label_module() -> None:
    assert LossConfig().coarse_groups == DEFAULT_COARSE_GROUPS
    assert LossConfig().mu == DEFAULT_MU
    assert ModelConfig().num_classes == NUM_CLASSES
    assert VisualConfig().dropout == AudioConfig().dropout == 0.2  # the paper's head dropout


def test_model_config_round_trips() -> None:
    cfg = ModelConfig(
        visual=VisualConfig(stage_widths=(16, 32), temporal="tconv", gcsa=False, kernel_size=5),
        audio=AudioConfig(branch_widths=(8, 16, 16), temporal_kernel=(1, 11)),
        fusion=FusionConfig(m=2, n=5),
        modalities="v",
    )
    plain = to_dict(cfg)
    assert plain["visual"]["stage_widths"] == [16, 32]  # plain lists: YAML- and weights_only-safe
    back = from_dict(plain, ModelConfig)
    assert back == cfg
    assert isinstance(back.audio.temporal_kernel, tuple)


def test_loss_config_round_trips() -> None:
    cfg = LossConfig(kind="ce", mu=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6), aux_weight=0.0)
    assert from_dict(to_dict(cfg), LossConfig) == cfg


def test_yaml_and_overrides(tmp_path: Path) -> None:
    path = tmp_path / "model.yaml"
    path.write_text("fusion:\n  m: 3\nvisual:\n  temporal: tconv\n", encoding="utf-8")
    cfg = load_config(path, ModelConfig, ["fusion.n=4"])
    assert (cfg.fusion.m, cfg.fusion.n, cfg.visual.temporal) == (3, 4, "tconv")
    with pytest.raises(ConfigError, match="fusion"):
        load_config(path, ModelConfig, ["fusion.m=6"])
    with pytest.raises(ConfigError, match="temporal"):
        load_config(path, ModelConfig, ["visual.temporal=lstm"])


@pytest.mark.parametrize("kwargs", [{"m": 0}, {"m": 6}, {"n": 0}, {"n": 6}, {"m": 2.0}, {"n": True}])
def test_invalid_fusion_weights_raise(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        FusionConfig(**kwargs)


def test_invalid_fusion_weight_in_data_names_the_key() -> None:
    with pytest.raises(ConfigError, match="fusion"):
        from_dict({"fusion": {"m": 0}}, ModelConfig)


@pytest.mark.parametrize(
    "make",
    [
        lambda: LossConfig(coarse_groups=(0, 1, 2)),
        lambda: LossConfig(coarse_groups=(0, 1, 2, 3, 4, 0, 1, 2)),
        lambda: LossConfig(mu=(0.5,) * 5),
        lambda: LossConfig(mu=(-0.5,) * 6),
        lambda: VisualConfig(kernel_size=4),
        lambda: VisualConfig(stage_widths=(64, 130)),
        lambda: AudioConfig(temporal_kernel=(3,)),
        lambda: AudioConfig(branch_widths=(8, 5)),  # 15 channels cannot enter GCSA's 4 groups
    ],
)
def test_invalid_sections_raise(make) -> None:
    with pytest.raises(ValueError):
        make()


def test_paper_yaml_keeps_the_papers_setting_whatever_the_defaults():
    from expr_common.paths import repo_root
    from recognizer.run_config import load_recognizer_config

    cfg = load_recognizer_config(repo_root() / "configs" / "recognizer" / "paper.yaml")
    o, t, m = cfg.optim, cfg.train, cfg.model
    assert (o.name, o.lr, o.head_lr, o.momentum, o.schedule, o.warmup_epochs) == (
        "sgd",
        1e-4,
        1e-3,
        0.9,
        "constant",
        0,
    )
    assert (t.epochs, t.batch_size, t.balanced, t.mixup, t.modality_dropout) == (300, 16, False, 0.0, 0.0)
    assert (cfg.loss.kind, cfg.loss.label_smoothing) == ("coarse_fine", 0.0)
    assert m.visual.test_flip is False and m.audio.stem_pools == (1, 1) and m.visual.stem_strides == (2, 2)
    assert m.visual.dropout == m.audio.dropout == 0.2 and m.visual.gcsa and m.audio.gcsa
    assert m.visual.gcsa_start == m.audio.gcsa_start == "random"  # plain sigmoid gates over random convs
