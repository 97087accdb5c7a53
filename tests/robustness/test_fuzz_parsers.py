"""Hostile input to every text parser (issue 8, part 4): Aff-Wild2 annotation files and test lists, CK+
emotion files, CSV manifests, YAML configs and ABAW submission files.

Whatever the bytes (random ones, or near-valid files with random line counts, out-of-range labels, NaN,
blank lines, BOMs, CRLF or CR line ends, bytes that are not UTF-8, oversized cells), a parser gives a
parsed result or the project's own error (``DatasetFormatError``, ``ConfigError``, ``SubmissionError``, or
a submission problem line) naming the file: never a ``UnicodeDecodeError``, ``OverflowError``, ``csv.Error``,
``RecursionError`` or ``OSError`` from inside. Near-valid inputs are built together with what the parser
must make of them (an oracle), so leniency bugs show up too, not only crashes.
"""

from __future__ import annotations

import csv
import io
import math
import re
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from expr_common.config import ConfigError, load_config, save_config
from expr_common.data import affwild2, ckplus, manifest
from expr_common.data.config import DataConfig
from expr_common.data.readers import DatasetFormatError, Problems, ReadResult
from expr_common.data.refs import DOMAINS, SPLITS
from expr_common.labels import AFFWILD2_HEADER, CKPLUS_CODES, NUM_CLASSES, SUBMISSION_HEADER, UNLABELLED
from recognizer.settings import RecognizerConfig
from recognizer.submission import SubmissionError, read_video_list, validate_submission

FUZZ = settings(
    derandomize=True,  # the same examples on every run and machine
    database=None,
    deadline=None,
    max_examples=120,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FEW = settings(FUZZ, max_examples=60)

BOM = b"\xef\xbb\xbf"
# A stray byte, a lead byte without its continuation, a lone continuation, an encoded surrogate, a cut char.
NOT_UTF8 = (b"\xff", b"\xfe\xfe", b"\xc3(", b"\x80", b"\xed\xa0\x80", b"\xe2\x82")
NEWLINES = st.sampled_from(["\n", "\r\n", "\r"])


@st.composite
def as_bytes(draw, lines: list[str], newlines=NEWLINES) -> bytes:
    """``lines`` as a file: LF, CRLF or CR line ends, a final line end or not, maybe a BOM, and now and then
    a byte that is not UTF-8 (the caller decodes to know which it got)."""
    newline = draw(newlines)
    data = (newline.join(lines) + (newline if draw(st.booleans()) else "")).encode("utf-8")
    if draw(st.booleans()):
        data = BOM + data
    if draw(st.integers(0, 5)) == 0:
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.sampled_from(NOT_UTF8)) + data[at:]
    return data


def is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def names_file(error: DatasetFormatError, path: Path, n_lines: int | None = None) -> None:
    """The error is the project's own, says which file, and (if it says) a line that the file has."""
    assert isinstance(error, DatasetFormatError), repr(error)
    assert Path(error.path) == path and str(error).startswith(f"{path}:"), str(error)
    if error.line is not None and n_lines is not None:
        assert 1 <= error.line <= max(1, n_lines), str(error)


def n_lines(data: bytes) -> int:
    return len(re.split(rb"\r\n|\r|\n", data))


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


# --- Aff-Wild2 annotation files ---------------------------------------------------------------------------

BAD = "!bad"  # a line or cell the parser must refuse
UNKNOWN = "?"  # random text: only "no leak" is checked

GOOD_LABEL_LINES = st.one_of(
    st.integers(UNLABELLED, NUM_CLASSES - 1).map(lambda v: (str(v), v)),
    st.integers(UNLABELLED, NUM_CLASSES - 1).map(lambda v: (f" {v}\t", v)),
    st.sampled_from([("+3", 3), ("-0", 0), ("007", 7)]),
)
LABEL_LINES = st.one_of(
    GOOD_LABEL_LINES,
    st.one_of(st.integers(max_value=UNLABELLED - 1), st.integers(min_value=NUM_CLASSES)).map(
        lambda v: (str(v), BAD)
    ),
    st.sampled_from(
        ["", "nan", "NaN", "inf", "3.0", "1e0", "0_3", "\u0663", "Happiness", "1,2", "- 1", "3 4", "1\x0c2"]
        + ["\x0c", "\u2028", "\u0085", "9" * 5000, "\ufeff1"]
    ).map(lambda t: (t, BAD)),
    st.text(st.characters(blacklist_characters="\r\n"), max_size=6).map(lambda t: (t, UNKNOWN)),
)
HEADERS = st.sampled_from(
    [
        (AFFWILD2_HEADER, True),
        (f"  {AFFWILD2_HEADER} ", True),
        (AFFWILD2_HEADER.lower(), False),
        (AFFWILD2_HEADER.replace(",", ";"), False),
        (AFFWILD2_HEADER + ",Extra", False),
        ("", False),
        ("3", False),  # no header: the first label line is taken for one
    ]
)


def parse_annotation(path: Path, strict: bool) -> tuple[list[int] | None, list[DatasetFormatError]]:
    result = ReadResult(refs=[])
    labels = affwild2.parse_annotation(path, Problems(strict, result))
    return labels, result.errors


def expected_annotation(header: tuple[str, bool], lines: list[tuple[str, object]]):
    """(labels or None, the lines that must be reported) of a near-valid file, or None if unknowable."""
    texts = [(header[0], "header")] + lines
    while texts and not texts[-1][0].strip():  # trailing blank lines are not frames
        texts.pop()
    if not texts:
        return None, {1}
    if any(value == UNKNOWN for _, value in texts[1:]):
        return None
    bad = set() if header[1] and texts[0][1] == "header" else {1}
    bad |= {number for number, (_, value) in enumerate(texts[1:], start=2) if value == BAD}
    return (None if bad else [value for _, value in texts[1:]]), bad


@FUZZ
@given(
    header=HEADERS,
    lines=st.lists(LABEL_LINES, max_size=12) | st.lists(GOOD_LABEL_LINES, max_size=12),  # half all good
    data=st.data(),
)
def test_affwild2_annotation_near_valid(work, header, lines, data):
    raw = data.draw(as_bytes([header[0], *(text for text, _ in lines)]))
    path = work / "track.txt"
    path.write_bytes(raw)
    labels, errors = parse_annotation(path, strict=False)
    event("parsed" if labels is not None else "refused")
    for error in errors:
        names_file(error, path, n_lines(raw))
    assert (labels is None) == bool(errors)
    if labels is not None:
        assert all(UNLABELLED <= v < NUM_CLASSES and type(v) is int for v in labels)
    if not is_utf8(raw):
        assert labels is None and len(errors) == 1 and "not UTF-8" in str(errors[0])
    else:
        expected = expected_annotation(header, lines)
        if expected is not None:
            assert labels == expected[0]
            assert {e.line for e in errors} == expected[1], [str(e) for e in errors]
    # Strict (training) reading stops at the first of the same problems, with the same message.
    try:
        strict_labels, _ = parse_annotation(path, strict=True)
    except DatasetFormatError as exc:
        assert errors and str(exc) == str(errors[0])
    else:
        assert not errors and strict_labels == labels


@FUZZ
@given(
    raw=st.one_of(
        st.binary(max_size=300),
        st.binary(max_size=200).map(lambda b: BOM + b),
        st.binary(max_size=200).map(lambda b: AFFWILD2_HEADER.encode() + b"\n" + b),
    )
)
@example(raw=AFFWILD2_HEADER.encode() + b"\n1\n\xff\n")
@example(raw=b"\xff\xfe" + AFFWILD2_HEADER.encode("utf-16-le"))  # a UTF-16 file
def test_affwild2_annotation_random_bytes(work, raw):
    path = work / "track.txt"
    path.write_bytes(raw)
    labels, errors = parse_annotation(path, strict=False)
    for error in errors:
        names_file(error, path, n_lines(path.read_bytes()))
    assert (labels is None) == bool(errors)


@FEW
@given(
    raw=st.binary(max_size=200)
    | st.lists(st.text(max_size=300), max_size=5).map(lambda t: "\n".join(t).encode())
)
@example(raw=b"video1\n" + b"x" * 400 + b"\nvideo2.mp4\n")  # a name too long for the file system
def test_affwild2_test_list(work, raw):
    root = work / "affwild2"
    (root / affwild2.CROPS_DIR).mkdir(parents=True, exist_ok=True)
    path = root / affwild2.TEST_LIST
    path.write_bytes(raw)
    result = ReadResult(refs=[])
    tracks = affwild2._test_tracks(root, Problems(False, result))
    for error in result.errors:
        names_file(error, path)
    assert all(isinstance(t, str) and t for t in tracks)
    for track in tracks:  # every listed name can be looked up without an OSError from the file system
        affwild2.crop_index(root / affwild2.CROPS_DIR / track)


# --- CK+ emotion files ------------------------------------------------------------------------------------

EMOTION_TOKENS = st.one_of(
    st.integers(0, 7).flatmap(
        lambda c: st.sampled_from([f"{c:.7e}", f"{c}", f"{c}.0", f"+{c}.", f"{c}e0"]).map(
            lambda t: (t, CKPLUS_CODES[c])
        )
    ),
    st.sampled_from(
        ["nan", "NaN", "inf", "-inf", "1e999", "-1", "8", "2.5", "3,0", "", "3 3", "\u0663", "0_3", "0x3"]
        + ["3.0000000e+00 4", "e3", ".", "1" * 400]
    ).map(lambda t: (t, BAD)),
    st.text(max_size=8).map(lambda t: (t, UNKNOWN)),
)
PADDING = st.sampled_from(["", " ", "   ", "\n", "\t", "\r\n", " \n\n"])


def parse_emotion(path: Path, strict: bool) -> tuple[int | None, list[DatasetFormatError]]:
    result = ReadResult(refs=[])
    label = ckplus.parse_emotion(path, Problems(strict, result))
    return label, result.errors


@FUZZ
@given(token=EMOTION_TOKENS, before=PADDING, after=PADDING, bom=st.booleans(), junk=st.integers(0, 6))
@example(token=("inf", BAD), before="", after="", bom=False, junk=1)
@example(token=("1e400", BAD), before="   ", after="\n", bom=False, junk=1)
def test_ckplus_emotion_file(work, token, before, after, bom, junk):
    raw = (BOM if bom else b"") + (before + token[0] + after).encode("utf-8")
    if junk == 0:
        raw += b"\xff"
    path = work / "S005_001_00000011_emotion.txt"
    path.write_bytes(raw)
    label, errors = parse_emotion(path, strict=False)
    for error in errors:
        names_file(error, path, n_lines(raw))
    assert (label is None) == bool(errors) and len(errors) <= 1
    if label is not None:
        assert 0 <= label < NUM_CLASSES and type(label) is int
    if junk == 0:
        assert "not UTF-8" in str(errors[0])
    elif token[1] != UNKNOWN:
        assert label == (None if token[1] == BAD else token[1])
    try:
        assert parse_emotion(path, strict=True)[0] == label and not errors
    except DatasetFormatError as exc:
        assert errors and str(exc) == str(errors[0])


@FEW
@given(raw=st.binary(max_size=100))
def test_ckplus_emotion_random_bytes(work, raw):
    path = work / "S005_001_00000011_emotion.txt"
    path.write_bytes(raw)
    label, errors = parse_emotion(path, strict=False)
    for error in errors:
        names_file(error, path)
    assert (label is None) == bool(errors)


# --- CSV manifests ----------------------------------------------------------------------------------------

LONG = "x" * 300  # longer than a file name may be (255 bytes on common file systems)
# frames cell -> what it is: its kind when it exists, else why the row fails or is skipped
FRAMES = {
    "": "none",
    "face.jpg": "image",
    "clip": "folder",
    "clip/": "folder",
    "empty": "empty",
    "movie.avi": "video",
    "missing.jpg": "missing",
    "missing_dir": "missing",
    "a\x00b.jpg": "missing",
    "notes.txt": "bad",
    LONG + ".jpg": "bad",
}
AUDIO = {
    "": "none",
    "voice.wav": "ok",
    "movie.avi": "ok",
    "missing.wav": "missing",
    "voice.txt": "bad",
    LONG + ".wav": "unstattable",
}
LABELS = {"": -1, "3": 3, " -1 ": -1, " Happiness ": 4, "happy": 4, "CONTEMPT": 7, "0": 0}
LABELS |= {"8": BAD, "-2": BAD, "nan": BAD, "3.0": BAD, "Joyful": BAD, "1e0": BAD}
SPLIT_CELLS = {"train": "train", "val": "val", "test": "test", " val ": "val", "Train": BAD, "": BAD}
DOMAIN_CELLS = {"": "other", "afew": "afew", "synthetic": "synthetic", "AFEW": BAD, "movie": BAD}
FPS_CELLS = {"": None, "25": 25.0, "8.5": 8.5, "nan": BAD, "inf": BAD, "-1": BAD, "0": BAD, "abc": BAD}
FPS_CELLS |= {"1e999": BAD}
IDS = ["a", "b", "c", " a ", "", "d,e", 'q"t', "\u00fc"]


@pytest.fixture(scope="module")
def manifest_dir(work) -> Path:
    root = work / "manifest"
    (root / "clip").mkdir(parents=True)
    (root / "empty").mkdir()
    for name in ("face.jpg", "clip/0.jpg", "clip/1.png", "voice.wav", "movie.avi"):
        (root / name).write_bytes(b"not decoded by the reader")
    return root


def good(table: dict) -> list[str]:
    return sorted(
        k for k, v in table.items() if v != BAD and v not in ("bad", "missing", "empty", "unstattable")
    )


@st.composite
def manifest_rows(draw):
    """(header, rows): the seven columns in any order, maybe fps and a free column, and rows of cells drawn
    from the tables above; now and then a row with a cell too few or too many, or a blank one. A third of
    the tables are clean (every row valid, ids unique), so that the strict reader's success is tested too."""
    columns = list(draw(st.permutations(manifest.COLUMNS)))
    columns += draw(st.sampled_from([[], ["fps"], ["note"], ["fps", "note"]]))
    columns = draw(st.permutations(columns))
    clean = draw(st.integers(0, 2)) == 0
    pick = (
        (lambda table: st.sampled_from(good(table)))
        if clean
        else (lambda table: st.sampled_from(sorted(table)))
    )
    rows = []
    for number in range(draw(st.integers(0, 8))):
        cells = {
            "sample_id": f"s{number}" if clean else draw(st.sampled_from(IDS)),
            "frames": draw(pick(FRAMES)),
            "audio": draw(pick(AUDIO)),
            "label": draw(pick(LABELS)),
            "split": draw(pick(SPLIT_CELLS)),
            "subject": draw(st.sampled_from(["", "s1", " s2 "])),
            "domain": draw(pick(DOMAIN_CELLS)),
            "fps": draw(pick(FPS_CELLS)),
            "note": draw(st.text(st.characters(blacklist_characters="\r"), max_size=5)),
        }
        if clean and not cells["frames"] and not cells["audio"]:
            cells["frames"] = "face.jpg"
        row = [cells[c] for c in columns]
        shape = 9 if clean else draw(st.integers(0, 9))
        if shape == 0:
            row = row[:-1]
        elif shape == 1:
            row = [*row, "extra"]
        elif shape == 2:
            row = [" "] * len(row)
        rows.append(row)
    return columns, rows


def expected_manifest(columns: list[str], rows: list[list[str]]):
    """(sorted ref tuples, number of bad lines, skipped counts) of a manifest built by ``manifest_rows``."""
    refs, bad, skipped, seen = [], 0, {}, set()
    for row in rows:
        if not any(c.strip() for c in row):
            continue
        if len(row) != len(columns):
            bad += 1
            continue
        cell = dict(zip(columns, row))
        sample_id = cell["sample_id"].strip()
        frames, audio = FRAMES[cell["frames"]], AUDIO[cell["audio"]]
        values = (LABELS[cell["label"]], SPLIT_CELLS[cell["split"]], DOMAIN_CELLS[cell["domain"]])
        fps = FPS_CELLS[cell.get("fps", "")]
        if (
            not sample_id
            or (frames == "none" and audio == "none")
            or "bad" in (frames, audio)
            or BAD in values
            or fps is BAD
        ):
            bad += 1
            continue
        if sample_id in seen:
            bad += 1
            continue
        seen.add(sample_id)
        if audio == "unstattable":
            bad += 1
            continue
        if "missing" in (frames, audio):
            skipped["missing file"] = skipped.get("missing file", 0) + 1
            continue
        if frames == "empty":
            skipped["empty frame folder"] = skipped.get("empty frame folder", 0) + 1
            continue
        subject = cell["subject"].strip() or sample_id
        refs.append((sample_id, *values, subject, fps, frames != "none", audio != "none"))
    if bad:
        skipped["bad row"] = bad
    return sorted(refs), bad, skipped


def ref_tuples(result: ReadResult):
    return sorted(
        (r.sample_id, r.label, r.split, r.domain, r.subject, r.fps, r.has_video, r.has_audio)
        for r in result.refs
    )


def read_manifest(path: Path, strict: bool) -> ReadResult | DatasetFormatError:
    try:
        return manifest.read(path, strict=strict)
    except DatasetFormatError as exc:
        return exc


def check_manifest_result(result: ReadResult | DatasetFormatError, path: Path) -> None:
    """What holds for any manifest, however broken."""
    if isinstance(result, DatasetFormatError):
        names_file(result, path)
        return
    for error in result.errors:
        names_file(error, path)
    assert all(w.startswith(f"{path}:") for w in result.warnings)
    ids = [r.sample_id for r in result.refs]
    assert len(ids) == len(set(ids)) and all(ids)
    for ref in result.refs:
        assert UNLABELLED <= ref.label < NUM_CLASSES and ref.split in SPLITS and ref.domain in DOMAINS
        assert ref.fps is None or (math.isfinite(ref.fps) and ref.fps > 0)
        assert ref.has_video or ref.has_audio


@FUZZ
@given(
    table=manifest_rows(), newline=st.sampled_from(["\n", "\r\n"]), bom=st.booleans(), drop=st.integers(0, 7)
)
def test_manifest_near_valid(manifest_dir, table, newline, bom, drop):
    columns, rows = table
    header = list(columns) if drop else [c for c in columns if c != "label"]  # drop=0: a column missing
    text = io.StringIO()
    csv.writer(text, lineterminator=newline).writerows(
        [[f" {c} " if c == "split" else c for c in header], *rows]
    )
    path = manifest_dir / "manifest.csv"
    path.write_bytes((BOM if bom else b"") + text.getvalue().encode("utf-8"))
    lax, strict = read_manifest(path, strict=False), read_manifest(path, strict=True)
    check_manifest_result(lax, path)
    check_manifest_result(strict, path)
    if not drop:
        assert isinstance(lax, DatasetFormatError) and "lacks column(s) label" in str(lax) and lax.line == 1
        return
    refs, bad, skipped = expected_manifest(columns, rows)
    event(f"{'some' if refs else 'no'} samples, {'some' if bad else 'no'} bad lines")
    assert isinstance(lax, ReadResult)
    assert ref_tuples(lax) == refs
    assert len(lax.errors) == bad, [str(e) for e in lax.errors]
    assert dict(lax.skipped) == skipped
    if bad or not refs:  # training stops at the first bad line, or finds nothing to train on
        assert isinstance(strict, DatasetFormatError)
        assert str(strict) == str(lax.errors[0]) if bad else "no samples found" in str(strict)
    else:
        assert isinstance(strict, ReadResult) and ref_tuples(strict) == refs


HEADER_LINE = ",".join(manifest.COLUMNS)


@FUZZ
@given(
    raw=st.one_of(
        st.binary(max_size=300),
        st.binary(max_size=200).map(lambda b: (HEADER_LINE + "\n").encode() + b),
        st.lists(st.text(max_size=40), max_size=6).map(
            lambda t: (HEADER_LINE + "\r\n" + "\r\n".join(t)).encode()
        ),
    )
)
@example(raw=f"{HEADER_LINE}\na,face.jpg,,1,train,s,\xff\n".encode("latin-1"))  # Latin-1, not UTF-8
@example(raw=f'{HEADER_LINE}\na,"{"x" * 140_000}",,1,train,s,\n'.encode())  # past csv's field limit
@example(raw=f'{HEADER_LINE}\na,"face.jpg,,1,train,s,\n'.encode())  # an unclosed quote
@example(raw=f"{HEADER_LINE}\na,{LONG}/f.jpg,{LONG}.wav,1,train,s,\n".encode())  # names too long
@example(raw=f"{HEADER_LINE},fps\na,face.jpg,,1,train,s,,nan\nb,face.jpg,,1,train,s,,1e999\n".encode())
@example(raw=b'"' + b"x" * 140_000)  # a header cell past csv's field limit
def test_manifest_random_bytes(manifest_dir, raw):
    path = manifest_dir / "manifest.csv"
    path.write_bytes(raw)
    for strict in (False, True):
        check_manifest_result(read_manifest(path, strict), path)


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
    """Test videos ``a`` (crops 1-3) and ``b`` (crops 1 and 3: N may be 2 or 3) and their list."""
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
    n_b = draw(st.sampled_from([2, 3]))
    labels = st.integers(0, NUM_CLASSES - 1)
    frames = [("a", i) for i in (1, 2, 3)] + [("b", i) for i in range(1, n_b + 1)]
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
