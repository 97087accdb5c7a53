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
