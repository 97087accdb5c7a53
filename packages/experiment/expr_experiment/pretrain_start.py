"""Which recognizer cells of a chain start from its pre-training run, and the overrides that start them:
one place for the planner (:mod:`expr_experiment.chain`) and the report, whose ablation table rebuilds
every cell's config to check it against what the cell was trained with."""

from __future__ import annotations

from expr_experiment.chain_config import ChainConfig
from expr_experiment.layout import ChainDir


def init_overrides(cfg: ChainConfig, layout: ChainDir) -> list[str]:
    """The overrides that start a cell from the pre-training run's best checkpoint."""
    best = layout.pretrain.best_checkpoint
    return [f"train.init_from={best}", f"train.freeze_epochs={cfg.pretrain.freeze_epochs}"]


def start_overrides(cfg: ChainConfig, layout: ChainDir, modality: str) -> list[str]:
    """With ``pretrain.start_arms``, :func:`init_overrides` for a cell of ``modality``; an audio-only cell
    has no visual branch to load and starts from scratch, as does every cell without the option."""
    if not cfg.pretrain.start_arms or modality == "a":
        return []
    return init_overrides(cfg, layout)


def modality_overrides(cfg: ChainConfig, layout: ChainDir) -> dict[str, list[str]]:
    """:func:`start_overrides` of each ablation modality (the ablation table's ``modality_overrides``)."""
    return {modality: start_overrides(cfg, layout, modality) for modality in cfg.ablation_modalities}
