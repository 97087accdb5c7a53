"""Hostile input to the YAML config loader and the ABAW submission checker (issue 8, part 4): a parsed
result or ``ConfigError`` / ``SubmissionError`` / a submission problem line naming the file, never a
``UnicodeDecodeError`` or ``RecursionError`` from inside. See test_fuzz_datasets.py for the dataset files.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml
from fuzz_common import FEW, FUZZ, as_bytes, is_utf8
from hypothesis import event, example, given
from hypothesis import strategies as st

from expr_common.config import ConfigError, load_config, save_config
from expr_common.data.config import DataConfig
from expr_common.labels import NUM_CLASSES, SUBMISSION_HEADER
from recognizer.run_config import RecognizerConfig
from recognizer.submission import SubmissionError, read_video_list, validate_submission

# --- YAML configs -----------------------------------------------------------------------------------------

WILD = st.one_of(
    st.integers(-3, 300),
    st.integers(),
    st.floats(),  # nan and +-inf included
    st.booleans(),
    st.none(),
    st.text(max_size=6),
    st.lists(st.integers(-1, 3), max_size=3),
    st.dates(),
)
PREPROCESS_KEYS = ["frames", "image_size", "window_seconds", "stride_seconds", "sample_rate", "n_mels"]
PREPROCESS_KEYS += ["win_ms", "hop_ms", "face_detector", "face_margin", "detect_side", "framez"]


def section(keys: list[str]) -> st.SearchStrategy:
    return st.dictionaries(st.sampled_from(keys), WILD, max_size=4)


DATA_CONFIGS = st.fixed_dictionaries(
    {},
    optional={
        "name": st.one_of(st.text(max_size=8), WILD),
        "sources": st.lists(
            st.fixed_dictionaries(
                {
                    "name": st.sampled_from(["a", "b", "a"]),
                    "format": st.sampled_from(["affwild2", "manifest", "csv", ""]),
                    "root": st.one_of(st.just("data/x"), WILD),
                },
                optional={
                    "splits": st.one_of(
                        st.none(), st.lists(st.sampled_from(["train", "val", 3]), max_size=2)
                    ),
                    "faces": st.sampled_from(["auto", "crops", "detect", "yes"]),
                    "options": st.dictionaries(st.text(max_size=4), WILD, max_size=2),
                },
            ),
            max_size=3,
        ),
        "preprocess": section(PREPROCESS_KEYS),
        "augment": section(["freq_mask_param", "freq_masks"]),
        "cache": section(["root", "shard_size", "workers"]),
        "extra": WILD,
    },
)


@st.composite
def yaml_text(draw) -> bytes:
    text = yaml.safe_dump(draw(DATA_CONFIGS), default_flow_style=draw(st.sampled_from([None, True, False])))
    lines = text.splitlines()
    edit = draw(st.integers(0, 7))
    if edit == 0 and lines:  # a line indented with a tab (YAML forbids tabs there)
        at = draw(st.integers(0, len(lines) - 1))
        lines[at] = "\t" + lines[at]
    elif edit == 1 and lines:  # a line lost
        del lines[draw(st.integers(0, len(lines) - 1))]
    elif edit == 2:
        lines.append(draw(st.text(max_size=10)))
    return draw(as_bytes(lines))


def load_data_config(path: Path) -> DataConfig | ConfigError:
    try:
        return load_config(path, DataConfig)
    except ConfigError as exc:
        assert str(path) in str(exc), str(exc)
        assert len(str(exc)) < 5000  # a shortened value, even for a huge or self-containing one
        return exc


def floats_of(config) -> list[float]:
    from dataclasses import fields, is_dataclass

    found = []
    for f in fields(config):
        value = getattr(config, f.name)
        if is_dataclass(value):
            found += floats_of(value)
        elif isinstance(value, float):
            found.append(value)
    return found


@FUZZ
@given(raw=yaml_text())
@example(raw=b"preprocess: {window_seconds: .nan}\n")
@example(raw=b"preprocess:\n  face_margin: .inf\n")
@example(raw=b"name: test\r\ncache:\r\n  root: \xff\xfe\r\n")
def test_data_config_near_valid(work, raw):
    path = work / "data.yaml"
    path.write_bytes(raw)
    config = load_data_config(path)
    event(type(config).__name__)
    if not is_utf8(raw):
        assert isinstance(config, ConfigError) and "not UTF-8" in str(config)
    if isinstance(config, DataConfig):
        assert all(math.isfinite(v) for v in floats_of(config.preprocess))
        saved = save_config(config, work / "resolved.yaml")  # what every run writes must load again
        assert load_config(saved, DataConfig) == config


def alias_chain(kind: str, depth: int = 40) -> str:
    """YAML aliases naming one small collection 2**depth times (the 'billion laughs')."""
    first = "[1, 1]" if kind == "list" else "{x: 1, y: 1}"
    rows = [f"  a0: &a0 {first}"]
    for i in range(1, depth):
        rows.append(
            f"  a{i}: &a{i} "
            + (f"[*a{i - 1}, *a{i - 1}]" if kind == "list" else f"{{x: *a{i - 1}, y: *a{i - 1}}}")
        )
    return "\n".join(rows)


@FEW
@given(raw=st.one_of(st.binary(max_size=200), st.text(max_size=200).map(str.encode)))
@example(raw=b"\xff: 1\n")
@example(raw=b"name: &a {x: *a}\n")  # a section containing itself
@example(raw=b"sources: &s [*s]\n")
@example(raw=b"[" * 1000)  # nested deeper than the YAML composer's recursion
@example(raw=b"{a: " * 1000)
@example(raw=("name:\n" + alias_chain("dict")).encode())  # copied once per name: 2**40 copies
@example(raw=("name:\n" + alias_chain("list")).encode())  # shown in the error: a 2**40-item repr
@example(raw=b"!!python/object/apply:os.system [echo hi]\n")
@example(raw=b"\xef\xbb\xbfname: x\n")
@example(raw=b"preprocess: {frames: 1e999, window_seconds: 1e999}\n")
@example(raw=b"preprocess: {window_seconds: " + b"9" * 400 + b"}\n")  # an int past the float range
@example(raw=b"name: 2001-01-01\n")
def test_config_random_bytes(work, raw):
    path = work / "any.yaml"
    path.write_bytes(raw)
    load_data_config(path)
    try:
        load_config(path, RecognizerConfig)
    except ConfigError as exc:
        assert str(path) in str(exc)


# --- ABAW submission files --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def challenge(work):
    """Test videos ``a`` (crops 1-3) and ``b`` (crops 1 and 3: N is 3, the last crop, though only 2 crops
    exist) and their list."""
    cropped = work / "cropped"
    for video, frames in (("a", (1, 2, 3)), ("b", (1, 3))):
        (cropped / video).mkdir(parents=True)
        for frame in frames:
            (cropped / video / f"{frame:05d}.jpg").write_bytes(b"")
    videos = work / "test_list.txt"
    videos.write_text("a\nb\n")
    return videos, cropped


def validate(path: Path, challenge) -> list[str] | SubmissionError:
    videos, cropped = challenge
    try:
        problems = validate_submission(path, videos, cropped)
    except SubmissionError as exc:
        assert str(exc).startswith(f"{path}:"), str(exc)
        return exc
    assert all(isinstance(p, str) for p in problems) and len(problems) <= 51
    for problem in problems[:50]:
        assert problem.startswith((f"{path}:", f"{videos}:")), problem
    return problems


@st.composite
def valid_submission(draw) -> list[str]:
    # b ends at its last crop, 3: a file that stops at 2 (its crop count) misses crop 3's line (issue 14).
    labels = st.integers(0, NUM_CLASSES - 1)
    frames = [("a", i) for i in (1, 2, 3)] + [("b", i) for i in range(1, 4)]
    return [SUBMISSION_HEADER] + [f"{v}/{i:05d}.jpg,{draw(labels)}" for v, i in frames]


def _edit_label(lines, draw):
    at = draw(st.integers(1, len(lines) - 1))
    bad = draw(st.sampled_from(["8", "-1", "", "nan", "3.0", "\u0663", " 3", "1e0", "99999999999", "3,4"]))
    return lines[:at] + [lines[at].rsplit(",", 1)[0] + "," + bad] + lines[at + 1 :]


def _edit_frame(lines, draw):
    at = draw(st.integers(1, len(lines) - 1))
    video, rest = lines[at].split("/", 1)
    frame = draw(st.sampled_from(["0001", "000001", "\u0660\u0660\u0660\u0660\u0661", "00000", "abcde"]))
    return lines[:at] + [f"{video}/{frame}.jpg,{rest.split(',')[1]}"] + lines[at + 1 :]


def _insert(lines, draw, text):
    at = draw(st.integers(1, len(lines) - 1))  # not last: a blank last line is just the final line end
    return lines[:at] + [text] + lines[at:]


SUBMISSION_EDITS = {
    "label": _edit_label,
    "frame": _edit_frame,
    "duplicate": lambda lines, draw: _insert(lines, draw, lines[draw(st.integers(1, len(lines) - 1))]),
    "blank line": lambda lines, draw: _insert(lines, draw, ""),
    "unknown video": lambda lines, draw: _insert(lines, draw, "c/00001.jpg,0"),
    "garbage": lambda lines, draw: _insert(
        lines, draw, draw(st.text(st.characters(blacklist_characters="/\n"), max_size=30))
    ),
    "lost frame of a": lambda lines, draw: (lambda k: lines[:k] + lines[k + 1 :])(draw(st.integers(1, 3))),
    "stops before the last crop": lambda lines, draw: lines[:-1],
    "swap": lambda lines, draw: [lines[0], lines[2], lines[1], *lines[3:]],
    "header": lambda lines, draw: [
        draw(st.sampled_from([SUBMISSION_HEADER.lower(), "", SUBMISSION_HEADER + ","])),
        *lines[1:],
    ],
    "no header": lambda lines, draw: lines[1:],
    "lone CR": lambda lines, draw: [lines[0], lines[1] + "\r" + lines[2], *lines[3:]],
}


@FUZZ
@given(lines=valid_submission(), edit=st.sampled_from([None, *SUBMISSION_EDITS]), data=st.data())
def test_submission_near_valid(work, challenge, lines, edit, data):
    if edit is not None:
        lines = SUBMISSION_EDITS[edit](lines, data.draw)
    raw = data.draw(as_bytes(lines, newlines=st.sampled_from(["\n", "\r\n"])))
    path = work / "submission.txt"
    path.write_bytes(raw)
    problems = validate(path, challenge)
    event(type(problems).__name__ if problems else "valid")
    if not is_utf8(raw):
        assert isinstance(problems, SubmissionError) and "not UTF-8" in str(problems)
    elif edit is None:
        assert problems == []
    else:
        assert problems, f"{edit}: {lines}"


@FUZZ
@given(
    raw=st.one_of(
        st.binary(max_size=300),
        st.lists(
            st.tuples(
                st.sampled_from(["a", "b", "c", "a b", ""]),
                st.integers(-1, 100_000),
                st.one_of(st.integers(-3, 12).map(str), st.text(max_size=3)),
            ).map(lambda t: f"{t[0]}/{t[1]:05d}.jpg,{t[2]}"),
            max_size=10,
        ).map(lambda rows: "\n".join([SUBMISSION_HEADER, *rows]).encode()),
    )
)
@example(raw=SUBMISSION_HEADER.encode() + b"\na/00001.jpg,0\n\xffa/00002.jpg,0\n")
def test_submission_random(work, challenge, raw):
    path = work / "submission.txt"
    path.write_bytes(raw)
    validate(path, challenge)


@FEW
@given(raw=st.binary(max_size=100) | st.text(max_size=400).map(str.encode))
@example(raw=b"a\n\xff\n")
@example(raw=b"a\n" + b"x" * 400 + b"\n")  # a video name too long for the file system
def test_submission_test_list(work, challenge, raw):
    listed = work / "fuzzed_list.txt"
    listed.write_bytes(raw)
    submission = work / "ok.txt"
    submission.write_text(f"{SUBMISSION_HEADER}\na/00001.jpg,0\n")
    try:
        problems = validate_submission(submission, listed, challenge[1])
    except SubmissionError as exc:
        assert str(exc).startswith(f"{listed}:") and "not UTF-8" in str(exc)
        with pytest.raises(SubmissionError):
            read_video_list(listed)
        return
    assert all(p.startswith((f"{submission}:", f"{listed}:")) for p in problems[:50])


def test_validate_submission_command_names_the_file(work, challenge, capsys):
    """Through ``recognizer validate-submission``: a file that is not UTF-8 is an error naming the file and
    the line of the bad byte (exit 2), not a traceback; a bad label is a problem naming file and line."""
    from recognizer.cli import main as recognizer_main  # imports torch: only here, not for the whole file

    videos, cropped = challenge
    path = work / "latin1.csv"
    path.write_bytes(f"{SUBMISSION_HEADER}\na/00001.jpg,0\na/00002.jpg,\u00e9\n".encode("latin-1"))
    argv = ["validate-submission", str(path), "--videos", str(videos), "--cropped", str(cropped)]
    assert recognizer_main(argv) == 2
    assert f"{path}:3: the submission is not UTF-8 text (byte 0xe9" in capsys.readouterr().err
    path.write_text(f"{SUBMISSION_HEADER}\na/00001.jpg,0\na/00002.jpg,\u0663\n", encoding="utf-8")
    assert recognizer_main(argv) == 1
    assert f"{path}:3: expected an integer label 0-7, found '\u0663'" in capsys.readouterr().out
