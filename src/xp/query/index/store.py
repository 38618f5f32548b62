"""The query index: a SQLite cache of run records under ``<git common dir>/xp/index.sqlite``.

Refs are the truth; the index is derived and can be deleted at any time. A row of ``runs`` is
keyed by commit sha, and commits never change, so a row never goes stale: only the mapping
ref -> commit moves. Every call compares that mapping with the refs on disk (stat of
``packed-refs`` plus a walk of the loose refs under ``refs/xp/``) and applies the difference
before it answers, so after ``git fetch``, ``xp rm``, ``git pack-refs`` or ``git gc`` the
answer is exactly what the refs say. Records of new commits are read in bulk with
``git cat-file --batch`` outside any lock; writes take SQLite's write lock briefly (WAL mode,
so readers never wait for them and run writers never touch the index at all).

Rows show the runs as annotated now (``annotated``): the tips of the notes refs are kept in
``meta`` too, and when one moves only the rows of runs whose notes changed are read again.

What the index shows can be checked against the records: every row carries a CRC-32 of what
it shows, checked whenever the row is read (a damaged row is read again from git), and
``verify`` (``xp show --verify``) re-reads the records of the rows shown and replaces every
row that disagrees.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import zlib
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from xp.errors import StorageError
from xp.format import RunRef
from xp.gitstore.refs import loose_refs, packed_refs
from xp.gitstore.repo import GitRepo
from xp.query.filters import Node, SortKey
from xp.query.index import annotated
from xp.query.index.compile import sort_sql, where_sql
from xp.query.index.rows import RunRow, read_rows
from xp.record import values

# 2: a CRC-32 per row (issue 10); 3: each run's parent, message and source, which the MLflow
# view reads (issue 12). An index of another schema is deleted and rebuilt when opened.
SCHEMA = "3"
INDEX_FILE = "index.sqlite"

_DDL = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS runs(
    commit_sha TEXT PRIMARY KEY,
    id TEXT, name TEXT, experiment TEXT, status TEXT,
    start REAL, end REAL, duration REAL,
    baseline TEXT, branch TEXT, user TEXT,
    data TEXT NOT NULL,
    ptext TEXT NOT NULL,
    error TEXT,
    crc INTEGER NOT NULL,
    parent TEXT, message TEXT, source TEXT
);
CREATE INDEX IF NOT EXISTS runs_name ON runs(name);
CREATE INDEX IF NOT EXISTS runs_baseline ON runs(baseline);
CREATE TABLE IF NOT EXISTS refs(
    ref TEXT PRIMARY KEY, run_id TEXT NOT NULL, packed TEXT, loose TEXT
);
CREATE INDEX IF NOT EXISTS refs_run ON refs(run_id);
CREATE INDEX IF NOT EXISTS refs_loose ON refs(ref) WHERE loose IS NOT NULL;
CREATE TABLE IF NOT EXISTS current(
    run_id TEXT PRIMARY KEY, ref TEXT NOT NULL, commit_sha TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS current_commit ON current(commit_sha);
CREATE TABLE IF NOT EXISTS keys(key TEXT PRIMARY KEY);
"""


def run_id_of(ref: str) -> str | None:
    """The run id a ref under refs/xp/ holds, or None for refs that are not runs."""
    parsed = RunRef.parse(ref)
    return parsed.id if parsed else None


def _loose_refs(common_dir: Path) -> dict[str, str]:
    return {k: v for k, v in loose_refs(common_dir, "refs/xp/").items() if run_id_of(k)}


def _packed_run_refs(common_dir: Path) -> dict[str, str]:
    return {
        k: v
        for k, v in packed_refs(common_dir).items()
        if k.startswith("refs/xp/") and run_id_of(k)
    }


def _packed_stat(common_dir: Path) -> str:
    try:
        st = os.stat(common_dir / "packed-refs")
    except FileNotFoundError:
        return ""
    # git rewrites packed-refs by lock file + rename, so each version has a new inode.
    return f"{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"


class Index:
    """An open index connection; ``sync()`` brings it in line with the refs."""

    def __init__(self, repo: GitRepo, path: Path | None = None) -> None:
        self.repo = repo
        self.path = path if path is not None else repo.xp_dir / INDEX_FILE
        self.conn = self._open()
        self._notes: annotated.NotesState | None = None  # the notes the rows show

    # -- connection -------------------------------------------------------------------------
    def _connect(self, target: str) -> sqlite3.Connection:
        conn = sqlite3.connect(target, timeout=30.0, isolation_level=None)
        conn.execute("PRAGMA busy_timeout = 30000")
        if target != ":memory:":
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA case_sensitive_like = ON")
        conn.executescript(_DDL)
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        if row is None:
            conn.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (SCHEMA,))
        elif row[0] != SCHEMA:
            raise sqlite3.DatabaseError(f"index schema {row[0]}, want {SCHEMA}")
        return conn

    def _open(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return self._connect(str(self.path))
        except sqlite3.DatabaseError:
            # A corrupt file or an older schema: it is only a cache, so start again.
            self._remove_files()
            try:
                return self._connect(str(self.path))
            except sqlite3.Error:
                pass
        except (sqlite3.Error, OSError):
            pass
        return self._connect(":memory:")  # read-only repo: index in memory for this call

    def _remove_files(self) -> None:
        for suffix in ("", "-wal", "-shm"):
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
    def _stored_packed_stat(self) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = 'packed'").fetchone()
        return None if row is None else str(row[0])

    def _stored_loose(self) -> dict[str, str]:
        return dict(self.conn.execute("SELECT ref, loose FROM refs WHERE loose IS NOT NULL"))

    def sync(self) -> int:
        """Apply the refs (and notes) on disk to the index; returns how many run ids' refs
        changed."""
        self._sync_notes()
        common = self.repo.common_dir
        pstat = _packed_stat(common)
        loose = _loose_refs(common)
        stored_pstat = self._stored_packed_stat()
        if pstat == stored_pstat and loose == self._stored_loose():
            return 0
        packed = None if pstat == stored_pstat else _packed_run_refs(common)
        # Read the records of commits not indexed yet before taking the write lock.
        wanted = self._missing(self._candidates(packed, loose))
        raw = read_rows(self.repo, wanted) if wanted else []
        rows = annotated.apply(self.repo, raw, self._notes)
        with self.write() as conn:
            stored_notes = self._stored_notes()
            if stored_notes != (self._notes.encode() if self._notes else None):
                # Another process applied newer notes since we looked: annotate as it did.
                self._notes = annotated.NotesState.decode(stored_notes)
                rows = annotated.apply(self.repo, raw, self._notes)
            touched = self._apply(conn, pstat, packed, loose)
            self._insert(conn, rows)
            # Another process may have moved refs between our look and our lock.
            ids = list(touched)
            extra: dict[str, str] = {}
            for i in range(0, len(ids), 500):
                part = ids[i : i + 500]
                extra.update(
                    conn.execute(
                        "SELECT c.commit_sha, c.run_id FROM current c LEFT JOIN runs r"
                        " ON r.commit_sha = c.commit_sha WHERE r.commit_sha IS NULL"
                        f" AND c.run_id IN ({','.join('?' * len(part))})",
                        part,
                    ).fetchall()
                )
            if extra:
                self._insert(conn, self._read(extra))
        return len(touched)

    def _read(self, wanted: dict[str, str]) -> list[RunRow]:
        """Rows of {commit: run id} as annotated in the notes state the index holds."""
        return annotated.apply(self.repo, read_rows(self.repo, wanted), self._notes)

    def _stored_notes(self) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = 'notes'").fetchone()
        return None if row is None else str(row[0])

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
            rows, indexed = [], {}
            if commits:
                indexed = self._indexed(commits)
                rows = annotated.apply(self.repo, read_rows(self.repo, indexed), now)
            with self.write() as conn:
                if self._stored_notes() != stored:
                    continue  # another process moved it meanwhile: look again
                if commits:  # rows another process added since we looked
                    late = {c: r for c, r in self._indexed(commits).items() if c not in indexed}
                    if late:
                        rows += annotated.apply(self.repo, read_rows(self.repo, late), now)
                if commits is None:  # git cannot tell what changed: read every row again
                    for table in ("runs", "refs", "current"):
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

    def _candidates(self, packed: dict[str, str] | None, loose: dict[str, str]) -> dict[str, str]:
        """commit -> run id of refs that may be new to the index."""
        out: dict[str, str] = {}
        stored_loose = self._stored_loose()
        for ref, sha in loose.items():
            if stored_loose.get(ref) != sha:
                out[sha] = run_id_of(ref) or ""
        if packed is not None:
            stored = dict(
                self.conn.execute("SELECT ref, packed FROM refs WHERE packed IS NOT NULL")
            )
            for ref, sha in packed.items():
                if stored.get(ref) != sha:
                    out[sha] = run_id_of(ref) or ""
        return out

    def _missing(self, commits: dict[str, str]) -> dict[str, str]:
        if not commits:
            return {}
        have: set[str] = set()
        shas = list(commits)
        for i in range(0, len(shas), 500):
            part = shas[i : i + 500]
            marks = ",".join("?" * len(part))
            have.update(
                r[0]
                for r in self.conn.execute(
                    f"SELECT commit_sha FROM runs WHERE commit_sha IN ({marks})", part
                )
            )
        return {c: i for c, i in commits.items() if c not in have}

    def _apply(
        self,
        conn: sqlite3.Connection,
        pstat: str,
        packed: dict[str, str] | None,
        loose: dict[str, str],
    ) -> set[str]:
        """Make the refs table equal to the disk; recompute ``current`` for touched run ids."""
        touched: set[str] = set()
        if packed is not None or pstat != self._stored_packed_stat():
            if packed is None:
                packed = _packed_run_refs(self.repo.common_dir)
            stored_packed = dict(
                conn.execute("SELECT ref, packed FROM refs WHERE packed IS NOT NULL")
            )
            self._set_column(conn, "packed", stored_packed, packed, touched)
        self._set_column(conn, "loose", self._stored_loose(), loose, touched)
        conn.execute("DELETE FROM refs WHERE packed IS NULL AND loose IS NULL")
        conn.execute("INSERT OR REPLACE INTO meta VALUES ('packed', ?)", (pstat,))
        stale: list[str] = []
        for run_id in touched:
            old = conn.execute(
                "SELECT commit_sha FROM current WHERE run_id = ?", (run_id,)
            ).fetchone()
            best = conn.execute(
                "SELECT ref, coalesce(loose, packed) FROM refs WHERE run_id = ?"
                " ORDER BY ref DESC LIMIT 1",
                (run_id,),
            ).fetchone()
            if best is None:
                conn.execute("DELETE FROM current WHERE run_id = ?", (run_id,))
            else:
                conn.execute("INSERT OR REPLACE INTO current VALUES (?, ?, ?)", (run_id, *best))
            if old is not None and (best is None or best[1] != old[0]):
                stale.append(old[0])
        for commit in stale:  # rows no ref shows any more: keep the file small
            conn.execute(
                "DELETE FROM runs WHERE commit_sha = ?"
                " AND NOT EXISTS (SELECT 1 FROM current WHERE commit_sha = ?)",
                (commit, commit),
            )
        return touched

    @staticmethod
    def _set_column(
        conn: sqlite3.Connection,
        column: str,
        stored: dict[str, str],
        now: dict[str, str],
        touched: set[str],
    ) -> None:
        gone = [ref for ref in stored if ref not in now]
        changed = [(ref, sha) for ref, sha in now.items() if stored.get(ref) != sha]
        conn.executemany(f"UPDATE refs SET {column} = NULL WHERE ref = ?", [(r,) for r in gone])
        conn.executemany(
            f"INSERT INTO refs(ref, run_id, {column}) VALUES (?, ?, ?)"
            f" ON CONFLICT(ref) DO UPDATE SET {column} = excluded.{column}",
            [(ref, run_id_of(ref), sha) for ref, sha in changed],
        )
        touched.update(run_id_of(r) or "" for r in gone)
        touched.update(run_id_of(r) or "" for r, _ in changed)

    @staticmethod
    def _insert(conn: sqlite3.Connection, rows: Iterable[RunRow], replace: bool = False) -> None:
        rows = list(rows)
        conn.executemany(
            f"INSERT OR {'REPLACE' if replace else 'IGNORE'} INTO runs"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            [_as_tuple(r) for r in rows],
        )
        keys = {k for r in rows for k in r.values}
        conn.executemany("INSERT OR IGNORE INTO keys VALUES (?)", [(k,) for k in keys])

    def rebuild(self) -> int:
        """Forget everything and read every run again (``xp show --rebuild``)."""
        with self.write() as conn:
            for table in ("runs", "refs", "current", "keys"):
                conn.execute(f"DELETE FROM {table}")
            conn.execute("DELETE FROM meta WHERE key IN ('packed', 'notes')")
        self.sync()
        return int(self.conn.execute("SELECT count(*) FROM current").fetchone()[0])

    # -- questions --------------------------------------------------------------------------
    def keys(self) -> list[str]:
        """Every params./metrics./tags. column any indexed run has."""
        return [r[0] for r in self.conn.execute("SELECT key FROM keys ORDER BY key")]

    def count(self) -> int:
        """How many runs the refs show."""
        return int(self.conn.execute("SELECT count(*) FROM current").fetchone()[0])

    def select(
        self,
        *,
        where: Node | None = None,
        experiments: Sequence[str] = (),
        branch: str | None = None,
        statuses: Sequence[str] = (),
        sort: Sequence[SortKey] = (),
        limit: int | None = None,
        offset: int = 0,
    ) -> tuple[list[RunRow], int]:
        """Runs matching every condition, in ``sort`` order (newest first to break ties),
        at most ``limit`` after skipping ``offset``; and how many match in all."""
        args: list[Any] = []
        clauses: list[str] = []
        if where is not None:
            clauses.append(where_sql(where, args))
        if experiments:
            clauses.append(f"r.experiment IN ({','.join('?' * len(experiments))})")
            args.extend(experiments)
        if branch:
            clauses.append("r.branch = ?")
            args.append(branch)
        if statuses:
            clauses.append(f"r.status IN ({','.join('?' * len(statuses))})")
            args.extend(statuses)
        filtered = " WHERE " + " AND ".join(clauses) if clauses else ""
        where_args = list(args)
        order = sort_sql(list(sort), args)
        # With a filter, count the matches in the same pass (a window over the filtered rows)
        # instead of evaluating the filter twice; without one the count is the index's.
        window = ", count(*) OVER ()" if filtered else ""
        sql = f"{_COLUMNS}{window}{_FROM}{filtered} ORDER BY {order}"
        if limit is not None or offset:
            sql += " LIMIT ?"
            args.append(-1 if limit is None else limit)
        if offset:
            sql += " OFFSET ?"
            args.append(offset)
        fetched = self.conn.execute(sql, args).fetchall()
        damaged = {t[2]: t[0] for t in fetched if _crc(t) != t[14]}
        if damaged:  # read those runs from git again, then ask once more
            self.replace(damaged)
            fetched = self.conn.execute(sql, args).fetchall()
        rows = [_row(t) for t in fetched]
        if not filtered:
            return rows, self.count()
        if fetched:
            return rows, int(fetched[0][-1])
        if limit == 0 or offset:
            sql = "SELECT count(*)" + _FROM + filtered
            return rows, int(self.conn.execute(sql, where_args).fetchone()[0])
        return rows, 0

    def replace(self, commits: dict[str, str]) -> None:
        """Read these runs' records ({commit: run id}) from git and replace their rows."""
        rows = annotated.apply(self.repo, read_rows(self.repo, commits), self._notes)
        with self.write() as conn:
            conn.executemany("DELETE FROM runs WHERE commit_sha = ?", [(c,) for c in commits])
            self._insert(conn, rows)

    def verify(self, rows: Sequence[RunRow]) -> int:
        """Check ``rows`` against their records in git; rows that disagree are replaced.
        Returns how many disagreed."""
        wanted = {r.commit: r.run_id for r in rows}
        if not wanted:
            return 0
        stored: dict[str, tuple[Any, ...]] = {}
        shas = list(wanted)
        for i in range(0, len(shas), 500):
            part = shas[i : i + 500]
            sql = f"SELECT * FROM runs WHERE commit_sha IN ({','.join('?' * len(part))})"
            stored.update((t[0], tuple(t)) for t in self.conn.execute(sql, part))
        fresh = annotated.apply(self.repo, read_rows(self.repo, wanted), self._notes)
        bad = {r.commit: r.run_id for r in fresh if _as_tuple(r) != stored.get(r.commit)}
        if bad:
            self.replace(bad)
        return len(bad)

    def runs_named(self, name: str) -> list[tuple[RunRef, str]]:
        """(ref, commit) of the runs named ``name``, newest first."""
        out = []
        for ref, commit in self.conn.execute(
            "SELECT c.ref, c.commit_sha" + _FROM + " WHERE r.name = ? ORDER BY c.run_id DESC",
            (name,),
        ):
            parsed = RunRef.parse(str(ref))
            if parsed is not None:
                out.append((parsed, str(commit)))
        return out

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


_COLUMNS = (
    "SELECT c.run_id, c.ref, c.commit_sha, r.name, r.experiment, r.status, r.start, r.end,"
    " r.duration, r.baseline, r.branch, r.user, r.data, r.error, r.crc,"
    " r.parent, r.message, r.source"
)
_FROM = " FROM current c JOIN runs r ON r.commit_sha = c.commit_sha"


def _row(t: tuple[Any, ...]) -> RunRow:
    run_id, ref, commit, name, experiment, status, start, end, duration, baseline = t[:10]
    return RunRow(
        run_id=run_id,
        commit=commit,
        name=name,
        experiment=experiment,
        status=status,
        start=start,
        end=end,
        duration=duration,
        baseline=baseline,
        branch=t[10],
        user=t[11],
        values=json.loads(t[12]),
        error=t[13],
        ref=ref,
        parent=t[15],
        message=t[16],
        source=t[17],
    )


def _as_tuple(row: RunRow) -> tuple[Any, ...]:
    """A row in the column order of the ``runs`` table."""
    data = values.dumps(row.values)
    return (
        row.commit,
        row.run_id,
        row.name,
        row.experiment,
        row.status,
        row.start,
        row.end,
        row.duration,
        row.baseline,
        row.branch,
        row.user,
        data,
        values.dumps(row.param_text),
        row.error,
        _checksum(row.commit, row.name, row.status, row.start, data, row.error),
        row.parent,
        row.message,
        row.source,
    )


def _checksum(
    commit: str, name: str, status: str, start: float | None, data: str, error: str | None
) -> int:
    """CRC-32 of what a row shows (a damaged SQLite page must not show another value)."""
    text = f"{commit}\x1f{name}\x1f{status}\x1f{start!r}\x1f{data}\x1f{error}"
    return zlib.crc32(text.encode("utf-8", "surrogatepass"))


def _crc(t: tuple[Any, ...]) -> int:
    """The checksum a fetched ``_COLUMNS`` tuple should carry."""
    return _checksum(str(t[2]), str(t[3]), str(t[5]), t[6], str(t[12]), t[13])


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
