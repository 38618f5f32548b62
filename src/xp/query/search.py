"""Finding runs: the rows behind ``xp show`` and the DataFrame of ``xp.search_runs``.

Both read the query index (``xp.query.index``) after bringing it in step with the refs,
and both take the same filter and sort language (``xp.query.filters``), so a filter that
works in the terminal works in a notebook.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from xp.errors import InvalidValueError, QueryError
from xp.gitstore.repo import GitRepo
from xp.query.filters import STATUSES, SortKey, parse_filter, parse_sort
from xp.query.index import RunRow, open_index
from xp.record.build import iso_time

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Selection:
    rows: list[RunRow]
    total: int  # runs that match, before the limit
    keys: list[str]  # every params./metrics./tags. column any run has
    repaired: int = 0  # rows that disagreed with their records (verify=True) and were rebuilt


def run_document(row: RunRow, columns: Sequence[str] | None = None) -> dict[str, Any]:
    """One run as ``xp show --format json`` and the UI give it: attributes, then params,
    metrics and tags (only ``columns``, like ``params.lr``, when given). Times are UTC ISO."""
    doc: dict[str, Any] = {
        "run_id": row.run_id,
        "name": row.name,
        "experiment": row.experiment,
        "status": row.status,
        "created": None if row.start is None else iso_time(row.start),
        "end_time": None if row.end is None else iso_time(row.end),
        "duration": row.duration,
        "baseline": row.baseline,
        "branch": row.branch,
        "commit": row.commit,
        "ref": row.ref,
    }
    wanted = set(columns) if columns else None
    for kind in ("params", "metrics", "tags"):
        doc[kind] = {
            k.partition(".")[2]: v
            for k, v in row.values.items()
            if k.startswith(kind + ".") and (wanted is None or k in wanted)
        }
    if row.error:
        doc["error"] = row.error
    return doc


def _statuses(status: Sequence[str]) -> list[str]:
    for s in status:
        if s not in STATUSES:
            raise QueryError(f"--status {s!r} is not one of {', '.join(STATUSES)}")
    return list(status)


def _experiments(experiment: str | Sequence[str] | None) -> list[str]:
    if not experiment:
        return []
    return [experiment] if isinstance(experiment, str) else list(experiment)


def select_runs(
    repo: GitRepo,
    *,
    where: str | None = None,
    sort: Sequence[str] | str | None = (),
    limit: int | None = 20,
    experiment: str | Sequence[str] | None = None,
    branch: str | None = None,
    status: Sequence[str] = (),
    rebuild: bool = False,
    verify: bool = False,
) -> Selection:
    """Runs matching the filters, sorted (newest first by default), at most ``limit``.

    ``verify`` reads the records of the selected runs from git and rebuilds every index row
    that disagrees with its record before answering (the index is only a cache).
    """
    if limit is not None and limit < 0:
        raise InvalidValueError(f"limit must be 0 or more, got {limit}")
    with open_index(repo, sync=not rebuild) as index:
        if rebuild:
            index.rebuild()
        keys = index.keys()

        def query() -> tuple[list[RunRow], int]:
            return index.select(
                where=parse_filter(where, keys) if where and where.strip() else None,
                experiments=_experiments(experiment),
                branch=branch,
                statuses=_statuses(status),
                sort=_sort_keys(sort, keys),
                limit=limit,
            )

        rows, total = query()
        repaired = index.verify(rows) if verify else 0
        if repaired:
            keys = index.keys()
            rows, total = query()
    return Selection(rows, total, keys, repaired)


def _sort_keys(sort: Iterable[str] | str | None, keys: list[str]) -> list[SortKey]:
    if sort is None:
        return []
    if isinstance(sort, str):
        sort = [sort]
    return [parse_sort(s, keys) for s in sort]


def search_runs(
    repo: GitRepo,
    *,
    filter_string: str | None = None,
    order_by: Sequence[str] | str | None = None,
    max_results: int | None = None,
    experiment: str | Sequence[str] | None = None,
) -> pd.DataFrame:
    """Runs as a DataFrame with MLflow's column names, newest first by default.

    Columns: run_id, experiment, status, start_time, end_time (UTC datetimes), run_name,
    commit, then ``metrics.<k>`` (float, NaN when missing), ``params.<k>`` and ``tags.<k>``
    (None when missing). ``filter_string`` is MLflow's grammar plus ``or``, ``not`` and
    ``in``; ``order_by`` is a list like ``["metrics.acc DESC"]``.
    """
    if max_results is not None and max_results < 0:
        raise InvalidValueError(f"max_results must be 0 or more, got {max_results}")
    selection = select_runs(
        repo, where=filter_string, sort=order_by, limit=max_results, experiment=experiment
    )
    return _frame(selection.rows)


def _frame(rows: list[RunRow]) -> pd.DataFrame:
    import pandas as pd

    frame = pd.DataFrame(
        {
            "run_id": [r.run_id for r in rows],
            "experiment": [r.experiment for r in rows],
            "status": [r.status for r in rows],
            "start_time": [r.start for r in rows],
            "end_time": [r.end for r in rows],
            "run_name": [r.name for r in rows],
            "commit": [r.commit for r in rows],
        }
    )
    for col in ("start_time", "end_time"):
        millis = (frame[col].astype("float64") * 1000).round()
        frame[col] = pd.to_datetime(millis, unit="ms", utc=True)
    data = [r.values for r in rows]
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
                with contextlib.suppress(TypeError, ValueError, OverflowError):
                    values[key] = column.astype("float64")
        elif not pd.api.types.is_numeric_dtype(column) and column.isna().any():
            values[key] = column.astype(object).where(column.notna(), None)
    return cast("pd.DataFrame", pd.concat([frame, values], axis=1))
