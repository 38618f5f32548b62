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
from xp.record.columns import Columns, column_block
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


def _columns(points: list[tuple[str, float, int, float]]) -> Columns:
    made = column_block(points)
    assert made is not None
    return made[1]


@settings(max_examples=100, deadline=None)
@given(points=points, spill_at=st.sampled_from([0, 40, 1 << 30]), size=st.integers(1, 9))
def test_binary_blocks_render_the_same_bytes(
    points: list[tuple[str, float, int, float]], spill_at: int, size: int
) -> None:
    """Points added as binary blocks (a big flush's C line), mixed with text and held in
    memory or in the blocks file, give the in-memory record byte for byte."""
    memory = _files(RunState(header=_header(), points=list(points)))
    old = spill_module.SPILL_BYTES
    spill_module.SPILL_BYTES = spill_at
    with tempfile.TemporaryDirectory() as tmp:
        spill = SeriesSpill(lambda: Path(tmp))
        try:
            for i, n in enumerate(range(0, len(points), size)):
                batch = points[n : n + size]
                if i % 3 == 2:
                    spill.add(batch)
                else:
                    spill.add_columns(_columns(batch))
            streamed = _files(RunState(header=_header(), spill=spill))
        finally:
            spill.close()
            spill_module.SPILL_BYTES = old
    assert streamed == memory


@pytest.mark.parametrize("stored", [1 << 14, 1 << 30])
@pytest.mark.parametrize("helper", ["works", "fails", "embedded"])
def test_a_big_spill_renders_in_a_helper_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, helper: str, stored: int
) -> None:
    """Past PARALLEL_POINTS a helper process renders blocks: those stored in the blocks
    file, given to it as they are stored (a live run), or the later half of many blocks
    rendered at once (recovery, ``stored`` large). Its output is exactly what this process
    would have made; when it cannot run (no Python where it looks, or a program embedding
    Python) this process renders it all."""
    monkeypatch.setattr(spill_module, "PARALLEL_POINTS", 1_000)
    monkeypatch.setattr(spill_module, "SPILL_BYTES", stored)
    monkeypatch.setattr(spill_module.os, "cpu_count", lambda: 2)
    if helper == "fails":
        monkeypatch.setattr(spill_module.sys, "executable", str(tmp_path / "python-gone"))
    if helper == "embedded":  # a program embedding Python: never run with `-m`
        monkeypatch.setattr(spill_module.sys, "executable", "/usr/bin/true")
    results: list[object] = []
    result = spill_module._Helper.finish

    def recorded(self: spill_module._Helper) -> object:
        results.append(result(self))
        return results[-1]

    monkeypatch.setattr(spill_module._Helper, "finish", recorded)
    pts = [
        (f"m{i % 3}", i / 7 if i % 5 else 2**60 + i, i // 3, 1_795_000_000 + i / 1000)
        for i in range(30_000)
    ]
    spill = SeriesSpill(lambda: tmp_path / "spill")
    (tmp_path / "spill").mkdir()
    spill.add([("m1", 0.5, -1, 1_700_000_000.0)])  # text before the blocks stays first
    for n in range(0, 20_000, 2_000):
        spill.add_columns(_columns(pts[n : n + 2_000]))
    spill.add(pts[20_000:25_000])  # text after them renders them first (in order)
    spill.add_columns(_columns(pts[25_000:27_500]))
    spill.add_columns(_columns(pts[27_500:]))
    want = [("m1", 0.5, -1, 1_700_000_000.0), *pts]
    assert len(spill) == len(want)
    memory = _files(RunState(header=_header(), points=want))
    assert _files(RunState(header=_header(), spill=spill)) == memory
    assert not list((tmp_path / "spill").glob("*/render-*"))  # the helper's files are gone
    if helper == "works":
        assert len(results) == 2
        assert all(r is not None for r in results)
    else:
        assert results == []  # never started
    spill.close()


def test_rollback_drops_blocks_added_after_the_mark(tmp_path: Path) -> None:
    spill = SeriesSpill(lambda: tmp_path)
    spill.add_columns(_columns([("a", 1.0, 0, 1.0), ("a", 2.0, 1, 2.0)]))
    mark = spill.mark()
    spill.add_columns(_columns([("a", 9.0, 5, 3.0), ("b", 1.0, 0, 3.0)]))
    spill.spill()
    spill.rollback(mark)
    assert spill.names() == ["a"]
    assert b"".join(spill.chunks("a")).endswith(b"1\t2.0\t2000\n")
    assert (spill.count("a"), spill.final("a")) == (2, 2.0)
    spill.close()


def test_a_render_that_fails_half_way_leaves_every_block_pending(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rendering is all or none: a failure after some blocks (here an error on the third;
    in life a full disk) adds none of their lines, so the next try adds each point once."""
    from xp.record import render

    spill = SeriesSpill(lambda: tmp_path)
    pts = [(f"m{i % 2}", i / 3, i, 1_795_000_000 + i) for i in range(300)]
    spill.add(pts[:10])
    for n in range(10, 300, 50):
        spill.add_columns(_columns(pts[n : n + 50]))
    real = render.render
    calls: list[int] = []

    def failing(block: Columns) -> object:
        calls.append(block.count)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        return real(block)

    monkeypatch.setattr(render, "render", failing)
    with pytest.raises(spill_module.StorageError, match="free disk space"):
        spill.names()
    assert len(spill) == 300
    monkeypatch.setattr(render, "render", real)
    memory = _files(RunState(header=_header(), points=list(pts)))
    assert _files(RunState(header=_header(), spill=spill)) == memory
    spill.close()
