"""Series streamed through the spill (issue 18) are byte for byte what the in-memory path
writes, whatever the points: steps out of order or repeated, NaN and infinities, integers
beyond 2**53; in memory, spilled to files, or rolled back after a failed commit."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xp.record import spill as spill_module
from xp.record.build import build_record
from xp.record.header import RunHeader
from xp.record.journal import RunState, metric_blocks
from xp.record.model import series_bytes
from xp.record.spill import SeriesSpill

KEYS = ["loss", "acc", "train/loss", "é"]
values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.integers(min_value=2**53 - 3, max_value=2**53 + 3),
)
points = st.lists(
    st.tuples(
        st.sampled_from(KEYS),
        values,
        st.integers(min_value=-(2**63), max_value=2**63 - 1) | st.integers(0, 5),
        st.floats(min_value=0, max_value=4e9, allow_nan=False),
    ),
    max_size=60,
)


def _header(all_series: bool = False) -> RunHeader:
    return RunHeader(id="r1", name="n", start_time=1_700_000_000.0, all_series=all_series)


def _files(state: RunState) -> dict[str, bytes]:
    record = build_record(state, "finished", 1_800_000_000.0, ("a==1",))
    return {
        path: data if isinstance(data, bytes) else b"".join(data.chunks())
        for path, data in record.to_files().items()
    }


@settings(max_examples=150, deadline=None)
@given(
    points=points,
    all_series=st.booleans(),
    spill_at=st.sampled_from([0, 40, 1 << 30]),
    blocks=st.booleans(),
)
def test_streamed_record_is_byte_identical_to_the_in_memory_one(
    points: list[tuple[str, float, int, float]],
    all_series: bool,
    spill_at: int,
    blocks: bool,
) -> None:
    """Points added one by one or as the flusher's blocks (``metric_blocks``, the lines
    spelled once for the journal and the spill)."""
    memory = _files(RunState(header=_header(all_series), points=list(points)))
    old = spill_module.SPILL_BYTES
    spill_module.SPILL_BYTES = spill_at  # 0: every add goes to the files
    with tempfile.TemporaryDirectory() as tmp:
        spill = SeriesSpill(lambda: Path(tmp))
        try:
            for n in range(0, len(points), 7):  # as flushes come: in batches
                batch = points[n : n + 7]
                if blocks:
                    for block in metric_blocks(batch)[1]:
                        spill.add_block(block)
                else:
                    spill.add(batch)
            streamed = _files(RunState(header=_header(all_series), spill=spill))
        finally:
            spill.close()
            spill_module.SPILL_BYTES = old
    assert streamed == memory


def test_each_series_streams_with_its_announced_size(tmp_path: Path) -> None:
    spill = SeriesSpill(lambda: tmp_path)
    pts = [("m", float(i) / 3, i, 1_700_000_000.0 + i) for i in range(50_000)]
    spill.add(pts)
    spill.spill()
    spill.add([("m", math.nan, 7, 1_700_000_000.5)])
    expected = series_bytes([(s, v, math.floor(t * 1000 + 0.001)) for _k, v, s, t in pts])
    expected += b"7\tnan\t1700000000500\n"
    data = b"".join(spill.chunks("m"))
    assert data == expected
    assert spill.size("m") == len(expected)
    step, value, ms = list(spill.points("m"))[-1]
    assert (step, ms) == (7, 1_700_000_000_500)
    assert math.isnan(value)
    assert spill.final("m") == pts[-1][1]  # step 49,999 beats the later step 7


@pytest.mark.parametrize("on_disk", [False, True])
def test_rollback_forgets_what_a_failed_commit_added(tmp_path: Path, on_disk: bool) -> None:
    spill = SeriesSpill(lambda: tmp_path)
    spill.add([("a", 1.0, 0, 1.0), ("a", 2.0, 1, 2.0)])
    if on_disk:
        spill.spill()
    before = {k: b"".join(spill.chunks(k)) for k in spill.names()}
    mark = spill.mark()
    spill.add([("a", 9.0, 5, 3.0), ("b", 1.0, 0, 3.0)])
    if on_disk:
        spill.spill()
    spill.rollback(mark)
    assert spill.names() == ["a"]
    assert {k: b"".join(spill.chunks(k)) for k in spill.names()} == before
    assert (spill.count("a"), spill.final("a")) == (2, 2.0)
    spill.add([("a", 3.0, 2, 4.0)])
    assert b"".join(spill.chunks("a")).endswith(b"2\t3.0\t4000\n")
    spill.close()
    assert list(tmp_path.iterdir()) == []
