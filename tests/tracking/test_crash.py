"""Real processes that die: SIGKILL, SIGTERM, uncaught exceptions, sys.exit."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

import xp
from tests.helpers import journal_points, spawned, wait_for
from xp.cli import cli

LOOP = """
import sys, time, xp
run = xp.start_run(name="victim", params={{"lr": 0.1}})
xp.set_tag("t", "v")
for i in range(1000000):
    xp.log_metric("loss", 1.0 / (i + 1), step=i)
    if i == 50:
        print(run.id, flush=True)
    {extra}
"""


@contextlib.contextmanager
def _victim(repo: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """The training loop as a child process, once it has printed its run id; killed on exit."""
    script = repo / "victim.py"
    script.write_text(textwrap.dedent(LOOP.format(extra="time.sleep(0.002)")))
    cmd = [sys.executable, str(script)]
    with spawned(cmd, cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None
        run_id = proc.stdout.readline().strip()
        assert run_id, proc.stderr.read() if proc.stderr else ""
        yield proc, run_id


def _reap(proc: subprocess.Popen[str], kill: bool = False) -> int:
    if kill:
        proc.kill()
    proc.communicate(timeout=30)  # closes the pipes
    return proc.returncode


def _journal(repo: Path, run_id: str) -> Path:
    return repo / ".git" / "xp" / "journal" / f"{run_id}.journal"


def test_sigkill_loses_nothing_that_was_flushed(repo: Path) -> None:
    """That a flush comes at least every second, so a kill loses at most the last second, is
    measured by benchmarks/crash_window.py."""
    with _victim(repo) as (proc, run_id):
        journal = _journal(repo, run_id)
        wait_for(lambda: journal_points(journal, "loss") > 100, "100 points flushed")
        assert proc.poll() is None  # flushed by the running process, not at its exit
        flushed = journal_points(journal, "loss")
        _reap(proc, kill=True)
        assert journal.exists()
        result = CliRunner().invoke(cli, ["recover"])
        assert result.exit_code == 0, result.output
        assert f"recovered {run_id} (crashed)" in result.stdout
        assert not journal.exists()
        got = xp.get_run(run_id)
        assert got.status == "crashed"
        assert got.params == {"lr": 0.1}
        assert got.tags == {"t": "v"}
        assert len(got.series("loss")) >= flushed > 100
        # a second recover finds nothing
        assert "no dead runs" in CliRunner().invoke(cli, ["recover"]).stdout


def test_next_xp_command_recovers(repo: Path) -> None:
    with _victim(repo) as (proc, run_id):
        journal = _journal(repo, run_id)
        wait_for(lambda: journal_points(journal, "loss"), "the first flush")
        _reap(proc, kill=True)
        result = CliRunner().invoke(cli, ["commit", "-n", "after"])
        assert result.exit_code == 0, result.output
        assert f"recovered run {run_id}" in result.stderr
        assert xp.get_run(run_id).status == "crashed"


def test_live_run_is_not_recovered(repo: Path) -> None:
    with _victim(repo) as (proc, run_id):
        journal = _journal(repo, run_id)
        wait_for(journal.exists, "the first flush, which makes the journal")
        try:
            result = CliRunner().invoke(cli, ["recover"])
            assert "no dead runs" in result.stdout
            assert (repo / ".git" / "xp" / "journal" / f"{run_id}.journal").exists()
        finally:
            _reap(proc, kill=True)
        CliRunner().invoke(cli, ["recover"])


def test_sigterm_records_killed(repo: Path) -> None:
    with _victim(repo) as (proc, run_id):
        proc.send_signal(signal.SIGTERM)
        assert _reap(proc) == -signal.SIGTERM
        assert xp.get_run(run_id).status == "killed"


def test_sigint_records_killed(repo: Path) -> None:
    with _victim(repo) as (proc, run_id):
        proc.send_signal(signal.SIGINT)
        _reap(proc)
        assert xp.get_run(run_id).status == "killed"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ("raise ValueError('x')", "failed"),
        ("pass", "finished"),
    ],
)
def test_plain_start_run_ends_at_exit(repo: Path, body: str, status: str) -> None:
    (repo / "s.py").write_text(
        f"import xp\nr = xp.start_run()\nprint(r.id, flush=True)\nxp.log_metric('m', 1)\n{body}\n"
    )
    proc = subprocess.run([sys.executable, "s.py"], cwd=repo, capture_output=True, text=True)
    run_id = proc.stdout.split()[0]
    assert xp.get_run(run_id).status == status


def test_sys_exit_inside_with(repo: Path) -> None:
    (repo / "s.py").write_text(
        "import sys, xp\nwith xp.start_run() as r:\n    print(r.id, flush=True)\n    sys.exit(3)\n"
    )
    proc = subprocess.run([sys.executable, "s.py"], cwd=repo, capture_output=True, text=True)
    assert proc.returncode == 3
    assert xp.get_run(proc.stdout.split()[0]).status == "failed"


def test_torn_journal_line_is_ignored(repo: Path) -> None:
    run = xp.start_run(name="torn")
    xp.log_metric("a", 1.0)
    run.flush()
    run.journal.write(b"M\tb\t2.0\t0\t17")  # a crash mid-write: no newline
    journal = run.journal.path
    run.journal.close(remove=False)  # the process "dies": lock released, journal left
    xp.tracking.fluent._stack.clear()
    assert journal.exists()
    from xp.gitstore.repo import find_repo
    from xp.tracking.recover import recover

    assert recover(find_repo()) == [(run.id, "crashed")]
    got = xp.get_run(run.id)
    assert got.metrics == {"a": 1.0}


def test_corrupt_journal_is_set_aside(repo: Path) -> None:
    from xp.gitstore.repo import find_repo
    from xp.tracking.recover import recover

    jdir = repo / ".git" / "xp" / "journal"
    jdir.mkdir(parents=True)
    (jdir / "garbage.journal").write_bytes(b"not a journal\n")
    assert recover(find_repo()) == []
    assert (jdir / "garbage.corrupt").exists()
