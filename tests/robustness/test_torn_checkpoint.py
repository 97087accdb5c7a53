"""A checkpoint torn by a kill is never resumed from: a killed write's temp file is reported and removed,
an unreadable ``last.pt`` gives way to ``last.prev.pt`` (and the run says so), pickled code is refused."""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import warnings
from pathlib import Path

import pytest
import torch

from expr_common import checkpoint as ckpt
from expr_common.paths import repo_root
from expr_common.runs import read_metrics

RECOGNIZER_TINY = str(repo_root() / "configs" / "recognizer" / "tiny.yaml")
GAN_TINY = str(repo_root() / "configs" / "gan_aug" / "tiny.yaml")
# Both trainers read the tiny data config; tests/gan_aug prepares its cache here once per session.
CACHE = "data_overrides=[cache.root={data_dir}/cache/gan_synthetic_tiny]"


def _save(path: Path, step: int) -> None:
    ckpt.save_checkpoint(path, {"step": step, "w": torch.full((4096,), float(step))})


def _damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    damaged = {
        "truncated": data[: len(data) // 2],
        "empty": b"",
        "zero-filled": bytes(len(data)),  # what a power cut before writeback can leave
        "garbage": b"partial write",
    }[how]
    path.write_bytes(damaged)


def _with(messages: list[str], *parts: str) -> list[str]:
    return [m for m in messages if all(p in m for p in parts)]


# --- checkpoint level ---------------------------------------------------------------------------------------


def test_saving_last_keeps_the_previous_one_as_a_separate_file(tmp_path):
    last = tmp_path / "checkpoints" / "last.pt"
    _save(last, 1)
    assert os.listdir(last.parent) == ["last.pt"]  # nothing to keep yet, and no temp file left
    _save(last, 2)
    _save(last, 3)
    assert sorted(os.listdir(last.parent)) == ["last.prev.pt", "last.pt"]
    assert ckpt.load_checkpoint(last)["step"] == 3
    assert ckpt.load_checkpoint(ckpt.previous_path(last))["step"] == 2
    # Not one inode under two names: rewriting last.pt in place (cp over it) cannot damage the previous one.
    assert not os.path.samefile(last, ckpt.previous_path(last))
    best = last.with_name("best.pt")
    _save(best, 1)
    _save(best, 2)
    assert sorted(os.listdir(last.parent)) == ["best.pt", "last.prev.pt", "last.pt"]  # no best.prev.pt


def test_a_kill_mid_write_leaves_last_whole_and_resume_drops_the_temp_file(tmp_path, logged):
    last = tmp_path / "checkpoints" / "last.pt"
    with warnings.catch_warnings():
        warnings.simplefilter(
            "ignore", DeprecationWarning
        )  # fork() with threads: the child only writes files
        pid = os.fork()
    if pid == 0:  # child: two good saves, then SIGKILLed by itself halfway through the third
        try:
            _save(last, 1)
            _save(last, 2)

            class Dying:
                def __init__(self, handle):
                    self.handle, self.written = handle, 0

                def write(self, data):
                    if self.written + len(data) > 8000:  # killed 8000 bytes in: in the 16 kB tensor
                        self.handle.write(bytes(data)[: 8000 - self.written])
                        self.handle.flush()
                        os.kill(os.getpid(), signal.SIGKILL)
                    self.handle.write(data)
                    self.written += len(data)
                    return len(data)

                def flush(self):
                    self.handle.flush()

            real_atomic_write = ckpt.atomic_write

            @contextlib.contextmanager
            def dying_write(path, mode, **options):  # the serialized bytes go to the file through Dying
                with real_atomic_write(path, mode, **options) as handle:
                    yield Dying(handle)

            ckpt.atomic_write = dying_write
            _save(last, 3)
        finally:
            os._exit(1)  # never reached after the kill; never return into pytest either
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    (torn,) = ckpt.incomplete_writes(last.parent)
    assert torn.name.startswith(".last.pt.") and torn.stat().st_size == 8000
    with pytest.raises(ckpt.CheckpointError, match="corrupt or truncated"):
        ckpt.load_checkpoint(torn)  # what a reader of the temp file would have got
    assert ckpt.load_checkpoint(last)["step"] == 2  # the rename never happened: last.pt is the whole step 2

    state, source = ckpt.load_resume_checkpoint(last)
    assert state["step"] == 2 and source == last
    assert _with(logged, "ignoring an incomplete checkpoint write", str(torn))
    assert sorted(os.listdir(last.parent)) == ["last.prev.pt", "last.pt"]  # the torn temp is gone


@pytest.mark.parametrize("tidy", [True, False])
def test_a_torn_temp_file_is_never_read(tmp_path, logged, tidy):
    last = tmp_path / "last.pt"
    _save(last, 1)
    _save(last, 2)
    torn = tmp_path / ".last.pt.k1ll3d00.tmp"
    _save(tmp_path / "newer.pt", 3)
    torn.write_bytes((tmp_path / "newer.pt").read_bytes()[:5000])  # a step-3 write cut short
    (tmp_path / "newer.pt").unlink()
    state, source = ckpt.load_resume_checkpoint(last, tidy=tidy)
    assert state["step"] == 2 and source == last
    assert len(_with(logged, "ignoring an incomplete checkpoint write", str(torn))) == 1
    assert torn.exists() is not tidy  # only the main process (tidy) removes it


@pytest.mark.parametrize("damage", ["truncated", "empty", "zero-filled", "garbage"])
def test_an_unreadable_last_falls_back_to_the_previous_checkpoint(tmp_path, logged, damage):
    last, prev = tmp_path / "last.pt", tmp_path / "last.prev.pt"
    _save(last, 1)
    _save(last, 2)
    _damage(last, damage)
    state, source = ckpt.load_resume_checkpoint(last)
    assert state["step"] == 1 and source == prev
    assert torch.equal(state["w"], torch.full((4096,), 1.0))
    (said,) = _with(logged, str(last), "corrupt", f"resuming from the previous checkpoint {prev}", "step 1")
    assert _with(logged, f"replaced the unreadable {last}")
    # The damaged file was replaced by a copy, so the next save keeps a good previous checkpoint.
    assert ckpt.load_checkpoint(last)["step"] == 1
    _save(last, 2)
    assert ckpt.load_checkpoint(prev)["step"] == 1 and ckpt.load_checkpoint(last)["step"] == 2


def test_a_non_main_process_falls_back_without_touching_files(tmp_path, logged):
    last = tmp_path / "last.pt"
    _save(last, 1)
    _save(last, 2)
    _damage(last, "truncated")
    torn_bytes = last.read_bytes()
    state, source = ckpt.load_resume_checkpoint(last, tidy=False)
    assert state["step"] == 1 and source == ckpt.previous_path(last)
    assert last.read_bytes() == torn_bytes  # only the main process writes


def test_an_unreadable_last_without_a_previous_one_is_a_clear_error(tmp_path):
    last = tmp_path / "last.pt"
    _save(last, 1)
    _damage(last, "truncated")
    with pytest.raises(ckpt.CheckpointError) as error:
        ckpt.load_resume_checkpoint(last)
    message = str(error.value)
    assert str(last) in message and "corrupt or truncated" in message
    assert f"no previous checkpoint {tmp_path / 'last.prev.pt'}" in message


def test_when_both_are_unreadable_the_error_names_both(tmp_path):
    last, prev = tmp_path / "last.pt", tmp_path / "last.prev.pt"
    _save(last, 1)
    _save(last, 2)
    _damage(last, "truncated")
    _damage(prev, "empty")
    with pytest.raises(ckpt.CheckpointError, match="previous checkpoint is unusable too") as error:
        ckpt.load_resume_checkpoint(last)
    assert str(last) in str(error.value) and str(prev) in str(error.value)


class MakeDir:
    """Unpickling this runs ``os.mkdir(path)``: whether the payload ran is visible on disk."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return (os.mkdir, (self.path,))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")
@pytest.mark.parametrize("writer", ["pickle.dump", "torch.save"])
def test_a_pickled_payload_as_last_is_refused_not_fallen_back_from(tmp_path, writer):
    last, marker = tmp_path / "last.pt", tmp_path / "payload_ran"
    _save(last, 1)
    _save(last, 2)
    with last.open("wb") as handle:
        (pickle.dump if writer == "pickle.dump" else torch.save)({"model": MakeDir(marker)}, handle)
    planted = last.read_bytes()
    with pytest.raises(ckpt.UnsafeCheckpointError, match=f"{last}.*refusing"):
        ckpt.load_resume_checkpoint(last)
    assert not marker.exists()  # nothing ran
    assert last.read_bytes() == planted  # left for a person to look at, not papered over with last.prev.pt


# --- through the trainers -----------------------------------------------------------------------------------


def _tear_last_and_leave_a_temp(run: Path) -> tuple[Path, Path]:
    last = run / "checkpoints" / "last.pt"
    torn = last.with_name(".last.pt.k1ll3d00.tmp")
    torn.write_bytes(last.read_bytes()[:3000])  # the next save, killed halfway
    _damage(last, "truncated")  # and last.pt itself unreadable (no atomic rename on this filesystem)
    return last, torn


def test_recognizer_resume_skips_a_torn_last_and_matches_an_uninterrupted_run(
    tiny_corpus, data_dir, tmp_path, logged, same_state, steady_metrics
):
    from recognizer.cli import main

    sets = [
        CACHE.format(data_dir=data_dir),
        "train.deterministic=true",
        "train.max_steps_per_epoch=3",
        "train.log_every=1",
    ]
    argv = ["train", "--config", RECOGNIZER_TINY, *(a for s in sets for a in ("--set", s))]
    whole, split = tmp_path / "whole", tmp_path / "split"
    assert main([*argv, "--run-dir", str(whole), "--set", "train.epochs=3"]) == 0
    assert main([*argv, "--run-dir", str(split), "--set", "train.epochs=2"]) == 0  # last: epoch 1, prev: 0
    assert [r["epoch"] for r in read_metrics(split / "metrics.jsonl") if "val_macro_f1" in r] == [0, 1]
    last, torn = _tear_last_and_leave_a_temp(split)
    prev = ckpt.previous_path(last)
    logged.clear()

    assert main([*argv, "--run-dir", str(split), "--set", "train.epochs=3", "--resume"]) == 0
    assert _with(logged, "ignoring an incomplete checkpoint write", str(torn)) and not torn.exists()
    assert _with(logged, str(last), "corrupt or truncated", f"resuming from the previous checkpoint {prev}")
    assert _with(logged, f"resumed from {prev} at epoch 1")  # epoch 1 is trained again, from epoch 0's state
    same_state(ckpt.load_checkpoint(whole / "checkpoints/last.pt"), ckpt.load_checkpoint(last))
    # Epoch 1's lines from before the fallback were dropped and logged again: the same lines, once each.
    assert steady_metrics(split / "metrics.jsonl", "train_clips_per_s") == steady_metrics(
        whole / "metrics.jsonl", "train_clips_per_s"
    )
    assert (split / "selection.json").read_text() == (whole / "selection.json").read_text()


def test_recognizer_resume_from_an_unreadable_last_alone_fails_naming_it(
    tiny_corpus, data_dir, tmp_path, capsys
):
    from recognizer.cli import main

    cache = CACHE.format(data_dir=data_dir)
    argv = ["train", "--config", RECOGNIZER_TINY, "--run-dir", str(tmp_path / "r"), "--set", cache]
    assert main([*argv, "--set", "train.epochs=1", "--set", "train.max_steps_per_epoch=1"]) == 0
    last = tmp_path / "r" / "checkpoints" / "last.pt"
    _damage(last, "truncated")
    capsys.readouterr()
    assert main([*argv, "--resume"]) == 2
    err = capsys.readouterr().err
    assert f"checkpoint {last} is corrupt or truncated" in err and "no previous checkpoint" in err


def test_gan_resume_skips_a_torn_last_and_matches_an_uninterrupted_run(
    tiny_corpus, data_dir, tmp_path, logged, same_state, steady_metrics
):
    from gan_aug.train import main

    sets = [
        CACHE.format(data_dir=data_dir),
        "train.checkpoint_every=1",
    ]
    argv = ["--config", GAN_TINY, *(a for s in sets for a in ("--set", s))]
    whole, split = tmp_path / "whole", tmp_path / "split"
    assert main([*argv, "--run-dir", str(whole), "--set", "train.steps=5"]) == 0
    assert main([*argv, "--run-dir", str(split), "--set", "train.steps=4"]) == 0  # last: step 4, prev: 3
    last, torn = _tear_last_and_leave_a_temp(split)
    prev = ckpt.previous_path(last)
    logged.clear()

    assert main([*argv, "--run-dir", str(split), "--set", "train.steps=5", "--resume"]) == 0
    assert _with(logged, "ignoring an incomplete checkpoint write", str(torn)) and not torn.exists()
    assert _with(logged, str(last), "corrupt or truncated", f"resuming from the previous checkpoint {prev}")
    assert _with(logged, f"from {prev} at step 3")
    end_whole, end_split = ckpt.load_checkpoint(whole / "checkpoints/last.pt"), ckpt.load_checkpoint(last)
    # Everything, the global torch RNG included (restored after the loader drew its seed).
    same_state(end_whole, end_split)
    assert [r["step"] for r in read_metrics(split / "metrics.jsonl")] == [1, 2, 3, 4, 5]
    assert steady_metrics(split / "metrics.jsonl", "images_per_s") == steady_metrics(
        whole / "metrics.jsonl", "images_per_s"
    )
