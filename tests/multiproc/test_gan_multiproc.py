"""GAN training with 2 CPU processes: ``torchrun`` of packages/gan_aug/gan_aug/train.py (G, D and G_ema
stay identical on both replicas; only the main process writes) and ``accelerate launch --config_file
configs/accelerate/cpu_2proc.yaml -m gan_aug train``."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from multiproc_launch import ACCELERATE, REPLICAS, REPO, TORCHRUN, TWO_PROCESSES, launch, run_files

from expr_common.checkpoint import load_checkpoint
from expr_common.runs import read_metrics
from gan_aug.train import main as train_main

TINY = REPO / "configs" / "gan_aug" / "tiny.yaml"  # 4 steps of batch 8 per process, checkpoints at 2 and 4
NETS = ("G", "D", "G_ema")


def _args(cache: Path, run: Path, *sets: str) -> list[str]:
    overrides = [f"data_overrides=[cache.root={cache}]", *sets]
    return ["--config", str(TINY), "--run-dir", str(run), *(a for s in overrides for a in ("--set", s))]


@pytest.fixture(scope="module")
def two(mp_cache, tmp_path_factory):
    root = tmp_path_factory.mktemp("gan_2proc")
    run, dumps = root / "run", root / "dumps"
    launched = launch(TORCHRUN, [str(REPLICAS), "gan-script", str(dumps), *_args(mp_cache, run)])
    return {"run": run, "dumps": dumps, "launched": launched}


def test_two_processes_keep_identical_generators_and_discriminators(two):
    assert TWO_PROCESSES in two["launched"].output  # one gloo group of 2, not 2 lone runs
    ranks = [torch.load(two["dumps"] / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert [r["info"]["process_index"] for r in ranks] == [0, 1]
    saved = load_checkpoint(two["run"] / "checkpoints" / "last.pt")
    for net in NETS:
        a, b = ranks[0][net], ranks[1][net]
        assert a.keys() == b.keys() == saved[net].keys()
        for name in a:  # parameters and buffers: BN running statistics, spectral-norm vectors
            assert torch.equal(a[name], b[name]), f"{net}.{name}"
            assert torch.equal(a[name], saved[net][name]), f"{net}.{name}"
    assert saved["step"] == 4 and saved["images_seen"] == 4 * 8 * 2  # both processes' reals, counted once


def test_two_processes_keep_identical_editing_replicas(mp_cache, tmp_path):
    """The editing GAN (model.kind: edit) through the same launch: its G, D and G_ema agree across ranks."""
    run, dumps = tmp_path / "run", tmp_path / "dumps"
    edit = ("model.kind=edit", "model.edit.width=8", "model.edit.res_blocks=1", "train.steps=2")
    launched = launch(TORCHRUN, [str(REPLICAS), "gan-script", str(dumps), *_args(mp_cache, run, *edit)])
    assert TWO_PROCESSES in launched.output
    ranks = [torch.load(dumps / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    saved = load_checkpoint(run / "checkpoints" / "last.pt")
    assert "mask.weight" in saved["G"]  # the editor, not the sampler
    for net in NETS:
        for name in ranks[0][net]:
            assert torch.equal(ranks[0][net][name], ranks[1][net][name]), f"{net}.{name}"
            assert torch.equal(ranks[0][net][name], saved[net][name]), f"{net}.{name}"


def test_only_the_main_process_writes(two, mp_cache, tmp_path):
    one = tmp_path / "one"
    assert train_main(_args(mp_cache, one)) == 0  # the same run in this process
    assert run_files(two["run"]) == run_files(one)
    lines = (two["run"] / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == len(set(lines))
    records = read_metrics(two["run"] / "metrics.jsonl")
    assert [r["step"] for r in records] == [1, 2, 3, 4]
    assert records[-1]["kimg"] == pytest.approx(4 * 8 * 2 / 1000)


def test_module_entry_point_with_accelerate_launch(mp_cache, tmp_path):
    run = tmp_path / "run"
    args = ["-m", "gan_aug", "train", *_args(mp_cache, run, "train.steps=2", "train.sample_every=100")]
    launched = launch(ACCELERATE, args)
    assert TWO_PROCESSES in launched.output
    assert [r["step"] for r in read_metrics(run / "metrics.jsonl")] == [1, 2]
    assert load_checkpoint(run / "checkpoints" / "last.pt")["images_seen"] == 2 * 8 * 2
