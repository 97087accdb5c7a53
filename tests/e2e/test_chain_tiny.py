"""The whole chain (`make demo`'s `expr-experiment chain`) on the tiny corpus: every step runs as the
command a user would type, and the report's numbers agree with the metric files they came from."""

from __future__ import annotations

import hashlib
import json
import re
import statistics

import pytest

import recognizer.trainer
from expr_common.paths import repo_root
from expr_experiment.cli import main

TINY_CHAIN = str(repo_root() / "configs" / "chain" / "tiny.yaml")


def test_chain_on_tiny_writes_a_report_that_agrees_with_its_sources(
    tiny_corpus, torch_home, tmp_path, capsys, monkeypatch
):
    run = tmp_path / "chain"
    argv = ["chain", "--config", TINY_CHAIN, "--run-dir", str(run)]
    argv += ["--set", f"data_overrides=[cache.root={tmp_path / 'cache'}]"]
    assert main(argv) == 0
    assert f"report written to {run / 'report.md'}" in capsys.readouterr().out
    report = (run / "report.md").read_text()
    numbers = json.loads((run / "report.json").read_text())

    # Arms: each seed's number is the run's own selection, and the table shows their mean and std.
    for body in numbers["arms"].values():
        seeds = []
        for file in body["files"]:
            summary = json.loads(open(file).read())
            selection = json.loads(open(file.replace("summary.json", "selection.json")).read())
            assert summary["selection"]["val_macro_f1"] == selection["val_macro_f1"]
            seeds.append(selection["val_macro_f1"])
        assert body["seeds"] == seeds and len(seeds) == 2
        assert body["mean"] == pytest.approx(statistics.fmean(seeds))
        assert body["std"] == pytest.approx(statistics.stdev(seeds))
        assert f"{body['mean']:.3f} +- {body['std']:.3f}" in report
    # The synthetic arm really trained on synthetic samples; the source-real arm on AFEW / CK+ samples; the
    # classic-augmentation arm on copies of its own training windows; the edited arm on the edited clips.
    assert set(numbers["arms"]) == {"baseline", "synthetic", "source_real", "augmented", "edited"}
    arms = ("synthetic", "synthetic"), ("source_real", "source_real"), ("augmented", "augmented")
    for arm, kind in (*arms, ("edited", "synthetic")):
        extra = json.loads((run / "arms" / arm / "seed0" / "extra_data.json").read_text())
        assert extra[0]["name"] == kind and extra[0]["used"] > 0
    # The edited clips, not the sampled ones; cached beside the main cache, not inside the edited folder.
    digest = hashlib.sha256(str(run / "edited" / "manifest.csv").encode()).hexdigest()[:12]
    assert extra[0]["cache"].endswith(f"-synthetic-{digest}") and not (run / "edited" / "cache").exists()

    # Pre-training: a V-only run on AFEW + CK+ only; the fine-tuned cells loaded its visual branch and head
    # and are reported beside the cells from scratch with their own seeds' numbers.
    pre_cfg = (run / "pretrain" / "cell.yaml").read_text()
    assert "modalities: v\n" in pre_cfg and "train_sources: [afew, ckplus]" in pre_cfg
    pre = numbers["pretraining"]
    assert (
        pre["run"]["val_macro_f1"]
        == json.loads((run / "pretrain" / "selection.json").read_text())["val_macro_f1"]
    )
    tuned = pre["rows"]["av"]["pretrained"]
    assert len(tuned["seeds"]) == 2 and all("/pretrained/gcsa_cf_av/seed" in f for f in tuned["files"])
    assert pre["rows"]["av"]["scratch"]["seeds"] == numbers["modalities"]["av"]["seeds"]
    init = json.loads((run / "pretrained" / "gcsa_cf_av" / "seed0" / "init_from.json").read_text())
    assert init["checkpoint"].endswith("pretrain/checkpoints/best.pt")
    assert set(init["loaded_parts"]) == {"visual", "head_v"} and init["parts"]["audio"]["loaded"] == 0
    assert f"{tuned['mean']:.3f} +- {tuned['std']:.3f}" in report
    assert "## Initial pre-training" in report

    # FID and KID: the report's values are the FID report's.
    fid = json.loads((run / "fid" / "report.json").read_text())
    assert numbers["fid"]["fid"] == fid["fid"] and f"| {fid['fid']:.1f} |" in report
    assert "floor" in fid and f"| {fid['floor']['fid']:.1f} |" in report
    assert fid["n"] == 24 and fid["floor"]["n"] <= fid["real"]["available"]
    # Class fidelity: the table rows are fidelity.json's.
    fidelity = json.loads((run / "fidelity" / "fidelity.json").read_text())
    for name, row in fidelity["classes"].items():
        if row["synth_recall"] is not None:
            assert re.search(rf"\| {name} \| {row['synth_recall']:.2f} \| {row['n_synth']} \|", report)
    # The edited arm: real training windows edited by the editing GAN, measured like the sampled faces.
    edited = numbers["edited"]
    edit_fid = json.loads((run / "fid_edit" / "report.json").read_text())
    assert (
        edited["fid"]["fid"] == edit_fid["fid"]
        and f"| edited vs real affwild2 (val) | {edit_fid['fid']:.1f} |" in report
    )
    assert "--real-split val" in (run / "logs" / "fid_edit.log").read_text()
    identity = json.loads((run / "edited" / "edit_report.json").read_text())
    assert (
        edited["identity"]["nearest_own_source"] == identity["nearest_own_source"] and identity["clips"] == 16
    )
    own, compared = identity["nearest_own_source_clips"], identity["compared"]
    assert f"in {own} of {compared} clips ({own / compared:.2%})." in report
    assert "**+ edited**" in numbers["verdict"] and "## Edited real faces" in report
    # The edits' fidelity: also how often the judge names an edit by its source window's class.
    edit_fidelity = json.loads((run / "fidelity_edit" / "fidelity.json").read_text())
    kept = edit_fidelity["overall"]["kept_source_rate"]
    assert 0.0 <= kept <= 1.0 and edited["fidelity"]["overall"]["kept_source_rate"] == kept
    assert f"names {kept:.1%} of the edits by their source window's class" in report
    assert "kind: edit" in (run / "gan_edit" / "config.yaml").read_text()
    # The fusion grid printed is the baseline's selection.
    selection = json.loads((run / "ablation" / "gcsa_cf_av" / "seed0" / "selection.json").read_text())
    assert numbers["fusion"]["grid"] == selection["grid"]
    assert f"Chosen m={selection['m']}, n={selection['n']}" in report
    # The ablation table is the ablation's own.
    ablation = json.loads((run / "ablation" / "ablation.json").read_text())
    v = ablation["cells"]["gcsa_cf"]["av"]
    assert f"{100 * v['mean']:.2f}" in report
    # Figures exist where the report points.
    for target in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report):
        assert (run / target).is_file(), target
    assert "## Did the synthetic data help?" in report

    # A second call finds every step done and only rewrites the report.
    marks = sorted(p.name for p in (run / "done").iterdir())
    assert main(argv) == 0
    assert sorted(p.name for p in (run / "done").iterdir()) == marks
    assert json.loads((run / "report.json").read_text())["arms"] == numbers["arms"]

    # `expr-experiment report` only reads the finished steps: it never trains, and the ablation's files
    # (written by the chain) stay as they are.
    def no_training(*args, **kwargs):
        raise AssertionError("the report trained")

    monkeypatch.setattr(recognizer.trainer, "train", no_training)
    ablation_files = {p: p.stat().st_mtime_ns for p in (run / "ablation").rglob("*") if p.is_file()}
    (run / "report.md").unlink()
    assert main(["report", "--run-dir", str(run)]) == 0
    assert (run / "report.md").read_text().count("## Did the synthetic data help?") == 1
    assert {p: p.stat().st_mtime_ns for p in (run / "ablation").rglob("*") if p.is_file()} == ablation_files
