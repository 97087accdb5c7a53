"""Any sample kind is scored (issue 15, part 1): a speech-only manifest (clip-labelled audio, no frames)
and an image-only manifest (single faces) train, select and evaluate end to end, one row per sample; the
macro-F1 of metrics.json is recomputed from predictions.csv."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml
from sklearn.metrics import f1_score

from expr_common.paths import repo_root
from recognizer.cli import main

TINY = repo_root() / "configs" / "recognizer" / "tiny.yaml"


def _manifest(corpus: Path, dataset: str, out: Path, kind: str) -> Path:
    """A manifest of the tiny corpus's AFEW clips as sound only, or its CK+ peak faces as images."""
    rows = list(csv.DictReader((corpus / dataset / "manifest.csv").open()))
    out.mkdir(parents=True)
    with (out / "manifest.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            media = str((corpus / dataset / row["frames"]).resolve())
            row["frames"], row["audio"] = ("", media) if kind == "audio" else (media, "")
            row["domain"] = "other"
            writer.writerow(row)
    return out / "manifest.csv"


def _configs(tmp_path: Path, manifest: Path, modalities: str) -> list[str]:
    data = {
        "name": f"only_{modalities}",
        "sources": [{"name": "only", "format": "manifest", "root": str(manifest), "faces": "crops"}],
        "preprocess": {"frames": 1, "image_size": 48, "window_seconds": 1.0},
        "cache": {"root": str(tmp_path / "cache"), "workers": 1},
    }
    config = tmp_path / "data.yaml"
    config.write_text(yaml.safe_dump(data))
    sets = [f"data={config}", f"model.modalities={modalities}", "train.train_sources=[only]"]
    sets += ["train.val_sources=[only]", "train.epochs=2", "train.batch_size=4"]
    return [item for s in sets for item in ("--set", s)]


@pytest.mark.parametrize(
    ("dataset", "kind", "modalities"),
    [("afew", "audio", "a"), ("ckplus", "image", "v")],
    ids=["speech", "faces"],
)
def test_a_corpus_without_frame_labels_trains_and_evaluates(
    tiny_corpus, tmp_path, capsys, dataset, kind, modalities
):
    manifest = _manifest(tiny_corpus, dataset, tmp_path / "ds", kind)
    sets = _configs(tmp_path, manifest, modalities)
    run = tmp_path / "run"
    assert main(["train", "--config", str(TINY), "--run-dir", str(run), *sets]) == 0
    selection = json.loads((run / "selection.json").read_text())
    assert selection["window"] == 1 and "time axis" in selection["smoothing_skipped"]
    assert (run / "report.md").is_file()

    out = tmp_path / "eval"
    argv = ["evaluate", "--checkpoint", str(run / "checkpoints" / "best.pt"), "--run-dir", str(out)]
    assert main(argv) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    rows = list(csv.DictReader((out / "predictions.csv").open()))
    val = [r for r in csv.DictReader(manifest.open()) if r["split"] == "val"]
    # One row per validation sample (audio: no frame number; an image is its own frame 1).
    assert sorted(r["sample_id"] for r in rows) == sorted(r["sample_id"] for r in val)
    assert {r["frame"] for r in rows} == ({""} if kind == "audio" else {"1"})
    labels, preds = [int(r["label"]) for r in rows], [int(r["pred"]) for r in rows]
    assert metrics["frames"] == len(rows) == len(val)
    assert metrics["macro_f1"] == pytest.approx(f1_score(labels, preds, average="macro"))
    assert (out / "confusion.png").is_file()
