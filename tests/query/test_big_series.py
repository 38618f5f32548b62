"""A committed series is read alone and parsed in C (issue 18): ``RunView.series`` and
``xp diff``'s summaries give exactly what the line-by-line parser gives, for any points."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

import xp
from xp.query.diff import _summarize_file, summarize
from xp.query.resolve import series_frame
from xp.record.model import LazySeries, parse_series, series_bytes

values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.integers(min_value=2**53 - 3, max_value=2**53 + 3),
)
series = st.lists(
    st.tuples(
        st.integers(min_value=-(2**63), max_value=2**63 - 1) | st.integers(0, 5),
        values,
        st.integers(min_value=0, max_value=4_000_000_000_000),
    ),
    min_size=1,
    max_size=40,
)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


@settings(max_examples=200, deadline=None)
@given(points=series, key=st.sampled_from(["loss", "accuracy"]))
def test_file_summary_equals_the_point_by_point_one(
    points: list[tuple[int, float, int]], key: str
) -> None:
    data = series_bytes(points)
    fast = _summarize_file(key, data)
    slow = summarize(key, parse_series(data, "t"))
    assert fast is not None
    assert slow is not None
    for field in ("points", "last", "min", "max", "best", "best_step", "goal"):
        assert _same(getattr(fast, field), getattr(slow, field)), field


@settings(max_examples=200, deadline=None)
@given(points=series)
def test_c_parsed_frame_equals_the_parsed_points(points: list[tuple[int, float, int]]) -> None:
    data = series_bytes(points)
    frame = series_frame(data)
    assert frame is not None
    slow = pd.DataFrame(parse_series(data, "t"), columns=["step", "value", "timestamp"])
    slow["timestamp"] = pd.to_datetime(slow["timestamp"], unit="ms", utc=True, errors="coerce")
    pd.testing.assert_frame_equal(frame, slow)


def test_damaged_files_fall_back_to_the_line_parser() -> None:
    assert series_frame(b"step\tvalue\ttimestamp\n1\tx\t2\n") is None
    assert series_frame(b"nope\n") is None
    assert _summarize_file("loss", b"step\tvalue\ttimestamp\n\n0\t1.0\t5\n") is None


def test_get_run_reads_only_the_series_asked_for(repo: Path) -> None:
    with xp.start_run() as run:
        for step in range(3):
            run.log_metric("a", step * 0.5, step)
            run.log_metric("b", step, step)
    view = xp.get_run(run.id)
    lazy = view.record.series
    assert isinstance(lazy, LazySeries)
    assert lazy._loaded == {}
    frame = xp.get_series(view, "b")
    assert list(frame["value"]) == [0, 1, 2]
    assert lazy._loaded == {}  # parsed from the one file for this call, not kept
    assert lazy["a"] == [
        (0, 0.0, lazy["a"][0][2]),
        (1, 0.5, lazy["a"][1][2]),
        (2, 1.0, lazy["a"][2][2]),
    ]
    assert set(lazy._loaded) == {"a"}


def test_many_short_series_are_read_from_one_parsed_tree_without_the_c_reader(
    repo: Path, monkeypatch: Any
) -> None:
    """A run of many short series (2,000 metrics; a crafted record of 100,000) is summarised
    by the line parser from the thread's kept object store: pandas' C reader costs ~1 ms a
    call and re-parsing the record's tree per series made `xp diff` of 2,000 series 15 s."""
    import xp.gitstore.trees as trees
    import xp.query.resolve as resolve
    from xp.gitstore.repo import find_repo
    from xp.query.diff import diff_runs

    for name in ("a", "b"):
        with xp.start_run(name=name) as run:
            for i in range(300):
                run.log_metric(f"m{i}", i, 0)
                run.log_metric(f"m{i}", i + (name == "b"), 1)

    def refuse(*_: Any, **__: Any) -> None:
        raise AssertionError("short series go to the line parser")

    monkeypatch.setattr(resolve, "series_frame", refuse)
    reads: list[bytes] = []
    kept = trees.object_store

    def counting(objects_dir: Any) -> Any:
        store = kept(objects_dir)

        class Counting:
            def __getitem__(self, sha: bytes) -> Any:
                reads.append(sha)
                return store[sha]

        return Counting()

    monkeypatch.setattr(trees, "object_store", counting)
    result = diff_runs(find_repo(repo), a="a", b="b")
    changed = {s.key: s for s in result.series if s.changed}
    assert len(changed) == 300
    assert changed["m7"].b.last == 8
    assert changed["m7"].a.last == 7
    # each side: one commit, two trees (the record, its series folder), then one blob a series
    assert 600 <= len(reads) <= 600 + 10, len(reads)
