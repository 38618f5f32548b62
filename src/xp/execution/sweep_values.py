"""The grammar of a ``-p KEY=VALUES`` value: one value, or several (a sweep axis).

    values   := item ("," item)*
    item     := call | flow | quoted | plain
    call     := ("range" | "linspace" | "logspace") "(" number ("," number)* ")"
    flow     := a YAML flow list or mapping, "[...]" or "{...}" (one value, commas inside)
    quoted   := a YAML quoted string, "..." or '...' (one value, commas inside)
    plain    := text up to the next top-level comma; "\\," is a literal comma; read as a
                YAML scalar (3 -> int, 1e-3 -> float, true -> bool, a -> str)

``range(start, stop[, step])`` stops before ``stop`` (as Python's range and numpy's arange);
``linspace(start, stop, num)`` and ``logspace(start, stop, num)`` (10**x) include it, as
numpy's do. Anything else is refused with the column it went wrong at: a trailing or doubled
comma, an unclosed bracket or quote, a call with wrong arguments, a number too long to hold.
"""

from __future__ import annotations

import math
import re
from typing import Any

from xp.errors import InvalidValueError
from xp.record import yamlio

MAX_POINTS = 10_000  # one axis; a grid of more is a mistake, not a sweep
MAX_DIGITS = 4300  # Python's own limit for turning text into an int
_CALL_RE = re.compile(r"(range|linspace|logspace)\s*\(")
_CLOSE = {"[": "]", "{": "}"}


class _Scan:
    def __init__(self, item: str, start: int) -> None:
        self.item = item  # the whole -p argument, for messages
        self.text = item[start:]
        self.base = start  # columns in messages count from the start of the -p argument
        self.i = 0

    def fail(self, at: int, what: str) -> InvalidValueError:
        col = self.base + at + 1
        shown = self.item if len(self.item) <= 60 else self.item[:40] + "…"
        return InvalidValueError(f"-p {shown!r}, column {col}: {what}")

    def skip_spaces(self) -> None:
        while self.i < len(self.text) and self.text[self.i] in " \t":
            self.i += 1


def parse_values(item: str, start: int) -> tuple[Any, ...]:
    """The values of the -p argument ``item`` whose value part begins at index ``start``."""
    scan = _Scan(item, start)
    if not scan.text.strip():
        return (yamlio.scalar(scan.text.strip()),)  # `-p key=`: the empty string, as before
    values: list[Any] = []
    while True:
        scan.skip_spaces()
        if scan.i >= len(scan.text) or scan.text[scan.i] == ",":
            what = "a value is missing" + (
                " after the last ','; remove the trailing comma"
                if scan.i >= len(scan.text)
                else " before this ','; remove the extra comma"
            )
            raise scan.fail(scan.i, what)
        values += _item(scan)
        scan.skip_spaces()
        if scan.i >= len(scan.text):
            break
        if scan.text[scan.i] != ",":
            raise scan.fail(scan.i, f"unexpected {scan.text[scan.i]!r}; separate values with ','")
        scan.i += 1
    if len(values) > MAX_POINTS:
        raise scan.fail(0, f"{len(values):,} values; at most {MAX_POINTS:,} on one axis")
    return tuple(values)


def _item(scan: _Scan) -> list[Any]:
    text, i = scan.text, scan.i
    call = _CALL_RE.match(text, i)
    if call:
        return _call(scan, call)
    if text[i] in "]}":
        raise scan.fail(i, f"{text[i]!r} closes nothing opened before it")
    if text[i] in _CLOSE or text[i] in "\"'":
        end = _closing(scan, i)
        chunk = text[i:end]
        scan.i = end
        return [_yaml(scan, i, chunk)]
    start = i
    while i < len(text) and text[i] != ",":
        i += 2 if text.startswith("\\,", i) else 1
    scan.i = i
    raw = text[start:i].replace("\\,", ",").strip()
    digits = len(raw.lstrip("+-").split(".")[0])
    if raw.lstrip("+-").isdigit() and digits > MAX_DIGITS:
        raise scan.fail(
            start,
            f"a number of {digits:,} digits is too long (at most {MAX_DIGITS:,}); quote it"
            " to pass it as text",
        )
    return [yamlio.scalar(raw)]


def _closing(scan: _Scan, i: int) -> int:
    """The index just past the bracket or quote that closes the one at ``i``."""
    text = scan.text
    stack: list[tuple[str, int]] = []
    j = i
    while j < len(text):
        ch = text[j]
        if ch in "\"'":
            k = j + 1
            while k < len(text):
                if ch == '"' and text[k] == "\\":
                    k += 2
                    continue
                if text[k] == ch:
                    if ch == "'" and text.startswith("''", k):
                        k += 2
                        continue
                    break
                k += 1
            if k >= len(text):
                raise scan.fail(j, f"the quote {ch} opened here is never closed; close it")
            j = k + 1
        elif ch in _CLOSE:
            stack.append((_CLOSE[ch], j))
            j += 1
        elif ch in "]}":
            if not stack or stack[-1][0] != ch:
                raise scan.fail(j, f"{ch!r} closes nothing opened before it")
            stack.pop()
            j += 1
        else:
            j += 1
        if not stack:
            return j
    want, at = stack[-1]
    raise scan.fail(at, f"the {text[at]!r} opened here is never closed; add {want!r}")


def _yaml(scan: _Scan, at: int, chunk: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(chunk)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = at + (mark.index if mark is not None else 0)
        problem = getattr(exc, "problem", None) or "not a YAML value"
        raise scan.fail(where, f"{problem}; write a YAML value such as [1, 2] or 'text'") from None


def _call(scan: _Scan, match: re.Match[str]) -> list[Any]:
    name, text = match.group(1), scan.text
    close = text.find(")", match.end())
    if close < 0:
        raise scan.fail(match.end() - 1, f"{name}( is never closed; add ')'")
    args_text = text[match.end() : close]
    scan.i = close + 1
    args: list[float] = []
    for part in args_text.split(","):
        value = yamlio.scalar(part.strip())
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise scan.fail(match.start(), f"{name}(...) takes numbers, not {part.strip()!r}")
        args.append(value)
    if name == "range":
        if len(args) not in (2, 3):
            raise scan.fail(match.start(), "range(start, stop[, step]) takes 2 or 3 numbers")
        start, stop = args[0], args[1]
        step = args[2] if len(args) == 3 else 1
        if step == 0 or (stop - start) / step <= 0:
            raise scan.fail(match.start(), f"range{tuple(args)} is empty; check the step's sign")
        n = math.ceil((stop - start) / step - 1e-9)
        if n > MAX_POINTS:
            raise scan.fail(match.start(), f"range{tuple(args)} has {n:,} values; too many")
        whole = all(isinstance(a, int) for a in args)
        return [start + k * step if whole else _tidy(start + k * step) for k in range(n)]
    if len(args) != 3 or not float(args[2]).is_integer() or args[2] < 1:
        raise scan.fail(match.start(), f"{name}(start, stop, num) takes 2 numbers and a count")
    num = int(args[2])
    if num > MAX_POINTS:
        raise scan.fail(match.start(), f"{name} of {num:,} values; too many")
    lo, hi = float(args[0]), float(args[1])
    xs = [lo + (hi - lo) * k / (num - 1) for k in range(num)] if num > 1 else [lo]
    return [_tidy(10**x) if name == "logspace" else _tidy(x) for x in xs]


def _tidy(x: float) -> float:
    """0.30000000000000004 -> 0.3: the value a user would have typed (12 significant digits)."""
    return float(f"{x:.12g}")
