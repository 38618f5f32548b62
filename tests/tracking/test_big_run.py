"""A run's memory does not grow with its point count, and a killed big run recovers with
every point it journaled, in the bytes end_run would have written (issue 18)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import xp
from xp.record.model import series_bytes
from xp.tracking.recover import recover

LOGGER = textwrap.dedent(
    """
    import os, resource, signal, sys, xp
    n, kill = int(sys.argv[1]), sys.argv[2] == "kill"
    run = xp.start_run()
    for step in range(n):
        for k in ("a", "b", "c", "d"):
            value = step * 0.25 + (k == "b") * 2**60
            run.log_metric(k, value, step, timestamp=1_795_000_000_000 + step)
    if kill:
        run.flush()
        print(run.id, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    xp.end_run()
    print(run.id, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, flush=True)
    """
)


def _log(repo: Path, points: int, kill: bool = False) -> list[str]:
    (repo / "logger.py").write_text(LOGGER)
    proc = subprocess.run(
        [sys.executable, "logger.py", str(points // 4), "kill" if kill else "end"],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == (-signal.SIGKILL if kill else 0), proc.stderr
    return proc.stdout.split()


def _expected(key: str, steps: int) -> bytes:
    add = 2**60 if key == "b" else 0
    return series_bytes([(s, s * 0.25 + add, 1_795_000_000_000 + s) for s in range(steps)])


@pytest.mark.slow
def test_a_million_points_take_no_more_memory_than_a_thousand(repo: Path) -> None:
    """In memory, 1M points took ~250 MB more than 1k (tuples of the whole run); now the
    journaled points are in files. Generous margin: 100 MB (the measured difference is ~65 MB,
    the same at 10M points: buffers between flushes)."""
    _small_id, small_kb = _log(repo, 1_000)
    big_id, big_kb = _log(repo, 1_000_000)
    assert int(big_kb) - int(small_kb) < 100_000, (small_kb, big_kb)
    series = xp.get_series(big_id, "b")
    assert len(series) == 250_000
    assert (series["step"].iloc[-1], series["value"].iloc[-1]) == (249_999, 249_999 * 0.25 + 2**60)


def test_a_killed_big_run_recovers_every_journaled_point(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from xp.record import spill

    monkeypatch.setattr(spill, "SPILL_BYTES", 1 << 16)  # recovery goes through its files
    monkeypatch.setattr(spill, "PARALLEL_POINTS", 10_000)  # and through the helper process
    (run_id,) = _log(repo, 200_000, kill=True)
    journal = (repo / ".git" / "xp" / "journal" / f"{run_id}.journal").read_bytes()
    assert b"\nC\t" in journal  # big flushes: binary blocks
    assert recover(xp.gitstore.repo.find_repo(repo)) == [(run_id, "crashed")]
    blob = _series_blob(repo, run_id, "b")
    assert blob == _expected("b", 50_000)
    run = xp.get_run(run_id)
    assert run.metrics["a"] == 49_999 * 0.25
    assert not list((repo / ".git" / "xp" / "tmp").glob("*/series-*"))
    assert os.listdir(repo / ".git" / "xp" / "journal") == []


def test_a_continued_big_run_goes_through_the_spill(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The previous commit's points are read one series at a time into the spill (not all
    into memory), and the record is what the points in memory would give."""
    from xp.record import spill

    monkeypatch.setattr(spill, "SPILL_BYTES", 1 << 12)
    with xp.start_run() as first:
        for step in range(5_000):
            first.log_metric("a", step * 0.25, step, timestamp=1_795_000_000_000 + step)
            first.log_metric("b", step * 0.25 + 2**60, step, timestamp=1_795_000_000_000 + step)
        first.log_metric("single", 3.0)
    with xp.start_run(resume=first.id) as again:
        assert again.state.points == []
        assert again.state.spill is not None
        assert len(again.state.spill) == 10_001
        for step in range(5_000, 6_000):
            again.log_metric("b", step * 0.25 + 2**60, timestamp=1_795_000_000_000 + step)
    blob = _series_blob(repo, first.id, "b")
    assert blob == _expected("b", 6_000)
    got = xp.get_run(first.id)
    assert got.metrics["a"] == 4_999 * 0.25
    assert got.metrics["single"] == 3.0
    assert "single" not in got.record.series


def test_a_journal_an_older_xp_left_is_recovered(repo: Path) -> None:
    """A version 3 journal (``H3`` header, B blocks) killed under an older xp is recovered
    by this one with every point, in the bytes the series had then."""
    import json

    from xp.record.journal import line

    (run_id,) = _log(repo, 400, kill=True)
    path = repo / ".git" / "xp" / "journal" / f"{run_id}.journal"
    first, _, rest = path.read_bytes().partition(b"\n")
    assert first.startswith(b"H4\t")
    assert not any(raw.startswith(b"C\t") for raw in rest.split(b"\n"))  # small: B blocks
    header = json.loads(first.split(b"\t")[1])
    path.write_bytes(line("H3", {**header, "journal": 3}) + rest)
    assert recover(xp.gitstore.repo.find_repo(repo)) == [(run_id, "crashed")]
    blob = _series_blob(repo, run_id, "b")
    assert blob == _expected("b", 100)


def test_a_killed_run_s_render_helper_exits_and_the_run_recovers(repo: Path) -> None:
    """A big live run spells its floats in a helper process; SIGKILL the run and the helper
    goes too (it watches its parent), and recovery records every journaled point from the
    journal, whatever the helper had done."""
    from tests.helpers import wait_for

    (repo / "logger.py").write_text(
        textwrap.dedent(
            """
            import os, signal, sys, xp
            from xp.record import spill
            spill.PARALLEL_POINTS, spill.SPILL_BYTES = 20_000, 1 << 16
            run = xp.start_run()
            for step in range(30_000):
                for k in ("a", "b"):
                    run.log_metric(k, step * 0.25, step, timestamp=1_795_000_000_000 + step)
                if step % 5_000 == 0:
                    run.flush()
            run.flush()
            helper = run.state.spill._helper
            print(run.id, helper.proc.pid if helper else 0, flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
            """
        )
    )
    proc = subprocess.run(
        [sys.executable, "logger.py"], cwd=repo, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    run_id, pid = proc.stdout.split()
    assert int(pid) > 0  # the helper was running when the run was killed

    def gone() -> bool:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().split()[2]
        except FileNotFoundError:
            return True
        return state == "Z"

    wait_for(gone, "the render helper to exit", timeout=30)
    assert recover(xp.gitstore.repo.find_repo(repo)) == [(run_id, "crashed")]
    blob = _series_blob(repo, run_id, "a")
    assert blob == series_bytes([(s, s * 0.25, 1_795_000_000_000 + s) for s in range(30_000)])


def _series_blob(repo: Path, run_id: str, key: str) -> bytes:
    """The recorded series file of ``key`` as git holds it."""
    return subprocess.run(
        ["git", "cat-file", "blob", f"refs/xp/runs/{run_id}:.xp/run/series/{key}.tsv"],
        cwd=repo,
        capture_output=True,
        check=True,
    ).stdout
