"""The documents the code cites ship with it: docs/method.md, docs/design.md and docs/datasets.md exist, hold
the sections the code names, and no tracked file under packages/, tests/ or configs/ points at notes
outside the repository (the shared folder beside it, or the old upper-case note names)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from expr_common.paths import repo_root

DOCS = ("docs/method.md", "docs/design.md", "docs/datasets.md", "docs/usage.md", "docs/results.md")
SCANNED = ("packages", "tests", "configs")
# Spelled in pieces so that this file does not name what it looks for.
FORBIDDEN = ("../" + "shared", *(name + ".md" for name in ("METHOD", "DESIGN", "DATASETS")))
# `docs/<name>.md, "Section"` or `docs/<name>.md ("Section")` in the code: the section must exist.
SECTION_REF = re.compile(r"(docs/[a-z]+\.md),? \(?\"([^\"]+)\"")


def _tracked_files() -> list[Path]:
    root = repo_root()
    if shutil.which("git") and (root / ".git").exists():
        listed = subprocess.run(
            ["git", "-C", str(root), "ls-files", "-z", "--", *SCANNED],
            check=True,
            capture_output=True,
        ).stdout.decode("utf-8")
        files = [root / name for name in listed.split("\0") if name]
    else:  # an exported tree without git: every file under the folders
        files = [p for folder in SCANNED for p in sorted((root / folder).rglob("*"))]
    return [p for p in files if p.is_file() and "__pycache__" not in p.parts]


def _text(path: Path) -> str | None:
    data = path.read_bytes()
    return None if b"\0" in data[:4096] else data.decode("utf-8", errors="replace")


@pytest.mark.parametrize("doc", DOCS)
def test_the_cited_documents_exist(doc):
    path = repo_root() / doc
    assert path.is_file(), f"{doc} is cited by the code but missing"
    assert path.read_text(encoding="utf-8").startswith("# "), f"{doc} should start with a title"


def test_no_tracked_file_cites_notes_outside_the_repository():
    files = _tracked_files()
    assert len(files) > 100  # the listing worked
    found = [
        f"{path.relative_to(repo_root())}:{number}: {needle}"
        for path in files
        if (text := _text(path)) is not None
        for number, line in enumerate(text.splitlines(), start=1)
        for needle in FORBIDDEN
        if needle in line
    ]
    assert not found, "cite docs/method.md, docs/design.md or docs/datasets.md instead:\n" + "\n".join(found)


def test_every_cited_section_exists():
    headings: dict[str, set[str]] = {}
    for doc in DOCS:
        text = (repo_root() / doc).read_text(encoding="utf-8")
        headings[doc] = {line.lstrip("#").strip() for line in text.splitlines() if line.startswith("#")}
    cited = [
        (path, doc, section)
        for path in _tracked_files()
        if (text := _text(path)) is not None
        for doc, section in SECTION_REF.findall(text)
    ]
    assert cited  # the pattern still matches how the code cites sections
    missing = sorted(
        f"{path.relative_to(repo_root())}: {doc}, {section!r}"
        for path, doc, section in cited
        if section not in headings.get(doc, ())
    )
    assert not missing, "sections cited but not in the documents:\n" + "\n".join(missing)
