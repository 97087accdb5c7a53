"""The recognizer with 2 CPU processes (``accelerate launch --config_file configs/accelerate/cpu_2proc.yaml
-m recognizer train``, ``torchrun -m recognizer evaluate``): the replicas stay identical, per-epoch
validation and ``recognizer evaluate`` are gathered over processes (each window once, the padding that
evens out the processes' batches dropped), and only the main process writes."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from multiproc_launch import ACCELERATE, REPLICAS, REPO, TORCHRUN, TWO_PROCESSES, launch, run_files

from expr_common.checkpoint import load_checkpoint
from expr_common.data.dataset import CachedClips
from expr_common.runs import read_metrics
from expr_common.seeding import seed_everything
from recognizer.cli import main
from recognizer.run_config import load_recognizer_config
from recognizer.trainer import build_model

TINY = REPO / "configs" / "recognizer" / "tiny.yaml"
EVAL_BATCH = 4  # 25 validation windows: 2 processes x 4 = 8 per round, so the last round is padded


def _train_args(cache: Path, run: Path, *extra: str) -> list[str]:
    sets = [f"data_overrides=[cache.root={cache}]", f"train.eval_batch_size={EVAL_BATCH}", *extra]
    return ["train", "--config", str(TINY), "--run-dir", str(run), *(a for s in sets for a in ("--set", s))]


@pytest.fixture(scope="module")
def two(mp_cache, tmp_path_factory):
    """Train with 2 processes (accelerate's launcher and configs/accelerate/cpu_2proc.yaml)."""
    root = tmp_path_factory.mktemp("recognizer_2proc")
    run, dumps = root / "run", root / "dumps"
    launched = launch(ACCELERATE, [str(REPLICAS), "recognizer", str(dumps), *_train_args(mp_cache, run)])
    return {"run": run, "dumps": dumps, "launched": launched}


def test_two_processes_keep_identical_replicas(two, mp_cache):
    assert TWO_PROCESSES in two["launched"].output  # really 2 processes in one gloo group, not 2 lone runs
    ranks = [torch.load(two["dumps"] / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert [r["info"]["process_index"] for r in ranks] == [0, 1]
    assert all(r["info"]["num_processes"] == 2 for r in ranks)
    a, b = ranks[0]["model"], ranks[1]["model"]
    assert a.keys() == b.keys()
    for name in a:  # parameters and buffers (BatchNorm statistics) alike, to the bit
        assert torch.equal(a[name], b[name]), name
    saved = load_checkpoint(two["run"] / "checkpoints" / "last.pt")["model"]
    assert all(torch.equal(a[name], saved[name]) for name in a)  # what the main process wrote
    cfg = load_recognizer_config(TINY, [f"data_overrides=[cache.root={mp_cache}]"])
    seed_everything(cfg.train.seed)
    initial = build_model(cfg).state_dict()
    assert any(not torch.equal(initial[n], a[n]) for n in a if n.endswith("weight"))  # training moved them


def test_validation_and_evaluate_are_gathered_without_padding(two, mp_cache, tmp_path):
    windows = len(CachedClips(mp_cache, split="val", source="affwild2"))
    assert windows % (2 * EVAL_BATCH) != 0  # the padded last round is exercised
    checkpoint = two["run"] / "checkpoints" / "last.pt"
    args = ["evaluate", "--checkpoint", str(checkpoint), "--batch-size", str(EVAL_BATCH), "--run-dir"]
    one, both = tmp_path / "eval_1proc", tmp_path / "eval_2proc"
    assert main([*args, str(one)]) == 0
    launched = launch(TORCHRUN, ["-m", "recognizer", *args, str(both)])
    assert TWO_PROCESSES in launched.output
    single = json.loads((one / "metrics.json").read_text())
    double = json.loads((both / "metrics.json").read_text())
    for key in ("macro_f1", "accuracy", "per_class_f1", "frames", "confusion"):
        assert double[key] == single[key], key
    with (one / "predictions.csv").open() as a, (both / "predictions.csv").open() as b:
        assert list(csv.reader(a)) == list(csv.reader(b))  # every scored frame once, same predictions
    # The per-epoch validation inside training was gathered the same way: last.pt is the last epoch's model.
    last_epoch = [r for r in read_metrics(two["run"] / "metrics.jsonl") if "val_macro_f1" in r][-1]
    assert last_epoch["val_macro_f1"] == pytest.approx(single["macro_f1"], abs=1e-6)


def test_only_the_main_process_writes(two, mp_cache, tmp_path):
    one = tmp_path / "one"
    assert main(_train_args(mp_cache, one)) == 0  # the same run in this process
    assert run_files(two["run"]) == run_files(one)  # no file of a second writer, none missing
    lines = (two["run"] / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == len(set(lines))
    records = read_metrics(two["run"] / "metrics.jsonl")
    assert [r["epoch"] for r in records if "val_macro_f1" in r] == [0, 1]  # one line per epoch
    steps = [r["step"] for r in records if "loss" in r]
    assert steps and steps == sorted(set(steps))  # one line per logged step
    # 2 processes split each epoch's batches: half the optimizer steps of the 1-process run
    last_two = [r for r in records if "val_macro_f1" in r][-1]["step"]
    last_one = [r for r in read_metrics(one / "metrics.jsonl") if "val_macro_f1" in r][-1]["step"]
    assert last_two == last_one // 2


def test_a_branch_without_samples_on_one_process_does_not_stop_ddp(mp_cache, tmp_path):
    """With batches of 2 and every V+A sample hiding one modality, some step on some process runs only one
    branch: DDP must accept parameters that got no gradient there, and the replicas must stay identical.
    (The same holds for a batch of only synthetic or CK+ clips, which have no audio.)"""
    run, dumps = tmp_path / "run", tmp_path / "dumps"
    extra = [
        "train.modality_dropout=1.0",
        "train.batch_size=2",
        "train.epochs=1",
        "train.max_steps_per_epoch=8",
    ]
    args = _train_args(mp_cache, run, *extra)
    launched = launch(ACCELERATE, [str(REPLICAS), "recognizer", str(dumps), *args])
    assert TWO_PROCESSES in launched.output
    a, b = (torch.load(dumps / f"rank{r}.pt", weights_only=True)["model"] for r in (0, 1))
    for name in a:
        assert torch.equal(a[name], b[name]), name
