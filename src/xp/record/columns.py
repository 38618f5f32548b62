"""Binary blocks of metric points: a journal's ``C`` lines (version 4, docs/format.md
section 7) and what the spill holds of them until they are rendered (record/render.py)."""

from __future__ import annotations

import base64
import json
import math
import sys
import zlib
from array import array
from dataclasses import dataclass
from operator import itemgetter
from struct import pack
from typing import Any


@dataclass(frozen=True)
class Columns:
    """A big flush's points of every metric in binary (a ``C`` line, journal version 4).

    ``data`` holds ``count`` points as four little-endian columns back to back: the key (an
    index into ``keys``, of ``key_width(len(keys))`` bytes), the step (int64), the value
    (float64) and the time in seconds (float64); ``ints`` the points whose value is an int,
    as ``(position, value)`` (the value column holds 0.0 there). No number is spelled while
    the run logs (a float's repr was most of a flush, issue 18): the series text is made once,
    when the run is recorded (record/render.py), exactly as a ``B`` line would have held it."""

    keys: tuple[str, ...]
    count: int
    ints: tuple[tuple[int, int], ...]
    data: bytes


def key_width(keys: int) -> int:
    """Bytes per point of a ``C`` block's key column, for a block of ``keys`` metrics."""
    return 1 if keys <= 1 << 8 else 2 if keys <= 1 << 16 else 4


_KEY_CODES = {1: "B", 2: "H", 4: "I"}
_SECONDS = 1e12  # |time| bound: years 1 to 9999 lie well within, and its ms fit an int64
_SWAP = sys.byteorder != "little"  # the columns are little-endian whatever the machine


def column_block(points: list[tuple[str, Any, int, float]]) -> tuple[bytes, Columns] | None:
    """The sealed ``C`` line of points and the same points as ``Columns``, for the spill;
    None when a value is neither a float nor an int (never from ``log_metric``: such points
    go as ``B`` lines). Columns are taken whole by C loops: no Python code runs per point
    unless some values are ints."""
    keys_col = list(map(itemgetter(0), points))
    values: list[Any] = list(map(itemgetter(1), points))
    table: dict[str, int] = dict.fromkeys(keys_col, 0)
    keys = tuple(table)
    for i, key in enumerate(keys):
        table[key] = i
    kinds = set(map(type, values))
    ints: tuple[tuple[int, int], ...] = ()
    if kinds - {float}:
        if kinds - {float, int}:
            return None
        ints = tuple((i, v) for i, v in enumerate(values) if type(v) is int)
        values = [0.0 if type(v) is int else v for v in values]
    n = len(points)
    data = b"".join(
        [  # struct, not array: faster from an iterator, and little-endian on any machine
            pack(f"<{n}{_KEY_CODES[key_width(len(keys))]}", *map(table.__getitem__, keys_col)),
            pack(f"<{n}q", *map(itemgetter(2), points)),
            pack(f"<{n}d", *values),
            pack(f"<{n}d", *map(itemgetter(3), points)),
        ]
    )
    names = json.dumps(keys, ensure_ascii=False)  # JSON: a tab or newline in a key is escaped
    head = f"C\t{n}\t{names}\t{json.dumps(ints) if ints else '[]'}\t"
    first = head.encode("utf-8", "backslashreplace")
    payload = base64.b64encode(data)
    crc = zlib.crc32(payload, zlib.crc32(first))
    sealed = b"".join([first, payload, b"\t%08x\n" % crc])  # one copy of the payload
    return sealed, Columns(keys, n, ints, data)


def parse_columns(rest: str) -> Columns:
    """A ``C`` line's fields (after its kind); ValueError when they do not agree."""
    count_text, keys_text, ints_text, payload = rest.split("\t")
    count = int(count_text)
    keys = json.loads(keys_text)
    ints = json.loads(ints_text)
    if (
        count < 1
        or not isinstance(keys, list)
        or not keys
        or not all(type(k) is str for k in keys)
        or not isinstance(ints, list)
    ):
        raise ValueError("a C line's fields do not agree")
    pairs = []
    for pair in ints:
        if (
            not isinstance(pair, list)
            or len(pair) != 2
            or type(pair[0]) is not int
            or type(pair[1]) is not int
            or not 0 <= pair[0] < count
        ):
            raise ValueError("a C line's int values do not agree with its points")
        pairs.append((pair[0], pair[1]))
    data = base64.b64decode(payload, validate=True)
    width = key_width(len(keys))
    if len(data) != count * (width + 24):
        raise ValueError("a C line's point count does not match its columns")
    index = array(_KEY_CODES[width], data[: count * width])
    if _SWAP:
        index.byteswap()
    if max(index) >= len(keys):
        raise ValueError("a C line names a key it does not have")
    times = array("d", data[count * (width + 16) :])
    if _SWAP:
        times.byteswap()
    if not all(map(math.isfinite, times)) or min(times) < -_SECONDS or max(times) > _SECONDS:
        raise ValueError("a C line holds a time no log call could give")
    return Columns(tuple(keys), count, tuple(pairs), data)


def column_points(block: Columns) -> list[tuple[str, float | int, int, float]]:
    """A ``C`` block's points as ``(key, value, step, seconds)``, in logging order."""
    n = block.count
    width = key_width(len(block.keys))
    data = block.data
    start = n * width
    index = array(_KEY_CODES[width], data[:start])
    steps = array("q", data[start : start + 8 * n])
    values_col = array("d", data[start + 8 * n : start + 16 * n])
    times = array("d", data[start + 16 * n :])
    if _SWAP:
        for column in (index, steps, values_col, times):
            column.byteswap()
    values: list[float | int] = list(values_col)
    for position, value in block.ints:
        values[position] = value
    keys = list(map(block.keys.__getitem__, index))
    return list(zip(keys, values, steps.tolist(), times.tolist(), strict=True))
