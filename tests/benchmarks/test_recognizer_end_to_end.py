"""The end-to-end throughput benchmark (benchmarks/recognizer_end_to_end.py) on a tiny face manifest: it
trains with the toolkit's command and reads its rates from what the run wrote."""

from __future__ import annotations

import json

import pytest
from realbench_sets import SETS, data_config, write_yaml
from recognizer_end_to_end import end_to_end


def test_end_to_end_rates_come_from_the_run(tiny_bench, tmp_path):
    config = data_config(SETS["sfew"], tiny_bench, tmp_path / "cache")
    config["preprocess"]["image_size"] = 16
    data_yaml = write_yaml(tmp_path / "faces.yaml", config)
    result = end_to_end(data_yaml, "v", epochs=2, work=tmp_path / "work", steps=1)
    rates = result["rates_per_s"]
    assert result["train_samples"] == 36 and result["epochs"] == 2
    # The wall time holds the loop and more (start-up, validation, the selection): never a faster rate.
    assert 0 < rates["end_to_end"] < rates["loop"]
    assert rates["model_only"] > 0 and rates["plain_reference"] > 0
    ratio = rates["model_only"] / rates["end_to_end"]
    assert result["model_only_over_end_to_end"] == pytest.approx(ratio, rel=0.05)  # from unrounded rates
    run = tmp_path / "work" / "runs" / "faces" / "seed0"
    epochs = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert sum("train_clips_per_s" in r for r in epochs) == 2  # the command trained the epochs asked for
