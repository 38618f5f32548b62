"""Linked worktrees: git's worktree commands made safe against each other."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import threading
from pathlib import Path

from tests.helpers import git
from xp.gitstore import worktree
from xp.gitstore.repo import find_repo


def test_worktrees_added_and_removed_at_once_never_fail(repo: Path, tmp_path: Path) -> None:
    """`git worktree remove` deletes .git/worktrees/ once it is empty, under the feet of an
    `add` that has just made it (and `add` reads entries other adds are making): the cause
    of sweep points lost under load. With xp's lock, none of these adds fails."""
    r = find_repo(repo)
    head = git(repo, "rev-parse", "HEAD").strip()
    tree = git(repo, "rev-parse", "HEAD^{tree}").strip()
    errors: list[str] = []

    def churn(who: str) -> None:
        for i in range(60):
            path = tmp_path / f"wt-{who}-{i}"
            try:
                worktree.add_detached(r, path, head, tree, drop=".xp/run")
            except Exception as exc:  # the test reports every failure, not the first
                errors.append(f"{who}{i}: {exc}")
            worktree.remove(r, path)

    threads = [threading.Thread(target=churn, args=(w,)) for w in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert git(repo, "worktree", "list").count("\n") == 1


def test_another_process_holding_the_lock_makes_worktree_commands_wait(
    repo: Path, tmp_path: Path
) -> None:
    r = find_repo(repo)
    head = git(repo, "rev-parse", "HEAD").strip()
    lock = r.xp_dir / worktree.LOCK_NAME
    r.xp_dir.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT);"
            " fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); sys.stdin.read()",
            str(lock),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "held\n"
        done = threading.Event()

        def add() -> None:
            worktree.add_detached(r, tmp_path / "wt", head, head, drop=".xp/run")
            done.set()

        t = threading.Thread(target=add)
        t.start()
        assert not done.wait(1.0)  # waits for the other process
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(10)
        t.join(30)
        assert done.is_set()
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()
    fd = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # xp let go of it
    finally:
        os.close(fd)
    worktree.remove(r, tmp_path / "wt")
