"""``recognizer predict`` and ``recognizer validate-submission`` on the tiny corpus, through the CLI."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from expr_common.data.affwild2 import CROPS_DIR, TEST_LIST, crop_index
from expr_common.data.readers import read_dataset
from expr_common.labels import SUBMISSION_HEADER
from recognizer.cli import main
from recognizer.predict import fill_frames
from recognizer.submission import validate_submission


@pytest.fixture(scope="module")
def checkpoint(tiny_recognizer_run):
    return tiny_recognizer_run / "checkpoints" / "best.pt"


@pytest.fixture(scope="module")
def affwild2(tiny_corpus):
    return tiny_corpus / "affwild2"


@pytest.fixture(scope="module")
def predicted(checkpoint, tmp_path_factory):
    out = tmp_path_factory.mktemp("predict")
    argv = ["predict", "--checkpoint", str(checkpoint), "--out", str(out / "sub.csv")]
    assert main([*argv, "--probs", str(out / "probs.csv")]) == 0
    return out


def validate(path, affwild2, capsys) -> tuple[int, str]:
    code = main(
        [
            "validate-submission",
            str(path),
            "--videos",
            str(affwild2 / TEST_LIST),
            "--cropped",
            str(affwild2 / CROPS_DIR),
        ]
    )
    return code, capsys.readouterr().out


def copy_data_config(corpus, tmp_path):
    """A data config over the test split of a (modified) copy of the tiny Aff-Wild2 corpus."""
    config = tmp_path / "data.yaml"
    config.write_text(
        f"name: test_copy\nsources:\n  - name: affwild2\n    format: affwild2\n    root: {corpus}\n"
        "    splits: [test]\npreprocess:\n  frames: 4\n  image_size: 48\n  window_seconds: 1.0\n"
        f"  stride_seconds: 0.5\ncache:\n  root: {tmp_path / 'cache'}\n  workers: 0\n"
    )
    return config


def test_predict_writes_every_frame_of_every_test_track(predicted, affwild2, capsys):
    lines = (predicted / "sub.csv").read_text().splitlines()
    assert lines[0] == SUBMISSION_HEADER
    refs = read_dataset("affwild2", affwild2, splits=("test",)).refs
    tracks = (affwild2 / TEST_LIST).read_text().split()
    assert [r.sample_id for r in refs] == tracks and len(tracks) == 1
    expected = [f"{r.sample_id}/{i:05d}.jpg" for r in refs for i in range(1, len(r.frame_paths) + 1)]
    assert [line.split(",")[0] for line in lines[1:]] == expected
    crops = crop_index(affwild2 / CROPS_DIR / tracks[0])
    assert len(lines) - 1 == max(crops) == len(refs[0].frame_paths)
    assert all(0 <= int(line.split(",")[1]) <= 7 for line in lines[1:])
    code, out = validate(predicted / "sub.csv", affwild2, capsys)
    assert code == 0 and out.strip() == f"OK: 1 videos, {len(expected)} frames"
    # The probabilities file lines up with the submission, and its argmax is the submitted label.
    probs = (predicted / "probs.csv").read_text().splitlines()
    assert probs[0] == SUBMISSION_HEADER + ",filled" and len(probs) == len(lines)
    for sub_line, prob_line in zip(lines[1:], probs[1:]):
        cells = prob_line.split(",")
        values = np.array(cells[1:9], float)
        assert cells[0] == sub_line.split(",")[0] and values.sum() == pytest.approx(1, abs=1e-4)
        assert int(np.argmax(values)) == int(sub_line.split(",")[1])


def test_frames_without_a_crop_still_get_a_line(checkpoint, affwild2, tmp_path, capsys):
    corpus = tmp_path / "affwild2"
    shutil.copytree(affwild2, corpus)
    track = (corpus / TEST_LIST).read_text().split()[0]
    n_frames = max(crop_index(corpus / CROPS_DIR / track))
    for frame in (1, 20):  # the first frame and one in the middle lose their face
        (corpus / CROPS_DIR / track / f"{frame:05d}.jpg").unlink()
    config = copy_data_config(corpus, tmp_path)
    out = tmp_path / "sub.csv"
    argv = ["predict", "--checkpoint", str(checkpoint), "--data", str(config), "--out", str(out)]
    assert main([*argv, "--probs", str(tmp_path / "probs.csv")]) == 0
    lines = out.read_text().splitlines()
    assert [line.split(",")[0] for line in lines[1:]] == [
        f"{track}/{i:05d}.jpg" for i in range(1, n_frames + 1)
    ]
    labels = [int(line.split(",")[1]) for line in lines[1:]]
    # No crop: the nearest frame with one decides (frame 2 for frame 1; frame 19 wins the tie for 20).
    assert labels[0] == labels[1] and labels[19] == labels[18]
    filled = [int(line.rsplit(",", 1)[1]) for line in (tmp_path / "probs.csv").read_text().splitlines()[1:]]
    assert filled[0] == 1 and filled[19] == 1 and sum(filled) == 2
    # The crop folder now holds N - 2 crops; N = the highest crop number is accepted (see the validator).
    code, message = validate(out, corpus, capsys)
    assert code == 0, message


def test_fill_frames_takes_the_nearest_observed_frame():
    prob = np.eye(3)  # observed frames 2, 3, 7 -> classes 0, 1, 2
    filled = fill_frames(10, np.array([2, 3, 7]), prob, fallback=np.full(3, 1 / 3))
    assert filled.argmax(axis=1).tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 2]  # 5 is a tie: the earlier
    empty = fill_frames(4, np.array([], int), np.zeros((0, 3)), fallback=np.array([0.2, 0.5, 0.3]))
    assert empty.shape == (4, 3) and (empty.argmax(axis=1) == 1).all()


@pytest.fixture()
def broken(tmp_path):
    """A tiny valid submission layout (videos a: 3 crops, b: crops 1 and 3) to break one way at a time."""
    cropped = tmp_path / "crops"
    for video, frames in (("a", (1, 2, 3)), ("b", (1, 3))):
        (cropped / video).mkdir(parents=True)
        for frame in frames:
            (cropped / video / f"{frame:05d}.jpg").write_bytes(b"")
    videos = tmp_path / "list.txt"
    videos.write_text("a\nb\n")
    good = [SUBMISSION_HEADER, "a/00001.jpg,0", "a/00002.jpg,7", "a/00003.jpg,4", "b/00001.jpg,1"]
    good += ["b/00002.jpg,1", "b/00003.jpg,2"]

    def check(lines: list[str]) -> tuple[int, str]:
        path = tmp_path / "sub.csv"
        path.write_text("\n".join(lines) + "\n")
        code = main(["validate-submission", str(path), "--videos", str(videos), "--cropped", str(cropped)])
        return code, str(path)

    return good, check, videos


def test_validator_accepts_the_valid_layout(broken, capsys):
    good, check, _ = broken
    assert check(good)[0] == 0
    assert capsys.readouterr().out.strip() == "OK: 2 videos, 6 frames"


@pytest.mark.parametrize(
    ("edit", "where", "says"),
    [
        (lambda g: ["image_location,Neutral", *g[1:]], 1, "expected the header"),
        (lambda g: g[:4], "list.txt:2", "no lines for video b"),
        (lambda g: [*g, "c/00001.jpg,0"], 8, "video 'c' is not in"),
        (lambda g: [*g[:2], *g[3:]], 3, "expected a/00002.jpg"),
        (lambda g: [*g[:3], g[2], *g[3:]], 4, "duplicate of line 3"),
        (lambda g: [*g[:2], "a/00002.jpg,8", *g[3:]], 3, "label 8 is outside 0-7"),
        (lambda g: [*g[:2], "a/2.jpg,7", *g[3:]], 3, "expected '<video>/<5 digits>.jpg,<label 0-7>'"),
    ],
    ids=["header", "missing-video", "extra-video", "skipped-frame", "duplicate", "label-8", "malformed"],
)
def test_validator_names_file_and_line(broken, capsys, edit, where, says):
    good, check, _ = broken
    code, path = check(edit(good))
    out = capsys.readouterr().out
    assert code == 1 and "INVALID" in out
    located = [line for line in out.splitlines() if says in line]
    assert located, out
    prefix = f"{path}:{where}:" if isinstance(where, int) else where
    assert prefix in located[0], out


def test_validator_counts_frames_per_video(broken, tmp_path):
    good, check, videos = broken
    path = tmp_path / "short.csv"
    path.write_text("\n".join(good[:-1]) + "\n")  # b stops at frame 2 although crop 3 exists
    problems = validate_submission(path, videos, tmp_path / "crops")
    # 2 lines = 2 crops in b/, but crop 3 has no line: incomplete (this passed before issue 14, item 5)
    assert len(problems) == 1 and f"{path}:6: video b has frames 1..2; expected 1..3" in problems[0]
    path.write_text("\n".join([*good, "b/00004.jpg,0"]) + "\n")
    problems = validate_submission(path, videos, tmp_path / "crops")
    assert len(problems) == 1 and f"{path}:8: video b has frames 1..4; expected 1..3" in problems[0]
    many = [SUBMISSION_HEADER] + [f"x{i}/00001.jpg,0" for i in range(80)]
    path.write_text("\n".join(many) + "\n")
    problems = validate_submission(path, videos, tmp_path / "crops")
    assert len(problems) == 51 and problems[-1] == "... and 32 more problems"  # 80 extra + 2 missing


def test_a_face_lost_before_the_video_ends(checkpoint, affwild2, tmp_path, capsys):
    # predict writes every frame of the video; the validator accepts that N only when it sees the videos
    corpus = tmp_path / "affwild2"
    shutil.copytree(affwild2, corpus)
    track = (corpus / TEST_LIST).read_text().split()[0]
    n_frames = max(crop_index(corpus / CROPS_DIR / track))
    for frame in (n_frames - 1, n_frames):
        (corpus / CROPS_DIR / track / f"{frame:05d}.jpg").unlink()
    config = copy_data_config(corpus, tmp_path)
    out = tmp_path / "sub.csv"
    assert main(["predict", "--checkpoint", str(checkpoint), "--data", str(config), "--out", str(out)]) == 0
    assert len(out.read_text().splitlines()) == 1 + n_frames  # the video's frames, not the crops
    args = [
        "validate-submission",
        str(out),
        "--videos",
        str(corpus / TEST_LIST),
        "--cropped",
        str(corpus / CROPS_DIR),
    ]
    assert main(args) == 1
    assert f"has frames 1..{n_frames}" in capsys.readouterr().out
    assert main([*args, "--video-dir", str(corpus / "videos")]) == 0
    assert "OK: 1 videos" in capsys.readouterr().out
