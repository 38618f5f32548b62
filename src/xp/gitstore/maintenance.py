"""What ``xp maintenance`` asks git: object counts, an incremental or full repack that drops
nothing, and registering the repository with ``git maintenance``'s scheduler; and the
background repack a run commit starts when many objects are loose (``maybe_repack``)."""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass
from pathlib import Path

from xp.gitstore.repo import GitRepo, detach_git, git_failure

# A run leaves ~7 loose objects (its record files, three trees, its commit): 1,000 runs left
# 7,000 files that every later reader opens one by one (``git push`` of them spent 0.4 of
# its CPU-s there). Once about REPACK_AT are loose, the run commit that counted them packs
# them in the background, as ``git gc --auto`` does past 6,700 (``maybe_repack``).
REPACK_AT = 2048
REPACK_LOCK = "repack.lock"  # in the xp dir: held by the background repack while it runs


@dataclass(frozen=True)
class ObjectCounts:
    """``git count-objects -v``: loose objects, packed objects and their sizes in bytes."""

    loose: int
    loose_bytes: int
    packed: int
    packed_bytes: int
    packs: int
    garbage: int

    @classmethod
    def parse(cls, text: str) -> ObjectCounts:
        values = {}
        for line in text.splitlines():
            key, _, value = line.partition(":")
            if value.strip().isdigit():
                values[key.strip()] = int(value.strip())
        kib = 1024  # count-objects -v gives sizes in KiB
        return cls(
            loose=values.get("count", 0),
            loose_bytes=values.get("size", 0) * kib,
            packed=values.get("in-pack", 0),
            packed_bytes=values.get("size-pack", 0) * kib,
            packs=values.get("packs", 0),
            garbage=values.get("garbage", 0),
        )


def count_objects(repo: GitRepo) -> ObjectCounts:
    return ObjectCounts.parse(repo.git("count-objects", "-v").stdout.decode(errors="replace"))


def repack(repo: GitRepo, *, full: bool) -> None:
    """Pack loose objects into a new pack and delete the loose copies now packed
    (``git repack -d``, as ``git gc --auto`` does); ``full`` folds every pack into one and
    turns what no ref reaches into loose objects again (``-A``, never ``-a``, which would
    drop them: a live run's fresh snapshot may be such an object). Packs with a ``.keep``
    (a live run's, or a fetch in progress) are left as they are either way; nothing is pruned."""
    args = ("repack", "-d", "-q", *(("-A",) if full else ()))
    proc = repo.git(*args, check=False)
    if proc.returncode != 0:
        raise git_failure(args, proc, "free disk space, then `git fsck` and `xp maintenance` again")


def register_maintenance(repo: GitRepo) -> None:
    """``git maintenance register``: list this repository in the user's global
    ``maintenance.repo``, so ``git maintenance start`` (cron, systemd or launchd) runs its
    hourly and daily tasks here (incremental strategy: prefetch, commit-graph, loose objects,
    incremental repack; none prunes)."""
    args = ("maintenance", "register")
    proc = repo.git(*args, check=False)
    if proc.returncode != 0:
        raise git_failure(args, proc, "check that your global git config is writable")


def loose_estimate(objects_dir: Path) -> int:
    """How many loose objects there are, as ``git gc --auto`` estimates it: 256 times the
    files in ``objects/17`` (one folder read, not 256)."""
    try:
        with os.scandir(objects_dir / "17") as entries:
            return 256 * sum(1 for e in entries if len(e.name) == 38)
    except OSError:
        return 0


def maybe_repack(repo: GitRepo) -> bool:
    """Pack the loose objects in the background when about ``REPACK_AT`` are loose; whether
    a repack was started. Not while one runs (``REPACK_LOCK``), nor where the user turned
    git's automatic packing off (``gc.auto=0``).

    ``git repack -d -l --geometric=2`` (git >= 2.32; plain ``-d -l`` on older ones): the
    loose objects go into a new pack and small packs are rolled into bigger ones, so the
    number of packs stays logarithmic in the runs; the loose copies are deleted only once
    packed. Packs with a ``.keep`` (a live run's snapshot, a fetch in progress) are left
    alone and nothing is pruned: an object no ref reaches yet (a run committing now) is
    packed or stays loose, never dropped. One thread, niced: a sweep's next run goes first."""
    if loose_estimate(repo.objects_dir) < REPACK_AT:
        return False
    from xp.gitstore import gitconfig

    if (gitconfig.get(repo, "gc.auto") or "").strip() == "0":
        return False
    try:
        fd = os.open(repo.xp_dir / REPACK_LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError:
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False  # a repack runs
        # --git-dir: a hook's relative GIT_DIR would not name it from there
        base = [f"--git-dir={repo.common_dir}", "-c", "pack.threads=1", "repack", "-d", "-l", "-q"]
        detach_git([[*base, "--geometric=2"], base], repo.common_dir, hold=fd)
        return True
    finally:
        os.close(fd)  # the repack holds the lock through its own copy


def wait_for_repack(xp_dir: Path) -> None:
    """Return once no background repack runs in the repository whose xp dir is ``xp_dir``
    (tests and benchmarks wait, so that the repack is not timed with what comes next)."""
    try:
        fd = os.open(xp_dir / REPACK_LOCK, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
    finally:
        os.close(fd)
