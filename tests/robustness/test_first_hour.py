"""A new user's first hour, scripted: the ordinary mistakes of issue 14 typed as command lines (one
subprocess each, as a shell would run them). Each step checks the exit code, that a refusal is one line
that says what to do, and that nothing changed outside the folder the command was asked to write."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from expr_common.paths import repo_root
from expr_common.run_lock import LOCK_FILE

TINY = str(repo_root() / "configs" / "recognizer" / "tiny.yaml")
TIMEOUT = 240


def snapshot(*roots: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``roots``: its size and modification time. A run folder's lock is left out: every
    command that looks into a run folder takes it (and clears it when done), a refusal too."""
    out = {}
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file() and path.name != LOCK_FILE:
                st = path.stat()
                out[str(path)] = (st.st_size, st.st_mtime_ns)
    return out


def changed(before: dict, after: dict) -> set[str]:
    return {p for p in before.keys() | after.keys() if before.get(p) != after.get(p)}


class Shell:
    """Runs the project's command lines as a user would, and watches the folders a mistake must not touch."""

    def __init__(self, home: Path, watched: list[Path]):
        self.home, self.watched = home, watched
        self.env = {**os.environ, "OMP_NUM_THREADS": "1", "EXPR_PROGRESS": "0"}

    def command(self, tool: str, *argv: str) -> list[str]:
        module = {"recognizer": "recognizer", "gan-aug": "gan_aug", "expr-data": "expr_common"}[tool]
        return [sys.executable, "-m", module, *argv]

    def run(
        self, tool: str, *argv: str, code: int, may_change: tuple[Path, ...] = ()
    ) -> subprocess.CompletedProcess:
        before = snapshot(*self.watched)
        done = subprocess.run(
            self.command(tool, *argv), capture_output=True, text=True, env=self.env, timeout=TIMEOUT
        )
        assert done.returncode == code, f"{tool} {' '.join(argv)}\n{done.stdout}\n{done.stderr}"
        touched = changed(before, snapshot(*self.watched))
        outside = {p for p in touched if not any(Path(p).is_relative_to(m) for m in may_change)}
        assert not outside, f"{tool} {argv[0]} changed files it was not asked to write: {sorted(outside)[:5]}"
        if code == 2:  # a refusal: one error line, the last (after the INFO log lines), no traceback
            errors = [line for line in done.stderr.splitlines() if ": error: " in line]
            assert len(errors) == 1 and done.stderr.strip().endswith(errors[0]), done.stderr
            assert "Traceback" not in done.stderr, done.stderr
        return done


@pytest.fixture
def shell(tiny_corpus, data_dir, tmp_path) -> Shell:
    home = tmp_path / "home"
    home.mkdir()
    return Shell(home, [home, data_dir])


def test_a_new_users_first_hour(shell: Shell, tiny_corpus: Path, weights: Path):
    home = shell.home
    cache = home / "cache"
    data = ["--set", f"data_overrides=[cache.root={cache / 'tiny'}]"]
    run = home / "runs" / "rec"
    train = ["train", "--config", TINY, "--run-dir", str(run), *data]

    # A first training run: it writes its run folder and the cache, nothing else.
    shell.run("recognizer", *train, "--set", "train.epochs=1", code=0, may_change=(run, cache))
    assert (run / "report.md").is_file()

    # 1. The same command again would have appended a second epoch 0 and replaced best.pt.
    refused = shell.run("recognizer", *train, "--set", "train.epochs=1", code=2)
    assert "already holds a run" in refused.stderr and "--resume" in refused.stderr

    # 2. Resuming with a model that no longer fits: the keys are named, config.yaml is not rewritten.
    narrower = ["--set", "model.visual.stage_widths=[8,32]", "--set", "train.epochs=2"]
    refused = shell.run("recognizer", *train, "--resume", *narrower, code=2)
    assert "model.visual.stage_widths: [8, 16] -> [8, 32]" in refused.stderr

    # 7. A negative epoch count fails at config load, before any folder is made.
    refused = shell.run("recognizer", "train", "--config", TINY, "--run-dir", str(home / "neg"),
                        "--set", "train.epochs=-1", code=2)  # fmt: skip
    assert "train.epochs must be positive, got -1" in refused.stderr and not (home / "neg").exists()

    # 11. A recognizer checkpoint handed to the GAN's generator.
    best = run / "checkpoints" / "best.pt"
    refused = shell.run("gan-aug", "generate", "--checkpoint", str(best), "--out", str(home / "gen"),
                        "--per-class", "2", code=2)  # fmt: skip
    assert "is a recognizer checkpoint" in refused.stderr

    # Issue 29, items 1, 2, 6 and 13: an export over its own checkpoint, a --out naming an unrelated file,
    # an empty config and an unknown source class are one line each, and nothing is written.
    refused = shell.run("recognizer", "export", "--checkpoint", str(best), "--onnx", str(best), code=2)
    assert "--onnx" in refused.stderr and str(best) in refused.stderr
    kept = home / "notes.txt"
    kept.write_text("my notes")
    refused = shell.run("recognizer", "predict", "--checkpoint", str(best), "--split", "test",
                        "--out", str(kept), code=2)  # fmt: skip
    assert str(kept) in refused.stderr and kept.read_text() == "my notes"
    empty = home / "empty.yaml"
    empty.write_text("")
    refused = shell.run("recognizer", "train", "--config", str(empty), "--run-dir", str(home / "e"), code=2)
    assert str(empty) in refused.stderr and not (home / "e").exists()
    edit = ["generate", "--mode", "edit", "--from", str(empty), "--source-classes", "Neutral,Bogus"]
    edit += ["--checkpoint", str(best)]
    refused = shell.run("gan-aug", *edit, "--out", str(home / "gen2"), "--per-class", "1", code=2)
    assert "Bogus" in refused.stderr

    # 3. --force on a folder that is not a corpus.
    notes = home / "notes"
    notes.mkdir()
    (notes / "ideas.txt").write_text("keep me")
    refused = shell.run("expr-data", "synth", "--out", str(notes), "--preset", "tiny", "--force", code=2)
    assert "refusing to delete it" in refused.stderr and (notes / "ideas.txt").read_text() == "keep me"

    # 6. An annotation file five lines short.
    corpus = home / "affwild2"
    import shutil

    shutil.copytree(tiny_corpus / "affwild2", corpus)
    annotation = sorted((corpus / "EXPR_Recognition_Challenge" / "Train_Set").glob("*.txt"))[0]
    annotation.write_text("\n".join(annotation.read_text().splitlines()[:-5]) + "\n")
    checked = shell.run("expr-data", "check", str(corpus), "--format", "affwild2", code=1)
    assert "5 frame past the annotation's end" in checked.stdout and annotation.name in checked.stdout

    # 5. A submission that stops three frames early (crops 57-59 exist, gaps before them).
    crops, listing, sub = home / "crops", home / "test.txt", home / "sub.csv"
    (crops / "v1").mkdir(parents=True)
    for frame in [*range(1, 50), *range(57, 60)]:
        (crops / "v1" / f"{frame:05d}.jpg").write_bytes(b"")
    listing.write_text("v1\n")
    sub.write_text("image_location,Neutral,Anger,Disgust,Fear,Happiness,Sadness,Surprise,Other\n"
                   + "".join(f"v1/{i:05d}.jpg,0\n" for i in range(1, 57)))  # fmt: skip
    validated = shell.run("recognizer", "validate-submission", str(sub), "--videos", str(listing),
                          "--cropped", str(crops), code=1)  # fmt: skip
    assert "INVALID" in validated.stdout and "expected 1..59" in validated.stdout

    # 9 and 10. A FID folder with an empty file and a 16-bit PNG: skipped and counted, scaled.
    faces = home / "faces"
    faces.mkdir()
    for i in range(3):
        Image.fromarray(np.full((16, 16, 3), 70 * i, np.uint8)).save(faces / f"{i}.png")
    Image.fromarray(np.full((16, 16), 40000, np.uint16)).save(faces / "deep.png")
    (faces / "empty.jpg").write_bytes(b"")
    fid = ["fid", "--real", str(faces), "--fake", str(faces), "--allow-small-n", "--no-cache"]
    report = home / "fid.json"
    shell.run("gan-aug", *fid, "--weights", str(weights), "--out", str(report), code=0, may_change=(report,))
    body = report.read_text()
    assert '"unreadable image": 1' in body and '"available": 4' in body

    # 12. A weights file that carries pickled code.
    import pickle

    bad = home / "weights.pth"
    with open(bad, "wb") as handle:
        pickle.dump({"x": Path("/")}, handle)
    refused = shell.run("gan-aug", *fid, "--weights", str(bad), code=2)
    assert "weights_only=False" not in refused.stderr

    # 14. Ctrl-C in a long run: the last checkpoint and the line that continues it, exit code 130.
    long = home / "runs" / "long"
    argv = ["train", "--config", TINY, "--run-dir", str(long), *data, "--set", "train.epochs=40"]
    before = snapshot(*shell.watched)
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    # A suite started in the background (`make test &`, nohup) passes SIGINT down ignored, and Python then
    # keeps ignoring it: the child gets the default disposition, as a terminal's Ctrl-C would find it.
    restore = {"preexec_fn": lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)}
    child = subprocess.Popen(shell.command("recognizer", *argv), env=shell.env, **pipes, **restore)
    deadline = time.monotonic() + TIMEOUT
    while not (long / "checkpoints" / "last.pt").is_file() and time.monotonic() < deadline:
        time.sleep(0.2)
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=TIMEOUT)
    assert child.returncode == 130, err
    assert "interrupted; the last good checkpoint is" in err and f"--run-dir {long} --resume" in err
    assert "Traceback" not in err
    outside = {p for p in changed(before, snapshot(*shell.watched)) if not Path(p).is_relative_to(long)}
    assert not outside, sorted(outside)[:5]
