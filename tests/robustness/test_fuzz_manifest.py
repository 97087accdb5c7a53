"""Hostile input to the dataset parsers (issue 8, part 4), CSV manifests: random bytes and near-valid tables
(bad cells, BOMs, line ends, oversized fields) checked against an oracle of what the reader must make of
them (annotation files: test_fuzz_annotations.py)."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import pytest
from fuzz_common import BAD, BOM, FUZZ, names_file
from hypothesis import event, example, given
from hypothesis import strategies as st

from expr_common.data import manifest
from expr_common.data.readers import DatasetFormatError, ReadResult
from expr_common.data.refs import SPLITS, valid_domain
from expr_common.labels import NUM_CLASSES, UNLABELLED

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
# Any lower-case name is a domain (issue 15): "movie" is one; upper case and spaces are not.
DOMAIN_CELLS = {"": "other", "afew": "afew", "synthetic": "synthetic", "movie": "movie", "AFEW": BAD}
DOMAIN_CELLS |= {"my lab": BAD}
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
        assert UNLABELLED <= ref.label < NUM_CLASSES and ref.split in SPLITS and valid_domain(ref.domain)
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
