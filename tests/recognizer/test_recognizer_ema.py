"""Weight EMA (recognizer/ema.py, ``optim.ema_decay``): the average follows the EMA rule, validation and
``model`` in every checkpoint hold it, and a resumed run continues it exactly."""

from __future__ import annotations

import pytest
import torch

from expr_common.config import ConfigError
from recognizer.ema import RAW_WEIGHTS, build_ema, ema_checkpoint, resume_weights


def test_the_average_follows_the_ema_rule_and_round_trips_through_a_checkpoint():
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    ema = build_ema(model, 0.9)
    first = model[0].weight.detach().clone()
    ema.update_parameters(model)  # the first update copies
    with torch.no_grad():
        model[0].weight.add_(1.0)
        model[1].running_mean.add_(2.0)
    ema.update_parameters(model)
    assert torch.allclose(ema.module[0].weight, 0.9 * first + 0.1 * (first + 1.0))
    assert torch.allclose(ema.module[1].running_mean, torch.full((2,), 0.2))  # buffers are averaged too
    state = ema_checkpoint(model.state_dict(), ema)
    assert torch.equal(state["model"]["0.weight"], ema.module[0].weight)
    assert torch.equal(state[RAW_WEIGHTS]["0.weight"], model[0].weight)
    fresh = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    fresh_ema = build_ema(fresh, 0.9)
    resume_weights(fresh, fresh_ema, state, "last.pt")
    assert torch.equal(fresh[0].weight, model[0].weight) and int(fresh_ema.n_averaged) == 2
    assert torch.equal(fresh_ema.module[0].weight, ema.module[0].weight)
    assert build_ema(model, 0.0) is None and ema_checkpoint(model.state_dict(), None).keys() == {"model"}
    with pytest.raises(ConfigError, match="last.pt: written with optim.ema_decay on"):
        resume_weights(fresh, None, state, "last.pt")


def _train(run, cache, epochs: int, *extra: str) -> None:
    from expr_common.paths import repo_root
    from recognizer.cli import main

    config = str(repo_root() / "configs" / "recognizer" / "tiny.yaml")
    sets = ["optim.ema_decay=0.9", f"train.epochs={epochs}", f"data_overrides=[cache.root={cache}]"]
    argv = ["train", "--config", config, "--run-dir", str(run), *extra]
    assert main([*argv, *[item for s in sets for item in ("--set", s)]]) == 0


def test_a_tiny_run_keeps_the_average_and_resumes_it_exactly(recognizer_cache_root, tmp_path):
    from expr_common.checkpoint import load_checkpoint
    from expr_common.runs import read_metrics

    _train(tmp_path / "straight", recognizer_cache_root, 2)
    _train(tmp_path / "resumed", recognizer_cache_root, 1)
    _train(tmp_path / "resumed", recognizer_cache_root, 2, "--resume")
    straight = load_checkpoint(tmp_path / "straight" / "checkpoints" / "last.pt")
    resumed = load_checkpoint(tmp_path / "resumed" / "checkpoints" / "last.pt")
    steps = [r["step"] for r in read_metrics(tmp_path / "straight" / "metrics.jsonl") if "val_macro_f1" in r]
    assert straight["ema_steps"] == steps[-1] > 0
    for key, value in straight["model"].items():
        assert torch.equal(value, resumed["model"][key]), key
        assert torch.equal(straight[RAW_WEIGHTS][key], resumed[RAW_WEIGHTS][key]), key
    moved = [k for k, v in straight["model"].items() if v.is_floating_point()]
    assert any(not torch.equal(straight["model"][k], straight[RAW_WEIGHTS][k]) for k in moved)
