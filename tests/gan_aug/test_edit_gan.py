"""The editing GAN (``model.kind: edit``): the generator's mask composition, its near-identity start, the
StarGAN/GANimation losses, and tiny training through the same trainer (run contract, grids, resume)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from accelerate import Accelerator

import gan_aug
from expr_common.checkpoint import load_checkpoint
from expr_common.config import ConfigError
from expr_common.labels import CLASS_NAMES
from expr_common.paths import repo_root
from expr_common.runs import read_metrics
from gan_aug.config import EditConfig, GanModelConfig
from gan_aug.edit_networks import EditGenerator, edit_frames, warp
from gan_aug.edit_trainer import mask_smoothness, other_classes
from gan_aug.networks import build_networks
from gan_aug.run_config import load_train_config, stored_config
from gan_aug.sampling import resize_faces
from gan_aug.training import train

TINY = repo_root() / "configs" / "gan_aug" / "tiny.yaml"
EDIT = ["model.kind=edit", "model.edit.width=8", "model.edit.res_blocks=1"]


def _faces(n: int = 4, size: int = 32) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(0)) * 2 - 1


def test_where_the_mask_is_zero_the_edit_is_the_input_exactly() -> None:
    G = EditGenerator(EditConfig(width=8, res_blocks=1), 32, 8, 3).eval()
    x, c, d = _faces(), torch.tensor([1, 4, 6, 3]), torch.tensor([0, 1, 2, 2])
    with torch.no_grad():
        G.mask.bias.fill_(-1000.0)  # sigmoid(-1000) is exactly 0 in float32
        parts = G(x, c, d, parts=True)
        assert torch.equal(parts.mask, torch.zeros_like(parts.mask))
        assert torch.equal(parts.image, x)
        G.mask.bias.fill_(1000.0)  # mask 1: the colour map alone
        parts = G(x, c, d, parts=True)
        assert torch.equal(parts.image, parts.colour)
        assert not torch.equal(parts.colour, x)


def test_frames_larger_than_the_editor_are_composed_at_their_own_size() -> None:
    G = EditGenerator(EditConfig(width=8, res_blocks=1), 16, 8, 3).eval()
    x, c, d = _faces(size=32), torch.tensor([1, 4, 6, 3]), torch.tensor([0, 1, 2, 2])
    with torch.no_grad():
        G.mask.bias.fill_(-1000.0)
        parts = edit_frames(G, x, c, d)
        assert parts.image.shape == x.shape and torch.equal(parts.image, x)  # the 32-px frames, untouched
        G.mask.bias.fill_(1000.0)
        parts = edit_frames(G, x, c, d)
        small = G(torch.nn.functional.interpolate(x, size=(16, 16), mode="bilinear", antialias=True), c, d)
        # mask 1: the colour map, upscaled; scaled back down it is G's own 16-px output
        assert parts.mask.shape == (4, 1, 32, 32) and torch.equal(parts.image, parts.colour)
        back = torch.nn.functional.avg_pool2d(parts.image, 2)
        other = small.flip(0)  # another face's colour map: the distance that would say "not this one"
        assert (back - small).abs().mean() < 0.25 * (other - small).abs().mean()
        G.mask.bias.fill_(0.0)  # at G's own size, edit_frames is G itself
        same = _faces(size=16)
        assert torch.equal(edit_frames(G, same, c, d).image, G(same, c, d))


def test_a_grayscale_face_gets_a_grey_edit_and_a_colour_face_a_colour_one() -> None:
    G = EditGenerator(EditConfig(width=8, res_blocks=1), 16, 8, 3).eval()
    x, c, d = _faces(size=32), torch.tensor([1, 4, 6, 3]), torch.tensor([0, 1, 2, 2])
    x[1:3] = x[1:3].mean(dim=1, keepdim=True).expand(-1, 3, -1, -1)  # faces 1 and 2: grayscale as RGB
    with torch.no_grad():
        G.mask.bias.fill_(0.0)  # mask 0.5: half the colour map in every pixel
        parts = edit_frames(G, x, c, d)
    spread = (parts.image.amax(dim=1) - parts.image.amin(dim=1)).flatten(1).amax(dim=1)
    assert spread[1] < 1e-6 and spread[2] < 1e-6  # grey in, grey out
    assert spread[0] > 0.05 and spread[3] > 0.05  # colour faces keep a colour map of their own
    colour = torch.tanh(G.colour(G.body(torch.cat([resize_faces(x, 16), _planes(c, d, 16)], dim=1))))
    small = G(resize_faces(x, 16), c, d, parts=True).colour
    assert torch.allclose(small[[0, 3]], colour[[0, 3]])  # unchanged where the face has colour
    assert torch.allclose(small[1], colour[1].mean(dim=0).expand(3, -1, -1))  # the channels' mean


def test_a_warping_editor_moves_the_faces_own_pixels_and_starts_still() -> None:
    x = _faces(size=32)
    assert torch.allclose(warp(x, torch.zeros(4, 2, 32, 32)), x, atol=1e-6)  # no flow, no change
    right = torch.zeros(4, 2, 32, 32)
    right[:, 0] = 2 / 32 * 3  # every pixel reads 3 pixels to its right
    assert torch.allclose(warp(x, right)[..., :-3], x[..., 3:], atol=1e-5)
    G = EditGenerator(EditConfig(width=8, res_blocks=1, output="warp"), 16, 8, 3).eval()
    c, d = torch.tensor([1, 4, 6, 3]), torch.tensor([0, 1, 2, 2])
    with torch.no_grad():
        G.mask.bias.fill_(1000.0)  # mask 1: the warped face alone
        parts = edit_frames(G, x, c, d)
        assert parts.flow is not None and torch.equal(parts.flow, torch.zeros_like(parts.flow))
        assert torch.allclose(parts.image, x, atol=1e-6)  # an untrained warp holds the face still
        G.colour.bias.copy_(torch.tensor([10.0, 0.0]))  # tanh(10) ~ 1: the largest shift, to the right
        moved = edit_frames(G, x, c, d).image
    shift = round(0.15 * 32 / 2)  # max_shift 0.15 of the half-width: 2.4 px at 32 px
    assert (moved[..., : -shift - 1] - x[..., shift:-1]).abs().mean() < 0.5 * (moved - x).abs().mean()
    assert not hasattr(G, "warped_colour") and G.colour.out_channels == 2  # a flow head, no colour map


def _planes(c: torch.Tensor, d: torch.Tensor, size: int) -> torch.Tensor:
    label = torch.cat([torch.nn.functional.one_hot(c, 8), torch.nn.functional.one_hot(d, 3)], dim=1).float()
    return label[:, :, None, None].expand(-1, -1, size, size)


def test_an_untrained_editor_nearly_returns_its_input_and_the_target_matters() -> None:
    G = EditGenerator(EditConfig(width=8, res_blocks=1), 32, 8, 3).eval()
    x, d = _faces(), torch.tensor([0, 1, 2, 2])
    with torch.no_grad():
        a, b = G(x, torch.tensor([0, 0, 0, 0]), d), G(x, torch.tensor([6, 6, 6, 6]), d)
    assert (a - x).abs().mean() < 0.06  # mask ~ sigmoid(-3) = 0.047 everywhere at the start
    assert not torch.allclose(a, b)  # the class planes reach the output
    with pytest.raises(ValueError, match="class indices"):
        G(x, torch.tensor([0, 0, 0, 8]), d)


def test_build_networks_gives_the_editor_for_kind_edit() -> None:
    model = GanModelConfig(kind="edit", edit=EditConfig(width=8, res_blocks=1))
    model.generator.resolution = model.discriminator.resolution = 32
    G, D = build_networks(model)
    assert isinstance(G, EditGenerator) and G.resolution == 32
    assert D(_faces(), torch.zeros(4, dtype=torch.long), torch.zeros(4, dtype=torch.long)).shape == (4,)


def test_target_classes_are_always_another_class_and_the_mask_terms_measure_what_they_say() -> None:
    y = torch.arange(8).repeat(50)
    target = other_classes(y, torch.arange(8), torch.Generator().manual_seed(0))
    assert (target != y).all() and set(target.tolist()) == set(range(8))
    old = (y + torch.randint(1, 8, y.shape, generator=torch.Generator().manual_seed(0))) % 8
    assert torch.equal(target, old)  # every class taught: the same draw as before classes were restricted
    taught = torch.tensor([1, 2, 5])  # only the classes the labelled faces show are asked for
    target = other_classes(y, taught, torch.Generator().manual_seed(0))
    assert (target != y).all() and set(target.tolist()) == {1, 2, 5}
    y = torch.arange(8).repeat(600)
    target = other_classes(y, taught, torch.Generator().manual_seed(0))
    for own in (1, 2, 5, 0, 7):  # each other taught class about equally often, whatever the face's own
        drawn = target[y == own].bincount(minlength=8)[taught]
        others = drawn[taught != own]
        assert (others > 0.8 * 600 / len(others)).all() and drawn[taught == own].sum() == 0
    flat = torch.full((1, 1, 8, 8), 0.3)
    striped = flat.clone()
    striped[..., ::2] = 0.9
    assert mask_smoothness(flat) == 0 and mask_smoothness(striped) > 0.3


@pytest.fixture
def edit_config(edit_cache):
    def make(*overrides: str):
        config = load_train_config(TINY, [*EDIT, *overrides])
        config.data_overrides = [f"cache.root={edit_cache}"]
        return config

    return make


@pytest.fixture(scope="module")
def edit_run(edit_cache, tmp_path_factory):
    """A 6-step editing GAN on the tiny corpus, trained once for this module."""
    run_dir = tmp_path_factory.mktemp("edit") / "run"
    config = load_train_config(
        TINY, [*EDIT, "train.steps=6", "train.sample_every=3", "train.checkpoint_every=3"]
    )
    config.data_overrides = [f"cache.root={edit_cache}"]
    result = train(config, run_dir, accelerator=Accelerator(cpu=True, project_dir=str(run_dir)))
    return run_dir, result, config


def test_tiny_edit_training_writes_the_run_contract_and_learns_the_identity(edit_run, edit_cache) -> None:
    run_dir, result, config = edit_run
    before = EditGenerator(config.model.edit, 32, 8, 3)
    records = read_metrics(run_dir / "metrics.jsonl")
    assert [r["step"] for r in records] == list(range(1, 7))
    for key in ("d_loss", "g_loss", "d_class", "g_class", "cycle", "identity", "mask", "smooth"):
        assert all(isinstance(r[key], float) for r in records), key
    state = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    stored = stored_config(state, "last.pt")
    assert stored.model.kind == "edit" and state["step"] == 6
    G, _ = build_networks(stored.model)
    G.load_state_dict(state["G_ema"])
    G.eval()
    assert "mask.weight" in state["G"] and not torch.equal(G.mask.weight, before.mask.weight)  # it trained
    # Grids: per domain, the source row then one row per class (9 rows of grid_columns faces).
    grid = result.grids[0]
    assert grid.name.startswith("step0000006_")
    from PIL import Image

    width, height = Image.open(grid).size
    assert height > width * 2  # 9 rows of 4 faces
    # The identity edit: a face edited to its own class comes back within a tolerance.
    from gan_aug.sampling import build_frame_table

    table = build_frame_table(edit_cache, 8, stored.model.domains)
    rows = torch.arange(0, len(table), max(1, len(table) // 16))[:16]
    x = table.images(rows, 32)
    with torch.no_grad():
        same = G(x, table.label[rows], table.domain[rows])
    assert (same - x).abs().mean() < 0.08


def _data_config(edit_cache: Path, folder: Path) -> Path:
    text = (repo_root() / "configs" / "data" / "synthetic_tiny.yaml").read_text()
    path = folder / "data.yaml"
    path.write_text(text.replace("root: cache/synthetic_tiny", f"root: {edit_cache}"))
    return path


def test_generate_edit_writes_clips_of_training_windows_deterministically(
    edit_run, edit_cache, tmp_path, capsys
):
    import csv

    from expr_common.data.dataset import CachedClips
    from gan_aug.cli import main

    run_dir, _, _ = edit_run
    data = _data_config(edit_cache, tmp_path)
    argv = ["generate", "--mode", "edit", "--checkpoint", str(run_dir / "checkpoints" / "last.pt"),
            "--from", str(data), "--source", "affwild2", "--counts", "Fear=3,Happiness=2",
            "--clip-len", "4"]  # fmt: skip
    assert main([*argv, "--out", str(tmp_path / "a")]) == 0
    assert main([*argv, "--out", str(tmp_path / "b")]) == 0
    with open(tmp_path / "a" / "manifest.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["label"] for r in rows] == ["Fear"] * 3 + ["Happiness"] * 2
    train_windows = {e["id"]: e for e in CachedClips(edit_cache, split="train", source="affwild2").entries}
    for r in rows:
        assert r["domain"] == "synthetic" and r["split"] == "train"
        source = train_windows[r["source_sample"]]  # a training window: never validation or test
        assert r["subject"] == source["subject"] and r["source_class"] != r["label"]
        frames = sorted((tmp_path / "a" / r["frames"]).glob("*.png"))
        assert len(frames) == 4
        for frame in frames:  # identical bytes for the same arguments
            assert frame.read_bytes() == (tmp_path / "b" / r["frames"] / frame.name).read_bytes()
    all_ids = {e["id"] for e in CachedClips(edit_cache, source="affwild2").entries if e["split"] != "train"}
    assert not {r["source_sample"] for r in rows} & all_ids
    import json

    report = json.loads((tmp_path / "a" / "edit_report.json").read_text())
    assert report["clips"] == 5 and report["source_windows"] <= 5
    # A barely trained editor changes little: every edit is still nearest its own source.
    assert report["nearest_own_source"] == 1.0 and report["nearest_own_source_clips"] == report["compared"]
    assert 0 <= report["mean_abs_change_outside_mask"] < 0.1
    labelled = {e["label"] for e in train_windows.values() if e["label"] >= 0}
    assert report["source_classes"] == [CLASS_NAMES[c] for c in sorted(labelled)]

    # --source-classes: only windows of those classes are edited, and the report names them.
    assert main([*argv, "--source-classes", "Neutral,Other", "--out", str(tmp_path / "calm")]) == 0
    with open(tmp_path / "calm" / "manifest.csv", newline="") as handle:
        calm = list(csv.DictReader(handle))
    assert len(calm) == 5 and {r["source_class"] for r in calm} <= {"Neutral", "Other"}
    assert all(train_windows[r["source_sample"]]["label"] in (0, 7) for r in calm)
    calm_report = json.loads((tmp_path / "calm" / "edit_report.json").read_text())
    assert calm_report["source_classes"] == [CLASS_NAMES[c] for c in sorted(labelled & {0, 7})]
    # a name that is no class: one line naming it, before the checkpoint is read (issue 29, item 13)
    assert main([*argv, "--source-classes", "Neutral,Bogus", "--out", str(tmp_path / "bogus")]) == 2
    assert "--source-classes 'Neutral,Bogus': unknown label 'Bogus'" in capsys.readouterr().err
    assert not (tmp_path / "bogus").exists()


def test_fill_to_max_leaves_a_class_whose_only_sources_are_its_own(edit_run, edit_cache, tmp_path):
    """--fill-to-max --source-classes C: class C has no window of another class to edit; it is left as it
    is and the report says so, while the other classes are filled (a real chain met this on SFEW)."""
    import csv
    import json
    from collections import Counter

    import torch

    from expr_common.checkpoint import load_checkpoint
    from gan_aug.cli import main

    run_dir, _, _ = edit_run
    last = run_dir / "checkpoints" / "last.pt"
    state = load_checkpoint(last)
    domain = state["config"]["model"]["domains"].index("affwild2")
    real = torch.as_tensor(state["real_clip_counts"])[:, domain]
    below = [c for c in range(len(real)) if 0 < real[c] < real.max()]
    assert below  # the tiny corpus has classes below its largest: the check below is not vacuous
    calm = CLASS_NAMES[below[0]]
    data = _data_config(edit_cache, tmp_path)
    argv = ["generate", "--mode", "edit", "--checkpoint", str(last), "--from", str(data),
            "--source", "affwild2", "--fill-to-max", "--clip-len", "4", "--source-classes", calm,
            "--out", str(tmp_path / "filled")]  # fmt: skip
    assert main(argv) == 0
    with open(tmp_path / "filled" / "manifest.csv", newline="") as handle:
        made = Counter(row["label"] for row in csv.DictReader(handle))
    report = json.loads((tmp_path / "filled" / "edit_report.json").read_text())
    assert report["not_filled"] == [calm] and calm not in made and sum(made.values()) > 0


def test_generate_refuses_the_wrong_mode_for_a_checkpoint(edit_run, edit_cache, tmp_path, capsys) -> None:
    from gan_aug.cli import main

    run_dir, _, _ = edit_run
    checkpoint = str(run_dir / "checkpoints" / "last.pt")
    rc = main(["generate", "--checkpoint", checkpoint, "--out", str(tmp_path / "x"), "--per-class", "1"])
    assert rc == 2 and "editing GAN" in capsys.readouterr().err
    rc = main(["generate", "--mode", "edit", "--checkpoint", checkpoint, "--out", str(tmp_path / "y"),
               "--per-class", "1"])  # fmt: skip
    assert rc == 2 and "--from" in capsys.readouterr().err
    rc = main(["generate", "--mode", "edit", "--checkpoint", checkpoint, "--out", str(tmp_path / "z"),
               "--from", "x.yaml", "--truncation", "1.0", "--per-class", "1"])  # fmt: skip
    assert rc == 2 and "--truncation: not an option of --mode edit" in capsys.readouterr().err


def test_edit_needs_a_labelled_domain_in_its_data(edit_config, tmp_path) -> None:
    config = edit_config("model.edit.label_domains=[rafdb]", "train.steps=1")
    with pytest.raises(ConfigError, match="none is in the training data"):
        train(config, tmp_path / "run", accelerator=Accelerator(cpu=True))


def test_edit_training_runs_through_accelerate_launch(edit_cache, tmp_path) -> None:
    run_dir = tmp_path / "launched"
    sets = [*EDIT, "train.steps=2", f"data_overrides=[cache.root={edit_cache}]"]
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--cpu", "--num_processes", "1",
           str(repo_root() / "packages" / "gan_aug" / "gan_aug" / "train.py"), "--config", str(TINY),
           "--run-dir", str(run_dir), *[x for s in sets for x in ("--set", s)]]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert load_checkpoint(run_dir / "checkpoints" / "last.pt")["step"] == 2


def test_the_library_edits_faces_as_the_generator_does(edit_run) -> None:
    run_dir, _, _ = edit_run
    gan = gan_aug.load_gan(run_dir / "checkpoints" / "last.pt")
    assert gan.kind == "edit"
    faces = torch.randint(
        0, 256, (3, 3, 40, 40), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
    )
    out = gan.edit(faces.numpy(), "Disgust", domain="affwild2")
    assert out.images.shape == (3, 3, 40, 40) and out.mask.shape == (3, 1, 40, 40)  # at the faces' own size
    x = faces.float().div(127.5).sub(1)
    c = torch.full((3,), CLASS_NAMES.index("Disgust"))
    with torch.no_grad():
        ref = edit_frames(gan.G, x, c, torch.full_like(c, gan.domains.index("affwild2")))
    np.testing.assert_array_equal(out.images, ((ref.image.clamp(-1, 1) + 1) * 127.5).round().byte().numpy())
    assert ((out.mask >= 0) & (out.mask <= 1)).all()
    with pytest.raises(ValueError, match="cannot sample"):
        gan.sample("Disgust", 1)
    with pytest.raises(ValueError, match="uint8"):
        gan.edit(faces.float().numpy(), "Disgust")
