"""A committed series is read alone and parsed in C (issue 18): ``RunView.series`` and
``xp diff``'s summaries give exactly what the line-by-line parser gives, for any points."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
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
    import xp.gitstore.catfile as catfile
    import xp.query.series_read as series_read

    listings: list[int] = []
    sizes = catfile.sizes

    def counted_sizes(git: Any, shas: list[str]) -> dict[str, int]:
        listings.append(len(shas))
        return sizes(git, shas)

    monkeypatch.setattr(catfile, "sizes", counted_sizes)
    monkeypatch.setattr(series_read, "open_blob", refuse)  # no git process a series
    result = diff_runs(find_repo(repo), a="a", b="b")
    assert listings == [300, 300]  # one size listing a side
    changed = {s.key: s for s in result.series if s.changed}
    assert len(changed) == 300
    assert changed["m7"].b.last == 8
    assert changed["m7"].a.last == 7
    # each side: one commit, two trees (the record, its series folder), then one blob a series
    assert 600 <= len(reads) <= 600 + 10, len(reads)


chunkings = st.lists(st.integers(min_value=1, max_value=300), min_size=1, max_size=50)


def _chunked(data: bytes, sizes: list[int]) -> tuple[int, Any]:
    """``data`` as git streams it: pieces of the given sizes, the rest in one."""

    def gen() -> Any:
        pos = 0
        for size in sizes:
            if pos < len(data):
                yield data[pos : pos + size]
                pos += size
        if pos < len(data):
            yield data[pos:]

    return len(data), gen()


@settings(max_examples=200, deadline=None)
@given(points=series, sizes=chunkings, key=st.sampled_from(["loss", "accuracy"]))
def test_a_streamed_file_reads_and_summarises_as_the_whole_file(
    points: list[tuple[int, float, int]], sizes: list[int], key: str
) -> None:
    """Parsed in pieces of a few lines (cut anywhere by the pipe), a series file gives the
    frame and the summary the line-by-line parser gives."""
    from xp.query import series_read

    data = series_bytes(points)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(series_read, "PIECE", 64)  # many pieces even for 40 points
        frame = series_read.read_frame(_chunked(data, sizes))
        fast = series_read.summarize(key, _chunked(data, sizes))
    assert frame is not None
    slow = pd.DataFrame(parse_series(data, "t"), columns=["step", "value", "timestamp"])
    slow["timestamp"] = pd.to_datetime(slow["timestamp"], unit="ms", utc=True, errors="coerce")
    pd.testing.assert_frame_equal(frame, slow)
    expected = summarize(key, parse_series(data, "t"))
    assert fast is not None
    assert expected is not None
    for field in ("points", "last", "min", "max", "best", "best_step", "goal"):
        assert _same(getattr(fast, field), getattr(expected, field)), field


def test_streamed_files_not_in_xps_form_go_to_the_line_parser(monkeypatch: Any) -> None:
    from xp.query import series_read

    monkeypatch.setattr(series_read, "PIECE", 16)
    good = series_bytes([(i, i * 0.5, 7) for i in range(20)])
    for bad in (
        good.replace(b"\n5\t", b"\n\n5\t"),  # a blank line in a later piece
        good.replace(b"\n9\t4.5", b"\n9\tx"),  # a value that is no number
        good.replace(b"\n12\t", b"\n12.5\t"),  # a step that is no integer
        good.replace(b"\n7\t3.5\t7\n", b"\n7\t3.5\t7\t1\n"),  # a field too many
        good.replace(b"\n3\t1.5\t7\n", b"\n3\t1.5\n"),  # a field too few
        good.replace(b"step\tvalue", b"step\tvalues"),  # another header
        b"step\tval",  # a cut header
    ):
        assert series_read.read_frame(_chunked(bad, [7] * 40)) is None, bad
        assert series_read.summarize("loss", _chunked(bad, [7] * 40)) is None, bad
    cut = good + b"20\t10.0\t7"  # a last line without its newline is a line
    frame = series_read.read_frame(_chunked(cut, [5] * 100))
    assert frame is not None
    assert list(frame["step"]) == list(range(21))


def test_open_blob_streams_a_blob_and_stops_git_when_left_early(repo: Path) -> None:
    from xp.gitstore.catfile import open_blob
    from xp.gitstore.repo import find_repo

    data = os.urandom(3 << 20)
    (repo / "big.bin").write_bytes(data)
    sha = subprocess.run(
        ["git", "hash-object", "-w", "big.bin"], cwd=repo, capture_output=True, text=True
    ).stdout.strip()
    git = find_repo(repo)
    with open_blob(git, sha) as opened:
        assert opened is not None
        size, chunks = opened
        got = b"".join(chunks)
    assert (size, got) == (len(data), data)
    with open_blob(git, sha) as opened:  # one piece, then out: git is stopped, not waited on
        assert opened is not None
        assert next(opened[1])
    with open_blob(git, "0" * 40) as opened:
        assert opened is None
    tree = subprocess.run(
        ["git", "write-tree"], cwd=repo, capture_output=True, text=True
    ).stdout.strip()
    with open_blob(git, tree) as opened:  # not a blob
        assert opened is None


READER = """
import resource, sys
import pandas, xp
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
if sys.argv[1] == "series":
    frame = xp.get_series(sys.argv[2], "loss")
    assert len(frame) == 1_000_000 and frame["value"].iloc[-1] == 999_999 * 0.5, frame.tail()
else:
    from xp.gitstore.repo import find_repo
    from xp.query.diff import diff_runs

    result = diff_runs(find_repo("."), a=sys.argv[2], b=sys.argv[3])
    (change,) = result.series
    assert change.a.points == change.b.points == 1_000_000 and change.b.last == 999_999 * 0.5
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base)
"""


@pytest.mark.slow
def test_reading_a_million_point_series_holds_its_arrays_not_its_file(repo: Path) -> None:
    """get_series of a 1M-point metric (a 44 MB file) peaked ~110 MB above pandas (the file
    read whole, twice, then parsed); streamed, the frame's arrays (24 MB) and the timestamp
    conversion are most of it: ~50 MB. ``xp diff`` summarised both sides from files held
    whole (~150 MB); now one piece at a time: ~15 MB. Generous margins."""
    ids = []
    for scale in (0.25, 0.5):
        with xp.start_run() as run:
            for step in range(1_000_000):
                run.log_metric("loss", step * scale, step)
        ids.append(run.id)
    (repo / "reader.py").write_text(READER)

    def above_pandas_kb(*args: str) -> int:
        proc = subprocess.run(
            [sys.executable, "reader.py", *args], cwd=repo, capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stderr
        return int(proc.stdout.split()[-1])

    assert above_pandas_kb("series", ids[1]) < 80_000
    assert above_pandas_kb("diff", *ids) < 40_000
