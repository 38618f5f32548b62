"""Big committed series read as git streams them (issue 18): a 1M-point metric (~40 MB of
text) is parsed by pandas' C reader ~1 MB at a time into arrays sized once, so reading it
holds the arrays, not the file, and ``xp diff`` summarises it holding one piece.

Whatever is not the plain form xp writes (another header, a blank line, a value that is not
a number) makes these readers answer None; the caller then parses the file line by line,
which names the exact fault.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, cast

from xp import format as fmt
from xp.gitstore.catfile import open_blob
from xp.gitstore.repo import GitRepo
from xp.gitstore.trees import FolderFiles

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from xp.query.diff import SeriesSummary
    from xp.record.model import SeriesOpener, SeriesStream

PIECE = 1 << 20  # bytes of text parsed at a time (pandas costs ~1 ms a call)
_HEADER = fmt.SERIES_HEADER.encode()
_MIN_LINE = 6  # "0\t0\t0\n": the most rows a file of N bytes can hold is N // 6


class NotPlain(Exception):
    """The file is not in the form xp writes: parse it line by line instead."""


def opener(repo: GitRepo, files: FolderFiles, least: int) -> SeriesOpener:
    """Streams a file of a record folder through ``git cat-file`` when it has ``least``
    bytes or more; a smaller one opens as None (its reader reads it whole, cheaper). The
    sizes of the file's folder come from one ``git cat-file --batch-check``, on first use."""
    import contextlib

    from xp.gitstore.catfile import sizes

    known: dict[str, int] = {}
    listed: set[str] = set()

    def open_file(path: str) -> SeriesStream:
        sha = files.locate(path)
        folder = path.rpartition("/")[0]
        if sha is not None and sha not in known and folder not in listed:
            listed.add(folder)
            known.update(sizes(repo, list(files.listing(folder).values())))
        if sha is None or known.get(sha, 0) < least:
            return contextlib.nullcontext(None)
        return open_blob(repo, sha)

    return open_file


def pieces(chunks: Iterator[bytes]) -> Iterator[tuple[bytes, pd.DataFrame]]:
    """(text, frame) for each piece of whole lines of a series file after its header; raises
    ``NotPlain`` on anything but xp's own form."""
    buf = b""
    header = False
    for chunk in chunks:
        buf += chunk
        if not header:
            if len(buf) < len(_HEADER) and _HEADER.startswith(buf):
                continue
            if not buf.startswith(_HEADER):
                raise NotPlain
            buf, header = buf[len(_HEADER) :], True
        if len(buf) < PIECE:
            continue
        cut = buf.rfind(b"\n") + 1
        if cut:
            yield buf[:cut], _parse(buf[:cut])
            buf = buf[cut:]
    if not header:
        raise NotPlain
    if buf:
        if not buf.endswith(b"\n"):
            buf += b"\n"  # a last line without its newline is still a line
        yield buf, _parse(buf)


def _parse(text: bytes) -> pd.DataFrame:
    import pandas as pd

    # exact round trips of doubles: pandas 3's default, an option before it
    exact = {"float_precision": "round_trip"} if int(pd.__version__.split(".")[0]) < 3 else {}
    read_csv: Any = pd.read_csv  # typed per pandas version; the options above vary with it
    try:
        frame = read_csv(
            io.BytesIO(text),
            sep="\t",
            header=None,
            names=["step", "value", "timestamp"],
            engine="c",
            dtype={"step": "int64", "timestamp": "int64"},
            keep_default_na=False,
            na_values=["nan"],
            **exact,
        )
    except (ValueError, OverflowError, TypeError, pd.errors.ParserError):
        raise NotPlain from None
    # a blank line (skipped by the reader) or a field too many or too few: not xp's lines
    lines = len(frame)
    if frame["value"].dtype.kind not in "if" or text.count(b"\n") != lines:
        raise NotPlain
    if text.count(b"\t") != 2 * lines:
        raise NotPlain
    return cast("pd.DataFrame", frame)


def read_frame(opened: tuple[int, Iterator[bytes]], times: bool = True) -> pd.DataFrame | None:
    """The step / value / timestamp frame of a streamed series file, or None when it is not
    the plain form. Each column is allocated once for the most rows the file's size allows
    (untouched pages cost no memory) and cut to the rows read."""
    import numpy as np
    import pandas as pd

    size, chunks = opened
    cap = size // _MIN_LINE + 1
    steps = np.empty(cap, dtype=np.int64)
    stamps = np.empty(cap, dtype=np.int64)
    values: np.ndarray[Any, Any] | None = None
    n = 0
    try:
        for _text, frame in pieces(chunks):
            k = len(frame)
            steps[n : n + k] = frame["step"].to_numpy()
            stamps[n : n + k] = frame["timestamp"].to_numpy()
            got = frame["value"].to_numpy()
            if values is None:
                values = np.empty(cap, dtype=got.dtype)
            elif got.dtype != values.dtype and values.dtype.kind == "i":
                wider = np.empty(cap, dtype=np.float64)  # a float after integers: all floats
                wider[:n] = values[:n]
                values = wider
            values[n : n + k] = got
            n += k
    except NotPlain:
        return None
    if values is None or not n:
        return None
    columns = {"step": _cut(steps, n), "value": _cut(values, n), "timestamp": _cut(stamps, n)}
    out = pd.DataFrame(columns, copy=False)
    if times:
        out["timestamp"] = pd.to_datetime(out["timestamp"], unit="ms", utc=True, errors="coerce")
    return cast("pd.DataFrame", out)


def _cut(array: np.ndarray[Any, Any], n: int) -> np.ndarray[Any, Any]:
    """``array[:n]`` owning its memory, shrunk in place where the allocator allows."""
    try:
        array.resize(n, refcheck=False)
    except ValueError:
        return cast("np.ndarray[Any, Any]", array[:n].copy())
    return array


def summarize(key: str, opened: tuple[int, Iterator[bytes]]) -> SeriesSummary | None:
    """``diff.summarize`` of a streamed series file, piece by piece (one piece in memory), or
    None when it is not the plain form. Values shown are read from their own lines, so an
    integer stays an integer, exactly; ties go to the first point, as Python's min and max."""
    from xp.query.diff import SeriesSummary, lower_is_better, piece_summary

    goal = "min" if lower_is_better(key) else "max"
    n = 0
    first_step: int | None = None
    top: int | None = None
    last: Any = None
    lo: tuple[Any, int] | None = None
    hi: tuple[Any, int] | None = None
    try:
        for text, frame in pieces(opened[1]):
            part = piece_summary(text, frame)
            if part is None:
                continue
            n += part.points
            if first_step is None:
                first_step = part.first_step
            if top is None or part.top_step >= top:
                top, last = part.top_step, part.last
            if part.lo is not None and (lo is None or part.lo[0] < lo[0]):
                lo = part.lo
            if part.hi is not None and (hi is None or part.hi[0] > hi[0]):
                hi = part.hi
    except NotPlain:
        return None
    if not n or first_step is None:
        return None
    if lo is None or hi is None:
        nan = math.nan
        return SeriesSummary(n, last, nan, nan, nan, first_step, goal)
    best = lo if goal == "min" else hi
    return SeriesSummary(n, last, lo[0], hi[0], best[0], best[1], goal)
