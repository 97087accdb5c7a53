from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from expr_common.config import ConfigError, dump_config, from_dict, load_config, save_config, to_dict


@dataclass
class Optim:
    lr: float = 1e-3
    momentum: float = 0.9
    nesterov: bool = False


@dataclass
class Model:
    width: int = 32
    kind: Literal["mean", "tconv"] = "mean"
    kernels: tuple[int, ...] = (3, 5)
    dropout: float | None = None


@dataclass
class Experiment:
    name: str = "run"
    seed: int = 0
    root: Path = Path("data/x")
    model: Model = field(default_factory=Model)
    optim: Optim = field(default_factory=Optim)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    return path


def test_defaults_file_and_overrides_merge(tmp_path):
    path = write(tmp_path, "seed: 3\nmodel:\n  width: 64\n  kernels: [7, 9, 11]\n")
    cfg = load_config(path, Experiment, ["optim.lr=1e-2", "model.kind=tconv", "optim.nesterov=true"])
    assert cfg.seed == 3
    assert cfg.model.width == 64 and cfg.model.kernels == (7, 9, 11)
    assert cfg.optim.lr == pytest.approx(0.01) and isinstance(cfg.optim.lr, float)
    assert cfg.model.kind == "tconv" and cfg.optim.nesterov is True
    assert cfg.optim.momentum == 0.9  # untouched default
    assert isinstance(cfg.root, Path)


def test_unknown_key_names_key_and_file(tmp_path):
    path = write(tmp_path, "model:\n  widht: 64\n")
    with pytest.raises(ConfigError) as err:
        load_config(path, Experiment)
    assert "model.widht" in str(err.value) and str(path) in str(err.value)
    with pytest.raises(ConfigError, match="'sed'"):
        load_config(write(tmp_path, "sed: 1\n"), Experiment)


@pytest.mark.parametrize(
    "text, key",
    [
        ("seed: 1.5\n", "seed"),
        ("seed: true\n", "seed"),
        ("model:\n  kind: max\n", "model.kind"),
        ("optim:\n  lr: fast\n", "optim.lr"),
        ("optim:\n  nesterov: 1\n", "optim.nesterov"),
        ("model: 3\n", "model"),
        ("name: 12\n", "name"),
        ("model:\n  kernels: 3\n", "model.kernels"),
    ],
)
def test_wrong_types_are_errors_naming_the_key(tmp_path, text, key):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path, Experiment)
    assert f"'{key}'" in str(err.value) and str(path) in str(err.value)


@pytest.mark.parametrize(
    "override, fragment",
    [
        ("seed", "key.sub=value"),
        ("model.depth=3", "model.depth"),
        ("seed=abc", "'seed'"),
        ("seed.x=1", "'seed'"),
        ("model..width=1", "empty key"),
    ],
)
def test_bad_overrides(override, fragment):
    with pytest.raises(ConfigError) as err:
        load_config(None, Experiment, [override])
    assert fragment in str(err.value)


def test_yaml_scientific_notation_without_dot_is_a_float(tmp_path):
    # YAML 1.1 reads 1e-3 as a string; a float field must still accept it
    cfg = load_config(write(tmp_path, "optim:\n  lr: 1e-3\n"), Experiment)
    assert cfg.optim.lr == pytest.approx(0.001)


def test_missing_file_and_non_mapping(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml", Experiment)
    with pytest.raises(ConfigError, match="mapping"):
        load_config(write(tmp_path, "- a\n- b\n"), Experiment)


def test_round_trip_through_saved_yaml(tmp_path):
    cfg = load_config(None, Experiment, ["model.dropout=0.2", "name=abc"])
    saved = save_config(cfg, tmp_path / "run" / "config.yaml")
    again = load_config(saved, Experiment)
    assert again == cfg
    assert to_dict(cfg)["model"]["kernels"] == [3, 5]
    assert "dropout: 0.2" in dump_config(cfg)
    assert from_dict(to_dict(cfg), Experiment) == cfg


def test_required_key_missing():
    @dataclass
    class NeedsRoot:
        root: str

    with pytest.raises(ConfigError, match="missing required key 'root'"):
        from_dict({}, NeedsRoot, "x.yaml")


@pytest.mark.parametrize("text", ["", "# only a comment\n", "\n\n"])
def test_an_empty_config_is_refused_not_all_defaults(tmp_path, text):
    """Issue 29, item 6: an empty file used to load as every default (a 300-epoch full-size run)."""
    path = tmp_path / "empty.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match="empty.yaml: the config is empty"):
        load_config(path, Model)
