"""A one-line transfer progress bar on stderr: bytes, rate and ETA; silent when piped."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from xp.config import human_size

if TYPE_CHECKING:
    from xp.artifacts.transfer import Progress


class Bar:
    """Bytes by default; with ``unit`` (``"runs"``) a count of things."""

    def __init__(self, label: str, unit: str | None = None) -> None:
        self.label = label
        self.unit = unit
        self.start = time.monotonic()
        self.last = 0.0
        self.lock = threading.Lock()
        self.shown = False

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        with self.lock:
            if done < total and now - self.last < 0.1:
                return
            self.last = now
            elapsed = max(now - self.start, 1e-6)
            rate = done / elapsed
            eta = (total - done) / rate if rate > 0 else 0.0
            pct = 100 * done / total if total else 100.0
            width = 24
            fill = int(width * pct / 100)
            if self.unit:
                amount = f"{done}/{total} {self.unit} {rate:.0f}/s"
            else:
                amount = f"{human_size(done)}/{human_size(total)} {human_size(rate)}/s"
            line = (
                f"\r{self.label} [{'#' * fill}{'.' * (width - fill)}] {pct:5.1f}% {amount}"
                f" ETA {int(eta) // 60}:{int(eta) % 60:02d} "
            )
            sys.stderr.write(line)
            sys.stderr.flush()
            self.shown = True

    def close(self) -> None:
        if self.shown:
            sys.stderr.write("\n")
            sys.stderr.flush()


@contextmanager
def progress_bar(
    label: str, enabled: bool | None = None, unit: str | None = None
) -> Iterator[Progress | None]:
    """A progress callback when stderr is a terminal (or ``enabled``), else None."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        yield None
        return
    bar = Bar(label, unit)
    try:
        yield bar
    finally:
        bar.close()
