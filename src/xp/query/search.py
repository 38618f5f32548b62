"""Finding runs: the rows behind ``xp show`` and the DataFrame of ``xp.search_runs``.

Both read the query index (``xp.query.index``) after bringing it in step with the refs, and both
take the same filter and sort language (``xp.query``), so a filter that works in the
terminal works in a notebook.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from xp.errors import InvalidValueError, QueryError
from xp.gitstore.repo import GitRepo, find_repo
from xp.query.filters import SortKey, parse_filter, parse_sort, sort_sql, to_sql
from xp.query.index import Index, open_index

if TYPE_CHECKING:
    import pandas as pd

    from xp.query.resolve import RunView

_COLUMNS = (
    "SELECT c.run_id, c.ref, c.commit_sha, r.name, r.experiment, r.status, r.start, r.end,"
    " r.duration, r.baseline, r.branch, r.user, r.data, r.error"
)
_FROM = " FROM current c JOIN runs r ON r.commit_sha = c.commit_sha"


@dataclass(frozen=True)
class RunRow:
    """One run as listed: attributes plus ``values`` keyed params.x / metrics.y / tags.z."""

    run_id: str
    ref: str
    commit: str
    name: str
    experiment: str
    status: str
    start: float | None
    end: float | None
    duration: float | None
    baseline: str | None
    branch: str | None
    user: str | None
    values: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


@dataclass(frozen=True)
class Selection:
    rows: list[RunRow]
    total: int  # runs that match, before the limit
    keys: list[str]  # every params./metrics./tags. column any run has


def _where(
    index: Index,
    where: str | None,
    experiment: str | Sequence[str] | None,
    branch: str | None,
    status: Sequence[str],
    args: list[Any],
    keys: list[str],
) -> str:
    clauses: list[str] = []
    if where is not None and where.strip():
        clauses.append(to_sql(parse_filter(where, keys), args))
    if experiment:
        names = [experiment] if isinstance(experiment, str) else list(experiment)
        clauses.append(f"r.experiment IN ({','.join('?' * len(names))})")
        args.extend(names)
    if branch:
        clauses.append("r.branch = ?")
        args.append(branch)
    if status:
        from xp.query.filters import STATUSES

        for s in status:
            if s not in STATUSES:
                raise QueryError(f"--status {s!r} is not one of {', '.join(STATUSES)}")
        clauses.append(f"r.status IN ({','.join('?' * len(status))})")
        args.extend(status)
    return " WHERE " + " AND ".join(clauses) if clauses else ""


def _row(t: tuple[Any, ...]) -> RunRow:
    run_id, ref, commit, name, experiment, status, start, end, duration, baseline = t[:10]
    return RunRow(
        run_id,
        ref,
        commit,
        name,
        experiment,
        status,
        start,
        end,
        duration,
        baseline,
        branch=t[10],
        user=t[11],
        values=json.loads(t[12]),
        error=t[13],
    )


def select_runs(
    repo: GitRepo,
    where: str | None = None,
    sort: Sequence[str] = (),
    limit: int | None = 20,
    experiment: str | Sequence[str] | None = None,
    branch: str | None = None,
    status: Sequence[str] = (),
    rebuild: bool = False,
) -> Selection:
    """Runs matching the filters, sorted (newest first by default), at most ``limit``."""
    if limit is not None and limit < 0:
        raise InvalidValueError(f"limit must be 0 or more, got {limit}")
    with open_index(repo, sync=not rebuild) as index:
        if rebuild:
            index.rebuild()
        keys = index.keys()
        args: list[Any] = []
        where_sql = _where(index, where, experiment, branch, status, args, keys)
        where_args = list(args)
        order = sort_sql(_sort_keys(sort, keys), args)
        # With a filter, count the matches in the same pass (a window over the filtered rows)
        # instead of evaluating the filter twice; without one the count is the index's.
        window = ", count(*) OVER ()" if where_sql else ""
        sql = f"{_COLUMNS}{window}{_FROM}{where_sql} ORDER BY {order}"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        fetched = index.conn.execute(sql, args).fetchall()
        rows = [_row(t) for t in fetched]
        if where_sql:
            total = int(fetched[0][-1]) if fetched else 0
            if not fetched and limit == 0:
                total = int(
                    index.conn.execute(
                        "SELECT count(*)" + _FROM + where_sql,
                        where_args,
                    ).fetchone()[0]
                )
        else:
            total = index.count()
    return Selection(rows, total, keys)


def _sort_keys(sort: Iterable[str] | str | None, keys: list[str]) -> list[SortKey]:
    if sort is None:
        return []
    if isinstance(sort, str):
        sort = [sort]
    return [parse_sort(s, keys) for s in sort]


def search_runs(
    filter_string: str | None = None,
    order_by: Sequence[str] | str | None = None,
    max_results: int | None = None,
    experiment: str | Sequence[str] | None = None,
    path: str | os.PathLike[str] | None = None,
) -> pd.DataFrame:
    """Runs as a DataFrame with MLflow's column names, newest first by default.

    Columns: run_id, experiment, status, start_time, end_time (UTC datetimes), run_name,
    commit, then ``metrics.<k>`` (float, NaN when missing), ``params.<k>`` and ``tags.<k>``
    (None when missing). ``filter_string`` is MLflow's grammar plus ``or``, ``not`` and
    ``in``; ``order_by`` is a list like ``["metrics.acc DESC"]``.
    """

    repo = find_repo(path)
    if max_results is not None and max_results < 0:
        raise InvalidValueError(f"max_results must be 0 or more, got {max_results}")
    with open_index(repo) as index:
        keys = index.keys()
        args: list[Any] = []
        where_sql = _where(index, filter_string, experiment, None, (), args, keys)
        order = sort_sql(_sort_keys(order_by, keys), args)
        sql = (
            "SELECT c.run_id, r.experiment, r.status, r.start, r.end, r.name, c.commit_sha,"
            " r.data FROM current c JOIN runs r ON r.commit_sha = c.commit_sha"
            f"{where_sql} ORDER BY {order}"
        )
        if max_results is not None:
            sql += " LIMIT ?"
            args.append(max_results)
        fetched = index.conn.execute(sql, args).fetchall()
    return _frame(fetched)


def _frame(fetched: list[tuple[Any, ...]]) -> pd.DataFrame:
    import pandas as pd

    base = ["run_id", "experiment", "status", "start_time", "end_time", "run_name", "commit"]
    frame = pd.DataFrame({name: [t[i] for t in fetched] for i, name in enumerate(base)})
    for col in ("start_time", "end_time"):
        millis = (frame[col].astype("float64") * 1000).round()
        frame[col] = pd.to_datetime(millis, unit="ms", utc=True)
    data = [json.loads(t[7]) for t in fetched]
    seen: dict[str, None] = {}
    for d in data:
        seen.update(dict.fromkeys(d))
    if not seen:
        return cast("pd.DataFrame", frame)
    rank = {"metrics.": 0, "params.": 1}
    keys = sorted(seen, key=lambda k: (rank.get(k[:8], rank.get(k[:7], 2)), k))
    values = pd.DataFrame.from_records(data, columns=keys)
    for key in keys:
        column = values[key]
        if key.startswith("metrics."):
            if column.dtype == object:
                # None is NaN, like MLflow; a hand-edited non-numeric metric keeps its text
                with contextlib.suppress(TypeError, ValueError):
                    values[key] = column.astype("float64")
        elif not pd.api.types.is_numeric_dtype(column) and column.isna().any():
            values[key] = column.astype(object).where(column.notna(), None)
    return cast("pd.DataFrame", pd.concat([frame, values], axis=1))


def get_series(
    run: str | RunView, metric: str, path: str | os.PathLike[str] | None = None
) -> pd.DataFrame:
    """One metric's steps as a DataFrame: step, value, timestamp (UTC datetime)."""
    from xp.query.resolve import get_run

    view = get_run(run, path) if isinstance(run, str) else run
    return view.series(metric)
