"""Talking to git remotes: list them, push and fetch refs, list what a remote has.

Failures come back typed (``GitRemoteError`` for URL, network or access trouble,
``RefRejectedError`` for refused updates) from ``repo.git_failure``, the one reader of
git's stderr, so callers never parse git's messages.
"""

from __future__ import annotations

from dataclasses import dataclass

from xp.gitstore.repo import GitRepo, git_failure


@dataclass(frozen=True)
class RefUpdate:
    """One line of ``git push --porcelain``: what happened to one destination ref."""

    flag: str  # ' ' fast-forward, '+' forced, '-' deleted, '*' new, '!' rejected, '=' up to date
    ref: str  # the destination ref on the remote
    summary: str

    @property
    def rejected(self) -> bool:
        return self.flag == "!"

    @property
    def up_to_date(self) -> bool:
        return self.flag == "="

    @property
    def reason(self) -> str:
        return self.summary.strip().strip("()")


def names(repo: GitRepo) -> list[str]:
    return repo.git("remote").stdout.decode().split()


def _porcelain(text: str) -> list[RefUpdate]:
    rows = []
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) >= 3 and len(parts[0]) == 1:
            rows.append(RefUpdate(parts[0], parts[1].rsplit(":", 1)[-1], parts[2]))
    return rows


def push(
    repo: GitRepo,
    remote: str,
    refspecs: list[str],
    *,
    env: dict[str, str] | None = None,
    leases: dict[str, str | None] | None = None,
    prune: bool = False,
) -> list[RefUpdate]:
    """Push ``refspecs``; every ref's outcome, rejections included. Raises when git failed
    without telling about any ref (the remote could not be reached or written).

    ``leases`` (remote ref -> the value it must still have, None: absent) make the push
    atomic and compare-and-swap: all refs move or none, and a ref someone else moved since
    is rejected (``stale info``) instead of overwritten. ``prune`` deletes the remote refs a
    glob refspec maps to that have no source here: one pass, where one refspec per ref costs
    git time quadratic in the refs (2,000 deletions among 10,000 refs: 12 s)."""
    lease_args = [f"--force-with-lease={ref}:{sha or ''}" for ref, sha in (leases or {}).items()]
    atomic = ["--atomic"] if leases else []
    pruning = ["--prune"] if prune else []
    args = ("push", "--porcelain", *atomic, *pruning, *lease_args, remote, *refspecs)
    proc = repo.git(*args, env=env, check=False)
    rows = _porcelain(proc.stdout.decode(errors="replace"))
    if proc.returncode != 0 and not any(r.rejected for r in rows):
        raise git_failure(args, proc, "check the remote's URL and your access", remote)
    return rows


# A fetched catalog bucket's ref lock older than this has no live git behind it: a fetch
# updates at most 256 bucket refs, in milliseconds.
STALE_LOCK_SECONDS = 2.0


def fetch(repo: GitRepo, remote: str, refspecs: list[str]) -> None:
    """Fetch ``refspecs`` from ``remote`` (no tags, no FETCH_HEAD). A fetch killed while it
    updated the fetched catalog (``xp push`` SIGKILLed) leaves ref locks that would fail every
    later fetch: when a fetch fails beside such locks, they are removed once they are clearly
    stale, and the fetch runs again. They only guard xp's copies of the remote's buckets."""
    args = ("fetch", "--no-tags", "--no-write-fetch-head", remote, *refspecs)
    proc = repo.git(*args, check=False)
    if proc.returncode != 0 and _clear_stale_locks(repo, remote):
        proc = repo.git(*args, check=False)
    if proc.returncode != 0:
        raise git_failure(args, proc, "check the remote's URL and your access", remote)


def _clear_stale_locks(repo: GitRepo, remote: str) -> bool:
    """Remove the ``.lock`` files of ``remote``'s fetched catalog once each is
    ``STALE_LOCK_SECONDS`` old (waiting at most that long); whether any was removed."""
    import os
    import time

    from xp import format as fmt

    folder = repo.common_dir / fmt.catalog_prefix(remote)
    try:
        locks = [e.path for e in os.scandir(folder) if e.name.endswith(".lock")]
    except OSError:
        return False
    removed = False
    for lock in locks:
        try:
            age = time.time() - os.stat(lock).st_mtime
            if age < STALE_LOCK_SECONDS:
                time.sleep(STALE_LOCK_SECONDS - max(age, 0.0))
                if time.time() - os.stat(lock).st_mtime < STALE_LOCK_SECONDS:
                    continue  # rewritten meanwhile: a live fetch
            os.unlink(lock)
            removed = True
        except FileNotFoundError:
            removed = True  # its fetch finished meanwhile: try again
    return removed


def ls_remote(repo: GitRepo, remote: str, pattern: str, *more: str) -> dict[str, str]:
    """Refs the remote has matching ``pattern`` (or any of ``more``; one round trip):
    name -> sha."""
    args = ("ls-remote", "--refs", remote, pattern, *more)
    proc = repo.git(*args, check=False)
    if proc.returncode != 0:
        raise git_failure(args, proc, "check the remote's URL and your access", remote)
    out: dict[str, str] = {}
    for line in proc.stdout.decode(errors="replace").splitlines():
        sha, _, name = line.partition("\t")
        if name:
            out[name] = sha
    return out
