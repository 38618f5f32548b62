"""Live runs: the runs whose process is still logging, read from their journals.

A live run has no commit yet, so the query index does not know it. Its journal
(``<git common dir>/xp/journal/<id>.journal``, docs/format.md section 7) and the parts its
child processes write (``<id>-<pid>-<random>.part``) hold everything it logged so far.
``LiveRuns`` follows them as they grow, reading only the bytes added since its last look, and
never writes or locks anything: looking cannot disturb the writer or ``xp recover``.

Status: ``running`` while the journal's writer holds its lock; a journal whose writer is gone
and that nobody has committed yet is ``crashed`` (the next ``xp`` command commits it as such),
or the status of its end line when the process ended but could not commit.
"""

from __future__ import annotations

import json
import os
import socket
import time
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xp.errors import XPError
from xp.gitstore.repo import GitRepo
from xp.query.index import RunRow
from xp.record import values
from xp.record.header import RunHeader
from xp.record.journal import PART, SUFFIX, RunState, apply_line, flocked_inodes, read_header
from xp.record.model import FileEntry
from xp.record.spill import to_ms


@dataclass
class LiveSeries:
    """The points of one metric so far, in logging order; times in ms since the epoch."""

    steps: array[int] = field(default_factory=lambda: array("q"))
    values: array[float] = field(default_factory=lambda: array("d"))
    times: array[int] = field(default_factory=lambda: array("q"))
    final: Any = None  # MLflow's rule: the value at the highest step, the last among equals
    final_step: int | None = None

    def add(self, value: Any, step: int, seconds: float) -> None:
        self.steps.append(step)
        self.values.append(float(value))
        self.times.append(to_ms(seconds))  # as the record will hold it (a B line's ms exactly)
        if self.final_step is None or step >= self.final_step:
            self.final, self.final_step = value, step

    def __len__(self) -> int:
        return len(self.steps)


class _Tail:
    """One journal or part file read incrementally, complete lines only (a crash can cut the
    last line; the writer appends the rest later)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.inode: int | None = None
        self.offset = 0
        self.pending = b""
        self.state: RunState | None = None  # after the header line
        self.sealed = False  # a version 2 journal: every line carries its CRC-32

    def read(self) -> list[bytes] | None:
        """New complete lines (the header applied already); None when the file is gone."""
        try:
            with open(self.path, "rb") as fh:
                inode = os.fstat(fh.fileno()).st_ino
                if inode != self.inode:  # new file under the name: start over
                    self.inode, self.offset, self.pending, self.state = inode, 0, b"", None
                fh.seek(self.offset)
                data = fh.read()
        except (FileNotFoundError, NotADirectoryError):
            return None
        self.offset += len(data)
        data = self.pending + data
        cut = data.rfind(b"\n") + 1
        self.pending = data[cut:]
        lines = data[:cut].split(b"\n")[:-1]
        if self.state is None and lines:
            first = lines.pop(0)
            try:
                self.state, self.sealed = read_header(first)
            except (ValueError, TypeError, KeyError, AttributeError):
                self.offset = os.path.getsize(self.path) if self.path.exists() else 0
                self.pending = b""  # not a journal we can read: ignore what follows
                return []
        return lines


class LiveRun:
    """One live run: its journal plus the parts of its child processes, merged as the owner
    merges them when it commits (params first come, name from a part when auto-named)."""

    def __init__(self, run_id: str, journal: Path, repo: GitRepo | None = None) -> None:
        self.run_id = run_id
        self.journal = _Tail(journal)
        self.repo = repo  # to read a continued run's earlier sessions
        self._based = False
        self.parts: dict[str, _Tail] = {}
        self.params: dict[str, Any] = {}
        self.tags: dict[str, str] = {}
        self.series: dict[str, LiveSeries] = {}
        self.artifacts: dict[str, FileEntry] = {}
        self.inputs: dict[str, FileEntry] = {}
        self.alive = True

    @property
    def header(self) -> RunHeader | None:
        return self.journal.state.header if self.journal.state else None

    @property
    def end(self) -> dict[str, Any] | None:
        state = self.journal.state
        return state.end if state is not None and isinstance(state.end, dict) else None

    @property
    def name(self) -> str:
        h = self.header
        if h is None:
            return self.run_id
        if h.auto_name:
            for part in sorted(self.parts):
                ph = self.parts[part].state
                if ph is not None and not ph.header.auto_name:
                    return ph.header.name
        return h.name

    @property
    def status(self) -> str:
        if self.alive:
            return "running"
        end = self.end
        return str(end.get("status") or "crashed") if end else "crashed"

    def _feed(self, tail: _Tail, lines: list[bytes], grown: set[str]) -> bool:
        """Apply ``lines`` of ``tail``; note metrics that gained points; True if anything else
        (params, tags, artifacts, header) changed."""
        state = tail.state
        if state is None:
            return False
        before = (len(state.params), len(state.tags), len(state.artifacts), state.end)
        header = state.header.to_json()
        for raw in lines:
            apply_line(state, raw, sealed=tail.sealed)
        for key, value, step, seconds in state.points:
            self.series.setdefault(key, LiveSeries()).add(value, step, seconds)
            grown.add(key)
        state.points.clear()  # kept once, in the arrays
        for key, value in state.params.items():
            self.params.setdefault(key, value)
        self.tags.update(state.tags)
        self.artifacts.update(state.artifacts)
        self.inputs.update(state.inputs)
        after = (len(state.params), len(state.tags), len(state.artifacts), state.end)
        return before != after or header != state.header.to_json()

    def refresh(self, part_paths: list[Path]) -> tuple[bool, set[str], bool]:
        """Read what was added. Returns (still there, metrics that grew, other changes)."""
        grown: set[str] = set()
        lines = self.journal.read()
        if lines is None:
            return False, grown, True
        if not self._based and self.journal.state is not None:
            self._based = True
            self._seed(grown)
        changed = self._feed(self.journal, lines, grown)
        for path in part_paths:
            tail = self.parts.setdefault(path.name, _Tail(path))
            part_lines = tail.read()
            if part_lines:
                changed = self._feed(tail, part_lines, grown) or changed
        return True, grown, changed

    def _seed(self, grown: set[str]) -> None:
        """A continued run (``xp.start_run(resume=ID)``): its journal holds this session
        only, so what the earlier sessions recorded comes from its previous commit."""
        state = self.journal.state
        previous = state.header.previous if state is not None else None
        if previous is None or self.repo is None or state is None:
            return
        from xp.query.resolve import read_record
        from xp.record.build import state_of_record

        try:
            record = read_record(self.repo, previous)
            if record is None:
                return
            base = state_of_record(record, state.header)
        except (XPError, ValueError, KeyError, TypeError):
            return  # shown as this session alone; the commit will hold everything
        for key, value, step, seconds in base.points:
            self.series.setdefault(key, LiveSeries()).add(value, step, seconds)
            grown.add(key)
        self.params.update(base.params)
        self.tags.update(base.tags)
        self.artifacts.update(base.artifacts)
        self.inputs.update(base.inputs)

    def row(self, now: float | None = None) -> RunRow | None:
        """The run as a table row, values as the index would hold them; None before the
        journal's header could be read."""
        h = self.header
        if h is None:
            return None
        data: dict[str, Any] = {}
        for key, value in self.params.items():
            data[f"params.{key}"] = values.param_cell(value)
        for key, series in self.series.items():
            data[f"metrics.{key}"] = values.metric_cell(series.final)
        for key, text in self.tags.items():
            data[f"tags.{key}"] = text
        data = json.loads(values.dumps(data))  # NaN as null, infinities as floats: the index's
        start = float(h.start_time)
        end_line = self.end
        end: float | None = None
        if end_line is not None and not self.alive:
            end = _float(end_line.get("end_time"))
        if self.alive:
            duration = max(0.0, (now if now is not None else time.time()) - start)
        else:
            duration = max(0.0, (end or _mtime(self.journal.path) or start) - start)
        user = h.context.get("user")
        return RunRow(
            run_id=self.run_id,
            commit="",
            name=self.name,
            experiment=h.experiment or "default",
            status=self.status,
            start=start,
            end=end,
            duration=round(duration, 3),
            baseline=h.baseline,
            branch=h.branch,
            user=str(user) if user else None,
            values=data,
        )


def _float(value: Any) -> float | None:
    return float(value) if values.is_number(value) else None


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


@dataclass(frozen=True)
class LiveChanges:
    """What one ``LiveRuns.refresh`` saw: runs that appeared, changed or went (committed or
    recovered), and per run the metrics that gained points."""

    appeared: list[str]
    changed: list[str]
    gone: list[str]
    grown: dict[str, set[str]]

    def __bool__(self) -> bool:
        return bool(self.appeared or self.changed or self.gone or self.grown)


class LiveRuns:
    """Every live run of a repository, brought up to date by ``refresh()``."""

    def __init__(self, repo: GitRepo) -> None:
        self.repo = repo
        self.dir = repo.xp_dir / "journal"
        self.runs: dict[str, LiveRun] = {}
        self._host = socket.gethostname()

    def refresh(self) -> LiveChanges:
        try:
            names = sorted(os.listdir(self.dir))
        except OSError:  # no journal folder yet (or not a folder): no live runs
            names = []
        journals = {n[: -len(SUFFIX)]: self.dir / n for n in names if n.endswith(SUFFIX)}
        parts: dict[str, list[Path]] = {}
        for n in names:
            if n.endswith(PART):
                parts.setdefault(n.split("-", 1)[0], []).append(self.dir / n)
        appeared: list[str] = []
        changed: list[str] = []
        gone = [run_id for run_id in self.runs if run_id not in journals]
        grown: dict[str, set[str]] = {}
        for run_id in gone:
            del self.runs[run_id]
        locked = flocked_inodes() if journals else set()
        for run_id, path in journals.items():
            run = self.runs.get(run_id)
            fresh = run is None
            if run is None:
                run = self.runs[run_id] = LiveRun(run_id, path, self.repo)
            had_header = run.header is not None
            there, metrics, other = run.refresh(parts.get(run_id, []))
            if not there:
                del self.runs[run_id]
                if not fresh:
                    gone.append(run_id)
                continue
            alive = self._alive(run, locked)
            if alive != run.alive:
                run.alive, other = alive, True
            if run.header is None:
                continue
            if fresh or not had_header:
                appeared.append(run_id)
            elif other:
                changed.append(run_id)
            if metrics:
                grown[run_id] = metrics
        return LiveChanges(appeared, changed, gone, grown)

    def _alive(self, run: LiveRun, locked: set[int] | None) -> bool:
        """Whether the journal's writer lives: its flock per the kernel, else its pid."""
        if locked is not None:
            return run.journal.inode in locked
        h = run.header
        if h is None or h.pid is None or h.context.get("host", self._host) != self._host:
            return True  # cannot tell from here: assume it does
        try:
            os.kill(int(h.pid), 0)
        except ProcessLookupError:
            return False
        except (PermissionError, OverflowError, ValueError):
            return True
        return True

    def rows(self, now: float | None = None) -> list[RunRow]:
        now = time.time() if now is None else now
        return [row for run in self.runs.values() if (row := run.row(now)) is not None]


def live_rows(repo: GitRepo) -> list[RunRow]:
    """The rows of every live run right now (one look, as ``xp show`` needs)."""
    runs = LiveRuns(repo)
    runs.refresh()
    return runs.rows()
