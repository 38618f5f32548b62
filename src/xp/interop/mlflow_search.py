"""MLflow's ``search_runs`` language, exactly: the filter grammar, its comparisons, the
``order_by`` clauses, page tokens and ``search_experiments``' filters.

xp's own filter language (``xp show --where``) is a superset with other rules for types and
statuses; scripts written for MLflow need MLflow's answers (``params.lr = '0.01'`` is a text
comparison, ``status = 'FINISHED'`` is upper case, ``OR`` is an error), so the MLflow bridge
and the plugin evaluate MLflow's grammar here, over rows the query index supplies.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from xp.errors import MlflowException

_ENTITIES = {
    "metric": "metric",
    "metrics": "metric",
    "parameter": "parameter",
    "parameters": "parameter",
    "param": "parameter",
    "params": "parameter",
    "tag": "tag",
    "tags": "tag",
    "attribute": "attribute",
    "attributes": "attribute",
    "attr": "attribute",
    "run": "attribute",
    "dataset": "dataset",
    "datasets": "dataset",
}
_ENTITY_NAMES = ["metric", "parameter", "tag", "attribute", "dataset"]
STRING_ATTRIBUTES = {"artifact_uri", "run_id", "run_name", "status", "user_id"}
NUMERIC_ATTRIBUTES = {"start_time", "end_time", "created", "Created"}
_ALIASES = {"created": "start_time", "Created": "start_time", "run name": "run_name"}
_ALIASES.update({"Run name": "run_name", "Run Name": "run_name"})
SEARCH_ATTRIBUTES = STRING_ATTRIBUTES | NUMERIC_ATTRIBUTES | {"run name", "Run name", "Run Name"}
ORDER_ATTRIBUTES = frozenset(STRING_ATTRIBUTES | {"start_time", "end_time", "created", "Created"})
_COMPARATORS = {
    "metric": ("=", "!=", ">", ">=", "<", "<="),
    "parameter": ("!=", "=", "LIKE", "ILIKE", "IS NULL", "IS NOT NULL"),
    "tag": ("!=", "=", "LIKE", "ILIKE", "IS NULL", "IS NOT NULL"),
    "string": ("!=", "=", "LIKE", "ILIKE", "IN", "NOT IN"),
    "numeric": ("=", "!=", ">", ">=", "<", "<="),
    "dataset": ("!=", "=", "LIKE", "ILIKE", "IN", "NOT IN"),
}
MAX_RESULTS = 50000


def _bad(message: str) -> MlflowException:
    return MlflowException(message, "INVALID_PARAMETER_VALUE")


# -- tokens -------------------------------------------------------------------------------------
_TOKEN = re.compile(
    r"""\s*(?:
      (?P<bt>`[^`]*`)
    | (?P<sq>'(?:[^']|'')*')
    | (?P<dq>"(?:[^"]|"")*")
    | (?P<num>-?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?)(?![\w.])
    | (?P<op>!=|<>|==|>=|<=|=|>|<)
    | (?P<punct>[(),.;])
    | (?P<word>[^\s`'"(),.;=!<>]+)
    )""",
    re.VERBOSE,
)
_KEYWORDS = {"AND", "OR", "NOT", "IN", "IS", "NULL", "LIKE", "ILIKE"}


@dataclass(frozen=True)
class _Tok:
    kind: str  # bt, sq, dq, num, op, punct, word, kw
    text: str

    @property
    def upper(self) -> str:
        return self.text.upper()


def _tokens(text: str) -> list[_Tok]:
    out: list[_Tok] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise _bad(f"Error on parsing filter '{text}'")
        kind = m.lastgroup or "word"
        tok = m.group(kind)
        if kind == "word" and tok.upper() in _KEYWORDS:
            kind = "kw"
        out.append(_Tok(kind, tok))
        pos = m.end()
    return out


def _unquote(tok: _Tok) -> str:
    if tok.kind in ("sq", "dq", "bt"):
        body = tok.text[1:-1]
        return body.replace("''", "'") if tok.kind == "sq" else body.replace('""', '"')
    return tok.text


# -- clauses -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Clause:
    """One comparison of a filter: ``type`` is metric, parameter, tag, attribute or dataset."""

    type: str
    key: str
    comparator: str
    value: Any = None


@dataclass(frozen=True)
class Grammar:
    """Which attributes a filter may name, which are numbers, which take ``IN (...)``."""

    attributes: frozenset[str]
    numeric: frozenset[str]
    listable: frozenset[str]


RUNS = Grammar(frozenset(SEARCH_ATTRIBUTES), frozenset(NUMERIC_ATTRIBUTES), frozenset({"run_id"}))
EXPERIMENTS = Grammar(
    frozenset({"name", "experiment_id", "creation_time", "last_update_time"}),
    frozenset({"creation_time", "last_update_time"}),
    frozenset({"experiment_id"}),
)


def _identifier(parts: list[_Tok], valid_attributes: frozenset[str]) -> tuple[str, str]:
    """(entity type, key) of a dotted identifier: split at the first dot, as MLflow does."""
    if len(parts) == 1:
        entity, key = "attribute", _unquote(parts[0])
    else:
        raw = _unquote(parts[0])
        if raw not in _ENTITIES:
            raise _bad(f"Invalid entity type '{raw}'. Valid values are {_ENTITY_NAMES}")
        entity = _ENTITIES[raw]
        rest = parts[1:]
        key = _unquote(rest[0]) if len(rest) == 1 else ".".join(p.text for p in rest)
    if entity == "attribute" and key not in valid_attributes:
        raise _bad(
            f"Invalid attribute key '{key}' specified. Valid keys are '{set(valid_attributes)}'"
        )
    if entity == "dataset" and key not in ("name", "digest", "context"):
        raise _bad(
            f"Invalid dataset key '{key}' specified. Valid keys are"
            " '{'name', 'digest', 'context'}'"
        )
    return entity, key


def _read_identifier(toks: list[_Tok], i: int) -> tuple[list[_Tok], int]:
    parts = [toks[i]]
    i += 1
    while i + 1 < len(toks) and toks[i].text == "." and toks[i + 1].kind in ("word", "bt", "dq"):
        parts.append(toks[i + 1])
        i += 2
    return parts, i


def _check_comparator(g: Grammar, entity: str, key: str, comparator: str) -> None:
    kind = entity if entity != "attribute" else ("numeric" if key in g.numeric else "string")
    allowed = _COMPARATORS[kind]
    if comparator not in allowed:
        if comparator in ("IS NULL", "IS NOT NULL"):
            raise _bad(
                "IS NULL / IS NOT NULL is only supported for tags and params, not for"
                f" '{entity}' '{key}'"
            )
        raise _bad(f"Invalid comparator '{comparator}' not one of '{set(allowed)}'")


def _value(g: Grammar, entity: str, key: str, tok: _Tok) -> Any:
    if entity == "metric":
        if tok.kind != "num":
            raise _bad(f"Expected numeric value type for metric. Found {tok.text}")
        return float(tok.text)
    if entity in ("parameter", "tag"):
        if tok.kind not in ("sq", "dq"):
            raise _bad(
                f"Expected a quoted string value for {entity} (e.g. 'my-value'). Got value"
                f" {tok.text}"
            )
        return _unquote(tok)
    if entity == "attribute" and key in g.numeric:
        if tok.kind != "num":
            raise _bad(
                f"Expected numeric value type for numeric attribute: {key}. Found {tok.text}"
            )
        return float(tok.text) if any(c in tok.text for c in ".eE") else int(tok.text)
    if tok.kind not in ("sq", "dq"):
        what = "dataset attributes" if entity == "dataset" else "attributes"
        raise _bad(f"Expected a quoted string value for {what}. Got value {tok.text}")
    return _unquote(tok)


def _list(g: Grammar, toks: list[_Tok], i: int, entity: str, key: str) -> tuple[list[str], int]:
    if entity == "attribute" and key not in g.listable:
        raise _bad(
            f"Only {sorted(g.listable)} attributes support comparison with a list of quoted"
            " string values."
        )
    if i >= len(toks) or toks[i].text != "(":
        raise _bad("Invalid clause(s) in filter string: expected a parenthesised list after IN")
    i += 1
    values: list[str] = []
    while i < len(toks) and toks[i].text != ")":
        tok = toks[i]
        if tok.kind not in ("sq", "dq"):
            raise _bad(f"While parsing a list in the query, expected string value, got {tok.text}")
        values.append(_unquote(tok))
        i += 1
        if i < len(toks) and toks[i].text == ",":
            i += 1
    if i >= len(toks):
        raise _bad("Invalid clause(s) in filter string: the list has no closing parenthesis")
    return values, i + 1


def parse_filter(text: str | None, g: Grammar = RUNS) -> list[Clause]:
    """MLflow's run filter: clauses joined by AND; anything else is an error naming it."""
    if not text or not text.strip():
        return []
    toks = _tokens(text)
    if any(t.text == ";" for t in toks[:-1]):
        raise _bad(
            f"Search filter contained multiple expression {text!r}. Provide AND-ed expression list."
        )
    toks = [t for t in toks if t.text != ";"]
    stray = [t.text for t in toks if t.upper == "OR"]
    if stray:  # MLflow's grammar has AND only
        raise _bad(f"Invalid clause(s) in filter string: {', '.join(map(repr, stray))}")
    clauses: list[Clause] = []
    i = 0
    while i < len(toks):
        start = i
        if toks[i].kind not in ("word", "bt", "dq"):
            raise _bad(f"Invalid clause(s) in filter string: '{_rest(toks, start)}'")
        parts, i = _read_identifier(toks, i)
        if i >= len(toks):
            raise _bad(f"Invalid clause(s) in filter string: '{_rest(toks, start)}'")
        tok = toks[i]
        entity, key = _identifier(parts, g.attributes)
        if tok.kind == "op":
            comparator = {"==": "=", "<>": "<>"}.get(tok.text, tok.text)
            _check_comparator(g, entity, key, comparator)
            if i + 1 >= len(toks):
                raise _bad(f"Invalid clause(s) in filter string: '{_rest(toks, start)}'")
            clauses.append(Clause(entity, key, comparator, _value(g, entity, key, toks[i + 1])))
            i += 2
        elif tok.upper in ("LIKE", "ILIKE"):
            _check_comparator(g, entity, key, tok.upper)
            if i + 1 >= len(toks):
                raise _bad(f"Invalid clause(s) in filter string: '{_rest(toks, start)}'")
            clauses.append(Clause(entity, key, tok.upper, _value(g, entity, key, toks[i + 1])))
            i += 2
        elif tok.upper == "IS":
            neg = i + 1 < len(toks) and toks[i + 1].upper == "NOT"
            j = i + 2 if neg else i + 1
            if j >= len(toks) or toks[j].upper != "NULL":
                raise _bad(f"Invalid clause(s) in filter string: '{_rest(toks, start)}'")
            comparator = "IS NOT NULL" if neg else "IS NULL"
            _check_comparator(g, entity, key, comparator)
            clauses.append(Clause(entity, key, comparator))
            i = j + 1
        elif tok.upper in ("IN", "NOT"):
            if entity in ("parameter", "tag"):  # MLflow reads the list as a bad value
                listed = "".join(t.text for t in toks[i + (2 if tok.upper == "NOT" else 1) :])
                raise _bad(
                    f"Expected a quoted string value for {entity} (e.g. 'my-value'). Got value"
                    f" {listed}"
                )
            comparator = "IN"
            if tok.upper == "NOT":
                if i + 1 >= len(toks) or toks[i + 1].upper != "IN":
                    raise _bad(f"Invalid clause(s) in filter string: '{_rest(toks, start)}'")
                comparator = "NOT IN"
                i += 1
            _check_comparator(g, entity, key, comparator)
            values, i = _list(g, toks, i + 1, entity, key)
            clauses.append(Clause(entity, key, comparator, values))
        else:
            raise _bad(f"Invalid clause(s) in filter string: '{_rest(toks, start)}'")
        if i < len(toks):
            if toks[i].upper != "AND":
                raise _bad(f"Invalid clause(s) in filter string: '{toks[i].text}'")
            i += 1
            if i >= len(toks):
                raise _bad("Invalid clause(s) in filter string: 'AND'")
    return clauses


def _rest(toks: list[_Tok], start: int) -> str:
    words: list[str] = []
    for t in toks[start:]:
        if words and (t.text == "." or words[-1].endswith(".")):
            words[-1] += t.text
        else:
            words.append(t.text)
    return "', '".join(words)


# -- matching ----------------------------------------------------------------------------------
def _like_regex(pattern: str, flags: int = 0) -> re.Pattern[str]:
    regex = re.escape(pattern).replace("%", ".*").replace("_", ".")
    if not pattern.startswith("%"):
        regex = "^" + regex
    if not pattern.endswith("%"):
        regex += "$"
    return re.compile(regex, flags | re.DOTALL)


def _compare(comparator: str, lhs: Any, rhs: Any) -> bool:
    if comparator == "=":
        return bool(lhs == rhs)
    if comparator == "!=":
        return bool(lhs != rhs)
    if comparator == ">":
        return bool(lhs > rhs)
    if comparator == ">=":
        return bool(lhs >= rhs)
    if comparator == "<":
        return bool(lhs < rhs)
    if comparator == "<=":
        return bool(lhs <= rhs)
    if comparator == "LIKE":
        return _like_regex(rhs).match(str(lhs)) is not None
    if comparator == "ILIKE":
        return _like_regex(rhs, re.IGNORECASE).match(str(lhs)) is not None
    if comparator == "IN":
        return lhs in rhs
    if comparator == "NOT IN":
        return lhs not in rhs
    raise _bad(f"Invalid comparator '{comparator}'")


@dataclass
class SearchRow:
    """What a filter and a sort look at: run attributes, params (text), metrics (latest
    value), tags, and the datasets' (name, digest, context) when asked for."""

    attributes: dict[str, Any]
    params: dict[str, str]
    metrics: dict[str, float]
    tags: dict[str, str]
    datasets: Callable[[], list[tuple[str, str, str | None]]] = field(default=lambda: [])
    payload: Any = None  # what the caller turns into its result

    @property
    def start_time(self) -> int:
        return int(self.attributes.get("start_time") or 0)

    @property
    def run_id(self) -> str:
        return str(self.attributes.get("run_id"))


def matches(row: SearchRow, clauses: Sequence[Clause]) -> bool:
    return all(_matches(row, c) for c in clauses)


def _matches(row: SearchRow, c: Clause) -> bool:
    key = _ALIASES.get(c.key, c.key)
    if c.type == "dataset":
        slot = {"name": 0, "digest": 1, "context": 2}[key]
        return any(
            d[slot] is not None and _compare(c.comparator, d[slot], c.value) for d in row.datasets()
        )
    lhs: Any
    if c.type == "metric":
        lhs = row.metrics.get(key)
    elif c.type == "parameter":
        lhs = row.params.get(key)
    elif c.type == "tag":
        lhs = row.tags.get(key)
    else:
        lhs = row.attributes.get(key)
    if c.comparator == "IS NULL":
        return lhs is None
    if c.comparator == "IS NOT NULL":
        return lhs is not None
    if lhs is None:
        return False
    return _compare(c.comparator, lhs, c.value)


# -- order_by ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Order:
    type: str
    key: str
    ascending: bool


def parse_order_by(clause: str, valid_attributes: frozenset[str] = ORDER_ATTRIBUTES) -> Order:
    text = clause.strip()
    toks = _tokens(text) if text else []
    ascending = True
    if toks and toks[-1].kind == "word" and toks[-1].upper in ("ASC", "DESC"):
        ascending = toks[-1].upper == "ASC"
        toks = toks[:-1]
    if not toks:
        raise _bad(f"Invalid order_by clause '{clause}'. Could not be parsed.")
    if len(toks) == 1 and toks[0].text.lower() == "timestamp":
        return Order("attribute", "start_time", ascending)
    parts, i = _read_identifier(toks, 0)
    if i != len(toks):
        last = toks[i]
        if last.kind == "word" and i == len(toks) - 1:
            raise _bad(f"Invalid ordering key in order_by clause '{clause}'.")
        raise _bad(f"Invalid order_by clause '{clause}'. Could not be parsed.")
    entity, key = _identifier(parts, valid_attributes)
    if entity == "dataset":
        raise _bad(f"Invalid order_by entity type '{entity}'")
    return Order(entity, _ALIASES.get(key, key), ascending)


def _sort_value(row: SearchRow, order: Order) -> tuple[bool, Any]:
    value: Any
    if order.type == "metric":
        value = row.metrics.get(order.key)
    elif order.type == "parameter":
        value = row.params.get(order.key)
    elif order.type == "tag":
        value = row.tags.get(order.key)
    else:
        value = row.attributes.get(order.key)
    missing = value is None or (isinstance(value, float) and math.isnan(value))
    if missing:
        value = 0  # compared only against other missing values: their order stays as it was
    # missing values go last in both directions (the sort is reversed for DESC)
    return (missing, value) if order.ascending else (not missing, value)


def sort_key(order: Order) -> Callable[[SearchRow], tuple[bool, Any]]:
    return lambda row: _sort_value(row, order)


def sort_rows(rows: Iterable[SearchRow], order_by: Sequence[str] | None) -> list[SearchRow]:
    """Newest first (ties: run id), then each ``order_by`` clause, missing values last."""
    out = sorted(rows, key=lambda r: (-r.start_time, r.run_id))
    for clause in reversed(list(order_by or [])):
        order = parse_order_by(clause)
        out = sorted(out, key=sort_key(order), reverse=not order.ascending)
    return out


# -- pages -------------------------------------------------------------------------------------
def page_offset(token: str | None) -> int:
    if not token:
        return 0
    try:
        parsed = json.loads(base64.b64decode(token))
        return int(parsed["offset"])
    except (ValueError, TypeError, KeyError):
        raise _bad(
            f"Invalid page token {token!r}; pass the token a previous page returned"
        ) from None


def page_token(offset: int) -> str:
    return base64.b64encode(json.dumps({"offset": offset}).encode()).decode()


def check_max_results(max_results: int | None, limit: int = MAX_RESULTS) -> None:
    if max_results is None:
        return
    if not isinstance(max_results, int) or isinstance(max_results, bool) or max_results < 0:
        raise _bad(
            f"Invalid value {max_results} for parameter 'max_results' supplied. It must be a"
            " positive integer"
        )
    if max_results > limit:
        raise _bad(
            f"Invalid value {max_results} for parameter 'max_results' supplied. It must be at"
            f" most {limit}"
        )


def paginate(
    items: list[Any], max_results: int | None, token: str | None
) -> tuple[list[Any], str | None]:
    start = page_offset(token)
    if max_results is None:
        return items[start:], None
    end = start + max_results
    return items[start:end], (page_token(end) if end < len(items) else None)


# -- experiments -------------------------------------------------------------------------------
def parse_experiment_filter(text: str | None) -> list[Clause]:
    """``search_experiments``' filter: attributes (name, experiment_id, creation_time,
    last_update_time) and tags only."""
    if not text or not text.strip():
        return []
    toks = _tokens(text)
    for i, t in enumerate(toks):  # MLflow allows fewer entity spellings here
        if t.text == "." and i > 0 and (i < 2 or toks[i - 2].text != "."):
            entity = _unquote(toks[i - 1])
            if entity in _ENTITIES and entity not in ("attribute", "tag", "tags"):
                raise _bad(
                    f"Invalid entity type '{entity}'. Valid entity types are"
                    " ('attribute', 'tag', 'tags')"
                )
    return parse_filter(text, EXPERIMENTS)


def experiment_order(clause: str) -> Order:
    order = parse_order_by(clause, EXPERIMENTS.attributes)
    if order.type != "attribute":
        raise _bad(f"Invalid order_by entity type '{order.type}'")
    return order
