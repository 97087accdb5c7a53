"""The judge's filter of edits (expr_experiment/edit_filter.py, ``edit.filter``): only the rows the judge
names by their own class are kept, in a manifest that reads from any folder; the chain trains + edited on
them and lets another seed's judge measure them."""

from __future__ import annotations

import csv
import json

import pytest

from expr_common.config import load_config
from expr_common.data import manifest
from expr_common.errors import DataError, RunDirError
from expr_common.labels import CLASS_NAMES
from expr_common.paths import repo_root
from expr_experiment.chain import plan
from expr_experiment.chain_config import ChainConfig
from expr_experiment.edit_filter import FILTER_JSON, check_keep_dir, keep_recognised
from expr_experiment.fidelity_summary import Scored

TINY = repo_root() / "configs" / "chain" / "tiny.yaml"


def _edits(folder):
    rows = [
        {"sample_id": f"e{i}", "frames": f"{CLASS_NAMES[c]}/e{i}.png", "audio": "", "label": CLASS_NAMES[c],
         "split": "train", "subject": f"s{i}", "domain": "synthetic", "source_class": "Neutral"}
        for i, c in enumerate([4, 4, 3, 3, 3])
    ]  # fmt: skip
    return manifest.write(folder / "manifest.csv", rows, extra_columns=["source_class"])


def test_only_rows_named_by_their_class_are_kept_with_absolute_paths(tmp_path):
    edits = _edits(tmp_path / "edited")
    # e0 Happiness recognised; e1 not; e2 Fear recognised; e3 two samples, one wrong; e4 never scored
    scored = Scored(labels=[4, 4, 3, 3, 3], preds=[4, 0, 3, 3, 1], ids=["e0", "e1", "e2", "e3", "e3"])
    summary = keep_recognised(edits, scored, tmp_path / "kept")
    with open(tmp_path / "kept" / "manifest.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["sample_id"] for r in rows] == ["e0", "e2"]
    assert rows[0]["frames"] == str(tmp_path / "edited" / "Happiness" / "e0.png")
    assert rows[0]["source_class"] == "Neutral"  # extra columns travel
    assert summary["per_class"]["Happiness"] == {"made": 2, "scored": 2, "kept": 1}
    assert summary["per_class"]["Fear"] == {"made": 3, "scored": 2, "kept": 1}
    assert json.loads((tmp_path / "kept" / FILTER_JSON).read_text())["kept"] == 2
    check_keep_dir(tmp_path / "kept")  # an earlier filter's folder may be written again
    with pytest.raises(RunDirError, match="holds other files"):
        check_keep_dir(tmp_path / "edited")
    with pytest.raises(DataError, match="named none of its 5 samples"):
        keep_recognised(edits, Scored(labels=[4], preds=[0], ids=["e0"]), tmp_path / "none")


def test_with_the_filter_the_edited_arm_trains_on_the_kept_edits(tmp_path):
    cfg = load_config(TINY, ChainConfig, ["edit.filter=true"])
    tasks = {t.name: t for t in plan(cfg, tmp_path)}
    fidelity = " ".join(tasks["fidelity_edit"].commands[0])
    assert f"--keep-recognised {tmp_path / 'edited_kept'}" in fidelity
    arm = tasks["arms/edited/seed0"]
    assert arm.deps == ("fidelity_edit",) and f"--synthetic {tmp_path / 'edited_kept'}" in " ".join(
        arm.commands[0]
    )
    kept = tasks["fidelity_kept"]
    assert "ablation/gcsa_cf_av/seed1" in kept.deps and "seed1/checkpoints/best.pt" in " ".join(
        kept.commands[0]
    )
    plain = {t.name: t for t in plan(load_config(TINY, ChainConfig), tmp_path)}
    assert "fidelity_kept" not in plain and plain["arms/edited/seed0"].deps == ("edit",)


def test_edit_and_sample_counts_per_class_reach_generate(tmp_path):
    cfg = load_config(TINY, ChainConfig, ["edit.fill_to_max=false", "edit.counts={Disgust: 62, Fear: 31}"])
    tasks = {t.name: t for t in plan(cfg, tmp_path)}
    assert "--counts Disgust=62,Fear=31" in " ".join(tasks["edit"].commands[0])
    with pytest.raises(ValueError, match="generate: give counts or fill_to_max"):
        load_config(TINY, ChainConfig, ["generate.fill_to_max=true", "generate.counts={Fear: 3}"])


def test_a_procedural_target_is_never_scored_on_its_unlabelled_test_split():
    with pytest.raises(ValueError, match="Aff-Wild2-style test split is unlabelled"):
        load_config(TINY, ChainConfig, ["score_split=test"])
    with pytest.raises(ValueError, match="modality"):
        load_config(TINY, ChainConfig, ["modality=a"])  # the GAN's faces need a visual branch
