"""`gan-aug generate`: counts, layout, manifest, determinism, from a checkpoint built without training."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import gan_aug
from expr_common.checkpoint import save_checkpoint
from expr_common.data.manifest import read as read_manifest
from expr_common.labels import CLASS_NAMES
from expr_common.run_lock import LOCK_FILE
from gan_aug.cli import main as cli_main
from gan_aug.config import DiscriminatorConfig, GanModelConfig, GeneratorConfig, domain_index
from gan_aug.generate import GenerateError, SampleRequest, generate, latent_walk, truncated_normal
from gan_aug.generate_edit import EditRequest
from gan_aug.networks import build_networks
from gan_aug.run_config import GanTrainConfig

HEADER = ["sample_id", "frames", "audio", "label", "split", "subject", "domain"]
FRAMES = [40, 6, 3, 0, 25, 30, 12, 33]  # real Aff-Wild2 frames per class: Neutral the largest, no Fear
CLIPS = [9, 2, 1, 0, 6, 7, 3, 8]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    model = GanModelConfig(
        generator=GeneratorConfig(resolution=32, width=4, z_dim=16, embed_dim=8),
        discriminator=DiscriminatorConfig(resolution=32, width=4),
    )
    G, _ = build_networks(model)
    G(torch.randn(4, 16), torch.arange(4), torch.zeros(4, dtype=torch.long))  # BN running stats move
    frames, clips = torch.zeros(8, 3, dtype=torch.long), torch.zeros(8, 3, dtype=torch.long)
    frames[:, domain_index("affwild2")], clips[:, domain_index("affwild2")] = (
        torch.tensor(FRAMES),
        torch.tensor(CLIPS),
    )
    frames[:, domain_index("afew")] = 100  # other domains must not count for --fill-to-max
    state = {"G_ema": G.state_dict(), "real_frame_counts": frames, "real_clip_counts": clips, "step": 1}
    path = tmp_path_factory.mktemp("gan") / "last.pt"
    return save_checkpoint(path, state, GanTrainConfig(model=model))


def _rows(out: Path) -> list[dict[str, str]]:
    with (out / "manifest.csv").open(newline="") as handle:
        assert next(csv.reader(handle)) == HEADER
    with (out / "manifest.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def _tree(out: Path) -> dict[str, bytes]:
    """Every output file's bytes; the run lock (owner and start time: bookkeeping) is no output."""
    files = (p for p in sorted(out.rglob("*")) if p.is_file() and p.name != LOCK_FILE)
    return {str(p.relative_to(out)): p.read_bytes() for p in files}


def test_single_faces_layout_manifest_and_determinism(checkpoint: Path, tmp_path: Path) -> None:
    result = generate(SampleRequest(checkpoint, tmp_path / "a", counts="Fear=3,disgust=2", seed=1))
    assert result.counts == {"Disgust": 2, "Fear": 3}
    rows = _rows(tmp_path / "a")
    assert [r["label"] for r in rows] == ["Disgust"] * 2 + ["Fear"] * 3
    for row in rows:
        assert row["frames"] == f"{row['label']}/{row['sample_id']}.png"
        assert (tmp_path / "a" / row["frames"]).read_bytes()[:4] == b"\x89PNG"
        assert (row["audio"], row["split"], row["subject"], row["domain"]) == (
            "",
            "train",
            row["sample_id"],
            "synthetic",
        )
    assert len({r["sample_id"] for r in rows}) == 5

    generate(SampleRequest(checkpoint, tmp_path / "b", counts="Fear=3,Disgust=2", seed=1))
    generate(SampleRequest(checkpoint, tmp_path / "c", counts="Fear=3,Disgust=2", seed=2))
    a, b, c = _tree(tmp_path / "a"), _tree(tmp_path / "b"), _tree(tmp_path / "c")
    assert a == b  # same seed: the same bytes
    images = [k for k in a if k.endswith(".png")]
    assert all(a[k] != c.get(k.replace("-s1-", "-s2-")) for k in images)  # another seed: other faces
    # The manifest reader takes the output in as an ordinary dataset.
    refs = read_manifest(tmp_path / "a").refs
    assert len(refs) == 5 and {r.domain for r in refs} == {"synthetic"}


def test_clips_have_k_frames_from_a_smooth_walk(checkpoint: Path, tmp_path: Path) -> None:
    generate(SampleRequest(checkpoint, tmp_path / "clips", per_class=1, clip_len=5, truncation=1.5, seed=0))
    rows = _rows(tmp_path / "clips")
    assert [r["label"] for r in rows] == list(CLASS_NAMES)
    for row in rows:
        folder = tmp_path / "clips" / row["frames"]
        assert folder.is_dir() and sorted(p.name for p in folder.iterdir()) == [
            f"{k:05d}.png" for k in range(1, 6)
        ]
    assert len(read_manifest(tmp_path / "clips").refs[0].frame_paths) == 5

    gen = torch.Generator().manual_seed(0)
    base = truncated_normal((16,), 1.5, gen)
    walk = latent_walk(base, 9, 1.5, gen)
    assert walk.shape == (9, 16) and torch.equal(walk[0], base) and walk.abs().max() <= 1.5
    steps = (walk[1:] - walk[:-1]).norm(dim=1)
    assert steps.max() < 0.6 * (walk - base).norm(dim=1).max() + 1e-6  # no frame jumps across the excursion


def test_truncation_redraws_large_entries() -> None:
    z = truncated_normal((20_000,), 0.5, torch.Generator().manual_seed(0))
    assert z.abs().max() <= 0.5 and z.std() > 0.2  # redrawn, not clamped: no pile-up at the bound
    assert (z.abs() > 0.49).float().mean() < 0.05


def test_fill_to_max_tops_up_to_the_largest_real_affwild2_class(checkpoint: Path, tmp_path: Path) -> None:
    faces = generate(SampleRequest(checkpoint, tmp_path / "faces", fill_to_max=True))
    assert faces.counts == {CLASS_NAMES[c]: 40 - n for c, n in enumerate(FRAMES) if 0 < n < 40}
    assert "Fear" not in faces.counts  # a class the target never has is not invented
    clips = generate(SampleRequest(checkpoint, tmp_path / "clips", fill_to_max=True, clip_len=2))  # as clips
    assert clips.counts == {CLASS_NAMES[c]: 9 - n for c, n in enumerate(CLIPS) if 0 < n < 9}
    assert len(_rows(tmp_path / "clips")) == sum(clips.counts.values())


def test_cli_counts_per_class_and_errors(checkpoint: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "cli"
    args = ["generate", "--checkpoint", str(checkpoint), "--out", str(out), "--per-class", "2", "--seed", "3"]
    assert cli_main(args) == 0
    rows = _rows(out)
    assert [r["label"] for r in rows] == [name for name in CLASS_NAMES for _ in range(2)]
    assert cli_main(args) == 2 and "--overwrite" in capsys.readouterr().err  # no silent mixing of two runs
    assert cli_main([*args[:-4], "--counts", "Happiness=1", "--overwrite"]) == 0
    assert [r["label"] for r in _rows(out)] == ["Happiness"] and len(list(out.rglob("*.png"))) == 1
    bad = [
        "generate",
        "--checkpoint",
        str(checkpoint),
        "--out",
        str(tmp_path / "bad"),
        "--counts",
        "Joyful=2",
    ]
    assert cli_main(bad) == 2 and "Joyful" in capsys.readouterr().err
    with pytest.raises(GenerateError, match="exactly one"):
        generate(SampleRequest(checkpoint, tmp_path / "x", per_class=1, fill_to_max=True))


def test_a_request_is_checked_when_it_is_made(tmp_path: Path) -> None:
    with pytest.raises(GenerateError, match="--clip-len and --batch-size"):
        SampleRequest("ck.pt", tmp_path, per_class=1, clip_len=0)
    with pytest.raises(GenerateError, match="--clip-len and --batch-size"):
        EditRequest("ck.pt", tmp_path, per_class=1, batch_size=0, data="data.yaml")
    with pytest.raises(GenerateError, match="--mode edit needs --from"):
        EditRequest("ck.pt", tmp_path, per_class=1)
    request = EditRequest("ck.pt", tmp_path, counts="Fear=2", data="data.yaml", source_classes="Neutral")
    assert request.clip_len == 1 and request.source == "affwild2" and request.data_overrides == ()


def test_the_library_samples_what_generate_writes(checkpoint: Path, tmp_path: Path) -> None:
    gan = gan_aug.load_gan(checkpoint)
    assert gan.kind == "sample" and "affwild2" in gan.domains
    faces = gan.sample("Fear", 3, seed=4)
    assert faces.shape == (3, 3, 32, 32) and faces.dtype == np.uint8
    generate(SampleRequest(checkpoint, tmp_path / "out", counts="Fear=3", seed=4))
    written = [np.asarray(Image.open(tmp_path / "out" / r["frames"])) for r in _rows(tmp_path / "out")]
    np.testing.assert_array_equal(
        faces, np.stack(written).transpose(0, 3, 1, 2)
    )  # the same faces, bit for bit
    assert not np.array_equal(gan.sample("Fear", 3, seed=5), faces)
    with pytest.raises(ValueError, match="cannot edit"):
        gan.edit(faces, "Anger")
    with pytest.raises(ValueError, match="class 'Angry'"):
        gan.sample("Angry", 1)
