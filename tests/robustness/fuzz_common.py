"""What the parser fuzz tests share: deterministic hypothesis settings, files as bytes with any line ends,
BOMs and stray non-UTF-8 bytes, and the check that an error is the project's own and names the file."""

from __future__ import annotations

import re
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from expr_common.data.readers import DatasetFormatError

FUZZ = settings(
    derandomize=True,  # the same examples on every run and machine
    database=None,
    deadline=None,
    max_examples=120,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FEW = settings(FUZZ, max_examples=60)

BAD = "!bad"  # in an oracle: a line or cell the parser must refuse
UNKNOWN = "?"  # random text: only "no leak" is checked

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
