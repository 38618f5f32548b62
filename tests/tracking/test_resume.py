"""Continuing a run that ended: ``xp.start_run(resume=ID)``, ``XP_RESUME``, and what it does
to the ref (a fast-forward), to a second process, to a crash, and to ``git push``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import xp
from tests.helpers import git, journal_points, spawned, wait_for
from xp.errors import ParamChangedError, RunActiveError, RunNotFoundError


def _ref(run_id: str) -> str:
    return f"refs/xp/runs/{run_id}"


def test_resume_appends_and_moves_the_ref_forward(repo: Path) -> None:
    with xp.start_run(name="job", params={"lr": 0.1}, tags={"a": "1"}) as run:
        xp.log_metric("loss", 1.0)
        xp.log_metric("loss", 0.5)
        xp.log_metric("acc", 0.7, step=4)
    first = git(repo, "rev-parse", _ref(run.id)).strip()
    with xp.start_run(resume=run.id) as again:
        assert again.id == run.id
        xp.log_metric("loss", 0.25)  # the step goes on: 2
        xp.log_metric("acc", 0.9)  # step 5
        xp.log_param("lr", 0.1)
        with pytest.raises(ParamChangedError):
            xp.log_param("lr", 0.2)
        xp.set_tag("b", "2")
    second = git(repo, "rev-parse", _ref(run.id)).strip()
    assert git(repo, "rev-parse", f"{second}^").strip() == first
    assert git(repo, "merge-base", "--is-ancestor", first, second) == ""
    got = xp.get_run(run.id)
    assert got.status == "finished"
    assert got.name == "job"
    assert list(got.series("loss")["step"]) == [0, 1, 2]
    assert list(got.series("loss")["value"]) == [1.0, 0.5, 0.25]
    assert list(got.series("acc")["step"]) == [4, 5]
    assert got.tags == {"a": "1", "b": "2"}
    assert got.meta["start_time"] == xp.get_run(first).meta["start_time"]
    assert len(got.meta["resumed"]) == 1
    assert "xp-status: finished" in git(repo, "log", "-1", "--format=%B", _ref(run.id))


def test_resume_by_prefix_and_failed_runs(repo: Path) -> None:
    with pytest.raises(ValueError, match="preempted"), xp.start_run() as run:
        raise ValueError("preempted")
    assert xp.get_run(run.id).status == "failed"
    with xp.start_run(resume=run.id[:10]):
        xp.log_metric("m", 1)
    assert xp.get_run(run.id).status == "finished"


def test_resume_from_the_environment_once(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with xp.start_run() as run:
        xp.log_metric("epoch", 1)
    monkeypatch.setenv("XP_RESUME", run.id)
    with xp.start_run() as again:
        xp.log_metric("epoch", 2)
    assert again.id == run.id
    assert "XP_RESUME" not in os.environ
    with xp.start_run() as fresh:
        pass
    assert fresh.id != run.id
    assert list(xp.get_run(run.id).series("epoch")["value"]) == [1, 2]


def test_resume_errors(repo: Path) -> None:
    with pytest.raises(RunNotFoundError, match="no run 'nope' to resume"):
        xp.start_run(resume="nope")
    run = xp.start_run()
    try:
        with pytest.raises(RunActiveError, match="still active in this process"):
            xp.start_run(resume=run.id, nested=True)
    finally:
        xp.end_run()


def test_a_second_process_cannot_resume_the_same_run(repo: Path) -> None:
    with xp.start_run() as run:
        xp.log_metric("m", 1)
    script = repo / "hold.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import sys, time, xp
            with xp.start_run(resume={run.id!r}):
                xp.log_metric("m", 2)
                print("resumed", flush=True)
                time.sleep(120)
            """
        )
    )
    journal = repo / ".git" / "xp" / "journal" / f"{run.id}.journal"
    with spawned([sys.executable, str(script)], stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "resumed"
        wait_for(lambda: journal_points(journal, "m") >= 1, "the session's point")
        with pytest.raises(RunActiveError, match=r"is being logged by process \d+"):
            xp.start_run(resume=run.id)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    # the killed session is recovered as crashed, on top of the first commit
    with xp.start_run(resume=run.id):
        xp.log_metric("m", 3)
    got = xp.get_run(run.id)
    assert list(got.series("m")["value"]) == [1, 2, 3]
    history = git(repo, "log", "--format=%s", _ref(run.id)).splitlines()
    assert len([h for h in history if h.startswith("xp: ")]) == 3


def test_a_killed_resumed_session_is_recovered(repo: Path) -> None:
    with xp.start_run(name="long") as run:
        xp.log_metric("loss", 1.0)
        xp.log_text("first session", key="notes")
    before = git(repo, "rev-parse", _ref(run.id)).strip()
    script = repo / "again.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import time, xp
            xp.start_run(resume={run.id!r})
            xp.log_text("second session", key="notes")
            for i in range(3):
                xp.log_metric("loss", 0.5 / (i + 1))
            time.sleep(120)
            """
        )
    )
    journal = repo / ".git" / "xp" / "journal" / f"{run.id}.journal"
    with spawned([sys.executable, str(script)]) as proc:
        wait_for(lambda: journal_points(journal, "loss") >= 3, "the session's points")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    from xp.gitstore.repo import find_repo
    from xp.tracking.recover import recover

    assert recover(find_repo(repo)) == [(run.id, "crashed")]
    got = xp.get_run(run.id)
    assert got.status == "crashed"
    assert list(got.series("loss")["value"]) == [1.0, 0.5, 0.25, 0.5 / 3]
    assert [(e.step, e.path) for e in xp.get_media(got, "notes")] == [
        (0, "media/notes/0.txt"),
        (1, "media/notes/1.txt"),
    ]
    assert git(repo, "rev-parse", f"{_ref(run.id)}^").strip() == before


def test_pushing_a_resumed_run_needs_no_force(repo: Path, tmp_path: Path) -> None:
    bare = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    git(repo, "remote", "add", "origin", str(bare))
    with xp.start_run() as run:
        xp.log_metric("m", 1)
    git(repo, "push", "-q", "origin", "refs/xp/runs/*:refs/xp/runs/*")
    with xp.start_run(resume=run.id):
        xp.log_metric("m", 2)
    git(repo, "push", "-q", "origin", "refs/xp/runs/*:refs/xp/runs/*")  # no --force
    assert git(bare, "rev-parse", _ref(run.id)) == git(repo, "rev-parse", _ref(run.id))


def test_resume_a_fetched_run(repo: Path) -> None:
    with xp.start_run() as run:
        xp.log_metric("m", 1)
    sha = git(repo, "rev-parse", _ref(run.id)).strip()
    git(repo, "update-ref", f"refs/xp/remotes/origin/runs/{run.id}", sha)
    git(repo, "update-ref", "-d", _ref(run.id))
    with xp.start_run(resume=run.id):
        xp.log_metric("m", 2)
    assert git(repo, "rev-parse", f"{_ref(run.id)}^").strip() == sha
    assert list(xp.get_run(run.id).series("m")["value"]) == [1, 2]


def test_annotations_stay_with_a_resumed_run(repo: Path) -> None:
    """Tags, notes and moves made after a run ended are git notes on its commit; continuing
    the run makes a new commit, which carries them, so the run shows them as before."""
    with xp.start_run(name="job", tags={"a": "1"}) as run:
        xp.log_metric("loss", 1.0)
    xp.set_tag("reviewed", "yes", run=run.id)
    xp.delete_tag("a", run=run.id)
    xp.note(run.id, "looks good")
    xp.move_run(run.id, "kept")
    before = git(repo, "rev-parse", _ref(run.id)).strip()
    with xp.start_run(resume=run.id):
        xp.log_metric("loss", 0.5)
        xp.set_tag("b", "2")
    after = git(repo, "rev-parse", _ref(run.id)).strip()
    assert after != before
    got = xp.get_run(run.id)
    assert got.tags == {"reviewed": "yes", "b": "2"}
    assert got.experiment == "kept"
    assert [n.args["text"] for n in got.notes] == ["looks good"]
    assert "looks good" in git(repo, "log", "-1", "--notes=xp", _ref(run.id))
    shown = xp.search_runs(experiment="kept")
    assert list(shown["run_id"]) == [run.id]
    assert shown["tags.reviewed"].tolist() == ["yes"]


def test_a_resumed_run_keeps_its_media_and_steps_go_on(repo: Path) -> None:
    """Media series and ``xp.log``'s step counter go on after the last step: a new session
    never replaces a picture or point of an earlier one."""
    with xp.start_run() as run:
        xp.log_text("one", key="notes")
        xp.log({"loss": 1.0})
        xp.log({"loss": 0.8})
    with xp.start_run(resume=run.id):
        xp.log_text("two", key="notes")
        xp.log({"loss": 0.5})
    got = xp.get_run(run.id)
    assert [(e.step, e.path) for e in xp.get_media(got, "notes")] == [
        (0, "media/notes/0.txt"),
        (1, "media/notes/1.txt"),
    ]
    assert xp.read_artifact(got, "media/notes/0.txt") == b"one"
    assert list(got.series("loss")["step"]) == [0, 1, 2]


def test_resume_refusals_name_the_way_out(repo: Path) -> None:
    from xp.errors import AmbiguousRunError, RunStateError

    with pytest.raises(RunNotFoundError, match="no run to resume given"):
        xp.start_run(resume="  ")
    ids = []
    for _ in range(2):
        with xp.start_run() as run:
            pass
        ids.append(str(run.id))
    common = ids[0][:2]  # ids start with their time: the same here
    assert ids[1].startswith(common)
    with pytest.raises(AmbiguousRunError, match="type more characters"):
        xp.start_run(resume=common)
    # a deleted run (MLflow's delete_run moves its ref) is not resumed behind the user's back
    sha = git(repo, "rev-parse", _ref(ids[0])).strip()
    git(repo, "update-ref", f"refs/xp/deleted/runs/{ids[0]}", sha)
    git(repo, "update-ref", "-d", _ref(ids[0]))
    with pytest.raises(RunStateError, match=r"was deleted .* restore it"):
        xp.start_run(resume=ids[0])
    git(repo, "update-ref", _ref(ids[0]), sha)
    git(repo, "update-ref", "-d", f"refs/xp/deleted/runs/{ids[0]}")
    with xp.start_run(resume=ids[0].upper()) as again:  # ids are case-insensitive
        assert str(again.id) == ids[0]
