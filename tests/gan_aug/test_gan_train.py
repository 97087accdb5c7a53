"""GAN training on the tiny synthetic corpus, in-process on the CPU: outputs, resume, NaN guard, FID hook."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from accelerate import Accelerator

from expr_common.checkpoint import load_checkpoint
from expr_common.paths import repo_root
from expr_common.runs import read_metrics
from gan_aug import trainer as trainer_module
from gan_aug.config import DOMAINS
from gan_aug.run_config import GanTrainConfig, load_train_config
from gan_aug.train import main as train_main
from gan_aug.trainer import FidUnavailableError, NonFiniteError
from gan_aug.training import train

TINY = repo_root() / "configs" / "gan_aug" / "tiny.yaml"
VOLATILE = {"images_per_s"}  # wall-clock figures differ between any two runs


@pytest.fixture(scope="session")
def gan_cache(tiny_corpus: Path, data_dir: Path) -> Path:
    """Where the tiny cache goes: under the session's data dir, so nothing lands in the repo."""
    return data_dir / "cache" / "gan_synthetic_tiny"


@pytest.fixture
def tiny_train(gan_cache: Path):
    def make(*overrides: str) -> GanTrainConfig:
        config = load_train_config(TINY, list(overrides))
        config.data_overrides = [f"cache.root={gan_cache}"]
        return config

    return make


def _accelerator(run_dir: Path) -> Accelerator:
    return Accelerator(cpu=True, log_with="tensorboard", project_dir=str(run_dir))


def _steady(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in VOLATILE} for r in records]


def test_tiny_training_writes_the_run_contract(tiny_train, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    result = train(tiny_train(), run_dir, accelerator=_accelerator(run_dir))

    records = read_metrics(run_dir / "metrics.jsonl")
    assert [r["step"] for r in records] == [1, 2, 3, 4]
    for record in records:
        for key in ("d_loss", "g_loss", "lecam", "r1", "real_logit_mean", "fake_logit_mean", "ada_p"):
            assert isinstance(record[key], float) and torch.isfinite(torch.tensor(record[key])), key
        assert record["images_per_s"] > 0 and record["skipped_nonfinite"] == 0
    assert records[-1]["ada_p"] != 0.5  # adaptive augmentation moved p
    assert (run_dir / "config.yaml").is_file()
    assert list((run_dir / "tb").rglob("events.out.tfevents.*"))
    assert sorted(p.name for p in result.grids) == sorted(f"step0000004_{d}.png" for d in DOMAINS)
    assert all(p.is_file() and p.read_bytes()[:4] == b"\x89PNG" for p in result.grids)
    assert (run_dir / "samples" / "real_affwild2.png").is_file()

    state = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert state["step"] == 4 and state["images_seen"] == 4 * 8
    for key in ("G", "D", "G_ema", "opt_g", "opt_d", "augment", "lecam", "rng", "config"):
        assert key in state, key
    counts = state["real_frame_counts"]  # [C, D] frames per (class, domain), for `generate --fill-to-max`
    assert counts.shape == (8, len(DOMAINS)) and int(counts.sum()) > 0


def test_resume_gives_the_same_next_steps_as_an_uninterrupted_run(tiny_train, tmp_path: Path) -> None:
    whole, split = tmp_path / "whole", tmp_path / "split"
    train(tiny_train(), whole, accelerator=Accelerator(cpu=True))
    train(tiny_train("train.steps=2"), split, accelerator=Accelerator(cpu=True))
    train(tiny_train(), split, resume=True, accelerator=Accelerator(cpu=True))

    a, b = read_metrics(whole / "metrics.jsonl"), read_metrics(split / "metrics.jsonl")
    assert [r["step"] for r in b] == [1, 2, 3, 4]
    assert _steady(a) == _steady(b)  # steps 3-4 come from the resumed run: equal to the last bit
    end_a, end_b = (
        load_checkpoint(whole / "checkpoints/last.pt"),
        load_checkpoint(split / "checkpoints/last.pt"),
    )
    for net in ("G", "D", "G_ema"):
        for name, value in end_a[net].items():
            assert torch.equal(value, end_b[net][name]), f"{net}.{name}"


def test_resume_drops_metrics_logged_after_the_checkpoint(tiny_train, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    train(tiny_train("train.steps=3", "train.checkpoint_every=2"), run_dir, accelerator=Accelerator(cpu=True))
    # Simulate a crash after step 3 was logged but before its checkpoint: roll last.pt back to step 2.
    train(tiny_train("train.steps=2"), tmp_path / "two", accelerator=Accelerator(cpu=True))
    (run_dir / "checkpoints/last.pt").write_bytes((tmp_path / "two/checkpoints/last.pt").read_bytes())
    train(tiny_train(), run_dir, resume=True, accelerator=Accelerator(cpu=True))
    assert [r["step"] for r in read_metrics(run_dir / "metrics.jsonl")] == [1, 2, 3, 4]


def _nan_on_calls(monkeypatch: pytest.MonkeyPatch, calls: set[int] | None) -> None:
    """Make D's hinge loss NaN on the given call numbers (every call when None)."""
    real_loss, count = trainer_module.d_hinge_loss, {"n": 0}

    def flaky(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        count["n"] += 1
        loss = real_loss(real, fake)
        return loss * float("nan") if calls is None or count["n"] in calls else loss

    monkeypatch.setattr(trainer_module, "d_hinge_loss", flaky)


def test_nan_guard_skips_the_step_and_counts_it(tiny_train, tmp_path: Path, monkeypatch) -> None:
    _nan_on_calls(monkeypatch, {2})
    run_dir = tmp_path / "run"
    train(tiny_train("train.max_nonfinite=1"), run_dir, accelerator=Accelerator(cpu=True))
    records = read_metrics(run_dir / "metrics.jsonl")
    assert [r["skipped_nonfinite"] for r in records] == [0, 1, 1, 1]
    assert records[1]["d_loss"] is None and records[2]["d_loss"] is not None
    state = load_checkpoint(run_dir / "checkpoints/last.pt")
    assert state["step"] == 4 and state["images_seen"] == 3 * 8  # the skipped step updated nothing
    assert all(torch.isfinite(v).all() for v in state["G"].values() if v.is_floating_point())


def test_nan_guard_stops_past_the_limit(tiny_train, tmp_path: Path, monkeypatch) -> None:
    _nan_on_calls(monkeypatch, None)
    with pytest.raises(NonFiniteError, match=r"step 3: 3 steps had a non-finite.*max_nonfinite=2"):
        train(tiny_train("train.max_nonfinite=2"), tmp_path / "run", accelerator=Accelerator(cpu=True))


def test_fid_hook_runs_every_n_steps_and_keeps_the_best(tiny_train, tmp_path: Path) -> None:
    scores = iter([3.0, 1.0])
    seen: list[int] = []

    def hook(generator: torch.nn.Module, step: int) -> dict[str, float]:
        assert not any(p.requires_grad for p in generator.parameters())  # G_ema, never trained
        seen.append(step)
        return {"kid": next(scores), "fid": 10.0}

    run_dir = tmp_path / "run"
    result = train(tiny_train("train.fid_every=2"), run_dir, accelerator=Accelerator(cpu=True), fid_hook=hook)
    assert seen == [2, 4] and result.best is not None and result.best["step"] == 4
    best = load_checkpoint(run_dir / "checkpoints/best.pt")
    assert best["step"] == 4 and best["best"]["kid"] == 1.0
    assert [r["kid"] for r in read_metrics(run_dir / "metrics.jsonl") if "kid" in r] == [3.0, 1.0]


def test_train_script_runs_as_a_plain_path_and_resumes_from_its_run_dir(
    gan_cache: Path, tmp_path: Path
) -> None:
    script = repo_root() / "packages" / "gan_aug" / "gan_aug" / "train.py"
    run_dir = tmp_path / "run"
    cache = f"data_overrides=[cache.root={gan_cache}]"
    args = ["--run-dir", str(run_dir), "--config", str(TINY), "--set", cache, "--set", "train.steps=2"]
    # One real interpreter (what `accelerate launch .../train.py` runs); the rest in-process, for speed.
    done = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    # --resume without --config continues with the run's own config.yaml (here: raised to 3 steps).
    assert train_main(["--run-dir", str(run_dir), "--resume", "--set", "train.steps=3"]) == 0
    assert [r["step"] for r in read_metrics(run_dir / "metrics.jsonl")] == [1, 2, 3]
    assert train_main(["--run-dir", str(tmp_path / "none"), "--resume"]) == 2


def test_fid_without_inception_weights_fails_before_training(tiny_train, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_torch_home"))  # where the weights would be
    with pytest.raises(FidUnavailableError, match="train.fid_every=2.*fid-weights"):
        train(tiny_train("train.fid_every=2"), tmp_path / "run", accelerator=Accelerator(cpu=True))
    assert not (tmp_path / "run" / "metrics.jsonl").exists()
