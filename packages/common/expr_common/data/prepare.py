"""``expr-data prepare``: decode every sample reference once into the cache that training reads.

Per sample: K face crops at equal time intervals (uint8 ``[K, 3, S, S]``), the log-mel of the same window
(float16 ``[1, F, T]``), labels and masks. The cache layout (shards + ``index.json``) is defined in
:mod:`expr_common.data.dataset`, which reads it. A cache whose recorded hash matches the config is reused;
anything else is rebuilt in a temporary folder renamed into place at the end, so an interrupted run
never leaves a cache that looks valid. Bad media never stops a run: the sample (or frame) is skipped,
counted by reason and reported in the closing summary.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import multiprocessing
import os
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import torch

from expr_common.config import to_dict
from expr_common.data import dataset as cache
from expr_common.data.config import DataConfig, PreprocessConfig, config_hash
from expr_common.data.faces import FaceStats, needs_detection
from expr_common.data.frames import RefResult, process_ref
from expr_common.data.refs import SampleRef
from expr_common.data.roots import dataset_root
from expr_common.errors import ExprError, MissingDataError
from expr_common.labels import CLASS_NAMES, UNLABELLED
from expr_common.logs import get_logger, progress
from expr_common.paths import resolve_data_path, resolve_path

log = get_logger("data")
_SHOWN_WARNINGS = 10  # the rest are counted in the summary


class PrepareError(ExprError, ValueError):
    """Nothing usable came out of the configured sources; the message says what was skipped and why."""


@dataclass
class PrepareSummary:
    """What a prepare run kept and skipped; also stored in ``index.json``."""

    path: str
    config_hash: str
    reused: bool = False
    samples: int = 0
    shards: int = 0
    kept: dict[str, dict[str, int]] = field(default_factory=dict)  # source -> split -> samples
    classes: dict[str, int] = field(default_factory=dict)  # class name (or "unlabelled") -> samples
    skipped: dict[str, dict[str, int]] = field(default_factory=dict)  # source -> reason -> count
    faces: dict[str, int] = field(default_factory=dict)  # FaceStats fields
    frames_replaced: int = 0
    warnings: int = 0
    wall_s: float = 0.0

    def format(self) -> str:
        verb = "reused" if self.reused else "prepared"
        lines = [
            f"cache {self.path} ({verb}, config {self.config_hash}): {self.samples} samples in "
            f"{self.shards} shards, {self.wall_s:.1f} s"
        ]
        for source, splits in self.kept.items():
            lines.append(f"  kept {source}: " + ", ".join(f"{n} {s}" for s, n in splits.items()))
        lines.append("  classes: " + ", ".join(f"{name} {n}" for name, n in self.classes.items()))
        for source, reasons in self.skipped.items():
            if reasons:
                lines.append(f"  skipped {source}: " + ", ".join(f"{n} {r}" for r, n in reasons.items()))
        f = self.faces
        if f.get("clips_detected"):
            lines.append(
                f"  faces: {f['frames_without_detection']} of {f['frames_detected']} detector frames had no "
                "detection of their own (the nearest one in the clip was used); "
                f"{f['clips_centre_crop']} of {f['clips_detected']} clips fell back to a centre crop"
            )
        if self.frames_replaced:
            lines.append(f"  {self.frames_replaced} sampled frames without an image replaced by a neighbour")
        if self.warnings:
            lines.append(f"  {self.warnings} warnings (the first {_SHOWN_WARNINGS} were logged)")
        return "\n".join(lines)


def _init_worker() -> None:
    # One thread per process: the pool is the parallelism; nested OpenMP/OpenCV threads only contend.
    torch.set_num_threads(1)
    cv2.setNumThreads(1)


def _run(job: tuple[SampleRef, PreprocessConfig, bool]) -> RefResult:
    return process_ref(*job)


def _results(jobs: list, workers: int) -> Iterator[RefResult]:
    if workers <= 1 or len(jobs) <= 1:
        yield from map(_run, jobs)
        return
    # forkserver, not fork: a child forked from a process whose OpenMP pool has run (any torch op, e.g.
    # a test or a notebook cell before) can hang in torch.set_num_threads. The server is a fresh process
    # that imports this module once; workers fork from it cheaply. imap keeps the refs' order, so the
    # cache is the same whatever the worker count.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    with context.Pool(workers, initializer=_init_worker) as pool:
        yield from pool.imap(_run, jobs, chunksize=1)


@contextlib.contextmanager
def _lock(out: Path) -> Iterator[None]:
    """Concurrent prepares of one cache (several launches, tests) build it once; the rest then reuse it."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.parent / f".{out.name}.lock", "a") as handle:  # "a": taking the lock changes no file
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def cache_dir(config: DataConfig, out_dir: str | Path | None = None) -> Path:
    return resolve_path(out_dir if out_dir is not None else config.cache.root)


def prepare(
    config: DataConfig,
    out_dir: str | Path | None = None,
    *,
    workers: int | None = None,
    force: bool = False,
    part: tuple[int, int] | None = None,
) -> PrepareSummary:
    """Build (or reuse) the cache of ``config`` in ``out_dir`` (default ``config.cache.root``). The cache is
    reused only when both hashes match: the config's (with the resolved dataset roots) and the inputs'
    (every sample reference the readers list, their labels, and the size and modification time of every
    media file they name), so an edited annotation, manifest or image rebuilds it. ``force`` rebuilds
    anyway. ``part=(i, n)`` builds only every n-th reference from the i-th, into ``<out>.part-i-of-n`` (a
    cache of its own; :mod:`expr_common.data.prepare_parts` joins the n parts into ``out``)."""
    started = time.perf_counter()
    out = cache_dir(config, out_dir)
    roots = {s.name: str(dataset_root(s.root)) for s in config.sources}
    digest = config_hash(config, roots)
    listing = _read(config, roots)
    inputs = inputs_hash(listing.refs)  # of the whole listing, also for a part: the parts must agree
    if part is not None:
        listing, out = listing.part(*part), part_dir(out, *part)
    with _lock(out):
        index = cache.read_index(out)
        if index is not None and not force:
            same = index.get("config_hash") == digest, index.get("inputs_hash") == inputs
            if all(same) and index.get("part", {}).get("n") == (part[1] if part else None):
                summary = PrepareSummary(**{**index["summary"], "reused": True, "path": str(out)})
                summary.wall_s = round(time.perf_counter() - started, 3)
                log.info("cache %s is up to date (config %s, inputs %s); reused", out, digest, inputs)
                return summary
            changed = " and ".join(w for w, s in zip(("the config", "the data"), same) if not s)
            log.info("cache %s is stale (%s changed since it was built); rebuilding", out, changed)
        with staged(out) as tmp:
            summary = _build(
                config, tmp, roots, listing, workers or config.cache.workers, digest, part is not None
            )
            body = _index(config, roots, digest, inputs, summary, listing.entries, listing.shards)
            if part is not None:
                body["part"] = {
                    "i": part[0],
                    "n": part[1],
                    "refs": [[s, r.sample_id] for s, r in listing.refs],
                }
            cache.write_index(tmp, body)
    summary.path = str(out)
    summary.wall_s = round(time.perf_counter() - started, 3)
    return summary


@contextlib.contextmanager
def staged(out: Path) -> Iterator[Path]:
    """A fresh temporary folder beside the cache ``out`` to build into; on a clean exit it takes the place
    of ``out`` (the stale cache goes only once the new one is whole, and a crash between the two renames
    leaves the old cache aside, never a torn one in place); on an error it is removed. A folder that is
    not a cache is never replaced."""
    if out.exists() and not cache.is_cache_dir(out):
        raise PrepareError(f"{out} exists and is not a cache folder; refusing to replace it")
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        if out.exists():
            out.rename(old)
        tmp.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@dataclass
class _Listing:
    """What the readers listed: (source name, reference) pairs and what each source's reader skipped;
    after the build, the cache's entries and shards."""

    refs: list[tuple[str, SampleRef]]
    skipped: dict[str, Counter[str]]
    entries: list[Any] = field(default_factory=list)
    shards: list[Any] = field(default_factory=list)

    def part(self, i: int, n: int) -> _Listing:
        """Every n-th reference from the i-th; the readers' skip counts go with part 0 alone, so the
        parts' summaries add up to the whole's."""
        if not 0 <= i < n:
            raise PrepareError(f"--shard {i}/{n}: expected 0 <= i < n")
        skipped = self.skipped if i == 0 else {name: Counter() for name in self.skipped}
        return _Listing(self.refs[i::n], skipped)


def part_dir(out: Path, i: int, n: int) -> Path:
    """Where part i of n of the cache ``out`` is built (beside it)."""
    return out.with_name(f"{out.name}.part-{i}-of-{n}")


def _read(config: DataConfig, roots: dict[str, str]) -> _Listing:
    from expr_common.data.readers import read_dataset  # the readers import media probing; only here

    refs, skipped = [], {}
    for source in config.sources:
        splits = tuple(source.splits) if source.splits is not None else None
        result = read_dataset(source.format, roots[source.name], splits=splits, **source.options)
        skipped[source.name] = Counter(result.skipped)
        refs += [(source.name, ref) for ref in result.refs]
    return _Listing(refs, skipped)


def inputs_hash(refs: list[tuple[str, SampleRef]]) -> str:
    """Hash of what a build reads: each reference (ids, labels, split, paths, fps, the file it came from)
    and the size and modification time of every file it names."""
    digest = hashlib.sha256()
    stats: dict[Path, str] = {}

    def stat(path: Path | None) -> str:
        if path is None:
            return "-"
        if path not in stats:
            try:
                st = path.stat()
                stats[path] = f"{st.st_size}:{st.st_mtime_ns}"
            except OSError:
                stats[path] = "missing"
        return f"{path}={stats[path]}"

    for source, ref in refs:
        files = [*(ref.frame_paths or ()), ref.video, ref.audio, Path(ref.source) if ref.source else None]
        row = [source, ref.sample_id, ref.dataset, ref.domain, ref.split, ref.subject, ref.label, ref.fps]
        row += [ref.frame_labels, sorted(ref.meta.items()), [stat(f) for f in files]]
        digest.update(json.dumps(row, default=str).encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()[:16]


def _build(
    config: DataConfig,
    tmp: Path,
    roots: dict[str, str],
    listing: _Listing,
    workers: int,
    digest: str,
    part: bool = False,
) -> PrepareSummary:
    """Decode the listing into shards in ``tmp``; a part may come out empty (the merge checks the whole)."""
    summary = PrepareSummary(path=str(tmp), config_hash=digest)
    jobs, sources, warnings = [], [], []
    skipped = {name: Counter(counts) for name, counts in listing.skipped.items()}
    faces_of = {s.name: s.faces for s in config.sources}
    for source, ref in listing.refs:
        detect = config.preprocess.face_detector != "none" and needs_detection(
            ref.domain, ref.video is not None, faces_of[source]
        )
        jobs.append((ref, config.preprocess, detect))
        sources.append(source)
    faces = FaceStats()
    kept: dict[str, Counter[str]] = {s.name: Counter() for s in config.sources}
    classes: Counter[str] = Counter()
    writer = cache.ShardWriter(tmp, config.cache.shard_size)
    bar = progress(total=len(jobs), desc=f"prepare {config.name}", unit="ref")
    for source, result in zip(sources, _results(jobs, workers)):
        bar.update()
        skipped[source].update(result.skipped)
        faces.add(result.faces)
        summary.frames_replaced += result.frames_replaced
        for message in result.warnings:
            if len(warnings) < _SHOWN_WARNINGS:
                log.warning(message)
            warnings.append(message)
        for sample in result.samples:
            sample["meta"]["source"] = source
            writer.add(sample)
            kept[source][sample["meta"]["split"]] += 1
            classes[CLASS_NAMES[sample["label"]] if sample["label"] != UNLABELLED else "unlabelled"] += 1
    bar.close()
    entries, shards = writer.close()
    summary.kept = {name: dict(sorted(c.items())) for name, c in kept.items()}
    summary.skipped = {name: dict(c.most_common()) for name, c in skipped.items()}
    if not entries and not part:
        raise PrepareError(
            f"no samples prepared from {', '.join(roots.values())}; skipped: {summary.skipped}"
        )
    summary.samples, summary.shards = len(entries), len(shards)
    summary.classes = {n: classes[n] for n in (*CLASS_NAMES, "unlabelled") if classes[n]}
    summary.faces, summary.warnings = asdict(faces), len(warnings)
    listing.entries, listing.shards = entries, shards
    return summary


def _index(
    config: DataConfig,
    roots: dict[str, str],
    digest: str,
    inputs: str,
    summary: PrepareSummary,
    entries: list[Any],
    shards: list[Any],
) -> dict[str, Any]:
    return {
        "config_hash": digest,
        "inputs_hash": inputs,
        "config": to_dict(config),
        "roots": roots,
        "shards": shards,
        "samples": entries,
        "summary": asdict(summary),
    }


def prepare_cached(
    config: DataConfig, accelerator: Any = None, out_dir: str | Path | None = None
) -> PrepareSummary:
    """:func:`prepare` for training scripts: under ``accelerate`` the main process builds the cache while
    the others wait, then they find it valid and reuse it."""
    if accelerator is None:
        return prepare(config, out_dir)
    with accelerator.main_process_first():
        return prepare(config, out_dir)
