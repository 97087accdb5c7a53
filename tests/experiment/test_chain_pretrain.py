"""The chain's pre-training step: what it trains on, and what the fine-tuned cells start from."""

from __future__ import annotations

import json

import pytest

from expr_common.config import ConfigError, load_config, to_dict
from expr_common.errors import RunDirError
from expr_common.paths import repo_root
from expr_experiment.chain import plan
from expr_experiment.chain_config import ChainConfig
from expr_experiment.layout import ChainDir
from expr_experiment.report import ablation_request
from expr_experiment.report_tables import pretrain_lines
from recognizer.ablation import ablation_table, cell_dir
from recognizer.run_config import load_recognizer_config

DEMO = repo_root() / "configs" / "chain" / "demo.yaml"


def test_the_pretraining_run_sees_only_the_source_domains_and_the_cells_start_from_it(tmp_path) -> None:
    cfg = load_config(DEMO, ChainConfig)
    tasks = {t.name: t for t in plan(cfg, tmp_path)}
    assert not any(tmp_path.iterdir())  # planning writes nothing ...
    for task in tasks.values():  # ... each recognizer step writes its cell.yaml when it starts
        if task.before is not None:
            task.before()
    layout = ChainDir(tmp_path)
    pre = load_recognizer_config(ChainDir.cell_config(layout.pretrain.root))
    assert pre.model.modalities == "v" and pre.train.epochs == 24
    assert pre.train.train_sources == pre.train.val_sources == ["afew", "ckplus"]
    assert pre.train.init_from is None
    for modality in ("v", "av"):
        for seed in range(3):
            task = tasks[ChainDir.pretrained_task(modality, seed)]
            assert task.deps == ("pretrain",)
            cell = load_recognizer_config(ChainDir.cell_config(layout.pretrained(modality, seed)))
            scratch = load_recognizer_config(ChainDir.cell_config(layout.cell("gcsa_cf", modality, seed)))
            assert cell.train.init_from == str(layout.pretrain.best_checkpoint)
            assert cell.train.train_sources == scratch.train.train_sources == ["affwild2"]
            assert cell.train.epochs == scratch.train.epochs == 16  # the pre-training's epochs stay its own
            assert (cell.model.modalities, cell.train.seed) == (scratch.model.modalities, seed)
    assert not any(name.startswith("pretrained/gcsa_cf_a/") for name in tasks)  # no visual branch to load
    off = plan(load_config(DEMO, ChainConfig, ["pretrain.enabled=false"]), tmp_path / "off")
    assert not any("pretrain" in t.name for t in off)


def test_pretraining_settings_are_checked(tmp_path) -> None:
    with pytest.raises(ConfigError, match="audio-only cell has no visual branch"):
        load_config(DEMO, ChainConfig, ["pretrain.modalities=[a]"])
    with pytest.raises(ConfigError, match="not in ablation_modalities"):
        load_config(DEMO, ChainConfig, ["ablation_modalities=[av]"])
    cfg = load_config(DEMO, ChainConfig, ["pretrain.sources=[rafdb]"])
    with pytest.raises(ConfigError, match=r"pretrain.sources \['rafdb'\] are not sources of"):
        plan(cfg, tmp_path)


def test_start_arms_starts_every_arm_and_visual_cell_from_the_pretraining(tmp_path) -> None:
    cfg = load_config(DEMO, ChainConfig, ["pretrain.start_arms=true", "edit.enabled=true"])
    tasks = {t.name: t for t in plan(cfg, tmp_path)}
    for task in tasks.values():
        if task.before is not None:
            task.before()
    layout = ChainDir(tmp_path, cfg.modality)
    best = str(layout.pretrain.best_checkpoint)
    assert not any(name.startswith("pretrained/") for name in tasks)  # no from-scratch twins to compare
    assert load_recognizer_config(ChainDir.cell_config(layout.pretrain.root)).train.init_from is None
    started = [layout.arm_task(arm, s) for arm in cfg.arms for s in range(cfg.seeds)]
    started += [ChainDir.cell_task(row, "v", 0) for row in cfg.ablation_rows]
    for name in started:
        assert "pretrain" in tasks[name].deps, name
    for arm in cfg.arms:
        for seed in range(cfg.seeds):
            cell = load_recognizer_config(ChainDir.cell_config(layout.arm(arm, seed)))
            assert cell.train.init_from == best and cell.train.seed == seed
    audio = ChainDir.cell_task("gcsa_cf", "a", 0)  # no visual branch to load: from scratch, not waiting
    assert "pretrain" not in tasks[audio].deps
    audio_cell = load_recognizer_config(ChainDir.cell_config(layout.cell("gcsa_cf", "a", 0)))
    assert audio_cell.train.init_from is None
    with pytest.raises(ConfigError, match="start_arms needs pretrain.enabled"):
        load_config(DEMO, ChainConfig, ["pretrain.start_arms=true", "pretrain.enabled=false"])


def test_the_report_says_every_arm_started_from_the_pretraining() -> None:
    body = {"sources": ["afew", "ckplus"], "run": {"val_macro_f1": 0.25}, "rows": {}, "start_arms": True}
    text = "\n".join(pretrain_lines(body, {}, {"v": "V only"}, "affwild2"))
    assert "0.250" in text and "Every arm" in text and "the baseline is the pre-trained model" in text
    assert "| branches |" not in text  # no from-scratch twins to compare against
    twins = "\n".join(pretrain_lines({**body, "start_arms": False}, {}, {"v": "V only"}, "affwild2"))
    assert "| branches |" in twins and "Every arm" not in twins


def test_the_ablation_table_reads_cells_that_started_from_the_pretraining(tmp_path) -> None:
    """The report's ablation table rebuilds each cell's config and refuses a cell trained with another:
    with start_arms the V and V+A cells were trained from the pre-training's checkpoint, the A cell not."""
    cfg = load_config(DEMO, ChainConfig, ["pretrain.start_arms=true"])
    for task in plan(cfg, tmp_path):
        if task.before is not None:
            task.before()
    layout = ChainDir(tmp_path, cfg.modality)
    for modality in cfg.ablation_modalities:
        for seed in range(cfg.seeds):
            run = cell_dir(layout.ablation, "gcsa_cf", modality, seed)
            trained = to_dict(load_recognizer_config(ChainDir.cell_config(run)))
            summary = {"config": trained, "best_val_macro_f1": 0.3, "selection": {"val_macro_f1": 0.25}}
            (run / "summary.json").write_text(json.dumps(summary))
    request = ablation_request(cfg, layout)
    table = ablation_table(**request)
    assert table["cells"]["gcsa_cf"]["v"]["mean"] == pytest.approx(0.25)
    assert set(table["modality_overrides"]) == {"v", "av"}  # the A cell starts from scratch
    with pytest.raises(RunDirError, match="trained with another config"):
        ablation_table(**{**request, "modality_overrides": None})
