"""Live updates: a thread follows the journals (and, now and then, the refs) and publishes
numbered events that the pages receive as Server-Sent Events.

Events are notifications, small and idempotent: ``run`` (a run appeared, changed, progressed
or ended, with its table row), ``series`` (a live run's metric has new points; the page then
asks for the points after the last step it has) and ``models`` (a tag ref moved: the model
registry changed, so the Models page asks again). A client that reconnects gives the number of
the last event it saw and gets what followed, or ``reset`` when that is too old.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from xp.ui.documents import Source, row_doc

POLL = 0.25  # seconds between looks at the journals (they are flushed every 0.5 s)
REFS_EVERY = 3.0  # seconds between looks at the index for runs committed or fetched
PROGRESS_EVERY = 1.0  # a running run's row is re-sent at most this often


@dataclass(frozen=True)
class Event:
    id: int
    kind: str
    data: dict[str, Any]


class Events:
    """The last ``keep`` events, numbered from 1."""

    def __init__(self, keep: int = 2000) -> None:
        self._items: deque[Event] = deque(maxlen=keep)
        self._lock = threading.Lock()
        self.cursor = 0

    def publish(self, kind: str, data: dict[str, Any]) -> None:
        with self._lock:
            self.cursor += 1
            self._items.append(Event(self.cursor, kind, data))

    def after(self, cursor: int) -> list[Event] | None:
        """Events newer than ``cursor``; None when some of them were dropped already."""
        with self._lock:
            if cursor >= self.cursor:
                return []
            if not self._items or self._items[0].id > cursor + 1:
                return None
            return [e for e in self._items if e.id > cursor]


class Watcher:
    """Keeps ``source.live`` fresh and turns what changes into events."""

    def __init__(self, source: Source, events: Events) -> None:
        assert source.live is not None
        self.source = source
        self.events = events
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sent: dict[str, float] = {}  # run id -> when its row was last sent
        self._refs: tuple[int, str] | None = None
        self._tags: tuple[tuple[str, str], ...] | None = None
        self._refs_at = 0.0

    def start(self) -> None:
        self.tick()  # the first look before the first page asks
        self._thread = threading.Thread(target=self._loop, name="xp-ui-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(POLL):
            try:
                self.tick()
            except Exception as exc:  # the thread must go on; the user must know
                sys.stderr.write(f"xp ui: warning: following live runs failed: {exc!r}\n")

    def tick(self) -> None:
        source = self.source
        assert source.live is not None
        now = time.monotonic()
        with source.live_lock:
            changes = source.live.refresh()
            rows = {r.run_id: r for r in source.live.rows()}
        if changes:
            source.version += 1
        for run_id in changes.appeared:
            self._row(run_id, rows, new=True)
        for run_id in changes.changed:
            self._row(run_id, rows, new=False)
        for run_id, metrics in sorted(changes.grown.items()):
            run = source.live.runs.get(run_id)
            for metric in sorted(metrics):
                series = run.series.get(metric) if run is not None else None
                if series is None:
                    continue
                count, last = len(series), int(series.steps[-1])
                data = {"run_id": run_id, "metric": metric, "count": count, "last_step": last}
                self.events.publish("series", data)
            if run_id not in changes.changed and now - self._sent.get(run_id, 0) >= PROGRESS_EVERY:
                self._row(run_id, rows, new=False)
        if changes.gone or now - self._refs_at >= REFS_EVERY:
            self._look_at_refs(changes.gone)

    def _row(self, run_id: str, rows: dict[str, Any], *, new: bool) -> None:
        row = rows.get(run_id)
        if row is None:
            return
        self._sent[run_id] = time.monotonic()
        data = {"run_id": run_id, "status": row.status, "new": new, "row": row_doc(row)}
        self.events.publish("run", data)

    def _look_at_tags(self) -> None:
        """The registry is git tags (``xp model``, GTO): any tag made, moved or fetched since
        the last look is a ``models`` event. One listing of ``refs/tags/``, as
        ``registry.replay`` keys its cache."""
        from xp.gitstore.refs import list_refs

        tags = tuple(sorted(list_refs(self.source.repo.common_dir, "refs/tags/").items()))
        if self._tags is not None and tags != self._tags:
            self.events.publish("models", {})
        self._tags = tags

    def _look_at_refs(self, gone: list[str]) -> None:
        """Runs committed, fetched or deleted since the last look change the index: bump the
        version and send the rows of runs that just ended."""
        self._refs_at = time.monotonic()
        top = self.source.select(limit=1, live=False)
        state = (top.total, top.rows[0].run_id if top.rows else "")
        if self._refs is not None and state != self._refs:
            self.source.version += 1
            if not gone:
                self.events.publish("run", {"run_id": None, "status": None, "new": True})
        self._refs = state
        self._look_at_tags()
        for run_id in gone:
            self._sent.pop(run_id, None)
            found = self.source.select(where=f"run_id = '{run_id}'", limit=1, live=False).rows
            if found:
                row = found[0]
                data = {"run_id": run_id, "status": row.status, "new": False, "row": row_doc(row)}
            else:  # deleted, or not committed yet: the table asks again
                data = {"run_id": run_id, "status": None, "new": True}
            self.events.publish("run", data)
