"""Filters and sort keys (parsed by ``xp.query.filters``) -> SQL over the index tables.

Every comparison compiles to an expression that is 1 or 0, never NULL, so ``not`` and ``!=``
keep the rules of docs/runs.md: a comparison with a missing value is false, NaN equals only
``nan``. Values are bound parameters, never spliced into the text.
"""

from __future__ import annotations

import math
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
    "commit": "c.commit_sha",
}


_NUMERIC = "('integer','real')"


def _bindable(value: Any) -> Any:
    """SQLite integers are 64-bit: a bigger int literal (``10**30``) is bound as the float
    SQLite itself reads such a number as."""
    if isinstance(value, int) and not -(2**63) <= value < 2**63:
        return float(value)
    return value


def _sql_literal_time(value: Any) -> float:
    return float(value) / 1000.0 if values.is_number(value) else parse_time(str(value))


def _compile_cmp(cmp: Cmp, args: list[Any]) -> str:
    col = cmp.column
    if cmp.op == "isnull":
        if col.kind == "attr":
            expr = f"{ATTRIBUTE_SQL[col.key]} IS NULL"
        else:
            args.append(col.path)
            expr = "json_type(r.data, ?) IS NULL"
        return f"NOT ({expr})" if cmp.negate else expr
    if cmp.op not in ("in", "like", "ilike", "!="):
        return _compile_eq(col, cmp.op, cmp.value, args)
    body_args: list[Any] = []
    if cmp.op == "in":
        body = "(" + " OR ".join(_compile_eq(col, "=", v, body_args) for v in cmp.value) + ")"
    elif cmp.op in ("like", "ilike"):
        text_sql, body_args = _text_of(col)
        lower = "lower" if cmp.op == "ilike" else ""
        body = f"ifnull({lower}({text_sql}) LIKE {lower}(?), 0)"
        body_args.append(cmp.value)
    else:
        body = _compile_eq(col, "=", cmp.value, body_args)
    if cmp.negate or cmp.op == "!=":
        exists, exists_args = _exists(col)
        args.extend(exists_args + body_args)
        return f"({exists} AND NOT {body})"
    args.extend(body_args)
    return body


def _exists(col: Column) -> tuple[str, list[Any]]:
    if col.kind == "attr":
        return f"({ATTRIBUTE_SQL[col.key]} IS NOT NULL)", []
    return "(json_type(r.data, ?) IS NOT NULL)", [col.path]


def _text_of(col: Column) -> tuple[str, list[Any]]:
    if col.kind == "attr":
        return ATTRIBUTE_SQL[col.key], []
    if col.kind == "params":
        return "json_extract(r.ptext, ?)", [f'$."{col.key}"']
    return "json_extract(r.data, ?)", [col.path]


def _compile_eq(col: Column, op: str, value: Any, args: list[Any]) -> str:
    """One comparison that is 1 or 0, never NULL (so `not` and `!=` behave)."""
    sql_op = "=" if op == "=" else op
    if col.kind == "attr":
        expr, kind = ATTRIBUTE_SQL[col.key], ATTRIBUTES[col.key]
        if kind == "time":
            args.append(_sql_literal_time(value))
        elif kind == "number":
            args.append(float(value))
        else:
            args.append(value if isinstance(value, str) else values.text(value))
        return f"ifnull({expr} {sql_op} ?, 0)"
    is_num = values.is_number(value)
    if col.kind == "metrics":
        if is_num and math.isnan(value):
            args.append(col.path)
            return "ifnull(json_type(r.data, ?) = 'null', 0)"
        if is_num:
            args.extend([col.path, col.path, _bindable(value)])
            return (
                f"ifnull(json_type(r.data, ?) IN {_NUMERIC}"
                f" AND json_extract(r.data, ?) {sql_op} ?, 0)"
            )
        args.extend([col.path, col.path, values.text(value)])
        return f"ifnull(json_type(r.data, ?) = 'text' AND json_extract(r.data, ?) {sql_op} ?, 0)"
    text_sql, text_args = _text_of(col)
    if col.kind == "params" and is_num and not math.isnan(value):
        args.extend([col.path, col.path, _bindable(value)])
        numeric = f"(json_type(r.data, ?) IN {_NUMERIC} AND json_extract(r.data, ?) {sql_op} ?)"
        if op != "=":
            return f"ifnull({numeric}, 0)"
        args.extend(text_args)
        args.append(values.text(value))
        return f"ifnull({numeric} OR {text_sql} = ?, 0)"
    args.extend(text_args)
    args.append(value if isinstance(value, str) else values.text(value))
    return f"ifnull({text_sql} {sql_op} ?, 0)"


def where_sql(node: Node, args: list[Any]) -> str:
    """SQL for ``node`` over ``current c JOIN runs r``; bound values appended to ``args``."""
    if isinstance(node, Cmp):
        return _compile_cmp(node, args)
    if node.op == "not":
        return f"(NOT {where_sql(node.args[0], args)})"
    joiner = " AND " if node.op == "and" else " OR "
    return "(" + joiner.join(where_sql(a, args) for a in node.args) + ")"


def sort_sql(keys: list[SortKey], args: list[Any]) -> str:
    """ORDER BY terms: missing and NaN last in both directions, then newest first."""
    terms: list[str] = []
    for key in keys:
        col, direction = key.column, "DESC" if key.descending else "ASC"
        if col.kind == "attr":
            expr = ATTRIBUTE_SQL[col.key]
            terms += [f"({expr} IS NULL)", f"{expr} {direction}"]
            continue
        args.extend([col.path, col.path, col.path])
        terms += [
            "(json_extract(r.data, ?) IS NULL)",
            f"(json_type(r.data, ?) NOT IN {_NUMERIC})",
            f"json_extract(r.data, ?) {direction}",
        ]
    terms.append("c.run_id DESC")
    return ", ".join(terms)
