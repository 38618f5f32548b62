"""Finding runs: the rows behind ``xp show``, the UI's table and ``xp.search_runs``.

All read the query index (``xp.query.index``) after bringing it in step with the refs,
and all take the same filter and sort language (``xp.query.filters``), so a filter that
works in the terminal works in a notebook and in the browser.

Runs still logging have no commit, so the index does not hold them: they come from their
journals (``xp.query.live``), few at a time, and are filtered and sorted here in Python by
the same rules (``filters.evaluate``, ``sort_rows``), then merged into the index's answer.
MLflow and W&B list running runs with the rest; so does every listing here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from xp.errors import InvalidValueError, QueryError
from xp.gitstore.repo import GitRepo
from xp.query.filters import (
    STATUSES,
    Cmp,
    Column,
    Node,
    SortKey,
    evaluate,
    parse_filter,
    parse_sort,
)
from xp.query.index import Index, RunRow, open_index
from xp.query.live import live_rows
from xp.record import values as record_values
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
        "commit": row.commit or None,  # a running run has no commit yet
        "ref": row.ref or None,
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
    offset: int = 0,
    experiment: str | Sequence[str] | None = None,
    branch: str | None = None,
    status: Sequence[str] = (),
    rebuild: bool = False,
    verify: bool = False,
    live: bool = True,
    running: Sequence[RunRow] | None = None,
) -> Selection:
    """Runs matching the filters, sorted (newest first by default), at most ``limit`` after
    the first ``offset``; running runs included unless ``live`` is False (``running``: their
    rows read already, by a reader that follows the journals; else they are read now).

    ``verify`` reads the records of the selected runs from git and rebuilds every index row
    that disagrees with its record before answering (the index is only a cache).
    """
    if limit is not None and limit < 0:
        raise InvalidValueError(f"limit must be 0 or more, got {limit}")
    if offset < 0:
        raise InvalidValueError(f"offset must be 0 or more, got {offset}")
    running = ([] if not live else live_rows(repo)) if running is None else list(running)
    with open_index(repo, sync=not rebuild) as index:
        if rebuild:
            index.rebuild()
        keys = index.keys()
        if running:
            keys = sorted(set(keys).union(*(r.values for r in running)))
        node = parse_filter(where, keys) if where and where.strip() else None
        experiments, statuses = _experiments(experiment), _statuses(status)
        sort_keys = _sort_keys(sort, keys)
        running = [
            r
            for r in _unindexed(index, running)
            if _matches(r, node, experiments=experiments, branch=branch, statuses=statuses)
        ]
        # With live rows (few): the index's first offset + limit rows, merged with them.
        head = None if limit is None else offset + limit

        def query() -> tuple[list[RunRow], int]:
            return index.select(
                where=node,
                experiments=experiments,
                branch=branch,
                statuses=statuses,
                sort=sort_keys,
                limit=head if running else limit,
                offset=0 if running else offset,
            )

        rows, total = query()
        repaired = index.verify(rows) if verify else 0
        if repaired:  # rebuilt rows may hold other columns and match otherwise: ask again
            keys = sorted(set(index.keys()).union(*(r.values for r in running)))
            node = parse_filter(where, keys) if where and where.strip() else None
            sort_keys = _sort_keys(sort, keys)
            rows, total = query()
    if not running:
        return Selection(rows, total, keys, repaired)
    merged = sort_rows(rows + running, sort_keys)
    end = None if limit is None else offset + limit
    return Selection(merged[offset:end], total + len(running), keys, repaired)


def _unindexed(index: Index, running: list[RunRow]) -> list[RunRow]:
    """The live rows whose run is not in the index: a run is briefly both, between its
    commit and the removal of its journal, and then the commit is the truth."""
    if not running:
        return running
    ids = tuple(r.run_id for r in running)
    have, _ = index.select(where=Cmp(Column("attr", "run_id"), "in", ids), limit=None)
    indexed = {r.run_id for r in have}
    return [r for r in running if r.run_id not in indexed]


def row_values(row: RunRow) -> dict[str, Any]:
    """One row as ``filters.evaluate`` reads it: its values plus its attributes."""
    out = dict(row.values)
    out.update(
        run_id=row.run_id,
        name=row.name,
        status=row.status,
        experiment=row.experiment,
        created=row.start,
        end_time=row.end,
        duration=row.duration,
        baseline=row.baseline,
        branch=row.branch,
        user=row.user,
        commit=row.commit or None,
    )
    return out


def _matches(
    row: RunRow,
    where: Node | None,
    *,
    experiments: list[str],
    branch: str | None,
    statuses: list[str],
) -> bool:
    if experiments and row.experiment not in experiments:
        return False
    if branch and row.branch != branch:
        return False
    if statuses and row.status not in statuses:
        return False
    return where is None or evaluate(where, row_values(row))


_ABSENT = object()


def sort_rows(rows: list[RunRow], keys: Sequence[SortKey]) -> list[RunRow]:
    """``rows`` in the index's order for ``keys`` (``xp.query.index.compile.sort_sql``):
    missing values and NaN last in both directions, numbers before other values, ties
    newest first."""
    out = sorted(rows, key=lambda r: r.run_id, reverse=True)
    for key in reversed(keys):  # stable sorts, least significant key first
        out = _sorted_by(out, key)
    return out


def _sorted_by(rows: list[RunRow], key: SortKey) -> list[RunRow]:
    col, desc = key.column, key.descending
    numbers: list[tuple[Any, RunRow]] = []
    others: list[tuple[Any, RunRow]] = []
    absent: list[RunRow] = []
    null: list[RunRow] = []  # NaN metrics, null params: after the absent ones, as in SQLite
    for row in rows:
        if col.kind == "attr":
            value = row_values(row)[col.key]
        else:
            value = row.values.get(col.name, _ABSENT)
        if value is _ABSENT:
            absent.append(row)
        elif value is None:
            (absent if col.kind == "attr" else null).append(row)
        elif col.kind == "attr" or record_values.is_number(value):
            numbers.append((value, row))
        elif isinstance(value, bool):  # SQLite reads JSON true/false as 1/0: before text
            others.append(((0, int(value), ""), row))
        else:
            text = value if isinstance(value, str) else _json_text(value)
            others.append(((1, 0, text), row))
    numbers.sort(key=lambda t: t[0], reverse=desc)
    others.sort(key=lambda t: t[0], reverse=desc)
    return [r for _, r in numbers] + [r for _, r in others] + absent + null


def _json_text(value: Any) -> str:
    import json

    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


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
            "commit": [r.commit or None for r in rows],
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
