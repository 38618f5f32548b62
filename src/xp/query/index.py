"""The query index: a SQLite cache of run records under ``<git common dir>/xp/index.sqlite``.

Refs are the truth; the index is derived and can be deleted at any time. A row of ``runs`` is
keyed by commit sha, and commits never change, so a row never goes stale: only the mapping
ref -> commit moves. Every call compares that mapping with the refs on disk (stat of
``packed-refs`` plus a walk of the loose refs under ``refs/xp/``) and applies the difference
before it answers, so after ``git fetch``, ``xp rm``, ``git pack-refs`` or ``git gc`` the
answer is exactly what the refs say. Records of new commits are read in bulk with
``git cat-file --batch`` outside any lock; writes take SQLite's write lock briefly (WAL mode,
so readers never wait for them and run writers never touch the index at all).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from xp import format as fmt
from xp.errors import ConfigError, StorageError
from xp.gitstore.catfile import parse_tree, read_objects
from xp.gitstore.refs import loose_refs, packed_refs
from xp.gitstore.repo import GitRepo
from xp.record import values, yamlio
from xp.record.fastyaml import load_flat
from xp.record.model import RunRecord

SCHEMA = "1"
INDEX_FILE = "index.sqlite"
_RECORD_FILES = (fmt.META_FILE, fmt.PARAMS_FILE, fmt.METRICS_FILE, fmt.TAGS_FILE)
_INVALID = "invalid"  # status of a run whose record cannot be read

_DDL = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS runs(
    commit_sha TEXT PRIMARY KEY,
    id TEXT, name TEXT, experiment TEXT, status TEXT,
    start REAL, end REAL, duration REAL,
    baseline TEXT, branch TEXT, user TEXT,
    data TEXT NOT NULL,
    ptext TEXT NOT NULL,
    error TEXT
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
    if ref.startswith(fmt.RUNS_PREFIX):
        return ref[len(fmt.RUNS_PREFIX) :] or None
    if ref.startswith(fmt.REMOTES_PREFIX) and "/runs/" in ref:
        return ref.rsplit("/runs/", 1)[1] or None
    return None


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


def _epoch(value: Any) -> float | None:
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, str) and value:
        try:
            dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


def _number(value: Any) -> float | None:
    return float(value) if values.is_number(value) else None


@dataclass(frozen=True)
class Row:
    """One run as the index stores it (``data`` holds params./metrics./tags. keys)."""

    commit: str
    id: str
    name: str
    experiment: str
    status: str
    start: float | None
    end: float | None
    duration: float | None
    baseline: str | None
    branch: str | None
    user: str | None
    data: dict[str, Any]
    ptext: dict[str, str]
    error: str | None = None

    def as_tuple(self) -> tuple[Any, ...]:
        return (
            self.commit,
            self.id,
            self.name,
            self.experiment,
            self.status,
            self.start,
            self.end,
            self.duration,
            self.baseline,
            self.branch,
            self.user,
            values.dumps(self.data),
            values.dumps(self.ptext),
            self.error,
        )


def row_from_record(run_id: str, commit: str, record: RunRecord) -> Row:
    meta = record.meta
    data: dict[str, Any] = {}
    for k, v in record.params.items():
        data[f"params.{k}"] = values.param_cell(v)
    for k, v in record.metrics.items():
        data[f"metrics.{k}"] = values.metric_cell(v)
    for k, v in record.tags.items():
        data[f"tags.{k}"] = v
    start = _epoch(meta.get("start_time"))
    if start is None and fmt.ID_RE.match(run_id):
        start = float(fmt.id_time(run_id))
    baseline = meta.get("baseline")
    branch = meta.get("branch")
    user = meta.get("user")
    return Row(
        commit=commit,
        id=run_id,
        name=record.name,
        experiment=record.experiment,
        status=record.status,
        start=start,
        end=_epoch(meta.get("end_time")),
        duration=_number(meta.get("duration")),
        baseline=str(baseline) if baseline else None,
        branch=str(branch) if branch else None,
        user=str(user) if user else None,
        data=data,
        ptext={k: values.text(v) for k, v in record.params.items()},
    )


def error_row(run_id: str, commit: str, error: str) -> Row:
    start = float(fmt.id_time(run_id)) if fmt.ID_RE.match(run_id) else None
    return Row(commit, run_id, "", "", _INVALID, start, None, None, None, None, None, {}, {}, error)


def _record(read: Any, source: str, parsed: dict[bytes, Any]) -> RunRecord:
    """RunRecord.from_files with the fast YAML reader; identical files parse once."""

    def load_yaml(data: bytes, where: str) -> Any:
        if data not in parsed:
            value = load_flat(data)
            parsed[data] = yamlio.load(data, where) if value is None else value
        return parsed[data]

    return RunRecord.from_files(read, [], source, load_yaml=load_yaml)


def read_rows(repo: GitRepo, wanted: dict[str, str]) -> list[Row]:
    """Rows for {commit: run id}, read in bulk; an unreadable record becomes an error row."""
    trees: dict[str, dict[str, tuple[int, str]]] = {}
    names = [f"{c}:{fmt.RECORD_DIR}" for c in wanted]
    for name, data in read_objects(repo, names):
        if data is not None:
            with contextlib.suppress(ValueError, IndexError):
                trees[name.split(":", 1)[0]] = parse_tree(data)
    blobs: dict[str, bytes] = {}
    needed = {
        entry[1]
        for tree in trees.values()
        for fname in _RECORD_FILES
        if (entry := tree.get(fname)) is not None
    }
    for sha, data in read_objects(repo, sorted(needed)):
        if data is not None:
            blobs[sha] = data
    rows = []
    parsed: dict[bytes, Any] = {}  # identical files (tags, params of a sweep) parse once
    for commit, run_id in wanted.items():
        tree = trees.get(commit)
        if tree is None:
            rows.append(error_row(run_id, commit, f"commit {commit[:12]} has no run record"))
            continue

        def read(name: str, tree: dict[str, tuple[int, str]] = tree) -> bytes | None:
            entry = tree.get(name)
            return None if entry is None else blobs.get(entry[1])

        try:
            record = _record(read, run_id, parsed)
        except (ConfigError, KeyError, TypeError, ValueError, AttributeError) as exc:
            rows.append(error_row(run_id, commit, str(exc).splitlines()[0] if str(exc) else ""))
            continue
        rows.append(row_from_record(run_id, commit, record))
    return rows


class Index:
    """An open index connection; ``sync()`` brings it in line with the refs."""

    def __init__(self, repo: GitRepo, path: Path | None = None) -> None:
        self.repo = repo
        self.path = path if path is not None else repo.xp_dir / INDEX_FILE
        self.conn = self._open()

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
        """Apply the refs on disk to the index; returns how many run ids' refs changed."""
        common = self.repo.common_dir
        pstat = _packed_stat(common)
        loose = _loose_refs(common)
        stored_pstat = self._stored_packed_stat()
        if pstat == stored_pstat and loose == self._stored_loose():
            return 0
        packed = None if pstat == stored_pstat else _packed_run_refs(common)
        # Read the records of commits not indexed yet before taking the write lock.
        wanted = self._missing(self._candidates(packed, loose))
        rows = read_rows(self.repo, wanted) if wanted else []
        with self.write() as conn:
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
                self._insert(conn, read_rows(self.repo, extra))
        return len(touched)

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
    def _insert(conn: sqlite3.Connection, rows: Iterable[Row]) -> None:
        rows = list(rows)
        conn.executemany(
            "INSERT OR IGNORE INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            [r.as_tuple() for r in rows],
        )
        keys = {k for r in rows for k in r.data}
        conn.executemany("INSERT OR IGNORE INTO keys VALUES (?)", [(k,) for k in keys])

    def rebuild(self) -> int:
        """Forget everything and read every run again (``xp show --rebuild``)."""
        with self.write() as conn:
            for table in ("runs", "refs", "current", "keys"):
                conn.execute(f"DELETE FROM {table}")
            conn.execute("DELETE FROM meta WHERE key = 'packed'")
        self.sync()
        return int(self.conn.execute("SELECT count(*) FROM current").fetchone()[0])

    # -- reading ----------------------------------------------------------------------------
    def keys(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT key FROM keys ORDER BY key")]

    def count(self) -> int:
        return int(self.conn.execute("SELECT count(*) FROM current").fetchone()[0])


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
