"""A live run's snapshot against `git gc --prune=now` (issue 10): kept in a pack of its own
once the run is past its first flush; before that, a pruned snapshot costs the run its code
tree (with a warning), never its values, and never leaves a broken commit."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import xp
from tests.helpers import git, xp_main
from xp.gitstore import protect
from xp.gitstore.repo import find_repo
from xp.record import journal
from xp.tracking import fluent


def _keeps(repo: Path) -> list[Path]:
    return list((repo / ".git" / "objects" / "pack").glob("*.keep"))


def test_a_run_past_its_first_flush_keeps_its_snapshot_through_git_gc(repo: Path) -> None:
    (repo / "new_module.py").write_text("x = 1\n")  # a file no commit has: an unreachable blob
    run = xp.start_run(name="kept")
    xp.log_metric("m", 1.0)
    run.flush()  # the first flush keeps the snapshot
    (keep,) = _keeps(repo)
    assert keep.read_text().strip() == f"xp: live run {run.id}"
    git(repo, "gc", "-q", "--prune=now")
    xp.end_run()
    got = xp.get_run(run.id)
    assert "warnings" not in got.meta
    assert git(repo, "show", f"{got.commit}:new_module.py") == "x = 1\n"
    assert _keeps(repo) == []  # released: the run's commit reaches the objects now


def test_a_short_run_whose_snapshot_was_pruned_records_its_values(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # no flush before the gc, however slow a loaded machine makes it (the flusher thread
    # would otherwise keep the snapshot 0.5 s in, and nothing would be pruned): the run is
    # not given to the flusher thread. (Not a longer FLUSH_INTERVAL: the thread would sleep
    # that long after the test, and other tests in this process wait for its flushes.)
    monkeypatch.setattr(journal.flusher, "register", lambda run: None)
    (repo / "new_module.py").write_text("x = 1\n")
    run = xp.start_run(name="pruned")  # no flush yet: nothing keeps the snapshot
    xp.log_metric("m", 1.0)
    xp.log_param("p", "v")
    git(repo, "gc", "-q", "--prune=now")
    xp.end_run()  # no KeyError, no commit of a missing tree
    got = xp.get_run(run.id)
    assert (got.metrics, got.params) == ({"m": 1.0}, {"p": "v"})
    assert any("pruned" in w for w in got.meta["warnings"])
    assert "new_module.py" not in git(repo, "ls-tree", "--name-only", got.commit)
    code, _out, err = xp_main("gc", cwd=repo)  # every xp gc still works
    assert code == 0, err


def test_a_git_gc_that_starts_and_ends_while_the_commit_is_written_loses_nothing(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The window no gc.pid shows: a whole `git gc --prune=now` between the run's objects
    and its ref (a loaded machine) prunes the new record trees and the commit; the run sees
    its objects are no longer loose, writes them again, and its commit is whole."""
    from xp.gitstore import commit as gitcommit

    real_create_ref = gitcommit.create_ref
    ran: list[str] = []

    def gc_then_create_ref(common_dir: Path, ref: str, sha: str) -> None:
        git(repo, "gc", "-q", "--prune=now")  # starts after the run looked, ends before
        ran.append(sha)
        assert not (repo / ".git" / "objects" / sha[:2] / sha[2:]).exists()  # pruned
        real_create_ref(common_dir, ref, sha)

    monkeypatch.setattr(gitcommit, "create_ref", gc_then_create_ref)
    with xp.start_run(name="squeezed") as run:
        xp.log_metric("m", 1.0)
        xp.log_param("p", "v")
    monkeypatch.setattr(gitcommit, "create_ref", real_create_ref)
    assert ran
    got = xp.get_run(run.id)
    assert (got.metrics, got.params) == ({"m": 1.0}, {"p": "v"})
    assert "warnings" not in got.meta  # the snapshot is the baseline's tree: reachable
    # the repo fixture's git fsck --strict checks the commit and its trees on the way out


def test_a_crashed_run_is_recovered_with_its_kept_snapshot(repo: Path) -> None:
    (repo / "new_module.py").write_text("x = 2\n")
    run = xp.start_run(name="crashed")
    xp.log_metric("m", 1.0)
    run.flush()
    run.journal.close(remove=False)  # the process dies
    fluent._stack.clear()
    git(repo, "gc", "-q", "--prune=now")
    _code, out, err = xp_main("recover", cwd=repo)
    assert f"recovered {run.id} (crashed)" in out, err
    got = xp.get_run(run.id)
    assert git(repo, "show", f"{got.commit}:new_module.py") == "x = 2\n"
    assert _keeps(repo) == []


def test_keeps_of_runs_without_a_journal_are_dropped_by_xp_recover(repo: Path) -> None:
    (repo / "new_module.py").write_text("x = 3\n")
    run = xp.start_run()
    run.flush()
    assert _keeps(repo)
    run.journal.close(remove=True)  # as if the process died right after its commit
    fluent._stack.clear()
    xp_main("recover", cwd=repo)
    assert _keeps(repo) == []


def test_a_running_git_gc_is_seen_by_its_pid_file(repo: Path) -> None:
    common = find_repo().common_dir
    assert protect.gc_running(common) is None
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (common / "gc.pid").write_text(f"{sleeper.pid} {socket.gethostname()}")
        assert protect.gc_running(common) == sleeper.pid
        (common / "gc.pid").write_text(f"{sleeper.pid} some-other-host")
        assert protect.gc_running(common) is None  # git gc's own rule: not ours to wait for
    finally:
        sleeper.kill()
        sleeper.wait()
    (common / "gc.pid").write_text(f"{sleeper.pid} {socket.gethostname()}")
    assert protect.gc_running(common) is None  # a gc killed before it cleaned up
    assert protect.wait_for_gc(common, sleeper.pid, timeout=1)
    os.unlink(common / "gc.pid")
