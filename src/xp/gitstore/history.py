"""Walking commits: recent history, everything reachable, commits that touch a path, a
branch's first-parent line (the UI's History page) and the local branches."""

from __future__ import annotations

from dataclasses import dataclass
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


@dataclass(frozen=True)
class CommitInfo:
    """One commit as a history view shows it."""

    sha: str
    subject: str
    time: int  # committer date, seconds since the epoch


@dataclass(frozen=True)
class Branch:
    name: str
    head: str
    time: int  # committer date of the tip


def branches(repo: GitRepo) -> list[Branch]:
    """Local branches, the most recently committed first."""
    proc = repo.git(
        "for-each-ref",
        "--sort=-committerdate",
        "--format=%(refname:short)%00%(objectname)%00%(committerdate:unix)",
        "refs/heads/",
    )
    out = []
    for entry in proc.stdout.decode("utf-8", "replace").splitlines():
        name, sha, when = entry.split("\0")
        out.append(Branch(name, sha, int(when or 0)))
    return out


def first_parent(repo: GitRepo, rev: str, limit: int) -> list[CommitInfo]:
    """The newest ``limit`` commits of ``rev`` along first parents (the branch's own line, not
    what merges brought in), newest first; [] when ``rev`` names no commit."""
    proc = repo.git(
        "log",
        "--first-parent",
        f"--max-count={limit}",
        "--format=%H%x00%ct%x00%s",
        "--end-of-options",
        rev,
        "--",
        check=False,
    )
    if proc.returncode != 0:
        return []
    out = []
    for entry in proc.stdout.decode("utf-8", "replace").splitlines():
        sha, when, subject = entry.split("\0", 2)
        out.append(CommitInfo(sha, subject, int(when)))
    return out


def subjects(repo: GitRepo, shas: list[str]) -> dict[str, str]:
    """sha -> subject line of each commit of ``shas`` that exists (others are left out)."""
    from xp.gitstore.catfile import read_objects

    wanted = [s for s in dict.fromkeys(shas) if len(s) == 40 and set(s) <= set("0123456789abcdef")]
    out = {}
    for sha, data in read_objects(repo, wanted):
        if data is None or not data.startswith(b"tree "):
            continue  # absent, or not a commit
        _, _, message = data.partition(b"\n\n")
        out[sha] = message.decode("utf-8", "replace").split("\n", 1)[0]
    return out


def is_ancestor(repo: GitRepo, ancestor: str, commit: str) -> bool:
    """Whether ``ancestor`` is ``commit`` or in its history."""
    return repo.git("merge-base", "--is-ancestor", ancestor, commit, check=False).returncode == 0


def merge_base(repo: GitRepo, a: str, b: str) -> str | None:
    """The best common ancestor of ``a`` and ``b`` (git's ``a...b``), or None."""
    proc = repo.git("merge-base", a, b, check=False)
    sha = proc.stdout.decode().strip()
    return sha if proc.returncode == 0 and len(sha) == 40 else None


def between(repo: GitRepo, base: str, tip: str, limit: int = 5000) -> list[str]:
    """Commits in ``tip``'s history that ``base``'s lacks (``base..tip``), newest first."""
    proc = repo.git("rev-list", f"--max-count={limit}", f"{base}..{tip}", "--", check=False)
    return proc.stdout.decode().split() if proc.returncode == 0 else []


def commit_info(repo: GitRepo, sha: str) -> CommitInfo | None:
    """Subject and committer date of one commit, or None when it is not one."""
    found = first_parent(repo, sha, 1)
    return found[0] if found else None


def first_parent_of(repo: GitRepo, sha: str) -> str | None:
    """The first parent of commit ``sha``; None for a root commit."""
    proc = repo.git("rev-parse", "--verify", "-q", f"{sha}^1", check=False)
    out = proc.stdout.decode().strip()
    return out if proc.returncode == 0 and len(out) == 40 else None
