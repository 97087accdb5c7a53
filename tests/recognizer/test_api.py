"""The library API (``from recognizer import load_recognizer``): the same probabilities as the model the
commands use, on arrays (either modality alone) and on a recording, from a checkpoint or its ONNX export."""

from __future__ import annotations

import numpy as np
import pytest

import recognizer
from expr_common.data.dataset import CachedClips
from expr_common.labels import CLASS_NAMES
from recognizer.cli import main
from recognizer.inference import load_model, selected_fusion


@pytest.fixture(scope="module")
def checkpoint(tiny_recognizer_run):
    return tiny_recognizer_run / "checkpoints" / "best.pt"


def test_predict_on_cached_windows_is_the_models_fused_output(checkpoint, recognizer_cache_root):
    model = recognizer.load_recognizer(checkpoint)
    assert model.modalities == "av" and model.classes == tuple(CLASS_NAMES)
    batch = CachedClips(recognizer_cache_root, split="val").__getitems__(list(range(4)))
    out = model.predict(video=batch["video"], audio=batch["audio"])
    _, cfg, state = load_model(checkpoint)
    fusion = selected_fusion(cfg, state)
    assert out["prob"].shape == (4, len(CLASS_NAMES))
    np.testing.assert_allclose(out["prob"].sum(axis=1), 1.0, atol=1e-5)
    m, n = fusion["m"], fusion["n"]
    fused = (m * out["prob_a"] + n * out["prob_v"]) / (m + n)
    np.testing.assert_allclose(out["prob"], fused, atol=1e-5)  # the proportional fusion of the branches
    assert out["label"] == [CLASS_NAMES[i] for i in out["prob"].argmax(axis=1)]
    video_only = model.predict(video=batch["video"].numpy())
    np.testing.assert_allclose(video_only["prob"], out["prob_v"], atol=1e-5)  # no sound: the V branch
    audio_only = model.predict(audio=batch["audio"])
    np.testing.assert_allclose(audio_only["prob"], out["prob_a"], atol=1e-5)
    with pytest.raises(ValueError, match="give video, audio or both"):
        model.predict()


def test_the_onnx_export_and_a_recording(checkpoint, tiny_corpus, tmp_path):
    onnx = tmp_path / "tiny.onnx"
    assert main(["export", "--checkpoint", str(checkpoint), "--onnx", str(onnx)]) == 0
    clip = next((tiny_corpus / "afew").rglob("*.avi"))
    frames = {}
    for path in (checkpoint, onnx):
        model = recognizer.load_recognizer(path)
        frames[path.suffix] = model.predict_video(clip)
    a, b = frames[".pt"], frames[".onnx"]
    assert len(a.prob) == len(b.prob) > 0 and (a.label == b.label).all()
    np.testing.assert_allclose(np.nan_to_num(a.prob), np.nan_to_num(b.prob), atol=1e-4)
