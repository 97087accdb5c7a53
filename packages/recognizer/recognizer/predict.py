"""``recognizer predict``: with ``--video``, predictions on recordings of one's own
(recognizer/predict_video.py); otherwise an ABAW test submission (a label for every frame of every track
of a split) from a checkpoint, with its fusion (m, n) and smoothing window; ``--probs`` adds the per-frame
probabilities.

Format (docs/datasets.md, "Test submission"): the header, then ``<track>/<frame:05d>.jpg,<label 0-7>`` for
every frame 1..N of every track; ``recognizer validate-submission`` (recognizer/submission.py) checks one.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from expr_common.atomic import write_text
from expr_common.data.affwild2 import TEST_LIST
from expr_common.errors import DataError
from expr_common.labels import NUM_CLASSES, SUBMISSION_HEADER
from expr_common.outputs import check_output_file
from expr_common.paths import cli_path
from expr_common.subcommands import positive_int
from recognizer.submission import read_video_list


def fill_frames(n_frames: int, frames: np.ndarray, prob: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """Per-frame probabilities ``[n_frames, C]`` from those of the observed ``frames`` (sorted, 0-based):
    every other frame takes its nearest observed frame in time (the earlier one on a tie), and a track
    with no observed frame at all takes ``fallback`` (the split's mean), so no frame is ever left out."""
    if len(frames) == 0:
        return np.repeat(np.asarray(fallback, np.float64)[None], n_frames, axis=0)
    everyone = np.arange(n_frames)
    right = np.clip(np.searchsorted(frames, everyone), 0, len(frames) - 1)
    left = np.clip(right - 1, 0, len(frames) - 1)
    nearest = np.where(np.abs(frames[left] - everyone) <= np.abs(frames[right] - everyone), left, right)
    return np.asarray(prob, np.float64)[nearest]


def predict_tracks(
    checkpoint: str | Path,
    *,
    data: str | Path | None = None,
    split: str = "test",
    source: str = "affwild2",
    batch_size: int = 64,
    accelerator=None,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Track -> (probabilities ``[N, C]``, filled ``[N]`` bool) for every frame of every track of ``split``
    in submission order, with the checkpoint's fusion (m, n) and smoothing window; ``{}`` on non-main
    processes. N is the reader's frame count, frames without a crop included."""
    from accelerate import Accelerator

    from expr_common.data.config import load_data_config
    from expr_common.data.dataset import CachedClips, make_loader
    from expr_common.data.prepare import prepare_cached
    from expr_common.data.readers import read_dataset
    from expr_common.data.roots import dataset_root
    from expr_common.paths import resolve_path
    from recognizer.evaluation import frames_from_windows, predict_windows
    from recognizer.inference import load_model

    accelerator = accelerator or Accelerator()
    model, cfg, state = load_model(checkpoint)
    data_path, overrides = (data, []) if data else (cfg.data, cfg.data_overrides)
    data_cfg = load_data_config(resolve_path(data_path), overrides)
    configured = {s.name: s for s in data_cfg.sources}
    if source not in configured:
        raise DataError(f"no source {source!r} in the data config; it has {', '.join(configured)}")
    root = dataset_root(configured[source].root)
    refs = read_dataset(configured[source].format, root, splits=(split,)).refs
    refs = [r for r in refs if r.split == split and r.frame_paths is not None]
    listed = root / TEST_LIST
    if split == "test" and listed.is_file():  # the reader yields test tracks in the list's order
        missing = sorted(set(read_video_list(listed)) - {r.sample_id for r in refs})
        if missing:  # a submission without them would be rejected: say so now, not at upload time
            raise DataError(f"tracks of {listed} without frames or crop folder: {', '.join(missing)}")
    else:
        refs.sort(key=lambda r: r.sample_id)
    if not refs:
        raise DataError(f"source {source!r} ({root}) has no {split} tracks with frames")

    cache = prepare_cached(data_cfg, accelerator).path
    dataset = CachedClips(cache, split=split, source=source)
    if len(dataset) == 0:
        raise DataError(f"split {split!r} of {cache} has no samples from source {source!r}")
    loader = accelerator.prepare(make_loader(dataset, batch_size, workers=cfg.train.workers))
    preds = predict_windows(accelerator.prepare(model), loader, accelerator)
    if not accelerator.is_main_process:
        return {}
    table = frames_from_windows(dataset, preds)
    selection = state.get("selection") or {"m": cfg.model.fusion.m, "n": cfg.model.fusion.n}
    m, n, window = selection.get("m"), selection.get("n"), int(selection.get("window") or 1)
    prob = table.smoothed(table.prob if m is None or n is None else table.fused(m, n), window)
    fallback = prob.mean(axis=0) if len(prob) else np.full(NUM_CLASSES, 1.0 / NUM_CLASSES)

    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for ref in refs:
        n_frames = len(ref.frame_paths)
        rows = np.flatnonzero((table.ref_id == ref.sample_id) & (table.frame < n_frames))
        # A covered frame without a crop only saw a neighbour's pixels (prepare substitutes them), so it
        # is not evidence of its own: it takes its nearest frame that has a crop, like uncovered frames.
        has_crop = np.array([ref.frame_paths[f] is not None for f in table.frame[rows]], dtype=bool)
        rows = rows[has_crop] if has_crop.any() else rows
        observed = np.zeros(n_frames, bool)
        observed[table.frame[rows]] = True
        out[ref.sample_id] = (fill_frames(n_frames, table.frame[rows], prob[rows], fallback), ~observed)
    return out


def write_submission(tracks: dict[str, tuple[np.ndarray, np.ndarray]], path: str | Path) -> Path:
    """The ABAW file: the header, then ``<track>/<frame:05d>.jpg,<argmax>`` for frames 1..N of each track,
    tracks in the order of ``tracks``."""
    lines = [SUBMISSION_HEADER]
    for track, (prob, _) in tracks.items():
        lines.extend(f"{track}/{i:05d}.jpg,{label}" for i, label in enumerate(prob.argmax(axis=1), start=1))
    return write_text(path, "\n".join(lines) + "\n")  # an interrupted run leaves no half file


def write_probabilities(tracks: dict[str, tuple[np.ndarray, np.ndarray]], path: str | Path) -> Path:
    """Per-frame probabilities in the submission's columns, plus ``filled`` (1: the frame had no crop or no
    window and took its nearest observed frame's probabilities)."""
    lines = [f"{SUBMISSION_HEADER},filled"]
    for track, (prob, filled) in tracks.items():
        for i, (row, gap) in enumerate(zip(prob, filled), start=1):
            lines.append(f"{track}/{i:05d}.jpg," + ",".join(f"{p:.6f}" for p in row) + f",{int(gap)}")
    return write_text(path, "\n".join(lines) + "\n")  # an interrupted run leaves no half file


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from recognizer import predict_video

    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument("--data", type=cli_path, default=None, help="data config (default: the checkpoint's)")
    parser.add_argument(
        "--out", type=Path, required=True, help="submission file to write (with --video: a folder)"
    )
    predict_video.add_arguments(parser)
    parser.add_argument("--split", default="test", choices=("train", "val", "test"))
    parser.add_argument("--source", default="affwild2", help="data-config source to predict")
    parser.add_argument("--probs", type=Path, default=None, help="also write per-frame probabilities")
    parser.add_argument("--batch-size", type=positive_int, default=64)


def run(args: argparse.Namespace) -> int:
    if args.video:
        from recognizer import predict_video

        return predict_video.run(args)
    if args.checkpoint is None or args.onnx is not None:
        raise DataError("a submission needs --checkpoint (--onnx runs with --video)")
    inputs = (args.checkpoint, args.data)
    check_output_file(args.out, flag="--out", overwrite=args.overwrite, inputs=inputs)
    if args.probs is not None:
        check_output_file(args.probs, flag="--probs", overwrite=args.overwrite, inputs=(*inputs, args.out))
    tracks = predict_tracks(
        args.checkpoint, data=args.data, split=args.split, source=args.source, batch_size=args.batch_size
    )
    if not tracks:  # a non-main process of a multi-process run: the main one writes
        return 0
    write_submission(tracks, args.out)
    if args.probs is not None:
        write_probabilities(tracks, args.probs)
    frames = sum(len(prob) for prob, _ in tracks.values())
    filled = sum(int(gap.sum()) for _, gap in tracks.values())
    print(
        f"{args.out}: {len(tracks)} videos, {frames} frames ({filled} without a crop or a window took "
        "their nearest observed frame's prediction)"
    )
    return 0
