from __future__ import annotations

import os
import pickle
import random
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch

from expr_common import checkpoint as ckpt
from expr_common.paths import repo_root, resolve_data_path
from expr_common.runs import MetricsWriter, RunDir, add_run_arguments, open_run_dir, read_metrics
from expr_common.seeding import rng_state, seed_everything, set_rng_state


@dataclass
class Net:
    width: int = 4


@dataclass
class Cfg:
    seed: int = 1
    net: Net = field(default_factory=Net)


def test_save_is_atomic_and_loads_safely(tmp_path):
    path = tmp_path / "checkpoints" / "last.pt"
    state = {"model": {"w": torch.arange(6.0)}, "step": 7}
    ckpt.save_checkpoint(path, state, Cfg(seed=5))
    assert sorted(os.listdir(path.parent)) == ["last.pt"]  # no temp file left behind
    loaded = ckpt.load_checkpoint(path)
    assert torch.equal(loaded["model"]["w"], torch.arange(6.0)) and loaded["step"] == 7
    assert ckpt.config_from_checkpoint(loaded, Cfg) == Cfg(seed=5)


def test_failed_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    ckpt.save_checkpoint(path, {"step": 1})

    def torn_save(obj, handle):
        handle.write(b"partial")
        raise KeyboardInterrupt  # killed mid-write

    monkeypatch.setattr(ckpt.torch, "save", torn_save)
    with pytest.raises(KeyboardInterrupt):
        ckpt.save_checkpoint(path, {"step": 2})
    monkeypatch.undo()
    assert ckpt.load_checkpoint(path)["step"] == 1
    assert os.listdir(tmp_path) == ["last.pt"]


class Payload:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_pickle_payload_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    with path.open("wb") as handle:
        pickle.dump({"model": Payload()}, handle)
    with pytest.raises(ckpt.CheckpointError, match="refusing"):
        ckpt.load_checkpoint(path)


def test_truncated_or_missing_checkpoint_is_a_clear_error(tmp_path):
    path = tmp_path / "last.pt"
    ckpt.save_checkpoint(path, {"w": torch.zeros(1000)})
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ckpt.CheckpointError, match=str(path)):
        ckpt.load_checkpoint(path)
    with pytest.raises(ckpt.CheckpointError, match="does not exist"):
        ckpt.load_checkpoint(tmp_path / "none.pt")


def test_rng_state_round_trip_through_a_checkpoint(tmp_path):
    seed_everything(3)
    state = rng_state()
    ckpt.save_checkpoint(tmp_path / "rng.pt", {"rng": state})
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    set_rng_state(ckpt.load_checkpoint(tmp_path / "rng.pt")["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected


def test_run_dir_contract(tmp_path):
    run = open_run_dir(tmp_path / "r", "train")
    assert isinstance(run, RunDir) and run.checkpoints.is_dir()
    assert run.config.name == "config.yaml" and run.metrics.name == "metrics.jsonl"
    assert run.last_checkpoint.relative_to(run.root).as_posix() == "checkpoints/last.pt"
    assert run.best_checkpoint.name == "best.pt" and run.tensorboard.name == "tb"
    assert run.eval_metrics.name == "metrics.json" and run.predictions.name == "predictions.csv"
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        open_run_dir(tmp_path / "r", "train", resume=True)
    with pytest.raises(ValueError, match="--run-dir"):
        open_run_dir(None, "train", resume=True)


def test_metrics_writer(tmp_path):
    writer = MetricsWriter(tmp_path / "metrics.jsonl")
    writer.write(step=1, loss=0.5)
    writer.write(epoch=0, macro_f1=0.25)
    MetricsWriter(tmp_path / "metrics.jsonl", enabled=False).write(step=2, loss=9.0)  # non-main process
    assert read_metrics(tmp_path / "metrics.jsonl") == [
        {"step": 1, "loss": 0.5},
        {"epoch": 0, "macro_f1": 0.25},
    ]
    with pytest.raises(ValueError):
        writer.write(loss=1.0)


def test_run_arguments():
    import argparse

    parser = argparse.ArgumentParser()
    add_run_arguments(parser)
    args = parser.parse_args(["--set", "a.b=1", "--set", "c=2", "--run-dir", "x", "--resume"])
    assert args.overrides == ["a.b=1", "c=2"] and args.resume and str(args.run_dir) == "x"


def test_paths(monkeypatch, tmp_path):
    assert (repo_root() / "packages" / "common").is_dir()
    monkeypatch.setenv("EXPR_DATA_DIR", str(tmp_path))
    assert resolve_data_path("data/synthetic_tiny/afew") == tmp_path / "synthetic_tiny" / "afew"
    assert resolve_data_path("configs/x.yaml") == repo_root() / "configs" / "x.yaml"
    assert resolve_data_path("/abs/path") == __import__("pathlib").Path("/abs/path")


def test_config_paths_start_from_environment_variables(monkeypatch, tmp_path):
    from expr_common.errors import ExprError
    from expr_common.paths import resolve_path

    monkeypatch.setenv("EXPR_BENCH_TEST", str(tmp_path))
    assert resolve_data_path("$EXPR_BENCH_TEST/sfew/manifest.csv") == tmp_path / "sfew" / "manifest.csv"
    assert resolve_path("${EXPR_BENCH_TEST}/x.yaml") == tmp_path / "x.yaml"
    monkeypatch.setenv("EXPR_BENCH_REL", "bench")  # a relative value is taken from the repo root
    assert resolve_path("$EXPR_BENCH_REL/a.csv") == repo_root() / "bench" / "a.csv"
    monkeypatch.delenv("EXPR_BENCH_UNSET", raising=False)
    with pytest.raises(
        ExprError, match=r"^\$EXPR_BENCH_UNSET/a.csv: environment variable \$EXPR_BENCH_UNSET is"
    ):
        resolve_path("$EXPR_BENCH_UNSET/a.csv")
