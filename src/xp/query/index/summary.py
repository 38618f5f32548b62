"""A catalog bucket's run summary: what the index stores about each of its runs, in one blob.

A fresh clone of 100k runs would otherwise read ~800k objects (each run's tip, its
``.xp/run`` tree, ~5 record files) and parse ~400k YAML files before its first ``xp show``.
Each bucket commit written by ``sharing.catalog.publish`` also carries ``.xp-index``
(``SUMMARY_NAME``): a header line, then one JSON array per run with the row
``rows.stored`` makes of its record, so the index reads 256 blobs instead.

A fetched summary is untrusted input, read as strictly as a record: bounded sizes, exact
types, and a line is only used for a run whose commit is the one the bucket's tree lists for
it (anything else is ignored, and that run's record is read as before). The record stays the
truth, but a summary line's values are not compared with it as they are read: ``xp show
--verify`` checks the rows it prints against their records (``Index.verify``), ``xp show
--rebuild`` reads records only, and ``xp show RUN``, ``xp diff`` and ``xp get`` read records
anyway.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from xp.gitstore import catalog
from xp.query.index.rows import Cell, Stored

# the bucket tree entry (a blob beside the runs' gitlinks) and its first line (version 1; a
# reader ignores a summary of another version)
SUMMARY_NAME, HEADER = catalog.SUMMARY_NAME, catalog.SUMMARY_HEADER
MAX_BYTES = catalog.SUMMARY_MAX_BYTES  # a summary blob bigger than this is not read
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
    lines = [line for line in data[len(HEADER) :].split(b"\n") if line]
    rows: list[Any] | None = None
    if all(len(line) <= MAX_LINE for line in lines):
        try:  # one parse for the whole blob; line by line only when something is wrong
            rows = json.loads(b"[" + b",".join(lines) + b"]")
        except (ValueError, RecursionError):
            rows = None
    if rows is None or len(rows) != len(lines):
        rows = [_loads(line) for line in lines]
    seen: set[str] = set()
    schemas: dict[tuple[Any, ...], tuple[str, ...] | None] = {}
    for row in rows:
        item = _parse(row, entries, schemas)
        why = ""
        if item is None:
            why = "a line that is not the row of a run the bucket lists at that commit"
        elif item.run_id in seen:
            why, item = f"run {item.run_id} twice", None
        if item is None:
            out.ignored += 1
            out.why = out.why or why
            continue
        seen.add(item.run_id)
        out.items[item.commit] = item
    return out


def _loads(line: bytes) -> Any:
    if len(line) > MAX_LINE:
        return None
    try:
        return json.loads(line)
    except (ValueError, RecursionError):
        return None


_NONE = type(None)
_OPT_TEXT = frozenset((str, _NONE))
_OPT_FLOAT = frozenset((float, _NONE))
_NUMS = frozenset((int, float, _NONE))
_SCALARS = frozenset((str, int, float, bool, _NONE))
_SCAN = json.JSONDecoder().scan_once  # type: ignore[attr-defined]
_new = tuple.__new__  # Stored(*fields) without NamedTuple's Python-level __new__


def _shown(value: Any, depth: int = 0) -> bool:
    """A display value as ``rows.stored`` makes them: JSON scalars, params' lists."""
    if type(value) in _SCALARS:
        return True
    return type(value) is list and depth < 8 and all(_shown(v, depth + 1) for v in value)


def _keys(keys: Any) -> tuple[str, ...] | None:
    if type(keys) is not list or len(keys) > MAX_KEYS:
        return None
    if not all(type(k) is str and k.startswith(_PREFIXES) for k in keys):
        return None
    return tuple(keys) if len(set(keys)) == len(keys) else None


def _doc(doc: str, count: int) -> bool:
    """``doc`` is a JSON array of ``count`` display values (C scanner: no whitespace around
    it, which ``encode`` never writes; stricter than ``json.loads`` and ~3x cheaper)."""
    try:
        shown, end = _SCAN(doc, 0)
    except (StopIteration, ValueError, RecursionError):
        return False
    if end != len(doc) or type(shown) is not list or len(shown) != count:
        return False
    return set(map(type, shown)) <= _SCALARS or all(map(_shown, shown))


def _parse(
    row: Any, entries: Mapping[str, str], schemas: dict[tuple[Any, ...], tuple[str, ...] | None]
) -> Stored | None:
    """One line's row, checked to be exactly what ``rows.stored`` makes for a run the bucket
    lists at that commit; None if not. (The run id and commit are checked by the lookup:
    the bucket's entries are run ids and shas already.) Checks take slices of the row at
    once: a fresh clone reads 100,000 lines."""
    if type(row) is not list or len(row) != _FIELDS:
        return None
    run_id, commit, name, experiment, status, start, end, duration = row[:8]
    baseline, branch, user, parent, message, source, keys, doc, nums, txts = row[8:]
    if type(run_id) is not str or type(commit) is not str or entries.get(run_id) != commit:
        return None
    if not type(name) is type(experiment) is type(status) is type(doc) is str:
        return None
    if not _OPT_TEXT.issuperset(map(type, row[8:14])):
        return None
    if not _OPT_FLOAT.issuperset(map(type, row[5:8])):
        return None
    if start != start or end != end or duration != duration:  # NaN
        return None
    if type(keys) is not list or type(nums) is not list or type(txts) is not list:
        return None
    try:  # a key set seen before (a tuple holding a non-str never equals one of str)
        checked = schemas[tuple(keys)]
    except KeyError:
        checked = schemas[tuple(keys)] = _keys(keys)
    except TypeError:  # unhashable: not a list of names
        return None
    if checked is None or not len(checked) == len(nums) == len(txts):
        return None
    kinds = set(map(type, nums))
    if not kinds <= _NUMS or not set(map(type, txts)) <= _OPT_TEXT:
        return None
    if float in kinds and any(n != n for n in nums):  # NaN
        return None
    if int in kinds and not all(-_INT64 <= n < _INT64 for n in nums if type(n) is int):
        return None
    if not _doc(doc, len(checked)):
        return None
    cells: list[Cell] = list(zip(checked, nums, txts))  # noqa: B905 (lengths checked above)
    return _new(
        Stored,
        (
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
            checked,
            doc,
            cells,
            parent,
            message,
            source,
        ),
    )
