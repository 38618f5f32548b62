"""Filters and sorts compiled to SQL give the rows an independent Python reference gives.

The oracle below is written from docs/runs.md alone, not from the compiler: a missing value
never matches (``!=`` included), NaN equals only ``nan``, params compare as numbers with
number literals (``=`` also as text) and as text otherwise, tags and text attributes as
text, ``like`` with SQL's ``%`` and ``_``; sorts put missing and NaN last, numbers before
text, ties newest first. Hypothesis writes the runs (params, metrics and tags of mixed types,
NaN, infinities, huge integers, missing values) and the filter expressions.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import git, scratch_project
from xp import format as fmt
from xp.errors import QueryError
from xp.gitstore.repo import find_repo
from xp.query.filters import BoolOp, Cmp, Node, parse_filter, parse_sort
from xp.query.search import select_runs
from xp.record.model import RunRecord
from xp.record.values import text
from xp.tracking.record_commit import commit_record

INT64 = 2**63

# -- the runs --------------------------------------------------------------------------------
texts = st.sampled_from(
    ["adam", "Adam", "sgd", "0.1", "1e-05", "nan", "inf", "true", "null", "", "a_b", "a%b", "é"]
)
finite = st.floats(allow_nan=False, allow_infinity=False, width=32) | st.sampled_from(
    [0.0, -0.0, 0.1, 1e-05, 1e300]
)
floats = finite | st.sampled_from([math.nan, math.inf, -math.inf])
ints = st.integers(-5, 5) | st.sampled_from([10**30, -(10**20), 2**63 - 1])
param_values = floats | ints | texts | st.booleans() | st.none() | st.lists(ints, max_size=2)
metric_values = floats | ints | texts  # a text metric: a record edited by hand
run_values = st.fixed_dictionaries(
    {
        "params": st.dictionaries(st.sampled_from(["a", "b", "c.d"]), param_values),
        "metrics": st.dictionaries(st.sampled_from(["m", "n"]), metric_values),
        "tags": st.dictionaries(st.sampled_from(["t", "u"]), texts),
        "status": st.sampled_from(["finished", "failed"]),
    }
)
corpora = st.lists(run_values, min_size=1, max_size=6)

# -- the filters -----------------------------------------------------------------------------
literals = st.sampled_from(
    [
        "0",
        "1",
        "-1",
        "0.1",
        "1e-05",
        "1e300",
        "nan",
        "inf",
        "-inf",
        "1000000000000000000000000000000",
        "true",
        "false",
        "'adam'",
        "'0.1'",
        "'nan'",
        "'true'",
        "'null'",
        "''",
        "'r1'",
        "'finished'",
    ]
)
patterns = st.sampled_from(["'a%'", "'%d%'", "'_'", "'a\\_b'", "'A%'", "'%'", "'0._'"])


def literal_of(value: Any) -> list[str]:
    """Filter literals that name ``value``: its number, its text, quoted."""
    out = []
    if is_number(value):
        out.append("nan" if math.isnan(value) else text(value))
    elif isinstance(value, str) and re.fullmatch(r"-?[0-9.]+(e-?[0-9]+)?|nan|inf", value):
        out.append(value)  # a text that reads as a number: compare it as one
    shown = value if isinstance(value, str) else text(value)
    out.append("'" + shown.replace("'", "''") + "'")
    return out


def columns_of(corpus: list[dict[str, Any]]) -> list[str]:
    names = {"status", "name", "params.zz"}  # two attributes, and a column no run has
    for run in corpus:
        for kind in ("params", "metrics", "tags"):
            names.update(f"{kind}.`{k}`" if "." in k else f"{kind}.{k}" for k in run[kind])
    return sorted(names)


def filters_for(corpus: list[dict[str, Any]]) -> st.SearchStrategy[str]:
    """Filter expressions over the corpus's columns, with literals drawn from its values
    (so equality and text matches happen) and from a fixed set of awkward ones."""
    found = [
        lit
        for run in corpus
        for kind in ("params", "metrics", "tags")
        for v in run[kind].values()
        for lit in literal_of(v)
    ]
    pool = literals | st.sampled_from(found) if found else literals

    @st.composite
    def comparisons(draw: st.DrawFn) -> str:
        column = draw(st.sampled_from(columns_of(corpus)))
        kind = draw(st.sampled_from(["op", "op", "in", "like", "null"]))
        if kind == "op":
            op = draw(st.sampled_from(["=", "!=", "<", "<=", ">", ">="]))
            return f"{column} {op} {draw(pool)}"
        if kind == "in":
            items = ", ".join(draw(st.lists(pool, min_size=1, max_size=3)))
            return f"{column} {draw(st.sampled_from(['in', 'not in']))} ({items})"
        if kind == "like":
            op = draw(st.sampled_from(["like", "ilike", "not like", "not ilike"]))
            return f"{column} {op} {draw(patterns)}"
        return f"{column} is {draw(st.sampled_from(['', 'not ']))}null"

    return st.recursive(
        comparisons(),
        lambda inner: st.one_of(
            st.builds("({}) and ({})".format, inner, inner),
            st.builds("({}) or ({})".format, inner, inner),
            st.builds("not ({})".format, inner),
        ),
        max_leaves=4,
    )


# -- the oracle ------------------------------------------------------------------------------
def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def as_number(value: Any) -> float | int:
    """Numbers as compared: integers beyond 64 bits as the float they are closest to."""
    if isinstance(value, int) and not -INT64 <= value < INT64:
        return float(value)
    return value  # type: ignore[no-any-return]


def compare(a: Any, op: str, b: Any) -> bool:
    return {
        "=": a == b,
        "!=": a != b,
        "<": a < b,
        "<=": a <= b,
        ">": a > b,
        ">=": a >= b,
    }[op]


def ascii_lower(value: str) -> str:
    return value.translate({c: c + 32 for c in range(ord("A"), ord("Z") + 1)})


def like(value: str, pattern: str, fold: bool) -> bool:
    if fold:
        value, pattern = ascii_lower(value), ascii_lower(pattern)
    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.DOTALL) is not None


def equal(kind: str, value: Any, literal: Any) -> bool:
    return matches(kind, value, "=", literal)


def matches(kind: str, value: Any, op: str, literal: Any) -> bool:
    """One comparison of a present value with a literal (docs/runs.md)."""
    nan_literal = is_number(literal) and math.isnan(literal)
    if kind == "metrics":
        if nan_literal:
            return isinstance(value, float) and math.isnan(value)
        if is_number(literal):
            return (
                is_number(value)
                and not math.isnan(value)
                and compare(as_number(value), op, as_number(literal))
            )
        return isinstance(value, str) and compare(value, op, text(literal))
    if kind == "params" and is_number(literal) and not nan_literal:
        numeric = (
            is_number(value)
            and not math.isnan(value)
            and compare(as_number(value), op, as_number(literal))
        )
        return numeric or (op == "=" and text(value) == text(literal))
    shown = value if isinstance(value, str) else text(value)
    return compare(shown, op, literal if isinstance(literal, str) else text(literal))


def evaluate(node: Node, run: dict[str, Any]) -> bool:
    if isinstance(node, BoolOp):
        if node.op == "not":
            return not evaluate(node.args[0], run)
        results = [evaluate(a, run) for a in node.args]
        return all(results) if node.op == "and" else any(results)
    return evaluate_cmp(node, run)


def evaluate_cmp(cmp: Cmp, run: dict[str, Any]) -> bool:
    col = cmp.column
    kind = "text" if col.kind == "attr" else col.kind
    present = col.name in run
    if cmp.op == "isnull":
        return present if cmp.negate else not present
    if not present:
        return False
    value = run[col.name]
    if cmp.op == "in":
        body = any(equal(kind, value, item) for item in cmp.value)
    elif cmp.op in ("like", "ilike"):
        shown = value if isinstance(value, str) else text(value)
        body = like(shown, cmp.value, cmp.op == "ilike")
    else:
        body = matches(kind, value, "=" if cmp.op == "!=" else cmp.op, cmp.value)
    return not body if (cmp.negate or cmp.op == "!=") else body


def sort_key(run: dict[str, Any], column: str, descending: bool) -> tuple[Any, ...]:
    """Missing and NaN metrics last in both directions; numbers (params and metrics) before
    text, by number and then by text; everything else by its text."""
    if column not in run:
        return (1,)
    value, kind = run[column], column.partition(".")[0]
    number = is_number(value) and not math.isnan(value)
    if kind == "metrics" and is_number(value) and math.isnan(value):
        return (1,)
    shown = value if isinstance(value, str) else text(value)
    if number and kind in ("params", "metrics"):
        num = as_number(value)
        tie = "" if kind == "metrics" else shown
        return (0, 0, -num if descending else num, Desc(tie) if descending else tie)
    return (0, 1, Desc(shown) if descending else shown)


class Desc:
    """A string that sorts backwards."""

    def __init__(self, value: str) -> None:
        self.value = value

    def __lt__(self, other: Desc) -> bool:
        return self.value > other.value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Desc) and self.value == other.value

    __hash__ = None  # type: ignore[assignment]


# -- the test --------------------------------------------------------------------------------
def record_runs(root: Path, corpus: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Commit each run of the corpus as xp would; run id -> {column: value} (the oracle's view)."""
    repo = find_repo(root)
    head = git(root, "rev-parse", "HEAD").strip()
    tree = git(root, "rev-parse", "HEAD^{tree}").strip()
    runs = {}
    for i, spec in enumerate(corpus):
        start = 1_700_000_000 + 60 * i
        run_id = fmt.new_run_id(start)
        meta = {
            "start_time": f"2023-11-14T22:{13 + i:02d}:20.000Z",
            "end_time": f"2023-11-14T22:{13 + i:02d}:50.000Z",
            "duration": 30.0,
            "baseline": head,
        }
        record = RunRecord(
            id=run_id,
            name=f"r{i}",
            status=spec["status"],
            meta=meta,
            params=spec["params"],
            metrics=spec["metrics"],
            tags=spec["tags"],
        )
        commit_record(repo, record, tree, head, start, start + 30)
        view: dict[str, Any] = {"status": spec["status"], "name": f"r{i}"}
        for kind in ("params", "metrics", "tags"):
            view.update({f"{kind}.{k}": v for k, v in spec[kind].items()})
        runs[run_id] = view
    return runs


KNOWN = (
    [
        {"params": {"a": "0.1", "b": 10**30}, "metrics": {"m": math.nan}, "tags": {"t": "5"}},
        {"params": {"a": 0.1, "b": 1e30}, "metrics": {"m": math.inf}, "tags": {}},
        {"params": {"a": True, "b": None}, "metrics": {"m": 1, "n": "high"}, "tags": {"t": "A_b"}},
        {"params": {"a": [1, 2], "c.d": math.nan}, "metrics": {"n": -0.0}, "tags": {"u": ""}},
    ],
    [
        "params.a = 0.1",
        "params.a = '0.1'",
        "params.a != 0.1",
        "params.b > 1e29",
        "params.b = 1000000000000000000000000000000",
        "metrics.m = nan",
        "metrics.m != nan",
        "metrics.m > 0",
        "metrics.m = inf",
        "not metrics.m > 0",
        "metrics.n = 'high'",
        "metrics.n = 0",
        "tags.t = 5",
        "tags.t like 'a%'",
        "tags.t ilike 'a%'",
        "tags.u = ''",
        "params.a = true",
        "params.a = 'true'",
        "params.b = 'null'",
        "params.a = '[1, 2]'",
        "params.`c.d` = nan",
        "params.a in (0.1, 'true')",
        "params.zz is null",
    ],
)


@settings(
    max_examples=20,
    deadline=None,  # no timing in the suite
    suppress_health_check=[HealthCheck.too_slow],
)
@given(data=st.data())
def test_sql_filters_and_sorts_match_the_reference(data: st.DataObject) -> None:
    corpus = data.draw(corpora, label="corpus")
    wheres = data.draw(st.lists(filters_for(corpus), min_size=8, max_size=16), label="wheres")
    check(corpus, wheres)


def test_the_documented_cases_match_the_reference() -> None:
    corpus, wheres = KNOWN
    check([{"status": "finished", **run} for run in corpus], wheres)


def check(corpus: list[dict[str, Any]], wheres: list[str]) -> None:
    with scratch_project() as root:
        runs = record_runs(root, corpus)
        repo = find_repo(root)
        keys = select_runs(repo, limit=0).keys
        newest_first = sorted(runs, reverse=True)
        for where in wheres:
            try:
                node = parse_filter(where, keys)
            except QueryError:
                continue  # a column no run has, or a comparison the language refuses
            got = [r.run_id for r in select_runs(repo, where=where, limit=None).rows]
            want = [run_id for run_id in newest_first if evaluate(node, runs[run_id])]
            assert got == want, f"{where!r}: SQL {got}, reference {want}"
        for column in sorted(keys):
            for descending in (False, True):
                spec = f"{column} {'desc' if descending else 'asc'}"
                parse_sort(spec, keys)
                got = [r.run_id for r in select_runs(repo, sort=[spec], limit=None).rows]
                want = sorted(
                    newest_first,
                    key=lambda run_id: sort_key(runs[run_id], column, descending),
                )
                assert got == want, f"sort {spec}: SQL {got}, reference {want}"
