"""Live runs: listed from their journals while they log (status running), merged into every
listing in order, read without locking or writing, and gone from the live set once committed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import xp
from tests.helpers import git, invoke, journal_points, spawned, trainer, wait_for
from xp.gitstore.repo import find_repo
from xp.query.live import LiveRuns, live_rows
from xp.query.search import search_runs, select_runs


def _flushed(journal: Path, points: int) -> bool:
    return journal_points(journal, "loss") >= points


def test_a_running_run_is_listed_with_its_values_and_filtered(repo: Path) -> None:
    with xp.start_run(name="done-before", params={"lr": 0.5}):
        xp.log_metric("loss", 2.0)
    with trainer(repo, name="live", params={"lr": 0.1}, tags={"team": "nlp"}) as t:
        t.log(5)
        wait_for(lambda: _flushed(t.journal, 5), "5 points flushed")
        sel = select_runs(find_repo(), limit=None)
        assert [r.name for r in sel.rows] == ["live", "done-before"]  # newest first
        live = sel.rows[0]
        assert live.status == "running"
        assert live.commit == ""
        assert live.end is None
        assert live.values == {
            "params.lr": 0.1,
            "metrics.loss": 0.2,  # the value at the highest step
            "metrics.acc": 0.8,
            "tags.team": "nlp",
        }
        assert live.duration is not None
        assert live.duration >= 0
        assert sel.total == 2
        assert "tags.team" in sel.keys

        def names(**kw: object) -> list[str]:
            return [r.name for r in select_runs(find_repo(), limit=None, **kw).rows]  # type: ignore[arg-type]

        assert names(status=["running"]) == ["live"]
        assert names(where="metrics.loss < 1 and tags.team = 'nlp'") == ["live"]
        assert names(where="params.lr > 0.2") == ["done-before"]
        assert names(sort=["metrics.loss"]) == ["live", "done-before"]
        assert names(sort=["-metrics.loss"]) == ["done-before", "live"]
        assert names(where="status = 'running'", sort=["name"]) == ["live"]
        page = select_runs(find_repo(), limit=1, offset=1)
        assert [r.name for r in page.rows] == ["done-before"]
        assert page.total == 2

        result = invoke("show", "--status", "running", "--format", "json")
        assert result.exit_code == 0, result.output
        assert '"name": "live"' in result.stdout
        assert '"commit": null' in result.stdout
        assert "done-before" not in result.stdout
        shown = invoke("show")
        assert "live" in shown.stdout
        assert "running" in shown.stdout
        frame = search_runs(find_repo(), filter_string="status = 'running'")
        assert list(frame["run_name"]) == ["live"]
        assert frame["commit"].isna().all()

        t.log(5)
        wait_for(lambda: _flushed(t.journal, 10), "10 points flushed")
        assert live_rows(find_repo())[0].values["metrics.loss"] == 0.1
        t.end()
    rows = select_runs(find_repo(), limit=None).rows
    assert [(r.name, r.status) for r in rows] == [("live", "finished"), ("done-before", "finished")]


def test_a_journal_is_read_live_through_the_checksummed_reader(repo: Path) -> None:
    """The journal a running run writes is version 4 (a CRC-32 ends every line, a small
    flush's points come in B blocks); the live view reads it through the reader recovery
    uses: values shown exactly, and a damaged line dropped and counted, never shown."""
    with trainer(repo, name="sealed", params={"lr": 0.25}) as t:
        t.log(3)
        wait_for(lambda: _flushed(t.journal, 3), "3 points flushed")
        lines = t.journal.read_bytes().split(b"\n")[:-1]
        assert lines[0].startswith(b"H4\t")
        assert b'"journal": 4' in lines[0]
        for raw in lines:
            body, _, crc = raw.rpartition(b"\t")
            assert int(crc, 16) == zlib.crc32(body), raw
        # A line whose checksum fails (a torn or flipped write) must not become a point.
        with open(t.journal, "ab") as fh:
            fh.write(b"B\tloss\t1\t100\t100\t-999\t100\t-999\t1795000000000\tdeadbeef\n")
        result = invoke("show", "--status", "running", "--format", "json")
        assert result.exit_code == 0, result.output
        (doc,) = json.loads(result.stdout)
        assert doc["name"] == "sealed"
        assert doc["status"] == "running"
        assert doc["params"] == {"lr": 0.25}
        assert doc["metrics"] == {"loss": 1 / 3, "acc": 2 / 3}
        live = LiveRuns(find_repo())
        live.refresh()
        run = live.runs[t.run_id]
        assert list(run.series["loss"].steps) == [0, 1, 2]
        assert run.journal.state is not None
        assert run.journal.state.damaged == 1
        t.end()
    (row,) = select_runs(find_repo(), limit=None).rows
    assert (row.name, row.status, row.values["metrics.loss"]) == ("sealed", "finished", 1 / 3)


def test_looking_takes_no_lock_and_writes_nothing(repo: Path) -> None:
    with trainer(repo, name="live") as t:
        t.log(3)
        wait_for(lambda: _flushed(t.journal, 3), "3 points flushed")
        journal_dir = t.journal.parent
        before = sorted(os.listdir(journal_dir))
        stat = t.journal.stat()
        for _ in range(3):
            assert [r.status for r in live_rows(find_repo())] == ["running"]
        assert sorted(os.listdir(journal_dir)) == before
        assert t.journal.stat().st_mtime_ns == stat.st_mtime_ns
        t.end()


def test_a_dead_unrecovered_journal_is_crashed_until_recovered(repo: Path) -> None:
    with trainer(repo, name="victim") as t:
        t.log(4)
        wait_for(lambda: _flushed(t.journal, 4), "4 points flushed")
        t.proc.kill()
        t.proc.communicate(timeout=30)
        (row,) = live_rows(find_repo())
        assert (row.name, row.status, row.values["metrics.loss"]) == ("victim", "crashed", 0.25)
        assert row.end is None
        assert row.duration is not None
        assert invoke("recover").exit_code == 0
        assert live_rows(find_repo()) == []
        (got,) = select_runs(find_repo(), limit=None).rows
        assert (got.name, got.status) == ("victim", "crashed")


def test_refresh_reads_only_what_was_added(repo: Path) -> None:
    live = LiveRuns(find_repo())
    assert not live.refresh()
    with trainer(repo, name="live") as t:
        t.log(2)
        wait_for(lambda: _flushed(t.journal, 2), "2 points flushed")
        first = live.refresh()
        assert first.appeared == [t.run_id]
        assert first.grown == {t.run_id: {"loss", "acc"}}
        offset = live.runs[t.run_id].journal.offset
        assert not live.refresh().grown  # nothing new
        t.send("tag stage=warmup")
        t.log(3)
        wait_for(lambda: _flushed(t.journal, 5), "5 points flushed")
        changes = live.refresh()
        assert changes.grown == {t.run_id: {"loss", "acc"}}
        assert changes.changed == [t.run_id]
        run = live.runs[t.run_id]
        assert run.journal.offset > offset
        assert list(run.series["loss"].steps) == [0, 1, 2, 3, 4]
        assert run.tags == {"stage": "warmup"}
        t.end()
    assert live.refresh().gone == [t.run_id]
    assert live.runs == {}


SCRIPT = """
import os, time, xp
with xp.start_run(name="from-script"):
    xp.log_param("depth", 3)
    for i in range(3):
        xp.log_metric("score", i * 1.5, step=i)
    open("logged", "w").close()
    while not os.path.exists("stop"):
        time.sleep(0.02)
"""


def test_what_a_child_logs_under_xp_run_is_live_too(repo: Path) -> None:
    (repo / "train.py").write_text(textwrap.dedent(SCRIPT))
    (repo / ".gitignore").write_text("logged\nstop\n")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "script")
    cmd = [sys.executable, "-m", "xp", "run", "--", sys.executable, "train.py"]
    with spawned(cmd, cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as p:
        wait_for(lambda: (repo / "logged").exists(), "the script to log")

        def part_flushed() -> list[object]:
            return [r for r in live_rows(find_repo()) if "metrics.score" in r.values]

        (row,) = wait_for(part_flushed, "the part to be flushed")
        assert row.status == "running"
        assert row.name == "from-script"
        assert row.values["params.depth"] == 3
        assert row.values["metrics.score"] == 3.0
        (repo / "stop").touch()
        p.communicate(timeout=60)
        assert p.returncode == 0
    assert live_rows(find_repo()) == []


def test_a_resumed_run_shows_its_earlier_sessions_while_live(repo: Path) -> None:
    """A continued run's journal holds the new session only; the live view reads what the
    earlier sessions recorded from the run's previous commit."""
    with xp.start_run(name="long", params={"lr": 0.1}) as run:
        xp.log_metric("loss", 1.0)
    script = repo / "again.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import time, xp
            xp.start_run(resume={run.id!r})
            xp.log_metric("loss", 0.5)
            xp.log_metric("loss", 0.25)
            time.sleep(120)
            """
        )
    )
    journal = repo / ".git" / "xp" / "journal" / f"{run.id}.journal"
    with spawned([sys.executable, str(script)]) as proc:
        wait_for(lambda: _flushed(journal, 2), "the session's points")
        live = LiveRuns(find_repo())
        live.refresh()
        found = live.runs[run.id]
        assert list(found.series["loss"].values) == [1.0, 0.5, 0.25]
        assert list(found.series["loss"].steps) == [0, 1, 2]
        assert found.params == {"lr": 0.1}
        row = found.row()
        assert row is not None
        assert row.values["metrics.loss"] == 0.25
        proc.kill()
        proc.wait()


def test_a_big_flush_in_binary_is_read_live_as_it_grows(repo: Path) -> None:
    """A flush of thousands of points is one binary C block (journal version 4): the live
    views read it through the same reader, every point exact, while the run goes on logging;
    a C block whose checksum fails is dropped and counted, never shown."""
    with trainer(repo, name="big") as t:
        t.log(5_000)
        wait_for(lambda: _flushed(t.journal, 5_000), "5,000 points flushed")
        assert any(raw.startswith(b"C\t") for raw in t.journal.read_bytes().split(b"\n"))
        live = LiveRuns(find_repo())
        live.refresh()
        run = live.runs[t.run_id]
        assert list(run.series["loss"].steps) == list(range(5_000))
        assert list(run.series["acc"].values)[-1] == 4_999 / 5_000.0
        t.log(5_000)
        wait_for(lambda: _flushed(t.journal, 10_000), "10,000 points flushed")
        with open(t.journal, "ab") as fh:
            fh.write(
                b'C\t1\t["loss"]\t[]\tAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\tdeadbeef\n'
            )
        live.refresh()
        run = live.runs[t.run_id]
        assert list(run.series["loss"].steps) == list(range(10_000))
        assert run.series["loss"].values[-1] == 1.0 / 10_000
        assert run.journal.state is not None
        assert run.journal.state.damaged == 1
        result = invoke("show", "--status", "running", "--format", "json")
        assert result.exit_code == 0, result.output
        (doc,) = json.loads(result.stdout)
        assert doc["metrics"] == {"loss": 1.0 / 10_000, "acc": 9_999 / 10_000.0}
        t.end()
    got = xp.get_run(t.run_id)
    assert got.metrics == {"loss": 1.0 / 10_000, "acc": 9_999 / 10_000.0}
    assert len(xp.get_series(t.run_id, "loss")) == 10_000
