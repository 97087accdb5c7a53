"""The chain's start order: ready steps start by the longest chain of work still behind them."""

from __future__ import annotations

import sys

import pytest

from expr_common.config import load_config
from expr_common.paths import repo_root
from expr_experiment.chain import plan
from expr_experiment.chain_config import ChainConfig
from expr_experiment.tasks import ChainError, Task, run_tasks, start_order


def _sleep(name: str, seconds: float, deps: tuple[str, ...] = (), weight: float = 1.0) -> Task:
    return Task(name, [[sys.executable, "-c", f"import time; time.sleep({seconds})"]], deps, weight=weight)


def test_a_step_others_wait_for_starts_before_a_leaf_listed_earlier(tmp_path, logged) -> None:
    # One process: "leaf" is listed first, but "head" has "tail" behind it, so head runs first.
    tasks = [_sleep("leaf", 0.0), _sleep("head", 0.0), _sleep("tail", 0.0, ("head",))]
    key = start_order(tasks)
    assert sorted(key, key=key.get) == ["head", "leaf", "tail"]
    run_tasks(tasks, tmp_path, jobs=1)
    assert [m.split()[1] for m in logged if m.startswith("start ")] == ["head", "leaf", "tail"]


def test_finished_steps_no_longer_count_in_the_start_order() -> None:
    # "up" was rerun (its marker deleted) but "heavy" behind it is done: heavy's weight no longer counts, so
    # "b" (weight 3) starts before up (1), which would lead with 1 + 5 otherwise.
    tasks = [_sleep("up", 0), _sleep("heavy", 0, ("up",), weight=5.0), _sleep("b", 0, weight=3.0)]
    key = start_order(tasks)
    assert key["up"] < key["b"]
    key = start_order(tasks, done={"heavy"})
    assert key["b"] < key["up"]


def test_weights_decide_between_chains_and_plan_order_breaks_ties() -> None:
    tasks = [_sleep("a", 0), _sleep("b", 0), _sleep("gan", 0, weight=6.0), _sleep("arm", 0, ("a",))]
    key = start_order(tasks)
    assert sorted(key, key=key.get) == ["gan", "a", "b", "arm"]  # 6 > 1 + 1 > 1; b before arm: listed first
    with pytest.raises(ChainError, match="cycle"):
        start_order([_sleep("x", 0, ("y",)), _sleep("y", 0, ("x",))])


def test_on_the_demo_plan_the_gans_start_first_and_the_edits_before_any_ablation_run(tmp_path) -> None:
    cfg = load_config(repo_root() / "configs" / "chain" / "demo.yaml", ChainConfig, [])
    tasks = plan(cfg, tmp_path)
    key = start_order(tasks)
    after_prepare = sorted((t.name for t in tasks if t.deps == ("prepare",)), key=key.get)
    assert after_prepare[:2] == ["gan_edit", "gan"] or after_prepare[:2] == ["gan", "gan_edit"]
    ablation = [t.name for t in tasks if t.name.startswith("ablation")]
    assert ablation and all(key["edit"] < key[name] for name in ablation)
