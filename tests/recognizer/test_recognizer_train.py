"""Training, resuming and evaluating the recognizer on the tiny corpus through the real CLI paths."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from sklearn.metrics import f1_score

from expr_common.checkpoint import load_checkpoint
from expr_common.paths import repo_root
from expr_common.runs import read_metrics
from recognizer.cli import main
from recognizer.optim import lr_factor
from recognizer.run_config import load_recognizer_config

TINY = str(repo_root() / "configs" / "recognizer" / "tiny.yaml")


@pytest.fixture(scope="module")
def cache_root(recognizer_cache_root):
    return recognizer_cache_root


@pytest.fixture(scope="module")
def trained(tiny_recognizer_run):
    return tiny_recognizer_run


def test_run_contract(trained):
    for name in (
        "config.yaml",
        "data_config.yaml",
        "metrics.jsonl",
        "checkpoints/last.pt",
        "checkpoints/best.pt",
        "selection.json",
    ):
        assert (trained / name).is_file(), name
    assert any((trained / "tb").rglob("events.out.tfevents*"))
    records = read_metrics(trained / "metrics.jsonl")
    epochs = [r for r in records if "val_macro_f1" in r]
    assert [r["epoch"] for r in epochs] == [0, 1]
    assert all(0.0 <= r["val_macro_f1"] <= 1.0 and np.isfinite(r["train_loss"]) for r in epochs)
    steps = [r for r in records if "loss" in r]
    assert steps and all(np.isfinite(r["loss"]) for r in steps)
    best = load_checkpoint(trained / "checkpoints" / "best.pt")
    assert best["best_f1"] == pytest.approx(max(r["val_macro_f1"] for r in epochs), abs=1e-6)
    selection = json.loads((trained / "selection.json").read_text())
    assert len(selection["grid"]) == 5 and all(len(row) == 5 for row in selection["grid"])
    assert 1 <= selection["m"] <= 5 and selection["window"] in (1, 3, 5)
    assert best["selection"]["m"] == selection["m"]
    assert best["config"]["model"]["visual"]["stem_widths"] == [8, 8]  # the model rebuilds from the file


def test_evaluate_metrics_match_predictions_and_sklearn(trained, tmp_path):
    out = tmp_path / "eval"
    assert (
        main(["evaluate", "--checkpoint", str(trained / "checkpoints" / "best.pt"), "--run-dir", str(out)])
        == 0
    )
    metrics = json.loads((out / "metrics.json").read_text())
    with (out / "predictions.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert rows and list(rows[0]) == ["sample_id", "frame", "label", "pred"]
    y = np.array([int(r["label"]) for r in rows])
    p = np.array([int(r["pred"]) for r in rows])
    assert metrics["frames"] == len(rows)
    assert metrics["macro_f1"] == pytest.approx(f1_score(y, p, average="macro"), abs=1e-9)
    assert (out / "confusion.png").is_file() and (out / "fusion_grid.png").is_file()
    # frames are numbered like Aff-Wild2 crops (1-based) and each appears once per track
    keys = [(r["sample_id"], int(r["frame"])) for r in rows]
    assert len(keys) == len(set(keys)) and min(k[1] for k in keys) >= 1


def test_resume_continues_where_it_stopped(tiny_corpus, cache_root, tmp_path):
    sets = ["--set", f"data_overrides=[cache.root={cache_root}]", "--set", "train.deterministic=true"]
    full, part = tmp_path / "full", tmp_path / "part"
    assert main(["train", "--config", TINY, "--run-dir", str(full), *sets]) == 0
    assert main(["train", "--config", TINY, "--run-dir", str(part), *sets, "--set", "train.epochs=1"]) == 0
    assert main(["train", "--config", TINY, "--run-dir", str(part), *sets, "--resume"]) == 0
    a = load_checkpoint(full / "checkpoints" / "last.pt")
    b = load_checkpoint(part / "checkpoints" / "last.pt")
    assert a["epoch"] == b["epoch"] == 1 and a["step"] == b["step"]
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    epochs = [r for r in read_metrics(part / "metrics.jsonl") if "val_macro_f1" in r]
    assert [r["epoch"] for r in epochs] == [0, 1]


def test_resume_without_checkpoint_is_a_clear_error(tmp_path, capsys):
    assert main(["train", "--config", TINY, "--run-dir", str(tmp_path / "none"), "--resume"]) == 2
    assert "nothing to resume" in capsys.readouterr().err


def test_schedules():
    cfg = load_recognizer_config(TINY, ["optim.schedule=cosine", "optim.warmup_epochs=2"])
    assert lr_factor(0, cfg.optim, 10) == pytest.approx(1 / 3)
    assert lr_factor(2, cfg.optim, 10) == pytest.approx(1.0)
    assert lr_factor(9, cfg.optim, 10) < 0.1
    step = load_recognizer_config(TINY, ["optim.schedule=step", "optim.step_epochs=3"])
    assert [lr_factor(e, step.optim, 10) for e in (0, 2, 3, 6)] == pytest.approx([1, 1, 0.1, 0.01])


def test_extra_training_data_carries_its_loss_weight(tiny_corpus, cache_root):
    from recognizer.trainer import load_data

    cfg = load_recognizer_config(TINY, [f"data_overrides=[cache.root={cache_root}]"])
    plain = load_data(cfg, None)
    assert "weight" not in next(iter(_loader(plain.train)))  # fast path: the cache itself
    extra_cfg = load_recognizer_config(
        TINY,
        [
            f"data_overrides=[cache.root={cache_root}]",
            f"extra_train=[{{data: {cfg.data}, sources: [afew], weight: 0.25, "
            f"overrides: [cache.root={cache_root}]}}]",
        ],
    )
    with_extra = load_data(extra_cfg, None)
    assert len(with_extra.train) > len(plain.train)
    weights = torch.cat([b["weight"] for b in _loader(with_extra.train)])
    assert set(weights.tolist()) == {1.0, 0.25}
    assert (weights == 0.25).sum() == len(with_extra.train) - len(plain.train)


def _loader(dataset):
    from expr_common.data.dataset import make_loader

    return make_loader(dataset, 16, workers=0)


def test_per_epoch_training_loaders_do_not_keep_their_workers(cache_root, tmp_path, monkeypatch):
    # accelerate keeps a reference to every prepared loader: persistent workers of past epochs would pile up
    import recognizer.trainer as trainer

    made = []
    original = trainer.make_loader
    monkeypatch.setattr(trainer, "make_loader", lambda *a, **k: made.append(k) or original(*a, **k))
    argv = ["train", "--config", TINY, "--run-dir", str(tmp_path / "r"), "--set", "train.epochs=3"]
    assert (
        main([*argv, "--set", f"data_overrides=[cache.root={cache_root}]", "--set", "train.workers=1"]) == 0
    )
    train_loaders = [k for k in made if k.get("shuffle")]
    assert len(train_loaders) == 3 and all(k["persistent_workers"] is False for k in train_loaders)
