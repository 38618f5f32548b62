"""A child process's xp calls log into the run its parent started (how `xp run` works)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import xp
from tests.helpers import git, invoke, wait_for
from xp.gitstore.repo import find_repo
from xp.tracking.recover import recover
from xp.tracking.run import Run

CHILD = """
import xp
with xp.start_run(name="from-child", params={"lr": 0.5}) as r:
    for i in range(3):
        xp.log_metric("loss", 1.0 / (i + 1))
    xp.log_text("hello", "notes.txt")
print(r.id)
"""


def _child(repo: Path, run: Run) -> str:
    (repo / "child.py").write_text(CHILD)
    env = {**os.environ, **run.child_env()}
    proc = subprocess.run(
        [sys.executable, "child.py"], cwd=repo, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_child_logs_into_parent_run(repo: Path) -> None:
    run = Run(find_repo())
    assert _child(repo, run) == run.id
    run.log_param("cmd", "child.py")
    run.finish("finished")
    got = xp.get_run(run.id)
    assert got.name == "from-child"
    assert got.params == {"lr": 0.5, "cmd": "child.py"}
    assert list(got.series("loss")["step"]) == [0, 1, 2]
    assert [a.path for a in got.artifacts] == ["notes.txt"]
    assert not list((repo / ".git" / "xp" / "journal").iterdir())


def test_parts_are_merged_when_the_parent_crashed(repo: Path) -> None:
    run = Run(find_repo(), name="parent-name")
    _child(repo, run)
    run.flush()
    run.journal.close(remove=False)  # the parent dies without committing
    from xp.record.journal import flusher

    flusher.unregister(run)
    assert recover(find_repo()) == [(run.id, "crashed")]
    got = xp.get_run(run.id)
    assert got.name == "parent-name"  # a name given by the owner is kept
    assert got.params == {"lr": 0.5}
    assert not list((repo / ".git" / "xp" / "journal").iterdir())


def _run_child(repo: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    (repo / "child.py").write_text(CHILD)
    return subprocess.run(
        [sys.executable, "child.py"],
        cwd=repo,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )


def test_a_task_whose_owner_is_on_another_machine_starts_its_own_run(
    repo: Path, tmp_path: Path
) -> None:
    # As a Slurm/Ray/Dask task does: the driver's environment, not the driver's disk.
    elsewhere = tmp_path / "other-host"
    env = {"XP_RUN_ID": "0abcdefghjkm", "XP_JOURNAL_DIR": str(elsewhere / "journal")}
    proc = _run_child(repo, env)
    assert proc.returncode == 0, proc.stderr
    new_id = proc.stdout.strip()
    assert new_id != "0abcdefghjkm"
    (line,) = proc.stderr.splitlines()
    assert "XP_RUN_ID=0abcdefghjkm was inherited" in line
    assert "not on this machine" in line
    got = xp.get_run(new_id)
    assert got.params == {"lr": 0.5}  # nothing the task logged is lost
    assert list(got.series("loss")["step"]) == [0, 1, 2]
    assert got.meta["parent"] == "0abcdefghjkm"
    assert got.tags["xp.parent"] == "0abcdefghjkm"
    assert not elsewhere.exists()


def test_a_task_started_after_its_owner_ended_starts_its_own_run(repo: Path) -> None:
    run = Run(find_repo())
    env = run.child_env()
    run.finish("finished")  # the driver is gone; its journal too
    proc = _run_child(repo, env)
    assert proc.returncode == 0, proc.stderr
    assert "has ended" in proc.stderr or "run has ended" in proc.stderr
    got = xp.get_run(proc.stdout.strip())
    assert got.params == {"lr": 0.5}
    assert got.meta["parent"] == run.id
    assert xp.get_run(run.id).params == {}  # the ended run is not touched
    assert not [p for p in (repo / ".git" / "xp" / "journal").iterdir() if p.suffix == ".part"]


def test_a_dead_owners_journal_is_not_attached_to(repo: Path) -> None:
    run = Run(find_repo())
    env = run.child_env()
    run.journal.close(remove=False)  # the owner died: its journal is there, unlocked
    from xp.record.journal import flusher

    flusher.unregister(run)
    proc = _run_child(repo, env)
    assert proc.returncode == 0, proc.stderr
    assert "has ended" in proc.stderr
    assert xp.get_run(proc.stdout.strip()).params == {"lr": 0.5}


SLOW_CHILD = """
import pathlib, time, xp
with xp.start_run(params={"lr": 0.5}) as r:
    xp.log_metric("loss", 1.0)
    r.run.flush()
    pathlib.Path("logged").write_text("")
    while not pathlib.Path("go").exists():
        time.sleep(0.01)
    xp.log_metric("loss", 0.5)
print(r.id)
"""


def test_a_part_that_outlived_its_owner_is_merged_by_recover(repo: Path) -> None:
    run = Run(find_repo(), name="owner")
    run.log_param("seed", 1)
    (repo / "child.py").write_text(SLOW_CHILD)
    env = {**os.environ, **run.child_env()}
    child = subprocess.Popen(
        [sys.executable, "child.py"], cwd=repo, env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        wait_for(lambda: (repo / "logged").exists(), "the child's first values")
        first = run.finish("finished")  # the child still writes: its part stays
        assert xp.get_run(run.id).params == {"seed": 1}
        (repo / "go").write_text("")
        out, _ = child.communicate(timeout=60)
    finally:
        child.kill()
        child.wait()
    assert child.returncode == 0
    assert out.strip() == run.id
    result = invoke("recover")
    assert result.exit_code == 0, result.output
    assert f"added 1 part(s) a child process logged after run {run.id}" in result.stderr
    got = xp.get_run(run.id)
    assert got.params == {"seed": 1, "lr": 0.5}
    assert list(got.series("loss")["value"]) == [1.0, 0.5]
    assert got.status == "finished"
    assert git(repo, "rev-parse", f"refs/xp/runs/{run.id}^").strip() == first  # a fast-forward
    assert not list((repo / ".git" / "xp" / "journal").iterdir())
    assert "no dead runs" in invoke("recover").output  # merged once


def test_parts_of_a_run_this_clone_lacks_are_reported_not_lost(repo: Path) -> None:
    journal = repo / ".git" / "xp" / "journal"
    run = Run(find_repo())
    env = run.child_env()
    proc = _run_child(repo, env)
    assert proc.returncode == 0
    run.abort()  # its owner gave up without a record (its ref never written)
    parts = [p for p in journal.iterdir() if p.suffix == ".part"]
    assert len(parts) == 1
    result = invoke("recover")
    assert f"1 part(s) logged into run {run.id} are not merged" in result.stderr
    assert parts[0].exists()
    parts[0].unlink()


MLFLOW_CHILD = """
import xp.mlflow as mlflow
with mlflow.start_run() as r:
    mlflow.log_param("lr", 0.5)
print(r.info.run_id)
"""


def test_the_mlflow_api_starts_its_own_run_too_when_the_owner_is_elsewhere(
    repo: Path, tmp_path: Path
) -> None:
    (repo / "child.py").write_text(MLFLOW_CHILD)
    env = {"XP_RUN_ID": "0abcdefghjkm", "XP_JOURNAL_DIR": str(tmp_path / "elsewhere")}
    proc = subprocess.run(
        [sys.executable, "child.py"],
        cwd=repo,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "XP_RUN_ID=0abcdefghjkm was inherited" in proc.stderr
    got = xp.get_run(proc.stdout.strip())
    assert got.params == {"lr": 0.5}
    assert got.meta["parent"] == "0abcdefghjkm"
