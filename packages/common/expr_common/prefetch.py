"""One prefetching reader: the next chunk is decoded in a thread while the caller works on this one.

FID feature extraction and class fidelity both read images (files, video frames, crops) in chunks and run
a network on each; decoding (PIL, PyAV, OpenCV) releases the GIL, so one reader thread overlaps it with the
network's work.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

C = TypeVar("C")
R = TypeVar("R")


def prefetched(load: Callable[[C], R], chunks: Sequence[C]) -> Iterator[tuple[C, R]]:
    """``(chunk, load(chunk))`` for every chunk in order, ``load`` of the next one running meanwhile."""
    if not chunks:
        return
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(load, chunks[0])
        for i, chunk in enumerate(chunks):
            result = pending.result()
            if i + 1 < len(chunks):
                pending = pool.submit(load, chunks[i + 1])
            yield chunk, result


def chunked(items: Sequence[C], size: int) -> list[Sequence[C]]:
    """``items`` in consecutive chunks of ``size`` (the last one shorter)."""
    return [items[i : i + size] for i in range(0, len(items), size)]
