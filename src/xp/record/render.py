"""Series text from binary ``C`` blocks (journal version 4), made when a run is recorded or
by a helper process while it logs, never by the logging process's GIL (issue 18).

Each metric's points become its lines of ``series/<key>.tsv`` (docs/format.md section 4)
exactly as a ``B`` line spells them: ``{step}\\t{value!r}\\t{ms}``, the ms cut as ``to_ms``
cuts them. numpy (there with pandas) splits a block by metric and makes the ms; the float
spelling, which nothing does faster than ``repr``, runs in a helper process
(``python -m xp.record.render <blocks file> <folder>``) for a big run: it is told the offsets
of the blocks the spill stores, renders each into one file per metric as they come, and
on ``end`` says what it made. It is given files and offsets, never code: it runs xp, not the
user's script (which ``multiprocessing``'s spawn would import again).
"""

from __future__ import annotations

import json
import os
import select
import struct
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from xp.record.columns import Columns, key_width

Rendered = tuple[str, str, int, int, int, Any]
"""One metric's points of one block as series lines: key, the lines (each ending in a
newline), count, first step, and MLflow's final step and value among them."""

_FRAME = struct.Struct("<Q")  # a stored block: the length of its JSON head, the head, the data


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


def frame(block: Columns) -> bytes:
    """What precedes ``block.data`` in the spill's blocks file: its head's length and head."""
    head = json.dumps([list(block.keys), block.count, [list(p) for p in block.ints]]).encode()
    return _FRAME.pack(len(head)) + head


def read_block(fh: IO[bytes], offset: int) -> Columns:
    """The block stored at ``offset`` of the spill's blocks file."""
    fh.seek(offset)
    (size,) = _FRAME.unpack(fh.read(_FRAME.size))
    keys, count, ints = json.loads(fh.read(size))
    want = count * (key_width(len(keys)) + 24)
    data = fh.read(want)
    if len(data) != want:
        raise OSError("the spilled metric blocks lost data on disk")
    return Columns(tuple(keys), count, tuple((p, v) for p, v in ints), data)


def _offsets(parent: int) -> Iterator[int]:
    """The offsets the spill sends on stdin, until ``end`` (or its process is gone: a
    SIGKILLed run leaves nothing to render for; its journal is what recovery reads)."""
    stdin = sys.stdin.buffer.fileno()
    rest = b""
    while True:
        ready, _, _ = select.select([stdin], [], [], 1.0)
        if not ready:
            if os.getppid() != parent:
                return
            continue
        chunk = os.read(stdin, 1 << 16)
        if not chunk:
            return
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        for line in lines:
            if line == b"end":
                return
            yield int(line)


def _helper(blocks: Path, out: Path, parent: int) -> dict[str, Any]:
    """Render the blocks whose offsets come on stdin into one file per metric under ``out``."""
    found: dict[str, list[Any]] = {}  # key -> [file, bytes, count, first, final step, final]
    handles: dict[str, IO[bytes]] = {}
    try:
        with open(blocks, "rb") as fh:
            for offset in _offsets(parent):
                for key, text, n, first, final_step, final in render(read_block(fh, offset)):
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
    json.dump(_helper(Path(sys.argv[1]), Path(sys.argv[2]), os.getppid()), sys.stdout)
