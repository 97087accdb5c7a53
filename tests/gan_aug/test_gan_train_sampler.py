"""The GAN's frame table and its (class, domain)-balanced, deterministic sampler."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from expr_common.data.config import load_data_config
from expr_common.data.dataset import CachedClips
from expr_common.data.prepare import prepare
from expr_common.paths import repo_root
from gan_aug.config import DOMAINS, domain_index
from gan_aug.sampling import (
    CellSampler,
    FrameBatches,
    FrameTable,
    batch_loader,
    build_frame_table,
    step_generator,
)


def _table(cells: dict[tuple[int, int], int]) -> FrameTable:
    """A table with ``n`` rows per (class, domain) cell and no pixels (enough for the sampler)."""
    labels, domains = [], []
    for (c, d), n in cells.items():
        labels += [c] * n
        domains += [d] * n
    N = len(labels)
    long = torch.tensor
    return FrameTable(None, torch.arange(N), torch.zeros(N, dtype=torch.long), long(labels), long(domains),
                      long(labels), long(domains), num_classes=8)  # fmt: skip


def test_sampler_draws_cells_uniformly_whatever_their_sizes() -> None:
    cells = {(0, 2): 500, (3, 2): 5, (3, 0): 50, (6, 1): 1}  # Aff-Wild2 Neutral dwarfs everything else
    table = _table(cells)
    rows = CellSampler(table).draw(40_000, step_generator(0, 0))
    drawn = torch.stack([table.label[rows], table.domain[rows]], 1)
    for cell in cells:
        share = (drawn == torch.tensor(cell)).all(1).float().mean().item()
        assert share == pytest.approx(1 / len(cells), abs=0.01), cell
    # Within a cell every frame is drawn, about equally often.
    neutral_rows = rows[(table.label[rows] == 0)]
    assert len(torch.unique(neutral_rows)) == 500
    y, d = CellSampler(table).draw_cells(4000, step_generator(0, 1))
    assert set(zip(y.tolist(), d.tolist())) == set(cells)  # fakes are drawn from the same cells


def test_sampler_is_deterministic_per_seed_and_step() -> None:
    sampler = CellSampler(_table({(1, 0): 7, (2, 1): 9, (4, 2): 11}))
    same = [sampler.draw(64, step_generator(5, 3)) for _ in range(2)]
    assert torch.equal(*same)
    assert not torch.equal(same[0], sampler.draw(64, step_generator(6, 3)))  # another seed
    assert not torch.equal(same[0], sampler.draw(64, step_generator(5, 4)))  # another step
    assert not torch.equal(same[0], sampler.draw(64, step_generator(5, 3, rank=1)))  # another process


@pytest.fixture(scope="module")
def tiny_cache(tiny_corpus: Path, data_dir: Path) -> Path:
    config = load_data_config(repo_root() / "configs/data/synthetic_tiny.yaml")
    return Path(prepare(config, data_dir / "cache" / "gan_synthetic_tiny").path)


def test_frame_table_takes_every_labelled_training_frame(tiny_cache: Path) -> None:
    table = build_frame_table(tiny_cache, num_classes=8)
    clips = CachedClips(tiny_cache, split="train")
    expected = 0
    for i, entry in enumerate(clips.entries):
        item = clips[i]
        labels = (
            item["frame_labels"]
            if entry["domain"] == "affwild2"
            else item["label"].expand(len(item["video"]))
        )
        expected += int((labels >= 0).sum())
    assert len(table) == expected
    assert (table.label >= 0).all() and set(table.domain.tolist()) == {domain_index(d) for d in DOMAINS}
    for row in torch.randint(len(table), (20,)).tolist():  # a row's class is its frame's own label
        item = table.clips[int(table.sample[row])]
        k = int(table.frame[row])
        domain = DOMAINS[int(table.domain[row])]
        label = item["frame_labels"][k] if domain == "affwild2" else item["label"]
        assert int(label) == int(table.label[row])
    assert table.cell_counts().sum() == len(table)


def test_batches_are_resized_and_independent_of_the_worker_count(tiny_cache: Path) -> None:
    table = build_frame_table(tiny_cache, num_classes=8)  # the tiny cache holds 48 px crops
    batches = FrameBatches(table, batch_size=6, resolution=32, seed=0, rank=0, start=3)
    first = next(iter(batches))
    assert first["image"].shape == (6, 3, 32, 32) and first["image"].dtype == torch.float32
    assert first["image"].min() >= -1 and first["image"].max() <= 1
    in_process = [b for _, b in zip(range(4), batch_loader(batches, workers=0))]
    with_workers = [b for _, b in zip(range(4), batch_loader(batches, workers=2))]
    for a, b in zip(in_process, with_workers):
        assert torch.equal(a["image"], b["image"]) and torch.equal(a["label"], b["label"])
    assert torch.equal(in_process[0]["image"], first["image"])
    assert torch.equal(in_process[1]["label"], batches.batch(4)["label"])  # batch numbers continue from start
