"""``gan-aug generate --mode edit``: real training windows of a target dataset, edited into chosen classes by
the editing GAN (``model.kind: edit``), as K-frame clips in an ordinary dataset (PNG frames +
``manifest.csv``, ``domain=synthetic``), the layout of :mod:`gan_aug.generate`.

    gan-aug generate --mode edit --checkpoint runs/gan/checkpoints/last.pt \\
        --from configs/data/synthetic_demo.yaml --source affwild2 --fill-to-max --clip-len 8 --out runs/edited

Every frame of a clip is edited to the clip's one target class, so a clip keeps its real motion, face,
background and camera; only the expression moves. Sources are the prepared cache's *training* windows of
``--source`` (never validation or test: the recognizer is scored on those), optionally only those of
``--source-classes``, and never already of the target class. Sample n of class c edits the window that its
own generator, seeded by (seed, c, n), picks: the same arguments give the same bytes. The manifest keeps
the source's subject (its video), and its ``source_sample`` / ``source_class`` columns say what was edited;
``edit_report.json`` says how well the edits kept their people (:class:`IdentityCheck`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from expr_common.atomic import write_json
from expr_common.data import manifest as manifest_csv
from expr_common.data.config import load_data_config
from expr_common.data.dataset import CachedClips, normalize_video
from expr_common.data.prepare import prepare_cached
from expr_common.labels import CLASS_NAMES, parse_label
from expr_common.logs import get_logger, progress
from expr_common.paths import resolve_path
from gan_aug.edit_networks import edit_frames
from gan_aug.generate import (
    GenerateError,
    GenerateRequest,
    GenerateResult,
    _remove_listed,
    _write_sample,
    open_request,
    sample_generator,
    to_uint8,
)
from gan_aug.sampling import TRAIN_SPLIT

SOURCE_CLASS = "source_class"  # the edited window's own class (its name), beside the target class in `label`
SOURCE_COLUMNS = ("source_sample", SOURCE_CLASS)
EDIT_REPORT = "edit_report.json"  # beside the manifest: how well the edits keep their people

log = get_logger("gan.edit")


def parse_source_classes(text: str) -> list[int]:
    """``--source-classes Neutral,Other`` -> class indices; a name that is no class is one line."""
    try:
        return [parse_label(name.strip()) for name in text.split(",") if name.strip()]
    except ValueError as exc:
        raise GenerateError(f"--source-classes {text!r}: {exc}") from None


def source_windows(
    data: str | Path, source: str, classes: list[int] | None, overrides: Sequence[str] = ()
) -> tuple[CachedClips, list[int]]:
    """The training windows of ``source`` in the cache of ``data`` (with ``--set``-style ``overrides``;
    prepared first if needed), and the positions of those that have frames, a label and, with
    ``classes``, one of those labels."""
    cache = prepare_cached(load_data_config(resolve_path(data), list(overrides))).path
    clips = CachedClips(cache, split=TRAIN_SPLIT, source=source)
    kept = [
        i
        for i, e in enumerate(clips.entries)
        if e["has_video"] and e["label"] >= 0 and (classes is None or e["label"] in classes)
    ]
    if not kept:
        which = f" of {', '.join(CLASS_NAMES[c] for c in classes)}" if classes else ""
        raise GenerateError(
            f"--from {data}: source {source!r} has no labelled training windows{which} to edit"
        )
    return clips, kept


def frame_picks(available: int, clip_len: int) -> list[int]:
    """``clip_len`` of a window's ``available`` frames at equal steps (all of them when equal)."""
    if clip_len > available:
        raise GenerateError(f"--clip-len {clip_len}: the cache's windows have {available} frames")
    return np.linspace(0, available - 1, clip_len).round().astype(int).tolist()


@dataclass(frozen=True)
class EditRequest(GenerateRequest):
    """``--mode edit``: the training windows of ``source`` in the data config ``data`` (with ``--from-set``
    style ``data_overrides``), optionally only those of ``source_classes``, edited into other classes."""

    data: str | Path | None = None  # required: the data config whose windows are edited
    data_overrides: tuple[str, ...] = ()
    source: str = "affwild2"
    source_classes: str | None = None  # "Neutral,Other": edit only windows of these classes

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.data is None:
            raise GenerateError("--mode edit needs --from DATA_CONFIG (whose training windows are edited)")


def edit_clips(request: EditRequest) -> GenerateResult:
    """Write the edited clips, ``manifest.csv`` and ``edit_report.json`` into ``request.out_dir``."""
    r, clip_len = request, request.clip_len
    wanted = None if r.source_classes is None else parse_source_classes(r.source_classes)
    out, manifest, G, state, config = open_request(r.checkpoint, r.out_dir, "edit", r.device, r.overwrite)
    clips, kept = source_windows(r.data, r.source, wanted, r.data_overrides)
    domains = config.model.domains
    plan = r.planned(state, G.num_classes, domains, config.target_domain)
    unknown = sorted({clips.entries[i]["domain"] for i in kept} - set(domains))
    if unknown:
        raise GenerateError(f"--from {r.data}: windows of domains {unknown} this GAN was not trained on")
    picks = frame_picks(len(clips.entries[kept[0]]["frames"]), clip_len)
    labels = np.array([clips.entries[i]["label"] for i in kept])
    unsourced = [c for c, n in plan.items() if n and not (labels != c).any()] if r.fill_to_max else []
    plan = {c: (0 if c in unsourced else n) for c, n in plan.items()}  # nothing of another class to edit
    if manifest.exists():  # only once the request is known to be valid
        _remove_listed(out, manifest)
    editor = _Editor(G, clips, picks, domains, out, r.source, r.seed)
    rows: list[dict[str, str]] = []
    bar = progress(total=sum(plan.values()), desc="edit", unit="clip")
    for label, n in plan.items():
        others = np.asarray(kept)[labels != label]
        if n and not len(others):
            raise GenerateError(
                f"no {r.source} training window of another class than {CLASS_NAMES[label]} to edit"
            )
        per_batch = max(1, r.batch_size // clip_len)
        for first in range(0, n, per_batch):
            numbers = range(first, min(n, first + per_batch))
            rows += editor.batch(label, numbers, others)
            bar.update(len(numbers))
    bar.close()
    out.mkdir(parents=True, exist_ok=True)
    manifest_csv.write(manifest, rows, extra_columns=SOURCE_COLUMNS)
    sources = sorted({CLASS_NAMES[int(c)] for c in labels}, key=CLASS_NAMES.index)
    report = {"clips": len(rows), "clip_len": clip_len, "source_classes": sources, **editor.check.report()}
    if unsourced:  # --fill-to-max left them as they are: every source window is of that class already
        report["not_filled"] = [CLASS_NAMES[c] for c in unsourced]
        log.info("--fill-to-max: %s not filled (every source window is of that class)", report["not_filled"])
    write_json(out / EDIT_REPORT, report)
    return GenerateResult(out, manifest, {CLASS_NAMES[c]: n for c, n in plan.items()}, clip_len)


@dataclass
class _Editor:
    """What the batches of one :func:`edit_clips` call share: the GAN, the source windows and the frames
    picked of each, where the clips go, and the identity check they all feed."""

    G: torch.nn.Module
    clips: CachedClips
    picks: list[int]
    domains: list[str]
    out: Path
    source: str
    seed: int
    check: IdentityCheck = field(default_factory=lambda: IdentityCheck())

    def batch(self, label: int, numbers: range, others: np.ndarray) -> list[dict[str, str]]:
        """Edit clips ``numbers`` of class ``label``, each of the window of ``others`` its own generator
        picks; write their frames and return their manifest rows."""
        clips, picks, clip_len = self.clips, self.picks, len(self.picks)
        draws = [sample_generator(self.seed, label, k) for k in numbers]
        chosen = [int(others[int(torch.randint(len(others), (1,), generator=g))]) for g in draws]
        x = torch.cat([normalize_video(clips[i]["video"][picks]) for i in chosen])
        device = next(self.G.parameters()).device
        domain = [self.domains.index(clips.entries[i]["domain"]) for i in chosen for _ in picks]
        c = torch.full((len(x),), label, device=device)
        with torch.no_grad():  # at the cache's frame size: outside the mask the real frame, untouched
            edit = edit_frames(self.G, x.to(device), c, torch.tensor(domain, device=device))
        images = to_uint8(edit.image)
        rows = []
        for j, (number, i) in enumerate(zip(numbers, chosen)):
            entry, part = clips.entries[i], slice(j * clip_len, (j + 1) * clip_len)
            edited, mask = edit.image[part].cpu(), edit.mask[part].cpu()
            self.check.add(entry["id"], entry["subject"], x[part], edited, mask)
            sample_id = f"edit-{self.source}-s{self.seed}-{CLASS_NAMES[label].lower()}-{number:05d}"
            relative = _write_sample(self.out, CLASS_NAMES[label], sample_id, images[part])
            rows.append({
                "sample_id": sample_id, "frames": relative, "audio": "", "label": CLASS_NAMES[label],
                "split": "train", "subject": entry["subject"], "domain": "synthetic",
                "source_sample": entry["id"], SOURCE_CLASS: CLASS_NAMES[entry["label"]],
            })  # fmt: skip
        return rows


class IdentityCheck:
    """Does an edit keep its person? Per clip: the mean |edit - source| (in [0, 1] pixel units) where the mask
    leaves the face alone (mask < 0.5) and inside the mask; and whether the clip's first edited frame is
    nearer (pixels, at 16x16) to its own source frame than to the same frame of any other person's source
    window among those edited (``nearest_own_source``)."""

    THUMB = 16

    def __init__(self) -> None:
        self.outside: list[float] = []
        self.inside: list[float] = []
        self.sources: dict[str, tuple[str, torch.Tensor]] = {}  # window -> (subject, thumb of frame 0)
        self.edits: list[tuple[str, str, torch.Tensor]] = []  # (window, subject, thumb of edited frame 0)

    def _thumb(self, image: torch.Tensor) -> torch.Tensor:
        return F.interpolate(image[None].float(), size=(self.THUMB, self.THUMB), mode="area").flatten()

    def add(self, window: str, subject: str, source, edited, mask) -> None:
        diff = (edited.float() - source.float()).abs().mean(dim=1, keepdim=True) / 2  # [K, 1, R, R]
        keep = mask < 0.5
        if keep.any():
            self.outside.append(float(diff[keep].mean()))
        if (~keep).any():
            self.inside.append(float(diff[~keep].mean()))
        self.sources.setdefault(window, (subject, self._thumb(source[0])))
        self.edits.append((window, subject, self._thumb(edited[0])))

    def report(self) -> dict:
        windows = list(self.sources)
        gallery = torch.stack([self.sources[w][1] for w in windows]) if windows else torch.zeros(0)
        subjects = np.array([self.sources[w][0] for w in windows])
        own = compared = 0
        for window, subject, thumb in self.edits:
            dist = (gallery - thumb).square().sum(dim=1)
            others = dist[torch.from_numpy(subjects != subject)]
            if len(others):  # a source set of one person has no one else to be mistaken for
                compared += 1
                own += int(bool(dist[windows.index(window)] < others.min()))
        mean = lambda values: round(float(np.mean(values)), 4) if values else None  # noqa: E731
        return {
            "mean_abs_change_outside_mask": mean(self.outside),
            "mean_abs_change_inside_mask": mean(self.inside),
            "nearest_own_source": round(own / compared, 4) if compared else None,
            "nearest_own_source_clips": own,
            "compared": compared,
            "source_windows": len(windows),
            "subjects": int(len(set(subjects.tolist()))),
        }
