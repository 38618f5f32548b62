"""The filter and sort language of ``xp show --where/--sort`` and ``xp.search_runs``.

MLflow's grammar (``metrics.acc > 0.9 and params.model = 'cnn'``) plus ``or``, ``not``,
parentheses, ``in`` / ``not in`` for every column and comparisons of params with numbers.
A filter parses to a small tree (``Cmp``/``BoolOp``) that the query index compiles to one
SQL expression (``xp.query.index.compile``), so 100,000 runs filter in SQLite, not Python.
The rules for missing values and NaN are in docs/runs.md:
any comparison with a missing value is false (``!=`` too), NaN equals only ``nan``.
"""

from __future__ import annotations

import difflib
import math
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from xp import format as fmt
from xp.errors import QueryError
from xp.record import values

# -- columns --------------------------------------------------------------------------------
_PREFIXES = {
    "params": "params",
    "param": "params",
    "metrics": "metrics",
    "metric": "metrics",
    "tags": "tags",
    "tag": "tags",
    "attributes": "attr",
    "attribute": "attr",
    "attr": "attr",
    "run": "attr",
}

# attribute -> kind: text, time (seconds since the epoch) or number.
ATTRIBUTES: dict[str, str] = {
    "run_id": "text",
    "name": "text",
    "status": "text",
    "experiment": "text",
    "created": "time",
    "end_time": "time",
    "duration": "number",
    "baseline": "text",
    "branch": "text",
    "user": "text",
    "commit": "text",
}
_ALIASES = {
    "id": "run_id",
    "run_name": "name",
    "start_time": "created",
    "start": "created",
    "end": "end_time",
    "experiment_id": "experiment",
    "user_id": "user",
}
STATUSES = (*fmt.STATUSES, "invalid")
PARENT_NAMES = ("parent", "parent_id", "parent_run_id")


@dataclass(frozen=True)
class Column:
    kind: str  # params, metrics, tags or attr
    key: str

    @property
    def name(self) -> str:
        return self.key if self.kind == "attr" else f"{self.kind}.{self.key}"

    @property
    def path(self) -> str:
        """JSON path of the value inside the index row's ``data``."""
        return f'$."{self.name}"'


def resolve_column(
    text: str, known: Iterable[str], where: str = "", *, position: int | None = None
) -> Column:
    """``params.lr``, ``lr`` (when only one kind has it), ``status``... -> Column.

    ``position`` is where ``text`` starts in the filter, carried by the error."""
    known = set(known)
    head, dot, rest = text.partition(".")
    prefix = _PREFIXES.get(head.lower()) if dot else None
    if prefix == "attr":
        head, dot, rest = rest, "", ""
        prefix = None
        text = head
    if prefix is not None:
        column = Column(prefix, rest)
        if column.name in known:
            return column
    else:
        attr = _ALIASES.get(text.lower(), text.lower())
        if attr in ATTRIBUTES:
            return Column("attr", attr)
        if attr in PARENT_NAMES:  # a nested run's parent: its xp.parent tag
            return Column("tags", fmt.PARENT_TAG)
        found = [f"{k}.{text}" for k in ("params", "metrics", "tags") if f"{k}.{text}" in known]
        if len(found) == 1:
            kind, _, key = found[0].partition(".")
            return Column(kind, key)
        if len(found) > 1:
            raise QueryError(
                f"{where}{text!r} is ambiguous: say {' or '.join(found)}",
                position=position,
                token=text,
                suggestions=tuple(found),
            )
    candidates = sorted(known | set(ATTRIBUTES))
    close = difflib.get_close_matches(text, candidates, n=3, cutoff=0.6)
    if not close and prefix is None:
        close = difflib.get_close_matches(
            text, [c.partition(".")[2] for c in known], n=1, cutoff=0.6
        )
        close = [c for c in candidates if c.partition(".")[2] in close][:3]
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise QueryError(
        f"{where}no run has a column {text!r}{hint} (see the columns of `xp show`)"
        if hint
        else f"{where}no run has a column {text!r}; list columns with `xp show --format json`",
        position=position,
        token=text,
        suggestions=tuple(close),
    )


# -- tokens ---------------------------------------------------------------------------------
_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<num>[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)(?![\w.]))
  | (?P<str>'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.|"")*")
  | (?P<op><=|>=|!=|<>|==|=|<|>)
  | (?P<punct>[(),])
  | (?P<ident>(?:[A-Za-z_][\w\-/:]*(?:\.(?:[\w\-/:]+|`[^`]*`|"[^"]*"))*\.?)|`[^`]*`)
    """,
    re.VERBOSE,
)
_KEYWORDS = {"and", "or", "not", "in", "like", "ilike", "is", "null", "true", "false"}
_SPECIAL_NUMBERS = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf, "infinity": math.inf}


@dataclass(frozen=True)
class Token:
    kind: str  # num, str, op, punct, ident, kw, end
    text: str
    pos: int
    value: Any = None


def _unquote_ident(text: str) -> str:
    return re.sub(r"`([^`]*)`|\"([^\"]*)\"", lambda m: m.group(1) or m.group(2) or "", text)


def tokenize(source: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(source):
        if source.startswith("-inf", pos) and not re.match(r"-inf\w", source[pos:]):
            tokens.append(Token("num", "-inf", pos, -math.inf))
            pos += 4
            continue
        m = _TOKEN_RE.match(source, pos)
        if m is None or m.end() == pos:
            raise QueryError(
                _at(source, pos, f"unexpected character {source[pos]!r}"),
                position=pos,
                token=source[pos],
            )
        kind = m.lastgroup or ""
        text = m.group()
        if kind == "num":
            num = float(text)
            value: Any = int(text) if re.fullmatch(r"[-+]?\d+", text) else num
            tokens.append(Token("num", text, pos, value))
        elif kind == "str":
            quote = text[0]
            body = text[1:-1].replace(quote * 2, quote)
            body = re.sub(r"\\(.)", r"\1", body)
            tokens.append(Token("str", text, pos, body))
        elif kind == "ident":
            low = text.lower()
            if low in _KEYWORDS:
                tokens.append(Token("kw", text, pos, low))
            elif low in _SPECIAL_NUMBERS:
                tokens.append(Token("num", text, pos, _SPECIAL_NUMBERS[low]))
            else:
                if text.endswith("."):
                    raise QueryError(
                        _at(source, pos, f"{text!r} needs a key after the dot"),
                        position=pos,
                        token=text,
                    )
                tokens.append(Token("ident", text, pos, _unquote_ident(text)))
        elif kind != "ws":
            tokens.append(Token(kind, text, pos, text))
        pos = m.end()
    tokens.append(Token("end", "", len(source)))
    return tokens


def _at(source: str, pos: int, message: str) -> str:
    return f"--where/filter: {message} at position {pos + 1} of {source!r}"


# -- syntax tree ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Cmp:
    column: Column
    op: str  # = != < <= > >= like ilike in isnull
    value: Any  # a literal, a tuple of literals for `in`, None for isnull
    negate: bool = False
    token: Token | None = None
    literals: tuple[Token, ...] = field(default=(), compare=False)  # where each value was


@dataclass(frozen=True)
class BoolOp:
    op: str  # and, or, not
    args: tuple[Node, ...]


Node = Cmp | BoolOp


class _Parser:
    def __init__(self, source: str, known: Iterable[str]) -> None:
        self.source = source
        self.known = set(known)
        self.tokens = tokenize(source)
        self.i = 0

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def error(self, expected: str, tok: Token | None = None) -> QueryError:
        tok = tok or self.tok
        got = "the end" if tok.kind == "end" else repr(tok.text)
        return QueryError(
            _at(self.source, tok.pos, f"expected {expected}, got {got}"),
            position=tok.pos,
            token=tok.text or None,
        )

    def kw(self, *words: str) -> bool:
        if self.tok.kind == "kw" and self.tok.value in words:
            self.i += 1
            return True
        return False

    def parse(self) -> Node:
        if self.tok.kind == "end":
            raise QueryError("--where/filter: the filter is empty; e.g. metrics.acc > 0.9")
        node = self.or_()
        if self.tok.kind != "end":
            raise self.error("'and', 'or' or the end")
        return node

    def or_(self) -> Node:
        args = [self.and_()]
        while self.kw("or"):
            args.append(self.and_())
        return args[0] if len(args) == 1 else BoolOp("or", tuple(args))

    def and_(self) -> Node:
        args = [self.not_()]
        while self.kw("and"):
            args.append(self.not_())
        return args[0] if len(args) == 1 else BoolOp("and", tuple(args))

    def not_(self) -> Node:
        if self.kw("not"):
            return BoolOp("not", (self.not_(),))
        if self.tok.kind == "punct" and self.tok.text == "(":
            self.i += 1
            node = self.or_()
            if not (self.tok.kind == "punct" and self.tok.text == ")"):
                raise self.error("')'")
            self.i += 1
            return node
        return self.comparison()

    def literal(self) -> Any:
        tok = self.tok
        if tok.kind in ("num", "str"):
            self.i += 1
            return tok.value
        if tok.kind == "kw" and tok.value in ("true", "false"):
            self.i += 1
            return tok.value == "true"
        raise self.error("a value (a number, 'text', true or false)")

    def literals_since(self, start: int) -> tuple[Token, ...]:
        return tuple(t for t in self.tokens[start : self.i] if t.kind in ("num", "str", "kw"))

    def comparison(self) -> Node:
        tok = self.tok
        if tok.kind != "ident":
            raise self.error("a column such as metrics.acc, params.lr or status")
        where = _at(self.source, tok.pos, "").rsplit(" at position", 1)[0].rstrip(": ")
        column = resolve_column(tok.value, self.known, f"{where}: ", position=tok.pos)
        self.i += 1
        op_tok = self.tok
        if op_tok.kind == "op":
            self.i += 1
            op = {"==": "=", "<>": "!="}.get(op_tok.text, op_tok.text)
            start = self.i
            value = self.literal()
            cmp = Cmp(column, op, value, token=op_tok, literals=self.literals_since(start))
            return _check(cmp, self.source)
        negate = self.kw("not")
        if self.kw("in"):
            if not (self.tok.kind == "punct" and self.tok.text == "("):
                raise self.error("'(' starting a list of values")
            self.i += 1
            start = self.i
            items = [self.literal()]
            while self.tok.kind == "punct" and self.tok.text == ",":
                self.i += 1
                items.append(self.literal())
            if not (self.tok.kind == "punct" and self.tok.text == ")"):
                raise self.error("',' or ')'")
            literals = self.literals_since(start)
            self.i += 1
            cmp = Cmp(column, "in", tuple(items), negate, op_tok, literals)
            return _check(cmp, self.source)
        if self.tok.kind == "kw" and self.tok.value in ("like", "ilike"):
            op = self.tok.value
            self.i += 1
            if self.tok.kind != "str":
                raise self.error("a quoted pattern such as '%cnn%'")
            pattern = self.tok.value
            self.i += 1
            cmp = Cmp(column, op, pattern, negate, op_tok, (self.tokens[self.i - 1],))
            return _check(cmp, self.source)
        if negate:
            raise self.error("'in', 'like' or 'ilike' after 'not'")
        if self.kw("is"):
            negate = self.kw("not")
            if not self.kw("null"):
                raise self.error("'null'")
            return Cmp(column, "isnull", None, negate, op_tok)
        raise self.error("an operator (=, !=, <, <=, >, >=, in, like, ilike, is null)")


def _check(cmp: Cmp, source: str) -> Cmp:
    """Type rules that do not depend on the data: refuse what can never be meaningful."""
    col, op = cmp.column, cmp.op
    items = cmp.value if op == "in" else (cmp.value,)
    pos = cmp.token.pos if cmp.token else 0
    kind = ATTRIBUTES[col.key] if col.kind == "attr" else col.kind
    where: Token | None = cmp.token

    def fail(msg: str, suggestions: tuple[str, ...] = ()) -> QueryError:
        return QueryError(
            _at(source, pos, f"{col.name} {msg}"),
            position=where.pos if where else None,
            token=where.text if where else None,
            suggestions=suggestions,
        )

    if op in ("like", "ilike") and kind in ("metrics", "number", "time"):
        raise fail(f"holds numbers; {op} matches text (use =, <, > ...)")
    for n, item in enumerate(items):
        if n < len(cmp.literals):
            where = cmp.literals[n]  # errors about a value point at the value
        is_num = values.is_number(item)
        if op in ("<", "<=", ">", ">="):
            if isinstance(item, bool):
                raise fail(f"{op} needs a number or text, not {values.text(item)}")
            if is_num and math.isnan(item):
                raise fail("NaN is not ordered: compare with = nan or != nan")
            if kind in ("tags", "text") and is_num:
                raise fail(f"holds text; quote the value ({op} '{values.text(item)}')")
        if kind in ("metrics", "number") and isinstance(item, str) and op in ("<", "<=", ">", ">="):
            raise fail(f"holds numbers; compare it with a number, not {item!r}")
        if kind == "number" and isinstance(item, (str, bool)):
            raise fail(f"holds numbers (seconds); compare it with a number, not {item!r}")
        if kind == "time" and not (is_num or isinstance(item, str)):
            raise fail("compares with a date ('2024-05-01', '2 days ago') or epoch ms")
        if kind == "time" and isinstance(item, str):
            parse_time(item, lambda m: fail(m))
        if (
            col.kind == "attr"
            and col.key == "status"
            and isinstance(item, str)
            and item not in STATUSES
            and op in ("=", "!=", "in")
        ):
            close = difflib.get_close_matches(item, STATUSES, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            quoted = tuple("'" + c + "'" for c in close)
            raise fail(f"is one of {', '.join(STATUSES)}; got {item!r}{hint}", quoted)
    return cmp


_AGO_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|hour|d|day|w|week)s?\s+ago\s*$", re.I)
_UNIT = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hour": 3600, "d": 86400, "day": 86400}
_UNIT.update({"w": 7 * 86400, "week": 7 * 86400})


def parse_time(text: str, fail: Any = None) -> float:
    """'2024-05-01', '2024-05-01 12:30', ISO with offset, or '3 days ago' -> epoch seconds."""
    m = _AGO_RE.match(text)
    if m:
        return time.time() - float(m.group(1)) * _UNIT[m.group(2).lower()]
    try:
        dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        msg = (
            f"cannot read {text!r} as a time;"
            " write '2024-05-01', '2024-05-01 14:30' or '2 days ago'"
        )
        raise (fail(msg) if fail else QueryError(msg)) from None
    return dt.timestamp()  # naive times are local, like the times xp show prints


def parse_filter(source: str, known: Iterable[str]) -> Node:
    return _Parser(source, known).parse()


# -- sort -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class SortKey:
    column: Column
    descending: bool


def parse_sort(spec: str, known: Iterable[str]) -> SortKey:
    """'metrics.acc', 'metrics.acc desc', 'metrics.acc:desc' or '-metrics.acc'."""
    text = spec.strip()
    descending = False
    if text.startswith("-"):
        text, descending = text[1:].strip(), True
    m = re.match(r"^(.*?)(?:\s+|:)(asc|desc)$", text, re.I)
    if m:
        text, descending = m.group(1).strip(), m.group(2).lower() == "desc"
    if not text:
        raise QueryError(f"--sort/order_by: {spec!r} names no column; e.g. 'metrics.acc desc'")
    if " " in text and not text.startswith("`"):
        raise QueryError(
            f"--sort/order_by: cannot read {spec!r}; write 'COLUMN', 'COLUMN desc' or '-COLUMN'"
        )
    return SortKey(resolve_column(_unquote_ident(text), known, "--sort/order_by: "), descending)


# -- evaluating in Python ---------------------------------------------------------------------
# The index compiles filters to SQL (xp.query.index.compile); runs that are not in the index
# (live runs, read from their journals) are filtered here, with the same answers: a
# differential test (tests/query/test_evaluate.py) holds the two together.

_MISSING = object()
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def evaluate(node: Node, row: Mapping[str, Any]) -> bool:
    """Whether one run matches ``node``, with the rules of docs/runs.md.

    ``row`` maps column names to values as the index holds them: ``params.<k>`` (the param
    as logged), ``metrics.<k>`` (a number, None for NaN, text for a non-number), ``tags.<k>``
    (text), and the attributes of ``ATTRIBUTES`` (times and durations in seconds, None when
    unknown). A missing key is a missing value.
    """
    if isinstance(node, BoolOp):
        if node.op == "not":
            return not evaluate(node.args[0], row)
        results = (evaluate(arg, row) for arg in node.args)
        return all(results) if node.op == "and" else any(results)
    return _evaluate_cmp(node, row)


def _evaluate_cmp(cmp: Cmp, row: Mapping[str, Any]) -> bool:
    col = cmp.column
    cell = row.get(col.name, _MISSING)
    present = cell is not _MISSING and (col.kind != "attr" or cell is not None)
    if cmp.op == "isnull":
        return present if cmp.negate else not present
    if cmp.op not in ("in", "like", "ilike", "!="):
        return _equal(col, cmp.op, cmp.value, cell)
    if cmp.op == "in":
        body = any(_equal(col, "=", v, cell) for v in cmp.value)
    elif cmp.op in ("like", "ilike"):
        body = _like(col, cell, str(cmp.value), cmp.op == "ilike")
    else:
        body = _equal(col, "=", cmp.value, cell)
    if cmp.negate or cmp.op == "!=":
        return present and not body
    return body


def _compare(a: Any, op: str, b: Any) -> bool:
    try:
        if op == "=":
            return bool(a == b)
        if op == "!=":
            return bool(a != b)
        if op == "<":
            return bool(a < b)
        if op == "<=":
            return bool(a <= b)
        if op == ">":
            return bool(a > b)
        return bool(a >= b)
    except TypeError:
        return False


def _literal_text(value: Any) -> str:
    return value if isinstance(value, str) else values.text(value)


def _equal(col: Column, op: str, value: Any, cell: Any) -> bool:
    """One comparison of a present or missing value (``_MISSING``) with a literal."""
    if cell is _MISSING:
        return False
    if col.kind == "attr":
        if cell is None:
            return False
        kind = ATTRIBUTES[col.key]
        if kind == "time":
            literal: Any = (
                float(value) / 1000.0 if values.is_number(value) else parse_time(str(value))
            )
        elif kind == "number":
            literal = float(value)
        else:
            literal = _literal_text(value)
        return _compare(cell, op, literal)
    is_num = values.is_number(value)
    if col.kind == "metrics":
        if is_num and math.isnan(value):
            return cell is None  # NaN is held as null
        if is_num:
            return values.is_number(cell) and _compare(cell, op, value)
        return isinstance(cell, str) and _compare(cell, op, values.text(value))
    if col.kind == "params":
        if is_num and not math.isnan(value):
            # an infinite param is shown as its text, and compares as the number it is
            number = float(cell) if cell in ("inf", "-inf") else cell
            numeric = values.is_number(number) and _compare(number, op, value)
            if op != "=":
                return numeric
            return numeric or values.text(cell) == values.text(value)
        return _compare(values.text(cell), op, _literal_text(value))
    return isinstance(cell, str) and _compare(cell, op, _literal_text(value))


def _like(col: Column, cell: Any, pattern: str, fold: bool) -> bool:
    """SQLite's LIKE with case_sensitive_like on (ilike: ASCII letters folded, as SQLite's
    lower() does): % any run of characters, _ one character, no escape character."""
    if cell is _MISSING:
        return False
    if col.kind == "params":
        text = values.text(cell)  # a null param's text is "null"
    elif isinstance(cell, str):
        text = cell
    else:
        return False
    if fold:
        text, pattern = text.translate(_ASCII_LOWER), pattern.translate(_ASCII_LOWER)
    regex = "".join(".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in pattern)
    return re.fullmatch(regex, text, re.DOTALL) is not None
