"""Series text from binary ``C`` blocks (journal version 4), made once, when a run is
recorded, instead of while it logs (issue 18).

Each metric's points become its lines of ``series/<key>.tsv`` (docs/format.md section 4)
exactly as a ``B`` line spells them: ``{step}\\t{value!r}\\t{ms}``, the ms cut as ``to_ms``
cuts them. numpy (there with pandas) splits a block by metric and makes the ms; the float
spelling, which no library does faster than ``repr``, runs in this process and, for a big
run, in a helper process (``python -m xp.record.render``) that takes the later half of the
blocks, so both cores spell. The helper is given files and offsets, never code: it runs xp,
not the user's script (which ``multiprocessing``'s spawn would import again).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from xp.record.columns import Columns, key_width

Rendered = tuple[str, str, int, int, int, Any]
"""One metric's points of one block as series lines: key, the lines (each ending in a
newline), count, first step, and MLflow's final step and value among them."""


def render(block: Columns) -> Iterator[Rendered]:
    """The series lines of every metric of ``block``, metric by metric (in the order of
    their first point in the block)."""
    import numpy as np

    n = block.count
    width = key_width(len(block.keys))
    data = block.data
    index = np.frombuffer(data, dtype=f"<u{width}", count=n)
    steps = np.frombuffer(data, dtype="<i8", count=n, offset=n * width)
    values = np.frombuffer(data, dtype="<f8", count=n, offset=n * (width + 8))
    times = np.frombuffer(data, dtype="<f8", count=n, offset=n * (width + 16))
    ms = np.floor(times * 1000.0 + 0.001).astype(np.int64)  # to_ms, as the B line had it
    ints: dict[int, list[tuple[int, int]]] = {}
    for position, value in block.ints:
        ints.setdefault(int(index[position]), []).append((position, value))
    single = len(block.keys) == 1
    for k, key in enumerate(block.keys):
        if single:
            where = None
            s, v, m = steps.tolist(), values.tolist(), ms.tolist()
        else:
            where = np.flatnonzero(index == k)
            if not len(where):
                continue  # a key no point names (never written by xp)
            s, v, m = steps[where].tolist(), values[where].tolist(), ms[where].tolist()
        for position, value in ints.get(k, ()):
            v[position if where is None else int(np.searchsorted(where, position))] = value
        ends = dict.fromkeys(m, "")  # a tight loop logs ~1,000 points a ms: spelled once
        for t in ends:
            ends[t] = f"\t{t}\n"
        tails = map(ends.__getitem__, m)
        text = "".join([f"{a}\t{b!r}{c}" for a, b, c in zip(s, v, tails, strict=True)])
        top = max(s)
        last = len(s) - 1 - s[::-1].index(top)  # the last point logged at the highest step
        yield key, text, len(s), s[0], top, v[last]


def read_block(fh: Any, offset: int, block: Columns) -> Columns:
    """``block`` with its data read back from the spill's blocks file at ``offset``."""
    size = block.count * (key_width(len(block.keys)) + 24)
    fh.seek(offset)
    data = fh.read(size)
    if len(data) != size:
        raise OSError("the spilled metric blocks lost data on disk")
    return Columns(block.keys, block.count, block.ints, data)


def _helper(order: dict[str, Any]) -> dict[str, Any]:
    """Render the blocks ``order`` names into one file per metric under ``order["out"]``."""
    out = Path(order["out"])
    found: dict[str, list[Any]] = {}  # key -> [file, bytes, count, first, final step, final]
    handles: dict[str, Any] = {}
    try:
        with open(order["file"], "rb") as fh:
            for offset, count, keys, ints in order["blocks"]:
                block = read_block(
                    fh, offset, Columns(tuple(keys), count, tuple(map(tuple, ints)), b"")
                )
                for key, text, n, first, final_step, final in render(block):
                    got = found.get(key)
                    if got is None:
                        name = str(len(found))
                        got = found[key] = [name, 0, 0, first, final_step, final]
                        handles[key] = open(out / name, "wb")  # noqa: SIM115 - closed below
                    data = text.encode("ascii")
                    handles[key].write(data)
                    got[1] += len(data)
                    got[2] += n
                    if final_step >= got[4]:
                        got[4], got[5] = final_step, final
    finally:
        for handle in handles.values():
            handle.close()
    return {"series": [[key, *got[:5], repr(got[5])] for key, got in found.items()]}


if __name__ == "__main__":
    json.dump(_helper(json.load(sys.stdin)), sys.stdout)
