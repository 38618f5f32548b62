"""The work tree: what changed in it, restoring files from a commit, and linked worktrees.

Linked worktrees (``git worktree add``) are how xp runs a recorded tree in a folder of its
own; they share objects and refs with the main clone.

git's worktree commands are not safe against each other: ``worktree remove`` and ``prune``
delete ``.git/worktrees/`` once it is empty, which makes a concurrent ``worktree add`` fail
("could not create directory of '.git/worktrees/<name>'") if it falls between making that
folder and making its own entry in it, and ``add`` reads every other entry, failing on one
that is half made ("failed to read .git/worktrees/<name>/commondir"). Parallel sweep points
(one finishing while the next starts) and concurrent xp processes hit both, so every command
that edits ``.git/worktrees/`` runs under one lock (``_admin_lock``: a thread lock and an
``flock`` on ``<git common dir>/xp/worktrees.lock``).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from xp.gitstore.repo import GitRepo, run_git

_thread_lock = threading.Lock()
LOCK_NAME = "worktrees.lock"


@contextlib.contextmanager
def _admin_lock(repo: GitRepo) -> Iterator[None]:
    """Hold while a git command edits ``.git/worktrees/``: the threads of this process take
    turns on a lock, processes on an ``flock`` (released by the kernel if one dies). A lock
    file that cannot be made (a read-only ``.git``) leaves only the thread lock: the git
    command then reports what is wrong itself."""
    with _thread_lock:
        fd = None
        with contextlib.suppress(OSError):
            repo.xp_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(repo.xp_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            if fd is not None:
                os.close(fd)


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
    with _admin_lock(repo):
        repo.git("worktree", "add", "--detach", "--no-checkout", "-q", str(path), commit)
    run_git(["read-tree", "-u", "--reset", tree], cwd=path)
    run_git(["rm", "-r", "-q", "--cached", "--ignore-unmatch", drop], cwd=path)


def remove(repo: GitRepo, path: Path) -> None:
    """Drop a linked worktree and its admin folder; never raises."""
    with _admin_lock(repo):
        run_git(
            ["worktree", "remove", "--force", "--force", str(path)], cwd=repo.worktree, check=False
        )


def prune(repo: GitRepo) -> None:
    """Forget worktrees whose folders are gone."""
    with _admin_lock(repo):
        run_git(["worktree", "prune"], cwd=repo.worktree, check=False)


def add_unpopulated(repo: GitRepo, path: Path, commit: str) -> None:
    """A linked worktree at ``path``, detached at ``commit``, with no files checked out yet."""
    with _admin_lock(repo):
        repo.git("worktree", "add", "--detach", "--no-checkout", "-q", str(path), commit)


def checkout_clean(wt: GitRepo, commit: str) -> None:
    """Make the worktree ``wt`` exactly ``commit``: files, index and HEAD; everything else
    (untracked and ignored files a previous command left) removed."""
    wt.git("checkout", "-q", "-f", "--detach", commit)
    wt.git("clean", "-ffdxq")


def is_tracked(repo: GitRepo, path: str) -> bool:
    """Whether ``path`` (relative to the work tree) is in git's index."""
    return repo.git("ls-files", "--error-unmatch", "--", path, check=False).returncode == 0


def ignored(repo: GitRepo, paths: list[str]) -> list[str]:
    """Those of ``paths`` (relative to the work tree) that git ignores; one ``git`` call."""
    if not paths:
        return []
    proc = repo.git(
        "check-ignore",
        "--stdin",
        "-z",
        input=b"\0".join(os.fsencode(p) for p in paths) + b"\0",
        check=False,
    )
    return [os.fsdecode(p) for p in proc.stdout.split(b"\0") if p]
