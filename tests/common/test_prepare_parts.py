"""A cache prepared in parts on several machines (``--shard i/n``) and merged (``--merge``) equals the cache
one machine builds: the same samples in the same order, the same tensors, the same summary and hashes."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from expr_common.cli import main
from expr_common.data.config import load_data_config
from expr_common.data.dataset import CachedClips
from expr_common.data.prepare import PrepareError, prepare
from expr_common.data.prepare_parts import merge
from expr_common.paths import repo_root

TINY_DATA = repo_root() / "configs" / "data" / "synthetic_tiny.yaml"


def _index(path):
    return json.loads((path / "index.json").read_text())


def test_merged_parts_equal_a_single_build(tiny_corpus, tmp_path, capsys):
    config = load_data_config(TINY_DATA, ["cache.workers=1", "cache.shard_size=16"])
    single = prepare(config, tmp_path / "single")
    out = tmp_path / "merged"
    for i in range(3):  # as three tasks of an array would, through the command line
        argv = ["prepare", "--config", str(TINY_DATA), "--out", str(out), "--shard", f"{i}/3"]
        assert main([*argv, "--set", "cache.workers=1", "--set", "cache.shard_size=16"]) == 0
    assert not out.exists() and sorted(
        p.name for p in tmp_path.iterdir() if p.is_dir() and "part" in p.name
    ) == [
        "merged.part-0-of-3",
        "merged.part-1-of-3",
        "merged.part-2-of-3",
    ]
    parts = [_index(tmp_path / f"merged.part-{i}-of-3")["samples"] for i in range(3)]
    assert all(parts) and sum(len(p) for p in parts) == single.samples  # disjoint, and together all
    merged = merge(config, out)

    a, b = _index(tmp_path / "single"), _index(out)
    strip = lambda entries: [{k: v for k, v in e.items() if k not in ("shard", "offset")} for e in entries]  # noqa: E731
    assert strip(a["samples"]) == strip(b["samples"])
    assert (a["config_hash"], a["inputs_hash"]) == (b["config_hash"], b["inputs_hash"])
    for key in ("samples", "kept", "classes", "skipped", "faces", "frames_replaced"):
        assert getattr(merged, key) == getattr(single, key), key
    one, many = CachedClips(tmp_path / "single"), CachedClips(out)
    for k in range(len(one)):
        x, y = one[k], many[k]
        assert x.keys() == y.keys()
        for name, value in x.items():
            same = torch.equal(value, y[name]) if isinstance(value, torch.Tensor) else value == y[name]
            assert same, (k, name)
    assert prepare(config, out).reused  # training finds the merged cache valid as it is


def test_merge_refuses_missing_or_stale_parts(tiny_corpus, tmp_path):
    config = load_data_config(TINY_DATA, ["cache.workers=1"])
    out = tmp_path / "c"
    with pytest.raises(PrepareError, match="no parts"):
        merge(config, out)
    prepare(config, out, part=(0, 2))
    with pytest.raises(PrepareError, match=r"parts \[1\] of 2 are missing"):
        merge(config, out)
    prepare(config, out, part=(1, 2))
    other = load_data_config(TINY_DATA, ["cache.workers=1", "preprocess.frames=2"])
    with pytest.raises(PrepareError, match="another config"):
        merge(other, out)
    shutil.rmtree(tmp_path / "c.part-1-of-2")
    prepare(config, out, part=(1, 3))
    with pytest.raises(PrepareError, match="different counts"):
        merge(config, out)


def test_a_part_with_nothing_to_build_is_empty_and_the_merge_still_whole(tmp_path):
    from PIL import Image

    root = tmp_path / "ds"
    root.mkdir()
    rows = ["sample_id,frames,audio,label,split,subject,domain"]
    for i in range(2):
        Image.new("RGB", (16, 16), (90 * i, 0, 0)).save(root / f"{i}.png")
        rows.append(f"s{i},{i}.png,,Fear,train,p{i},other")
    (root / "manifest.csv").write_text("\n".join(rows) + "\n")
    data = {
        "name": "two",
        "sources": [{"name": "m", "format": "manifest", "root": str(root), "faces": "crops"}],
    }
    data |= {"preprocess": {"frames": 1, "image_size": 16}, "cache": {"workers": 1}}
    (tmp_path / "two.yaml").write_text(json.dumps(data))
    config = load_data_config(tmp_path / "two.yaml")
    out = tmp_path / "cache"
    summaries = [prepare(config, out, part=(i, 3)) for i in range(3)]  # 2 samples over 3 machines
    assert [s.samples for s in summaries] == [1, 1, 0]
    assert merge(config, out).samples == 2 == prepare(config, tmp_path / "single").samples
