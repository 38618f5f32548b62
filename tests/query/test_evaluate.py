"""``filters.evaluate`` and ``search.sort_rows`` against the reference: the index's SQL.

Live runs are filtered and sorted in Python; indexed runs in SQLite. On one corpus of runs
with awkward values (NaN, infinities, huge ints, params that read as numbers,
lists, bools, nulls, missing keys) every generated filter must select the same runs both ways
and every generated sort must give the same order.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import xp
from xp.errors import QueryError
from xp.gitstore.repo import find_repo
from xp.query.filters import evaluate, parse_filter, parse_sort
from xp.query.search import row_values, select_runs, sort_rows

PARAMS: list[dict[str, Any]] = [
    {"lr": 0.1, "model": "cnn", "flag": True, "layers": [1, 2]},
    {"lr": 0.01, "model": "mlp", "flag": False, "opt": None},
    {"lr": "0.001", "model": "CNN-big", "opt": "adam"},
    {"lr": 10**30, "model": "c_n", "flag": True},
    {"lr": math.inf, "model": "", "opt": "it's"},
    {"lr": 3, "model": "cnn", "opt": "Adam"},
    {"model": "naïve ünï", "layers": [3]},
    {"lr": -1, "model": "%", "flag": False},
]
METRICS: list[dict[str, Any]] = [
    {"acc": 0.9, "loss": 0.5},
    {"acc": 0.7, "loss": math.nan},
    {"acc": math.inf, "loss": 1e308},
    {"loss": -math.inf, "acc": 3},
    {"acc": 0.9, "loss": 0.0},
    {"acc": -0.5},
    {},
    {"acc": 0.1, "loss": 2},
]
TAGS: list[dict[str, str]] = [
    {"team": "vision"},
    {"team": "nlp", "stage": "5"},
    {},
    {"team": "Vision", "stage": "10"},
    {"stage": "x_y"},
    {"team": "vision"},
    {"team": ""},
    {"stage": "5"},
]

COLUMNS = [
    *("params.lr", "params.model", "params.flag", "params.opt", "params.layers"),
    *("metrics.acc", "metrics.loss", "tags.team", "tags.stage"),
    *("name", "status", "experiment", "duration", "created", "branch", "user", "run_id"),
]
NUMBERS = [0, 1, 3, -1, 0.1, 0.5, 0.9, 0.001, 10**30, 1e308, math.inf, -math.inf, math.nan]
TEXTS = ["cnn", "CNN-big", "0.1", "0.001", "5", "true", "null", "", "it's", "vision", "r-3"]
PATTERNS = ["%", "c%", "%N%", "c_n", "_", "%.%", "V%", "%ï%"]


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return _quote(value)
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return repr(value)


literals = st.sampled_from(NUMBERS) | st.sampled_from(TEXTS) | st.booleans()
columns = st.sampled_from(COLUMNS)


@st.composite
def comparisons(draw: st.DrawFn) -> str:
    col = draw(columns)
    kind = draw(st.sampled_from(["op", "op", "op", "in", "like", "null"]))
    if kind == "op":
        op = draw(st.sampled_from(["=", "!=", "<", "<=", ">", ">="]))
        return f"{col} {op} {_literal(draw(literals))}"
    if kind == "in":
        items = draw(st.lists(literals, min_size=1, max_size=3))
        neg = draw(st.sampled_from(["", "not "]))
        return f"{col} {neg}in ({', '.join(_literal(v) for v in items)})"
    if kind == "like":
        op = draw(st.sampled_from(["like", "ilike", "not like", "not ilike"]))
        return f"{col} {op} {_quote(draw(st.sampled_from(PATTERNS)))}"
    return f"{col} is {draw(st.sampled_from(['', 'not ']))}null"


filters = st.recursive(
    comparisons(),
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from([" and ", " or "]), inner).map(
            lambda t: f"({t[0]}{t[1]}{t[2]})"
        ),
        inner.map(lambda f: f"not {f}"),
    ),
    max_leaves=4,
)


def _corpus(root: Path) -> None:
    for i, (params, metrics, tags) in enumerate(zip(PARAMS, METRICS, TAGS, strict=True)):
        with xp.start_run(name=f"r-{i}", experiment="e" if i % 2 else None, params=params):
            xp.log_metrics(metrics)
            xp.set_tags(tags)


def test_python_filters_and_sorts_agree_with_sql(repo: Path) -> None:
    _corpus(repo)
    git_repo = find_repo()
    everything = select_runs(git_repo, limit=None, live=False)
    rows, keys = everything.rows, everything.keys
    assert len(rows) == 8

    @settings(
        max_examples=400, deadline=None, suppress_health_check=list(HealthCheck), database=None
    )
    @given(where=filters)
    def same_selection(where: str) -> None:
        try:
            node = parse_filter(where, keys)
        except QueryError:
            return  # refused before any row is looked at, in both worlds
        sql = [r.run_id for r in select_runs(git_repo, where=where, limit=None, live=False).rows]
        python = [r.run_id for r in rows if evaluate(node, row_values(r))]
        assert python == sql, where

    @settings(
        max_examples=100, deadline=None, suppress_health_check=list(HealthCheck), database=None
    )
    @given(
        sort=st.lists(
            st.tuples(columns, st.booleans()).map(lambda t: f"{t[0]}{' desc' if t[1] else ''}"),
            min_size=1,
            max_size=3,
        )
    )
    def same_order(sort: list[str]) -> None:
        sql = [r.run_id for r in select_runs(git_repo, sort=sort, limit=None, live=False).rows]
        keys_ = [parse_sort(s, keys) for s in sort]
        shuffled = list(reversed(rows))
        assert [r.run_id for r in sort_rows(shuffled, keys_)] == sql, sort

    same_selection()
    same_order()
