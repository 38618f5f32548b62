"""Filters and sort keys (parsed by ``xp.query.filters``) -> SQL over the index tables.

A param, metric or tag lives in ``vals`` as typed columns (``rows.cells``): ``num``, the
number a numeric comparison sees, and ``txt``, the text a text comparison sees, keyed by
(key id, run). A comparison on a value becomes ``c.rid IN (SELECT rid FROM vals WHERE
kid = ? AND <predicate on num/txt>)``: one range scan of that key, nothing parsed per row.
Every predicate is 1 or 0, never NULL, so ``not`` and ``!=`` keep the rules of docs/runs.md:
a comparison with a missing value is false, NaN equals only ``nan``. Values are bound
parameters, never spliced into the text.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from xp.query.filters import ATTRIBUTES, Cmp, Column, Node, SortKey, parse_time
from xp.record import values

# attribute -> its SQL column over ``current c JOIN runs r``
ATTRIBUTE_SQL = {
    "run_id": "c.run_id",
    "name": "r.name",
    "status": "r.status",
    "experiment": "r.experiment",
    "created": "r.start",
    "end_time": "r.end",
    "duration": "r.duration",
    "baseline": "r.baseline",
    "branch": "r.branch",
    "user": "r.user",
    "commit": "r.commit_sha",
}
_INT64 = 2**63


def _number(value: Any) -> Any:
    """A bound number SQLite can take: integers beyond 64 bits compare as floats."""
    if isinstance(value, int) and not -_INT64 <= value < _INT64:
        return float(value)
    return value


def _sql_literal_time(value: Any) -> float:
    return float(value) / 1000.0 if values.is_number(value) else parse_time(str(value))


def _attr_cmp(col: Column, op: str, value: Any, args: list[Any]) -> str:
    expr, kind = ATTRIBUTE_SQL[col.key], ATTRIBUTES[col.key]
    if kind == "time":
        args.append(_sql_literal_time(value))
    elif kind == "number":
        args.append(float(value))
    else:
        args.append(value if isinstance(value, str) else values.text(value))
    return f"ifnull({expr} {op} ?, 0)"


def _value_cmp(col: Column, op: str, value: Any, args: list[Any]) -> str:
    """A 0/1 predicate on one ``vals`` row ``v`` (its ``num`` and ``txt``)."""
    is_num = values.is_number(value)
    nan = is_num and math.isnan(value)
    if col.kind == "metrics":
        if nan:
            return "(v.num IS NULL AND v.txt IS NULL)"
        if is_num:
            args.append(_number(value))
            return f"ifnull(v.num {op} ?, 0)"
        args.append(values.text(value))
        return f"ifnull(v.txt {op} ?, 0)"
    if col.kind == "params" and is_num and not nan:
        args.append(_number(value))
        if op != "=":
            return f"ifnull(v.num {op} ?, 0)"
        args.append(values.text(value))  # `= 0.001` also matches the text '0.001'
        return "ifnull(v.num = ? OR v.txt = ?, 0)"
    args.append(value if isinstance(value, str) else values.text(value))
    return f"ifnull(v.txt {op} ?, 0)"


_Compare = Callable[[Column, str, Any, list[Any]], str]


def _body(cmp: Cmp, args: list[Any], value_cmp: _Compare) -> str:
    """The comparison without negation: ``in`` is a disjunction, ``!=`` is ``=``."""
    col = cmp.column
    if cmp.op == "in":
        return "(" + " OR ".join(value_cmp(col, "=", v, args) for v in cmp.value) + ")"
    if cmp.op in ("like", "ilike"):
        text = ATTRIBUTE_SQL[col.key] if col.kind == "attr" else "v.txt"
        args.append(cmp.value)
        if cmp.op == "ilike":
            return f"ifnull(lower({text}) LIKE lower(?), 0)"
        return f"ifnull({text} LIKE ?, 0)"
    return value_cmp(col, "=" if cmp.op == "!=" else cmp.op, cmp.value, args)


def _compile_cmp(cmp: Cmp, args: list[Any], kids: Mapping[str, int]) -> str:
    col = cmp.column
    negated = cmp.negate or cmp.op == "!="
    if col.kind == "attr":
        expr = ATTRIBUTE_SQL[col.key]
        if cmp.op == "isnull":
            return f"{expr} IS NOT NULL" if cmp.negate else f"{expr} IS NULL"
        body = _body(cmp, args, _attr_cmp)
        return f"({expr} IS NOT NULL AND NOT {body})" if negated else body
    args.append(kids.get(col.name, -1))  # -1: a key no indexed run has (only live runs)
    if cmp.op == "isnull":
        presence = "c.rid IN (SELECT rid FROM vals WHERE kid = ?)"
        return presence if cmp.negate else f"NOT {presence}"
    body = _body(cmp, args, _value_cmp)
    if negated:  # present, and the comparison is false
        body = f"NOT {body}"
    return f"c.rid IN (SELECT v.rid FROM vals v WHERE v.kid = ? AND {body})"


def where_sql(node: Node, args: list[Any], kids: Mapping[str, int]) -> str:
    """SQL for ``node`` over ``current c JOIN runs r``; bound values appended to ``args``.
    ``kids`` maps each value column (``params.lr``) to its key id in ``keys``."""
    if isinstance(node, Cmp):
        return _compile_cmp(node, args, kids)
    if node.op == "not":
        return f"(NOT {where_sql(node.args[0], args, kids)})"
    joiner = " AND " if node.op == "and" else " OR "
    return "(" + joiner.join(where_sql(a, args, kids) for a in node.args) + ")"


def sort_sql(keys: list[SortKey], kids: Mapping[str, int]) -> tuple[str, list[Any], str]:
    """(LEFT JOINs, their bound values, ORDER BY terms): missing and NaN last in both
    directions, numbers before text, then newest first."""
    joins: list[str] = []
    join_args: list[Any] = []
    terms: list[str] = []
    for i, key in enumerate(keys):
        col, direction = key.column, "DESC" if key.descending else "ASC"
        if col.kind == "attr":
            expr = ATTRIBUTE_SQL[col.key]
            terms += [f"({expr} IS NULL)", f"{expr} {direction}"]
            continue
        alias = f"s{i}"
        joins.append(f" LEFT JOIN vals {alias} ON {alias}.kid = ? AND {alias}.rid = c.rid")
        join_args.append(kids.get(col.name, -1))
        terms += [
            f"({alias}.rid IS NULL OR ({alias}.num IS NULL AND {alias}.txt IS NULL))",
            f"({alias}.num IS NULL)",
            f"{alias}.num {direction}",
            f"{alias}.txt {direction}",
        ]
    terms.append("c.run_id DESC")
    return "".join(joins), join_args, ", ".join(terms)
