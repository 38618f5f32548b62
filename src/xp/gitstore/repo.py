"""Find the repository and run the git CLI.

The git CLI answers "where is the repo" for every layout (worktrees, GIT_DIR, safe.directory,
submodules) the same way the user's own git does, so we ask it instead of guessing.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import IO

from xp.errors import (
    GitError,
    GitRemoteError,
    MissingDependencyError,
    NotARepoError,
    RefExistsError,
    RefRejectedError,
)

# Set by git for hooks; they would point a nested `git` call at the wrong repo or index.
_LEAKY_ENV = ("GIT_INDEX_FILE", "GIT_PREFIX", "GIT_OBJECT_DIRECTORY", "GIT_QUARANTINE_PATH")


@dataclass(frozen=True)
class GitRepo:
    """Paths of one work tree: git_dir is per worktree, common_dir holds objects and refs."""

    worktree: Path
    git_dir: Path
    common_dir: Path

    @property
    def xp_dir(self) -> Path:
        return self.common_dir / "xp"

    @property
    def objects_dir(self) -> Path:
        return self.common_dir / "objects"

    def git(
        self,
        *args: str,
        env: dict[str, str] | None = None,
        input: bytes | None = None,
        check: bool = True,
    ) -> subprocess.CompletedProcess[bytes]:
        return run_git(args, cwd=self.worktree, env=env, input=input, check=check)


# glibc's malloc gives memory back to the kernel whenever 128 KiB at the top of the heap are
# free, and git frees its inflate buffers after every object: reading 7,000 loose objects
# (``git pack-objects`` of 1,000 runs) made 28,000 ``brk`` calls and took 0.40 of its 0.58 s
# in the kernel. Keeping up to 32 MiB (and growing by 4 MiB) takes that to 0.20 s, with no
# change in peak memory. Other C libraries ignore the variable; a user's own setting wins.
_GIT_MALLOC = "glibc.malloc.trim_threshold=33554432:glibc.malloc.top_pad=4194304"


def git_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _LEAKY_ENV}
    env.setdefault("LC_ALL", "C")
    env.setdefault("GLIBC_TUNABLES", _GIT_MALLOC)
    if extra:
        env.update(extra)
    return env


def run_git(
    args: tuple[str, ...] | list[str],
    cwd: Path | str,
    env: dict[str, str] | None = None,
    input: bytes | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[bytes]:
    exe = _git_exe()
    try:
        proc = subprocess.run(
            [exe, *args], cwd=cwd, env=git_env(env), input=input, capture_output=True
        )
    except OSError as exc:
        raise GitError(f"could not run git: {exc.strerror}; check that git is installed") from None
    if check and proc.returncode != 0:
        raise git_failure(args, proc)
    return proc


def start_git(
    args: list[str], cwd: Path | str, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """A git command started now and finished later by ``wait_git``: it runs on another
    core while this process does other work."""
    try:
        return subprocess.Popen(
            [_git_exe(), *args],
            cwd=cwd,
            env=git_env(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
    except OSError as exc:
        raise GitError(f"could not run git: {exc.strerror}; check that git is installed") from None


def wait_git(
    args: list[str], proc: subprocess.Popen[bytes], check: bool = True
) -> subprocess.CompletedProcess[bytes]:
    """The outcome of a ``start_git`` command, as ``run_git`` gives it."""
    out, err = proc.communicate()
    done = subprocess.CompletedProcess([_git_exe(), *args], proc.returncode, out, err)
    if check and done.returncode != 0:
        raise git_failure(args, done)
    return done


def spawn_git(
    args: list[str], cwd: Path | str, stderr: int | IO[bytes] | None = None
) -> subprocess.Popen[bytes]:
    """A long-lived git process with pipes on stdin and stdout (``git cat-file --batch``)."""
    try:
        return subprocess.Popen(
            [_git_exe(), *args],
            cwd=cwd,
            env=git_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
        )
    except OSError as exc:
        raise GitError(f"could not run git: {exc.strerror}; check that git is installed") from None


def detach_locked(
    lock: Path,
    argv: Callable[[int], list[str]],
    cwd: Path | str,
    *,
    script: str = '"$@" &',
    env: dict[str, str] | None = None,
) -> bool:
    """Start ``argv(fd)`` in the background holding an exclusive ``flock`` on ``lock``, and
    return at once; False when another process holds the lock or nothing could start.
    ``fd`` is the locked descriptor, inherited, so the lock is held until the work ends
    (callers wait with ``fsutil.wait_unlocked``). Through ``sh -c SCRIPT`` (``"$@"`` is
    the command) ending in ``&``: the work is no child of this process (a long-lived one, a
    notebook or ``xp ui``, would keep it as a zombie), and in a new session a Ctrl-C here
    does not stop it."""
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        subprocess.run(
            ["/bin/sh", "-c", script, "sh", *argv(fd)],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            pass_fds=(fd,),
            check=False,
        )
    except OSError:
        return False  # the lock is taken (the work runs), or no process could start
    finally:
        os.close(fd)
    return True


def detach_git(lock: Path, args: list[str], cwd: Path | str, *, newer: str) -> bool:
    """``git ARGS NEWER`` niced in the background holding ``lock`` (``detach_locked``), or
    ``git ARGS`` when that fails (``NEWER``: an option older gits lack)."""
    script = 'o=$1; shift; (nice -n 10 "$@" "$o" || nice -n 10 "$@") &'
    return detach_locked(
        lock, lambda _fd: [newer, _git_exe(), *args], cwd, script=script, env=git_env()
    )


# What git prints when the remote end is the problem (URL, network, access).
_REMOTE_TROUBLE = (
    "could not read from remote",
    "does not appear to be a git repository",
    "unable to access",
    "authentication failed",
    "connection refused",
    "could not resolve host",
    "repository not found",
    "permission denied",
    "the remote end hung up",
)


def _verb(args: tuple[str, ...] | list[str]) -> str:
    """The git subcommand in ``args`` (skipping global options and their values)."""
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg in ("-c", "-C", "--git-dir", "--work-tree"):
            skip = True
        elif not arg.startswith("-"):
            return arg
    return "git"


def git_failure(
    args: tuple[str, ...] | list[str],
    proc: subprocess.CompletedProcess[bytes],
    fix: str = "",
    remote: str | None = None,
) -> GitError | RefExistsError | RefRejectedError:
    """The typed error for a failed git command: the one place that reads git's stderr."""
    lines = proc.stderr.decode(errors="replace").strip().splitlines()
    verb = _verb(args)
    if remote is not None:
        verb += {"push": " to", "fetch": " from"}.get(verb, " of") + f" {remote!r}"
    if proc.returncode < 0:
        detail = f"killed by {signal.Signals(-proc.returncode).name}"
        if proc.returncode == -signal.SIGXFSZ:
            detail += " (file size limit reached: free disk space or raise `ulimit -f`)"
    else:
        fatal = [ln for ln in lines if ln.startswith(("fatal:", "error:"))]
        detail = (fatal or lines or [f"exit code {proc.returncode}"])[-1]
    text = " ".join(lines).lower()
    suffix = f"; {fix}" if fix else ""
    if "already exists" in text:
        return RefExistsError(f"git {verb}: {detail}{suffix}")
    if "[rejected]" in text or "! [remote rejected]" in text:
        return RefRejectedError(f"git {verb} was refused: {detail}{suffix}")
    if remote is not None and any(s in text for s in _REMOTE_TROUBLE):
        return GitRemoteError(
            f"git {verb} failed: {detail}{suffix or '; check the remote URL and your access'}"
        )
    return GitError(f"git {verb} failed: {detail}{suffix}")


@lru_cache(maxsize=1)
def _git_exe() -> str:
    exe = shutil.which("git")
    if exe is None:
        raise MissingDependencyError(
            "git is not installed or not on PATH; install git (e.g. apt-get install git)"
        )
    return exe


@lru_cache(maxsize=32)
def _discover(cwd: str) -> GitRepo:
    proc = run_git(
        [
            "rev-parse",
            "--is-bare-repository",
            "--absolute-git-dir",
            "--git-common-dir",
            "--show-toplevel",
        ],
        cwd=cwd,
        check=False,
    )
    lines = proc.stdout.decode().splitlines()
    if lines and lines[0] == "true":
        raise NotARepoError(
            f"{cwd} is a bare git repository; xp records a work tree: run it in a clone"
            " (git clone <bare> <dir>)"
        )
    if proc.returncode != 0 or len(lines) < 4:
        err = proc.stderr.decode(errors="replace")
        if "not a git repository" in err or not err:
            raise NotARepoError(
                f"not a git repository: {cwd}; run `git init` there first, or cd into your project"
            )
        raise GitError(f"git rev-parse failed: {err.strip().splitlines()[-1]}")
    git_dir = Path(lines[1])
    common = Path(lines[2])
    if not common.is_absolute():
        common = (Path(cwd) / common).resolve()
    return GitRepo(worktree=Path(lines[3]), git_dir=git_dir, common_dir=common)


def find_repo(path: str | os.PathLike[str] | None = None) -> GitRepo:
    """The repo whose work tree holds ``path`` (default: the current directory)."""
    cwd = os.path.abspath(path if path is not None else os.getcwd())
    if not os.path.isdir(cwd):
        raise NotARepoError(f"no such directory: {cwd}; pass an existing project directory")
    repo = _discover(cwd)
    if not repo.git_dir.is_dir():  # deleted or re-created since this process looked
        _discover.cache_clear()
        repo = _discover(cwd)
    return repo


def init_repo(path: Path) -> GitRepo:
    """``git init`` at ``path`` (a new repository with the user's default branch name)."""
    run_git(["init", "-q"], cwd=path)
    return find_repo(path)


def has_identity(path: Path) -> bool:
    """Whether git can name an author and committer here (``user.name``/``user.email`` or env)."""
    return all(
        run_git(["var", var], cwd=path, check=False).returncode == 0
        for var in ("GIT_AUTHOR_IDENT", "GIT_COMMITTER_IDENT")
    )


def commit_all(repo: GitRepo, message: str, env: dict[str, str] | None = None) -> str:
    """Stage everything and commit it (no hooks, no signing); returns the new commit's sha."""
    repo.git("add", "-A")
    repo.git("-c", "commit.gpgsign=false", "commit", "-q", "--no-verify", "-m", message, env=env)
    return repo.git("rev-parse", "HEAD").stdout.decode().strip()
