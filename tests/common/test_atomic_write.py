"""expr_common.atomic: a write replaces its target whole or not at all, and leaves the permissions a plain
open() would: the replaced file's, else the umask's (not mkstemp's owner-only 0600)."""

from __future__ import annotations

import os
import stat

import pytest

from expr_common.atomic import UMASK, atomic_write, write_json


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_new_file_gets_the_umask_mode_and_a_replaced_file_keeps_its_own(tmp_path):
    plain = tmp_path / "plain.txt"
    plain.write_text("x")  # what open() gives a new file here
    target = tmp_path / "report.json"
    write_json(target, {"a": 1})
    assert _mode(target) == _mode(plain) == 0o666 & ~UMASK

    os.chmod(target, 0o640)
    with atomic_write(target) as handle:
        handle.write("new")
    assert target.read_text() == "new" and _mode(target) == 0o640


def test_a_failed_write_leaves_the_target_and_no_temp_file(tmp_path):
    target = tmp_path / "data.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="mid-write"):
        with atomic_write(target, "wb") as handle:
            handle.write(b"partial")
            raise RuntimeError("mid-write")
    assert target.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["data.bin"]
