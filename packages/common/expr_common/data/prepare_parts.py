"""One cache built on n machines: ``expr-data prepare --shard i/n`` on each (a SLURM array, say) builds
part i, every n-th sample reference from the i-th, beside the cache as ``<cache>.part-i-of-n``;
``expr-data prepare --merge`` then joins the n parts into the cache itself.

The merged cache is what one machine would have built: the same samples, in the same order, with the same
config and input hashes (so training reuses it as it is); only the shards are the parts' own files
(hard-linked where the filesystem allows, else copied). A merge refuses parts that are missing, of another
n, or built from another config or other data than what the config lists now.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections import Counter
from pathlib import Path
from typing import Any

from expr_common.data import dataset as cache
from expr_common.data.config import DataConfig
from expr_common.data.roots import dataset_root
from expr_common.data.prepare import (
    PrepareError,
    PrepareSummary,
    _index,
    _lock,
    _read,
    cache_dir,
    config_hash,
    inputs_hash,
    staged,
)
from expr_common.labels import CLASS_NAMES
from expr_common.logs import get_logger

log = get_logger("data")
_PART = re.compile(r"\.part-(\d+)-of-(\d+)$")


def find_parts(out: Path) -> dict[int, tuple[Path, dict[str, Any] | None]]:
    """The part folders beside ``out``: i -> (folder, its index or None when incomplete); all of one n."""
    found: dict[int, tuple[Path, dict[str, Any] | None]] = {}
    counts = set()
    for path in sorted(out.parent.glob(f"{out.name}.part-*-of-*")):
        match = _PART.search(path.name)
        if match is None or not path.is_dir():
            continue
        i, n = int(match.group(1)), int(match.group(2))
        counts.add(n)
        found[i] = (path, cache.read_index(path))
    if len(counts) > 1:
        raise PrepareError(
            f"parts of different counts ({sorted(counts)}) beside {out}: remove the stale ones"
        )
    if not found:
        raise PrepareError(f"no parts beside {out} (expected {out.name}.part-<i>-of-<n> from --shard i/n)")
    n = counts.pop()
    missing = [i for i in range(n) if i not in found or found[i][1] is None]
    if missing:
        raise PrepareError(
            f"{out}: parts {missing} of {n} are missing or unfinished; run --shard i/{n} for them"
        )
    return found


def merge(config: DataConfig, out_dir: str | Path | None = None) -> PrepareSummary:
    """Join the parts of ``config``'s cache into the cache (replacing an older one only once whole)."""
    started = time.perf_counter()
    out = cache_dir(config, out_dir)
    roots = {s.name: str(dataset_root(s.root)) for s in config.sources}
    digest, listing = config_hash(config, roots), _read(config, roots)
    inputs = inputs_hash(listing.refs)
    parts = find_parts(out)
    for i, (path, index) in sorted(parts.items()):
        assert index is not None
        if index.get("config_hash") != digest or index.get("inputs_hash") != inputs:
            raise PrepareError(
                f"{path} was built from another config or other data than {config.name} lists now: "
                "build its part again"
            )
    position = {(s, r.sample_id): k for k, (s, r) in enumerate(listing.refs)}
    with _lock(out):
        with staged(out) as tmp:
            entries, shards, summaries = [], [], []
            for i, (path, index) in sorted(parts.items()):
                assert index is not None
                first = len(shards)
                for k, shard in enumerate(index["shards"]):
                    name = f"shard_p{i:04d}_{k:05d}.pt"
                    _link_or_copy(path / shard["file"], tmp / name)
                    shards.append({**shard, "file": name})
                for order, entry in enumerate(index["samples"]):
                    key = (entry["source"], entry["ref_id"])
                    entries.append(((position[key], i, order), {**entry, "shard": first + entry["shard"]}))
                summaries.append(index["summary"])
            entries.sort(key=lambda item: item[0])  # the single-machine order: by reference, then window
            if not entries:
                raise PrepareError(f"no samples prepared in any of the {len(parts)} parts of {out}")
            summary = _added(summaries, tmp, digest)
            body = _index(config, roots, digest, inputs, summary, [e for _, e in entries], shards)
            cache.write_index(tmp, body)
    summary.path = str(out)
    summary.wall_s = round(time.perf_counter() - started, 3)
    log.info(
        "merged %d parts into %s (%d samples); the part folders can go", len(parts), out, summary.samples
    )
    return summary


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:  # another filesystem, or one without hard links
        shutil.copyfile(source, target)


def _added(summaries: list[dict[str, Any]], path: Path, digest: str) -> PrepareSummary:
    """The parts' summaries added up (counts per source, split, class and reason; face statistics)."""
    total = PrepareSummary(path=str(path), config_hash=digest)
    for name in ("kept", "skipped"):
        merged: dict[str, Counter[str]] = {}
        for s in summaries:
            for source, counts in s[name].items():
                merged.setdefault(source, Counter()).update(counts)
        order = (lambda c: dict(sorted(c.items()))) if name == "kept" else (lambda c: dict(c.most_common()))
        setattr(total, name, {source: order(c) for source, c in merged.items()})
    for name in ("classes", "faces"):
        merged_counts: Counter[str] = Counter()
        for s in summaries:
            merged_counts.update(s[name])
        setattr(total, name, dict(merged_counts))
    total.classes = {n: total.classes[n] for n in (*CLASS_NAMES, "unlabelled") if total.classes.get(n)}
    for name in ("samples", "shards", "frames_replaced", "warnings"):
        setattr(total, name, sum(s[name] for s in summaries))
    return total
