"""What the chain asks of its data, checked before any step runs: the target and the sources are sources of
the data config; on data the user already has (no ``preset``), the target has labelled train, validation
and (with ``score_split: test``) test rows, every source has labelled training rows, and each one's samples
carry its name as their domain (the GANs name styles and label domains by it). Each failure is one line
that names the chain config, the source and its root."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from expr_common.config import ConfigError
from expr_common.data.readers import read_dataset
from expr_common.data.refs import SPLITS, SampleRef
from expr_common.labels import UNLABELLED
from expr_common.paths import resolve_data_path
from expr_experiment.chain_config import ChainConfig


def labelled(ref: SampleRef) -> bool:
    if ref.label != UNLABELLED:
        return True
    return ref.frame_labels is not None and any(x != UNLABELLED for x in ref.frame_labels)


def source_configs(cfg: ChainConfig, data_cfg: Any, where: str) -> dict[str, Any]:
    """The data config's sources the chain names (target first), by name; an unknown name is one line."""
    by_name = {s.name: s for s in data_cfg.sources}
    unknown = [name for name in (cfg.target, *cfg.sources) if name not in by_name]
    if unknown:
        raise ConfigError(
            f"{where}: {', '.join(unknown)} not among the sources of {cfg.data} ({', '.join(by_name)})"
        )
    return {name: by_name[name] for name in (cfg.target, *cfg.sources)}


def _refs(source: Any) -> tuple[list[SampleRef], Path]:
    root = resolve_data_path(source.root)
    splits = tuple(source.splits) if source.splits else None
    return read_dataset(source.format, root, splits=splits, **source.options).refs, root


def check_chain_data(cfg: ChainConfig, data_cfg: Any, where: str) -> None:
    """The checks of the module docstring (the labelled rows only where the data exists already)."""
    sources = source_configs(cfg, data_cfg, where)
    pretraining = [*cfg.pretrain_sources, *cfg.pretrain_val_sources] if cfg.pretrain.enabled else []
    by_name = {s.name: s for s in data_cfg.sources}
    unknown = [name for name in pretraining if name not in by_name]
    if unknown:
        raise ConfigError(f"{where}: pretrain.sources / val_sources {unknown} are not sources of {cfg.data}")
    if cfg.preset:
        return  # the procedural corpus is written by the chain's first step, with every split labelled
    val_rows = {}
    for name in dict.fromkeys([*sources, *pretraining]):
        refs, root = _refs(by_name[name])
        val_rows[name] = any(r.split == "val" and labelled(r) for r in refs)
        if name in sources:
            _check_role(cfg, name, refs, root, where)
    if cfg.pretrain.enabled and not any(val_rows[name] for name in cfg.pretrain_val_sources):
        raise ConfigError(
            f"{where}: the pre-training run chooses its checkpoint on labelled val rows of "
            f"{', '.join(cfg.pretrain_val_sources)}, and there are none: set pretrain.val_sources (e.g. "
            f"[{cfg.target}]) or pretrain.enabled: false"
        )


def _check_role(cfg: ChainConfig, name: str, refs: list[SampleRef], root: Path, where: str) -> None:
    """The target's labelled splits, a source's labelled training rows, and each one's domain."""
    role = "target" if name == cfg.target else "source"
    needed = SPLITS if cfg.score_split == "test" else ("train", "val")
    for split in needed if role == "target" else ("train",):
        if not any(r.split == split and labelled(r) for r in refs):
            rows = "training" if split == "train" and role == "source" else split
            raise ConfigError(f"{where}: {role} {name} ({root}) has no labelled {rows} rows")
    domains = sorted({r.domain for r in refs})
    if domains != [name]:
        raise ConfigError(
            f"{where}: {role} {name} ({root}) holds samples of domain {', '.join(domains)}: the GANs "
            f"know a source by its domain; give its rows the domain {name} (a manifest's domain column)"
        )
