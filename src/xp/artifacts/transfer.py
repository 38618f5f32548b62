"""Moving many objects at once: in parallel, small ones first, with byte progress."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

Progress = Callable[[int, int], None]  # (bytes done, bytes total), called from any thread


@dataclass
class TransferResult:
    objects: int = 0
    bytes: int = 0
    present: int = 0  # already at the destination, not sent


def transfer(
    items: list[tuple[str, int]],
    move: Callable[[str, int], int],
    jobs: int,
    progress: Progress | None = None,
) -> TransferResult:
    """Run ``move(sha, size)`` for every item in parallel; the first error stops the rest."""
    result = TransferResult()
    total = sum(size for _, size in items)
    lock = threading.Lock()
    stop = threading.Event()

    def one(item: tuple[str, int]) -> None:
        if stop.is_set():
            return
        try:
            moved = move(*item)
        except BaseException:
            stop.set()
            raise
        with lock:
            result.objects += 1
            result.bytes += moved
            if progress is not None:
                progress(result.bytes, total)

    if progress is not None:
        progress(0, total)
    # Small objects first: an interrupted transfer keeps as many finished objects as it can.
    ordered = sorted(items, key=lambda i: (i[1], i[0]))
    pool = ThreadPoolExecutor(max(1, min(jobs, len(items) or 1)), "xp-transfer")
    try:
        for future in [pool.submit(one, item) for item in ordered]:
            future.result()
    except BaseException:  # an error or Ctrl-C: finish the objects in flight, start no more
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown()
    return result
