"""Walking commits: recent history, everything reachable, commits that touch a path."""

from __future__ import annotations

from pathlib import Path

from xp.gitstore.repo import GitRepo, run_git


def recent(repo: GitRepo, rev: str = "HEAD", depth: int = 200) -> list[str]:
    """Up to ``depth`` commits of ``rev``'s history, newest first; [] without commits."""
    proc = repo.git("rev-list", f"--max-count={depth}", rev, "--", check=False)
    return proc.stdout.decode().split() if proc.returncode == 0 else []


def reachable(common_dir: Path) -> list[str]:
    """Every commit any ref or reflog of the repository at ``common_dir`` reaches."""
    proc = run_git(["--git-dir", str(common_dir), "rev-list", "--all", "--reflog"], cwd=common_dir)
    return proc.stdout.decode().split()


def touching(repo: GitRepo, tip: str, path: str, *, not_on: str, known: str | None) -> list[str]:
    """Commits of ``tip`` that change ``path`` and that remote ``not_on`` does not have
    (nor ``known``, a commit the remote is at)."""
    args = ["log", "--format=%H", tip, "--not", f"--remotes={not_on}"]
    if known is not None:
        args.append(known)
    return repo.git(*args, "--", path).stdout.decode().split()


def root_subjects(git_dir: Path) -> list[str]:
    """Subjects of the root commits of HEAD's history; [] when there is no HEAD."""
    proc = run_git(
        ["--git-dir", str(git_dir), "log", "--max-parents=0", "--format=%s", "HEAD"],
        cwd=git_dir,
        check=False,
    )
    return proc.stdout.decode().splitlines() if proc.returncode == 0 else []
