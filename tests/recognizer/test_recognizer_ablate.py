"""``recognizer ablate``: the Table 1 grid over seeds, its table, its per-row switches and its resuming."""

from __future__ import annotations

import json
import re
import statistics

import pytest
import yaml

from expr_common.paths import repo_root
from recognizer import ablate as ablate_module
from recognizer import ablation
from recognizer.cli import main

TINY = str(repo_root() / "configs" / "recognizer" / "tiny.yaml")
CELLS = [("base", "v"), ("base", "av"), ("gcsa_cf", "v"), ("gcsa_cf", "av")]


def _sets(cache_root) -> list[str]:
    # One short epoch per sub-run: the test checks the bookkeeping, not what the model learns.
    sets = [f"data_overrides=[cache.root={cache_root}]", "train.epochs=1", "train.max_steps_per_epoch=3"]
    return [arg for s in sets for arg in ("--set", s)]


def _args(run, cache_root) -> list[str]:
    return ["ablate", "--config", TINY, "--run-dir", str(run), "--seeds", "2", "--rows", "gcsa_cf,base",
            "--modalities", "v,av", *_sets(cache_root)]  # fmt: skip


@pytest.fixture(scope="module")
def cache_root(recognizer_cache_root):
    return recognizer_cache_root


@pytest.fixture(scope="module")
def ablated(cache_root, tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "ablate"
    assert main(_args(run, cache_root)) == 0
    return run


def _parse_cell(text: str) -> tuple[float, float, int]:
    match = re.fullmatch(r"([\d.]+) ± ([\d.]+) \(n=(\d+)\)", text.strip())
    assert match, text
    return float(match[1]), float(match[2]), int(match[3])


def test_table_matches_the_per_seed_runs(ablated):
    lines = (ablated / "ablation.md").read_text().splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("| Method"))
    assert "selection val_macro_f1" in "\n".join(lines[:first])  # the header says which F1 is shown
    assert lines[first] == "| Method | V | V+A | paper V | paper V+A |"
    body = [line.strip("|").split("|") for line in lines[first + 2 : first + 4]]
    assert [cells[0].strip() for cells in body] == ["Base", "+ GCSA + CF"]  # the paper's order, not argv's
    assert [c.strip() for c in body[0][3:]] == ["31.89", "42.62"]
    assert [c.strip() for c in body[1][3:]] == ["35.59", "46.51"]
    result = json.loads((ablated / "ablation.json").read_text())
    for cells, row in zip(body, ("base", "gcsa_cf")):
        for text, modality in zip(cells[1:3], ("v", "av")):
            # Read each seed's value back from the sub-run's own files, independent of ablation.json.
            values, best = [], []
            for seed in (0, 1):
                sub = ablated / f"{row}_{modality}" / f"seed{seed}"
                assert (sub / "config.yaml").is_file() and (sub / "checkpoints" / "best.pt").is_file()
                values.append(json.loads((sub / "selection.json").read_text())["val_macro_f1"])
                best.append(json.loads((sub / "summary.json").read_text())["best_val_macro_f1"])
            mean, std, n = _parse_cell(text)
            assert n == 2
            assert mean == pytest.approx(100 * statistics.fmean(values), abs=0.006)
            assert std == pytest.approx(100 * statistics.stdev(values), abs=0.006)
            cell = result["cells"][row][modality]
            assert [r["val_macro_f1"] for r in cell["runs"]] == pytest.approx(values)
            assert [r["best_val_macro_f1"] for r in cell["runs"]] == pytest.approx(best)
            assert cell["best_mean"] == pytest.approx(statistics.fmean(best))


def test_rows_ran_with_their_switches_and_seeds(ablated):
    expected = {"base": (False, "ce"), "gcsa_cf": (True, "coarse_fine")}
    for row, modality in CELLS:
        for seed in (0, 1):
            cfg = yaml.safe_load((ablated / f"{row}_{modality}" / f"seed{seed}" / "config.yaml").read_text())
            gcsa, loss = expected[row]
            assert cfg["model"]["visual"]["gcsa"] is gcsa and cfg["model"]["audio"]["gcsa"] is gcsa
            assert cfg["loss"]["kind"] == loss
            assert cfg["model"]["modalities"] == modality
            assert cfg["train"]["seed"] == seed and cfg["train"]["epochs"] == 1
    assert not (ablated / "gcsa_v").exists()  # rows not asked for are not trained


def test_rerun_skips_finished_seeds_and_finishes_the_rest(ablated, cache_root, monkeypatch):
    from recognizer import trainer

    calls: list[tuple[str, int]] = []
    real_train = trainer.train

    def counting_train(cfg, run, **kwargs):
        calls.append((cfg.model.modalities, cfg.train.seed))
        return real_train(cfg, run, **kwargs)

    monkeypatch.setattr(trainer, "train", counting_train)
    before = json.loads((ablated / "ablation.json").read_text())
    assert main(_args(ablated, cache_root)) == 0
    assert calls == []  # every seed was done: nothing trains again
    after = json.loads((ablated / "ablation.json").read_text())
    assert after["cells"]["base"]["v"]["mean"] == before["cells"]["base"]["v"]["mean"]
    assert all(r["skipped"] for r in after["cells"]["gcsa_cf"]["av"]["runs"])

    (ablated / "base_av" / "seed1" / "summary.json").unlink()  # as if it was killed before the summary
    assert main(_args(ablated, cache_root)) == 0
    assert calls == [("av", 1)]
    assert (ablated / "base_av" / "seed1" / "summary.json").is_file()


def test_changed_config_is_not_mixed_into_a_finished_ablation(ablated, cache_root, capsys):
    args = _args(ablated, cache_root) + ["--set", "optim.lr=0.5"]
    assert main(args) == 2
    assert "another config" in capsys.readouterr().err


def test_cell_config_row_switches_win_over_user_overrides():
    cfg = ablation.cell_config(TINY, ["model.visual.gcsa=true", "loss.kind=coarse_fine"], "base", "a", 4)
    assert (cfg.model.visual.gcsa, cfg.model.audio.gcsa, cfg.loss.kind) == (False, False, "ce")
    assert (cfg.model.modalities, cfg.train.seed) == ("a", 4)
    with pytest.raises(ValueError, match="unknown"):
        ablate_module.ablate(TINY, "unused", rows=["nope"])


def test_row_seeds_gather_every_seed_of_that_row(tmp_path):
    # The chain trains its full-model row on every seed and the other rows on fewer: the table must count
    # each row's own seeds (cells read back from their summaries, as the chain's report does).
    from expr_common.config import to_dict

    scores = {("base", 0): 0.2, ("gcsa_cf", 0): 0.3, ("gcsa_cf", 1): 0.5, ("gcsa_cf", 2): 0.7}
    for (row, seed), score in scores.items():
        cell = ablation.cell_dir(tmp_path, row, "v", seed)
        cell.mkdir(parents=True)
        config = to_dict(ablation.cell_config(TINY, [], row, "v", seed))
        summary = {"config": config, "selection": {"val_macro_f1": score}, "best_val_macro_f1": score}
        (cell / "summary.json").write_text(json.dumps(summary))
    result = ablate_module.ablate(
        TINY, tmp_path, seeds=1, rows=["base", "gcsa_cf"], modalities=["v"], row_seeds={"gcsa_cf": 3}
    )
    full, base = result["cells"]["gcsa_cf"]["v"], result["cells"]["base"]["v"]
    assert (full["n"], base["n"]) == (3, 1)
    assert full["mean"] == pytest.approx(0.5) and full["std"] == pytest.approx(0.2)
    assert base["mean"] == pytest.approx(0.2)
    table = ablation.render_markdown(result)
    assert "seeds 0..0 (Base), 0..2 (+ GCSA + CF)" in table


def test_row_seeds_are_checked():
    from expr_common.config import ConfigError

    with pytest.raises(ConfigError, match="unknown rows"):
        ablate_module.ablate(TINY, "unused", rows=["gcsa_cf"], row_seeds={"gcsa_cf_typo": 3})
    with pytest.raises(ConfigError, match=r"whole numbers >= 1, got \{'gcsa_cf': 0\}"):
        ablate_module.ablate(TINY, "unused", rows=["gcsa_cf"], row_seeds={"gcsa_cf": 0})
