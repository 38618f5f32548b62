"""Tables for the terminal, Markdown, CSV/TSV and JSON: the output side of show and diff.

The library returns data; these functions only lay it out. A terminal table never wraps:
long cells are cut with an ellipsis and columns that do not fit are dropped by priority,
and the caller says which were dropped, so 50 params stay readable in 100 columns.

``echo`` (from ``output``) is the CLI's one way out: every control character in what it
prints is shown as a visible escape such as ``\\x1b``. JSON escapes them the JSON way (exact
once parsed); CSV/TSV stay byte-exact when piped and are escaped only on a terminal.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import shutil
import sys
import time
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import Any

from xp.cli.output import BIDI, has_control, visible
from xp.cli.output import echo as echo  # the CLI's one way out, as render.echo
from xp.cli.output import is_terminal as _is_terminal

MAX_CELL = 24  # characters of one cell in a terminal table
GAP = "  "

_JSON_UNSAFE = re.compile(rf"[\x7f-\x9f{BIDI}\ud800-\udfff]")


def write(pieces: Iterable[str], *, end: str = "\n", exact: bool = False) -> None:
    """``echo`` for output streamed in pieces (``xp show -a``): each piece followed by
    ``end``, written to stdout in large writes, control characters made visible as ``echo``
    does (with ``exact``, only on a terminal)."""
    out = sys.stdout
    safe = not exact or _is_terminal(out)

    def flush(buffer: list[str]) -> None:
        text = end.join(buffer) + end
        # a printable piece has no character ``visible`` escapes (all are unprintable):
        # one C-level check of each piece, not a regular expression over the text
        if safe and (has_control(end) or not all(map(str.isprintable, buffer))):
            text = visible(text)
        out.write(text)

    buffer: list[str] = []
    size = 0
    for piece in pieces:
        buffer.append(piece)
        size += len(piece)
        if len(buffer) >= 2000 or size >= 1 << 20:  # lines, or pieces of many lines
            flush(buffer)
            buffer = []
            size = 0
    if buffer:
        flush(buffer)
    out.flush()


def number(value: Any, precision: int | None) -> str:
    """A value for humans: floats to ``precision`` significant digits, the rest as text."""
    if value is None:
        return "-"
    if isinstance(value, float) and math.isfinite(value) and precision is not None:
        return f"{value:.{precision}g}"
    from xp.record.values import text

    return text(value)


def local_time(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(epoch))


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


def json_safe(data: Any) -> Any:
    """Strict JSON, shared with the UI's documents (``record.values``, imported when used:
    commands that print no value, such as ``xp tag``, start faster without it)."""
    from xp.record.values import json_safe as safe

    return safe(data)


def json_unsafe_escaped(text: str) -> str:
    """JSON text with the characters a terminal could act on written as ``\\uXXXX``
    escapes, as ``to_json`` writes them."""
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def to_json(data: Any) -> str:
    """Strict JSON, UTF-8 kept readable; characters a terminal could act on are written as
    ``\\uXXXX`` escapes (C0 ones by json itself), so the text is safe and parses exact."""
    text = json.dumps(json_safe(data), indent=2, ensure_ascii=False, allow_nan=False)
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def terminal_width() -> int:
    return max(40, shutil.get_terminal_size((100, 24)).columns)


# Joiners and variation selectors take no cell of their own.
_ZERO_WIDTH = frozenset("\u200b\u200c\u200d\u2060\ufe0e\ufe0f")


def cells(text: str) -> int:
    """Terminal cells ``text`` takes: East-Asian wide characters and emoji two, combining
    marks none, so columns with 学习率 or 🚀 in them still line up."""
    if text.isascii():
        return len(text)
    return sum(_char_cells(ch) for ch in text)


def _char_cells(ch: str) -> int:
    if ch in _ZERO_WIDTH or unicodedata.combining(ch):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in "WF" else 1


def _head(text: str, width: int) -> str:
    """The longest start of ``text`` that fits in ``width`` cells."""
    used = 0
    for i, ch in enumerate(text):
        used += _char_cells(ch)
        if used > width:
            return text[:i]
    return text


def clip(text: str, width: int = MAX_CELL) -> str:
    """Cut at the end to ``width`` cells with an ellipsis (values: the start says most)."""
    if len(text) <= width and text.isascii() and text.isprintable():
        return text  # nothing to show as an escape, one cell a character, and it fits
    text = visible(text.replace("\n", " ").replace("\t", " "))
    return text if cells(text) <= width else _head(text, width - 1) + "…"


def clip_column(texts: list[str], width: int = MAX_CELL) -> list[str]:
    """``clip`` of every cell of a column: one check for the whole column when every cell is
    printable ASCII that fits (the common case: ``xp show -a`` clips 100,000s of cells)."""
    joined = "".join(texts)
    if joined.isascii() and joined.isprintable() and max(map(len, texts), default=0) <= width:
        return texts
    return [clip(text, width) for text in texts]


def clip_middle(text: str, width: int = MAX_CELL) -> str:
    """Cut in the middle to ``width`` cells (names: ``learning_r…up_steps`` keeps both ends,
    where names made of a common prefix and a varying suffix differ)."""
    text = visible(text.replace("\n", " ").replace("\t", " "))
    if cells(text) <= width:
        return text
    tail_cells = (width - 1) // 2
    head = _head(text, width - 1 - tail_cells)
    tail = _head(text[::-1], tail_cells)[::-1]
    return head + "…" + tail


def pad(text: str, width: int, right: bool = False) -> str:
    """``text`` padded with spaces to ``width`` cells."""
    fill = " " * max(0, width - cells(text))
    return fill + text if right else text + fill


@dataclass(frozen=True)
class Fitted:
    headers: list[str]
    rows: list[list[str]]
    hidden: list[str]  # headers of dropped columns, in their original order


def column_widths(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[int]:
    """Each column's width in terminal cells (``cells``)."""
    return [
        max([cells(h)] + [cells(r[i]) for r in rows]) if rows else cells(h)
        for i, h in enumerate(headers)
    ]


def fit_widths(widths: Sequence[int], width: int, drop_order: Sequence[int]) -> list[int]:
    """The indexes of the columns kept when columns (indexes in ``drop_order`` first to
    last) are dropped until the table fits in ``width``."""
    keep = [True] * len(widths)
    total = sum(widths) + len(GAP) * max(0, len(widths) - 1)  # kept up to date: linear
    count = len(widths)
    for i in drop_order:
        if total <= width:
            break
        if keep[i]:
            keep[i] = False
            count -= 1
            total -= widths[i] + (len(GAP) if count else 0)
    return [i for i, k in enumerate(keep) if k]


def fit(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    width: int,
    drop_order: Sequence[int],
) -> Fitted:
    """Drop columns (indexes in ``drop_order`` first to last) until the table fits."""
    idx = fit_widths(column_widths(headers, rows), width, drop_order)
    kept = set(idx)
    return Fitted(
        [headers[i] for i in idx],
        [[r[i] for i in idx] for r in rows],
        [h for i, h in enumerate(headers) if i not in kept],
    )


def is_numeric(text: str) -> bool:
    """Whether a cell reads as a number (right-aligned): a float, or -, nan, inf."""
    try:
        float(text)
    except ValueError:
        return text in ("-", "nan", "inf", "-inf")
    return True


def aligned(widths: Sequence[int], numeric: Sequence[bool]) -> Callable[[Sequence[str]], str]:
    """The function that lays out one row of a table with these columns: one format
    string, numbers to the right, a cell wider than its column cut to it. A row with
    non-ASCII text is laid out by terminal cells (wide characters take two)."""
    template = GAP.join(
        "{:" + (">" if num else "<") + f"{w}.{w}" + "}"
        for w, num in zip(widths, numeric, strict=True)
    )
    fill = template.format
    columns = list(zip(widths, numeric, strict=True))

    def line(texts: Sequence[str]) -> str:
        if "".join(texts).isascii():
            return fill(*texts).rstrip()
        parts = [
            pad(text if cells(text) <= w else _head(text, w), w, right=num)
            for text, (w, num) in zip(texts, columns, strict=True)
        ]
        return GAP.join(parts).rstrip()

    return line


def aligned_columns(
    widths: Sequence[int], numeric: Sequence[bool]
) -> Callable[[Sequence[Sequence[str]]], list[str]]:
    """``aligned`` for many rows at once, given column by column: the lines of those rows,
    the same text ``aligned``'s function makes of each row (one format call a row when the
    cells are all ASCII, the common case, rather than a check a row)."""
    line = aligned(widths, numeric)
    justify = [str.rjust if num else str.ljust for num in numeric]

    def lines(columns: Sequence[Sequence[str]]) -> list[str]:
        if not columns:
            return []  # no column kept: the caller knows how many (empty) rows
        if not all("".join(column).isascii() for column in columns):
            return [line(cells) for cells in zip(*columns, strict=True)]
        # ASCII: each column cut and padded by one C-level map (what "{:<w.w}" does to
        # each cell), the rows joined and stripped by two more
        padded = []
        for column, w, just in zip(columns, widths, justify, strict=True):
            if max(map(len, column), default=0) > w:
                column = [text[:w] for text in column]
            padded.append(map(just, column, repeat(w)))
        return list(map(str.rstrip, map(GAP.join, zip(*padded, strict=True))))

    return lines


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Plain text, columns separated by two spaces; numeric columns right-aligned."""
    if not headers:
        return ""
    headers = [visible(h) for h in headers]
    rows = [[visible(c) for c in r] for r in rows]
    widths = column_widths(headers, rows)
    numeric = [
        bool(rows) and all(is_numeric(r[i]) for r in rows) and any(r[i] != "-" for r in rows)
        for i in range(len(headers))
    ]
    line = aligned(widths, numeric)
    return "\n".join([line(headers), *(line(r) for r in rows)])


def _esc(text: str) -> str:
    return visible(text.replace("|", "\\|").replace("\n", " "))


def markdown_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(_esc(c) for c in cells) + " |"


def markdown_cells(texts: list[str]) -> list[str]:
    """``_esc`` of every cell of a column: one check for the whole column when no cell has
    anything to escape (the common case)."""
    joined = "".join(texts)
    if "|" not in joined and "\n" not in joined and not has_control(joined):
        return texts
    return [_esc(text) for text in texts]


def markdown(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    out = [markdown_row(headers), "|" + "|".join("---" for _ in headers) + "|"]
    out += [markdown_row(r) for r in rows]
    return "\n".join(out)


def json_array(items: Iterable[Any]) -> Iterator[str]:
    """``to_json(list(items))`` in pieces, one item at a time (the same text)."""
    first = True
    for item in items:
        text = json.dumps(json_safe(item), indent=2, ensure_ascii=False, allow_nan=False)
        text = _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
        yield ("[\n" if first else ",\n") + "  " + text.replace("\n", "\n  ")
        first = False
    yield "[]" if first else "\n]"


def delimited(headers: Sequence[str], rows: Sequence[Sequence[str]], sep: str) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=sep, lineterminator="\n")
    writer.writerow(headers)
    writer.writerows(rows)
    return buf.getvalue().rstrip("\n")
