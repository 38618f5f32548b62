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
import functools
import json
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
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
from xp.query.index import (
    AttributeFacts,
    Batch,
    Index,
    Query,
    RunRow,
    Table,
    ValueFacts,
    arrays,
    gc_paused,
    open_index,
)
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
    skipped: list[str] = field(default_factory=list)  # fetched run summaries ignored (why)


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
        keys, known = index.keys(), index.known_keys()
        if running:
            keys = sorted(set(keys).union(*(r.values for r in running)))
            known = sorted(set(known).union(keys))
        node = parse_filter(where, known) if where and where.strip() else None
        experiments, statuses = _experiments(experiment), _statuses(status)
        sort_keys = _sort_keys(sort, known)
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
            known = sorted(set(index.known_keys()).union(keys))
            node = parse_filter(where, known) if where and where.strip() else None
            sort_keys = _sort_keys(sort, known)
            rows, total = query()
        skipped = list(index.skipped)
    if not running:
        return Selection(rows, total, keys, repaired, skipped)
    merged = sort_rows(rows + running, sort_keys)
    end = None if limit is None else offset + limit
    return Selection(merged[offset:end], total + len(running), keys, repaired, skipped)


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


_INF_CELLS = {
    record_values.metric_cell(math.inf): math.inf,
    record_values.metric_cell(-math.inf): -math.inf,
}


def _cell(kind: str, value: Any) -> tuple[Any, str | None]:
    """(number, text) of a shown value as the index's ``vals`` holds it (``rows.stored``):
    what a sort compares. (None, None) sorts with the missing values."""
    if value is None:  # a NaN metric; a null param is the text "null"
        return (None, "null") if kind == "params" else (None, None)
    if isinstance(value, str):
        if kind == "metrics" and value in _INF_CELLS:
            return _INF_CELLS[value], None
        if kind == "params" and value in ("inf", "-inf"):  # an infinite float param's text
            return float(value), value
        return None, value
    if record_values.is_number(value):
        num = value if isinstance(value, float) or -(2**63) <= value < 2**63 else float(value)
        if kind == "metrics":
            return (None, None) if num != num else (num, None)
        return num, repr(value)
    return None, record_values.text(value)  # bools, lists


def _sorted_by(rows: list[RunRow], key: SortKey) -> list[RunRow]:
    col, desc = key.column, key.descending
    if col.kind == "attr":
        numbers: list[tuple[Any, RunRow]] = []
        absent: list[RunRow] = []
        for row in rows:
            value = row_values(row)[col.key]
            (absent.append(row) if value is None else numbers.append((value, row)))
        numbers.sort(key=lambda t: t[0], reverse=desc)
        return [r for _, r in numbers] + absent
    nums: list[tuple[Any, RunRow]] = []
    texts: list[tuple[str, RunRow]] = []
    missing: list[RunRow] = []  # absent, NaN metrics: after the rest, as in the SQL
    for row in rows:
        value = row.values.get(col.name, _ABSENT)
        num, text = (None, None) if value is _ABSENT else _cell(col.kind, value)
        if num is not None:
            nums.append(((num, text is not None, text or ""), row))  # NULL text first
        elif text is not None:
            texts.append((text, row))
        else:
            missing.append(row)
    nums.sort(key=lambda t: t[0], reverse=desc)
    texts.sort(key=lambda t: t[0], reverse=desc)
    return [r for _, r in nums] + [r for _, r in texts] + missing


def _json_text(value: Any) -> str:
    import json

    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class RunStream:
    """The runs a query selects, read from the index while they are printed: ``rows()``
    yields them one at a time (each call runs the query again), and the facts methods
    answer from SQL aggregates what a table layout needs to know about all of them."""

    def __init__(
        self, index: Index, query: Query, keys: list[str], running: list[RunRow] | None = None
    ) -> None:
        self.index = index
        self.query = query
        self.keys = keys  # every params./metrics./tags. column any run has
        # runs still logging that the query selects: not in the index, so not streamed;
        # a caller lists them with ``select_runs(..., running=...)`` (they are few)
        self.running = running or []
        self.total = index.matching(query)  # runs that match, before the limit
        self.count = self.total if query.limit is None else min(self.total, query.limit)

    def rows(self) -> Iterator[RunRow]:
        return self.index.stream(self.query)

    def batches(self, attributes: Sequence[str], keys: Sequence[str] | None) -> Iterator[Batch]:
        """The rows column by column, only ``attributes`` (``RunRow`` fields) and value
        ``keys``, some thousand runs at a time: what a long listing prints from."""
        return self.index.batches(self.query, attributes, keys)

    def value_facts(self, keys: Sequence[str], number_format: str | None) -> dict[str, ValueFacts]:
        return self.index.value_facts(self.query, keys, number_format)

    def value_texts(self, key: str, unusual: bool = False) -> Iterator[str]:
        return self.index.value_texts(self.query, key, unusual)

    def value_numbers(self, key: str) -> Iterator[float]:
        return self.index.value_numbers(self.query, key)

    def attribute_facts(self) -> AttributeFacts:
        return self.index.attribute_facts(self.query)

    def unusual_attributes(self, attributes: Sequence[str]) -> set[str]:
        return self.index.unusual_attributes(self.query, attributes)

    def attribute_texts(self, attribute: str) -> Iterator[str]:
        return self.index.attribute_texts(self.query, attribute)


@contextlib.contextmanager
def stream_runs(
    repo: GitRepo,
    *,
    where: str | None = None,
    sort: Sequence[str] | str | None = (),
    limit: int | None = None,
    experiment: str | Sequence[str] | None = None,
    branch: str | None = None,
    status: Sequence[str] = (),
    rebuild: bool = False,
    live: bool = True,
) -> Iterator[RunStream]:
    """``select_runs`` for any number of runs: memory holds one row at a time (the runs
    still logging, few, are in ``running``)."""
    if limit is not None and limit < 0:
        raise InvalidValueError(f"limit must be 0 or more, got {limit}")
    with open_index(repo, sync=not rebuild) as index:
        if rebuild:
            index.rebuild()
        keys, known = index.keys(), index.known_keys()
        running = live_rows(repo) if live else []
        if running:
            known = sorted(set(known).union(*(r.values for r in running)))
        query = Query(
            where=parse_filter(where, known) if where and where.strip() else None,
            experiments=_experiments(experiment),
            branch=branch,
            statuses=_statuses(status),
            sort=_sort_keys(sort, known),
            limit=limit,
        )
        running = [
            r
            for r in _unindexed(index, running)
            if _matches(
                r,
                query.where,
                experiments=list(query.experiments),
                branch=branch,
                statuses=list(query.statuses),
            )
        ]
        yield RunStream(index, query, keys, running)


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
    with stream_runs(
        repo, where=filter_string, sort=order_by, limit=max_results, experiment=experiment
    ) as runs:
        if not runs.running:  # the index alone: read column by column
            table = runs.index.table(runs.query, parse=False)
            with gc_paused():
                return _frame(table)
    selection = select_runs(
        repo,
        where=filter_string,
        sort=order_by,
        limit=max_results,
        experiment=experiment,
        running=runs.running,
    )
    return _frame(_table_of(selection.rows))


def _table_of(rows: list[RunRow]) -> Table:
    """``rows`` (some of them running runs, without a commit) as the index's ``Table``."""
    out = Table()
    sids: dict[tuple[str, ...], int] = {}
    for r in rows:
        keys = tuple(r.values)
        sid = sids.setdefault(keys, len(sids))
        out.keys[sid] = keys
        out.run_id.append(r.run_id)
        out.experiment.append(r.experiment)
        out.status.append(r.status)
        out.start.append(r.start)
        out.end.append(r.end)
        out.name.append(r.name)
        out.commit.append(r.commit or None)  # type: ignore[arg-type]
        out.sid.append(sid)
        out.values.append(list(r.values.values()))
    return out


def _frame(table: Table) -> pd.DataFrame:
    """The DataFrame of ``table``: built column by column, one block per key set, so 100,000
    runs cost a few vectorised calls rather than a dict per run."""
    import pandas as pd

    fast, exact = _typed_values(table)
    if fast is not None:  # one key set of typed columns: every column built at once
        typed = _attribute_columns(table)
        typed.update(fast)
        return cast("pd.DataFrame", pd.DataFrame(typed, copy=False))
    return _general_frame(table, exact)


def _general_frame(table: Table, exact: bool) -> pd.DataFrame:
    """``_frame`` of runs of many key sets, or of columns of mixed types: pandas infers each
    column's type. ``exact``: the value arrays were parsed by ``json``; else by orjson, whose
    answer is kept when no float reaches 2**63 (see ``_typed_values``)."""
    import pandas as pd

    frame = pd.DataFrame(
        {
            "run_id": table.run_id,
            "experiment": table.experiment,
            "status": table.status,
            "start_time": pd.array(table.start, dtype="float64"),
            "end_time": pd.array(table.end, dtype="float64"),
            "run_name": table.name,
            "commit": table.commit,
        }
    )
    for col in ("start_time", "end_time"):
        millis = (frame[col].astype("float64") * 1000).round()
        frame[col] = pd.to_datetime(millis, unit="ms", utc=True)
    groups: dict[int, list[int]] = {}
    for i, sid in enumerate(table.sid):
        groups.setdefault(sid, []).append(i)
    parts = []
    for sid, rows in groups.items():
        columns = list(table.keys[sid])
        if not columns:
            continue
        if len(rows) == len(table.sid):
            parts.append(pd.DataFrame(table.values, columns=columns))
        else:
            data = [table.values[i] for i in rows]
            parts.append(pd.DataFrame(data, columns=columns, index=rows))
    if not parts:
        return cast("pd.DataFrame", frame)
    values = parts[0] if len(parts) == 1 else pd.concat(parts, sort=False)
    values = values.reindex(index=range(len(frame)))
    if not exact and _wide_columns(values):
        table.values = json.loads(table.text)
        return _general_frame(table, exact=True)
    rank = {"metrics.": 0, "params.": 1}
    keys = sorted(values.columns, key=lambda k: (rank.get(k[:8], rank.get(k[:7], 2)), k))
    values = values[keys]
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


def _attribute_columns(table: Table) -> dict[str, Any]:
    """The attribute columns of ``_frame`` as typed arrays: the dtypes pandas infers from
    the lists (texts; times as UTC datetimes, rounded to the millisecond)."""
    import numpy as np
    import pandas as pd

    data: dict[str, Any] = {}
    columns: tuple[tuple[str, Sequence[Any]], ...] = (
        ("run_id", table.run_id),
        ("experiment", table.experiment),
        ("status", table.status),
        ("start_time", table.start),
        ("end_time", table.end),
        ("run_name", table.name),
        ("commit", table.commit),
    )
    for name, column in columns:
        if name.endswith("_time"):
            millis = np.round(np.array(column, dtype="float64") * 1000)
            data[name] = pd.to_datetime(millis, unit="ms", utc=True)
        elif _arrow_texts() and set(map(type, column)) == {str}:
            data[name] = _texts(column)
        else:
            data[name] = column  # pandas infers it, as ``_frame``'s general path does
    return data


@functools.cache
def _arrow_texts() -> bool:
    """Whether pandas keeps a list of texts as its pyarrow-backed ``str`` array (pandas 3
    with pyarrow installed): then such a column is built by pyarrow in one call."""
    import pandas as pd

    dtype = pd.Series(["a"]).dtype
    return isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow" and str(dtype) == "str"


def _texts(column: Sequence[str]) -> Any:
    """``pd.array(column, dtype="str")``: by pyarrow in one call where that is the storage
    (half the time of pandas' check of each element)."""
    import pandas as pd

    if _arrow_texts():
        import pyarrow as pa

        with contextlib.suppress(ValueError):  # e.g. a lone surrogate: pandas says why
            return pd.array(pa.array(column, type=pa.large_string()), dtype="str")
    return pd.array(column, dtype="str")


def _typed_values(table: Table) -> tuple[dict[str, Any] | None, bool]:
    """``_uniform_values`` of ``table``, its value arrays parsed first when they are still
    one JSON text: by orjson (``index.arrays``; 2.5x faster on arrays of numbers), whose
    answer is kept only where it is the same as ``json``'s: it reads an integer beyond 64
    bits as a float, so a float column reaching 2**63 (or any column that is not typed) is
    parsed again by ``json``, whose values ``_frame``'s general path uses. Also whether
    ``table.values`` are ``json``'s (else the general path checks orjson's)."""
    if not table.text or table.values:
        return _uniform_values(table), True
    if arrays.fast():
        table.values = arrays.loads(table.text)
        fast = _uniform_values(table)
        if fast is None:
            return None, False
        if all(_below_2_63(v) for v in fast.values()):
            return fast, True
    table.values = json.loads(table.text)
    return _uniform_values(table), True


def _wide_columns(values: pd.DataFrame) -> bool:
    """Whether some float in ``values`` reaches 2**63 in magnitude, where orjson's parse may
    differ from ``json``'s: a float column by ``_below_2_63``, others value by value
    (``arrays.wide_floats``; most are texts, checked by their types)."""
    import numpy as np

    for key in values.columns:
        column = values[key]
        if column.dtype == np.float64:
            if not _below_2_63(column.to_numpy()):
                return True
        elif column.dtype == object and arrays.wide_floats([column.tolist()]):
            return True
    return False


def _below_2_63(column: Any) -> bool:
    """No float of the column reaches 2**63 in magnitude (true of every other column); a
    missing value (NaN) is none."""
    import numpy as np

    if not isinstance(column, np.ndarray) or column.dtype != np.float64:
        return True
    return not bool((np.abs(column) >= 2.0**63).any())


def _uniform_values(table: Table) -> dict[str, Any] | None:
    """The value columns of ``_frame`` when every run has one key set and each column one
    type (float, int or str): typed arrays in ``_frame``'s column order, the dtypes it
    infers (float64, int64, str); None otherwise."""
    import numpy as np

    if not table.sid or table.sid.count(table.sid[0]) != len(table.sid):
        return None
    keys = table.keys[table.sid[0]]
    if not keys or set(map(len, table.values)) != {len(keys)}:
        return None
    rank = {"metrics.": 0, "params.": 1}
    order = sorted(
        range(len(keys)), key=lambda i: (rank.get(keys[i][:8], rank.get(keys[i][:7], 2)), keys[i])
    )
    columns = list(zip(*table.values, strict=True))
    n = len(table.values)
    data: dict[str, Any] = {}
    for i in order:
        column, kinds = columns[i], set(map(type, columns[i]))
        if kinds == {float}:
            data[keys[i]] = np.fromiter(column, dtype="float64", count=n)
        elif kinds == {int}:
            try:  # beyond 64 bits: pandas makes an object column
                data[keys[i]] = np.fromiter(column, dtype="int64", count=n)
            except OverflowError:
                return None
        elif kinds == {str} and not keys[i].startswith("metrics."):
            data[keys[i]] = _texts(column)
        else:
            return None
    return data
