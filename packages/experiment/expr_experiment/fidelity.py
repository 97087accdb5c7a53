"""Class fidelity of synthetic data, judged by a recognizer trained on real target data
(``expr-experiment fidelity``, :mod:`expr_experiment.fidelity_command`).

    expr-experiment fidelity --checkpoint runs/rec/checkpoints/best.pt --synthetic data/gan_fill \\
        --out runs/fidelity

For every class, the rate at which the recognizer's visual branch calls a synthetic sample of that class by
its class (its recall on the synthetic data), beside the same rate on real validation windows of the class.
A synthetic Fear face the recognizer takes for Surprise is a Fear sample in name only; a class whose
synthetic recall sits far below its real recall is one the generator does not render recognisably.

Both sides go through the visual branch alone: synthetic samples have no audio, so the real windows are
also scored with ``has_audio=False``, where the fused output is the visual branch's bit for bit. Synthetic
samples are preprocessed exactly as ``recognizer train`` prepares data (``expr_common.data.frames``): K
frames at equal intervals (a single image repeated K times), the face crop resized to the image size, with
K, the size and the face settings taken from the data config the recognizer was trained with. The unit is
one sample (a window of K frames on the real side, labelled by its majority frame label), not one frame.

It lives in the experiment package, not in ``gan_aug``: it needs both a recognizer checkpoint and the
generator's output, and judges one method package by the other.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from expr_common.accelerator import default_device
from expr_common.atomic import write_json
from expr_common.config import ConfigError
from expr_common.data import dataset as cache_format
from expr_common.data import manifest
from expr_common.data.config import PreprocessConfig, load_data_config
from expr_common.data.dataset import CachedClips, make_loader, normalize_video
from expr_common.data.faces import needs_detection
from expr_common.data.frames import RefResult, process_ref
from expr_common.data.prepare import prepare_cached
from expr_common.errors import ExprError
from expr_common.labels import UNLABELLED, parse_label
from expr_common.logs import get_logger, progress
from expr_common.metrics import plot_confusion
from expr_common.paths import resolve_path
from expr_common.prefetch import chunked, prefetched
from expr_experiment.edit_filter import check_keep_dir, keep_recognised
from expr_experiment.fidelity_summary import Scored, fidelity_report
from expr_experiment.layout import FIDELITY_JSON, REAL_CONFUSION, SYNTH_CONFUSION
from gan_aug.generate_edit import SOURCE_CLASS
from gan_aug.sampling import TRAIN_SPLIT
from recognizer.inference import load_model
from recognizer.outputs import DATA_CONFIG_FILE

FACES = ("auto", "crops", "detect")  # as a data config's `faces` for a source

log = get_logger("experiment.fidelity")


class FidelityError(ExprError, ValueError):
    """Class fidelity cannot be computed as asked (no visual branch, mismatched preprocessing, no data)."""


# ---- the recognizer ------------------------------------------------------------------------------------


def load_recognizer(checkpoint: str | Path, device: torch.device) -> tuple[torch.nn.Module, Any]:
    """The model (eval mode, on ``device``) and its config, rebuilt from the checkpoint alone."""
    model, cfg, _ = load_model(checkpoint)
    if not cfg.model.use_video:
        raise FidelityError(f"{checkpoint}: an audio-only recognizer (modalities 'a') cannot judge faces")
    return model.to(device).eval(), cfg


@torch.inference_mode()
def predict_visual(model: torch.nn.Module, video: torch.Tensor, device: torch.device) -> np.ndarray:
    """Class predictions for uint8 clips ``[B, K, 3, S, S]`` from the fused output with no audio, which is
    the visual branch's (``proportional_fusion`` selects P_v where ``has_audio`` is False)."""
    B = video.shape[0]
    has_video = torch.ones(B, dtype=torch.bool, device=device)
    out = model(normalize_video(video.to(device)), None, has_video, torch.zeros_like(has_video))
    return out["prob"].argmax(dim=1).cpu().numpy()


# ---- preprocessing reference and real data --------------------------------------------------------------


def _shape(pre: PreprocessConfig) -> dict[str, int]:
    return {"frames": pre.frames, "image_size": pre.image_size}


def training_preprocess(cfg: Any, checkpoint: str | Path) -> tuple[PreprocessConfig | None, str]:
    """The preprocessing the recognizer was trained with: its data config (as stored in the checkpoint,
    with its overrides), else the ``data_config.yaml`` the trainer saved in the run folder; (None, why)
    when neither can be read."""
    run_copy = Path(checkpoint).resolve().parent.parent / DATA_CONFIG_FILE
    tried = []
    for path, overrides in ((resolve_path(cfg.data), cfg.data_overrides), (run_copy, [])):
        try:
            return load_data_config(path, overrides).preprocess, str(path)
        except ConfigError as exc:
            tried.append(str(exc))
    return None, "; ".join(tried)


def open_real(
    real: str | Path | None, cfg: Any, split: str, sources: Sequence[str] | None
) -> tuple[CachedClips, dict[str, Any]]:
    """The labelled windows of ``split`` (``sources``; default the checkpoint's validation sources) from a
    prepared cache, a data config (prepared or reused), or by default the checkpoint's own data config."""
    sources = list(sources) if sources else cfg.train.val_sources
    if real is not None and cache_format.read_index(real) is not None:
        cache, origin = Path(real), "cache"
    else:
        path, overrides = (
            (Path(real), []) if real is not None else (resolve_path(cfg.data), cfg.data_overrides)
        )
        cache, origin = Path(prepare_cached(load_data_config(path, overrides)).path), f"data config {path}"
    dataset = CachedClips(cache, split=split, source=sources, labelled_only=True)
    if len(dataset) == 0:
        raise FidelityError(f"{cache} has no labelled {split!r} windows from sources {sources or 'all'}")
    return dataset, {"cache": str(cache), "from": origin, "split": split, "sources": sources}


def score_real(model: torch.nn.Module, dataset: CachedClips, device: torch.device, batch_size: int) -> Scored:
    scored = Scored()
    loader = make_loader(dataset, batch_size, workers=0)
    with progress(total=len(dataset), desc="real windows", unit="clip") as bar:
        for batch in loader:
            scored.labels += batch["label"].tolist()
            scored.preds += predict_visual(model, batch["video"], device).tolist()
            bar.update(len(batch["label"]))
    return scored


# ---- synthetic data -------------------------------------------------------------------------------------


# A chunk of synthetic samples: clips [B, K, 3, S, S] (None: all of the chunk's were skipped), their classes,
# their source classes (UNLABELLED: not an edit), their manifest rows' sample ids ("" from a cache), and how
# many listed samples the chunk covered.
Batch = tuple[torch.Tensor | None, list[int], list[int], list[str], int]


def _synthetic_cache_batches(
    path: Path, pre: PreprocessConfig, batch_size: int, scored: Scored
) -> tuple[int, Iterator[Batch]]:
    dataset = CachedClips(path, labelled_only=True)
    if _shape(dataset.preprocess) != _shape(pre):
        raise FidelityError(
            f"{path} was prepared with {_shape(dataset.preprocess)}, the recognizer with {_shape(pre)}: "
            f"pass the synthetic manifest instead (it is preprocessed here) or prepare it again"
        )
    unlabelled = len(CachedClips(path)) - len(dataset)
    if unlabelled:
        scored.skipped["unlabelled sample"] += unlabelled
    loader = make_loader(dataset, batch_size, workers=0)

    def batches() -> Iterator[Batch]:
        for batch in loader:
            labels = batch["label"].tolist()
            # a cache holds no edits, and no manifest rows to keep
            yield batch["video"], labels, [UNLABELLED] * len(labels), [""] * len(labels), len(labels)

    return len(dataset), batches()


def _process(job: tuple[Any, PreprocessConfig, bool]) -> RefResult:
    return process_ref(*job)


def _source_class(ref: Any, path: Path) -> int:
    """The class of the real window an edit was made from (its ``source_class`` column); else UNLABELLED."""
    name = ref.meta.get(SOURCE_CLASS, "").strip()
    if not name:
        return UNLABELLED
    try:
        return parse_label(name)
    except ValueError as exc:
        raise FidelityError(f"{path}: sample {ref.sample_id}: {SOURCE_CLASS} {name!r}: {exc}") from None


def _synthetic_manifest_batches(
    path: Path, pre: PreprocessConfig, faces: str, batch_size: int, scored: Scored
) -> tuple[int, Iterator[Batch]]:
    refs = manifest.read(path).refs
    jobs = []  # ((ref, preprocessing, detect), source class)
    for ref in refs:
        if ref.label == UNLABELLED or not ref.has_video:
            scored.skipped["unlabelled sample" if ref.has_video else "no frames"] += 1
            continue
        detect = pre.face_detector != "none" and needs_detection(ref.domain, ref.video is not None, faces)
        # Sound plays no part (the visual branch alone is scored): not decoding it saves the time.
        jobs.append(((replace(ref, audio=None), pre, detect), _source_class(ref, path)))

    def decode(chunk: Sequence[tuple[tuple[Any, PreprocessConfig, bool], int]]) -> Batch:
        clips, labels, sources, ids = [], [], [], []
        for job, source in chunk:
            result = _process(job)
            scored.skipped.update(result.skipped)
            for warning in result.warnings[:3]:
                log.warning(warning)
            for sample in result.samples:
                clips.append(sample["video"])
                labels.append(sample["label"])
                sources.append(source)
                ids.append(sample["meta"]["ref_id"])
        return (torch.from_numpy(np.stack(clips)) if clips else None), labels, sources, ids, len(chunk)

    def batches() -> Iterator[Batch]:
        # The next chunk decodes while this one runs.
        for _, batch in prefetched(decode, chunked(jobs, batch_size)):
            yield batch

    return len(jobs), batches()


def score_synthetic(
    model: torch.nn.Module,
    synthetic: str | Path,
    pre: PreprocessConfig,
    device: torch.device,
    *,
    faces: str = "auto",
    batch_size: int = 64,
) -> tuple[Scored, str]:
    """Visual-branch predictions for the labelled samples of a manifest (CSV or its folder: ``gan-aug
    generate`` output), preprocessed here as training would, or of a cache prepared the same way."""
    path, scored = Path(synthetic), Scored()
    if not path.exists():
        raise FidelityError(
            f"{path} does not exist (expected a manifest CSV, its folder, or a prepared cache)"
        )
    if path.is_dir() and cache_format.read_index(path) is not None:
        kind, (total, batches) = "cache", _synthetic_cache_batches(path, pre, batch_size, scored)
    else:
        kind = "manifest"
        total, batches = _synthetic_manifest_batches(path, pre, faces, batch_size, scored)
    with progress(total=total, desc="synthetic samples", unit="clip") as bar:
        for video, labels, sources, ids, listed in batches:
            if video is not None:  # None: every sample of the chunk was skipped (unreadable frames)
                scored.labels += labels
                scored.sources += sources
                scored.ids += ids
                scored.preds += predict_visual(model, video, device).tolist()
            bar.update(listed)
    if not scored.labels:
        raise FidelityError(
            f"{path}: no labelled synthetic sample with frames (skipped: {dict(scored.skipped)})"
        )
    return scored, kind


def run_fidelity(
    checkpoint: str | Path,
    synthetic: str | Path,
    out_dir: str | Path,
    *,
    real: str | Path | None = None,
    split: str = "val",
    real_sources: Sequence[str] | None = None,
    faces: str = "auto",
    batch_size: int = 64,
    device: str | None = None,
    keep: str | Path | None = None,
) -> dict[str, Any]:
    """Score both sides, write ``fidelity.json`` and the two confusion-matrix PNGs into ``out_dir``; with
    ``keep`` also the manifest of the samples the judge names by their class (:mod:`edit_filter`)."""
    if faces not in FACES:
        raise FidelityError(f"--faces {faces!r}: one of {', '.join(FACES)}")
    if keep is not None and Path(synthetic).is_dir() and cache_format.read_index(synthetic) is not None:
        raise FidelityError(f"--keep-recognised needs the manifest of {synthetic}, not a prepared cache")
    if keep is not None:
        check_keep_dir(keep)
    device_ = default_device(device)
    model, cfg = load_recognizer(checkpoint, device_)
    dataset, real_info = open_real(real, cfg, split, real_sources)
    pre, pre_origin = training_preprocess(cfg, checkpoint)
    notes = []
    if pre is None:
        pre = dataset.preprocess
        pre_origin = f"real cache {real_info['cache']}"
        notes.append(
            f"the recognizer's data config cannot be read ({pre_origin}); preprocessing as that cache"
        )
    elif _shape(dataset.preprocess) != _shape(pre):
        raise FidelityError(
            f"the real data ({real_info['cache']}) was prepared with {_shape(dataset.preprocess)}, the "
            f"recognizer trained with {_shape(pre)} ({pre_origin}): give --real data prepared the same way"
        )
    synth, kind = score_synthetic(model, synthetic, pre, device_, faces=faces, batch_size=batch_size)
    real_scored = score_real(model, dataset, device_, batch_size)
    train = None
    if split != TRAIN_SPLIT and any(source != UNLABELLED for source in synth.sources):
        # Edits of training windows: the same recognizer on the real training windows, for reference.
        train_set, _ = open_real(real_info["cache"], cfg, TRAIN_SPLIT, real_info["sources"])
        train = score_real(model, train_set, device_, batch_size)
    report = fidelity_report(synth, real_scored, train)
    report["warnings"] = notes + report["warnings"]
    if keep is not None:
        report["filter"] = keep_recognised(synthetic, synth, keep)
    report["settings"] = {
        "checkpoint": str(checkpoint),
        "synthetic": {"source": str(synthetic), "kind": kind, "skipped": dict(synth.skipped)},
        "real": real_info,
        "preprocess": _shape(pre) | {"from": pre_origin, "faces": faces},
        "branch": "visual: fused output with has_audio=False",
        "unit": "sample (K-frame clip; a real window is labelled by the majority of its frames)",
    }
    out = Path(out_dir)
    write_json(out / FIDELITY_JSON, report)
    overall = report["overall"]
    plot_confusion(
        np.asarray(report["confusion"]["synthetic"]),
        out / SYNTH_CONFUSION,
        f"synthetic: {overall['n_synth']} samples, recognised {overall['synth_accuracy']:.1%}",
    )
    plot_confusion(
        np.asarray(report["confusion"]["real"]),
        out / REAL_CONFUSION,
        f"real {split}: {overall['n_real']} windows, recognised {overall['real_accuracy']:.1%} (visual)",
    )
    return report
