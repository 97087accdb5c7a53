"""Hostile input to the dataset parsers (issue 8, part 4), annotation files: Aff-Wild2 annotation files and
test lists, CK+ emotion files (CSV manifests: test_fuzz_manifest.py).

Whatever the bytes (random ones, or near-valid files with random line counts, out-of-range labels, NaN,
blank lines, BOMs, CRLF or CR line ends, bytes that are not UTF-8, oversized cells), a parser gives a
parsed result or ``DatasetFormatError`` naming the file: never a ``UnicodeDecodeError``, ``OverflowError``,
``csv.Error`` or ``OSError`` from inside. Near-valid inputs are built together with what the parser must
make of them (an oracle), so leniency bugs show up too, not only crashes.
"""

from __future__ import annotations

from pathlib import Path

from fuzz_common import BAD, BOM, FEW, FUZZ, UNKNOWN, as_bytes, is_utf8, n_lines, names_file
from hypothesis import event, example, given
from hypothesis import strategies as st

from expr_common.data import affwild2, ckplus
from expr_common.data.readers import DatasetFormatError, Problems, ReadResult
from expr_common.labels import AFFWILD2_HEADER, CKPLUS_CODES, NUM_CLASSES, UNLABELLED

# --- Aff-Wild2 annotation files ---------------------------------------------------------------------------

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
