"""Tables for the terminal, Markdown, CSV/TSV and JSON: the output side of show and diff.

The library returns data; these functions only lay it out. A terminal table never wraps:
long cells are cut with an ellipsis and columns that do not fit are dropped by priority,
and the caller says which were dropped, so 50 params stay readable in 100 columns.

``echo`` is the CLI's one way out: run names, tags, paths and messages come from records
other people wrote, and a terminal obeys escape sequences (an OSC can set the window title,
write the clipboard, hide text or make a fake link). So every control character (C0 but
newline and tab, DEL, C1, bidirectional overrides, lone surrogates) is shown as a visible
escape such as ``\\x1b``. JSON escapes them the JSON way (exact once parsed); CSV/TSV stay
byte-exact when piped and are escaped only on a terminal.
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
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import click

from xp.record import values

MAX_CELL = 24  # characters of one cell in a terminal table
GAP = "  "

# What a terminal may act on: C0 controls but newline and tab, DEL and C1 (an 8-bit CSI/OSC
# opens a sequence on some terminals), bidirectional overrides (text that reads other than
# it is), and lone surrogates (not encodable: they would end the command with a traceback).
_BIDI = r"\u200e\u200f\u202a-\u202e\u2066-\u2069"
_CONTROL = re.compile(rf"[\x00-\x08\x0b-\x1f\x7f-\x9f{_BIDI}\ud800-\udfff]")
_JSON_UNSAFE = re.compile(rf"[\x7f-\x9f{_BIDI}\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: str) -> str:
    """``text`` with every control character shown as an escape (``\\x1b``), never obeyed."""
    return _CONTROL.sub(_escape, text)


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def echo(message: str = "", *, err: bool = False, nl: bool = True, exact: bool = False) -> None:
    """Print for the CLI (click.echo), control characters made visible; with ``exact``
    (CSV/TSV, already-safe JSON) only when the stream is a terminal."""
    if not exact or _is_terminal(sys.stderr if err else sys.stdout):
        message = visible(message)
    click.echo(message, err=err, nl=nl, color=True)  # color: click would cut CSI sequences


def number(value: Any, precision: int | None) -> str:
    """A value for humans: floats to ``precision`` significant digits, the rest as text."""
    if value is None:
        return "-"
    if isinstance(value, float) and math.isfinite(value) and precision is not None:
        return f"{value:.{precision}g}"
    return values.text(value)


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


json_safe = values.json_safe  # strict JSON, shared with the UI's documents


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
    text = visible(text.replace("\n", " ").replace("\t", " "))
    return text if cells(text) <= width else _head(text, width - 1) + "…"


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


def fit(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    width: int,
    drop_order: Sequence[int],
) -> Fitted:
    """Drop columns (indexes in ``drop_order`` first to last) until the table fits."""
    widths = [
        max([cells(h)] + [cells(r[i]) for r in rows]) if rows else cells(h)
        for i, h in enumerate(headers)
    ]
    keep = [True] * len(headers)

    def total() -> int:
        kept = [w for w, k in zip(widths, keep, strict=True) if k]
        return sum(kept) + len(GAP) * max(0, len(kept) - 1)

    for i in drop_order:
        if total() <= width:
            break
        keep[i] = False
    idx = [i for i, k in enumerate(keep) if k]
    return Fitted(
        [headers[i] for i in idx],
        [[r[i] for i in idx] for r in rows],
        [headers[i] for i, k in enumerate(keep) if not k],
    )


def _is_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return text in ("-", "nan", "inf", "-inf")
    return True


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Plain text, columns separated by two spaces; numeric columns right-aligned."""
    if not headers:
        return ""
    headers = [visible(h) for h in headers]
    rows = [[visible(c) for c in r] for r in rows]
    widths = [
        max([cells(h)] + [cells(r[i]) for r in rows]) if rows else cells(h)
        for i, h in enumerate(headers)
    ]
    numeric = [
        bool(rows) and all(_is_numeric(r[i]) for r in rows) and any(r[i] != "-" for r in rows)
        for i in range(len(headers))
    ]

    def line(texts: Sequence[str]) -> str:
        parts = [pad(c, w, right=num) for c, w, num in zip(texts, widths, numeric, strict=True)]
        return GAP.join(parts).rstrip()

    return "\n".join([line(headers), *(line(r) for r in rows)])


def markdown(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    def esc(text: str) -> str:
        return visible(text.replace("|", "\\|").replace("\n", " "))

    out = ["| " + " | ".join(esc(h) for h in headers) + " |"]
    out.append("|" + "|".join("---" for _ in headers) + "|")
    out += ["| " + " | ".join(esc(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def delimited(headers: Sequence[str], rows: Sequence[Sequence[str]], sep: str) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=sep, lineterminator="\n")
    writer.writerow(headers)
    writer.writerows(rows)
    return buf.getvalue().rstrip("\n")
