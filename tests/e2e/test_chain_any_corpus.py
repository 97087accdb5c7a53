"""The chain on a user's own data (no procedural preset): an image-only target and a lab source, both given
as manifests written here from the tiny corpus's faces, named in the chain config by one environment
variable. Every step runs on them, and a target without test rows or a source without labels is one line."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from expr_common.config import ConfigError, load_config
from expr_common.data.config import load_data_config
from expr_common.data.readers import read_dataset
from expr_experiment.chain_config import ChainConfig
from expr_experiment.chain_data import check_chain_data
from expr_experiment.cli import main

COLUMNS = ["sample_id", "frames", "audio", "label", "split", "subject", "domain"]


def _wild_rows(corpus: Path) -> list[list]:
    """Every third labelled face of the Aff-Wild2-style videos, one image per row, split by video: the
    training videos train, the validation videos alternate between val and test."""
    rows, held_out = [], 0
    for ref in read_dataset("affwild2", corpus / "affwild2").refs:
        if ref.split == "train":
            split = "train"
        else:
            split, held_out = ("val", "test")[held_out % 2], held_out + 1
        for i, (path, label) in enumerate(zip(ref.frame_paths, ref.frame_labels)):
            if path is not None and label >= 0 and i % 3 == 0:
                rows.append([f"{ref.sample_id}-{i}", str(path), "", label, split, ref.subject, "wild"])
    return rows


def _lab_rows(corpus: Path) -> list[list]:
    """The peak face of every labelled CK+-style sequence: one in four for validation (the pre-training run
    chooses its checkpoint there), the others for training."""
    refs = [ref for ref in read_dataset("ckplus", corpus / "ckplus").refs if ref.label >= 0]
    return [
        [
            ref.sample_id,
            str(ref.frame_paths[-1]),
            "",
            ref.label,
            ("train", "val")[i % 4 == 3],
            ref.subject,
            "lab",
        ]
        for i, ref in enumerate(refs)
    ]


def _write(path: Path, rows: list[list]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([COLUMNS, *rows])
    return path


@pytest.fixture
def own_data(tiny_corpus, tmp_path, monkeypatch):
    """A data config over the two manifests under $EXPR_OWN_BENCH, and the chain config that names it."""
    bench = tmp_path / "bench"
    _write(bench / "wild" / "manifest.csv", _wild_rows(Path(tiny_corpus)))
    _write(bench / "lab" / "manifest.csv", _lab_rows(Path(tiny_corpus)))
    monkeypatch.setenv("EXPR_OWN_BENCH", str(bench))
    data = tmp_path / "data.yaml"
    data.write_text(
        "name: own\nsources:\n"
        "  - {name: wild, format: manifest, root: $EXPR_OWN_BENCH/wild/manifest.csv, faces: crops}\n"
        "  - {name: lab, format: manifest, root: $EXPR_OWN_BENCH/lab/manifest.csv, faces: crops}\n"
        f"preprocess: {{frames: 1, image_size: 32}}\ncache: {{root: {tmp_path / 'cache'}, workers: 1}}\n"
    )
    chain = tmp_path / "chain.yaml"
    chain.write_text(
        f"preset: null\ndata: {data}\ntarget: wild\nsources: [lab]\nmodality: v\n"
        "gan: configs/gan_aug/tiny.yaml\nrecognizer: configs/recognizer/tiny.yaml\n"
        "seeds: 2\nablation_rows: [gcsa_cf]\nablation_modalities: [v]\n"
        "score_split: test\naugmented_arm: true\n"
        "generate: {fill_to_max: false, per_class: 2, clip_len: 1}\n"
        "fid: {n: 16, per_class: false, kid: true, floor: true, allow_small_n: true}\n"
        "pretrain: {modalities: [v]}\n"
        "edit: {enabled: true, gan: configs/gan_aug/tiny.yaml, fill_to_max: false, per_class: 2,\n"
        "       clip_len: 1, gan_overrides: [model.kind=edit, model.edit.width=8, model.edit.res_blocks=1]}\n"
        "jobs: 2\n"
    )
    return {"bench": bench, "data": data, "chain": chain}


def test_the_chain_runs_on_manifests_of_an_image_only_target(own_data, torch_home, tmp_path):
    run = tmp_path / "chain"
    assert main(["chain", "--config", str(own_data["chain"]), "--run-dir", str(run)]) == 0
    numbers = json.loads((run / "report.json").read_text())
    assert set(numbers["arms"]) == {"baseline", "synthetic", "source_real", "augmented", "edited"}
    # Every arm is scored on the target's test split: each seed's number is its best checkpoint's evaluation.
    for body in numbers["arms"].values():
        assert body["split"] == "test" and len(body["seeds"]) == 2
        for file, f1 in zip(body["files"], body["seeds"]):
            metrics = json.loads(Path(file).read_text())
            assert "/scored_test/" in file and metrics["split"] == "test" and metrics["macro_f1"] == f1
    assert "Test macro-F1 on wild" in (run / "report.md").read_text()
    # The baseline is the V cell, trained and validated on the target only; + source-real adds the lab faces.
    cell = (run / "ablation" / "gcsa_cf_v" / "seed0" / "cell.yaml").read_text()
    assert "modalities: v\n" in cell and "train_sources: [wild]" in cell and "val_sources: [wild]" in cell
    extra = json.loads((run / "arms" / "source_real" / "seed0" / "extra_data.json").read_text())
    assert extra[0]["name"] == "source_real" and extra[0]["used"] > 0
    # The GANs learnt both domains and drew (and edited) the target's: one frame per clip.
    gan_cfg = (run / "gan" / "config.yaml").read_text()
    assert "target_domain: wild" in gan_cfg and "domains: [lab, wild]" in gan_cfg
    with open(run / "synthetic" / "manifest.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert rows and all(r["sample_id"].startswith("gan-wild-") and ";" not in r["frames"] for r in rows)
    assert "train_sources: [lab]" in (run / "pretrain" / "cell.yaml").read_text()
    assert "vs real wild (val)" in (run / "report.md").read_text()


def test_a_target_without_test_rows_or_a_source_without_labels_is_one_line(own_data):
    def check() -> None:
        cfg = load_config(own_data["chain"], ChainConfig)
        check_chain_data(cfg, load_data_config(own_data["data"]), "chain.yaml")

    check()  # the fixture's data passes
    wild = own_data["bench"] / "wild" / "manifest.csv"
    with open(wild, encoding="utf-8") as f:
        rows = [r for r in csv.reader(f)][1:]
    _write(wild, [r for r in rows if r[4] != "test"])
    with pytest.raises(
        ConfigError, match=r"^chain.yaml: target wild \(.*manifest.csv\) has no labelled test rows$"
    ):
        check()
    _write(wild, rows)
    lab = own_data["bench"] / "lab" / "manifest.csv"
    with open(lab, encoding="utf-8") as f:
        lab_rows = list(csv.reader(f))[1:]
    _write(lab, [r[:4] + ["train"] + r[5:] for r in lab_rows])
    with pytest.raises(ConfigError, match=r"^chain.yaml: the pre-training run .* val rows of lab, and there"):
        check()
    _write(lab, [r[:3] + [""] + r[4:] for r in lab_rows])
    with pytest.raises(ConfigError, match=r"^chain.yaml: source lab \(.*\) has no labelled training rows$"):
        check()
    cfg = load_config(own_data["chain"], ChainConfig, ["target=faces"])
    with pytest.raises(
        ConfigError, match=r"^chain.yaml: faces not among the sources of .*data.yaml \(wild, lab\)$"
    ):
        check_chain_data(cfg, load_data_config(own_data["data"]), "chain.yaml")
