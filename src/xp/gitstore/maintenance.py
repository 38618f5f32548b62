"""What ``xp maintenance`` asks git: object counts, an incremental or full repack that drops
nothing, and registering the repository with ``git maintenance``'s scheduler."""

from __future__ import annotations

from dataclasses import dataclass

from xp.gitstore.repo import GitRepo, git_failure


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
