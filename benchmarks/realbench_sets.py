"""The sets of the real-data bench (built outside the repository): where each manifest is, which
modality it trains, and the data config the toolkit reads it with. One place for these facts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

FACE_SIZE = 64  # the face sets' crops: SFEW's aligned faces are 143x181, TWDB and JAFFE 256x256
MANIFEST = "manifest.csv"


@dataclass(frozen=True)
class BenchSet:
    name: str
    modality: str  # "v" (faces), "a" (speech) or "av" (the CREMA-D smoke set: predict --video only)
    what: str

    def manifest(self, bench: Path) -> Path:
        return bench / self.name / MANIFEST

    @property
    def trained(self) -> bool:
        return self.modality in ("v", "a")


SETS = {
    s.name: s
    for s in (
        BenchSet("sfew", "v", "SFEW 2.0 wild faces"),
        BenchSet("twdb", "v", "Taiwanese posed faces"),
        BenchSet("jaffe", "v", "JAFFE posed faces"),
        BenchSet("emodb", "a", "EmoDB acted speech"),
        BenchSet("cremad", "av", "CREMA-D clips (predict --video smoke check)"),
    )
}


def data_config(bench_set: BenchSet, bench: Path, cache_root: Path) -> dict:
    """The data config of one set: its manifest as a source, faces already cropped (one frame per image) or
    speech as 2 s windows of 64 mels at a 10 ms hop."""
    source = {"name": bench_set.name, "format": "manifest", "root": str(bench_set.manifest(bench))}
    if bench_set.modality == "v":
        source["faces"] = "crops"
        preprocess = {"frames": 1, "image_size": FACE_SIZE}
    else:
        preprocess = {"frames": 1, "image_size": FACE_SIZE, "window_seconds": 2.0, "stride_seconds": 2.0}
        preprocess |= {"sample_rate": 16000, "n_mels": 64, "win_ms": 25.0, "hop_ms": 10.0}
    return {
        "name": f"realbench_{bench_set.name}",
        "sources": [source],
        "preprocess": preprocess,
        "cache": {"root": str(cache_root / bench_set.name), "workers": 2},
    }


PRETRAIN_SETS = ("twdb", "jaffe")  # the paper's initial pre-training on posed faces, before the wild target


def pretrain_config(bench: Path, cache_root: Path) -> dict:
    """One data config over the posed face sets (their train and val splits teach, their test is unused)."""
    configs = [data_config(SETS[name], bench, cache_root) for name in PRETRAIN_SETS]
    return {
        "name": "realbench_posed",
        "sources": [c["sources"][0] for c in configs],
        "preprocess": configs[0]["preprocess"],
        "cache": {"root": str(cache_root / "posed"), "workers": 2},
    }


def recognizer_config(data_yaml: Path, modality: str, epochs: int, seed: int) -> dict:
    """The recognizer's config as a user writes it: the data and the modality; everything else is the
    toolkit's default. Epochs and seed as the bench asks; loading in-process, as the plain reference does
    (on 2 cores, loader processes take the cores the training needs)."""
    return {
        "data": str(data_yaml),
        "model": {"modalities": modality},
        "train": {"epochs": epochs, "seed": seed, "workers": 0},
    }


def write_yaml(path: Path, content: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(content, sort_keys=False), encoding="utf-8")
    return path
