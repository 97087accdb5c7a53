"""The editing GAN's class teacher (``model.edit.teacher``): it learns only from the labelled domains, is
frozen for the GAN's steps, steers G, and travels in every checkpoint (resume and fit checks)."""

from __future__ import annotations

import pytest
import torch
from accelerate import Accelerator

from expr_common.checkpoint import CheckpointError, load_checkpoint
from expr_common.paths import repo_root
from gan_aug.config import TeacherConfig
from gan_aug.run_config import load_train_config
from gan_aug.teacher import ClassTeacher, fit_teacher, taught_cross_entropy
from gan_aug.training import train

TINY = repo_root() / "configs" / "gan_aug" / "tiny.yaml"
EDIT = ["model.kind=edit", "model.edit.width=8", "model.edit.res_blocks=1"]
TEACHER = ["model.edit.teacher.steps=3", "model.edit.teacher.width=4", "model.edit.teacher.batch_size=8"]


def _toy_batches(n: int, generator: torch.Generator):
    """Domain 0 (taught): class 0 dark faces, class 1 bright faces. Domain 1: the same faces, labels flipped
    (a teacher that learnt from it would be at chance on domain 0)."""
    while True:
        y = torch.randint(0, 2, (n,), generator=generator)
        noise = 0.2 * torch.randn(n, 3, 16, 16, generator=generator)
        x = (y.float() * 1.2 - 0.6)[:, None, None, None] + noise
        d = torch.randint(0, 2, (n,), generator=generator)
        yield {"image": x.clamp(-1, 1), "label": torch.where(d == 1, 1 - y, y), "domain": d}


def test_the_teacher_learns_from_the_labelled_domains_only_and_ends_frozen() -> None:
    torch.manual_seed(0)
    teacher = ClassTeacher(num_classes=2, width=4)
    cfg = TeacherConfig(steps=40, width=4, lr=1e-2, batch_size=32)
    gen = torch.Generator().manual_seed(0)
    fit = fit_teacher(teacher, cfg, _toy_batches(32, gen), torch.tensor([0]), lambda x, g: x, gen)
    test = next(_toy_batches(256, torch.Generator().manual_seed(1)))
    with torch.no_grad():
        predicted = teacher(test["image"]).argmax(1)
    taught = test["domain"] == 0
    assert (predicted[taught] == test["label"][taught]).float().mean() > 0.95
    assert (predicted[~taught] == test["label"][~taught]).float().mean() < 0.05  # flipped labels unlearnt
    assert fit["accuracy"] > 0.9 and not teacher.training
    assert not any(p.requires_grad for p in teacher.parameters())


def test_taught_cross_entropy_ignores_untaught_faces() -> None:
    logits = torch.tensor([[4.0, 0.0], [0.0, 4.0], [4.0, 0.0]])
    y = torch.tensor([0, 1, 1])
    both = taught_cross_entropy(logits, y, torch.tensor([True, True, False]))
    assert both == pytest.approx(float(torch.nn.functional.cross_entropy(logits[:2], y[:2])))
    assert taught_cross_entropy(logits, y, torch.zeros(3, dtype=torch.bool)) == 0


@pytest.fixture
def teacher_config(edit_cache):
    def make(*overrides: str):
        config = load_train_config(TINY, [*EDIT, *TEACHER, "train.checkpoint_every=2", *overrides])
        config.data_overrides = [f"cache.root={edit_cache}"]
        return config

    return make


def _train(config, run_dir, resume: bool = False):
    return train(config, run_dir, resume=resume, accelerator=Accelerator(cpu=True, project_dir=str(run_dir)))


def test_the_teacher_is_fitted_once_frozen_stored_and_resumed(teacher_config, tmp_path) -> None:
    whole, split = tmp_path / "whole", tmp_path / "split"
    result = _train(teacher_config("train.steps=4"), whole)
    assert all(isinstance(r, float) for r in [result.last_metrics["teacher"]])
    _train(teacher_config("train.steps=2"), split)
    at_2 = load_checkpoint(split / "checkpoints" / "last.pt")
    _train(teacher_config("train.steps=4"), split, resume=True)
    at_4 = load_checkpoint(split / "checkpoints" / "last.pt")
    ends = load_checkpoint(whole / "checkpoints" / "last.pt")
    for key, value in at_2["teacher"].items():  # frozen during the GAN, and not refitted on resume
        assert torch.equal(value, at_4["teacher"][key]), key
        assert torch.equal(value, ends["teacher"][key]), key
    for key, value in ends["G"].items():  # the resumed run is the uninterrupted one
        assert torch.equal(value, at_4["G"][key]), key


def test_the_teacher_steers_the_generator(teacher_config, tmp_path) -> None:
    light = _train(teacher_config("train.steps=1", "model.edit.teacher.weight=0"), tmp_path / "a")
    heavy = _train(teacher_config("train.steps=1", "model.edit.teacher.weight=50"), tmp_path / "b")
    assert light.last_metrics["teacher"] == pytest.approx(heavy.last_metrics["teacher"])  # the same teacher
    a = load_checkpoint(tmp_path / "a" / "checkpoints" / "last.pt")["G"]
    b = load_checkpoint(tmp_path / "b" / "checkpoints" / "last.pt")["G"]
    assert not torch.equal(a["colour.weight"], b["colour.weight"])


def test_a_checkpoint_without_a_teacher_does_not_resume_a_config_with_one(teacher_config, tmp_path) -> None:
    run_dir = tmp_path / "run"
    _train(teacher_config("train.steps=1", "model.edit.teacher.steps=0"), run_dir)
    with pytest.raises(CheckpointError, match="no 'teacher' weights"):
        _train(teacher_config("train.steps=2"), run_dir, resume=True)


def test_a_warping_editor_trains_under_the_teacher(teacher_config, tmp_path) -> None:
    result = _train(teacher_config("train.steps=2", "model.edit.output=warp"), tmp_path / "warp")
    assert all(isinstance(result.last_metrics[k], float) for k in ("teacher", "smooth", "mask", "cycle"))
    G = load_checkpoint(tmp_path / "warp" / "checkpoints" / "last.pt")["G"]
    assert G["colour.weight"].shape[0] == 2 and G["colour.weight"].abs().sum() > 0  # a flow head, trained
