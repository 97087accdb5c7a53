"""The real-data bench's own logic (benchmarks/realbench*.py) on a tiny face manifest written here: its data
config prepares, the plain reference trains and scores on test, and the table's means and std are right.
The bench's data never enters a test."""

from __future__ import annotations

import pytest
from realbench import frames_summary
from realbench_plain import fit_plain
from realbench_sets import SETS, data_config
from realbench_table import build_table, run_record, summarize, text_table

from expr_common.config import from_dict
from expr_common.data.config import DataConfig
from expr_common.data.prepare import prepare


def _metrics(f1: float, acc: float, happy: float | None = 0.5) -> dict:
    return {"macro_f1": f1, "accuracy": acc, "per_class_f1": {"Neutral": f1, "Happiness": happy}}


def test_summary_is_the_mean_and_sample_std_over_seeds():
    runs = [run_record(s, _metrics(f1, 0.5), 10.0, 100) for s, f1 in [(2, 0.3), (0, 0.1), (1, 0.2)]]
    s = summarize(runs)
    assert [r["seed"] for r in s["runs"]] == [0, 1, 2]
    assert s["macro_f1_mean"] == pytest.approx(0.2) and s["macro_f1_std"] == pytest.approx(0.1)
    assert s["per_class_f1_mean"] == {"Neutral": pytest.approx(0.2), "Happiness": 0.5}
    assert s["items_per_s_mean"] == 10.0
    one = summarize([run_record(0, _metrics(0.4, 0.5, None), 2.0, 10)])
    assert one["macro_f1_std"] == 0.0 and "Happiness" not in one["per_class_f1_mean"]
    plain = [run_record(0, _metrics(0.1, 0.5), 20.0, 100)]
    table = build_table({"sfew": {"recognizer": runs, "plain": plain}, "emodb": {"plain": runs}})
    assert table["sets"]["sfew"]["gain"] == pytest.approx(0.2 - 0.1)
    assert "gain" not in table["sets"]["emodb"] and "recognizer" not in table["sets"]["emodb"]
    assert "| sfew | recognizer | 3 | 0.200 +- 0.100 |" in text_table(table)


def test_a_face_set_prepares_and_the_plain_reference_scores_test(tiny_bench, tmp_path):
    config = data_config(SETS["sfew"], tiny_bench, tmp_path / "cache")
    config["preprocess"]["image_size"] = 16
    summary = prepare(from_dict(config, DataConfig, "realbench sfew"))
    result = fit_plain(summary.path, "v", epochs=20, seed=0)
    assert result["metrics"]["frames"] == 12 and result["items"] == 20 * 32  # one batch of 32 per epoch
    assert result["metrics"]["macro_f1"] > 0.8  # the band separates the classes: it must learn them
    record = run_record(0, result["metrics"], result["train_s"], result["items"])
    assert record["items_per_s"] > 0 and set(record["per_class_f1"]) >= {"Neutral", "Anger", "Disgust"}


def test_frames_summary_counts_faces_and_sound(tmp_path):
    folder = tmp_path / "clip"
    folder.mkdir()
    lines = ["frame,time_s,label,has_face,has_audio", "0,0,1,1,1", "1,0.1,1,0,1", "2,0.2,,0,0", "3,0.3,1,1,1"]
    (folder / "frames.csv").write_text("\n".join(lines) + "\n")
    assert frames_summary(tmp_path) == {
        "recordings": {"clip": {"frames": 4, "face_share": 0.5, "audio_share": 0.75}}
    }
