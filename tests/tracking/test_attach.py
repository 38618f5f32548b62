"""A child process's xp calls log into the run its parent started (how `xp run` works)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import xp
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
