"""`recognizer predict --video`: recordings of one's own read as training read its data, per-frame
predictions, the timeline, the annotated video, and the same pipeline on an ONNX export."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from scipy.io import wavfile

from expr_common.data.dataset import CachedClips
from expr_common.data.recording import FaceTrack, open_recording, recording_windows
from expr_common.labels import CLASS_NAMES
from expr_common.media import probe, read_audio, read_video, write_video
from recognizer.cli import main
from recognizer.inference import FusedRecognizer, load_model, selected_fusion
from recognizer.predict_video import spread_to_frames
from recognizer.predictors import TorchPredictor

PROB = [f"prob_{c}" for c in CLASS_NAMES]


def _rows(path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def checkpoint(tiny_recognizer_run):
    return tiny_recognizer_run / "checkpoints" / "best.pt"


@pytest.fixture(scope="module")
def afew_val(tiny_corpus, recognizer_cache_root, tiny_recognizer_run):
    """(video path, cached sample) of the AFEW validation clips of the tiny run's cache that fit in one
    window: prepare makes a clip-labelled clip one sample over all its frames, predict slides windows."""
    clips = CachedClips(recognizer_cache_root, split="val", source="afew")
    paths = {p.stem: p for p in (tiny_corpus / "afew").rglob("*.avi")}
    fps = {probe(p).fps for p in paths.values()}
    length = round(
        TorchPredictor(tiny_recognizer_run / "checkpoints" / "best.pt").preprocess.window_seconds * fps.pop()
    )
    found = [(paths[clips.entries[i]["ref_id"]], clips[i]) for i in range(len(clips))]
    short = [(path, sample) for path, sample in found if int(sample["span"][1]) <= length]
    assert len(short) >= 3 and not fps
    return short


def test_a_clip_is_read_into_the_window_prepare_made(checkpoint, afew_val) -> None:
    """Same frames, same face boxes, same crops, same log-mel: predict reads what training read."""
    preprocess = TorchPredictor(checkpoint).preprocess
    for path, sample in afew_val:
        track = FaceTrack()
        windows = list(recording_windows(open_recording(path), preprocess, detect=True, track=track))
        assert len(windows) == 1  # shorter than one window: one sample, as in the cache
        (window,) = windows
        assert (window.start, window.stop) == tuple(int(x) for x in sample["span"])
        assert window.indices == tuple(int(i) for i in sample["frame_index"])
        np.testing.assert_array_equal(window.video, sample["video"].numpy())
        np.testing.assert_array_equal(window.audio.half().numpy(), sample["audio"].half().numpy())
        assert track.frames == len(read_video(path)) == len(track.boxes)


def test_a_longer_video_slides_windows_like_prepare_does(checkpoint, tiny_corpus) -> None:
    from expr_common.data.frames import window_spans

    preprocess = TorchPredictor(checkpoint).preprocess
    path = sorted((tiny_corpus / "affwild2").rglob("*.mp4"))[0]
    rec = open_recording(path)
    spans = [(w.start, w.stop) for w in recording_windows(rec, preprocess, detect=True, track=FaceTrack())]
    n = len(read_video(path))
    assert spans == window_spans(n, rec.fps, preprocess.window_seconds, preprocess.stride_seconds)
    assert len(spans) > 3 and spans[-1][1] == n


def test_predict_video_gives_a_row_per_frame_and_the_labels_of_evaluation(
    checkpoint, afew_val, tmp_path
) -> None:
    model, cfg, state = load_model(checkpoint)
    fusion = selected_fusion(cfg, state)
    fused = FusedRecognizer(model, fusion["m"], fusion["n"])
    faced = []
    for path, sample in afew_val:
        window = next(recording_windows(open_recording(path), TorchPredictor(checkpoint).preprocess,
                                        detect=True, track=FaceTrack()))  # fmt: skip
        if window.has_video:
            faced.append((path, sample))
    assert faced, "no tiny AFEW validation clip has a detected face"
    path, sample = faced[0]
    out = tmp_path / "out"
    assert (
        main(
            ["predict", "--checkpoint", str(checkpoint), "--video", str(path), "--out", str(out), "--render"]
        )
        == 0
    )
    rows = _rows(out / path.stem / "frames.csv")
    frames = read_video(path)
    assert [int(r["frame"]) for r in rows] == list(range(len(frames)))
    with torch.no_grad():
        want = fused(
            sample["video"][None], sample["audio"][None].float(), torch.tensor([True]), torch.tensor([True])
        )
    expected = CLASS_NAMES[int(want[0][0].argmax())]
    for r in rows:
        assert r["has_audio"] == "1"
        if r["has_face"] == "1":  # the clip's one window over every frame: evaluation's prediction
            assert r["label"] == expected
            probs = np.array([float(r[k]) for k in PROB])
            assert probs.sum() == pytest.approx(1.0, abs=1e-5)
            np.testing.assert_allclose(probs, want[0][0].numpy(), atol=1e-5)
        else:  # no face on this frame: the audio branch's answer, marked
            np.testing.assert_allclose([float(r[k]) for k in PROB], want[2][0].numpy(), atol=1e-5)
    assert (out / path.stem / "timeline.png").stat().st_size > 1000
    rendered = probe(out / path.stem / "annotated.mp4")
    assert rendered.has_audio and len(read_video(out / path.stem / "annotated.mp4")) == len(frames)
    # A second run does not silently replace the first.
    again = ["predict", "--checkpoint", str(checkpoint), "--video", str(path), "--out", str(out)]
    assert main(again) == 2
    assert main([*again, "--overwrite"]) == 0


def test_a_sound_file_a_silent_video_and_an_image(checkpoint, afew_val, tiny_corpus, tmp_path) -> None:
    path, _ = afew_val[0]
    sound = tmp_path / "speech.wav"
    wave = read_audio(path, 16000)
    wavfile.write(sound, 16000, wave)
    silent = tmp_path / "silent.mp4"
    frames = read_video(path)
    write_video(silent, frames, probe(path).fps)
    image = sorted((tiny_corpus / "ckplus").rglob("*.png"))[-1]
    out = tmp_path / "out"
    argv = ["predict", "--checkpoint", str(checkpoint), "--out", str(out), "--render", "--video"]
    assert main([*argv, str(sound), str(silent), str(image)]) == 0

    heard = _rows(out / "speech" / "frames.csv")
    assert len(heard) == int(np.ceil(len(wave) / 16000 * 30))  # 30 rows a second of sound
    assert {r["has_face"] for r in heard} == {"0"} and {r["has_audio"] for r in heard} == {"1"}
    assert all(r["label"] in CLASS_NAMES for r in heard)

    quiet = _rows(out / "silent" / "frames.csv")
    assert len(quiet) == len(frames) and {r["has_audio"] for r in quiet} == {"0"}
    for r in quiet:  # no sound: a frame without a face has no label at all
        assert (r["label"] != "") == (r["has_face"] == "1")
        assert (r["prob_Neutral"] == "") == (r["has_face"] == "0")

    (still,) = _rows(out / image.stem / "frames.csv")
    assert still["frame"] == "0" and still["has_audio"] == "0"
    assert (out / image.stem / "annotated.png").is_file()
    assert not (out / "speech" / "annotated.mp4").exists()  # nothing to draw on sound


def test_a_corrupt_file_is_one_line_naming_it_and_the_others_still_run(
    checkpoint, afew_val, tmp_path, capsys
):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x00\x00 ftypisom" + b"garbage" * 50)
    path, _ = afew_val[0]
    out = tmp_path / "out"
    capsys.readouterr()
    rc = main(["predict", "--checkpoint", str(checkpoint), "--out", str(out), "--video", str(bad), str(path)])
    assert rc == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2 and str(bad) in lines[0] and "1 of 2 recordings" in lines[1]
    assert (out / path.stem / "frames.csv").is_file() and not (out / "broken").exists()


def test_predict_on_the_onnx_export_matches_the_checkpoint(checkpoint, afew_val, tmp_path) -> None:
    path, _ = afew_val[0]
    onnx = tmp_path / "tiny.onnx"
    assert main(["export", "--checkpoint", str(checkpoint), "--onnx", str(onnx)]) == 0
    runs = {}
    for name, model in (("torch", ["--checkpoint", str(checkpoint)]), ("onnx", ["--onnx", str(onnx)])):
        assert main(["predict", *model, "--video", str(path), "--out", str(tmp_path / name)]) == 0
        runs[name] = _rows(tmp_path / name / path.stem / "frames.csv")
    assert len(runs["torch"]) == len(runs["onnx"])
    for a, b in zip(runs["torch"], runs["onnx"]):
        assert (a["label"], a["has_face"], a["has_audio"]) == (b["label"], b["has_face"], b["has_audio"])
        if a["label"]:
            np.testing.assert_allclose([float(a[k]) for k in PROB], [float(b[k]) for k in PROB], atol=1e-4)


def test_windows_spread_to_frames_and_faceless_frames_take_the_sound() -> None:
    fused = np.eye(8)[[1, 2, 3]]
    sound = np.eye(8)[[5, 6, 7]]
    has_face = np.array([True, True, False, False, True, True])
    windows = [(0, 4, True, True), (2, 6, True, True), (4, 6, True, False)]
    prob, has_audio = spread_to_frames(windows, {"prob": fused, "prob_a": sound}, has_face, 1)
    np.testing.assert_allclose(prob[0], fused[0])
    np.testing.assert_allclose(prob[2], (sound[0] + sound[1]) / 2)  # no face: the two windows' sound
    np.testing.assert_allclose(prob[4], (fused[1] + fused[2]) / 2)
    assert has_audio.tolist() == [True] * 6
    # Without sound, a faceless frame has no label.
    prob, _ = spread_to_frames([(0, 6, True, False)], {"prob": fused[:1], "prob_a": sound[:1]}, has_face, 1)
    assert np.isnan(prob[2]).all() and np.isnan(prob[3]).all() and not np.isnan(prob[0]).any()


def test_the_face_track_bridges_short_gaps_only() -> None:
    track = FaceTrack(detected={0: (1, 1, 5, 5), 1: None, 2: None, 3: None, 9: (2, 2, 5, 5)}, frames=12)
    track.finish(max_gap=2)
    assert track.has_face.tolist() == [
        True,
        True,
        True,
        False,
        False,
        False,
        False,
        True,
        True,
        True,
        True,
        True,
    ]
    assert track.boxes[2] == (1, 1, 5, 5) and track.boxes[7] == (2, 2, 5, 5)


def test_a_video_only_model_gives_faceless_frames_no_label_even_with_sound(checkpoint, afew_val, tmp_path):
    from expr_common.checkpoint import load_checkpoint, save_checkpoint

    state = load_checkpoint(checkpoint)
    state["config"]["model"]["modalities"] = "v"
    state["model"] = {k: v for k, v in state["model"].items() if not k.startswith(("audio.", "head_a."))}
    video_only = save_checkpoint(tmp_path / "v.pt", state)
    out = tmp_path / "out"
    paths = [str(p) for p, _ in afew_val]
    assert main(["predict", "--checkpoint", str(video_only), "--out", str(out), "--video", *paths]) == 0
    rows = [r for p, _ in afew_val for r in _rows(out / p.stem / "frames.csv")]
    assert any(r["has_face"] == "0" for r in rows) and any(r["has_face"] == "1" for r in rows)
    for r in rows:
        assert r["has_audio"] == "0"  # the files have sound, but the model does not listen
        assert (r["label"] != "") == (r["has_face"] == "1")


def test_smoothing_stays_within_each_run_of_labelled_frames() -> None:
    fused = np.eye(8)[[1, 2]]
    has_face = np.array([True, True, True, False, True, True])
    windows = [(0, 3, True, False), (3, 6, True, False)]
    prob, _ = spread_to_frames(windows, {"prob": fused, "prob_a": fused}, has_face, 3)
    np.testing.assert_allclose(prob[:3], np.repeat(fused[:1], 3, axis=0))  # not mixed with the next run
    np.testing.assert_allclose(prob[4:], np.repeat(fused[1:], 2, axis=0))
    assert np.isnan(prob[3]).all()
