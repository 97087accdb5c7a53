"""The sixteen faults a new user met (issue 14), one test each, in process: each failed before the fix.
``test_first_hour.py`` runs the same kinds of mistakes as command lines."""

from __future__ import annotations

import errno
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from expr_common.checkpoint import CheckpointError, load_checkpoint
from expr_common.cli import main as data_main
from expr_common.config import ConfigError
from expr_common.data.config import load_data_config
from expr_common.data.prepare import prepare
from expr_common.errors import RunDirError
from expr_common.paths import repo_root
from expr_common.runs import read_metrics
from gan_aug.cli import main as gan_main
from gan_aug.fid.sources import open_source, rgb8
from gan_aug.run_config import load_train_config
from gan_aug.training import train as train_gan
from recognizer import trainer
from recognizer.cli import main as recognizer_main
from recognizer.run_config import load_recognizer_config

TINY = str(repo_root() / "configs" / "recognizer" / "tiny.yaml")
TINY_GAN = repo_root() / "configs" / "gan_aug" / "tiny.yaml"
TINY_DATA = repo_root() / "configs" / "data" / "synthetic_tiny.yaml"


@pytest.fixture(scope="module")
def cache_root(tiny_corpus, tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("faults_cache") / "tiny"


def _train_args(run: Path, cache_root: Path, *extra: str) -> list[str]:
    return [
        "train",
        "--config",
        TINY,
        "--run-dir",
        str(run),
        "--set",
        f"data_overrides=[cache.root={cache_root}]",
    ]


@pytest.fixture(scope="module")
def trained(cache_root, tmp_path_factory) -> Path:
    """One finished tiny recognizer run (two epochs)."""
    run = tmp_path_factory.mktemp("faults_runs") / "rec"
    assert recognizer_main(_train_args(run, cache_root)) == 0
    return run


def _copy(run: Path, to: Path) -> Path:
    shutil.copytree(run, to)
    return to


# ---- losing or corrupting finished work ----------------------------------------------------------------


def test_1_training_into_a_finished_run_is_refused_unless_overwrite(trained, cache_root, tmp_path, capsys):
    run = _copy(trained, tmp_path / "rec")
    before = (run / "metrics.jsonl").read_bytes(), (run / "checkpoints" / "best.pt").read_bytes()
    assert recognizer_main(_train_args(run, cache_root)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(run) in err and "--resume" in err and "--overwrite" in err
    assert ((run / "metrics.jsonl").read_bytes(), (run / "checkpoints" / "best.pt").read_bytes()) == before
    # --overwrite moves the old run aside whole and trains a fresh one: epochs 0..1 once, not twice
    assert recognizer_main([*_train_args(run, cache_root), "--overwrite"]) == 0
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("rec.replaced-")]
    assert len(aside) == 1 and (aside[0] / "metrics.jsonl").read_bytes() == before[0]
    epochs = [r["epoch"] for r in read_metrics(run / "metrics.jsonl") if "val_macro_f1" in r]
    assert epochs == [0, 1]


def test_1_gan_training_into_a_run_folder_is_refused(tiny_corpus, tmp_path):
    from accelerate import Accelerator

    config = load_train_config(TINY_GAN, ["train.steps=2", f"data_overrides=[cache.root={tmp_path / 'c'}]"])
    train_gan(config, tmp_path / "gan", accelerator=Accelerator(cpu=True))
    metrics = (tmp_path / "gan" / "metrics.jsonl").read_bytes()
    with pytest.raises(RunDirError, match="--overwrite"):
        train_gan(config, tmp_path / "gan", accelerator=Accelerator(cpu=True))
    assert (tmp_path / "gan" / "metrics.jsonl").read_bytes() == metrics


def test_2_a_resume_that_does_not_fit_names_the_keys_and_writes_nothing(
    trained, cache_root, tmp_path, capsys
):
    run = _copy(trained, tmp_path / "rec")
    config = (run / "config.yaml").read_bytes()
    argv = [*_train_args(run, cache_root), "--resume", "--set", "model.visual.stage_widths=[8,32]"]
    argv += ["--set", "train.epochs=3"]
    assert recognizer_main(argv) == 2
    err = capsys.readouterr().err
    assert "does not fit this config" in err and "model.visual.stage_widths: [8, 16] -> [8, 32]" in err
    assert "Traceback" not in err and (run / "config.yaml").read_bytes() == config


def test_2_a_refused_checkpoint_leaves_the_config_as_it_was(trained, cache_root, tmp_path, capsys):
    import pickle

    run = _copy(trained, tmp_path / "rec")
    config = (run / "config.yaml").read_bytes()
    for name in ("last.pt", "last.prev.pt"):
        with open(run / "checkpoints" / name, "wb") as handle:
            pickle.dump({"model": Path("/")}, handle)  # an object: refused by weights_only=True
    assert recognizer_main([*_train_args(run, cache_root), "--resume", "--set", "train.epochs=3"]) == 2
    assert "refusing to load" in capsys.readouterr().err
    assert (run / "config.yaml").read_bytes() == config


def test_2_gan_resume_with_another_width_is_refused_before_loading(tiny_corpus, tmp_path):
    from accelerate import Accelerator

    sets = ["train.steps=2", f"data_overrides=[cache.root={tmp_path / 'c'}]"]
    train_gan(load_train_config(TINY_GAN, sets), tmp_path / "gan", accelerator=Accelerator(cpu=True))
    config = (tmp_path / "gan" / "config.yaml").read_bytes()
    wider = load_train_config(TINY_GAN, [*sets, "train.steps=4", "model.generator.width=8"])
    with pytest.raises(CheckpointError, match=r"model\.generator\.width: 4 -> 8"):
        train_gan(wider, tmp_path / "gan", resume=True, accelerator=Accelerator(cpu=True))
    assert (tmp_path / "gan" / "config.yaml").read_bytes() == config


def test_3_synth_force_replaces_a_corpus_but_never_another_folder(tmp_path, capsys):
    precious = tmp_path / "thesis"
    precious.mkdir()
    (precious / "chapter1.tex").write_text("months of work")
    argv = ["synth", "--out", str(precious), "--preset", "tiny", "--force"]
    assert data_main(argv) == 2
    assert "no corpus.json" in capsys.readouterr().err
    assert (precious / "chapter1.tex").read_text() == "months of work"


# ---- stale results -------------------------------------------------------------------------------------


def _manifest_dataset(root: Path) -> Path:
    root.mkdir(parents=True)
    rows = ["sample_id,frames,audio,label,split,subject,domain"]
    for i in range(4):
        Image.fromarray(np.full((16, 16, 3), 40 * i, np.uint8)).save(root / f"{i}.png")
        rows.append(f"s{i},{i}.png,,{'Happiness' if i % 2 else 'Fear'},train,p{i},other")
    (root / "manifest.csv").write_text("\n".join(rows) + "\n")
    return root


def _labels(cache: Path) -> list[int]:
    index = json.loads((cache / "index.json").read_text())
    return [e["label"] for e in index["samples"]]


def test_4_an_edited_label_or_image_rebuilds_the_cache(tmp_path):
    root = _manifest_dataset(tmp_path / "ds")
    data = {
        "name": "m",
        "sources": [{"name": "m", "format": "manifest", "root": str(root), "faces": "crops"}],
    }
    data |= {"preprocess": {"frames": 1, "image_size": 16}, "cache": {"workers": 1}}
    config_file = tmp_path / "data.yaml"
    config_file.write_text(json.dumps(data))
    config = load_data_config(config_file)
    out = tmp_path / "cache"
    assert not prepare(config, out).reused and _labels(out) == [3, 4, 3, 4]
    assert prepare(config, out).reused  # nothing changed: reused
    manifest = root / "manifest.csv"
    manifest.write_text(manifest.read_text().replace("s0,0.png,,Fear", "s0,0.png,,Sadness"))
    again = prepare(config, out)
    assert not again.reused and _labels(out) == [5, 4, 3, 4]  # the edited label, not the cached one
    Image.fromarray(np.full((16, 16, 3), 250, np.uint8)).save(root / "1.png")  # same name, new pixels
    assert not prepare(config, out).reused
    assert prepare(config, out).reused


# ---- passing what is wrong -----------------------------------------------------------------------------


def test_6_a_short_annotation_file_is_reported_by_name_and_count(tiny_corpus, tmp_path, capsys):
    corpus = shutil.copytree(tiny_corpus / "affwild2", tmp_path / "affwild2")
    annotation = sorted((corpus / "EXPR_Recognition_Challenge" / "Train_Set").glob("*.txt"))[0]
    lines = annotation.read_text().splitlines()
    annotation.write_text("\n".join(lines[:-5]) + "\n")  # five frames short
    assert data_main(["check", str(corpus), "--format", "affwild2"]) == 1
    out = capsys.readouterr().out
    assert "5 frame past the annotation's end" in out and annotation.name in out


def test_7_non_positive_epochs_fail_at_config_load():
    with pytest.raises(ConfigError, match="train.epochs must be positive, got -1"):
        load_recognizer_config(TINY, ["train.epochs=-1"])
    with pytest.raises(ConfigError, match="train.max_steps_per_epoch must be positive"):
        load_recognizer_config(TINY, ["train.max_steps_per_epoch=0"])
    with pytest.raises(ConfigError, match="train.steps must be positive"):
        load_train_config(TINY_GAN, ["train.steps=0"])


def test_8_an_empty_audio_file_of_an_audio_only_sample_says_it_was_skipped(tmp_path):
    import scipy.io.wavfile

    from expr_common.data.frames import process_ref
    from expr_common.data.refs import SampleRef

    empty = tmp_path / "empty.wav"
    scipy.io.wavfile.write(empty, 16000, np.zeros(0, np.float32))
    ref = SampleRef("s0", "manifest", "other", "train", "p0", label=4, audio=empty)
    pre = load_data_config(TINY_DATA).preprocess
    result = process_ref(ref, pre, False)
    assert result.samples == []
    assert result.warnings == [f"s0: empty audio track in {empty} and no frames; sample skipped"]
    assert dict(result.skipped) == {"empty audio track and no frames": 1}


# ---- tracebacks where a sentence belongs ---------------------------------------------------------------


def test_9_an_unreadable_image_in_a_fid_folder_is_skipped_and_counted(tmp_path):
    for i in range(3):
        Image.fromarray(np.full((8, 8, 3), 60 * i, np.uint8)).save(tmp_path / f"{i}.png")
    (tmp_path / "broken.jpg").write_bytes(b"")
    source = open_source(tmp_path)
    assert [p.path.name for p in source.items] == ["0.png", "1.png", "2.png"]
    assert dict(source.skipped) == {"unreadable image": 1} and "broken.jpg" in source.examples[0]


def test_10_a_16_bit_png_is_scaled_to_8_bits_not_clipped(tmp_path):
    values = np.array([[0, 257, 32896, 65535]], np.uint16)
    Image.fromarray(values).save(tmp_path / "deep.png")
    with Image.open(tmp_path / "deep.png") as image:
        assert image.mode.startswith("I")
        pixels = rgb8(image)
    assert pixels.shape == (1, 4, 3) and pixels[0, :, 0].tolist() == [0, 1, 128, 255]


def test_11_a_recognizer_checkpoint_given_to_generate_is_named_so(trained, tmp_path, capsys):
    argv = [
        "generate",
        "--checkpoint",
        str(trained / "checkpoints" / "best.pt"),
        "--out",
        str(tmp_path / "o"),
    ]
    assert gan_main([*argv, "--per-class", "1"]) == 2
    err = capsys.readouterr().err
    assert "is a recognizer checkpoint" in err and len(err.strip().splitlines()) == 1


def test_12_a_pickled_weights_file_is_refused_without_torchs_advice(tmp_path, capsys):
    import pickle

    weights = tmp_path / "weights.pth"
    with open(weights, "wb") as handle:
        pickle.dump({"conv": Path("/")}, handle)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "a.png")
    argv = ["fid", "--real", str(tmp_path), "--fake", str(tmp_path), "--weights", str(weights), "--no-cache"]
    assert gan_main([*argv, "--allow-small-n"]) == 2
    err = capsys.readouterr().err
    assert "refusing to load" in err and "weights_only=False" not in err and "Traceback" not in err


def test_13_a_full_disk_names_the_file_and_the_last_good_checkpoint(
    cache_root, tmp_path, monkeypatch, capsys
):
    real_save = trainer.save_checkpoint
    saves = []

    def save(path, *args, **kwargs):
        saves.append(path)
        if len(saves) > 2:  # best.pt and last.pt of epoch 1 are written; epoch 2 finds the disk full
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real_save(path, *args, **kwargs)

    monkeypatch.setattr(trainer, "save_checkpoint", save)
    run = tmp_path / "rec"
    assert recognizer_main(_train_args(run, cache_root)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "the disk is full" in err and str(saves[-1]) in err
    assert f"the last good checkpoint is {run / 'checkpoints' / 'last.pt'}" in err and "--resume" in err
    assert load_checkpoint(run / "checkpoints" / "last.pt")["epoch"] == 0


def test_14_ctrl_c_during_training_prints_the_resume_line_and_exits_130(
    cache_root, tmp_path, monkeypatch, capsys
):
    real_epoch = trainer.train_epoch

    def interrupted(loop, epoch):
        if epoch == 1:
            raise KeyboardInterrupt
        return real_epoch(loop, epoch)

    monkeypatch.setattr(trainer, "train_epoch", interrupted)
    run = tmp_path / "rec"
    assert recognizer_main(_train_args(run, cache_root)) == 130
    err = capsys.readouterr().err.strip()
    assert err.startswith("recognizer train: interrupted;") and "Traceback" not in err
    assert f"--run-dir {run} --resume" in err and str(run / "checkpoints" / "last.pt") in err
    monkeypatch.undo()
    assert recognizer_main([*_train_args(run, cache_root), "--resume"]) == 0  # the printed line works


def test_15_an_internal_error_keeps_its_traceback_and_asks_for_a_bug_report(
    cache_root, tmp_path, monkeypatch, capsys
):
    def broken(*args, **kwargs):
        return np.sum(np.zeros(3), axis=1)  # numpy.exceptions.AxisError: a ValueError

    monkeypatch.setattr(trainer, "frames_from_windows", broken)
    assert recognizer_main(_train_args(tmp_path / "rec", cache_root)) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "AxisError" in err and "please report it" in err
    assert "recognizer train: error:" not in err  # not dressed up as the user's mistake


def test_16_recognizer_train_writes_the_report_its_readme_promises(trained):
    report = (trained / "report.md").read_text()
    selection = json.loads((trained / "selection.json").read_text())
    assert f"**{selection['val_macro_f1']:.4f}**" in report
    assert f"m={selection['m']}, n={selection['n']}" in report and "(confusion_val.png)" in report
    for name, value in selection["val_metrics"]["per_class_f1"].items():
        if value is not None:
            assert f"| {name} | {value:.3f} |" in report


def test_subcommand_policy_on_a_dummy_module(capsys):
    """The helper's four outcomes, on a module that stands for any subcommand."""
    import types

    from expr_common import subcommands

    def module(exc: BaseException | None) -> types.ModuleType:
        m = types.ModuleType("dummy")

        def run(args):
            if exc is not None:
                raise exc
            return 0

        m.run, m.stop_note = run, lambda args: "note"
        return m

    args = object()
    assert subcommands.run_module("p", "c", module(None), args) == 0
    assert subcommands.run_module("p", "c", module(ConfigError("bad key")), args) == 2
    assert capsys.readouterr().err == "p c: error: bad key\n"
    assert subcommands.run_module("p", "c", module(KeyboardInterrupt()), args) == 130
    assert capsys.readouterr().err == "p c: interrupted; note\n"
    assert subcommands.run_module("p", "c", module(OSError(errno.ENOSPC, "full", "/x/y")), args) == 2
    assert capsys.readouterr().err == "p c: error: the disk is full: no space left writing /x/y; note\n"
    assert subcommands.run_module("p", "c", module(ValueError("internal")), args) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "ValueError: internal" in err and err.rstrip().endswith("the command line")


def test_13_a_full_disk_inside_a_write_still_names_the_file(tmp_path, monkeypatch):
    """A full disk raised by write/fsync carries no file name of its own: atomic writes add it."""
    from expr_common import atomic

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", full)
    target = tmp_path / "metrics.json"
    with pytest.raises(OSError) as caught:
        atomic.write_text(target, "{}")
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(target)
    assert not target.exists() and not list(tmp_path.iterdir())  # no temp file left behind


def test_15_user_mistakes_that_builtins_used_to_report_are_project_errors(tmp_path, capsys):
    from expr_common.accelerator import default_device

    with pytest.raises(ConfigError, match="is not a device"):
        default_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA device"):
            default_device("cuda")
    (tmp_path / "file.txt").write_text("x")
    assert data_main(["synth", "--out", str(tmp_path / "file.txt"), "--preset", "tiny"]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    too_many = ["--set", "affwild2.min_segments_per_class=40"]  # more episodes than the tiny videos hold
    assert data_main(["synth", "--out", str(tmp_path / "corpus"), "--preset", "tiny", *too_many]) == 2
    err = capsys.readouterr().err
    assert "cannot hold 40 of each class" in err and "Traceback" not in err
    with pytest.raises(SystemExit) as stop:  # argparse: a batch of 0 is refused before anything runs
        recognizer_main(["evaluate", "--checkpoint", "x.pt", "--batch-size", "0"])
    assert stop.value.code == 2 and "expected a number >= 1" in capsys.readouterr().err
