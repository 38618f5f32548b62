"""The live run's append-only journal: ``<git common dir>/xp/journal/<run id>.journal``.

Log calls only append to memory; a flusher thread writes the new entries here at least
every second. The writer holds an exclusive ``flock`` for the run's lifetime: the kernel drops
it when the process dies (SIGKILL, OOM), which is how a later process knows the run is dead.

Lines (UTF-8, tab-separated, first field is the kind, last field the CRC-32 of the rest of
the line as 8 hex digits; docs/format.md section 7):
  H4 <json header>                once, first (RunHeader, plus "journal": 4); ``H`` in
                                  versions 1 and 2, ``H3`` in 3, which xp still reads
  U <json {field: value}>         a header change: exit code, warnings, a name...
  B <key> <count> <first step> <final step> <final value> <points>
                                  one flush's points of one metric: each point its line of
                                  series/<key>.tsv (step, value, time in ms), ';' between
                                  points; what the series file gets, byte for byte
  C <count> <json [keys]> <json [[position, int]...]> <base64 columns>
                                  a big flush's points of every metric in binary (version 4:
                                  no float is spelled while the run logs; ``Columns``)
  M <key> <value> <step> <time>   one metric point, time in seconds (versions 1 and 2)
  P <json [key, value]>           param
  T <json [key, value]>           tag
  R <json key>                    tag removed (MLflow's delete_tag)
  A <json artifact entry>         artifact file
  I <json input entry>            data input
  G <json media entry>            an image, figure, table, histogram or text (record/media.py)
  D <json dataset entry>          an MLflow dataset the run used (log_input)
  O <json logged model entry>     an MLflow logged model, replaced by id when it changes
  K <sha256>                      a cache object the run is about to use (for `xp gc`)
  E <json {status, end_time}>     the run ended; the commit may still have failed
  X <json {reason, time}>         why the journal could not be committed (a `.failed` file)
A line whose checksum does not match is dropped and counted, never replayed as another
value; a last line without its newline was cut by a crash and is ignored.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import math
import os
import re
import sys
import threading
import weakref
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

from xp.errors import ConfigError, StorageError
from xp.record.columns import column_points, parse_columns
from xp.record.header import RunHeader
from xp.record.media import MediaEntry
from xp.record.model import FileEntry
from xp.record.spill import SeriesSpill

FLUSH_INTERVAL = 0.5  # seconds; the contract is "at least every second"
SUFFIX = ".journal"
PART = ".part"  # <run id>-<pid>-<random>.part: what a child process logged into the run
FAILED = ".failed"  # a journal that could not be committed, set aside with its reason
CORRUPT = ".corrupt"  # a journal without a readable header
VERSION = 4  # 4: big flushes in binary C blocks, header H4 (3: B blocks, H3; 2: CRC-32 per
# line; 1: no checksums)
HEADER = "H4"  # not "H" or "H3": an older xp refuses the journal (`.corrupt`) instead of
# skipping the block kind it does not know, which would record the run without its points
COLUMNS_MIN = 4096  # a flush of this many points goes as one binary C block, fewer as B lines
_CRC_RE = re.compile(rb"\t([0-9a-f]{8})\Z")
_DRAIN = 1 << 16  # points replayed into memory before they go to the spill


@dataclass
class RunState:
    """Everything a run has logged, in memory or replayed from a journal."""

    header: RunHeader
    params: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    points: list[tuple[str, float, int, float]] = field(default_factory=list)
    artifacts: dict[str, FileEntry] = field(default_factory=dict)
    inputs: dict[str, FileEntry] = field(default_factory=dict)
    datasets: list[dict[str, Any]] = field(default_factory=list)
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    end: dict[str, Any] | None = None
    media: dict[str, MediaEntry] = field(default_factory=dict)  # by artifact path
    damaged: int = 0  # lines dropped because their checksum did not match
    # where points go once journaled (record/spill.py): ``points`` holds only newer ones.
    # Shared by copies: a caller that adds to it and fails rolls it back (``mark``).
    spill: SeriesSpill | None = None

    def copy(self) -> RunState:
        """A copy whose containers can be changed (merging parts) without touching this one."""
        h = self.header
        header = dataclasses.replace(
            h,
            command=list(h.command),
            context=dict(h.context),
            skipped=list(h.skipped),
            warnings=list(h.warnings),
        )
        return RunState(
            header=header,
            params=dict(self.params),
            tags=dict(self.tags),
            points=list(self.points),
            artifacts=dict(self.artifacts),
            inputs=dict(self.inputs),
            media=dict(self.media),
            datasets=list(self.datasets),
            models=dict(self.models),
            end=None if self.end is None else dict(self.end),
            damaged=self.damaged,
            spill=self.spill,
        )

    def drain(self) -> None:
        """Move the points held in memory to the spill (when there is one)."""
        if self.spill is not None and self.points:
            self.spill.add(self.points)
            self.points.clear()  # the same list: whoever holds it (replay) keeps seeing it

    def add_dataset(self, entry: dict[str, Any]) -> bool:
        """Record an MLflow dataset input once (by name, digest and tags); True when new."""
        if entry in self.datasets:
            return False
        self.datasets.append(entry)
        return True


class Journal:
    """Created under a temp name, locked and headed, then renamed: a reader never sees a
    journal that has no header or no owner."""

    def __init__(self, path: Path, header: bytes, exclusive: bool = False) -> None:
        """With ``exclusive``, FileExistsError when a journal is there already: a run being
        continued claims its id this way, so two processes can never both continue it."""
        self.path = path
        tmp = path.with_suffix(f".new-{os.getpid()}" if exclusive else ".new")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise StorageError(
                f"cannot create the run journal {path}: {exc.strerror}; free disk space"
            ) from None
        fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self.size = 0
        try:
            self.write(header)
            if exclusive:
                os.link(tmp, path)  # fails when the name exists: create-if-absent
                os.unlink(tmp)
            else:
                os.replace(tmp, path)
        except (OSError, StorageError):
            os.close(self.fd)
            os.unlink(tmp)
            raise

    def write(self, data: bytes) -> None:
        """Append ``data`` whole or not at all: a write cut by a full disk is truncated away,
        so a retry never leaves a line twice (a point replayed twice is a different series)."""
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self.fd, view) :]
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.ftruncate(self.fd, self.size)
            raise StorageError(
                f"cannot write the run journal {self.path}: {exc.strerror}; free disk space"
            ) from None
        self.size += len(data)

    def sync(self) -> None:
        """Make what was written durable (before a commit is given up on)."""
        with contextlib.suppress(OSError):
            os.fsync(self.fd)

    def close(self, remove: bool) -> None:
        if self.fd < 0:
            return
        if remove:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
        os.close(self.fd)
        self.fd = -1


def seal(body: str) -> bytes:
    """One journal line: ``body``, a tab, its CRC-32 as 8 hex digits, a newline."""
    data = body.encode("utf-8", "backslashreplace")  # a stray surrogate must not lose the line
    return b"%b\t%08x\n" % (data, zlib.crc32(data))


def seal_many(bodies: list[str]) -> bytes:
    """``seal`` for many lines at once (the flusher's path: one encode, one join)."""
    if not bodies:
        return b""
    crc32 = zlib.crc32
    lines = "\n".join(bodies).encode("utf-8", "backslashreplace").split(b"\n")
    if len(lines) != len(bodies):  # a newline inside a body (never from xp): one by one
        return b"".join(seal(b) for b in bodies)
    return b"".join([b"%b\t%08x\n" % (b, crc32(b)) for b in lines])


Block = tuple[str, str, int, int, int, Any]
"""One metric's points of one flush, for ``SeriesSpill.add_block``: key, the lines of
``series/<key>.tsv`` (each ending in a newline), count, first step, final step and value."""


def metric_blocks(points: list[tuple[str, Any, int, float]]) -> tuple[bytes, list[Block]]:
    """The sealed ``B`` lines of points holding floats and ints (what ``log_metric`` keeps:
    their repr is ``format_number``'s spelling) and the same points as series blocks.

    Each point is spelled once, as its series line (issue 18: the journal line of a point
    was most of a log call's cost); the journal holds those lines joined by ';', the spill
    the same text joined by newlines. Consecutive points in the same millisecond share
    its spelling."""
    groups: dict[str, list[Any]] = {}
    floor = math.floor
    low = high = 0.0  # the ms in text of the last point: good while low <= x < high
    ms = ""
    for key, value, step, ts in points:
        x = ts * 1000 + 0.001  # spill.to_ms, inlined: ms = floor(x)
        if not low <= x < high:  # a tight loop logs ~1,000 points per ms: spelled once
            whole = floor(x)
            low, high, ms = float(whole), float(whole + 1), str(whole)
        g = groups.get(key)
        if g is None:
            g = groups[key] = [[], step, step, value]
        g[0].append(f"{step}\t{value!r}\t{ms}")
        if step >= g[2]:  # MLflow's final value: the highest step, the last among equals
            g[2] = step
            g[3] = value
    bodies: list[str] = []
    blocks: list[Block] = []
    for key, (lines, first, final_step, final) in groups.items():
        bodies.append(
            f"B\t{key}\t{len(lines)}\t{first}\t{final_step}\t{final!r}\t{';'.join(lines)}"
        )
        lines.append("")
        blocks.append((key, "\n".join(lines), len(lines) - 1, first, final_step, final))
    return seal_many(bodies), blocks


def _number(text: str) -> float | int:
    """A value as the series spell it: an int, or a float (``nan``, ``inf`` too)."""
    return int(text) if text.lstrip("-").isdigit() else float(text)


def _block(state: RunState, rest: str) -> None:
    """Apply a ``B`` line's fields (after its kind): to the spill as they are when there is
    one (no point is parsed: a big journal recovers at the speed of copying), else as
    points. ValueError when the fields do not agree with each other."""
    key, count_text, first_text, final_step_text, final_text, payload = rest.split("\t", 5)
    count = int(count_text)
    if count < 1 or payload.count(";") != count - 1 or payload.count("\t") != 2 * count:
        raise ValueError("a B line's point count does not match its points")
    first, final_step, final = int(first_text), int(final_step_text), _number(final_text)
    spill = state.spill
    if spill is not None and payload.isascii():
        state.drain()  # points of M lines before it (a journal never mixes them: cheap)
        spill.add_block((key, payload.replace(";", "\n") + "\n", count, first, final_step, final))
        return
    points = []
    for point in payload.split(";"):
        step, value, ms = point.split("\t")
        points.append((key, _number(value), int(step), int(ms) / 1000))
    state.points += points  # all or none: a line that does not parse changes nothing


def line(kind: str, payload: Any) -> bytes:
    """A sealed line of ``kind`` with a JSON payload."""
    return seal(f"{kind}\t{json.dumps(payload, ensure_ascii=False, sort_keys=True)}")


def header_line(header: RunHeader) -> bytes:
    return line(HEADER, {**header.to_json(), "journal": VERSION})


def _check(raw: bytes, sealed: bool) -> str | None:
    """The body of one line, or None when its checksum fails (or it has none but must)."""
    match = _CRC_RE.search(raw)
    if match is not None:
        body = raw[: match.start()]
        if zlib.crc32(body) == int(match.group(1), 16):
            return body.decode("utf-8", "replace")
        if sealed:
            return None
    elif sealed:
        return None
    return raw.decode("utf-8", "replace")  # a version 1 journal: no checksums to check


def _header(first: bytes) -> tuple[RunHeader, bool]:
    """The header of a journal and whether its lines are sealed; ValueError if unreadable."""
    body = _check(first, sealed=False)
    if body is None:
        raise ValueError("journal header fails its checksum")
    kind, _, text = body.partition("\t")
    if kind != "H" and not (kind[:1] == "H" and kind[1:].isdigit()):  # H5 and on: newer
        raise ValueError("journal has no header")
    data = json.loads(text)  # a damaged sealed header fails here: "}\tcrc" is no JSON
    if not isinstance(data, dict):
        raise ValueError("journal header is not a mapping")
    version = data.get("journal", 1)
    if (
        not isinstance(version, int)
        or version > VERSION
        or kind != ("H" if version < 3 else f"H{version}")
    ):
        raise ValueError(
            f"journal version {version!r} is not one this xp reads (1 to {VERSION}); upgrade"
            " xp, then `xp recover --retry-failed`"
        )
    sealed = _CRC_RE.search(first) is not None and version >= 2
    if version >= 2 and not sealed:
        raise ValueError("journal header fails its checksum")
    return RunHeader.from_json(data), sealed


def read_header(first: bytes) -> tuple[RunState, bool]:
    """The state after a journal's first line and whether its lines are sealed (version 2
    and later); ValueError when the header is unreadable."""
    header, sealed = _header(first)
    return RunState(header=header), sealed


def replay(
    data: bytes | IO[bytes], base: RunState | None = None, spill: SeriesSpill | None = None
) -> RunState:
    """The state a journal (or part) holds; damaged lines are dropped and counted. With
    ``base`` (what a continued run had before this session, read from its previous commit)
    the journal's lines apply on top of it. Given a file and a ``spill``, the journal is read
    line by line and its points go to the spill as they come: memory stays bounded
    whatever the journal's size (issue 18)."""
    body: Iterable[bytes]
    if isinstance(data, bytes):
        raw_lines = data.split(b"\n")[:-1]  # the part after the last newline is incomplete
        if not raw_lines:
            raise ValueError("journal has no header")
        first, body = raw_lines[0], raw_lines[1:]
    else:
        first = data.readline()
        if not first.endswith(b"\n"):
            raise ValueError("journal has no header")
        first = first[:-1]
        body = (raw[:-1] for raw in data if raw.endswith(b"\n"))
    state, sealed = read_header(first)
    state.spill = spill
    if base is not None:
        state.params = dict(base.params)
        state.tags = dict(base.tags)
        state.points = list(base.points)
        state.artifacts = dict(base.artifacts)
        state.inputs = dict(base.inputs)
        state.media = dict(base.media)
        state.datasets = list(base.datasets)
        state.models = dict(base.models)
    points = state.points
    for raw in body:
        apply_line(state, raw, sealed=sealed)
        if spill is not None and len(points) >= _DRAIN:
            spill.add(points)
            points.clear()
    state.drain()
    return state


def apply_line(state: RunState, raw: bytes, *, sealed: bool) -> None:
    """Apply one complete journal line after the header (without its newline): the one reader
    of journal lines, for ``replay`` (recovery, parts) and for readers that follow a live
    journal as it grows (``xp show``, ``xp ui``). A line whose checksum fails is counted in
    ``state.damaged`` and changes nothing else."""
    if not raw:  # the newline a set-aside journal got before its X line (tracking/recover)
        return
    text = _check(raw, sealed)
    if text is None:
        state.damaged += 1
        return
    kind, _, rest = text.partition("\t")
    try:
        if kind == "B":
            _block(state, rest)
        elif kind == "C":
            block = parse_columns(rest)
            if state.spill is not None:
                state.drain()  # points before it (of B or M lines) come first
                state.spill.add_columns(block)
            else:
                state.points += column_points(block)
        elif kind == "M":
            key, value, step, ts = rest.split("\t")
            state.points.append((key, _number(value), int(step), float(ts)))
        elif kind == "P":
            k, v = json.loads(rest)
            state.params[k] = v
        elif kind == "T":
            k, v = json.loads(rest)
            state.tags[k] = v
        elif kind == "R":
            state.tags.pop(json.loads(rest), None)
        elif kind == "A":
            entry = FileEntry.from_dict(json.loads(rest))
            state.artifacts[entry.path] = entry
        elif kind == "I":
            entry = FileEntry.from_dict(json.loads(rest))
            state.inputs[entry.path] = entry
        elif kind == "G":
            media = MediaEntry.from_dict(json.loads(rest), "journal")
            state.media[media.path] = media
        elif kind == "D":
            dataset = json.loads(rest)
            if isinstance(dataset, dict):
                state.add_dataset(dataset)
        elif kind == "O":
            model = json.loads(rest)
            if isinstance(model, dict) and isinstance(model.get("id"), str):
                state.models[model["id"]] = model
        elif kind == "U":
            changes = json.loads(rest)
            if isinstance(changes, dict):
                state.header.apply(changes)
        elif kind == "E":
            end = json.loads(rest)
            state.end = end if isinstance(end, dict) else None
    except (ValueError, TypeError, KeyError, AttributeError, ConfigError):
        state.damaged += 1  # a line that checks out but does not parse: a bug, counted


def input_dirs(data: bytes) -> list[str]:
    """The sha256 of every folder input (its manifest) a journal's ``I`` lines name."""
    out = []
    for raw in data.split(b"\n"):
        if raw.startswith(b"I\t") and b'"dir"' in raw:
            body = raw[2:]
            match = _CRC_RE.search(body)
            if match is not None:
                body = body[: match.start()]
            with contextlib.suppress(ValueError, TypeError, AttributeError):
                entry = json.loads(body)
                if entry.get("kind") == "dir" and isinstance(entry.get("sha256"), str):
                    out.append(entry["sha256"])
    return out


def _lock_if_unowned(path: Path, how: int) -> int | None:
    """An fd holding ``how`` (LOCK_EX/LOCK_SH) on ``path``, or None while its writer lives."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, how | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)  # alive: its writer holds the lock
        return None
    return fd


def flocked_inodes() -> set[int] | None:
    """Inodes of files some process holds an ``flock`` on (Linux's ``/proc/locks``), or None
    where the kernel does not say.

    How a reader (``xp show``, ``xp ui``) tells a live journal from an orphaned one without
    taking its lock: even a shared probe lock would make a concurrent ``xp recover``'s
    exclusive one fail, and that recovery would be skipped.
    """
    try:
        with open("/proc/locks", encoding="ascii", errors="replace") as fh:
            text = fh.read()
    except OSError:
        return None
    found: set[int] = set()
    for entry in text.splitlines():
        # "1: FLOCK  ADVISORY  WRITE 3416 fe:00:1234 0 EOF"; waiters are marked "->"
        parts = entry.split()
        if len(parts) >= 6 and parts[1] == "FLOCK":
            with contextlib.suppress(ValueError):
                found.add(int(parts[5].rsplit(":", 1)[-1]))
    return found


def dead_journals(journal_dir: Path) -> Iterator[tuple[Path, int]]:
    """Journals whose writer is gone, each yielded with an fd holding its lock."""
    try:
        names = os.listdir(journal_dir)
    except (FileNotFoundError, NotADirectoryError):
        return
    for name in sorted(names):
        if not name.endswith(SUFFIX):
            continue
        path = journal_dir / name
        fd = _lock_if_unowned(path, fcntl.LOCK_EX)
        if fd is None:
            continue
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False  # recovered by someone else while we waited
        if not same:
            os.close(fd)
            continue
        yield path, fd


def merge_parts(state: RunState, journal_dir: Path) -> list[Path]:
    """Fold the parts child processes logged into ``state``; returns the part files merged.

    A part still locked belongs to a live process (a grandchild that outlived its parent):
    it is left alone and stays on disk.
    """
    run_id = state.header.id
    merged: list[Path] = []
    try:
        names = sorted(n for n in os.listdir(journal_dir) if n.startswith(f"{run_id}-"))
    except OSError:  # no journal folder (nothing was journaled), or not a folder
        return merged
    for name in names:
        if not name.endswith(PART):
            continue
        path = journal_dir / name
        fd = _lock_if_unowned(path, fcntl.LOCK_SH)
        if fd is None:
            continue
        state.drain()  # the run's own points come first
        mark = state.spill.mark() if state.spill is not None else None
        try:
            with open(fd, "rb", closefd=False) as fh:
                part = replay(fh, spill=state.spill)
        except (OSError, ValueError):
            if mark is not None and state.spill is not None:
                state.spill.rollback(mark)
            continue
        finally:
            os.close(fd)
        warnings = state.header.warnings
        for key, value in part.params.items():
            if state.params.setdefault(key, value) != value:
                warnings.append(
                    f"param {key!r}: a child logged {value!r}, kept {state.params[key]!r}"
                )
        state.tags.update(part.tags)
        state.points.extend(part.points)
        state.damaged += part.damaged
        state.artifacts.update(part.artifacts)
        state.inputs.update(part.inputs)
        state.media.update(part.media)
        for dataset in part.datasets:
            state.add_dataset(dataset)
        state.models.update(part.models)
        if state.header.auto_name and not part.header.auto_name:
            state.header.name = part.header.name
            state.header.auto_name = False
        # The script's start_run(experiment=, description=) under `xp run` (whose own -e / -m
        # win when given): the part's header carries them.
        if state.header.experiment == "default" and part.header.experiment != "default":
            state.header.experiment = part.header.experiment
        if state.header.message is None and part.header.message is not None:
            state.header.message = part.header.message
        merged.append(path)
    return merged


class Flushable(Protocol):
    id: str

    def flush(self) -> None: ...


class Flusher:
    """One daemon thread per process that flushes every live run's buffers."""

    def __init__(self) -> None:
        self._runs: weakref.WeakSet[Any] = weakref.WeakSet()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._reported: set[tuple[str, str]] = set()

    def register(self, run: Flushable) -> None:
        with self._lock:
            self._runs.add(run)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="xp-flush", daemon=True)
                self._thread.start()

    def unregister(self, run: Flushable) -> None:
        with self._lock:
            self._runs.discard(run)

    def is_live(self, run_id: str) -> bool:
        """Whether this process is logging run ``run_id`` (as its owner, not as a part)."""
        with self._lock:
            return any(r.id == run_id and not getattr(r, "attached", False) for r in self._runs)

    def _loop(self) -> None:
        while True:
            self._wake.wait(FLUSH_INTERVAL)
            with self._lock:
                runs = list(self._runs)
            for run in runs:
                try:
                    run.flush()
                except Exception as exc:  # the thread must go on; the user must know
                    self.report(run, exc)

    def report(self, run: Flushable, exc: BaseException) -> None:
        """Say once per run and problem, on stderr and at once, that journaling failed.

        The background thread has no caller to raise to; the run keeps its values in memory
        and ``end_run`` still commits them, so only a crash before then would lose them.
        """
        key = (run.id, f"{type(exc).__name__}: {exc}")
        if key in self._reported:
            return
        self._reported.add(key)
        sys.stderr.write(
            f"xp: warning: run {run.id}: cannot write its journal ({key[1]}); logging goes on"
            " in memory and end_run still records the run, but a crash before then loses it\n"
        )
        sys.stderr.flush()


flusher = Flusher()
