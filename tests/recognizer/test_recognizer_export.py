"""`recognizer export`: the fused model as ONNX, run by onnxruntime, matches the PyTorch probabilities."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from expr_common.checkpoint import load_checkpoint, save_checkpoint
from expr_common.data.dataset import CachedClips, collate, normalize_video
from recognizer.cli import main
from recognizer.inference import load_model
from recognizer.onnx_runtime import OnnxModelError, OnnxRecognizer


@pytest.fixture(scope="module")
def exported(tiny_recognizer_run, tmp_path_factory):
    """The tiny run's best checkpoint with another selected fusion than the config's 1:1 (so the export must
    take the selection), exported through the command line."""
    folder = tmp_path_factory.mktemp("onnx")
    state = load_checkpoint(tiny_recognizer_run / "checkpoints" / "best.pt")
    state["selection"] = {**state["selection"], "m": 3, "n": 1}
    checkpoint = save_checkpoint(folder / "best.pt", state)
    out = folder / "tiny.onnx"
    assert main(["export", "--checkpoint", str(checkpoint), "--onnx", str(out)]) == 0
    return checkpoint, out


def _windows(recognizer_cache_root, count: int) -> dict:
    clips = CachedClips(recognizer_cache_root, split="val", source="affwild2")
    return collate([clips[i] for i in range(min(count, len(clips)))])


def test_onnxruntime_matches_the_pytorch_model(exported, recognizer_cache_root) -> None:
    checkpoint, onnx_path = exported
    model, cfg, state = load_model(checkpoint)
    m, n = state["selection"]["m"], state["selection"]["n"]
    assert (m, n) == (3, 1) != (cfg.model.fusion.m, cfg.model.fusion.n)
    model.cfg.fusion.m, model.cfg.fusion.n = m, n  # what predict and evaluate use: the selected fusion
    model.eval()
    batch = _windows(recognizer_cache_root, 7)
    # Mixed rows: both modalities, video only, audio only, neither.
    has_video = torch.tensor([True, True, False, True, False, True, True][: len(batch["label"])])
    has_audio = torch.tensor([True, False, True, True, False, True, False][: len(batch["label"])])
    with torch.no_grad():
        want = model(normalize_video(batch["video"]), batch["audio"], has_video, has_audio)
    session = OnnxRecognizer(onnx_path, threads=1)
    assert (session.frames, session.image_size) == (batch["video"].shape[1], batch["video"].shape[-1])
    for rows in (slice(0, 1), slice(0, len(has_video))):  # the batch axis is dynamic
        got = session(
            batch["video"][rows].numpy(), batch["audio"][rows].numpy(), has_video[rows].numpy(),
            has_audio[rows].numpy(),
        )  # fmt: skip
        for key in ("prob", "prob_v", "prob_a"):
            expected = want[key][rows].numpy()
            if key != "prob":  # the model's branch rows without the modality are placeholders: uniform here
                present = (has_video if key == "prob_v" else has_audio)[rows].numpy()
                expected = np.where(present[:, None], expected, 1.0 / expected.shape[1])
            np.testing.assert_allclose(got[key], expected, atol=1e-4)
        np.testing.assert_allclose(got["prob"].sum(axis=1), 1.0, atol=1e-5)
    assert not np.allclose(got["prob"][0], got["prob"][1])  # real inputs, different answers


def test_a_bad_onnx_file_is_one_clear_error(tmp_path) -> None:
    bad = tmp_path / "model.onnx"
    bad.write_text("not a model")
    with pytest.raises(OnnxModelError, match="not a readable ONNX model"):
        OnnxRecognizer(bad)
    with pytest.raises(OnnxModelError, match="no such ONNX file"):
        OnnxRecognizer(tmp_path / "missing.onnx")


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("preprocess", "{not json", "metadata 'preprocess' is not JSON"),
        ("modalities", "xyz", "modalities 'xyz' is not av, v or a"),
        ("image_size", 112, "image_size 112 in the metadata, 48 in the graph"),
    ],
)
def test_edited_onnx_metadata_is_refused_on_load(exported, tmp_path, key, value, message) -> None:
    """Issue 29, item 11: edited metadata was an onnxruntime traceback, a JSONDecodeError, or accepted."""
    import json

    import onnx

    from recognizer.predictors import OnnxPredictor

    model = onnx.load(str(exported[1]))
    meta = {p.key: p for p in model.metadata_props}
    if key == "image_size":
        meta["preprocess"].value = json.dumps({**json.loads(meta["preprocess"].value), key: value})
    else:
        meta[key].value = value
    edited = tmp_path / "edited.onnx"
    onnx.save(model, str(edited))
    with pytest.raises(OnnxModelError, match=message):
        OnnxPredictor(edited)
