"""GAN config: defaults tie to the label space and DOMAINS, YAML round trips, clear errors."""

from __future__ import annotations

import dataclasses

import pytest

from expr_common.config import ConfigError, dump_config, from_dict, load_config, to_dict
from expr_common.labels import NUM_CLASSES
from expr_common.paths import repo_root
from gan_aug.config import (
    DOMAINS,
    AugmentConfig,
    DiscriminatorConfig,
    EditConfig,
    EmaConfig,
    GanModelConfig,
    GeneratorConfig,
    LossConfig,
    TeacherConfig,
    base_size,
    domain_index,
    num_up_blocks,
)
from gan_aug.run_config import load_train_config


def test_defaults_tie_to_labels_and_domains() -> None:
    cfg = GanModelConfig()
    assert cfg.num_classes == NUM_CLASSES == 8
    assert DOMAINS == ("ckplus", "afew", "affwild2") and cfg.num_domains == 3
    assert domain_index("affwild2") == 2
    with pytest.raises(ValueError, match="ckplus, afew, affwild2"):
        domain_index("fer2013")
    assert len(cfg.generator.multipliers) == len(cfg.discriminator.multipliers) == num_up_blocks(64) + 1


def test_geometry() -> None:
    assert [base_size(r) for r in (32, 48, 64, 128)] == [4, 3, 4, 4]
    assert [num_up_blocks(r) for r in (32, 48, 64, 128)] == [3, 4, 4, 5]


def test_round_trip_through_dict_and_yaml(tmp_path) -> None:
    cfg = GanModelConfig(
        generator=GeneratorConfig(resolution=48, width=8, channel_multipliers=(4, 4, 2, 2, 1)),
        discriminator=DiscriminatorConfig(resolution=48, width=8),
        augment=AugmentConfig(policy=("translation", "cutout"), p=0.0, adaptive=True),
        loss=LossConfig(lecam_weight=0.0, r1_gamma=0.5),
        ema=EmaConfig(half_life_kimg=5.0, rampup=None),
    )
    plain = to_dict(cfg)
    assert plain["augment"]["policy"] == ["translation", "cutout"]  # tuples become YAML lists
    assert from_dict(plain, GanModelConfig) == cfg
    assert from_dict(to_dict(GanModelConfig()), GanModelConfig) == GanModelConfig()
    path = tmp_path / "gan.yaml"
    path.write_text(dump_config(cfg), encoding="utf-8")
    loaded = load_config(path, GanModelConfig, ["ema.half_life_kimg=2"])
    assert loaded == dataclasses.replace(cfg, ema=EmaConfig(half_life_kimg=2.0, rampup=None))


def test_unsupported_resolution_is_a_clear_value_error() -> None:
    with pytest.raises(ValueError, match="unsupported GAN resolution 96: expected one of 32, 48, 64, 128"):
        GeneratorConfig(resolution=96)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unsupported GAN resolution 100"):
        DiscriminatorConfig(resolution=100)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="generator.resolution"):  # ConfigError is a ValueError
        from_dict({"generator": {"resolution": 96}}, GanModelConfig, "gan.yaml")


def test_other_invalid_values() -> None:
    with pytest.raises(ValueError, match="must be equal"):
        GanModelConfig(generator=GeneratorConfig(resolution=32))
    with pytest.raises(ValueError, match="needs 5 entries"):
        GeneratorConfig(resolution=64, channel_multipliers=(4, 2, 1))
    with pytest.raises(ValueError, match="unknown augment policy 'rotate'"):
        AugmentConfig(policy=("color", "rotate"))
    with pytest.raises(ValueError, match=r"augment.p must be in \[0, 1\]"):
        AugmentConfig(p=1.5)
    with pytest.raises(ConfigError, match="unknown key 'loss.r1_gama'"):
        from_dict({"loss": {"r1_gama": 1.0}}, GanModelConfig)


GAN_CONFIGS = sorted((repo_root() / "configs" / "gan_aug").glob("*.yaml"))


@pytest.mark.parametrize("path", GAN_CONFIGS, ids=lambda p: p.stem)
def test_every_shipped_gan_config_loads(path) -> None:
    config = load_train_config(path)
    assert config.train.steps > 0


def test_the_editor_options_are_checked() -> None:
    with pytest.raises(ValueError, match="edit.output must be colour or warp"):
        EditConfig(output="paint")
    with pytest.raises(ValueError, match="max_shift"):
        EditConfig(output="warp", max_shift=0.0)
    with pytest.raises(ValueError, match="edit.teacher"):
        TeacherConfig(steps=-1)
    edit = load_train_config(repo_root() / "configs" / "gan_aug" / "realbench_edit.yaml").model.edit
    assert edit.output == "warp" and edit.teacher.steps > 0  # the real-bench chain's editor
