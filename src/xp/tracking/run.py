"""A live run: cheap logging into memory, a journal for crash safety, a commit at the end.

Nothing a log call accepted is lost: values are checked at the call (docs/api.md, "Values"),
so what is in memory can always be written; ``finish`` keeps the journal whenever the commit
fails, for a retry in this process (``xp.end_run()`` again) or ``xp recover`` after it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xp import format as fmt
from xp import fsutil
from xp.config import ProjectConfig, load_config
from xp.errors import (
    InvalidValueError,
    ParamChangedError,
    RunEndedError,
    RunNotRecordedError,
    StorageError,
    XPError,
)
from xp.gitstore import protect
from xp.gitstore.repo import GitRepo, find_repo
from xp.gitstore.trees import read_file, read_folder
from xp.record import values
from xp.record.build import (
    build_record,
    iso_time,
    parse_time,
    state_of_record,
    to_ms,
)
from xp.record.columns import column_block
from xp.record.context import (
    installed_packages,
)
from xp.record.header import RunHeader
from xp.record.journal import (
    COLUMNS_MIN,
    PART,
    SUFFIX,
    Block,
    Journal,
    RunState,
    flusher,
    header_line,
    line,
    merge_parts,
    metric_blocks,
    seal,
)
from xp.record.media import MediaEntry, media_path
from xp.record.model import FileEntry, RunRecord, single_at_zero
from xp.record.names import auto_name
from xp.record.spill import SeriesSpill
from xp.tracking import media, reads
from xp.tracking.record_commit import (
    WRITE_BUDGET,
    check_message,
    commit_record,
    cost,
    new_header,
    take_snapshot,
    wants_system_metrics,
)

# Points held in memory before a log call flushes them itself: a loop that logs faster than
# the flusher thread journals (it shares the GIL) would otherwise grow without bound.
_MAX_HELD = 100_000
# a point's time in seconds, as ``values.timestamp_value`` bounds it (years 1-9999)
_EARLIEST, _LATEST = values.MIN_TIMESTAMP_MS / 1000, values.MAX_TIMESTAMP_MS / 1000


def json_bytes(data: Any) -> bytes:
    """A ``.json`` artifact's bytes as ``log_dict`` writes them."""
    return json.dumps(data, indent=2, sort_keys=True).encode() + b"\n"


def _slash_flatten(values: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(values, dict):
        raise InvalidValueError(f"log takes a dict of metric name -> number, got {values!r}")
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            out.update(_slash_flatten(value, f"{prefix}{key}/"))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _extension(name: str | None) -> str | None:
    if name is None or "." not in name.rsplit("/", 1)[-1]:
        return None
    return name.rsplit(".", 1)[-1].lower()


_MEDIA_EXTENSIONS = {"png", "jpg", "jpeg", "gif", "webp", "bmp", "svg", "pdf", "html", "json"}
_MEDIA_EXTENSIONS |= {"parquet", "csv", "txt"}


def _strip_extension(name: str) -> str:
    ext = _extension(name)
    return name[: -len(ext) - 1] if ext in _MEDIA_EXTENSIONS else name


@dataclasses.dataclass(frozen=True)
class _Logged:
    """A media entry logged and the artifact files that hold it."""

    entry: MediaEntry
    files: list[FileEntry]


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _end_time(value: Any) -> float:
    """An ``end_time`` given by an importer: seconds since the epoch, years 1-9999."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    seconds = float(value) if ok else math.nan
    if not values.MIN_TIMESTAMP_MS / 1000 <= seconds <= values.MAX_TIMESTAMP_MS / 1000:
        raise InvalidValueError(f"end_time must be seconds since the epoch, got {value!r}")
    return seconds


def read_record(repo: GitRepo, commit: str) -> RunRecord | None:
    """The run record in ``commit``'s tree, or None when it carries none."""
    folder = read_folder(repo, commit, fmt.RECORD_DIR)
    if folder is None:
        return None
    try:
        keys = [p[:-4] for p in folder.files(fmt.SERIES_DIR) if p.endswith(".tsv")]

        def read_series(name: str) -> bytes | None:  # one at a time, when asked (issue 18)
            return read_file(repo, commit, f"{fmt.RECORD_DIR}/{name}")

        return RunRecord.from_files(folder.read, keys, commit[:12], read_series=read_series)
    finally:
        folder.close()  # the object store's open packs


@dataclass(frozen=True)
class Continued:
    """A run to continue after it ended: its id, the commit its ref is at, the value the
    local ref must still have when the session commits (None: there is no local ref yet,
    e.g. a fetched run), and the record at that commit."""

    run_id: str
    commit: str
    expected: str | None
    record: RunRecord


class Run:
    """One run being logged. Log calls append to lists; ``flush`` journals; ``finish`` commits."""

    def __init__(
        self,
        repo: GitRepo | None = None,
        *,
        name: str | None = None,
        experiment: str | None = None,
        parent: str | None = None,
        message: str | None = None,
        config: ProjectConfig | None = None,
        reuse_snapshot: bool = True,
        attach: str | None = None,
        command: list[str] | None = None,
        cwd: str | None = None,
        system_metrics: bool | None = None,
        start_time: float | None = None,
        all_series: bool = False,
        continues: Continued | None = None,
        run_id: str | None = None,
    ) -> None:
        """A new run, or with ``attach`` a part of run ``attach`` that another process owns,
        or with ``continues`` a new session of a run that ended (see ``tracking.resume``).

        An attached part (a script started by ``xp run``) logs into its own journal part; the
        owner merges the parts into its run when it commits. See ``child_env``.
        ``system_metrics`` (default: ``XP_SYSTEM_METRICS``, then the project config) starts
        the sampler of ``tracking/system_metrics.py``; an attached part never samples, its
        owner does. ``run_id``: a new run's id chosen beforehand (a distributed sweep's point:
        every attempt of the task records the same ref, and the remote keeps the first).
        """
        if run_id is not None and not fmt.ID_RE.match(run_id):
            raise InvalidValueError(f"run id {run_id!r} is not an xp run id; leave it out")
        if name is not None:
            fmt.validate_name(name, "run name")
        if experiment is not None:
            fmt.validate_name(experiment, "experiment name")
        message = check_message(message)
        self.repo = repo or find_repo()
        self.config = config or load_config(self.repo)
        start = time.time() if start_time is None else start_time
        self.attached = attach is not None
        self.id = attach or run_id or fmt.new_run_id(start)
        if continues is not None:
            old = continues.record
            self.id = continues.run_id
            start = parse_time(old.meta.get("start_time")) or start
            name = name or old.name
            experiment = experiment or old.experiment
            parent = parent if parent is not None else _text(old.meta.get("parent"))
            message = message if message is not None else _text(old.meta.get("message"))
        self.name = name or auto_name(self.id)
        header = new_header(
            self.repo,
            self.id,
            start,
            name=self.name,
            experiment=experiment,
            parent=parent,
            message=message,
            command=command,
            cwd=cwd,
            all_series=all_series,
            auto_name=name is None,
        )
        self.tree = ""
        self.baseline: str | None = None
        self._gc_seen = False  # a `git gc` ran during the run: check the snapshot at the end
        journal_dir = self.repo.xp_dir / "journal"
        if self.attached:
            journal_dir = Path(os.environ.get("XP_JOURNAL_DIR") or journal_dir)
            journal_path = journal_dir / f"{self.id}-{os.getpid()}-{os.urandom(3).hex()}{PART}"
        else:
            self._gc_seen = take_snapshot(self.repo, self.config, header, reuse=reuse_snapshot)
            self.tree = header.tree or ""
            self.baseline = header.baseline
            journal_path = journal_dir / f"{self.id}{SUFFIX}"
        self.journal_dir = journal_dir
        # journaled points leave memory for the spill: a run's RAM does not grow with its
        # point count (issue 18); nothing touches the disk until the lines pass 8 MB
        spill = SeriesSpill(lambda: fsutil.private_tmp(self.repo.xp_dir))
        self.state = RunState(header=header, spill=spill)
        reads.watch(self.repo.worktree)
        self._keys: set[str] = set()  # metric names seen while running (emptied at the end)
        self._metrics = 0
        self._budget = {"param": 0, "tag": 0, "metric": 0}
        self._next_step: dict[str, int] = {}
        if continues is not None:
            old = continues.record
            header.previous = continues.commit
            header.ref_expected = continues.expected
            header.resumed = [str(t) for t in old.meta.get("resumed") or []]
            header.resumed.append(iso_time(time.time()))
            header.all_series = all_series or any(
                single_at_zero(old.series, key) for key in old.series
            )
            # the previous commit's points go to the spill, one series at a time; they are
            # in that commit already, so they are not journaled again
            last: dict[str, int] = {}
            self.state = state_of_record(old, header, spill=spill, last_steps=last)
            for key, step in last.items():
                self._keys.add(key)
                self._next_step[key] = step + 1
        self._events: list[tuple[str, Any]] = []  # (kind, payload): serialized when flushed
        self._flushed_events = 0
        self._held_limit = _MAX_HELD
        self._cache: Path | None = None
        self._deferred: list[Callable[[], None]] = []  # see defer()
        self._io_lock = threading.Lock()
        self.status = "running"
        self.commit: str | None = None
        self.error: BaseException | None = None  # why the last finish() could not commit
        self._end: float | None = None
        self._protected = False  # a kept pack holds the snapshot (xp.gitstore.protect)
        self._protect_pending = False  # the journal is new: keep the snapshot after its write
        # The journal file is made by the first flush (<= 0.5 s in) or when a child process
        # needs it: a run shorter than that never touches the disk before its commit.
        self.journal: Journal | None = None
        self._journal_path = journal_path
        self._closed = False
        self._committing = False  # _record holds the points; flushes wait for the outcome
        self._log_step = 0  # the step counter of xp.log (one for all keys, as W&B's)
        self._media_steps: dict[str, int] = {}
        self._sampler: Any = None
        if continues is not None:
            # xp.log's counter and each media series go on after the last step logged, so a
            # new session never replaces an earlier session's picture or point.
            self._log_step = max(self._next_step.values(), default=0)
            for entry in self.state.media.values():
                if entry.step is not None:
                    self._media_steps[entry.key] = max(
                        self._media_steps.get(entry.key, 0), entry.step + 1
                    )
            # Claimed now, not at the first flush: the journal is what tells a second process
            # that this run is being continued (FileExistsError if it is there already).
            self.journal = Journal(journal_path, header_line(header), exclusive=True)
        flusher.register(self)
        if not self.attached and wants_system_metrics(system_metrics, self.config):
            self.start_system_metrics()

    def _journal(self, first: bytes = b"") -> Journal:
        """The journal, made on first use with ``first`` after its header, in one write (the
        file never appears without what the run had logged); the caller calls ``_protect``."""
        if self.journal is None:
            self.journal = Journal(self._journal_path, header_line(self.state.header) + first)
            self._protect_pending = not self.attached and bool(self.state.header.dirty)
        return self.journal

    def _write(self, data: bytes) -> None:
        """Append ``data`` to the journal (made now if need be), then keep the snapshot."""
        if self.journal is None:
            self._journal(data)
        else:
            self.journal.write(data)
        self._protect()

    def _protect(self) -> None:
        """Keep the snapshot from git gc, once, after the journal's first write: the points
        go to disk first (a SIGKILL during the pack loses nothing more), and under the I/O
        lock, so ``finish`` sees whether a kept pack is there to release."""
        if not self._protect_pending:
            return
        self._protect_pending = False
        if protect.gc_running(self.repo.common_dir) is not None:
            self._gc_seen = True
        self._protected = protect.protect(self.repo, self.id, self.tree, self.baseline)
        self._gc_seen = self._gc_seen or not self._protected

    def child_env(self) -> dict[str, str]:
        """Environment for a child process whose ``xp.start_run()`` should log into this run."""
        with self._io_lock:
            self._journal()  # a crash of this process must leave something to merge into
            self._protect()
        return {
            "XP_RUN_ID": self.id,
            "XP_JOURNAL_DIR": str(self.journal_dir),
            # a nested run the script starts belongs to this run's experiment
            "XP_RUN_EXPERIMENT": self.state.header.experiment,
        }

    @property
    def ref(self) -> str:
        return fmt.run_ref(self.id)

    @property
    def run_id(self) -> str:  # MLflow's spelling
        return self.id

    @property
    def start_time(self) -> float:
        return self.state.header.start_time

    @property
    def header(self) -> RunHeader:
        """The run's header; change it with ``update_header`` so the change is journaled."""
        return self.state.header

    def update_header(self, **changes: Any) -> None:
        """Change header fields (``exit_code=3``); journaled, so recovery keeps them."""
        self.state.header.apply(changes)
        self._events.append(("U", changes))

    def __repr__(self) -> str:
        state = self.status if self.commit is not None or self.status == "running" else "unrecorded"
        return f"<xp.Run {self.id} {self.name!r} {state}>"

    def _check_live(self) -> None:
        if self.status != "running":
            raise RunEndedError(
                f"run {self.id} has ended ({self.status}); start a new run to log more"
            )

    def _spend(self, kind: str, cost: int) -> None:
        """Keep each record file under the size every reader accepts (docs/format.md)."""
        if self._budget[kind] + cost > WRITE_BUDGET:
            raise InvalidValueError(
                f"the run's {kind}s would pass {WRITE_BUDGET >> 20} MiB; log large values as"
                " artifacts (log_text, log_dict)"
            )
        self._budget[kind] += cost

    def _new_metric(self, key: str) -> None:
        self._check_live()
        fmt.validate_metric_key(key)
        if self._metrics >= fmt.MAX_ENTRIES:
            raise InvalidValueError(
                f"a run holds at most {fmt.MAX_ENTRIES:,} metrics; {key!r} would be one more"
            )
        self._spend("metric", (len(key) if key.isascii() else len(key.encode())) + 40)
        self._keys.add(key)
        self._metrics += 1

    # -- logging: memory only -------------------------------------------------------------
    def log_metric(
        self, key: str, value: float, step: int | None = None, timestamp: int | None = None
    ) -> None:
        if key not in self._keys:
            self._new_metric(key)
        if type(value) is not float:
            value = values.metric_value(key, value)
        if step is None:
            step = self._next_step.get(key, 0)
        elif type(step) is not int or not -9223372036854775808 <= step <= 9223372036854775807:
            step = values.step_value(key, step)
        self._next_step[key] = step + 1
        ts = time.time() if timestamp is None else values.timestamp_value(key, timestamp)
        points = self.state.points
        points.append((key, value, step, ts))
        if len(points) > self._held_limit:  # the flusher thread is behind: the logger helps
            self._help_flush()

    def log_metrics(
        self, metrics: dict[str, float], step: int | None = None, timestamp: int | None = None
    ) -> None:
        """Several metrics at one step and one time (MLflow's ``log_metrics``): what
        ``log_metric`` does for each, with the step checked and the clock read once. With an
        explicit step, all or none: a bad value logs none of them (per-step callbacks, which
        then log each on its own)."""
        if (
            timestamp is not None
            or type(step) is not int
            or not -9223372036854775808 <= step <= 9223372036854775807
        ):
            for key, value in metrics.items():
                self.log_metric(key, value, step, timestamp)
            return
        self._log_batch(metrics, step, time.time())

    def log_metrics_at(self, metrics: dict[str, float], step: int, seconds: float) -> None:
        """``log_metrics`` at an explicit step and a time already read (seconds since the
        epoch, as ``time.time()`` gives it): a callback that logs a framework's iterations
        after the fact keeps each iteration's own time. All or none, as ``log_metrics``."""
        if type(step) is not int or not -9223372036854775808 <= step <= 9223372036854775807:
            step = values.step_value(next(iter(metrics), "metric"), step)
        if type(seconds) is not float or not _EARLIEST <= seconds <= _LATEST:  # NaN too
            seconds = values.seconds_value(next(iter(metrics), "metric"), seconds)
        self._log_batch(metrics, step, seconds)

    def _log_batch(self, metrics: dict[str, float], step: int, ts: float) -> None:
        keys = self._keys
        batch = []
        for key, value in metrics.items():
            if key not in keys:
                self._new_metric(key)
            if type(value) is not float:
                value = values.metric_value(key, value)
            batch.append((key, value, step, ts))
        after = step + 1
        next_step = self._next_step
        for key in metrics:
            next_step[key] = after
        points = self.state.points
        points.extend(batch)  # one call: the flusher thread sees all of them or none
        if len(points) > self._held_limit:
            self._help_flush()

    def log(self, values: dict[str, Any], step: int | None = None) -> None:
        """Several metrics at one step; nested dicts become ``a/b`` keys (W&B's ``log``).

        Without ``step`` every call is the next step of one counter shared by all keys, so
        keys logged in the same call line up; ``step=`` sets the counter.
        """
        if step is None:
            step = self._log_step
        elif isinstance(step, bool) or not isinstance(step, int):
            raise InvalidValueError(f"step must be an integer, got {step!r}")
        for key, value in _slash_flatten(values).items():
            self.log_metric(key, value, step)
        self._log_step = max(self._log_step, step + 1)

    def log_param(self, key: str, value: Any) -> Any:
        self._check_live()
        fmt.validate_key(key, "param name")
        value = values.param_value(key, value)
        params = self.state.params
        if key in params:
            old = params[key]
            if old != value and not (old != old and value != value):  # NaN == NaN here
                raise ParamChangedError(
                    f"param {key!r} was logged as {params[key]!r}, now {value!r}; a run's params"
                    " cannot change: start a new run, or log the new value under another name"
                )
            return value
        if len(params) >= fmt.MAX_ENTRIES:
            raise InvalidValueError(f"a run holds at most {fmt.MAX_ENTRIES:,} params")
        t = type(value)
        short = t is float or t is bool or value is None or (t is int and value.bit_length() < 64)
        self._spend("param", len(key) + 32 if short else cost(key, values.text(value)))
        params[key] = value
        self._events.append(("P", [key, value]))
        return value

    def update_param(self, key: str, value: Any) -> Any:
        """Give a logged param a new value, kept with a warning naming the old one.

        For code written for tools whose config may change (``wandb.config.update(...,
        allow_val_change=True)``); ``log_param`` itself never changes a value.
        """
        self._check_live()
        fmt.validate_key(key, "param name")
        value = values.param_value(key, value)
        old = self.state.params.get(key, value)
        if key in self.state.params and old != value:
            self.warn(f"param {key!r} changed from {old!r} to {value!r} while the run went")
        self.state.params[key] = value
        self._events.append(("P", [key, value]))
        return value

    def set_name(self, name: str) -> None:
        """Rename the run before it is committed (Comet's ``set_name``, W&B's ``run.name =``)."""
        self._check_live()
        fmt.validate_name(name, "run name")
        self.name = name
        self.update_header(name=name, auto_name=False)

    def log_params(self, params: dict[str, Any]) -> None:
        from xp.record.model import flatten

        for key, value in flatten(params).items():
            self.log_param(key, value)

    def set_tag(self, key: str, value: Any) -> None:
        self._check_live()
        fmt.validate_key(key, "tag name")
        text = values.tag_value(key, value)
        tags = self.state.tags
        if key not in tags and len(tags) >= fmt.MAX_ENTRIES:
            raise InvalidValueError(f"a run holds at most {fmt.MAX_ENTRIES:,} tags")
        self._spend("tag", cost(key, text))
        tags[key] = text
        self._events.append(("T", [key, text]))

    def set_tags(self, tags: dict[str, Any]) -> None:
        for key, value in tags.items():
            self.set_tag(key, value)

    def delete_tag(self, key: str) -> None:
        """Remove tag ``key`` (MLflow's ``delete_tag``); journaled, so recovery agrees."""
        self._check_live()
        if key in self.state.tags:
            del self.state.tags[key]
            self._events.append(("R", key))

    # -- files: hashed into the cache now, recorded by content ----------------------------
    def _source(self, path: str | os.PathLike[str], what: str, inside: bool = True) -> Path:
        src = Path(path)
        if not src.is_absolute():
            src = Path.cwd() / src
        if not src.exists():
            raise InvalidValueError(f"{what} {os.fspath(path)!r} does not exist; check the path")
        real, top = src.resolve(), self.repo.worktree.resolve()
        if inside and not real.is_relative_to(top):
            raise InvalidValueError(
                f"{what} {os.fspath(path)!r} is outside the repository {top}; write it inside the"
                " project (an ignored folder is fine) and log it from there"
            )
        return src

    @property
    def cache_dir(self) -> Path:
        """The clone's cache, looked up once per run: the lookup stats three config files and
        reads the project config, half a millisecond that an integration's end of training
        (importances, model) paid per file."""
        if self._cache is None:
            from xp.artifacts import cache  # not on `xp commit`'s path: hashlib

            self._cache = cache.cache_dir(self.repo)
        return self._cache

    def _announce(self, sha: str) -> None:
        """Journal a cache object's hash before it is installed, so ``xp gc`` keeps it. A run
        that ended while the file was being hashed (another thread's ``end_run``) refuses
        it here: its journal is closed."""
        with self._io_lock:
            self._check_open()
            self._write(seal(f"K\t{sha}"))

    def _check_open(self) -> None:
        """``_check_live`` for a caller holding ``_io_lock``: ``finish`` changes the status
        before it takes the lock to record, so a change made under the lock after this check
        is in the commit, and one after the status changed is refused, never dropped."""
        if self._closed or self.status != "running":
            raise RunEndedError(
                f"run {self.id} ended while a file was being logged to it; log it before"
                " ending the run, or to a new run"
            )

    def _add_files(
        self, entries: list[FileEntry], kind: str, media: MediaEntry | None = None
    ) -> None:
        """Record ``entries`` (and the media entry they make up) in one step."""
        for entry in entries:
            for text in (entry.path, entry.source or ""):
                fmt.check_text(text, f"{kind} {text!r}")
                if any(c < " " or c == "\x7f" for c in text):
                    raise InvalidValueError(
                        f"{kind} path {text!r} has a control character; rename the file"
                    )
        with self._io_lock:  # hashing and copying took a while: the run may have ended
            self._check_open()
            for entry in entries:
                self.state.artifacts[entry.path] = entry
                self._events.append(("A", entry.to_dict()))
            if media is not None:
                self.state.media[media.path] = media
                self._events.append(("G", media.to_dict()))

    def log_artifact(
        self, path: str | os.PathLike[str], name: str | None = None, *, external: bool = False
    ) -> list[FileEntry]:
        """A file or folder of the work tree; ``external=True`` (for integrations whose
        frameworks write checkpoints to temporary folders) takes a by-product from anywhere,
        recorded without a ``source``: checkouts do not put it back into the work tree."""
        self._check_live()
        src = self._source(path, "artifact", inside=not external)
        from xp.artifacts import cache  # not on `xp commit`'s path: hashlib

        name = cache.clean_name(src.name if name is None else name)
        fmt.check_text(name, "artifact name")
        if not external:
            top = self.repo.worktree.resolve()
            where = os.path.relpath(src.resolve(), top).replace(os.sep, "/")
            entries = [
                dataclasses.replace(e, source=where + e.path[len(name) :])
                for e in cache.add_path(self.cache_dir, src, name, self._announce)
            ]
        else:
            entries = cache.add_path(self.cache_dir, src, name, self._announce)
        self._add_files(entries, "artifact")
        return entries

    def log_bytes(self, data: bytes, artifact_file: str) -> list[FileEntry]:
        """Store ``data`` as artifact ``artifact_file`` (any bytes, from anywhere)."""
        return self._log_bytes(data, artifact_file, None)

    def _log_bytes(
        self, data: bytes, artifact_file: str, media: MediaEntry | None
    ) -> list[FileEntry]:
        """``log_bytes``, recording ``media`` (the entry the file makes up) in the same step."""
        self._check_live()
        from xp.artifacts import cache  # not on `xp commit`'s path: hashlib

        name = cache.clean_name(artifact_file)
        fmt.check_text(name, "artifact name")
        # hashed in memory and written once, into the cache (already there: not at all)
        sha = cache.add_bytes(self.cache_dir, data, self._announce)
        entries = [FileEntry(path=name, sha256=sha, size=len(data))]
        self._add_files(entries, "artifact", media)
        return entries

    def log_files(self, files: dict[str, bytes]) -> list[FileEntry]:
        """``log_bytes`` for several artifacts at once (an integration's end of training):
        the cache is looked up once; a file that cannot be stored records none of them."""
        self._check_live()
        from xp.artifacts import cache  # not on `xp commit`'s path: hashlib

        names = {cache.clean_name(name): data for name, data in files.items()}
        for name in names:
            fmt.check_text(name, "artifact name")
        where = self.cache_dir
        entries = [
            FileEntry(
                path=name, sha256=cache.add_bytes(where, data, self._announce), size=len(data)
            )
            for name, data in names.items()
        ]
        self._add_files(entries, "artifact")
        return entries

    def add_artifacts(self, entries: list[FileEntry]) -> None:
        """Record files already in the cache as artifacts (a later one replaces a path)."""
        self._check_live()
        with self._io_lock:
            self._check_open()
            for entry in entries:
                self.state.artifacts[entry.path] = entry
                self._events.append(("A", entry.to_dict()))

    def log_dataset(self, entry: dict[str, Any]) -> None:
        """Record an MLflow dataset input (name, digest, source, schema, profile, tags)."""
        self._check_live()
        if self.state.add_dataset(entry):
            self._events.append(("D", entry))

    def set_model(self, entry: dict[str, Any]) -> None:
        """Record or update an MLflow logged model of this run (``entry["id"]`` names it)."""
        self._check_live()
        self.state.models[str(entry["id"])] = entry
        self._events.append(("O", entry))

    def log_text(
        self,
        text: str,
        artifact_file: str | None = None,
        *,
        key: str | None = None,
        step: int | None = None,
    ) -> list[FileEntry]:
        """Text as an artifact (MLflow's ``log_text``), or with ``key``/``step`` one text of a
        series (``media/<key>/<step>.txt``, listed in the media index)."""
        if not isinstance(text, str):
            raise InvalidValueError(f"log_text takes a str, got {type(text).__name__}")
        if key is None and step is None:
            if artifact_file is None:
                raise InvalidValueError("log_text needs artifact_file, or key= for a series")
            return self.log_bytes(fmt.check_text(text, "text").encode("utf-8"), artifact_file)
        encoded = media.Encoded(
            fmt.check_text(text, "text").encode("utf-8"), "txt", {"chars": len(text)}
        )
        return self._log_media("text", encoded, artifact_file, key, step).files

    # -- media: images, figures, tables, histograms (tracking/media.py encodes them) -----
    def log_image(
        self,
        image: Any,
        artifact_file: str | None = None,
        *,
        key: str | None = None,
        step: int | None = None,
        caption: str | None = None,
    ) -> MediaEntry:
        """A numpy array (HW, HWC, CHW; floats 0..1), tensor, PIL image or picture file.

        ``artifact_file`` stores one picture there (MLflow's form); ``key`` (with ``step``,
        default the key's previous step + 1) makes a series: ``media/<key>/<step>.png``.
        """
        if caption is not None:
            fmt.check_text(str(caption), "caption")
        return self._log_media(
            "image", media.encode_image(image, caption), artifact_file, key, step
        ).entry

    def log_figure(
        self,
        figure: Any,
        artifact_file: str | None = None,
        *,
        key: str | None = None,
        step: int | None = None,
    ) -> MediaEntry:
        """A matplotlib figure (PNG; SVG or PDF by ``artifact_file``'s extension) or a plotly
        figure (HTML)."""
        ext = _extension(artifact_file) if key is None and step is None else None
        encoded = media.encode_figure(figure, ext)
        return self._log_media("figure", encoded, artifact_file, key, step).entry

    def log_table(
        self,
        data: Any,
        artifact_file: str | None = None,
        *,
        key: str | None = None,
        step: int | None = None,
        format: str | None = None,
    ) -> MediaEntry:
        """A DataFrame, dict of columns or list of row dicts as Parquet (types kept; needs
        pyarrow) or CSV (``format``, else ``artifact_file``'s extension, else Parquet when
        pyarrow is installed). Read it back with ``xp.load_table``."""
        if format is None and artifact_file is not None and key is None and step is None:
            format = _extension(artifact_file)
        encoded = media.encode_table(data, format)
        return self._log_media("table", encoded, artifact_file, key, step).entry

    def log_histogram(
        self,
        values: Any = None,
        key: str | None = None,
        *,
        step: int | None = None,
        bins: int = media.DEFAULT_BINS,
        np_histogram: Any = None,
    ) -> MediaEntry:
        """Counts per bin of ``values`` (or a precomputed ``np_histogram=(counts, edges)``)
        at ``step``, as ``media/<key>/<step>.json``: watch a distribution move over training."""
        if key is None:
            raise InvalidValueError("log_histogram needs key=, e.g. 'weights/layer1'")
        encoded = media.encode_histogram(values, bins, np_histogram)
        return self._log_media("histogram", encoded, None, key, step).entry

    def log_media(
        self,
        kind: str,
        data: bytes,
        ext: str,
        *,
        key: str,
        step: int | None = None,
        info: dict[str, Any] | None = None,
        timestamp: int | None = None,
    ) -> MediaEntry:
        """Encoded media bytes (a PNG read from a TensorBoard file, say) as ``kind`` under
        ``key`` at ``step``, logged at ``timestamp`` (ms; default now), for importers that
        have the file already."""
        if kind not in fmt.MEDIA_KINDS:
            raise InvalidValueError(
                f"media kind {kind!r} is not one of {', '.join(fmt.MEDIA_KINDS)}"
            )
        encoded = media.Encoded(bytes(data), ext, dict(info or {}))
        return self._log_media(kind, encoded, None, key, step, timestamp).entry

    def _log_media(
        self,
        kind: str,
        encoded: media.Encoded,
        artifact_file: str | None,
        key: str | None,
        step: int | None,
        timestamp: int | None = None,
    ) -> _Logged:
        self._check_live()
        if step is not None and (isinstance(step, bool) or not isinstance(step, int)):
            raise InvalidValueError(f"step must be an integer, got {step!r}")
        if key is None and step is not None and artifact_file is not None:
            key = _strip_extension(artifact_file)  # a name with a step names a series
        if key is not None:
            fmt.validate_key(key, "media key")
            with self._io_lock:
                if step is None:
                    step = self._media_steps.get(key, 0)
                self._media_steps[key] = max(self._media_steps.get(key, 0), step + 1)
            path = media_path(key, step, encoded.ext)
        elif artifact_file is not None:
            from xp.artifacts import cache  # not on `xp commit`'s path: hashlib

            path = cache.clean_name(artifact_file)
            key = path
        else:
            raise InvalidValueError(f"log_{kind} needs artifact_file, or key= for a series")
        entry = MediaEntry(
            key=key,
            kind=kind,
            path=path,
            step=step,
            timestamp=int(time.time() * 1000) if timestamp is None else int(timestamp),
            info=dict(encoded.info),
        )
        files = self._log_bytes(encoded.data, path, entry)
        return _Logged(entry, files)

    def log_dict(self, data: dict[str, Any], artifact_file: str) -> list[FileEntry]:
        """JSON or YAML by the file's extension, as MLflow does."""
        if artifact_file.endswith((".yaml", ".yml")):
            from xp.record import yamlio

            return self.log_bytes(yamlio.dump(data), artifact_file)
        return self.log_bytes(json_bytes(data), artifact_file)

    def log_input(
        self, path: str | os.PathLike[str], name: str | None = None, cache_content: bool = False
    ) -> FileEntry:
        self._check_live()
        src = self._source(path, "data input")
        from xp.artifacts import cache  # not on `xp commit`'s path: hashlib

        rel = (
            os.path.relpath(src.resolve(), self.repo.worktree.resolve()).replace(os.sep, "/")
            if name is None
            else cache.clean_name(name)
        )
        fmt.check_text(rel, "data input name")
        announce = self._announce if cache_content else None
        entry = cache.hash_input(src, rel, self.cache_dir if cache_content else None, announce)
        with self._io_lock:  # hashing took a while: the run may have ended
            self._check_open()
            self.state.inputs[entry.path] = entry
            self._events.append(("I", entry.to_dict()))
        return entry

    # -- journal and end -------------------------------------------------------------------
    def defer(self, drain: Callable[[], None]) -> None:
        """Have ``drain`` log what a framework callback held back: such a callback keeps each
        iteration's raw results and their time (a few hundred nanoseconds inside the
        training loop) and turns them into points in bulk when ``drain`` is called: before
        every flush (the flusher thread's, every 0.5 s), before the run ends and before a
        live read. So what the framework handed over is journaled as if logged at once."""
        self._check_live()
        self._deferred.append(drain)

    def undefer(self, drain: Callable[[], None]) -> None:
        with contextlib.suppress(ValueError):
            self._deferred.remove(drain)

    def _drain(self) -> None:
        for drain in list(self._deferred):
            try:
                drain()
            except Exception as exc:  # a drain says its own problems: this is a bug's
                sys.stderr.write(
                    f"xp: warning: run {self.id}: a framework callback's metrics were not"
                    f" logged ({type(exc).__name__}: {exc})\n"
                )

    def flush(self) -> None:
        """Append what is new since the last flush to the journal (called every 0.5 s)."""
        if self._deferred:
            self._drain()
        with self._io_lock:
            if self._closed or self._committing:
                return  # a commit in progress holds the points it records (see _record)
            self._flush_locked()

    def _flush_locked(self) -> None:
        """The body of ``flush``; the caller holds ``_io_lock``."""
        points = self.state.points  # log calls append to it meanwhile, never replace it
        batch = points[: len(points)]
        spill = self.state.spill
        assert spill is not None
        # a big flush goes in binary, its text made once when the run is recorded (issue
        # 18: the float spelling was most of a flush); a run that wrote a C block goes on so
        columns = (
            column_block(batch)
            if batch and (len(batch) >= COLUMNS_MIN or spill.had_columns)
            else None
        )
        blocks: list[Block] = []
        if columns is not None:
            data = columns[0]
        else:
            data, blocks = metric_blocks(batch)
        m = len(self._events)
        events = b"".join(line(k, p) for k, p in self._events[self._flushed_events : m])
        if data or events or self.journal is None:
            self._write(data + events)
        self._flushed_events = m
        if batch:  # journaled: from now on in the spill, not in memory
            del points[: len(batch)]
            if columns is not None:
                spill.add_columns(columns[1])
            for block in blocks:
                spill.add_block(block)

    def _help_flush(self) -> None:
        """Flush from a log call. A journal that cannot be written (a full disk) never fails
        the call: it is said once, as the flusher says it, and the points stay in memory
        until the next try, another ``_MAX_HELD`` points later."""
        try:
            self.flush()
        except Exception as exc:
            flusher.report(self, exc)
            self._held_limit = len(self.state.points) + _MAX_HELD
        else:
            self._held_limit = _MAX_HELD

    def history(self, key: str) -> list[tuple[int, float | int, int]]:
        """The points of metric ``key`` logged so far, as ``(step, value, ms)``: for readers of
        a live run (MLflow's ``get_metric_history``, W&B's summary)."""
        if self._deferred:
            self._drain()
        with self._io_lock:
            spill = self.state.spill
            out = list(spill.points(key)) if spill is not None and key in spill else []
            out += [(s, v, to_ms(t)) for k, v, s, t in list(self.state.points) if k == key]
        return out

    def _close_journal(self, remove: bool) -> None:
        with self._io_lock:
            self._closed = True
            if self.journal is not None:
                self.journal.close(remove=remove)

    # -- system metrics -----------------------------------------------------------------------
    def start_system_metrics(self, interval: float | None = None) -> None:
        """Sample CPU, memory, disk, network and GPUs into ``system/...`` every ``interval``
        seconds (default: ``XP_SYSTEM_METRICS_INTERVAL``, the config, 10 s) until the run
        ends; the machine's description goes to meta.yaml's ``system``."""
        from xp.tracking.system_metrics import Sampler, interval_from

        self._check_live()
        if self._sampler is not None:
            return
        if interval is None:
            env = os.environ.get("XP_SYSTEM_METRICS_INTERVAL")
            interval = (
                interval_from(env, "XP_SYSTEM_METRICS_INTERVAL")
                if env
                else self.config.system_metrics_interval
            )
        sampler = Sampler(self._log_system, interval=interval, disk_path=self.repo.worktree)
        context = {**self.state.header.context, "system": sampler.info()}
        self.update_header(context=context)
        self._sampler = sampler.start()

    def _log_system(self, values: dict[str, float], step: int) -> None:
        for key, value in values.items():
            self.log_metric(key, value, step)

    def stop_system_metrics(self) -> None:
        sampler, self._sampler = self._sampler, None
        if sampler is not None:
            sampler.stop()

    def warn(self, message: str) -> None:
        """A warning stored in the record's meta.yaml."""
        self.update_header(warnings=[*self.state.header.warnings, fmt.escape_text(message)])

    def abort(self) -> None:
        """Drop the run without recording it (the caller hit a user error first)."""
        self.stop_system_metrics()
        if self.status == "running":
            self.status = "aborted"
            flusher.unregister(self)
            self._close_journal(remove=True)
            self._drop_spill()
            if self._protected:
                protect.release(self.repo, self.id)

    def _hint_reads(self) -> None:
        """Name, once per clone, the ignored files this run read and did not record."""
        read = reads.unwatch(self.repo.worktree)
        if not read:
            return
        recorded = set(self.config.data) | set(self.state.inputs)
        recorded |= {a.source for a in self.state.artifacts.values() if a.source}
        try:
            missed = reads.unrecorded_ignored(self.repo, read, recorded)
        except (XPError, OSError):
            return  # a hint must never cost a run
        for path in missed:
            sys.stderr.write(
                f"xp: hint: this run read {path}, which git ignores and the run does not"
                f" record: list it under data: in {fmt.CONFIG_PATH} (or xp.log_input({path!r}))"
                " so runs say which data they used and sweeps and reproductions get it\n"
            )

    def finish(self, status: str = "finished", end_time: float | None = None) -> str:
        """Commit the run and return the commit's sha.

        ``status`` is checked before anything changes. If the commit fails (a full disk, a
        pruned object...) nothing is lost: the journal is written out and kept (and stays
        this process's), ``RunNotRecordedError`` says why, and calling ``finish`` again
        retries with the same status and end time; once the process has ended,
        ``xp recover`` records the run from its journal. ``end_time`` (seconds since the
        epoch) records when the run ended if not now: an importer's runs ended when their
        source says.
        """
        status = fmt.end_status(status)
        if self.commit is not None:
            return self.commit
        if self.status == "aborted":
            raise RunEndedError(f"run {self.id} was dropped; start a new run")
        if self.status == "running":
            end = time.time() if end_time is None else _end_time(end_time)
            if self._deferred:  # while the run still takes points
                self._drain()
                self._deferred = []
            self.stop_system_metrics()  # its last sample lands in this run
            self.status = status
            self._hint_reads()
            self._keys = set()  # so a later log call checks the run is live, and fails
            self._end = end
            flusher.unregister(self)
            self._events.append(("E", {"status": self.status, "end_time": self._end}))
        if self.attached:  # the owner of the run commits it, with this part merged in
            try:
                self.flush()
            except BaseException as exc:
                self._not_recorded(exc)
            self._close_journal(remove=False)
            self._drop_spill()  # the owner reads the part; this copy (and its helper) goes
            self.commit = ""
            return self.commit
        try:
            commit, parts = self._record()
        except BaseException as exc:
            self._not_recorded(exc)
        self.commit, self.error = commit, None
        for part in parts:  # before the journal: a part without it is an orphan to recover
            part.unlink(missing_ok=True)
        self._close_journal(remove=True)
        self._drop_spill()
        if self._protected:
            protect.release(self.repo, self.id)
        return commit

    def _drop_spill(self) -> None:
        with self._io_lock:
            if self.state.spill is not None:
                self.state.spill.close()

    def _record(self) -> tuple[str, list[Path]]:
        """Commit under the journal lock: the flusher thread may have taken this run before
        ``finish`` unregistered it, and a flush while the record is built would move points
        the record's copy holds into the spill a second time (a streamed series then changes
        size under the writer). Once committed, the flusher leaves the run alone."""
        assert self._end is not None
        with self._io_lock:
            self._committing = True
            if self.journal is not None:
                with contextlib.suppress(StorageError):  # the commit may still fit
                    self._flush_locked()  # a crash while committing then loses nothing
            assert self.state.spill is not None
            mark = self.state.spill.mark()
            try:
                return self._commit_copy()
            except BaseException:
                self.state.spill.rollback(mark)  # a retry adds the unjournaled points again
                self._committing = False  # the journal is written out for a retry
                raise

    def _commit_copy(self) -> tuple[str, list[Path]]:
        assert self._end is not None
        state = self.state.copy()  # parts are merged into a copy: a retry merges them again
        parts = merge_parts(state, self.journal_dir)
        if state.damaged:
            state.header.warnings.append(
                f"{state.damaged} journal lines of child processes failed their checksum and"
                " were dropped"
            )
        record = build_record(state, self.status, self._end, installed_packages())
        commit = commit_record(
            self.repo,
            record,
            self.tree,
            self.baseline,
            self.start_time,
            self._end,
            check=self._gc_seen,
            protected=self._protected,
            header=self.state.header,
        )
        return commit, parts

    def _not_recorded(self, exc: BaseException) -> None:
        """Keep everything on disk for a retry or ``xp recover``, then raise."""
        self.error = exc
        try:
            self.flush()
            assert self.journal is not None
            self.journal.sync()
            kept = (
                f"its journal {self.journal.path} is kept: call xp.end_run() again to retry,"
                " or `xp recover` records it once this process has ended"
            )
        except Exception as journal_exc:
            kept = (
                f"its journal cannot be written either ({journal_exc}), so only this process"
                " holds it: free disk space and call xp.end_run() again"
            )
        if not isinstance(exc, Exception):
            raise exc
        reason = str(exc) or type(exc).__name__
        raise RunNotRecordedError(f"run {self.id} was not recorded: {reason}; {kept}") from exc
