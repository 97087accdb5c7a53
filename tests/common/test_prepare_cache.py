"""The cache: written, reused, rebuilt when its config changes, atomic when a run fails, and the CLI."""

from __future__ import annotations

import contextlib
import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from expr_common import cli
from expr_common.config import from_dict
from expr_common.data import dataset as cache
from expr_common.data import prepare as prepare_module
from expr_common.data.config import DataConfig, config_hash, load_data_config
from expr_common.data.prepare import PrepareError, prepare, prepare_cached

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "data"


def image_manifest(root: Path, n: int = 5) -> Path:
    """A manifest of one-image clips (fast to prepare), labels 0..n-1."""
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        Image.fromarray(np.full((24, 24, 3), 20 * i, np.uint8)).save(root / f"{i}.png")
        rows.append((f"s{i}", f"{i}.png", "", str(i % 8), "train", f"p{i}", "other"))
    with (root / "manifest.csv").open("w", newline="") as handle:
        csv.writer(handle).writerows(
            [("sample_id", "frames", "audio", "label", "split", "subject", "domain"), *rows]
        )
    return root


def small_config(root: Path, **preprocess) -> DataConfig:
    data = {
        "name": "t",
        "sources": [{"name": "m", "format": "manifest", "root": str(root), "faces": "crops"}],
        "preprocess": {"frames": 2, "image_size": 16, "window_seconds": 0.5, "n_mels": 16, **preprocess},
        "cache": {"shard_size": 2, "workers": 1},
    }
    return from_dict(data, DataConfig)


def test_cache_is_written_then_reused(tmp_path):
    config = small_config(image_manifest(tmp_path / "ds"))
    first = prepare(config, tmp_path / "cache")
    assert not first.reused and first.samples == 5 and first.shards == 3  # shard_size 2
    index = json.loads((tmp_path / "cache" / "index.json").read_text())
    assert index["config_hash"] == first.config_hash == config_hash(config, index["roots"])
    assert [e["shard"] for e in index["samples"]] == [0, 0, 1, 1, 2]
    assert [e["offset"] for e in index["samples"]] == [0, 1, 0, 1, 0]
    assert {
        "id",
        "source",
        "domain",
        "split",
        "subject",
        "label",
        "has_audio",
        "has_video",
        "frames",
        "span",
    } <= set(index["samples"][0])
    stamps = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "cache").iterdir()}
    config.augment.freq_masks = 3  # training-time only: the cache stays valid
    config.cache.workers = 2
    again = prepare(config, tmp_path / "cache")
    assert again.reused and again.samples == 5 and again.config_hash == first.config_hash
    assert stamps == {p.name: p.stat().st_mtime_ns for p in (tmp_path / "cache").iterdir()}
    forced = prepare(config, tmp_path / "cache", force=True)  # the data changed, the config did not
    assert not forced.reused and forced.config_hash == first.config_hash


def test_cache_is_rebuilt_when_it_is_stale(tmp_path):
    root = image_manifest(tmp_path / "ds")
    out = tmp_path / "cache"
    first = prepare(small_config(root), out)
    changed = prepare(small_config(root, frames=3), out)
    assert not changed.reused and changed.config_hash != first.config_hash
    assert cache.CachedClips(out)[0]["video"].shape == (3, 3, 16, 16)
    (out / "index.json").write_text("{ torn")  # corrupt index
    assert not prepare(small_config(root, frames=3), out).reused
    (out / "shard_00001.pt").unlink()  # missing shard
    assert not prepare(small_config(root, frames=3), out).reused
    options = small_config(root, frames=3)
    options.sources[0].options = {"check_audio": True}  # reader options are part of the hash
    assert not prepare(options, out).reused
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".cache.")) == [".cache.lock"]


def test_a_failure_mid_prepare_leaves_no_valid_looking_cache(tmp_path, monkeypatch):
    root = image_manifest(tmp_path / "ds")
    out = tmp_path / "cache"
    real_flush = cache.ShardWriter.flush

    def flush_then_die(self):
        real_flush(self)
        if len(self.shards) == 2:
            raise KeyboardInterrupt("interrupted after two shards")

    monkeypatch.setattr(cache.ShardWriter, "flush", flush_then_die)
    with pytest.raises(KeyboardInterrupt):
        prepare(small_config(root), out)
    assert not out.exists() and cache.read_index(out) is None
    assert [p.name for p in tmp_path.iterdir() if ".tmp" in p.name] == []  # the partial build is removed

    monkeypatch.setattr(cache.ShardWriter, "flush", real_flush)
    good = prepare(small_config(root), out)
    monkeypatch.setattr(cache.ShardWriter, "flush", flush_then_die)
    with pytest.raises(KeyboardInterrupt):
        prepare(small_config(root, frames=3), out)
    # The previous cache is untouched and still says which config made it, so it is not taken for frames=3.
    assert cache.read_index(out)["config_hash"] == good.config_hash
    monkeypatch.setattr(cache.ShardWriter, "flush", real_flush)
    assert not prepare(small_config(root, frames=3), out).reused


def test_a_folder_that_is_not_a_cache_is_never_replaced(tmp_path):
    out = tmp_path / "precious"
    out.mkdir()
    (out / "thesis.tex").write_text("years of work")
    with pytest.raises(PrepareError, match="not a cache folder"):
        prepare(small_config(image_manifest(tmp_path / "ds")), out)
    assert (out / "thesis.tex").exists()


def test_prepare_cached_builds_on_the_main_process_first(tmp_path):
    entered = []

    class FakeAccelerator:
        @contextlib.contextmanager
        def main_process_first(self):
            entered.append("in")
            yield
            entered.append("out")

    config = small_config(image_manifest(tmp_path / "ds"))
    config.cache.root = str(tmp_path / "cache")
    summary = prepare_cached(config, FakeAccelerator())
    assert entered == ["in", "out"] and summary.samples == 5 and Path(summary.path) == tmp_path / "cache"
    assert prepare_cached(config).reused


def test_expr_data_prepare_end_to_end_on_the_tiny_corpus(tiny_corpus, tmp_path, capsys):
    out = tmp_path / "cache"
    argv = ["prepare", "--config", str(CONFIGS / "synthetic_tiny.yaml"), "--out", str(out), "--workers", "2"]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert "prepared" in printed and "kept affwild2" in printed and "kept afew" in printed
    assert "skipped ckplus" in printed and "unlabelled sequence" in printed  # the readers' counters, merged
    assert "fell back to a centre crop" in printed
    index = cache.read_index(out)
    config = load_data_config(CONFIGS / "synthetic_tiny.yaml")
    assert index["config_hash"] == config_hash(config, index["roots"])
    sources = {e["source"] for e in index["samples"]}
    assert sources == {"affwild2", "afew", "ckplus"}
    assert len({e["id"] for e in index["samples"]}) == len(index["samples"])
    assert cli.main([*argv, "--set", "augment.freq_masks=2"]) == 0
    assert "reused" in capsys.readouterr().out


def test_expr_data_prepare_reports_a_missing_dataset_root(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text("sources:\n  - {name: a, format: afew, root: /nonexistent/AFEW}\n")
    assert cli.main(["prepare", "--config", str(config), "--out", str(tmp_path / "c")]) == 2
    assert "/nonexistent/AFEW" in capsys.readouterr().err


def test_the_summary_names_what_was_kept_and_skipped(tmp_path, monkeypatch):
    seen: list[str] = []
    monkeypatch.setattr(prepare_module.log, "warning", lambda message, *args: seen.append(message))
    root = image_manifest(tmp_path / "ds")
    (root / "3.png").write_bytes(b"garbage")
    summary = prepare(small_config(root), tmp_path / "cache")
    assert summary.samples == 4 and summary.skipped["m"]["clip without readable frame"] == 1
    assert any("3.png" in message for message in seen)
    text = summary.format()
    assert "kept m: 4 train" in text and "1 clip without readable frame" in text
