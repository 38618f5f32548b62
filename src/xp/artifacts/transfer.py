"""Moving many objects at once: in parallel, small ones first, with byte progress."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

Progress = Callable[[int, int], None]  # (bytes done, bytes total), called from any thread
Advance = Callable[[int], None]  # a mover reports bytes of the object in flight as they go


@dataclass
class TransferResult:
    objects: int = 0
    bytes: int = 0
    present: int = 0  # already at the destination, not sent


def transfer(
    items: list[tuple[str, int]],
    move: Callable[[str, int, Advance], int],
    jobs: int,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
) -> TransferResult:
    """Run ``move(sha, size, advance)`` for every item in parallel; the first error stops the
    rest. Progress counts bytes as the movers report them (``advance``), so one 1 GB object
    moves the bar too, not only its end. Setting ``stop`` (from another thread) starts no
    more objects: those in flight finish, and the result counts what moved."""
    result = TransferResult()
    total = sum(size for _, size in items)
    lock = threading.Lock()
    stop = stop if stop is not None else threading.Event()
    partial = [0]  # bytes reported of objects still in flight

    def one(item: tuple[str, int]) -> None:
        if stop.is_set():
            return
        reported = [0]

        def advance(n: int) -> None:
            with lock:
                reported[0] += n
                partial[0] += n
                if progress is not None:
                    progress(min(total, result.bytes + partial[0]), total)

        try:
            moved = move(*item, advance)
        except BaseException:
            stop.set()
            raise
        with lock:
            partial[0] -= reported[0]
            result.objects += 1
            result.bytes += moved
            if progress is not None:
                progress(min(total, result.bytes + partial[0]), total)

    if progress is not None:
        progress(0, total)
    # Small objects first: an interrupted transfer keeps as many finished objects as it can.
    ordered = sorted(items, key=lambda i: (i[1], i[0]))
    if len(ordered) <= 1 or jobs <= 1:
        # one object (a hook's push of one new run): no pool, nor concurrent.futures' import
        for item in ordered:
            one(item)
        return result
    from concurrent.futures import ThreadPoolExecutor

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
