"""A catalog bucket's run summary: what the index stores about each of its runs, in one blob.

A fresh clone of 100k runs would otherwise read ~800k objects (each run's tip, its
``.xp/run`` tree, ~5 record files) and parse ~400k YAML files before its first ``xp show``.
Each bucket commit written by ``sharing.catalog.publish`` also carries ``.xp-index``
(``SUMMARY_NAME``): a header line, then one JSON array per run with the row
``rows.stored`` makes of its record, so the index reads 256 blobs instead.

A fetched summary is untrusted input, read as strictly as a record: bounded sizes, exact
types, and a line is only used for a run whose commit is the one the bucket's tree lists for
it (anything else is ignored, and that run's record is read as before). The record stays the
truth: ``xp show`` checks the rows it prints against their records (``Index.verify``), and
``xp show RUN``, ``xp diff`` and ``xp get`` read records anyway.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from xp import format as fmt
from xp.query.index.rows import Cell, Stored

SUMMARY_NAME = ".xp-index"  # the bucket tree entry (a blob beside the runs' gitlinks)
HEADER = b"xp-run-summary 1\n"  # version 1; a reader ignores a summary of another version
MAX_BYTES = 64 << 20  # a summary blob bigger than this is not read (100k runs: ~40 MB over 256)
MAX_LINE = 1 << 20  # one run's line
MAX_KEYS = 10_000  # params + metrics + tags of one run
_FIELDS = 18
_PREFIXES = ("params.", "metrics.", "tags.")
_HEX = frozenset("0123456789abcdef")
_INT64 = 2**63


@dataclass
class Decoded:
    """The runs a summary describes (commit -> stored row) and what was ignored."""

    items: dict[str, Stored] = field(default_factory=dict)
    ignored: int = 0  # lines that were bad, or named a run/commit the bucket does not list
    why: str = ""  # the first reason, for the one warning line


def _line(item: Stored) -> bytes:
    nums = [num for _key, num, _txt in item.cells]
    txts = [txt for _key, _num, txt in item.cells]
    row = [
        item.run_id,
        item.commit,
        item.name,
        item.experiment,
        item.status,
        item.start,
        item.end,
        item.duration,
        item.baseline,
        item.branch,
        item.user,
        item.parent,
        item.message,
        item.source,
        list(item.keys),
        item.doc,
        nums,
        txts,
    ]
    return json.dumps(row, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def encode(items: Iterable[Stored]) -> bytes:
    """The summary blob of ``items`` (rows as ``rows.stored`` makes them, sorted by run id
    so the same runs give the same bytes). Rows that cannot be summarised exactly (error
    rows, a key set whose cells do not line up, a NaN) are left out: readers read them."""
    lines = [HEADER]
    for item in sorted(items, key=lambda i: i.run_id):
        if item.error is not None or len(item.cells) != len(item.keys):
            continue
        if any(cell[0] != key for cell, key in zip(item.cells, item.keys, strict=True)):
            continue
        try:
            line = _line(item)
        except (TypeError, ValueError):
            continue
        if b"NaN" in line and _has_nan(item):
            continue
        if len(line) < MAX_LINE:
            lines.append(line + b"\n")
    return b"".join(lines)


def _has_nan(item: Stored) -> bool:
    numbers = [item.start, item.end, item.duration, *(c[1] for c in item.cells)]
    return any(isinstance(n, float) and math.isnan(n) for n in numbers)


def decode(data: bytes, entries: Mapping[str, str]) -> Decoded:
    """The rows of ``data`` for runs ``entries`` (run id -> commit, the bucket's gitlinks)
    lists with that very commit. A summary of another version is ignored silently (a newer
    writer's: the records are read); whatever else is wrong is counted in ``ignored``."""
    out = Decoded()
    if not data.startswith(HEADER):
        if not data.startswith(b"xp-run-summary "):
            out.ignored, out.why = 1, "not a run summary"
        return out
    if len(data) > MAX_BYTES:
        out.ignored, out.why = 1, f"{len(data)} bytes, over {MAX_BYTES}"
        return out
    seen: set[str] = set()
    for raw in data[len(HEADER) :].split(b"\n"):
        if not raw:
            continue
        why = ""
        item = None
        if len(raw) > MAX_LINE:
            why = f"a line of {len(raw)} bytes"
        else:
            try:
                item = _parse(json.loads(raw))
            except (ValueError, RecursionError, UnicodeDecodeError):
                item = None
            if item is None:
                why = "a line that is not a run's row"
        if item is not None:
            if entries.get(item.run_id) != item.commit:
                why, item = (
                    f"run {item.run_id} at {item.commit[:12]}, which the bucket does not list",
                    None,
                )
            elif item.run_id in seen:
                why, item = f"run {item.run_id} twice", None
        if item is None:
            out.ignored += 1
            out.why = out.why or why
            continue
        seen.add(item.run_id)
        out.items[item.commit] = item
    return out


def _text(value: Any) -> bool:
    return value is None or type(value) is str


def _number(value: Any) -> bool:
    kind = type(value)
    if kind is float:
        return not math.isnan(value)
    return value is None or (kind is int and -_INT64 <= value < _INT64)


def _shown(value: Any, depth: int = 0) -> bool:
    """A display value as ``rows.stored`` makes them: JSON scalars, params' lists."""
    if value is None or type(value) in (str, int, float, bool):
        return True
    return type(value) is list and depth < 8 and all(_shown(v, depth + 1) for v in value)


def _parse(row: Any) -> Stored | None:
    """One line's row, checked to be exactly what ``rows.stored`` makes; None if not."""
    if type(row) is not list or len(row) != _FIELDS:
        return None
    run_id, commit, name, experiment, status, start, end, duration = row[:8]
    baseline, branch, user, parent, message, source, keys, doc, nums, txts = row[8:]
    if type(run_id) is not str or not fmt.is_run_id(run_id):
        return None
    if type(commit) is not str or len(commit) != 40 or not _HEX.issuperset(commit):
        return None
    if not all(type(v) is str for v in (name, experiment, status, doc)):
        return None
    if not all(_text(v) for v in (baseline, branch, user, parent, message, source)):
        return None
    if not all(v is None or (type(v) is float and not math.isnan(v)) for v in (start, end)):
        return None
    if not (duration is None or (type(duration) is float and not math.isnan(duration))):
        return None
    if type(keys) is not list or type(nums) is not list or type(txts) is not list:
        return None
    if not len(keys) == len(nums) == len(txts) <= MAX_KEYS:
        return None
    if not all(type(k) is str and k.startswith(_PREFIXES) for k in keys) or len(set(keys)) != len(
        keys
    ):
        return None
    if not all(_number(n) for n in nums) or not all(_text(t) for t in txts):
        return None
    shown = json.loads(doc)
    if type(shown) is not list or len(shown) != len(keys) or not all(map(_shown, shown)):
        return None
    cells: list[Cell] = list(zip(keys, nums, txts, strict=True))
    return Stored(
        commit,
        run_id,
        name,
        experiment,
        status,
        start,
        end,
        duration,
        baseline,
        branch,
        user,
        None,
        tuple(keys),
        doc,
        cells,
        parent,
        message,
        source,
    )
