"""``expr-data check``: clean corpus -> exit 0 and the right counts; broken copies -> exit 1 and every
problem listed with file:line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from expr_common.cli import main
from expr_common.data.check import check_dataset
from expr_common.data.readers import read_dataset
from expr_common.labels import CLASS_NAMES, UNLABELLED
from expr_common.media import write_video


def test_clean_corpus_passes_with_right_counts(tiny_corpus, tmp_path, capsys):
    info = json.loads((tiny_corpus / "corpus.json").read_text())["counts"]
    for name in ("affwild2", "afew", "ckplus"):
        out = tmp_path / f"{name}.json"
        assert main(["check", str(tiny_corpus / name), "--format", name, "--json", str(out)]) == 0
        printed = capsys.readouterr().out
        assert "OK: no problems found" in printed
        report = json.loads(out.read_text())
        assert report["ok"] and not report["bad_lines"] and not report["silent_videos"]
        if name == "affwild2":
            assert report["unit"] == "frames"
            assert report["counts"]["train"] == info["affwild2"]["train"]
            assert report["counts"]["val"] == info["affwild2"]["val"]
            assert (
                report["missing_crops"]
                == json.loads((tiny_corpus / "corpus.json").read_text())["affwild2_missing_crops"]
            )
        elif name == "afew":
            assert report["counts"] == info["afew"]
        else:
            merged = {}
            for table in report["counts"].values():
                for key, n in table.items():
                    merged[key] = merged.get(key, 0) + n
            assert merged == info["ckplus"]["labelled"]
            assert report["skipped"]["unlabelled sequence"] == info["ckplus"]["unlabelled"]["unlabelled"]
    # the printed table has one row per split with the per-class counts
    main(["check", str(tiny_corpus / "afew"), "--format", "afew"])
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("train"))
    assert row.split() == ["train"] + [str(info["afew"]["train"].get(n, 0)) for n in CLASS_NAMES] + [
        "0",
        "14",
    ]


def test_broken_affwild2_copy_lists_bad_lines_and_missing_crops(tiny_corpus, tmp_path, capsys):
    root = tmp_path / "affwild2"
    shutil.copytree(tiny_corpus / "affwild2", root)
    before = read_dataset("affwild2", root).refs
    bad, other = [r for r in before if r.split == "train"][:2]
    annotation = Path(bad.source)
    lines = annotation.read_text().splitlines()
    lines[4], lines[6] = "x", "12"  # file lines 5 and 7
    annotation.write_text("\n".join(lines) + "\n")
    # delete three crops of annotated frames in another track
    annotated = [
        p for p, label in zip(other.frame_paths, other.frame_labels) if p is not None and label != UNLABELLED
    ]
    for path in annotated[:3]:
        path.unlink()
    missing_before = sum(
        p is None and label != UNLABELLED
        for r in before
        if r is not bad
        for p, label in zip(r.frame_paths, r.frame_labels)
    )
    assert main(["check", str(root), "--format", "affwild2"]) == 1
    out = capsys.readouterr().out
    assert f"{annotation}:5: expected one integer label" in out
    assert f"{annotation}:7: label 12 is outside" in out
    assert f"annotated frames without a crop: {missing_before + 3}" in out
    assert "PROBLEMS: 2 bad lines or files" in out
    report = check_dataset("affwild2", root)
    assert len(report["bad_lines"]) == 2 and report["missing_crops"] == missing_before + 3
    assert (
        report["samples"]["train"] == sum(r.split == "train" for r in before) - 1
    )  # the bad file is left out


def test_wrong_root_and_format_report_instead_of_crashing(tmp_path, capsys):
    assert main(["check", str(tmp_path / "nothing"), "--format", "ckplus"]) == 1
    assert "does not exist" in capsys.readouterr().out
    (tmp_path / "empty").mkdir()
    assert main(["check", str(tmp_path / "empty"), "--format", "affwild2"]) == 1
    assert "no EXPR_Recognition_Challenge/" in capsys.readouterr().out


def test_manifest_missing_file_and_silent_video_are_problems(tmp_path, capsys):
    write_video(tmp_path / "mute.avi", np.zeros((3, 16, 16, 3), np.uint8), 5.0, audio=None)
    (tmp_path / "face.png").write_bytes(b"")
    (tmp_path / "manifest.csv").write_text(
        "sample_id,frames,audio,label,split,subject,domain\n"
        "a,face.png,,0,train,,\n"
        "b,mute.avi,mute.avi,1,train,,\n"
        "c,gone.png,,2,val,,\n"
        "d,face.png,,sleepy,val,,\n"
    )
    assert main(["check", str(tmp_path), "--format", "manifest"]) == 1
    out = capsys.readouterr().out
    assert f"{tmp_path / 'manifest.csv'}:4: c: missing" in out
    assert f"{tmp_path / 'manifest.csv'}:5: unknown label 'sleepy'" in out
    assert f"videos without audio (1):\n  {tmp_path / 'mute.avi'}" in out
    report = check_dataset("manifest", tmp_path)
    assert report["missing_files"] == 1 and report["counts"] == {"train": {"Neutral": 1, "Anger": 1}}


def _damaged_media(folder: Path) -> Path:
    """A manifest of a good face, a good clip with sound, and the damage issue 29 names: a 0-byte PNG, a
    text file named .png, a JPEG cut to a third, an AVI cut in half."""
    from PIL import Image

    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(folder / "good.png")
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(folder / "whole.jpg")
    (folder / "cut.jpg").write_bytes(
        (folder / "whole.jpg").read_bytes()[: (folder / "whole.jpg").stat().st_size // 3]
    )
    (folder / "empty.png").write_bytes(b"")
    (folder / "text.png").write_text("not a picture\n")
    frames = rng.integers(0, 255, (40, 32, 32, 3), dtype=np.uint8)
    sound = (0.2 * np.sin(np.linspace(0, 800, 16000 * 4))).astype(np.float32)
    write_video(folder / "good.avi", frames, 10.0, audio=sound)
    whole = (folder / "good.avi").read_bytes()
    (folder / "half.avi").write_bytes(whole[: len(whole) // 2])
    rows = [
        "sample_id,frames,audio,label,split,subject,domain",
        "face,good.png,,happy,train,p1,",
        "clip,good.avi,good.avi,sad,val,p2,",
    ]
    (folder / "manifest.csv").write_text("\n".join(rows) + "\n")
    damaged = ["empty,empty.png,,happy,train,p3,", "text,text.png,,sad,train,p4,"]
    damaged += ["cut,cut.jpg,,anger,train,p5,", "half,half.avi,half.avi,fear,val,p6,"]
    (folder / "damaged.csv").write_text("\n".join(rows + damaged) + "\n")
    return folder


def test_check_opens_every_media_file(tmp_path, capsys):
    folder = _damaged_media(tmp_path / "set")
    clean = check_dataset("manifest", folder / "manifest.csv", deep=True)
    assert clean["ok"] and clean["media_files"] == {"image": 1, "video": 1, "audio": 1}
    quick = check_dataset("manifest", folder / "damaged.csv")
    named = {m.split(": ", 1)[0]: m for m in quick["unreadable_media"]}
    assert {str(folder / n) for n in ("empty.png", "text.png", "cut.jpg")} <= set(named)
    assert str(folder / "good.png") not in named and str(folder / "good.avi") not in named
    assert not quick["ok"] and any("unreadable media files" in p for p in quick["problems"])
    assert main(["check", str(folder / "damaged.csv"), "--format", "manifest", "--deep"]) == 1
    printed = capsys.readouterr().out
    assert f"{folder / 'half.avi'}: " in printed and "OK: no problems found" not in printed
    assert f"{folder / 'cut.jpg'}: cannot decode image" in printed
