"""The journal: every header change is journaled (a run recovered later keeps its exit code
and warnings), and a journal that cannot be written is reported at once, not swallowed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import xp
from tests.helpers import wait_for


def test_recovered_run_keeps_exit_code_and_warnings(repo: Path) -> None:
    (repo / "params.yaml").write_text("lr: [1,\n")  # unreadable: `xp run` warns about it
    refs = repo / ".git" / "refs" / "xp"
    refs.mkdir(parents=True)
    (refs / "runs").write_text("in the way\n")  # the run's ref cannot be created
    proc = subprocess.run(
        [sys.executable, "-m", "xp", "run", "--", sys.executable, "-c", "raise SystemExit(3)"],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    assert xp.list_runs(repo) == []
    (refs / "runs").unlink()
    recovered = subprocess.run(
        [sys.executable, "-m", "xp", "recover"], cwd=repo, capture_output=True, text=True
    )
    assert recovered.returncode == 0, recovered.stderr
    (entry,) = xp.list_runs(repo)
    run = xp.get_run(entry.id, path=repo)
    assert run.status == "failed"
    assert run.meta["exit_code"] == 3
    assert any("params.yaml" in w and "invalid YAML" in w for w in run.meta["warnings"])


def test_journal_write_failure_is_reported_and_the_run_still_ends(
    repo: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    (repo / ".git" / "xp").mkdir()
    (repo / ".git" / "xp" / "journal").write_text("a file where the journal folder goes\n")
    with xp.start_run(name="no-journal") as run:
        xp.log_metric("loss", 0.5)
        wait_for(
            lambda: "cannot write its journal" in capfd.readouterr().err,
            "the journal's write error on stderr",
        )
    assert xp.get_run(run.id).metrics == {"loss": 0.5}


def test_media_lines_replay_and_a_damaged_one_loses_only_itself() -> None:
    import json

    from xp.record.header import RunHeader
    from xp.record.journal import line, replay

    header = line("H", RunHeader(id="1m8g9wys2dzmgq", name="n", start_time=1.0).to_json())
    good = {"key": "img", "kind": "image", "path": "media/img/0.png", "step": 0, "timestamp": 9}
    bad = b"G\t" + json.dumps({"key": 3}).encode() + b"\n"  # unsealed: a version 1 journal
    data = header + line("G", good) + bad + b"M\tx\t1\t0\t1.0\n"
    state = replay(data)
    assert list(state.media) == ["media/img/0.png"]
    assert state.media["media/img/0.png"].step == 0
    assert state.points == [("x", 1, 0, 1.0)]


# -- integrity: checksums (issue 10) ------------------------------------------------------------
def _journal_bytes(repo: Path) -> tuple[bytes, list[tuple[str, object, int]], dict[str, object]]:
    """A real journal of a run with points, params and tags, and what it logged."""
    from xp.gitstore.repo import find_repo
    from xp.tracking.run import Run

    run = Run(find_repo(repo))
    points = [("loss", 0.5, 0), ("loss", 0.25, 1), ("acc", 2**62, 0), ("acc", -7, 1)]
    for key, value, step in points:
        run.log_metric(key, value, step=step)
    params = {"lr": 0.1, "name": "résumé", "n": 3, "none": None, "xs": [1, "a"]}
    run.log_params(params)
    run.set_tag("t", "v\ttab")
    run.flush()
    assert run.journal is not None
    data = run.journal.path.read_bytes()
    run.abort()
    return data, points, {**params, "t": "v\ttab"}


def test_journal_lines_carry_a_checksum_and_replay_exactly(repo: Path) -> None:
    from xp.record.journal import replay

    data, points, logged = _journal_bytes(repo)
    assert all(line.rsplit(b"\t", 1)[1].isalnum() for line in data.splitlines())
    state = replay(data)
    assert [(k, v, s) for k, v, s, _t in state.points] == points
    assert [type(v) for _k, v, _s, _t in state.points] == [type(v) for _k, v, _s in points]
    assert {**state.params, **state.tags} == logged
    assert state.damaged == 0


def test_no_single_bit_flip_replays_as_another_value(repo: Path) -> None:
    """Every bit of a real journal flipped in turn: a damaged line is dropped and counted,
    never read as a different value (36 % of flips did that before checksums)."""
    from xp.record.journal import replay

    data, _points, logged = _journal_bytes(repo)
    original = replay(data)
    good = {(k, v, s) for k, v, s, _t in original.points}
    for bit in range(len(data) * 8):
        flipped = bytearray(data)
        flipped[bit // 8] ^= 1 << (bit % 8)
        try:
            state = replay(bytes(flipped))
        except ValueError:
            continue  # the header itself: the journal is set aside, nothing replayed
        assert {(k, v, s) for k, v, s, _t in state.points} <= good, bit
        for key, value in {**state.params, **state.tags}.items():
            assert logged.get(key) == value, (bit, key, value)
        if state.damaged == 0:  # the flip hit nothing that matters (a cut last line)
            assert len(state.points) + len(state.params) <= len(original.points) + len(
                original.params
            )


def test_a_journal_of_format_1_without_checksums_still_replays() -> None:
    from xp.record.journal import replay

    v1 = (
        b'H\t{"id": "1m8g9wys2dzmgq", "name": "old", "start_time": 1.0}\n'
        b"M\tloss\t0.5\t0\t1.5\n"
        b'P\t["lr", 0.1]\n'
        b"M\tloss\t0.2"  # cut by a crash
    )
    state = replay(v1)
    assert state.header.name == "old"
    assert [(k, v) for k, v, _s, _t in state.points] == [("loss", 0.5)]
    assert state.params == {"lr": 0.1}


# -- points in B blocks (journal version 3, issue 18) -----------------------------------------
_POINT = st.tuples(
    st.sampled_from(["loss", "train-l2", "é/x", "a b:c.d"] + [f"m{i}" for i in range(12)]),
    st.floats(allow_nan=True, allow_infinity=True)
    | st.integers(-(2**63), 2**63 - 1)
    | st.integers(2**53 - 2, 2**53 + 2),
    st.integers(-(2**63), 2**63 - 1) | st.integers(-3, 3),
    st.floats(min_value=-62135596800, max_value=253402300799)
    | st.floats(min_value=1.7e9, max_value=1.8e9)
    | st.integers(0, 4_000_000_000),
    st.booleans(),
)


def _drawn_points(
    drawn: list[tuple[str, float | int, int, float | int, bool]],
) -> list[tuple[str, float | int, int, float | int]]:
    points: list[tuple[str, float | int, int, float | int]] = []
    for key, value, step, ts, same_time in drawn:
        if same_time and points:
            ts = points[-1][3]  # the very object: as one log_metrics call holds it
        points.append((key, value, step, ts))
    return points


def _v3(points: list[tuple[str, float | int, int, float | int]], flushes: int = 1) -> bytes:
    """A version 3 journal, as an xp of before binary blocks wrote it."""
    from xp.record.header import RunHeader
    from xp.record.journal import line, metric_blocks

    header = RunHeader(id="1m8g9wys2dzmgq", name="n", start_time=1.0, tree="t")
    data = line("H3", {**header.to_json(), "journal": 3})
    size = max(1, -(-len(points) // flushes))
    for n in range(0, len(points), size):
        data += metric_blocks(points[n : n + size])[0]
    return data


def _v4(points: list[tuple[str, float | int, int, float | int]], flushes: int = 1) -> bytes:
    """A version 4 journal whose flushes are all binary ``C`` blocks (what a big run writes)."""
    from xp.record.columns import column_block
    from xp.record.header import RunHeader
    from xp.record.journal import header_line

    data = header_line(RunHeader(id="1m8g9wys2dzmgq", name="n", start_time=1.0, tree="t"))
    size = max(1, -(-len(points) // flushes))
    for n in range(0, len(points), size):
        made = column_block(points[n : n + size])
        assert made is not None
        data += made[0]
    return data


def _same(a: object, b: object) -> bool:
    return type(a) is type(b) and (a == b or (a != a and b != b))  # NaN is NaN here


@settings(max_examples=200, deadline=None)
@given(st.lists(_POINT, max_size=40), st.integers(1, 4))
def test_points_round_trip_through_b_blocks(
    drawn: list[tuple[str, float | int, int, float | int, bool]], flushes: int
) -> None:
    """Every value kind (ints past 2**53, NaN, infinities, -0.0), negative steps, times from
    year 1 to 9999, many metrics: replayed as points, each metric's in logging order with
    its time in ms as the series holds it; and, into a spill, the very record the points
    give when built in memory."""
    import tempfile

    from xp.record.build import build_record, to_ms
    from xp.record.journal import RunState, replay
    from xp.record.spill import SeriesSpill

    points = _drawn_points(drawn)
    data = _v3(points, flushes)
    state = replay(data)
    assert state.damaged == 0
    for key in {k for k, *_ in points}:  # a point's time comes back as its ms / 1000
        want = [(v, s, to_ms(t) / 1000) for k, v, s, t in points if k == key]
        got = [(v, s, t) for k, v, s, t in state.points if k == key]
        assert len(got) == len(want)
        assert all(_same(g[0], w[0]) and g[1:] == w[1:] for g, w in zip(got, want, strict=True))

    def files(state: RunState) -> dict[str, bytes]:
        record = build_record(state, "crashed", 1.8e9, ())
        return {
            path: content if isinstance(content, bytes) else b"".join(content.chunks())
            for path, content in record.to_files().items()
            if path != "meta.yaml"
        }

    header = state.header
    in_memory = files(RunState(header=header, points=list(points)))
    with tempfile.TemporaryDirectory() as tmp:
        spill = SeriesSpill(lambda: Path(tmp))
        try:
            assert files(replay(data, spill=spill)) == in_memory
        finally:
            spill.close()


def test_a_journal_cut_at_every_byte_of_its_last_block_keeps_every_complete_block() -> None:
    """A crash can cut the last write anywhere: the blocks before it all come back, the cut
    one is ignored (no newline yet) and nothing counts as damaged; a flipped byte inside the
    last block loses that block alone, counted."""
    from xp.record.journal import replay

    points = [(f"m{i % 3}", i * 0.1, i, 1.8e9 + i / 7) for i in range(30)]
    head = _v3(points[:20], flushes=2)
    last = _v3(points[20:])
    last = last[last.index(b"\n") + 1 :]  # its B lines, without a second header
    assert last.count(b"\n") == 3
    assert last.startswith(b"B\tm2\t")
    whole = head + last
    kept = {(k, s) for k, _v, s, _t in replay(head).points}
    for cut in range(len(head), len(whole)):
        state = replay(whole[:cut])
        got = {(k, s) for k, _v, s, _t in state.points}
        complete = whole[len(head) : cut].count(b"\n")
        lines = last.split(b"\n")[:complete]
        assert got == kept | {
            (line.split(b"\t")[1].decode(), int(p.split(b"\t")[0]))
            for line in lines
            for p in line.split(b"\t", 6)[6].rsplit(b"\t", 1)[0].split(b";")
        }, cut
        assert state.damaged == 0
    for at in range(len(head), len(whole) - 1):
        if whole[at] == ord("\n"):
            continue
        flipped = bytearray(whole)
        flipped[at] ^= 0x20
        state = replay(bytes(flipped))
        assert kept <= {(k, s) for k, _v, s, _t in state.points}
        assert state.damaged == 1, at
        assert len(state.points) in (20 + 10 - n for n in (3, 4)), at  # one block of 3 or 4


def test_a_version_2_journal_still_replays_and_a_newer_one_is_refused() -> None:
    """Version 2 (``H`` header, one ``M`` line per point) is read as before; a version 3
    journal's header is ``H3``, which every older reader refuses (they need ``H``), so an
    older xp sets it aside as ``.corrupt`` instead of recording the run without its points;
    and a journal newer than this xp is refused with the fix named."""
    import json

    from xp.record.header import RunHeader
    from xp.record.journal import VERSION, line, replay, seal

    header = RunHeader(id="1m8g9wys2dzmgq", name="n", start_time=1.0).to_json()
    v2 = line("H", {**header, "journal": 2})
    v2 += seal("M\tloss\t0.5\t0\t1795000000.123") + seal("M\tbig\t9007199254740993\t-4\t1.5")
    v2 += seal('P\t["lr", 0.1]') + b"M\tloss\t0.2"  # cut by a crash
    state = replay(v2)
    assert state.points == [("loss", 0.5, 0, 1795000000.123), ("big", 2**53 + 1, -4, 1.5)]
    assert state.params == {"lr": 0.1}
    assert VERSION == 4
    assert _v4([("loss", 0.5, 0, 1.0)]).startswith(b"H4\t")
    for kind, version in (
        ("H4", VERSION + 1),
        ("H", 3),
        ("H3", 2),
        ("H3", 4),
        ("H4", 3),
        ("H", 4),
        ("H5", 5),
    ):
        with pytest.raises(ValueError, match="journal version"):
            replay(line(kind, {**header, "journal": version}))
    assert json.loads(_v3([]).split(b"\t")[1])["journal"] == 3
    assert json.loads(_v4([]).split(b"\t")[1])["journal"] == 4


def test_a_journal_set_aside_by_an_older_xp_replays_without_damage() -> None:
    """An older xp sets a version 3 journal aside as ``.corrupt`` with a newline and an ``X``
    line after it (tracking/recover._set_aside); ``xp recover --retry-failed`` of this xp
    then records every point, and that empty line is no damage."""
    from xp.record.journal import replay, seal

    data = _v3([("loss", 0.5, 0, 1.0), ("loss", 0.25, 1, 2.0)])
    data += b"\n" + seal('X\t{"reason": "journal has no header", "time": 3.0}')
    state = replay(data)
    assert [(k, v, s) for k, v, s, _t in state.points] == [("loss", 0.5, 0), ("loss", 0.25, 1)]
    assert state.damaged == 0


def test_a_b_line_whose_fields_disagree_is_counted_not_replayed() -> None:
    """A block that checks out but whose count does not match its points (never written by
    xp) is dropped and counted, with or without a spill: never half applied."""
    import tempfile

    from xp.record.journal import replay, seal
    from xp.record.spill import SeriesSpill

    head = _v3([])
    bad = seal("B\tloss\t3\t0\t1\t0.5\t0\t0.25\t1000;1\t0.5\t1001")
    good = seal("B\tloss\t2\t0\t1\t0.5\t0\t0.25\t1000;1\t0.5\t1001")
    state = replay(head + bad + good)
    assert state.damaged == 1
    assert state.points == [("loss", 0.25, 0, 1.0), ("loss", 0.5, 1, 1.001)]
    with tempfile.TemporaryDirectory() as tmp:
        spill = SeriesSpill(lambda: Path(tmp))
        state = replay(head + bad + good, spill=spill)
        assert state.damaged == 1
        assert list(spill.points("loss")) == [(0, 0.25, 1000), (1, 0.5, 1001)]
        assert spill.final("loss") == 0.5
        spill.close()


# -- points in binary C blocks (journal version 4, issue 18) ----------------------------------
def _record_files(state: object) -> dict[str, bytes]:
    from xp.record.build import build_record

    record = build_record(state, "crashed", 1.8e9, ())  # type: ignore[arg-type]
    return {
        path: content if isinstance(content, bytes) else b"".join(content.chunks())
        for path, content in record.to_files().items()
        if path != "meta.yaml"
    }


@settings(max_examples=200, deadline=None)
@given(st.lists(_POINT, max_size=40), st.integers(1, 4), st.integers(0, 40))
def test_points_round_trip_through_c_blocks(
    drawn: list[tuple[str, float | int, int, float | int, bool]], flushes: int, text: int
) -> None:
    """Every value kind (ints past 2**53, NaN, infinities, -0.0), negative steps, times from
    year 1 to 9999, many metrics: a C block gives back each point exactly (its time too), and
    the series files, built through the spill, are byte for byte what the same points give
    in memory and through version 3's B blocks; also when a run's first flushes were B
    lines (small) and its later ones C blocks."""
    import tempfile

    from xp.record.build import to_ms
    from xp.record.journal import RunState, metric_blocks, replay
    from xp.record.spill import SeriesSpill

    points = _drawn_points(drawn)
    data = _v4(points, flushes)
    state = replay(data)
    assert state.damaged == 0
    assert len(state.points) == len(points)
    for got, want in zip(state.points, points, strict=True):
        assert got[0] == want[0]
        assert got[2] == want[2]
        assert _same(got[1], want[1])
        assert to_ms(got[3]) == to_ms(want[3])
    mixed = _v4([]) + metric_blocks(points[:text])[0] + _v4(points[text:])[len(_v4([])) :]
    in_memory = _record_files(RunState(header=state.header, points=list(points)))
    for journal in (data, mixed, _v3(points, flushes)):
        with tempfile.TemporaryDirectory() as tmp:
            spill = SeriesSpill(lambda: Path(tmp))
            try:
                replayed = replay(journal, spill=spill)
                assert replayed.damaged == 0
                assert _record_files(replayed) == in_memory
            finally:
                spill.close()


def test_a_journal_cut_at_every_byte_of_its_last_c_block_keeps_every_complete_block() -> None:
    """A crash can cut the last write anywhere: the blocks before it all come back, the cut
    one is ignored (no newline yet) and nothing counts as damaged; a flipped byte anywhere in
    the last block loses that block alone, counted."""
    from xp.record.journal import replay

    points = [(f"m{i % 3}", i * 0.1 if i % 4 else 2**60 + i, i, 1.8e9 + i / 7) for i in range(30)]
    head = _v4(points[:20], flushes=2)
    last = _v4(points[20:])
    last = last[last.index(b"\n") + 1 :]  # its C line, without a second header
    assert last.startswith(b"C\t10\t")
    assert last.count(b"\n") == 1
    whole = head + last
    before = replay(head).points
    assert len(before) == 20
    for cut in range(len(head), len(whole) + 1):
        state = replay(whole[:cut])
        assert state.damaged == 0, cut
        assert state.points == (before + points[20:] if cut == len(whole) else before), cut
    for at in range(len(head), len(whole) - 1):
        flipped = bytearray(whole)
        flipped[at] ^= 0x20
        state = replay(bytes(flipped))
        assert state.damaged == 1, at
        assert state.points == before, at


@pytest.mark.parametrize(
    "fields",
    [
        ("2", '["loss"]', "[]", "one point"),  # count does not match the columns
        ("1", '["loss"]', "[[1, 5]]", "int past the end"),
        ("1", '["loss"]', "[[0, 1.5]]", "int that is no int"),
        ("1", "[]", "[]", "no keys"),
        ("1", '["loss"]', "[]", "key index 1"),
        ("1", '["loss"]', "[]", "NaN time"),
        ("1", '["loss"]', "[]", "not base64"),
        ("0", '["loss"]', "[]", "no points"),
    ],
)
def test_a_c_line_whose_fields_disagree_is_counted_not_replayed(
    fields: tuple[str, str, str, str],
) -> None:
    """A block that checks out but does not hold together (never written by xp) is dropped
    and counted, with or without a spill: never half applied, never a time no call gives."""
    import base64
    import math
    import struct
    import tempfile

    from xp.record.journal import replay, seal
    from xp.record.spill import SeriesSpill

    count, keys, ints, what = fields
    key, time = (1 if what == "key index 1" else 0), (math.nan if what == "NaN time" else 1.5)
    payload = base64.b64encode(struct.pack("<Bqdd", key, 3, 0.5, time)).decode()
    if what == "not base64":
        payload = payload[:-4] + "@@@@"
    good = _v4([("loss", 0.25, 0, 1.0)])
    data = good + seal(f"C\t{count}\t{keys}\t{ints}\t{payload}")
    state = replay(data)
    assert state.damaged == 1
    assert state.points == [("loss", 0.25, 0, 1.0)]
    with tempfile.TemporaryDirectory() as tmp:
        spill = SeriesSpill(lambda: Path(tmp))
        state = replay(data, spill=spill)
        assert state.damaged == 1
        assert list(spill.points("loss")) == [(0, 0.25, 1000)]
        spill.close()
    sane = seal(
        f'C\t1\t["loss"]\t[]\t{base64.b64encode(struct.pack("<Bqdd", 0, 3, 0.5, 1.5)).decode()}'
    )
    assert replay(good + sane).points[-1] == ("loss", 0.5, 3, 1.5)  # the same line, whole
