"""``git bundle``: refs and their objects in one file, moved without any remote.

Importing fetches from the bundle file with ``transfer.fsckObjects`` on, so git checks every
object it receives (a bundle is someone else's data) before any ref moves.
"""

from __future__ import annotations

from pathlib import Path

from xp.gitstore.repo import GitRepo, git_failure


def create(repo: GitRepo, path: Path, refs: list[str], exclude: list[str]) -> None:
    """A bundle at ``path`` of ``refs`` and all they reach, minus what ``exclude`` reaches."""
    args = ["bundle", "create", "-q", str(path), *refs]
    if exclude:
        args += ["--not", *exclude]
    proc = repo.git(*args, check=False)
    if proc.returncode != 0:
        raise git_failure(args, proc, "check the runs and the --exclude revisions")


def verify(repo: GitRepo, path: Path) -> None:
    """Raise (git's reason, e.g. the commits it lacks) unless this repository can take it."""
    args = ("bundle", "verify", "-q", str(path))
    proc = repo.git(*args, check=False)
    if proc.returncode != 0:
        raise git_failure(
            args,
            proc,
            "the bundle was made with --exclude: fetch those commits here first, or make it"
            " again without --exclude",
        )


def heads(repo: GitRepo, path: Path) -> dict[str, str]:
    """The refs the bundle holds: name -> sha."""
    proc = repo.git("bundle", "list-heads", str(path))
    out = {}
    for line in proc.stdout.decode("utf-8", "replace").splitlines():
        sha, _, name = line.partition(" ")
        if len(sha) == 40 and name:
            out[name] = sha
    return out


def fetch(repo: GitRepo, path: Path, refspecs: list[str]) -> None:
    """Fetch ``refspecs`` from the bundle file, every object checked by git's fsck."""
    args = (
        "-c",
        "transfer.fsckObjects=true",
        "fetch",
        "-q",
        "--no-tags",
        "--no-write-fetch-head",
        str(path),
        *refspecs,
    )
    proc = repo.git(*args, check=False)
    if proc.returncode != 0:
        raise git_failure(args, proc, "the bundle is damaged or was tampered with; get a new copy")
