"""Dataset readers: one entry point, ``read_dataset``, over one module per on-disk format.

Readers list folders and parse text; they never decode media (``prepare`` does that once per sample). The
Aff-Wild2 reader probes each video's header for its frame count, fps and sound track, and the AFEW and
manifest readers can probe for a sound track (``check_audio=True``); probes are cached per file.

Every reader takes ``strict``: True (training) raises ``DatasetFormatError`` at the first malformed file;
False (``expr-data check``) records every bad line in ``ReadResult.errors``, drops the offending file's
samples and carries on, so one run reports all problems.
"""

from __future__ import annotations

import collections
import hashlib
import importlib
import inspect
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from expr_common.config import ConfigError
from expr_common.errors import ExprError
from expr_common.data.refs import SPLITS, SampleRef
from expr_common.logs import get_logger
from expr_common.media import MediaError, MediaInfo, probe

FORMATS = ("affwild2", "afew", "ckplus", "manifest")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".flv")
AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".m4a", ".opus")
_SHOWN_WARNINGS = 10  # a real dataset can produce hundreds; the rest stay in ReadResult.warnings

log = get_logger("data")


class DatasetFormatError(ExprError, ValueError):
    """A dataset file or folder is not in the expected format; ``str()`` reads ``path:line: message``."""

    def __init__(self, message: str, path: str | Path | None = None, line: int | None = None) -> None:
        self.message, self.path, self.line = message, path, line
        where = "" if path is None else f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(where + message)


@dataclass
class ReadResult:
    refs: list[SampleRef]
    skipped: collections.Counter[str] = field(default_factory=collections.Counter)  # reason -> count
    warnings: list[str] = field(default_factory=list)  # human-readable, each naming the file
    errors: list[DatasetFormatError] = field(default_factory=list)  # only filled when strict=False
    silent_videos: list[Path] = field(default_factory=list)  # probed video files without a sound track


class Problems:
    """Where format errors go: raised at once (strict) or collected (``check``)."""

    def __init__(self, strict: bool, result: ReadResult) -> None:
        self.strict, self.result = strict, result

    def report(self, error: DatasetFormatError) -> None:
        if self.strict:
            raise error
        self.result.errors.append(error)

    def count(self) -> int:
        return len(self.result.errors)


def require_folder(path: Path, what: str) -> Path:
    """``path`` as an absolute folder, or a clear error saying what was expected there."""
    if not path.exists():
        raise DatasetFormatError(f"does not exist; expected {what}", path)
    if not path.is_dir():
        raise DatasetFormatError(f"is not a folder; expected {what}", path)
    return path.absolute()  # absolute but not resolved: symlinked data folders keep their names


_UTF8_BOM = b"\xef\xbb\xbf"
_NEWLINE = re.compile(r"\r\n|\r|\n")


def read_text(path: Path, what: str) -> str:
    """A text file's contents (UTF-8; a leading BOM dropped). A file that cannot be read, or is not UTF-8,
    is a ``DatasetFormatError`` naming it (and the line of the first bad byte), not a decoder traceback."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DatasetFormatError(f"cannot read {what}: {exc.strerror or exc}", path) from None
    body = data[len(_UTF8_BOM) :] if data.startswith(_UTF8_BOM) else data
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = body[: exc.start].count(b"\n") + 1
        raise DatasetFormatError(
            f"{what} is not UTF-8 text (byte 0x{body[exc.start]:02x} at offset "
            f"{exc.start + len(data) - len(body)}); save it as UTF-8",
            path,
            line,
        ) from None


def split_lines(text: str) -> list[str]:
    """Lines as a text editor numbers them: LF, CRLF and CR end a line; nothing else does (unlike
    ``str.splitlines``, which also splits at form feeds and Unicode separators and so shifts line numbers).
    A final line ending does not start another line."""
    lines = _NEWLINE.split(text)
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def check_splits(splits: Iterable[str] | None, available: tuple[str, ...]) -> tuple[str, ...]:
    """The requested splits in canonical order (all ``available`` when None); unknown names are errors."""
    if splits is None:
        return available
    wanted = tuple(splits)
    unknown = [s for s in wanted if s not in SPLITS]
    if unknown:
        raise ConfigError(f"unknown split(s) {', '.join(unknown)}: expected some of {', '.join(SPLITS)}")
    return tuple(s for s in SPLITS if s in wanted)


def require_samples(result: ReadResult, root: Path, what: str, strict: bool) -> ReadResult:
    """An empty dataset is an error when training (``strict``); ``check`` reports it instead."""
    if strict and not result.refs:
        skipped = ", ".join(f"{n} {reason}" for reason, n in result.skipped.most_common())
        detail = f" (skipped: {skipped})" if skipped else ""
        raise DatasetFormatError(f"no samples found; expected {what}{detail}", root)
    return result


def list_files(folder: Path, suffixes: tuple[str, ...]) -> list[Path]:
    """Files of ``folder`` with one of ``suffixes`` (any case), sorted by name; hidden files ignored."""
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.iterdir()
        if not p.name.startswith(".") and p.suffix.lower() in suffixes and p.is_file()
    )


def stable_fraction(key: str) -> float:
    """A number in [0, 1) fixed by ``key`` alone (not by Python's salted ``hash``): subject-wise splits
    must come out the same on every run and machine."""
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


_probe_cache: dict[tuple[str, int, int], MediaInfo] = {}


def probe_cached(path: Path) -> MediaInfo:
    """``media.probe`` once per file version: ``read`` and ``check`` of the same data share the probes."""
    stat = path.stat()
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    if key not in _probe_cache:
        _probe_cache[key] = probe(path)
    return _probe_cache[key]


def audio_of(video: Path, result: ReadResult) -> tuple[Path | None, MediaInfo | None]:
    """(``video`` as the audio source if it has a sound track else None, its probe or None if unreadable)."""
    try:
        info = probe_cached(video)
    except (MediaError, OSError) as exc:
        result.skipped["unreadable video"] += 1
        result.warnings.append(f"{video}: cannot be probed ({exc})")
        return None, None
    if not info.has_audio:
        result.silent_videos.append(video)
        result.warnings.append(f"{video}: has no audio stream; its samples get has_audio=False")
        return None, info
    return video, info


def read_dataset(
    format: str, root: str | Path, *, splits: tuple[str, ...] | None = None, **options
) -> ReadResult:
    """Read a dataset in one of ``FORMATS``. ``options`` go to that format's ``read`` (for instance
    ``peak_frames`` for CK+, ``check_audio`` for AFEW and manifests, ``strict`` for all)."""
    if format not in FORMATS:
        raise ConfigError(f"unknown dataset format {format!r}: expected one of {', '.join(FORMATS)}")
    module = importlib.import_module(f"expr_common.data.{format}")  # the modules import this one
    accepted = [
        name
        for name, param in inspect.signature(module.read).parameters.items()
        if param.kind is param.KEYWORD_ONLY
    ]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ConfigError(
            f"unknown option(s) {', '.join(unknown)} for the {format} reader: expected some of "
            f"{', '.join(accepted)}"
        )
    result = module.read(root, splits, **options)
    skipped = ", ".join(f"{n} {reason}" for reason, n in sorted(result.skipped.items()))
    log.info(
        f"{format}: {len(result.refs)} samples from {root}" + (f" (skipped: {skipped})" if skipped else "")
    )
    if not options.get("strict", True):
        return result  # `expr-data check` prints every warning itself
    for warning in result.warnings[:_SHOWN_WARNINGS]:
        log.warning(warning)
    if len(result.warnings) > _SHOWN_WARNINGS:
        log.warning(
            f"... and {len(result.warnings) - _SHOWN_WARNINGS} more warnings (expr-data check lists all)"
        )
    return result
