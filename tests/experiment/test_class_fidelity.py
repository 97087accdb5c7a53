"""`expr-experiment fidelity`: a recognizer's per-class recall on synthetic samples beside real validation
windows. The recognizer is built from the tiny config with untrained features and a visual head fitted to
them in closed form (so that its predictions vary between inputs, which is all the bookkeeping needs); the
synthetic samples come from an untrained tiny GAN or are real windows written back out as PNG clips."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.io import write_png

from expr_common.checkpoint import save_checkpoint
from expr_common.data.config import PreprocessConfig, load_data_config
from expr_common.data.dataset import CachedClips, make_loader, normalize_video
from expr_common.data.faces import face_crops, read_image
from expr_common.data.frames import sample_indices
from expr_common.data.prepare import prepare
from expr_common.labels import CLASS_NAMES
from expr_common.paths import repo_root
from expr_experiment.cli import main
from expr_experiment.fidelity import FidelityError, _synthetic_manifest_batches, run_fidelity
from expr_experiment.fidelity_summary import Scored
from expr_experiment.layout import FIDELITY_JSON
from expr_experiment.layout import REAL_CONFUSION as REAL_PNG
from expr_experiment.layout import SYNTH_CONFUSION as SYNTH_PNG
from gan_aug.config import DiscriminatorConfig, GanModelConfig, GeneratorConfig
from gan_aug.generate import SampleRequest, generate
from gan_aug.generate_edit import SOURCE_CLASS
from gan_aug.networks import build_networks
from gan_aug.run_config import GanTrainConfig
from recognizer.model import AudioVisualRecognizer
from recognizer.run_config import load_recognizer_config

TINY_DATA = repo_root() / "configs" / "data" / "synthetic_tiny.yaml"
TINY_RECOGNIZER = repo_root() / "configs" / "recognizer" / "tiny.yaml"
HEADER = ["sample_id", "frames", "audio", "label", "split", "subject", "domain"]


@pytest.fixture(scope="session")
def tiny_cache(tiny_corpus: Path, data_dir: Path) -> Path:
    """The tiny corpus prepared once (the path and config the GAN tests use, so a session builds it once)."""
    out = data_dir / "cache" / "gan_synthetic_tiny"
    return Path(prepare(load_data_config(TINY_DATA, [f"cache.root={out}"])).path)


def _recognizer(tiny_cache: Path, folder: Path, *overrides: str, varied: bool = False) -> Path:
    cfg = load_recognizer_config(TINY_RECOGNIZER, [f"data_overrides=[cache.root={tiny_cache}]", *overrides])
    torch.manual_seed(0)
    model = AudioVisualRecognizer(cfg.model)
    if varied:  # untrained features, but a head fitted to them: predictions that differ between inputs
        for module in model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.momentum = None  # running statistics = the plain mean over the batches below
        # Fitted to the validation windows the tests score: on them its predictions are bound to vary
        # (fitted to other subjects, 16 untrained features may well call every validation window one class).
        windows = CachedClips(tiny_cache, split="val", source="affwild2", labelled_only=True)
        with torch.no_grad():
            model.train()
            batches = list(make_loader(windows, 16, workers=0))
            for batch in batches:
                model(normalize_video(batch["video"]), None)
            model.eval()
            features = torch.cat([model.visual(normalize_video(b["video"])) for b in batches]).double()
            x = torch.cat([features, torch.ones(len(features), 1, dtype=torch.float64)], dim=1)
            y = torch.nn.functional.one_hot(torch.cat([b["label"] for b in batches]), 8).double()
            w = torch.linalg.solve(x.T @ x + 1e-3 * torch.eye(x.shape[1], dtype=torch.float64), x.T @ y)
            model.head_v[1].weight.copy_(w[:-1].T)  # ridge regression onto one-hot labels
            model.head_v[1].bias.copy_(w[-1])
    return save_checkpoint(folder / "checkpoints" / "best.pt", {"model": model.state_dict()}, cfg)


@pytest.fixture(scope="module")
def recognizer_checkpoint(tiny_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _recognizer(tiny_cache, tmp_path_factory.mktemp("recognizer"), varied=True)


@pytest.fixture(scope="module")
def gan_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    model = GanModelConfig(
        generator=GeneratorConfig(resolution=32, width=4, z_dim=16, embed_dim=8),
        discriminator=DiscriminatorConfig(resolution=32, width=4),
    )
    G, _ = build_networks(model)
    path = tmp_path_factory.mktemp("gan") / "last.pt"
    return save_checkpoint(path, {"G_ema": G.state_dict(), "step": 1}, GanTrainConfig(model=model))


def _check_report(report: dict, out: Path) -> None:
    """Counts add up, rates are in [0, 1] and are the row-normalised diagonals of the stored matrices."""
    for side, n_key, rate_key in (
        ("synthetic", "n_synth", "synth_recall"),
        ("real", "n_real", "real_recall"),
    ):
        cm = np.asarray(report["confusion"][side])
        assert cm.shape == (8, 8) and report["overall"][n_key] == cm.sum()
        for name, row in report["classes"].items():
            c = CLASS_NAMES.index(name)
            assert row["label"] == c and row[n_key] == cm[c].sum()
            if row[n_key]:
                assert 0.0 <= row[rate_key] <= 1.0 and row[rate_key] == pytest.approx(cm[c, c] / cm[c].sum())
            else:
                assert row[rate_key] is None
    assert (out / FIDELITY_JSON).is_file() and (out / SYNTH_PNG).is_file() and (out / REAL_PNG).is_file()
    assert (out / SYNTH_PNG).read_bytes()[:4] == b"\x89PNG"


def _windows_as_clips(windows: CachedClips, folder: Path, shift: int = 0, source: bool = False) -> Path:
    """``windows`` written out as PNG clips with a manifest, labelled their class + ``shift`` (mod 8); with
    ``source``, a ``source_class`` column naming their own class, as `generate --mode edit` writes it."""
    rows = []
    for i in range(len(windows)):
        item = windows[i]
        for k, frame in enumerate(item["video"]):  # K crops [3, S, S] -> 00001.png ...
            (folder / f"w{i}").mkdir(parents=True, exist_ok=True)
            write_png(frame, str(folder / f"w{i}" / f"{k + 1:05d}.png"))
        label = int(item["label"])
        row = [f"w{i}", f"w{i}", "", CLASS_NAMES[(label + shift) % 8], "train", f"w{i}", "synthetic"]
        rows.append(row + ([CLASS_NAMES[label]] if source else []))
    with (folder / "manifest.csv").open("w", newline="") as handle:
        csv.writer(handle).writerows([HEADER + ([SOURCE_CLASS] if source else []), *rows])
    return folder


def test_fidelity_real_windows_written_as_clips_score_as_the_real_ones(
    recognizer_checkpoint: Path, tiny_cache: Path, tmp_path: Path
):
    """The same pixels through the synthetic path (PNG clips + manifest, preprocessed here) and the real
    path (the prepared cache) give the same predictions: the preprocessing and the branch are the same."""
    val = CachedClips(tiny_cache, split="val", source="affwild2", labelled_only=True)
    synthetic = _windows_as_clips(val, tmp_path / "as_synthetic")

    report = run_fidelity(recognizer_checkpoint, synthetic, tmp_path / "out")
    _check_report(report, tmp_path / "out")
    assert report["settings"]["preprocess"] | {"from": None} == {
        "frames": 4,
        "image_size": 48,
        "from": None,
    } | {"faces": "auto"}
    assert (
        report["settings"]["real"]["sources"] == ["affwild2"] and report["settings"]["real"]["split"] == "val"
    )
    assert report["overall"]["n_synth"] == report["overall"]["n_real"] == len(val)
    assert report["confusion"]["synthetic"] == report["confusion"]["real"]
    assert np.count_nonzero(np.asarray(report["confusion"]["real"]).sum(axis=0)) >= 2  # varied predictions
    for row in report["classes"].values():
        assert row["n_synth"] == row["n_real"] and row["synth_recall"] == row["real_recall"]
    assert report["overall"]["synth_mean_recall"] == report["overall"]["real_mean_recall"]
    assert "kept_source_rate" not in report["overall"] and "train_accuracy" not in report["overall"]


def test_fidelity_of_edits_counts_those_called_by_their_source_class(
    recognizer_checkpoint: Path, tiny_cache: Path, tmp_path: Path
):
    """Real validation windows posing as edits of themselves to the next class: the recognizer names an
    "edit" by its source class exactly where it recognises the real window, and by its target class where
    it takes the window for the next class; the real training windows are scored for reference."""
    val = CachedClips(tiny_cache, split="val", source="affwild2", labelled_only=True)
    synthetic = _windows_as_clips(val, tmp_path / "edits", shift=1, source=True)

    report = run_fidelity(recognizer_checkpoint, synthetic, tmp_path / "out")
    _check_report(report, tmp_path / "out")
    real, synth = np.asarray(report["confusion"]["real"]), np.asarray(report["confusion"]["synthetic"])
    assert np.array_equal(synth, np.roll(real, 1, axis=0))  # the same predictions, each row one class on
    shifted = np.roll(np.arange(8), 1)  # the class whose windows became this class's "edits"
    for name, row in report["classes"].items():
        c = CLASS_NAMES.index(name)
        own = real[shifted[c]]
        assert row["kept_source_rate"] == (pytest.approx(own[shifted[c]] / own.sum()) if own.sum() else None)
    overall = report["overall"]
    assert overall["kept_source_rate"] == pytest.approx(overall["real_accuracy"])
    assert overall["synth_accuracy"] == pytest.approx(
        sum(real[c, (c + 1) % 8] for c in range(8)) / real.sum()
    )
    train = CachedClips(tiny_cache, split="train", source="affwild2", labelled_only=True)
    assert overall["n_train"] == len(train) > 0 and 0.0 <= overall["train_accuracy"] <= 1.0
    counts = np.bincount([int(train[i]["label"]) for i in range(len(train))], minlength=8)
    assert all(row["n_train"] == counts[CLASS_NAMES.index(name)] for name, row in report["classes"].items())

    bad = tmp_path / "bad" / "manifest.csv"
    bad.parent.mkdir()
    text = (synthetic / "manifest.csv").read_text().splitlines()
    bad.write_text(
        "\n".join([text[0], text[1].rsplit(",", 1)[0].replace(",w0,", f",{synthetic}/w0,") + ",Grumpy"])
    )
    with pytest.raises(FidelityError, match=r"manifest.csv: sample w0: source_class 'Grumpy'"):
        run_fidelity(recognizer_checkpoint, bad, tmp_path / "never")


def test_fidelity_on_generated_faces_and_clips(
    recognizer_checkpoint: Path, gan_checkpoint: Path, tmp_path: Path
):
    # 32 px single faces, and 6-frame clips
    faces = generate(SampleRequest(gan_checkpoint, tmp_path / "faces", counts="Fear=3,Disgust=2")).out
    clips = generate(SampleRequest(gan_checkpoint, tmp_path / "clips", counts="Anger=2", clip_len=6)).out
    pre = PreprocessConfig(frames=4, image_size=48)

    # Preprocessed as training prepares data: a face repeated K times, a clip sampled to K frames, 48 px.
    scored = Scored()
    total, batches = _synthetic_manifest_batches(faces / "manifest.csv", pre, "auto", 64, scored)
    video, labels, sources, ids, _ = next(batches)
    assert sources == [-1] * 5  # sampled faces are no edits: they name no source class
    assert len(set(ids)) == 5 and all(i.startswith("gan-") for i in ids)  # each its manifest row
    assert total == 5 and video.shape == (5, 4, 3, 48, 48) and sorted(labels) == [2, 2, 3, 3, 3]
    assert all(torch.equal(video[i, 0], video[i, k]) for i in range(5) for k in range(4))
    _, batches = _synthetic_manifest_batches(clips, pre, "auto", 64, scored)
    video, labels, _, _, _ = next(batches)
    assert video.shape == (2, 4, 3, 48, 48) and labels == [1, 1]
    frames = sorted((clips / "Anger").iterdir())[0].glob("*.png")
    images = [read_image(str(p)) for p in sorted(frames)]
    chosen = sample_indices(0, len(images), 4)
    expected, _ = face_crops([images[i] for i in chosen], chosen, size=48, detect=False)
    assert torch.equal(video[0], torch.from_numpy(expected))

    out = tmp_path / "fidelity"
    argv = [
        "fidelity",
        "--checkpoint",
        str(recognizer_checkpoint),
        "--synthetic",
        str(faces),
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    report = json.loads((out / FIDELITY_JSON).read_text())
    _check_report(report, out)
    assert {k for k, c in report["classes"].items() if c["n_synth"]} == {"Disgust", "Fear"}
    assert report["classes"]["Fear"]["n_synth"] == 3 and report["classes"]["Disgust"]["n_synth"] == 2
    assert report["overall"]["n_synth"] == 5 and report["overall"]["classes_compared"] == ["Disgust", "Fear"]
    assert report["settings"]["synthetic"]["kind"] == "manifest"
    assert report["settings"]["branch"].startswith("visual")


def test_fidelity_takes_a_prepared_cache_and_refuses_an_audio_only_model(
    recognizer_checkpoint: Path, tiny_cache: Path, tmp_path: Path
):
    report = run_fidelity(recognizer_checkpoint, tiny_cache, tmp_path / "cache_out", batch_size=16)
    labelled = CachedClips(tiny_cache, labelled_only=True)
    assert report["settings"]["synthetic"]["kind"] == "cache" and report["overall"]["n_synth"] == len(
        labelled
    )
    _check_report(report, tmp_path / "cache_out")
    audio_only = _recognizer(tiny_cache, tmp_path / "audio", "model.modalities=a")
    with pytest.raises(FidelityError, match="audio-only"):
        run_fidelity(audio_only, tiny_cache, tmp_path / "never")
