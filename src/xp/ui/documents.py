"""The JSON documents the UI's pages read and a report embeds (docs/ui.md lists them).

``Source`` answers every question over one repository: the runs table (the query index plus
the live runs of the journals, in one order), a run's record, its series, its artifacts, the
code diff of two runs and a metric along a branch. It only reads: the index it syncs is
derived state, and nothing else is written. Values are strict JSON (NaN null, infinities
"inf"/"-inf"), times ISO 8601 UTC in rows and epoch milliseconds in series.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from xp import format as fmt
from xp.errors import InvalidValueError, QueryError, RunNotFoundError
from xp.format import RunRef
from xp.gitstore import history
from xp.gitstore.catfile import read_objects
from xp.gitstore.commit import head
from xp.gitstore.repo import GitRepo
from xp.gitstore.trees import read_folder
from xp.query.diff import code_changes, lower_is_better
from xp.query.filters import ATTRIBUTES, STATUSES, Column, parse_sort, resolve_column
from xp.query.index import RunRow
from xp.query.live import LiveRun, LiveRuns
from xp.query.resolve import resolve_spec
from xp.query.search import Selection, row_values, run_document, select_runs
from xp.record import values
from xp.record.build import iso_time
from xp.record.model import FileEntry, RunRecord
from xp.ui import artifacts as art
from xp.ui.series import Columns, SeriesCache, Window, cut, of_points, parse_tsv, summary

API_VERSION = 1
MAX_PAGE = 1000
MAX_RUNS = 100  # per series / metrics request
MAX_PATCH = 2 * 1024 * 1024
GROUPS = ("experiment", "branch", "baseline")


def row_doc(row: RunRow) -> dict[str, Any]:
    """A table row: ``xp show --format json``'s document plus user and remote."""
    doc = run_document(row)
    ref = RunRef.parse(row.ref) if row.ref else None
    doc["user"] = row.user
    doc["remote"] = ref.remote if ref is not None else None
    return values.json_safe(doc)  # type: ignore[no-any-return]


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class _Lru:
    """A small thread-safe memo for answers that cost a pass over every run."""

    def __init__(self, size: int = 16) -> None:
        self.size = size
        self.items: OrderedDict[Hashable, Any] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: Hashable, make: Callable[[], Any]) -> Any:
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key]
        value = make()
        with self.lock:
            self.items[key] = value
            while len(self.items) > self.size:
                self.items.popitem(last=False)
        return value


@dataclass(frozen=True)
class FoundRun:
    """A run found by ``Source.find``: its row, and its record (None for a live run, which has
    its journal instead)."""

    row: RunRow
    record: RunRecord | None
    series_keys: tuple[str, ...]
    live: LiveRun | None = None


class Source:
    """Every document of the UI for one repository; safe to call from many threads.

    ``live`` is the live-run reader a watcher keeps fresh (the server's); without it the
    journals are read on each question, which is what a one-shot report wants.
    """

    def __init__(self, repo: GitRepo, live: LiveRuns | None = None) -> None:
        self.repo = repo
        self.live = live
        self.live_lock = threading.Lock()
        self.series = SeriesCache()
        self._counts: dict[tuple[str, str], int] = {}  # (commit, metric) -> points; blobs stay
        self.version = 0  # bumped when runs appear, change or go
        self._passes = _Lru()

    # -- rows -------------------------------------------------------------------------------
    def running(self) -> list[RunRow]:
        if self.live is None:
            return []
        with self.live_lock:
            return self.live.rows()

    def select(self, **kw: Any) -> Selection:
        if self.live is not None:
            kw.setdefault("running", self.running())
        return select_runs(self.repo, **kw)

    def _all(self, q: str, sort: Sequence[str] = ()) -> Selection:
        """Every matching run in order: one pass, remembered until the runs change."""
        key = ("all", q, tuple(sort), self.version)
        return self._passes.get(key, lambda: self.select(where=q, sort=sort, limit=None))  # type: ignore[no-any-return]

    def meta(self) -> dict[str, Any]:
        selection = self.select(limit=0)
        columns: dict[str, list[str]] = {"params": [], "metrics": [], "tags": []}
        for key in selection.keys:
            kind, _, name = key.partition(".")
            if kind in columns:
                columns[kind].append(name)
        branches = history.branches(self.repo)
        current = head(self.repo).branch
        return {
            "api": API_VERSION,
            "project": self.repo.worktree.name,
            "xp_version": _xp_version(),
            "runs": selection.total,
            "default_branch": current or (branches[0].name if branches else None),
            "branches": [
                {"name": b.name, "head": b.head, "date": iso_time(b.time)} for b in branches
            ],
            "columns": {"attributes": list(ATTRIBUTES), **columns},
            "statuses": list(STATUSES),
            "live": self.live is not None,
        }

    def runs(
        self,
        *,
        q: str = "",
        sort: Sequence[str] = (),
        group: str = "",
        offset: int = 0,
        limit: int = 100,
        with_meta: bool = False,
        varying: bool = False,
    ) -> dict[str, Any]:
        """One page of the table (``offset``/``limit``), in the order of ``sort`` within
        ``group``; on the first page (or ``with_meta``) the columns, the groups and, when
        asked, the columns whose values differ among all the matching runs."""
        if not 0 <= limit <= MAX_PAGE:
            raise InvalidValueError(f"limit must be 0 to {MAX_PAGE}, got {limit}")
        if offset < 0:
            raise InvalidValueError(f"offset must be 0 or more, got {offset}")
        started = time.perf_counter()
        order = list(sort)
        group_col = self._group_column(group, q) if group else None
        if group_col is not None:
            order = [group_col.name, *order]
        selection = self.select(where=q, sort=order, limit=limit, offset=offset)
        out: dict[str, Any] = {
            "total": selection.total,
            "offset": offset,
            "limit": limit,
            "version": self.version,
            "rows": [row_doc(r) for r in selection.rows],
        }
        if offset == 0 or with_meta:
            out["all"] = self.select(limit=0).total if q else selection.total
            out["columns"] = _columns_of(selection.keys)
            if group_col is not None:
                out["groups"] = self._groups(q, order, group_col)
            if varying:
                out["varying"] = self._varying(q)
        out["query_ms"] = round((time.perf_counter() - started) * 1000, 1)
        return out

    def _group_column(self, group: str, q: str) -> Column:
        if group in GROUPS:
            return Column("attr", group)
        keys = self.select(limit=0).keys
        try:
            return parse_sort(group, keys).column
        except QueryError as exc:
            raise InvalidValueError(f"group: {exc}") from None

    def _groups(self, q: str, order: list[str], col: Column) -> list[dict[str, Any]]:
        def make() -> list[dict[str, Any]]:
            rows = self._all(q, order).rows
            groups: list[dict[str, Any]] = []
            last: Any = object()
            for offset, row in enumerate(rows):
                value = row_values(row).get(col.key if col.kind == "attr" else col.name)
                key = values.text(value) if value is not None else None
                if not groups or key != last:
                    groups.append(
                        {"value": value, "label": "(none)" if key is None else key, "count": 0}
                    )
                    groups[-1]["offset"] = offset
                    last = key
                groups[-1]["count"] += 1
            if col.kind == "attr" and col.key == "baseline":
                subjects = history.subjects(self.repo, [g["value"] for g in groups if g["value"]])
                for g in groups:
                    if g["value"]:
                        g["label"] = f"{g['value'][:7]} {subjects.get(g['value'], '')}".strip()
            return values.json_safe(groups)  # type: ignore[no-any-return]

        return self._passes.get(("groups", q, tuple(order), self.version), make)  # type: ignore[no-any-return]

    def _varying(self, q: str) -> list[str]:
        def make() -> list[str]:
            rows = self._all(q).rows
            seen: dict[str, str] = {}
            count: dict[str, int] = {}
            differ: set[str] = set()
            for row in rows:
                for key, value in row.values.items():
                    text = repr(value)
                    if seen.setdefault(key, text) != text:
                        differ.add(key)
                    count[key] = count.get(key, 0) + 1
            differ.update(k for k, n in count.items() if n != len(rows))
            return sorted(differ)

        return self._passes.get(("varying", q, self.version), make)  # type: ignore[no-any-return]

    def runs_by_id(self, ids: Sequence[str]) -> dict[str, Any]:
        """Exactly these runs, in this order (the selection, a comparison)."""
        wanted = [i for i in dict.fromkeys(ids) if fmt.ID_RE.match(i)]
        found: dict[str, RunRow] = {}
        for i in range(0, len(wanted), 200):
            part = wanted[i : i + 200]
            where = f"run_id in ({', '.join(_quote(x) for x in part)})"
            found.update((r.run_id, r) for r in self.select(where=where, limit=None).rows)
        rows = [row_doc(found[i]) for i in wanted if i in found]
        missing = [i for i in ids if i not in found]
        return {"total": len(rows), "offset": 0, "rows": rows, "missing": missing}

    # -- one run ----------------------------------------------------------------------------
    def find(self, spec: str) -> FoundRun:
        """A run by id (or anything ``xp show`` resolves: prefix, name, ref)."""
        if self.live is not None:
            with self.live_lock:
                live = self.live.runs.get(spec)
                row = live.row() if live is not None else None
            if live is not None and row is not None:
                return FoundRun(row, None, tuple(sorted(live.series)), live)
        row = None
        if fmt.ID_RE.match(spec):
            rows = self.select(where=f"run_id = {_quote(spec)}", limit=1).rows
            row = rows[0] if rows else None
        if row is None:
            found = resolve_spec(self.repo, spec)
            if found.run_id is None:
                raise RunNotFoundError(f"no run {spec!r}; list runs with `xp show`")
            rows = self.select(where=f"run_id = {_quote(found.run_id)}", limit=1).rows
            if not rows:
                raise RunNotFoundError(f"no run {spec!r}; list runs with `xp show`")
            row = rows[0]
        if not row.commit:  # a live run, and no watcher: read its journal once
            once = LiveRuns(self.repo)
            once.refresh()
            live = once.runs.get(row.run_id)
            if live is not None:
                return FoundRun(row, None, tuple(sorted(live.series)), live)
        folder = read_folder(self.repo, row.commit, fmt.RECORD_DIR)
        if folder is None:
            raise RunNotFoundError(f"run {spec!r} has no readable record ({row.error or '?'})")
        record = RunRecord.from_files(folder.read, [], row.run_id)
        keys = tuple(
            sorted(
                p[:-4] for p in folder.files(fmt.SERIES_DIR) if p.endswith(".tsv") and "\n" not in p
            )
        )
        return FoundRun(row, record, keys)

    def run_row(self, spec: str) -> RunRow:
        """The row of the run ``spec`` names (id, prefix, name, ref), live runs included."""
        return self.find(spec).row

    def run(self, spec: str) -> dict[str, Any]:
        """The run page: row, meta, series summaries, inputs, packages, artifacts, log."""
        found = self.find(spec)
        row, record = found.row, found.record
        series = []
        names = sorted(set(found.series_keys) | {k[8:] for k in row.values if k[:8] == "metrics."})
        for name in names:
            cols = self.columns(found, name)
            if cols is not None:
                series.append({"name": name, **summary(cols, lower_is_better(name))})
        if record is not None:
            meta: dict[str, Any] = dict(record.meta)
            artifacts = record.artifacts
            inputs = record.inputs
            packages = list(record.packages)
        else:
            assert found.live is not None
            meta = _live_meta(found.live, row)
            artifacts = tuple(found.live.artifacts.values())
            inputs = tuple(found.live.inputs.values())
            packages = []
        store = art.ArtifactStore(self.repo)
        log = None
        if any(a.path == art.RUN_LOG for a in artifacts):
            log = {"url": art.url(row.run_id, art.RUN_LOG, "log")}
        elif found.live is not None and art.live_log(self.repo, row.run_id) is not None:
            log = {"url": art.url(row.run_id, "", "log")}
        return values.json_safe(  # type: ignore[no-any-return]
            {
                "run": row_doc(row),
                "meta": meta,
                "series": series,
                "inputs": [i.to_dict() for i in inputs],
                "packages": packages,
                "artifacts": [store.describe(row.run_id, a) for a in artifacts],
                "log": log,
            }
        )

    def artifact(self, spec: str, path: str) -> tuple[FileEntry, art.Opened]:
        """The artifact ``path`` of a run (an exact entry of its manifest), opened from the
        cache and verified against its sha256."""
        found = self.find(spec)
        entries = found.record.artifacts if found.record else found.live.artifacts.values()  # type: ignore[union-attr]
        for entry in entries:
            if entry.path == path:
                return entry, art.ArtifactStore(self.repo).open(entry)
        raise RunNotFoundError(f"run {found.row.run_id} has no artifact {path!r}")

    def log_path(self, spec: str) -> art.Opened | None:
        """The ``xp run`` log: the saved artifact, or the live file of a running ``xp run``."""
        found = self.find(spec)
        if found.live is not None:
            path = art.live_log(self.repo, found.row.run_id)
            if path is not None:
                return art.open_plain(path)
        if found.record is not None:
            for entry in found.record.artifacts:
                if entry.path == art.RUN_LOG:
                    return art.ArtifactStore(self.repo).open(entry)
        return None

    # -- series -----------------------------------------------------------------------------
    def columns(self, found: FoundRun, name: str) -> Columns | None:
        """Every point of metric ``name`` of a found run (a recorded series parsed once and
        kept; a live one as it is now; a metric logged once as one point); None if absent."""
        if found.live is not None:
            with self.live_lock:
                live = found.live.series.get(name)
                if live is None:
                    return None
                return Columns(*_arrays(live.steps, live.values, live.times))
        commit = found.row.commit
        if name in found.series_keys:

            def load() -> Columns | None:
                blobs = dict(read_objects(self.repo, [_blob_name(commit, name)]))
                data = blobs.get(_blob_name(commit, name))
                return None if data is None else parse_tsv(data, f"{found.row.run_id}:{name}")

            return self.series.get((commit, name), load)
        value = found.row.values.get(f"metrics.{name}", _ABSENT)
        if value is _ABSENT or not (value is None or values.is_number(value)):
            return None
        when = int((found.row.end or found.row.start or 0) * 1000)
        return of_points([(0, float("nan") if value is None else value, when)])

    def metrics(self, ids: Sequence[str]) -> dict[str, Any]:
        """Which metrics the runs have and how many points each (1: logged once)."""
        _check_runs(ids)
        names: dict[str, dict[str, int]] = {}
        for spec in ids:
            found = self.find(spec)
            counts: dict[str, int] = {}
            if found.live is not None:
                with self.live_lock:
                    for key, s in found.live.series.items():
                        counts[key] = 1 if len(s) == 1 and s.steps[0] == 0 else len(s)
            else:
                counts = self._point_counts(found.row.commit, found.series_keys)
                for key in found.row.values:
                    if key.startswith("metrics.") and key[8:] not in counts:
                        counts[key[8:]] = 1
            for key, n in counts.items():
                names.setdefault(key, {})[found.row.run_id] = n
        return {"metrics": [{"name": k, "runs": names[k]} for k in sorted(names)]}

    def _point_counts(self, commit: str, keys: Iterable[str]) -> dict[str, int]:
        """Points of each recorded series of a commit, counted once (reading its blob)."""
        wanted = {_blob_name(commit, k): k for k in keys if (commit, k) not in self._counts}
        if wanted:
            if len(self._counts) > 1_000_000:
                self._counts.clear()
            for name, data in read_objects(self.repo, list(wanted)):
                if data is not None:
                    self._counts[(commit, wanted[name])] = max(1, data.count(b"\n") - 1)
        return {k: n for k in keys if (n := self._counts.get((commit, k))) is not None}

    def series_of(
        self, ids: Sequence[str], metrics: Sequence[str], window: Window
    ) -> dict[str, Any]:
        """The series of the runs, cut and thinned for a chart; one entry per (run, metric)
        that exists, runs in the order asked, metrics sorted."""
        _check_runs(ids)
        if window.x not in ("step", "time"):
            raise InvalidValueError(f"x must be step or time, got {window.x!r}")
        if not 0 <= window.smooth < 1:
            raise InvalidValueError(f"smooth must be at least 0 and below 1, got {window.smooth}")
        out = []
        for spec in ids:
            found = self.find(spec)
            names = sorted(metrics) if metrics else self._metric_names(found)
            start = int((found.row.start or 0) * 1000)
            for name in names:
                cols = self.columns(found, name)
                if cols is None:
                    continue
                entry = {"run_id": found.row.run_id, "metric": name, "start": start}
                entry.update(cut(cols, window))
                out.append(entry)
        return {"x": window.x, "points": window.points, "series": out}

    def _metric_names(self, found: FoundRun) -> list[str]:
        keys = set(found.series_keys) | {k[8:] for k in found.row.values if k[:8] == "metrics."}
        return sorted(keys)

    # -- many runs: scatter and parallel coordinates ----------------------------------------
    def points(
        self,
        *,
        q: str = "",
        sort: Sequence[str] = (),
        ids: Sequence[str] = (),
        cols: Sequence[str],
        limit: int = 5000,
        include: Sequence[str] = (),
    ) -> dict[str, Any]:
        """Columns of many runs, column-wise; above ``limit`` runs an even sample in sort
        order (``include`` ids always in)."""
        if not 1 <= limit <= 100_000:
            raise InvalidValueError(f"limit must be 1 to 100,000, got {limit}")
        if ids:
            rows = [self.find(i).row for i in ids if fmt.ID_RE.match(i)]
            total = len(rows)
        else:
            rows = self._all(q, sort).rows
            total = len(rows)
        keys = self.select(limit=0).keys
        columns = [resolve_column(c, keys, "cols: ") for c in cols]
        sampled = len(rows) > limit
        if sampled:
            step = len(rows) / limit
            picked = [rows[int(i * step)] for i in range(limit)]
            have = {r.run_id for r in picked}
            extra = [r for r in rows if r.run_id in set(include) and r.run_id not in have]
            rows = picked + extra
        data: dict[str, list[Any]] = {}
        for name, col in zip(cols, columns, strict=True):
            data[name] = [_cell(r, col) for r in rows]
        return values.json_safe(  # type: ignore[no-any-return]
            {
                "total": total,
                "sampled": sampled,
                "run_id": [r.run_id for r in rows],
                "name": [r.name for r in rows],
                "status": [r.status for r in rows],
                "cols": data,
            }
        )

    # -- two runs: code -----------------------------------------------------------------------
    def diff(self, a: str, b: str) -> dict[str, Any]:
        """The code diff of two recorded runs (git diff of their trees, record left out)."""
        ra, rb = self.find(a), self.find(b)
        if ra.record is None or rb.record is None:
            raise InvalidValueError("a running run has no commit yet: diff it once it ends")
        same = ra.row.commit == rb.row.commit
        code, patch = (
            ([], "") if same else code_changes(self.repo, a=ra.row.commit, b=rb.row.commit)
        )
        truncated = len(patch.encode()) > MAX_PATCH
        if truncated:
            patch = patch.encode()[:MAX_PATCH].decode("utf-8", "ignore")
            patch = patch[: patch.rfind("\n") + 1]
        status = {"added": "added", "removed": "deleted", "changed": "modified"}
        return {
            "a": ra.row.run_id,
            "b": rb.row.run_id,
            "same": same,
            "truncated": truncated,
            "files": [
                {
                    "path": c.path,
                    "status": status.get(c.status, c.status),
                    "added": c.added,
                    "deleted": c.removed,
                    "binary": c.added is None,
                }
                for c in code
            ],
            "patch": patch,
        }

    # -- a branch: history ----------------------------------------------------------------------
    def history(
        self,
        *,
        branch: str | None = None,
        metric: str,
        pick: str = "best",
        q: str = "",
        limit: int = 200,
    ) -> dict[str, Any]:
        """``metric`` along the first-parent commits of ``branch`` (oldest first): per commit
        the best (or latest) of the runs whose baseline it is; commits without one have None."""
        if pick not in ("best", "latest"):
            raise InvalidValueError(f"pick must be best or latest, got {pick!r}")
        if not 1 <= limit <= 5000:
            raise InvalidValueError(f"limit must be 1 to 5,000, got {limit}")
        names = [b.name for b in history.branches(self.repo)]
        if branch is None:
            branch = self.meta()["default_branch"]
        if branch not in names:
            raise RunNotFoundError(
                f"no branch {branch!r}; the branches are {', '.join(names) or 'none yet'}"
            )
        keys = self.select(limit=0).keys
        col = resolve_column(metric, keys, "metric: ")
        if col.kind != "metrics":
            raise InvalidValueError(f"history needs a metric (metrics.<name>), got {metric!r}")
        commits = list(reversed(history.first_parent(self.repo, branch, limit)))
        if q.strip():
            self.select(where=q, limit=0)  # the user's filter alone: errors point into it
        by_commit: dict[str, list[RunRow]] = {}
        shas = [c.sha for c in commits]
        for i in range(0, len(shas), 200):
            where = f"baseline in ({', '.join(_quote(s) for s in shas[i : i + 200])})"
            if q.strip():
                where = f"({q}) and {where}"
            for row in self.select(where=where, limit=None).rows:
                by_commit.setdefault(row.baseline or "", []).append(row)
        lower = lower_is_better(col.key)
        points = []
        for c in commits:
            candidates: list[tuple[float, RunRow]] = []
            for r in by_commit.get(c.sha, []):
                v: Any = r.values.get(col.name)
                if values.is_number(v) and math.isfinite(v):
                    candidates.append((float(v), r))
            chosen = None
            if candidates:
                if pick == "latest":
                    chosen = max(candidates, key=lambda t: t[1].run_id)
                else:
                    choose = min if lower else max
                    chosen = choose(candidates, key=lambda t: t[0])
            points.append(
                {
                    "commit": c.sha,
                    "short": c.sha[:7],
                    "subject": c.subject,
                    "date": iso_time(c.time),
                    "value": chosen[0] if chosen else None,
                    "run_id": chosen[1].run_id if chosen else None,
                    "run_name": chosen[1].name if chosen else None,
                    "runs": len(candidates),
                }
            )
        return values.json_safe(  # type: ignore[no-any-return]
            {
                "branch": branch,
                "metric": col.name,
                "pick": pick,
                "direction": "min" if lower else "max",
                "points": points,
            }
        )


_ABSENT = object()


def _blob_name(commit: str, metric: str) -> str:
    return f"{commit}:{fmt.RECORD_DIR}/{fmt.SERIES_DIR}/{metric}.tsv"


def _arrays(*columns: Iterable[Any]) -> list[Any]:
    import numpy as np

    steps, vals, times = columns
    return [
        np.array(steps, dtype=np.int64),
        np.array(vals, dtype=np.float64),
        np.array(times, dtype=np.int64),
    ]


def _cell(row: RunRow, col: Column) -> Any:
    if col.kind == "attr":
        value = row_values(row)[col.key]
        if col.key in ("created", "end_time") and value is not None:
            return iso_time(value)
        return value
    return row.values.get(col.name)


def _columns_of(keys: Iterable[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {"params": [], "metrics": [], "tags": []}
    for key in keys:
        kind, _, name = key.partition(".")
        if kind in out:
            out[kind].append(name)
    return out


def _check_runs(ids: Sequence[str]) -> None:
    if not ids:
        raise InvalidValueError("runs=ID[,ID...] is required")
    if len(ids) > MAX_RUNS:
        raise InvalidValueError(f"at most {MAX_RUNS} runs per request, got {len(ids)}")


def _live_meta(live: LiveRun, row: RunRow) -> dict[str, Any]:
    h = live.header
    assert h is not None
    meta: dict[str, Any] = {
        "id": row.run_id,
        "name": row.name,
        "experiment": row.experiment,
        "status": row.status,
        "start_time": iso_time(h.start_time),
        "duration": row.duration,
        "command": list(h.command),
        "cwd": h.cwd,
        "baseline": h.baseline,
        "branch": h.branch,
        "dirty": h.dirty,
        "xp_version": h.xp_version,
    }
    meta.update(h.context)
    if h.parent:
        meta["parent"] = h.parent
    if h.message:
        meta["message"] = h.message
    if h.warnings:
        meta["warnings"] = list(h.warnings)
    return meta


def _xp_version() -> str:
    from xp import __version__

    return __version__
