"""The query index: a SQLite cache of run records under ``<git common dir>/xp/index.sqlite``.

Refs are the truth; the index is derived and can be deleted at any time. A row of ``runs`` is
keyed by commit sha, and commits never change, so a row never goes stale: only the mapping
ref -> commit moves. Before it answers, every call checks that mapping against the refs on
disk at the cost of a few ``stat`` calls: the stamp of ``packed-refs`` (git replaces it by
rename, so each version has a new inode) and the stamp (inode, mtime) of each folder that
holds loose refs under ``refs/xp/`` (adding, removing or replacing a ref renames a file in
it). Only a folder whose stamp moved is listed again, and only files whose inode, mtime or
size moved are read; a folder stamped within the last seconds is listed again next time, as
its mtime could miss a change within the same clock tick. So after ``git fetch``, ``xp rm``,
``git pack-refs`` or ``git gc`` the answer is exactly what the refs say, and when nothing
moved the answer costs nothing but the query.

Records of new commits are streamed from ``git cat-file --batch`` and stored in batches, each
its own short write transaction (rows keyed by commit are facts whatever the refs say); the
refs are applied in one more. SQLite's WAL mode lets readers go on meanwhile, and run writers
never touch the index at all. A big build (20,000 records or more: a fresh clone, a deleted
index) reads in two processes, and the second hands its rows to the first, which stores them
all (``build``).

Params, metrics and tags are rows of ``vals`` (key id, run, number, text), so filters and
sorts run on typed, indexed columns (``compile``); each run also keeps its values as one JSON
array in its key set's order (``schemas``), which is only read to show them.

Rows show the runs as annotated now (``annotated``): the tips of the notes refs are kept in
``meta`` too, and when one moves only the rows of runs whose notes changed are read again
(their ``vals`` with them, so filters see annotation tags).

When 1,000 or more run refs are loose, the index has them packed into packed-refs
(``gitstore.refs.pack_refs``: git's own lock protocol) so git's commands stay fast too: by a
detached, niced process (``xp.query.index.pack``), as ``git gc --auto`` detaches, since
moving 100,000 refs takes seconds the command that found them should not wait for.
``git config xp.packRefs false`` turns that off.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import itertools
import json
import math
import os
import sqlite3
import subprocess
import sys
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from operator import itemgetter
from pathlib import Path
from typing import Any

from xp.errors import StorageError
from xp.format import RunRef
from xp.gitstore import gitconfig
from xp.gitstore.refs import (
    FolderScan,
    PackedRefs,
    folder_stamp,
    pack_refs,
    packed_stamp,
    scan_folder,
)
from xp.gitstore.repo import GitRepo, detach_locked
from xp.query.filters import Node, SortKey
from xp.query.index import annotated, arrays
from xp.query.index.compile import sort_sql, where_sql
from xp.query.index.rows import FrameReader, RunRow, Stored, as_row, iter_rows

# 1: JSON rows; 2: JSON rows with a CRC-32 (#10); 3: typed vals rows, CRC kept (#18);
# 4: each run's parent, message and source, which the MLflow view reads (#12);
# 5: runs listed by fetched catalog buckets (refs.cat, buckets; #14)
SCHEMA = "5"
INDEX_FILE = "index.sqlite"
ROOT = "refs/xp"  # every loose run ref is in a folder at or below this one
PACK_AT = 1000  # loose run refs that make the index pack them
PACKER_LOCK = "pack-refs.lock"  # in the xp dir: flocked while a packer runs (pack.py)
PARALLEL_AT = 20_000  # records to read that are worth a second reading process
# Summaries are decoded whole: worth it while the moved buckets hold at most this many lines
# per run to index (a record read costs ~250 us, a summary line ~30): a fresh clone, not a
# colleague's 500 new runs spread over 220 buckets of 100k.
_LINES_PER_RECORD = 8
_BATCH = 2000  # runs stored per write transaction while reading records
# The share of a big build's records this process reads (percent): it also stores the rows
# the second process reads (~45 us a run against ~100 us to read one; measured balance at 100k)
_MINE_READ = 25
_BULK_CHECKPOINT = 16_000  # WAL pages a big build lets pile up before a checkpoint
# The share of a fresh catalog's bucket numbers this process indexes (percent): it also copies
# the second process's rows in, but that one starts ~0.15 s later (measured balance at 100k)
_MINE = 55
STREAM_BATCH = 2000  # runs ``Index.batches`` reads at a time

_DDL = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS runs(
    rid INTEGER PRIMARY KEY,
    commit_sha TEXT NOT NULL UNIQUE,
    id TEXT, name TEXT, experiment TEXT, status TEXT,
    start REAL, end REAL, duration REAL,
    baseline TEXT, branch TEXT, user TEXT, error TEXT,
    sid INTEGER NOT NULL,
    doc TEXT NOT NULL,
    crc INTEGER NOT NULL,
    parent TEXT, message TEXT, source TEXT
);
CREATE INDEX IF NOT EXISTS runs_name ON runs(name);
CREATE INDEX IF NOT EXISTS runs_baseline ON runs(baseline);
CREATE TABLE IF NOT EXISTS keys(kid INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS schemas(sid INTEGER PRIMARY KEY, keys TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS vals(
    kid INTEGER NOT NULL, rid INTEGER NOT NULL, num, txt TEXT, PRIMARY KEY (kid, rid)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS refs(
    ref TEXT PRIMARY KEY, run_id TEXT NOT NULL,
    packed TEXT, loose TEXT, file TEXT, folder TEXT, cat TEXT, bucket TEXT
);
CREATE INDEX IF NOT EXISTS refs_bucket ON refs(bucket) WHERE bucket IS NOT NULL;
CREATE TABLE IF NOT EXISTS buckets(ref TEXT PRIMARY KEY, tip TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS refs_run ON refs(run_id);
CREATE INDEX IF NOT EXISTS refs_folder ON refs(folder) WHERE folder IS NOT NULL;
CREATE TABLE IF NOT EXISTS current(
    run_id TEXT PRIMARY KEY, ref TEXT NOT NULL, rid INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS current_rid ON current(rid);
CREATE TABLE IF NOT EXISTS folders(path TEXT PRIMARY KEY, stamp TEXT);
CREATE TABLE IF NOT EXISTS facts(
    fmt TEXT NOT NULL, kid INTEGER NOT NULL, agg TEXT NOT NULL, PRIMARY KEY (fmt, kid)
);
"""

# name -> statement of each secondary index: none in a scratch file (only copied from), and
# dropped while a fresh index is filled in bulk (made again by sorting, at the end)
_SECONDARY = {
    line.split()[5]: line for line in _DDL.splitlines() if line.startswith("CREATE INDEX")
}
_SCRATCH_DDL = "\n".join(line for line in _DDL.splitlines() if line not in _SECONDARY.values())

_PACKED_REFS = "SELECT ref, packed FROM refs WHERE packed IS NOT NULL"
NO_REF = ("", "")  # (file id, sha) of a ref the index does not know


def run_id_of(ref: str) -> str | None:
    """The run id a ref under refs/xp/ holds, or None for refs that are not runs."""
    parsed = RunRef.parse(ref)
    return parsed.id if parsed else None


@dataclass
class Table:
    """Selected runs column by column, for DataFrames: attributes as lists, values as one
    list per run in the order of its key set (``keys[sid]``)."""

    run_id: list[str] = field(default_factory=list)
    experiment: list[str] = field(default_factory=list)
    status: list[str] = field(default_factory=list)
    start: list[float | None] = field(default_factory=list)
    end: list[float | None] = field(default_factory=list)
    name: list[str] = field(default_factory=list)
    commit: list[str] = field(default_factory=list)
    sid: list[int] = field(default_factory=list)
    values: list[list[Any]] = field(default_factory=list)
    keys: dict[int, tuple[str, ...]] = field(default_factory=dict)
    # the value arrays as one JSON text, when ``values`` is left for the caller to parse
    text: str = ""


class _Absent:
    """A run without the key (a missing value is not a null one)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Any = _Absent()


@dataclass
class Batch:
    """Some selected runs column by column (``Index.batches``): each attribute asked for
    as a list (``RunRow`` field names), each value key as a list holding ``ABSENT`` for
    runs that lack it (a missing value is not a null one)."""

    size: int
    attributes: dict[str, list[Any]]
    values: dict[str, list[Any]]
    maps: list[dict[str, Any]] | None = None  # every value of each run (``keys=None``)
    key_order: tuple[str, ...] | None = None  # every run's keys, when they are the same


@dataclass(frozen=True)
class Query:
    """Which runs a question is about, in which order, how many."""

    where: Node | None = None
    experiments: Sequence[str] = ()
    branch: str | None = None
    statuses: Sequence[str] = ()
    sort: Sequence[SortKey] = ()
    limit: int | None = None
    offset: int = 0  # runs skipped before the first one returned

    @property
    def trivial(self) -> bool:
        """Every run, whatever the order."""
        return (
            self.where is None
            and not self.experiments
            and not self.branch
            and not self.statuses
            and self.limit is None
            and not self.offset
        )


@dataclass(frozen=True)
class ValueFacts:
    """One value column over a selection (see ``Index.value_facts``)."""

    present: int  # runs with the key (NaN included)
    changed: bool  # two runs differ (a missing value is one value, NaN another)
    text_width: int  # longest text form of a non-float value (text, integer, bool...)
    number_width: int  # longest float, printed with the caller's printf format
    nan: bool  # some run has NaN
    texts: bool = True  # some run's value may be a text (not only integers, or only floats)


@dataclass(frozen=True)
class AttributeFacts:
    """The attribute columns over a selection: text widths, longest duration, missing."""

    rows: int
    run_id: int
    name: int  # the name, or "! <error>" for a run whose record cannot be read
    status: int
    experiment: int
    baseline: int  # the branch, else the baseline's first 7 characters, else "-"
    branch: int
    user: int
    longest: float | None  # the longest duration
    missing: dict[str, int]  # attribute -> runs without it


@dataclass
class _Buckets:
    """Fetched buckets read for a fresh index (``Index._prepare_buckets``)."""

    tips: list[tuple[str, str]]  # (bucket ref, tip)
    # (copy ref, run id, tip, bucket ref) of each entry whose commit is here
    refs: list[tuple[str, str, str, str]] = field(default_factory=list)
    best: dict[str, tuple[str, str]] = field(default_factory=dict)  # run id -> (its ref, tip)
    raw: list[Stored] = field(default_factory=list)  # their rows as read
    items: list[Stored] = field(default_factory=list)  # annotated


@dataclass
class _Changes:
    """What sync saw on disk, before applying it."""

    pstamp: str
    packed: dict[str, str] | None  # run refs in packed-refs, when it changed
    scans: dict[str, FolderScan]  # folders listed again
    # fetched catalog buckets whose tip moved: bucket ref -> (tip or None when gone,
    # copy ref -> run tip of every entry it lists)
    buckets: dict[str, tuple[str | None, dict[str, str]]] = field(default_factory=dict)
    # their run summaries: bucket ref -> (summary blob, run id -> tip of every entry)
    summaries: dict[str, tuple[str, dict[str, str]]] = field(default_factory=dict)


class Index:
    """An open index connection; ``sync()`` brings it in line with the refs."""

    def __init__(self, repo: GitRepo, path: Path | None = None, *, scratch: bool = False) -> None:
        self.repo = repo
        self.path = path if path is not None else repo.xp_dir / INDEX_FILE
        self.memory = False  # the index lives in memory for this call (read-only repository)
        # a file only this process writes and another copies from (``_fresh_catalog``): no
        # journal, no fsync
        self._scratch = scratch
        if scratch:
            self._remove_files()
        self.conn = self._open()
        self._schemas: dict[int, tuple[str, ...]] = {}
        self._position_maps: dict[int, dict[str, int]] = {}  # sid -> key -> position
        self._kid_map: dict[str, int] | None = None  # keys -> kid, read once per sync
        self._selection: Query | None = None  # the query temp.sel holds the runs of
        self._notes: annotated.NotesState | None = None  # the notes the rows show
        self.skipped: list[str] = []  # fetched run summaries (partly) ignored by the last sync
        self.summaries = True  # read fetched runs from their buckets' summaries (not rebuild)
        # ref -> run id during one sync: a fresh clone's 100,000 refs parsed once, not 3x
        self._ids: dict[str, str | None] = {}
        self._early: subprocess.Popen[bytes] | None = None  # a helper started ahead (sync)

    # -- connection -------------------------------------------------------------------------
    def _connect(self, target: str) -> sqlite3.Connection:
        conn = sqlite3.connect(target, timeout=30.0, isolation_level=None)
        # SQLite's printf drops the sign of -0.0, which Python prints: "-0" is a cell wider
        conn.create_function("signed_zero", 1, _signed_zero, deterministic=True)
        conn.execute("PRAGMA busy_timeout = 30000")
        if self._scratch:
            conn.execute("PRAGMA journal_mode = OFF")
            conn.execute("PRAGMA synchronous = OFF")
        elif target != ":memory:":
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA case_sensitive_like = ON")
        row = None
        with contextlib.suppress(sqlite3.OperationalError):  # a new file has no meta yet
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        if row is not None and row[0] != SCHEMA:
            raise sqlite3.DatabaseError(f"index schema {row[0]}, want {SCHEMA}")
        # a scratch file is only copied from: no secondary index to keep up
        conn.executescript(_SCRATCH_DDL if self._scratch else _DDL)
        if row is None:
            conn.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (SCHEMA,))
        return conn

    def _open(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return self._connect(str(self.path))
        except sqlite3.DatabaseError:
            # A corrupt file or another schema: it is only a cache, so start again.
            self._remove_files()
            try:
                return self._connect(str(self.path))
            except sqlite3.Error:
                pass
        except (sqlite3.Error, OSError):
            pass
        self.memory = True
        return self._connect(":memory:")  # read-only repo: index in memory for this call

    def _remove_files(self) -> None:
        for suffix in ("", "-wal", "-shm", "-journal"):
            with contextlib.suppress(OSError):  # absent, or not ours to remove: memory then
                os.unlink(f"{self.path}{suffix}")

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE: writers queue, readers go on)."""
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise StorageError(
                f"the query index {self.path} is locked ({exc}); retry, or delete the file"
            ) from None
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    # -- sync -------------------------------------------------------------------------------
    def _parsed(self, ref: str) -> str | None:
        """``run_id_of(ref)``, parsed once per sync."""
        ids = self._ids
        if ref not in ids:
            ids[ref] = run_id_of(ref)
        return ids[ref]

    def _id(self, ref: str) -> str:
        """The run id of a run ref ("" for other refs)."""
        return self._parsed(ref) or ""

    def _meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _folders(self) -> dict[str, str | None]:
        return dict(self.conn.execute("SELECT path, stamp FROM folders"))

    def _look(self) -> _Changes | None:
        """What moved on disk since the index last looked; None when nothing did."""
        common = self.repo.common_dir
        pstamp = packed_stamp(common)
        folders = self._folders() or {ROOT: None}
        changed = [f for f, st in folders.items() if st is None or folder_stamp(common, f) != st]
        if pstamp == self._meta("packed") and not changed:
            return None
        packed = None
        if pstamp != self._meta("packed"):
            with PackedRefs(common) as view:
                packed = {k: v for k, v in view.under(ROOT + "/").items() if self._id(k)}
        scans: dict[str, FolderScan] = {}
        queue = sorted(changed)
        while queue:
            folder = queue.pop()
            if folder in scans:
                continue
            scan = scan_folder(common, folder, self._loose_in(folder))
            scans[folder] = scan
            queue += [sub for sub in scan.folders if sub not in folders and sub not in scans]
        return _Changes(pstamp, packed, scans)

    def _look_buckets(
        self,
    ) -> tuple[dict[str, tuple[str | None, dict[str, str]]], dict[str, tuple[str, dict[str, str]]]]:
        """The fetched catalog buckets whose tip moved, read (only those: a fetch that moved
        three buckets reads three small trees, whatever the number of runs); and the run
        summaries those buckets carry."""
        from xp.gitstore import catalog

        tips = catalog.tracking_buckets(self.repo.common_dir)
        stored = dict(self.conn.execute("SELECT ref, tip FROM buckets"))
        moved = {ref: tip for ref, tip in tips.items() if stored.get(ref) != tip}
        out: dict[str, tuple[str | None, dict[str, str]]] = {
            ref: (None, {}) for ref in stored if ref not in tips
        }
        if not moved:
            return out, {}
        reads = catalog.read_buckets(self.repo, moved)
        if (
            self.summaries
            and any(r.summary for r in reads.values())
            and self._parallel(sum(len(r.entries) for r in reads.values()))
            and self._empty(self.conn)  # a fresh clone's: every listed run is to read
        ):
            self._early = self._helper("--summaries")  # its start-up overlaps git's check
        have = catalog.present(self.repo, {s for r in reads.values() for s in r.entries.values()})
        ids = self._ids
        for ref, read in reads.items():
            remote = catalog.split_tracking(ref)[0]
            prefix = RunRef.prefix(remote)
            listed: dict[str, str] = {}
            # a remote name no run ref can carry (as RunRef.parse checks): not listed, as
            # its loose and packed refs are not
            named = remote.isprintable() and remote.isascii()
            for run_id, sha in read.entries.items() if named else ():
                if sha in have:  # a bucket may name commits this clone lacks: not shown
                    name = prefix + run_id
                    listed[name] = sha
                    ids[name] = run_id  # entries are run ids already
            out[ref] = (read.tip, listed)
        summaries = {
            ref: (read.summary, read.entries)
            for ref, read in reads.items()
            if read.summary is not None and read.entries
        }
        return out, summaries

    def _from_summaries(
        self, summaries: dict[str, tuple[str, dict[str, str]]], wanted: dict[str, str]
    ) -> set[str]:
        """Store the rows of ``wanted`` the buckets' run summaries describe; the commits
        stored. Many of them (a fresh clone): half the buckets in a second process, as
        ``_read`` does, both cores parsing."""
        helper, self._early = self._early, None
        if not self._parallel(sum(len(entries) for _sha, entries in summaries.values())):
            self._stop(helper)
            return self.store(self.summarized(summaries, wanted), whole=True)
        refs = sorted(summaries)
        theirs = {ref: summaries[ref] for ref in refs[len(refs) // 2 :]}
        mine = {ref: summaries[ref] for ref in refs[: len(refs) // 2]}
        their_commits = {sha for _blob, entries in theirs.values() for sha in entries.values()}
        job: dict[str, Any] = {
            "summaries": theirs,
            "wanted": {c: i for c, i in wanted.items() if c in their_commits},
        }
        helper = helper or self._helper("--summaries")
        if helper is None:
            return self.store(self.summarized(summaries, wanted), whole=True)
        assert helper.stdin is not None
        assert helper.stdout is not None
        _send(helper, json.dumps(job).encode())  # if it died, its runs are read from records
        with _reaped(helper), helper.stdout:
            done = self.store(self.summarized(mine, wanted), whole=True)
            said = helper.stdout.read()
            helper.wait()
        theirs_wanted: dict[str, str] = job["wanted"]
        try:
            report = json.loads(said)
            self.skipped += [str(line) for line in report["skipped"]]
            if report["stored"] == len(theirs_wanted):  # all of them: no look-up needed
                return done | set(theirs_wanted)
        except (ValueError, KeyError, TypeError):
            pass  # it failed: what it did not store is read from the records
        left = self._missing(theirs_wanted)
        return done | (set(theirs_wanted) - set(left))

    def _parallel(self, count: int) -> bool:
        """``count`` runs are worth a second process."""
        return count >= PARALLEL_AT and (os.cpu_count() or 1) >= 2 and not self.memory

    @staticmethod
    def _stop(helper: subprocess.Popen[bytes] | None) -> None:
        """End a helper started ahead that has nothing to do (it exits on empty input)."""
        if helper is None:
            return
        for stream in (helper.stdin, helper.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        helper.wait()

    def _helper(self, *mode: str, path: Path | None = None) -> subprocess.Popen[bytes] | None:
        """The second process of a big build (``xp.query.index.build``), or None; ``path``:
        the index file it writes, when not this one."""
        repo = self.repo
        index = str(path or self.path)
        args = [index, str(repo.worktree), str(repo.git_dir), str(repo.common_dir)]
        try:
            return subprocess.Popen(
                [sys.executable, "-m", "xp.query.index.build", *mode, *args],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
        except OSError:
            return None

    def summarized(
        self, summaries: dict[str, tuple[str, dict[str, str]]], wanted: dict[str, str]
    ) -> list[Stored]:
        """The rows of ``wanted`` (commit -> run id) the buckets' run summaries describe; a
        summary that is (partly) ignored says so once in ``skipped``."""
        from xp.gitstore import catalog
        from xp.query.index import summary

        blobs = catalog.read_summaries(
            self.repo,
            [sha for sha, _entries in summaries.values()],
            budget=catalog.SUMMARIES_BUDGET,
        )
        out: list[Stored] = []
        for ref, (sha, entries) in sorted(summaries.items()):
            data = blobs.get(sha)
            if data is None:
                self.skipped.append(
                    f"{ref}: run summary {sha[:12]} not read (missing, too big, or past the"
                    f" {catalog.SUMMARIES_BUDGET >> 20} MiB all summaries may take)"
                )
                continue
            got = summary.decode(data, entries)
            if got.ignored:
                self.skipped.append(
                    f"{ref}: {got.ignored} line(s) of its run summary ignored ({got.why});"
                    " those runs are read from their records"
                )
            out += [item for c, item in got.items.items() if wanted.get(c) == item.run_id]
        return out

    def _bucket_entries(self, bucket: str) -> dict[str, str]:
        return dict(self.conn.execute("SELECT ref, cat FROM refs WHERE bucket = ?", (bucket,)))

    def _loose_in(self, folder: str) -> dict[str, tuple[str, str]]:
        return {
            ref: (file, sha)
            for ref, file, sha in self.conn.execute(
                "SELECT ref, file, loose FROM refs WHERE folder = ?", (folder,)
            )
        }

    def sync(self) -> int:
        """Apply the refs (and notes) on disk to the index; returns how many run ids' refs
        changed."""
        self._kid_map = None
        self._ids = {}
        self._sync_notes()
        changes = self._look()
        if changes is None:
            return 0
        try:
            return self._sync(changes)
        finally:
            self._stop(self._early)
            self._early = None
            self._ids = {}

    def _sync(self, changes: _Changes) -> int:
        """``sync`` once something moved on disk."""
        fresh = self._fresh_catalog()
        changes.buckets, changes.summaries = self._look_buckets()
        # Read the records of commits not indexed yet, outside the refs transaction: those
        # the fetched buckets' run summaries describe from them, the rest from git.
        wanted = self._missing(self._candidates(changes))
        inserted: set[str] = set()
        lines = sum(len(entries) for _blob, entries in changes.summaries.values())
        if wanted and self.summaries and 0 < lines <= len(wanted) * _LINES_PER_RECORD:
            inserted = self._from_summaries(changes.summaries, wanted)
            wanted = {c: i for c, i in wanted.items() if c not in inserted}
        inserted |= self._read(wanted) if wanted else set()
        with self.write() as conn:
            touched = self._apply(conn, changes)
            # rows stored for commits no ref shows after all (one query per 500, not per row;
            # many of them: the sweep below reads every row once instead)
            if len(inserted) <= _BATCH:
                self._drop_commits(conn, sorted(inserted))
            # Rows of commits no ref shows (a sync killed half-way): drop them. Each current
            # run id holds its own row, so there are none when the counts match (two b-tree
            # counts, where the sweep itself reads every row: ~45 ms at 100k runs).
            if (touched or len(inserted) > _BATCH) and self._more_rows_than_runs(conn):
                orphans = conn.execute(
                    "SELECT commit_sha FROM runs WHERE rid NOT IN (SELECT rid FROM current)"
                ).fetchall()
                self._drop_commits(conn, [str(r[0]) for r in orphans])
        self._maybe_pack()
        return len(touched) + fresh

    # -- a fresh clone of a catalog remote --------------------------------------------------
    def _fresh_catalog(self) -> int:
        """Index a fresh clone's fetched catalog (100k runs) in two processes that never wait
        for each other; how many run ids it indexed (0: not such a case, the usual way goes).

        Each process reads its share of the buckets (whole bucket numbers, so a run id's
        entries of every remote are in one share): trees, which commits are here, run
        summaries, the records of runs without a line; and stores their rows, refs and
        current ids. This one writes into the index, the second into a scratch file of its
        own, copied in at the end: sharing SQLite's one writer lock, they used to wait for
        each other. The index's secondary indexes are dropped for the bulk load and made
        again by sorting in the copy's transaction (a reader in between finds them missing:
        slower, not wrong; and ``_connect`` makes any missing one again). If the second
        process fails, its buckets are left to the usual way (their tips are not stored)."""
        if not self.summaries or self.memory or (os.cpu_count() or 1) < 2:
            return 0
        if not self._empty(self.conn):
            return 0
        from xp.gitstore import catalog

        tips = catalog.tracking_buckets(self.repo.common_dir)
        if len(tips) < 2 or catalog.listed_estimate(self.repo, tips) < PARALLEL_AT:
            return 0
        numbers = sorted({catalog.split_tracking(ref)[1] for ref in tips})
        first = set(numbers[: len(numbers) * _MINE // 100])
        mine = {r: t for r, t in tips.items() if catalog.split_tracking(r)[1] in first}
        theirs = {r: t for r, t in tips.items() if r not in mine}
        notes = self._stored_notes()
        part = self.path.with_name(f"{self.path.name}.part-{os.getpid()}")
        helper = self._helper("--catalog", path=part)
        if helper is None:
            return 0
        assert helper.stdout is not None
        _send(helper, json.dumps({"tips": theirs, "notes": notes}).encode())
        self.conn.execute("PRAGMA cache_size = -64000")
        self.conn.execute("PRAGMA synchronous = OFF")
        try:
            with _reaped(helper), helper.stdout, gc_paused():
                prepared = self._prepare_buckets(mine, notes)
                with self.write() as conn:
                    for name in _SECONDARY:
                        conn.execute(f"DROP INDEX IF EXISTS {name}")
                    count = self._store_buckets(conn, prepared)
                del prepared  # freed now, not walked by the collector once it is back on
                said = helper.stdout.read()
                helper.wait()
                count += self._merge_part(part, notes, said, helper.returncode)
            self._kid_map = None
            return count
        finally:
            self.conn.execute("PRAGMA cache_size = -2000")
            self.conn.execute("PRAGMA synchronous = NORMAL")
            Index._remove_part(part)

    @staticmethod
    def _remove_part(part: Path) -> None:
        for suffix in ("", "-journal", "-wal", "-shm"):
            with contextlib.suppress(OSError):
                os.unlink(f"{part}{suffix}")

    def index_buckets(self, tips: dict[str, str], notes: str | None) -> int:
        """Index the runs the fetched buckets ``tips`` (ref -> tip) list into a fresh index,
        as annotated by the notes state ``notes``: rows (from the run summaries, else the
        records), refs, buckets and current run ids, in one write transaction; how many run
        ids. (The second process of ``_fresh_catalog``.)"""
        self.conn.execute("PRAGMA cache_size = -64000")
        with gc_paused():
            prepared = self._prepare_buckets(tips, notes)
            with self.write() as conn:
                return self._store_buckets(conn, prepared)

    def _prepare_buckets(self, tips: dict[str, str], notes: str | None) -> _Buckets:
        """What ``_store_buckets`` stores of buckets ``tips``: read outside the write lock."""
        from xp.gitstore import catalog

        reads = catalog.read_buckets(self.repo, tips)
        have = catalog.present(self.repo, {s for r in reads.values() for s in r.entries.values()})
        out = _Buckets(sorted((bucket, read.tip) for bucket, read in reads.items()))
        wanted: dict[str, str] = {}  # tip -> run id
        summaries: dict[str, tuple[str, dict[str, str]]] = {}
        for bucket, read in reads.items():
            remote = catalog.split_tracking(bucket)[0]
            if not (remote.isprintable() and remote.isascii()):
                continue  # a name no run ref can carry: not listed (as ``_look_buckets``)
            prefix = RunRef.prefix(remote)
            for run_id, sha in read.entries.items():
                if sha in have:  # a bucket may name commits this clone lacks: not shown
                    out.refs.append((prefix + run_id, run_id, sha, bucket))
                    wanted[sha] = run_id
            if read.summary is not None and read.entries:
                summaries[bucket] = (read.summary, read.entries)
        out.refs.sort()
        for ref, run_id, sha, _bucket in out.refs:  # the greatest ref of each id wins
            out.best[run_id] = (ref, sha)
        rows = self.summarized(summaries, wanted) if summaries else []
        got = {item.commit for item in rows}
        left = {c: i for c, i in wanted.items() if c not in got}
        out.raw = rows + (list(iter_rows(self.repo, left)) if left else [])
        self._notes = annotated.NotesState.decode(notes)
        out.items = annotated.apply(self.repo, out.raw, self._notes)
        return out

    def _store_buckets(self, conn: sqlite3.Connection, got: _Buckets) -> int:
        """Store what ``_prepare_buckets`` read (inside a write transaction); how many run ids
        now have a current row."""
        items = got.items if self._scratch else self._annotated_locked(got.raw, got.items)
        rids: dict[str, int] = {}
        self._insert(conn, items, rids=rids)
        _many(
            conn,
            "INSERT INTO refs(ref, run_id, cat, bucket)",
            got.refs,
            4,
            " ON CONFLICT(ref) DO UPDATE SET cat = excluded.cat, bucket = excluded.bucket",
        )
        conn.executemany("INSERT OR REPLACE INTO buckets VALUES (?, ?)", got.tips)
        best = sorted(got.best.items())
        current = [(run_id, ref, rids[sha]) for run_id, (ref, sha) in best if sha in rids]
        _many(conn, "INSERT OR REPLACE INTO current", current, 3)
        return len(current)

    def _merge_part(self, part: Path, notes: str | None, said: bytes, code: int | None) -> int:
        """Copy the rows, refs, buckets and current ids the second process stored in ``part``
        into the index (rows, keys and key sets renumbered), and make the secondary indexes
        again, in one write transaction; how many run ids. 0, copying nothing, when that
        process failed (``said``: its report, ``code``: its exit status) or the notes state
        moved meanwhile (its rows would show stale annotations): its buckets are left to the
        usual way."""
        try:
            report = json.loads(said)
            skipped, runs = [str(line) for line in report["skipped"]], int(report["runs"])
        except (ValueError, KeyError, TypeError):
            skipped, runs, code = [], 0, None
        done = code == 0 and part.is_file()
        if done:
            self.conn.execute("ATTACH DATABASE ? AS part", (str(part),))
        try:
            with self.write() as conn:
                runs = runs if done and self._stored_notes() == notes else 0
                if runs:
                    conn.execute("SAVEPOINT part")
                    try:
                        self._copy_part(conn)
                    except sqlite3.Error:  # a damaged scratch file: the usual way instead
                        conn.execute("ROLLBACK TO part")
                        runs = 0
                    conn.execute("RELEASE part")
                for line in _SECONDARY.values():  # dropped by ``_fresh_catalog``
                    conn.execute(line)
        finally:
            if done:
                self.conn.execute("DETACH DATABASE part")
        if runs:
            self.skipped += skipped
        return runs

    @staticmethod
    def _copy_part(conn: sqlite3.Connection) -> None:
        conn.execute(
            "INSERT INTO main.keys(name) SELECT name FROM part.keys"
            " WHERE name NOT IN (SELECT name FROM main.keys) ORDER BY kid"
        )
        conn.execute(
            "INSERT INTO main.schemas(keys) SELECT keys FROM part.schemas"
            " WHERE keys NOT IN (SELECT keys FROM main.schemas) ORDER BY sid"
        )
        off = int(conn.execute("SELECT ifnull(max(rid), 0) FROM main.runs").fetchone()[0])
        # rows of commits the index has already (two run ids of one commit, or another
        # process): their current ids point at the row it has
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS dup(prid INTEGER PRIMARY KEY, rid)")
        conn.execute("DELETE FROM temp.dup")
        conn.execute(
            "INSERT INTO temp.dup SELECT p.rid, m.rid FROM part.runs p"
            " JOIN main.runs m ON m.commit_sha = p.commit_sha"
        )
        fresh = conn.execute("SELECT 1 FROM temp.dup LIMIT 1").fetchone() is None
        kept = "" if fresh else " AND p.rid NOT IN (SELECT prid FROM temp.dup)"
        # Keys and key sets met in the same order (a catalog of like runs) have the same ids
        # in both files: rows are then copied as they are, without a look-up per row.
        sid = "p.sid"
        if not _same_ids(conn, "schemas", "sid", "keys"):
            sid = "(SELECT ms.sid FROM part.schemas ps JOIN main.schemas ms ON ms.keys = ps.keys"
            sid += " WHERE ps.sid = p.sid)"
        conn.execute(
            "INSERT INTO main.runs SELECT p.rid + ?, p.commit_sha, p.id, p.name, p.experiment,"
            " p.status, p.start, p.end, p.duration, p.baseline, p.branch, p.user, p.error,"
            f" {sid}, p.doc, p.crc, p.parent, p.message, p.source FROM part.runs p"
            f" WHERE true{kept}",
            (off,),
        )
        if _same_ids(conn, "keys", "kid", "name"):
            vals = "SELECT p.kid, p.rid + ?, p.num, p.txt FROM part.vals p WHERE true"
        else:
            vals = "SELECT mk.kid, p.rid + ?, p.num, p.txt FROM part.vals p"
            vals += " JOIN part.keys pk ON pk.kid = p.kid JOIN main.keys mk ON mk.name = pk.name"
            vals += " WHERE true"
        conn.execute(f"INSERT INTO main.vals {vals}{kept} ORDER BY 1, 2", (off,))
        conn.execute(
            "INSERT INTO main.refs SELECT * FROM part.refs WHERE true"
            " ON CONFLICT(ref) DO UPDATE SET cat = excluded.cat, bucket = excluded.bucket"
        )
        conn.execute("INSERT OR REPLACE INTO main.buckets SELECT * FROM part.buckets")
        conn.execute(
            "INSERT OR REPLACE INTO main.current SELECT c.run_id, c.ref, coalesce(d.rid, c.rid + ?)"
            " FROM part.current c LEFT JOIN temp.dup d ON d.prid = c.rid ORDER BY c.run_id",
            (off,),
        )

    @staticmethod
    def _more_rows_than_runs(conn: sqlite3.Connection) -> bool:
        rows = conn.execute("SELECT count(*) FROM runs").fetchone()[0]
        return bool(rows > conn.execute("SELECT count(*) FROM current").fetchone()[0])

    def _candidates(self, changes: _Changes) -> dict[str, str]:
        """commit -> run id of refs whose value the index does not know yet."""
        out: dict[str, str] = {}
        if changes.packed is not None:
            stored = dict(self.conn.execute(_PACKED_REFS))
            for ref, sha in changes.packed.items():
                if stored.get(ref) != sha:
                    out[sha] = self._id(ref)
        for folder, scan in changes.scans.items():
            stored_loose = self._loose_in(folder)
            for ref, (_file, sha) in scan.refs.items():
                run_id = self._id(ref)
                if run_id and stored_loose.get(ref, NO_REF)[1] != sha:
                    out[sha] = run_id
        for bucket, (_tip, listed) in changes.buckets.items():
            stored_cat = self._bucket_entries(bucket)
            for ref, sha in listed.items():
                if stored_cat.get(ref) != sha:
                    out[sha] = self._id(ref)
        return out

    def _missing(self, commits: dict[str, str]) -> dict[str, str]:
        if self._empty(self.conn):  # a fresh index: 100,000 look-ups saved
            return dict(commits)
        have = {sha for sha, _rid in self._rids(self.conn, list(commits))}
        return {c: i for c, i in commits.items() if c not in have}

    def _read(self, wanted: dict[str, str]) -> set[str]:
        """Read and store the records of ``wanted`` (commit -> run id); the commits stored.
        Many of them (a fresh clone): a second process (``build --rows``) reads most of them
        and hands their rows over; this one reads the rest and stores them all, both cores
        busy."""
        if not self._parallel(len(wanted)):
            return self.store(iter_rows(self.repo, wanted))
        items = list(wanted.items())
        cut = len(items) * _MINE_READ // 100
        mine, theirs = dict(items[:cut]), dict(items[cut:])
        helper = self._helper("--rows")
        if helper is None:
            return self.store(iter_rows(self.repo, wanted))
        assert helper.stdout is not None
        with contextlib.suppress(AttributeError, OSError):  # Linux: ~100 ms of rows in flight
            fcntl.fcntl(helper.stdout.fileno(), fcntl.F_SETPIPE_SZ, 1 << 20)
        _send(helper, "".join(f"{c} {r}\n" for c, r in theirs.items()).encode())  # or it died
        handed: set[str] = set()
        # a WAL of 64 MB before its pages are copied into the file: 100k runs' rows go in with
        # 2 checkpoints (and their fsyncs) instead of ~25, ~0.3 s less in this process
        self.conn.execute(f"PRAGMA wal_autocheckpoint = {_BULK_CHECKPOINT}")
        try:
            with _reaped(helper), helper.stdout:
                own = iter_rows(self.repo, mine)
                done = self.store(_merged(own, helper.stdout.fileno(), handed))
                helper.wait()
        finally:
            self.conn.execute("PRAGMA wal_autocheckpoint = 1000")  # SQLite's default
        left = {c: r for c, r in theirs.items() if c not in handed}  # the helper failed
        if left:
            done |= self.store(iter_rows(self.repo, left))
        return done | set(theirs)

    def store(self, rows: Iterable[Stored], *, whole: bool = False) -> set[str]:
        """Store rows in batches, each its own write transaction (records are read between
        them, so another process's batches go in meanwhile); ``whole``: rows already in
        memory (summaries) in one transaction, each page written once (~0.4 s of COMMITs
        saved at 100k runs). The commits stored."""
        done: set[str] = set()
        size = _BATCH
        if whole:
            rows = list(rows)
            size = max(len(rows), 1)
        batch: list[Stored] = []
        # A big page cache while writing many rows (SQLite's default of 2 MB otherwise:
        # a reader that scans the index keeps its memory bounded).
        self.conn.execute("PRAGMA cache_size = -32000")
        try:
            with gc_paused():
                return self._store_batches(rows, done, batch, size)
        finally:
            self.conn.execute("PRAGMA cache_size = -2000")

    def _store_batches(
        self, rows: Iterable[Stored], done: set[str], batch: list[Stored], size: int
    ) -> set[str]:
        for item in rows:
            batch.append(item)
            if len(batch) >= size:
                done |= self._store_batch(batch)
                batch = []
        if batch:
            done |= self._store_batch(batch)
        return done

    def _store_batch(self, raw: list[Stored]) -> set[str]:
        """Annotate ``raw`` as the notes state the index holds (read outside the lock), and
        store it; the commits stored."""
        if self._notes is None:
            self._notes = annotated.NotesState.decode(self._stored_notes())
        items = annotated.apply(self.repo, raw, self._notes)
        with self.write() as conn:
            return self._insert(conn, self._annotated_locked(raw, items))

    def _annotated_locked(self, raw: list[Stored], items: list[Stored] | None) -> list[Stored]:
        """Under the write lock: ``items`` (``raw`` annotated as ``self._notes`` says), unless
        another process applied newer notes since we looked: then annotated as it did."""
        stored = self._stored_notes()
        if items is not None and stored == (self._notes.encode() if self._notes else None):
            return items
        self._notes = annotated.NotesState.decode(stored)
        return annotated.apply(self.repo, raw, self._notes)

    def _stored_notes(self) -> str | None:
        return self._meta("notes")

    def _sync_notes(self) -> None:
        """Bring the rows of runs whose notes changed in line with the notes refs."""
        for _attempt in range(3):
            stored = self._stored_notes()
            before = annotated.NotesState.decode(stored)
            tips = annotated.tips(self.repo)
            if before is not None and before.tips == tips:
                self._notes = before
                return
            now = annotated.state(self.repo, tips, before)
            commits = annotated.changed(self.repo, before, now)
            rows: list[Stored] = []
            indexed: dict[str, str] = {}
            if commits:
                indexed = self._indexed(commits)
            if indexed:  # a fresh index has none
                rows = annotated.apply(self.repo, list(iter_rows(self.repo, indexed)), now)
            with self.write() as conn:
                if self._stored_notes() != stored:
                    continue  # another process moved it meanwhile: look again
                if commits:  # rows another process added since we looked
                    late = {c: r for c, r in self._indexed(commits).items() if c not in indexed}
                    if late:
                        rows += annotated.apply(self.repo, list(iter_rows(self.repo, late)), now)
                if commits is None:  # git cannot tell what changed: read every row again
                    for table in ("vals", "runs", "refs", "current", "folders", "facts"):
                        conn.execute(f"DELETE FROM {table}")
                    conn.execute("DELETE FROM meta WHERE key = 'packed'")
                self._insert(conn, rows, replace=True)
                conn.execute("INSERT OR REPLACE INTO meta VALUES ('notes', ?)", (now.encode(),))
            self._notes = now
            return
        self._notes = annotated.NotesState.decode(self._stored_notes())

    def _indexed(self, commits: set[str]) -> dict[str, str]:
        """{commit: run id} of ``commits`` that have a row."""
        out: dict[str, str] = {}
        shas = sorted(commits)
        for i in range(0, len(shas), 500):
            part = shas[i : i + 500]
            marks = ",".join("?" * len(part))
            sql = f"SELECT commit_sha, id FROM runs WHERE commit_sha IN ({marks})"
            out.update((str(c), str(r)) for c, r in self.conn.execute(sql, part))
        return out

    def _insert(
        self,
        conn: sqlite3.Connection,
        items: list[Stored],
        replace: bool = False,
        rids: dict[str, int] | None = None,
    ) -> set[str]:
        """Insert rows for commits the index lacks (inside a write transaction); the commits
        inserted. With ``replace``, rows it has are written again (annotations changed):
        their ``vals`` are deleted first, their rid kept. ``rids`` gets commit -> rid of
        every item."""
        present: dict[str, int] = (
            {} if self._empty(conn) else dict(self._rids(conn, [item.commit for item in items]))
        )
        if replace and present:
            self._replace_rows(conn, items, present)
        rid = int(conn.execute("SELECT ifnull(max(rid), 0) FROM runs").fetchone()[0])
        kids: dict[str, int] = dict(conn.execute("SELECT name, kid FROM keys"))
        sids: dict[tuple[str, ...], int] = {
            tuple(json.loads(keys)): sid
            for keys, sid in conn.execute("SELECT keys, sid FROM schemas")
        }
        next_kid = max(kids.values(), default=0)
        next_sid = max(sids.values(), default=0)
        new_keys: list[tuple[int, str]] = []
        new_schemas: list[tuple[int, str]] = []
        run_rows: list[tuple[Any, ...]] = []
        # key by key, runs in order (rids grow): appends to the b-tree, with no sort
        by_key: dict[int, list[tuple[int, int, Any, str | None]]] = {}
        for item in items:
            if item.commit in present:
                continue
            rid += 1
            present[item.commit] = rid
            sid = sids.get(item.keys)
            if sid is None:
                next_sid += 1
                sid = sids[item.keys] = next_sid
                new_schemas.append((sid, json.dumps(item.keys, ensure_ascii=False)))
            run_rows.append((rid, *item[:12], sid, item.doc, _stored_crc(item), *item[15:18]))
            for key, num, txt in item.cells:
                kid = kids.get(key)
                if kid is None:
                    next_kid += 1
                    kid = kids[key] = next_kid
                    new_keys.append((kid, key))
                rows = by_key.get(kid)
                if rows is None:
                    rows = by_key[kid] = []
                rows.append((kid, rid, num, txt))
        val_rows = [row for kid in sorted(by_key) for row in by_key[kid]]
        conn.executemany("INSERT INTO keys VALUES (?, ?)", new_keys)
        self._kid_map = None
        conn.executemany("INSERT INTO schemas VALUES (?, ?)", new_schemas)
        _many(conn, "INSERT INTO runs", run_rows, 19)
        _many(conn, "INSERT OR IGNORE INTO vals", val_rows, 4)
        if rids is not None:
            rids.update(present)
        return {r[1] for r in run_rows}

    def _replace_rows(
        self, conn: sqlite3.Connection, items: list[Stored], present: dict[str, int]
    ) -> None:
        """Write the rows of ``items`` the index has again, in place (same rid, so
        ``current`` holds)."""
        rids = {present[item.commit]: item for item in items if item.commit in present}
        kids: dict[str, int] = dict(conn.execute("SELECT name, kid FROM keys"))
        sids: dict[tuple[str, ...], int] = {
            tuple(json.loads(keys)): sid
            for keys, sid in conn.execute("SELECT keys, sid FROM schemas")
        }
        old: list[tuple[int, int]] = []
        for i in range(0, len(rids), 500):
            part = list(rids)[i : i + 500]
            sql = f"SELECT rid, sid FROM runs WHERE rid IN ({','.join('?' * len(part))})"
            old += conn.execute(sql, part).fetchall()
        conn.executemany(
            "DELETE FROM vals WHERE kid = ? AND rid = ?",
            [(kids[key], rid) for rid, sid in old for key in self._schema(sid) if key in kids],
        )
        run_rows: list[tuple[Any, ...]] = []
        val_rows: list[tuple[int, int, Any, str | None]] = []
        for rid, item in rids.items():
            sid = sids.get(item.keys)
            if sid is None:
                sid = sids[item.keys] = max(sids.values(), default=0) + 1
                conn.execute(
                    "INSERT INTO schemas VALUES (?, ?)",
                    (sid, json.dumps(item.keys, ensure_ascii=False)),
                )
            run_rows.append((rid, *item[:12], sid, item.doc, _stored_crc(item), *item[15:18]))
            for key, num, txt in item.cells:
                kid = kids.get(key)
                if kid is None:
                    kid = kids[key] = max(kids.values(), default=0) + 1
                    conn.execute("INSERT INTO keys VALUES (?, ?)", (kid, key))
                    self._kid_map = None
                val_rows.append((kid, rid, num, txt))
        conn.executemany(
            "INSERT OR REPLACE INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", run_rows
        )
        conn.executemany("INSERT OR REPLACE INTO vals VALUES (?, ?, ?, ?)", val_rows)
        if rids:
            conn.execute("DELETE FROM facts")  # tags and experiments changed under them

    def _drop_commits(self, conn: sqlite3.Connection, commits: Sequence[str]) -> None:
        """Delete the rows (and values) of commits no ref shows any more: keep the file small."""
        found: list[tuple[int, int]] = []
        for i in range(0, len(commits), 500):
            part = list(commits[i : i + 500])
            found += conn.execute(
                f"SELECT rid, sid FROM runs WHERE commit_sha IN ({','.join('?' * len(part))})"
                " AND rid NOT IN (SELECT rid FROM current)",
                part,
            ).fetchall()
        if not found:
            return
        kids = dict(conn.execute("SELECT name, kid FROM keys"))
        pairs = [(kids[key], rid) for rid, sid in found for key in self._schema(sid) if key in kids]
        conn.executemany("DELETE FROM vals WHERE kid = ? AND rid = ?", pairs)
        conn.executemany("DELETE FROM runs WHERE rid = ?", [(rid,) for rid, _ in found])

    def _apply(self, conn: sqlite3.Connection, changes: _Changes) -> set[str]:
        """Make the refs table say what the disk said; recompute ``current`` for touched ids."""
        touched: set[str] = set()
        dropped: list[str] = []  # refs that lost a value: deleted below if they have neither
        if changes.packed is not None and self._meta("packed") != changes.pstamp:
            stored = dict(conn.execute(_PACKED_REFS))
            gone = [ref for ref in stored if ref not in changes.packed]
            moved = [(r, s) for r, s in changes.packed.items() if stored.get(r) != s]
            conn.executemany("UPDATE refs SET packed = NULL WHERE ref = ?", [(r,) for r in gone])
            conn.executemany(
                "INSERT INTO refs(ref, run_id, packed) VALUES (?, ?, ?)"
                " ON CONFLICT(ref) DO UPDATE SET packed = excluded.packed",
                [(r, self._parsed(r), s) for r, s in moved],
            )
            dropped += gone
            touched.update(self._id(r) for r in gone)
            touched.update(self._id(r) for r, _ in moved)
            conn.execute("INSERT OR REPLACE INTO meta VALUES ('packed', ?)", (changes.pstamp,))
        stored_folders = dict(conn.execute("SELECT path, stamp FROM folders"))
        for folder, scan in changes.scans.items():
            if scan.stamp is not None and stored_folders.get(folder) == scan.stamp:
                continue  # another process applied this very listing
            stored_loose = self._loose_in(folder)
            now = {r: v for r, v in scan.refs.items() if self._id(r)}
            removed = [ref for ref in stored_loose if ref not in now]
            # in ref order: appends to the b-trees (a first look lists 100k in hash order)
            updated = sorted((r, v) for r, v in now.items() if stored_loose.get(r) != v)
            conn.executemany(
                "UPDATE refs SET loose = NULL, file = NULL, folder = NULL WHERE ref = ?",
                [(r,) for r in removed],
            )
            conn.executemany(
                "INSERT INTO refs(ref, run_id, loose, file, folder) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT(ref) DO UPDATE SET loose = excluded.loose, file = excluded.file,"
                " folder = excluded.folder",
                [(r, self._parsed(r), sha, file, folder) for r, (file, sha) in updated],
            )
            dropped += removed
            touched.update(self._id(r) for r in removed)
            for ref, (_file, sha) in updated:
                if stored_loose.get(ref, NO_REF)[1] != sha:
                    touched.add(self._id(ref))
            if scan.stamp is None:
                conn.execute("DELETE FROM folders WHERE path = ?", (folder,))
            else:
                conn.execute(
                    "INSERT OR REPLACE INTO folders VALUES (?, ?)",
                    (folder, None if scan.racy else scan.stamp),
                )
        if not stored_folders:
            conn.execute("INSERT OR IGNORE INTO folders VALUES (?, NULL)", (ROOT,))
        cat_removed: list[str] = []
        cat_updated: list[tuple[str, str | None, str, str]] = []
        for bucket, (tip, listed) in changes.buckets.items():
            stored_cat = self._bucket_entries(bucket)
            cat_removed += [ref for ref in stored_cat if ref not in listed]
            cat_updated += [
                (r, self._parsed(r), sha, bucket)
                for r, sha in listed.items()
                if stored_cat.get(r) != sha
            ]
            if tip is None:
                conn.execute("DELETE FROM buckets WHERE ref = ?", (bucket,))
            else:
                conn.execute("INSERT OR REPLACE INTO buckets VALUES (?, ?)", (bucket, tip))
        conn.executemany(
            "UPDATE refs SET cat = NULL, bucket = NULL WHERE ref = ?", [(r,) for r in cat_removed]
        )
        cat_updated.sort()  # in ref order: appends to the b-trees (a fresh clone: 100k refs)
        conn.executemany(
            "INSERT INTO refs(ref, run_id, cat, bucket) VALUES (?, ?, ?, ?)"
            " ON CONFLICT(ref) DO UPDATE SET cat = excluded.cat, bucket = excluded.bucket",
            cat_updated,
        )
        dropped += cat_removed
        touched.update(self._id(r) for r in cat_removed)
        touched.update(run_id or "" for _r, run_id, _sha, _bucket in cat_updated)
        # by key: a scan of every ref would cost ~60 ms at 100k runs on each update
        conn.executemany(
            "DELETE FROM refs WHERE ref = ? AND packed IS NULL AND loose IS NULL AND cat IS NULL",
            [(r,) for r in dropped],
        )
        self._recompute(conn, touched)
        return touched

    def _recompute(self, conn: sqlite3.Connection, touched: set[str]) -> None:
        """Point each touched run id at its best ref (local over fetched), reading any record
        the index lacks; drop rows no ref shows any more. In SQL, set by set: a fresh clone
        touches 100,000 ids at once (the per-id Python loop and look-ups were ~1.2 s)."""
        if not touched:
            return
        for table in (
            "touched(run_id TEXT PRIMARY KEY)",
            "best(run_id TEXT PRIMARY KEY, ref, sha)",
        ):
            conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS {table}")
        conn.execute("DELETE FROM temp.touched")
        conn.execute("DELETE FROM temp.best")
        # the greatest ref wins (refs/xp/runs/ > refs/xp/remotes/); with max(), SQLite takes
        # the other bare columns from the row that holds the maximum
        best = (
            "INSERT INTO temp.best SELECT f.run_id, max(f.ref), coalesce(f.cat, f.loose, f.packed)"
        )
        old: list[str] = []
        added: set[int] = set()
        if (
            len(touched) > _BATCH
            and conn.execute("SELECT 1 FROM current LIMIT 1").fetchone() is None
        ):
            # a fresh index (a clone's first sync): every ref's run is shown, none was before
            conn.execute(f"{best} FROM refs f GROUP BY f.run_id")
        else:
            # in order: appends to the b-tree, and the join below reads refs_run in order
            conn.executemany("INSERT INTO temp.touched VALUES (?)", [(t,) for t in sorted(touched)])
            conn.execute(
                f"{best} FROM temp.touched t CROSS JOIN refs f ON f.run_id = t.run_id"  # ids lead
                " GROUP BY f.run_id"
            )
            # the rows the touched ids showed and no longer show
            old = [
                str(r[0])
                for r in conn.execute(
                    "SELECT r.commit_sha FROM temp.touched t CROSS JOIN current c"
                    " ON c.run_id = t.run_id JOIN runs r ON r.rid = c.rid"
                    " LEFT JOIN temp.best b ON b.run_id = c.run_id"
                    " WHERE b.sha IS NULL OR b.sha != r.commit_sha"
                )
            ]
            conn.execute(
                "DELETE FROM current WHERE run_id IN"
                " (SELECT run_id FROM temp.touched EXCEPT SELECT run_id FROM temp.best)"
            )
        if conn.execute("SELECT 1 FROM facts LIMIT 1").fetchone() is not None:
            # the rows of ids that had none: their aggregates join the kept ones
            added = {
                int(r[0])
                for r in conn.execute(
                    "SELECT r.rid FROM temp.best b JOIN runs r ON r.commit_sha = b.sha"
                    " WHERE NOT EXISTS (SELECT 1 FROM current c WHERE c.run_id = b.run_id)"
                )
            }
        point = (
            "INSERT OR REPLACE INTO current SELECT b.run_id, b.ref, r.rid"
            " FROM temp.best b JOIN runs r ON r.commit_sha = b.sha ORDER BY b.run_id"
        )
        late = False
        if (
            conn.execute(point).rowcount
            < conn.execute("SELECT count(*) FROM temp.best").fetchone()[0]
        ):
            # refs moved again between our look and our lock (rare): read those records
            missing = dict(
                conn.execute(
                    "SELECT b.sha, b.run_id FROM temp.best b"
                    " WHERE NOT EXISTS (SELECT 1 FROM runs r WHERE r.commit_sha = b.sha)"
                )
            )
            self._insert(conn, self._annotated_locked(list(iter_rows(self.repo, missing)), None))
            conn.execute(point)
            late = True  # their aggregates are not in ``added``: ``facts`` is recomputed
        self._drop_commits(conn, old)
        self._merge_facts(conn, added, bool(old) or late)

    @staticmethod
    def _empty(conn: sqlite3.Connection) -> bool:
        """No run has a row (a fresh index)."""
        return conn.execute("SELECT 1 FROM runs LIMIT 1").fetchone() is None

    @staticmethod
    def _rids(conn: sqlite3.Connection, commits: list[str]) -> Iterator[tuple[str, int]]:
        """(commit, rid) of the commits the index has rows for."""
        for i in range(0, len(commits), 500):
            part = commits[i : i + 500]
            marks = ",".join("?" * len(part))
            yield from conn.execute(
                f"SELECT commit_sha, rid FROM runs WHERE commit_sha IN ({marks})", part
            )

    def _maybe_pack(self) -> None:
        """Have the loose run refs packed when there are PACK_AT of them, by a detached
        process holding PACKER_LOCK (see the module docstring); not when one runs already."""
        if self.memory or self._scratch:
            return
        row = self.conn.execute("SELECT count(*) FROM refs WHERE folder IS NOT NULL").fetchone()
        if int(row[0]) < PACK_AT:
            return
        setting = (gitconfig.get(self.repo, "xp.packRefs") or "true").strip().lower()
        if setting in ("false", "no", "off", "0"):
            return
        repo = self.repo
        args = [str(self.path), str(repo.worktree), str(repo.git_dir), str(repo.common_dir)]
        detach_locked(
            repo.xp_dir / PACKER_LOCK,
            lambda fd: [sys.executable, "-m", "xp.query.index.pack", str(fd), *args],
            repo.worktree,
        )

    def pack_loose(self) -> None:
        """Pack the loose run refs the index knows of and record the move (the packer's job)."""
        loose = dict(self.conn.execute("SELECT ref, loose FROM refs WHERE folder IS NOT NULL"))
        done = pack_refs(self.repo, sorted(loose))
        if done is None:
            return
        with self.write() as conn:
            if self._meta("packed") == done.before:  # packed-refs is what the index knew
                conn.executemany(
                    "UPDATE refs SET packed = ? WHERE ref = ?",
                    [(sha, ref) for ref, sha in done.moved.items()],
                )
                conn.executemany(
                    "UPDATE refs SET loose = NULL, file = NULL, folder = NULL WHERE ref = ?",
                    [(ref,) for ref in done.pruned],
                )
                conn.execute("INSERT OR REPLACE INTO meta VALUES ('packed', ?)", (done.after,))
            # the folders lost files: list them again next time (they are small now)
            folders = {ref.rpartition("/")[0] for ref in done.pruned}
            conn.executemany(
                "UPDATE folders SET stamp = NULL WHERE path = ?", [(f,) for f in folders]
            )

    def rebuild(self) -> int:
        """Forget everything and read every run again from its record (``xp show
        --rebuild``: fetched buckets' run summaries are not used)."""
        with self.write() as conn:
            for table in (
                "vals",
                "runs",
                "keys",
                "schemas",
                "refs",
                "current",
                "folders",
                "facts",
                "buckets",
            ):
                conn.execute(f"DELETE FROM {table}")
            conn.execute("DELETE FROM meta WHERE key IN ('packed', 'notes')")
        self._schemas.clear()
        self._position_maps.clear()
        self._notes = None
        self.summaries = False
        try:
            self.sync()
        finally:
            self.summaries = True
        return self.count()

    # -- questions --------------------------------------------------------------------------
    def keys(self) -> list[str]:
        """Every params./metrics./tags. column any indexed run has."""
        return [
            r[0]
            for r in self.conn.execute(
                "SELECT name FROM keys k WHERE EXISTS (SELECT 1 FROM vals v WHERE v.kid = k.kid)"
                " ORDER BY name"
            )
        ]

    def known_keys(self) -> list[str]:
        """Every column any run indexed since the last rebuild had, values or not now: what
        a filter or sort may name (a tag an annotation removed matches nothing, no error)."""
        return sorted(str(r[0]) for r in self.conn.execute("SELECT name FROM keys"))

    def _kids(self) -> dict[str, int]:
        """Column name -> key id, read once per sync: `xp show` asks per column, and a run
        with 10,000 metrics (or a crafted one) made that 10,000 reads of 10,000 rows."""
        if self._kid_map is None:
            self._kid_map = dict(self.conn.execute("SELECT name, kid FROM keys"))
        return self._kid_map

    def _schema(self, sid: int) -> tuple[str, ...]:
        keys = self._schemas.get(sid)
        if keys is None:
            for s, text in self.conn.execute("SELECT sid, keys FROM schemas"):
                self._schemas[int(s)] = tuple(json.loads(text))
            keys = self._schemas.get(sid, ())
        return keys

    def count(self) -> int:
        """How many runs the refs show."""
        return int(self.conn.execute("SELECT count(*) FROM current").fetchone()[0])

    def _where(self, query: Query, kids: dict[str, int]) -> tuple[str, list[Any]]:
        args: list[Any] = []
        clauses: list[str] = []
        if query.where is not None:
            clauses.append(where_sql(query.where, args, kids))
        if query.experiments:
            clauses.append(f"r.experiment IN ({','.join('?' * len(query.experiments))})")
            args.extend(query.experiments)
        if query.branch:
            clauses.append("r.branch = ?")
            args.append(query.branch)
        if query.statuses:
            clauses.append(f"r.status IN ({','.join('?' * len(query.statuses))})")
            args.extend(query.statuses)
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), args

    def _select_sql(self, columns: str, query: Query) -> tuple[str, list[Any]]:
        kids = self._kids()
        filtered, where_args = self._where(query, kids)
        joins, join_args, order = sort_sql(list(query.sort), kids)
        sql = f"SELECT {columns}{_FROM}{joins}{filtered} ORDER BY {order}"
        args = join_args + where_args
        if query.limit is not None or query.offset:
            sql += " LIMIT ?"
            args.append(-1 if query.limit is None else query.limit)
        if query.offset:
            sql += " OFFSET ?"
            args.append(query.offset)
        return sql, args

    def matching(self, query: Query | None = None, **conditions: Any) -> int:
        """How many runs match the conditions (before any limit)."""
        query = query or Query(**conditions)
        filtered, args = self._where(query, self._kids())
        if not filtered:
            return self.count()
        return int(self.conn.execute(f"SELECT count(*){_FROM}{filtered}", args).fetchone()[0])

    def stream(self, query: Query | None = None, **conditions: Any) -> Iterator[RunRow]:
        """Runs matching every condition, in ``sort`` order (newest first to break ties),
        at most ``limit``, one at a time: memory holds one row, whatever the count.
        Conditions: ``where`` (a parsed filter), ``experiments``, ``branch``, ``statuses``,
        ``sort``, ``limit``."""
        sql, args = self._select_sql(_COLUMNS, query or Query(**conditions))
        keys: dict[int, tuple[str, ...]] = {}
        loads = _SCAN  # json.loads without its checks: the index wrote these arrays
        damaged: dict[str, str] = {}
        new = object.__new__
        for t in self.conn.execute(sql, args):
            if _checksum(t[1], t[2], t[4], t[5], t[12], t[13]) != t[15]:
                # a damaged row: shown as its record says, and rebuilt once the read is over
                damaged[t[1]] = t[0]
                yield from (as_row(i, t[14]) for i in self._fresh({t[1]: t[0]}))
                continue
            sid = t[11]
            schema = keys.get(sid) or keys.setdefault(sid, self._schema(sid))
            # Every field set without the frozen dataclass's __init__, which sets each through
            # object.__setattr__ (4x the cost; ``xp show -a`` makes 100,000 rows). Equal to
            # RunRow(**fields): tests/query/test_index.py checks every field is here.
            row = new(RunRow)
            row.__dict__.update(
                {
                    "run_id": t[0],
                    "commit": t[1],
                    "name": t[2],
                    "experiment": t[3],
                    "status": t[4],
                    "start": t[5],
                    "end": t[6],
                    "duration": t[7],
                    "baseline": t[8],
                    "branch": t[9],
                    "user": t[10],
                    "values": dict(zip(schema, loads(t[12], 0)[0], strict=False)),
                    "error": t[13],
                    "ref": t[14],
                    "param_text": {},
                    "parent": t[16],
                    "message": t[17],
                    "source": t[18],
                }
            )
            yield row
        if damaged:
            self.replace(damaged)

    def batches(
        self,
        query: Query,
        attributes: Sequence[str],
        keys: Sequence[str] | None,
        size: int | None = None,
    ) -> Iterator[Batch]:
        """The runs ``stream`` yields, ``size`` at a time, column by column: only the
        ``attributes`` (``RunRow`` field names) and value ``keys`` asked for, no row object
        and no JSON parsed per run (a batch's value arrays are parsed in one call); with
        ``keys=None`` every value of each run, as ``RunRow.values`` maps. Rows are checked
        against their checksums as ``stream`` checks them."""
        fields = ("run_id", "commit", "name", "status", "start", "error", "crc", "sid", "doc")
        wanted = [a for a in dict.fromkeys(attributes) if a not in fields]
        sql, args = self._select_sql(", ".join(_FIELD_SQL[f] for f in (*fields, *wanted)), query)
        damaged: dict[str, str] = {}
        cursor = self.conn.execute(sql, args)
        with gc_paused():
            while chunk := cursor.fetchmany(size or STREAM_BATCH):
                yield self._batch(chunk, (*fields, *wanted), attributes, keys, damaged)
        if damaged:
            self.replace(damaged)

    def _batch(
        self,
        chunk: list[tuple[Any, ...]],
        fields: tuple[str, ...],
        attributes: Sequence[str],
        keys: Sequence[str] | None,
        damaged: dict[str, str],
    ) -> Batch:
        columns = dict(zip(fields, map(list, zip(*chunk, strict=True)), strict=True))
        commit, name, status, start = (columns[f] for f in ("commit", "name", "status", "start"))
        error, doc, crc, sids = columns["error"], columns["doc"], columns["crc"], columns["sid"]
        bad = _damaged(commit, name, status, start, doc, error, crc)
        fresh: dict[int, RunRow] = {}
        for i in bad:  # a damaged row: shown as its record says, rebuilt once the read is over
            damaged[commit[i]] = columns["run_id"][i]
            got = self._fresh({commit[i]: columns["run_id"][i]})
            if got:
                fresh[i] = as_row(got[0])
            doc[i] = "[]"  # what it holds may not even parse
        out = Batch(len(chunk), {a: columns[a] for a in attributes}, {})
        if keys is None:
            parsed = arrays.parse(doc)
            uniform = self._uniform(parsed, sids)
            # orjson's integers beyond 64 bits are floats: that batch is parsed by json
            if arrays.wide_floats(zip(*parsed, strict=True) if uniform else parsed):
                parsed = json.loads("[" + ",".join(doc) + "]")
            schema = self._schema
            pairs = zip(sids, parsed, strict=True)
            out.maps = [dict(zip(schema(s), d, strict=False)) for s, d in pairs]
            if uniform:
                out.key_order = schema(sids[0])
        elif keys:
            parsed = arrays.parse(doc)
            # one key set of the arrays' length: one position per key for the whole batch
            uniform = self._uniform(parsed, sids)
            for key in keys:
                out.values[key] = self._value_column(key, parsed, sids, uniform)
            if arrays.wide_floats(out.values.values()):  # as above, only the columns shown
                parsed = json.loads("[" + ",".join(doc) + "]")
                for key in keys:
                    out.values[key] = self._value_column(key, parsed, sids, uniform)
        for i, row in fresh.items():  # the record's word, in place of the damaged row's
            for a in attributes:
                if a != "ref":  # the ref it is listed under is the index's
                    out.attributes[a][i] = getattr(row, a)
            for key in keys or ():
                out.values[key][i] = row.values.get(key, ABSENT)
            if out.maps is not None:
                out.maps[i] = row.values
                out.key_order = None
        return out

    def _uniform(self, docs: list[list[Any]], sids: list[int]) -> bool:
        """Whether every run has the first one's key set, and arrays of its length."""
        if not sids or sids.count(sids[0]) != len(sids):
            return False
        return set(map(len, docs)) == {len(self._schema(sids[0]))}

    def _value_column(
        self, key: str, docs: list[list[Any]], sids: list[int], uniform: bool
    ) -> list[Any]:
        """``key``'s value in each run's parsed value array (``ABSENT`` where its key set
        lacks it), as ``stream``'s ``dict(zip(schema, values))`` reads it; ``uniform``:
        every run has the first one's key set, and arrays of its length."""
        if uniform:
            pos = self._positions(sids[0]).get(key)
            return [ABSENT] * len(docs) if pos is None else list(map(itemgetter(pos), docs))
        out: list[Any] = []
        for d, sid in zip(docs, sids, strict=True):
            p = self._positions(sid).get(key)
            out.append(ABSENT if p is None or p >= len(d) else d[p])
        return out

    def _positions(self, sid: int) -> dict[str, int]:
        """key -> its position in the value arrays of key set ``sid``."""
        got = self._position_maps.get(sid)
        if got is None:
            got = self._position_maps[sid] = {k: i for i, k in enumerate(self._schema(sid))}
        return got

    def _fresh(self, commits: dict[str, str]) -> list[Stored]:
        """The rows of {commit: run id} read from git, annotated as the index shows them."""
        raw = list(iter_rows(self.repo, commits))
        return annotated.apply(self.repo, raw, self._notes)

    def replace(self, commits: dict[str, str]) -> None:
        """Read these runs' records ({commit: run id}) from git and replace their rows."""
        raw = list(iter_rows(self.repo, commits))
        items = annotated.apply(self.repo, raw, self._notes)
        with self.write() as conn:
            self._insert(conn, self._annotated_locked(raw, items), replace=True)

    def verify(self, rows: Sequence[RunRow]) -> int:
        """Check ``rows`` against their records in git (the row, its key set and its typed
        values); rows that disagree are replaced. Returns how many disagreed."""
        wanted = {r.commit: r.run_id for r in rows if r.commit}
        if not wanted:
            return 0
        stored: dict[str, tuple[Any, ...]] = {}
        shas = list(wanted)
        for i in range(0, len(shas), 500):
            part = shas[i : i + 500]
            sql = (
                "SELECT commit_sha, id, name, experiment, status, start, end, duration,"
                " baseline, branch, user, error, sid, doc, crc, rid FROM runs"
                f" WHERE commit_sha IN ({','.join('?' * len(part))})"
            )
            stored.update((str(t[0]), tuple(t)) for t in self.conn.execute(sql, part))
        bad: dict[str, str] = {}
        for item in self._fresh(wanted):
            have = stored.get(item.commit)
            if have is None or not self._agrees(item, have):
                bad[item.commit] = item.run_id
        if bad:
            self.replace(bad)
        return len(bad)

    def _agrees(self, item: Stored, have: tuple[Any, ...]) -> bool:
        if tuple(have[:12]) != tuple(item[:12]) or have[13] != item.doc:
            return False
        if self._schema(int(have[12])) != item.keys or have[14] != _stored_crc(item):
            return False
        cells = self.conn.execute(
            "SELECT k.name, v.num, v.txt FROM vals v JOIN keys k ON k.kid = v.kid WHERE v.rid = ?",
            (have[15],),
        ).fetchall()
        return sorted(map(tuple, cells), key=repr) == sorted(item.cells, key=repr)

    def select(self, query: Query | None = None, **conditions: Any) -> tuple[list[RunRow], int]:
        """Runs matching every condition, in ``sort`` order (newest first to break ties),
        at most ``limit`` after skipping ``offset``; and how many match in all."""
        query = query or Query(**conditions)
        rows = list(self.stream(query))
        if not query.offset and (query.limit is None or len(rows) < query.limit):
            return rows, len(rows)
        return rows, self.matching(query)

    def table(self, query: Query | None = None, parse: bool = True, **conditions: Any) -> Table:
        """The selected runs column by column (what a DataFrame is built from); with
        ``parse=False`` their value arrays are left unparsed, as one JSON text in ``text``."""
        sql, args = self._select_sql(
            "c.run_id, r.experiment, r.status, r.start, r.end, r.name, r.commit_sha, r.sid, r.doc,"
            " r.error, r.crc",
            query or Query(**conditions),
        )
        with gc_paused():
            return self._table(sql, args, parse)

    def _table(self, sql: str, args: list[Any], parse: bool) -> Table:
        rows = self.conn.execute(sql, args).fetchall()
        columns = list(zip(*rows, strict=True))
        if columns:
            bad = _damaged(*(columns[i] for i in (6, 5, 2, 3, 8, 9, 10)))
            if bad:  # read those runs from git again, then ask once more
                self.replace({columns[6][i]: columns[0][i] for i in bad})
                rows = self.conn.execute(sql, args).fetchall()
                columns = list(zip(*rows, strict=True))
        out = Table()
        if not rows:
            return out
        out.run_id, out.experiment, out.status, out.start, out.end = map(list, columns[:5])
        out.name, out.commit, out.sid = list(columns[5]), list(columns[6]), list(columns[7])
        out.text = "[" + ",".join(columns[8]) + "]"
        if parse:
            out.values = json.loads(out.text)
        out.keys = {sid: self._schema(sid) for sid in set(out.sid)}
        return out

    # -- facts about a selection, for laying out a table that is streamed ------------------
    def _selected(self, query: Query) -> str:
        """A condition on ``c.rid`` / ``v.rid`` that keeps the query's runs ("" for all)."""
        if query.trivial:
            return ""
        if self._selection is not query:  # fill temp.sel once per query
            sql, args = self._select_sql("c.rid", query)
            self.conn.execute("CREATE TEMP TABLE IF NOT EXISTS sel(rid INTEGER PRIMARY KEY)")
            self.conn.execute("DELETE FROM temp.sel")
            self.conn.execute(f"INSERT OR IGNORE INTO temp.sel {sql}", args)
            self._selection = query
        return " AND {}.rid IN temp.sel"

    def _value_aggregates(
        self, kid: int, kind: str, number_format: str | None, cond: str, args: Sequence[Any] = ()
    ) -> list[Any]:
        """[count, valued, min/max typeof(num), min/max num, longest printed float, min/max
        txt, count txt, longest text] of one key over the rows ``cond`` keeps: mergeable."""
        if kind == "tags":  # text only
            numbers, is_float = "NULL, NULL, NULL, NULL, NULL", "0"
        else:  # a param's float has a float's text; a huge integer's text is digits
            is_float = "typeof(v.num) = 'real'"
            if kind == "params":
                is_float += " AND v.txt GLOB '*[.ein]*'"
            numbers = (
                "min(typeof(v.num)), max(typeof(v.num)), min(v.num), max(v.num),"
                f" max(CASE WHEN {is_float} THEN length(printf(?, v.num))"
                " + (v.num = 0 AND signed_zero(v.num)) END)"
            )
        row = self.conn.execute(
            f"SELECT count(*), count(coalesce(v.num, v.txt)), {numbers},"
            " min(v.txt), max(v.txt), count(v.txt),"
            f" max(CASE WHEN NOT ({is_float}) THEN"
            "   length(coalesce(v.txt, CAST(v.num AS TEXT))) END)"
            f" FROM vals v WHERE v.kid = ?{cond}",
            ((kid,) if kind == "tags" else (number_format or "%s", kid)) + tuple(args),
        ).fetchone()
        return list(row)

    def value_facts(
        self, query: Query, keys: Sequence[str], number_format: str | None
    ) -> dict[str, ValueFacts]:
        """For each value column, what its cells are like over the query's runs, from SQL
        aggregates (no row is read into Python): how many runs have it, whether two runs
        differ (a missing value is one value, NaN another), the longest text form (texts,
        integers), the longest number printed with the printf ``number_format``.

        Over all runs the aggregates are kept in ``facts`` for each format asked, merged
        with those of new runs as they arrive and dropped when a run goes."""
        kids = self._kids()
        cond = ""
        if query.trivial:
            total = self.count()
            aggregates = self._cached_aggregates(number_format or "", kids)
        else:
            cond = self._selected(query).format("v")
            total = int(self.conn.execute("SELECT count(*) FROM temp.sel").fetchone()[0])
            aggregates = {
                kid: self._value_aggregates(kid, name.partition(".")[0], number_format, cond)
                for name, kid in kids.items()
            }
        out: dict[str, ValueFacts] = {}
        for key in keys:
            agg = aggregates.get(kids.get(key, -1))
            if agg is None:
                continue
            present, valued = int(agg[0]), int(agg[1])
            if present == 0:
                changed = False
            elif present < total:
                changed = True  # missing somewhere, present elsewhere
            else:  # present everywhere: do two runs hold different values? (NaN is one)
                types, numbers, texts = (agg[2], agg[3]), (agg[4], agg[5]), (agg[7], agg[8])
                mixed_texts = int(agg[9]) not in (0, present)
                changed = len({*types}) > 1 or len({*numbers}) > 1 or len({*texts}) > 1
                changed = changed or mixed_texts
                if not changed and numbers == (0, 0) and "real" in types:  # 0.0 == -0.0
                    changed = self._mixed_zeros(kids[key], cond)
            out[key] = ValueFacts(
                present=present,
                changed=changed,
                text_width=int(agg[10] or 0),
                number_width=int(agg[6] or 0),
                nan=present > valued,
                texts=not (agg[2] == agg[3] and agg[2] in ("integer", "real")),
            )
        return out

    def _mixed_zeros(self, kid: int, cond: str) -> bool:
        """Whether a column whose values all equal 0 holds both 0.0 and -0.0: SQL sees one
        value, the table prints two ("0" and "-0"), so the column differs between runs."""
        row = self.conn.execute(
            "SELECT count(DISTINCT signed_zero(v.num)) FROM vals v"
            f" WHERE v.kid = ? AND typeof(v.num) = 'real' AND v.num = 0{cond}",
            (kid,),
        ).fetchone()
        return bool(row[0] > 1)

    def _cached_aggregates(self, number_format: str, kids: dict[str, int]) -> dict[int, list[Any]]:
        """Every key's aggregates over all runs for ``number_format``, from ``facts`` or
        computed (under the write lock, so no sync lands between computing and keeping)."""
        rows = self.conn.execute(
            "SELECT kid, agg FROM facts WHERE fmt = ?", (number_format,)
        ).fetchall()
        if rows:
            return {int(kid): json.loads(agg) for kid, agg in rows if kid}
        try:
            with self.write() as conn:
                out = {
                    kid: self._value_aggregates(kid, name.partition(".")[0], number_format, "")
                    for name, kid in kids.items()
                }
                conn.executemany(
                    "INSERT OR REPLACE INTO facts VALUES (?, ?, ?)",
                    [(number_format, 0, "[]")]
                    + [(number_format, kid, json.dumps(agg)) for kid, agg in out.items()],
                )
        except StorageError:  # busy: answer without keeping
            out = {
                kid: self._value_aggregates(kid, name.partition(".")[0], number_format, "")
                for name, kid in kids.items()
            }
        return out

    def _merge_facts(self, conn: sqlite3.Connection, added: set[int], removed: bool) -> None:
        """Keep ``facts`` true after a sync: merge the aggregates of the runs ``added``, or
        forget them all when a run was ``removed`` (or too many came to merge)."""
        if not added and not removed:
            return
        formats = [str(r[0]) for r in conn.execute("SELECT DISTINCT fmt FROM facts")]
        if not formats:
            return
        if removed or len(added) > 1000:
            conn.execute("DELETE FROM facts")
            return
        marks = ",".join("?" * len(added))
        cond, args = f" AND v.rid IN ({marks})", sorted(added)
        kids = dict(conn.execute("SELECT name, kid FROM keys"))
        for fmt in formats:
            old = {
                int(kid): json.loads(agg)
                for kid, agg in conn.execute("SELECT kid, agg FROM facts WHERE fmt = ?", (fmt,))
            }
            if fmt == _ATTRIBUTES:
                new = self._attribute_aggregates(f" WHERE c.rid IN ({marks})", args)
                merged = _merge_attributes(old.get(0), new)
                conn.execute(
                    "INSERT OR REPLACE INTO facts VALUES (?, 0, ?)", (fmt, json.dumps(merged))
                )
                continue
            rows = []
            for name, kid in kids.items():
                agg = self._value_aggregates(kid, name.partition(".")[0], fmt or None, cond, args)
                if int(agg[0]):
                    rows.append((fmt, kid, json.dumps(_merge_values(old.get(kid), agg))))
            conn.executemany("INSERT OR REPLACE INTO facts VALUES (?, ?, ?)", rows)

    def value_texts(self, query: Query, key: str, unusual: bool = False) -> Iterator[str]:
        """The distinct texts of a column's non-numeric values (tags, text params...); with
        ``unusual``, only those with a character other than printable ASCII (the texts whose
        width is not their SQL length: a column of 100,000 names or paths has none)."""
        kid = self._kids().get(key)
        if kid is None:
            return
        cond = self._selected(query).format("v")
        odd = " AND v.txt GLOB ?" if unusual else ""
        yield from (
            str(r[0])
            for r in self.conn.execute(
                f"SELECT DISTINCT v.txt FROM vals v WHERE v.kid = ?{cond}"
                f" AND v.num IS NULL AND v.txt IS NOT NULL{odd}",
                (kid, _UNUSUAL) if unusual else (kid,),
            )
        )

    def value_numbers(self, query: Query, key: str) -> Iterator[float]:
        """The distinct floats of a column (when a printf format cannot stand in for
        Python's formatting)."""
        kid = self._kids().get(key)
        if kid is None:
            return
        cond = self._selected(query).format("v")
        yield from (
            float(r[0])
            for r in self.conn.execute(
                f"SELECT DISTINCT v.num FROM vals v WHERE v.kid = ?{cond}"
                " AND typeof(v.num) = 'real'",
                (kid,),
            )
        )

    def _attribute_aggregates(self, cond: str, args: Sequence[Any] = ()) -> list[Any]:
        """[rows, text widths (id, name, status, experiment, baseline, branch, user), the
        longest duration, rows with created, end_time, duration, branch, user]: mergeable."""
        row = self.conn.execute(
            "SELECT count(*), max(length(c.run_id)),"
            f" max(length({_SHOWN_NAME})),"
            " max(length(r.status)), max(length(r.experiment)),"
            f" max(length({_SHOWN_BASELINE})),"
            " max(length(r.branch)), max(length(r.user)), max(r.duration),"
            " count(r.start), count(r.end), count(r.duration), count(r.branch), count(r.user)"
            f"{_FROM}{cond}",
            tuple(args),
        ).fetchone()
        return list(row)

    def attribute_facts(self, query: Query) -> AttributeFacts:
        """Widths of the attribute columns' texts over the query's runs (SQL aggregates;
        over all runs, kept in ``facts`` like the values')."""
        if not query.trivial:
            agg = self._attribute_aggregates(
                self._selected(query).format("c").replace(" AND", " WHERE", 1)
            )
        else:
            row = self.conn.execute(
                "SELECT agg FROM facts WHERE fmt = ? AND kid = 0", (_ATTRIBUTES,)
            ).fetchone()
            if row is not None:
                agg = json.loads(row[0])
            else:
                try:
                    with self.write() as conn:
                        agg = self._attribute_aggregates("")
                        conn.execute(
                            "INSERT OR REPLACE INTO facts VALUES (?, 0, ?)",
                            (_ATTRIBUTES, json.dumps(agg)),
                        )
                except StorageError:
                    agg = self._attribute_aggregates("")
        n = int(agg[0])
        return AttributeFacts(
            rows=n,
            run_id=int(agg[1] or 0),
            name=int(agg[2] or 0),
            status=int(agg[3] or 0),
            experiment=int(agg[4] or 0),
            baseline=int(agg[5] or 0),
            branch=int(agg[6] or 0),
            user=int(agg[7] or 0),
            longest=agg[8],
            missing={
                "created": n - int(agg[9]),
                "end_time": n - int(agg[10]),
                "duration": n - int(agg[11]),
                "branch": n - int(agg[12]),
                "user": n - int(agg[13]),
            },
        )

    def unusual_attributes(self, query: Query, attributes: Sequence[str]) -> set[str]:
        """The text attributes some run shows with a character other than printable ASCII
        (wide, combining or escaped when shown: SQL's length is not their width)."""
        wanted = [a for a in attributes if a in _SHOWN_TEXT]
        if not wanted:
            return set()
        cond = self._selected(query).format("c").replace(" AND", " WHERE", 1)
        tests = ", ".join(f"ifnull(max({_SHOWN_TEXT[a]} GLOB ?), 0)" for a in wanted)
        row = self.conn.execute(f"SELECT {tests}{_FROM}{cond}", [_UNUSUAL] * len(wanted)).fetchone()
        return {a for a, hit in zip(wanted, row, strict=True) if hit}

    def attribute_texts(self, query: Query, attribute: str) -> Iterator[str]:
        """The distinct texts of a text attribute column (name, status...), as shown."""
        expr = _SHOWN_TEXT[attribute]
        cond = self._selected(query).format("c").replace(" AND", " WHERE", 1)
        for (text,) in self.conn.execute(f"SELECT DISTINCT {expr}{_FROM}{cond}"):
            yield "-" if text is None else str(text)

    def runs_named(self, name: str) -> list[tuple[RunRef, str]]:
        """(ref, commit) of the runs named ``name``, newest first."""
        out = []
        for ref, commit in self.conn.execute(
            "SELECT c.ref, r.commit_sha" + _FROM + " WHERE r.name = ? ORDER BY c.run_id DESC",
            (name,),
        ):
            parsed = RunRef.parse(str(ref))
            if parsed is not None:
                out.append((parsed, str(commit)))
        return out

    def runs_with_prefix(self, prefix: str, limit: int) -> tuple[list[tuple[RunRef, str]], int]:
        """(ref, commit) of at most ``limit`` runs whose id starts with ``prefix`` (newest
        first), and how many there are."""
        if not prefix:
            return [], 0
        bounds = (prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1))
        cond = " WHERE c.run_id >= ? AND c.run_id < ?"
        count = self.conn.execute("SELECT count(*) FROM current c" + cond, bounds).fetchone()
        total = int(count[0])
        out = []
        for ref, commit in self.conn.execute(
            "SELECT c.ref, r.commit_sha" + _FROM + cond + " ORDER BY c.run_id DESC LIMIT ?",
            (*bounds, limit),
        ):
            parsed = RunRef.parse(str(ref))
            if parsed is not None:
                out.append((parsed, str(commit)))
        return out, total

    def recent_names(self, limit: int) -> list[str]:
        """Distinct run names, newest runs first (for did-you-mean suggestions)."""
        sql = "SELECT DISTINCT r.name" + _FROM + " ORDER BY c.run_id DESC LIMIT ?"
        return [str(r[0]) for r in self.conn.execute(sql, (limit,))]

    def experiments(self) -> list[tuple[str, int, float | None, float | None]]:
        """(experiment, runs, first start, last start or end) of every experiment runs name."""
        sql = (
            "SELECT r.experiment, count(*), min(r.start), max(coalesce(r.end, r.start))"
            + _FROM
            + " WHERE r.experiment IS NOT NULL AND r.experiment != '' GROUP BY r.experiment"
        )
        return [(str(e), int(n), a, b) for e, n, a, b in self.conn.execute(sql)]

    def runs_on(self, commits: Sequence[str]) -> list[tuple[str, str]]:
        """(run id, baseline) of the runs whose baseline is one of ``commits``."""
        out: list[tuple[str, str]] = []
        for i in range(0, len(commits), 500):
            part = list(commits[i : i + 500])
            sql = "SELECT c.run_id, r.baseline" + _FROM
            sql += f" WHERE r.baseline IN ({','.join('?' * len(part))})"
            out += [(str(a), str(b)) for a, b in self.conn.execute(sql, part)]
        return out


# RunRow's fields in order; the key set and values between ``user`` and ``error``
_COLUMNS = (
    "c.run_id, r.commit_sha, r.name, r.experiment, r.status, r.start, r.end,"
    " r.duration, r.baseline, r.branch, r.user, r.sid, r.doc, r.error, c.ref, r.crc,"
    " r.parent, r.message, r.source"
)


def _many(
    conn: sqlite3.Connection, head: str, rows: Sequence[tuple[Any, ...]], width: int, tail: str = ""
) -> None:
    """``conn.executemany(f"{head} VALUES (?, ...){tail}", rows)`` as statements of ~200 rows
    each (multi-row ``VALUES``): half the cost a row of one statement per row (SQLite's
    step and reset, the binding loop), 0.15 s of 100k runs' values."""
    per = max(1, 800 // width)
    one = "(" + ",".join("?" * width) + ")"
    whole = len(rows) - len(rows) % per
    chain = itertools.chain.from_iterable
    if whole:
        sql = f"{head} VALUES {','.join([one] * per)}{tail}"
        for i in range(0, whole, per):
            conn.execute(sql, list(chain(rows[i : i + per])))
    if whole < len(rows):
        rest = rows[whole:]
        conn.execute(f"{head} VALUES {','.join([one] * len(rest))}{tail}", list(chain(rest)))


def _same_ids(conn: sqlite3.Connection, table: str, key: str, name: str) -> bool:
    """Every row of ``part.<table>`` has the id ``main.<table>`` gives its ``name``."""
    return bool(
        conn.execute(
            f"SELECT NOT EXISTS (SELECT 1 FROM part.{table} p LEFT JOIN main.{table} m"
            f" ON m.{key} = p.{key} WHERE m.{name} IS NOT p.{name})"
        ).fetchone()[0]
    )


def _send(helper: subprocess.Popen[bytes], job: bytes) -> None:
    """Give a helper its job and close its input; a helper that died is left to ``wait``."""
    assert helper.stdin is not None
    try:
        helper.stdin.write(job)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            helper.stdin.close()


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while rows are read or stored in bulk: 100,000 runs make
    millions of objects that live until the read ends, and the collector walked them again
    and again (a fifth of a cold build's CPU) to find no cycle (refcounts free the rest)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _merged(own: Iterator[Stored], fd: int, handed: set[str]) -> Iterator[Stored]:
    """``own`` rows, and between them the rows a helper has written to ``fd`` so far (read
    without waiting, often enough that it never waits on a full pipe); then the rest of its
    rows, until it closes its end. ``handed`` gets the commits of the helper's rows."""
    reader = FrameReader()
    os.set_blocking(fd, False)
    for count, item in enumerate(own):
        yield item
        if not count & 31:
            with contextlib.suppress(BlockingIOError):
                for theirs in reader.feed(os.read(fd, 1 << 20)):
                    handed.add(theirs.commit)
                    yield theirs
    os.set_blocking(fd, True)
    while data := os.read(fd, 1 << 20):
        for theirs in reader.feed(data):
            handed.add(theirs.commit)
            yield theirs


@contextlib.contextmanager
def _reaped(helper: subprocess.Popen[bytes]) -> Iterator[None]:
    """Kill and reap ``helper`` when the work beside it fails or is interrupted (Ctrl-C):
    it must not go on writing the index after xp has exited."""
    try:
        yield
    except BaseException:
        helper.kill()
        helper.wait()
        raise


def _signed_zero(number: float) -> int:
    """1 for -0.0 (asked only of zeros: few calls)."""
    return int(math.copysign(1.0, number) < 0)


def _checksum(
    commit: str, name: str, status: str, start: float | None, doc: str, error: str | None
) -> int:
    """CRC-32 of what a row shows (a damaged SQLite page must not show another value)."""
    text = f"{commit}\x1f{name}\x1f{status}\x1f{start!r}\x1f{doc}\x1f{error}"
    return zlib.crc32(text.encode(_UTF8, _SURR))


_UTF8, _SURR = "utf-8", "surrogatepass"


def _damaged(
    commit: Sequence[str],
    name: Sequence[str],
    status: Sequence[str],
    start: Sequence[float | None],
    doc: Sequence[str],
    error: Sequence[str | None],
    crc: Sequence[int],
) -> list[int]:
    """The positions of the rows (given column by column) whose ``_checksum`` is not their
    ``crc``: the texts joined, encoded and checked by C-level ``map`` calls."""
    errors: Iterable[str] = (
        repeat("None", len(error)) if error.count(None) == len(error) else map(str, error)
    )
    try:
        texts = list(
            map("\x1f".join, zip(commit, name, status, map(repr, start), doc, errors, strict=True))
        )
    except TypeError:  # a cell that is not a text (a damaged page): as ``_checksum`` has it
        texts = [
            f"{c}\x1f{n}\x1f{s}\x1f{t!r}\x1f{d}\x1f{e}"
            for c, n, s, t, d, e in zip(commit, name, status, start, doc, error, strict=True)
        ]
    got = list(map(zlib.crc32, map(str.encode, texts, repeat(_UTF8), repeat(_SURR))))
    if got == list(crc):
        return []
    return [i for i, (a, b) in enumerate(zip(got, crc, strict=True)) if a != b]


def _stored_crc(item: Stored) -> int:
    return _checksum(item.commit, item.name, item.status, item.start, item.doc, item.error)


_FROM = " FROM current c JOIN runs r ON r.rid = c.rid"
# RunRow field (and the checksum's and key set's) -> its SQL over ``_FROM``
_FIELD_SQL = {
    "run_id": "c.run_id",
    "commit": "r.commit_sha",
    "name": "r.name",
    "experiment": "r.experiment",
    "status": "r.status",
    "start": "r.start",
    "end": "r.end",
    "duration": "r.duration",
    "baseline": "r.baseline",
    "branch": "r.branch",
    "user": "r.user",
    "error": "r.error",
    "ref": "c.ref",
    "parent": "r.parent",
    "message": "r.message",
    "source": "r.source",
    "crc": "r.crc",
    "sid": "r.sid",
    "doc": "r.doc",
}
# what xp show prints in the name and baseline columns (cli/show.py: ``_attr``)
_SHOWN_NAME = "CASE WHEN ifnull(r.error, '') != '' THEN '! ' || r.error ELSE r.name END"
_SHOWN_BASELINE = (
    "coalesce(nullif(r.branch, ''), substr(coalesce(nullif(r.baseline, ''), '-'), 1, 7))"
)


# a text attribute as ``xp show`` prints it (``attribute_texts``)
_SHOWN_TEXT = {
    "run_id": "c.run_id",
    "name": _SHOWN_NAME,
    "status": "r.status",
    "experiment": "r.experiment",
    "baseline": _SHOWN_BASELINE,
    "branch": "r.branch",
    "user": "r.user",
    "commit": "substr(r.commit_sha, 1, 12)",
}
_UNUSUAL = "*[^ -~]*"  # GLOB: a character other than printable ASCII
_SCAN = json.JSONDecoder().scan_once  # type: ignore[attr-defined]
_ATTRIBUTES = "attributes"  # the fmt under which ``facts`` keeps the attribute aggregates


def _merge_values(old: list[Any] | None, new: list[Any]) -> list[Any]:
    """``Index._value_aggregates`` of two sets of runs -> of their union."""
    if old is None or not int(old[0]):
        return new
    add = [0, 1, 9]
    low = [2, 4, 7]
    high = [3, 5, 8, 6, 10]
    out = list(old)
    for i in add:
        out[i] = int(old[i]) + int(new[i])
    for i in low:
        out[i] = min((v for v in (old[i], new[i]) if v is not None), default=None)
    for i in high:
        out[i] = max((v for v in (old[i], new[i]) if v is not None), default=None)
    return out


def _merge_attributes(old: list[Any] | None, new: list[Any]) -> list[Any]:
    """``Index._attribute_aggregates`` of two sets of runs -> of their union."""
    if old is None:
        return new
    out = list(old)
    for i in (0, 9, 10, 11, 12, 13):
        out[i] = int(old[i]) + int(new[i])
    for i in range(1, 9):
        out[i] = max((v for v in (old[i], new[i]) if v is not None), default=None)
    return out


def open_index(repo: GitRepo, sync: bool = True) -> Index:
    """The repo's index, in step with its refs."""
    index = Index(repo)
    if sync:
        try:
            index.sync()
        except BaseException:
            index.close()
            raise
    return index
