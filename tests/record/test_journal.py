"""The journal: every header change is journaled (a run recovered later keeps its exit code
and warnings), and a journal that cannot be written is reported at once, not swallowed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
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


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["loss", "train-l2", "é/x"]),
            st.floats(allow_nan=True, allow_infinity=True) | st.integers(-(2**63), 2**63 - 1),
            st.integers(-(2**63), 2**63 - 1),
            st.floats(min_value=0, max_value=4e9) | st.integers(0, 4_000_000_000),
            st.booleans(),
        ),
        max_size=30,
    )
)
def test_metric_lines_are_the_format_s_lines(
    drawn: list[tuple[str, float | int, int, float | int, bool]],
) -> None:
    """The flusher's lines for many points at once (a time shared by the points of one
    log_metrics call spelled once) are byte for byte docs/format.md's M lines, one by one."""
    from xp.record.journal import metric_bodies, seal, seal_many
    from xp.record.model import format_number

    points: list[tuple[str, float | int, int, float | int]] = []
    for key, value, step, ts, same_time in drawn:
        if same_time and points:
            ts = points[-1][3]  # the very object: as one log_metrics call holds it
        points.append((key, value, step, ts))
    bodies, texts = metric_bodies(points)
    assert texts == [format_number(v) for _k, v, _s, _t in points]
    expected = b"".join(seal(f"M\t{k}\t{format_number(v)}\t{s}\t{t!r}") for k, v, s, t in points)
    assert seal_many(bodies) == expected
