"""The work tree: what changed in it, restoring files from a commit, and linked worktrees.

Linked worktrees (``git worktree add``) are how xp runs a recorded tree in a folder of its
own; they share objects and refs with the main clone.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from xp.gitstore.repo import GitRepo, run_git

_add_lock = threading.Lock()  # `git worktree add` edits .git/worktrees/: one at a time


def changed_paths(repo: GitRepo) -> list[str]:
    """Paths ``git status`` reports: modified, staged, deleted and untracked (not ignored)."""
    out = repo.git("status", "--porcelain", "-z", "--untracked-files=all").stdout
    return [os.fsdecode(p[3:]) for p in out.split(b"\0") if len(p) > 3]


def tracked_paths(repo: GitRepo) -> set[str]:
    out = repo.git("ls-files", "-z").stdout
    return {os.fsdecode(p) for p in out.split(b"\0") if p}


def restore_files(repo: GitRepo, commit: str, *, exclude: str) -> None:
    """Work-tree files := ``commit``'s (minus ``exclude``); the index and HEAD stay."""
    repo.git(
        "restore",
        f"--source={commit}",
        "--worktree",
        "--no-overlay",
        "--",
        ":/",
        f":(top,exclude){exclude}",
    )


def add_detached(repo: GitRepo, path: Path, commit: str, tree: str, *, drop: str) -> None:
    """A linked worktree at ``path`` on ``commit``, whose index and files are ``tree``
    without the folder ``drop`` (HEAD stays at ``commit``)."""
    with _add_lock:
        repo.git("worktree", "add", "--detach", "--no-checkout", "-q", str(path), commit)
    run_git(["read-tree", "-u", "--reset", tree], cwd=path)
    run_git(["rm", "-r", "-q", "--cached", "--ignore-unmatch", drop], cwd=path)


def remove(repo: GitRepo, path: Path) -> None:
    """Drop a linked worktree and its admin folder; never raises."""
    run_git(["worktree", "remove", "--force", "--force", str(path)], cwd=repo.worktree, check=False)


def prune(repo: GitRepo) -> None:
    """Forget worktrees whose folders are gone."""
    run_git(["worktree", "prune"], cwd=repo.worktree, check=False)
