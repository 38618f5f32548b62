"""The background repack a run commit starts once many objects are loose (``maybe_repack``),
as ``git gc --auto`` packs past 6,700: kept apart from ``maintenance`` so that committing a
run loads nothing more than this."""

from __future__ import annotations

import os
from pathlib import Path

from xp import fsutil
from xp.gitstore.repo import GitRepo, detach_git

# A run leaves ~7 loose objects (its record files, three trees, its commit): 1,000 runs left
# 7,000 files that every later reader opens one by one (``git push`` of them spent 0.4 of
# its CPU-s there). Once about REPACK_AT are loose, the run commit that counted them packs
# them in the background, as ``git gc --auto`` does past 6,700 (``maybe_repack``).
REPACK_AT = 2048
REPACK_LOCK = "repack.lock"  # in the xp dir: held by the background repack while it runs


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

    # from the listing ``xp commit`` and a run read anyway (a ``git config`` per commit was
    # 1.5 ms where the user turned packing off and objects stay loose)
    found = gitconfig.listing(repo)
    auto = found.config.get("gc.auto") if found is not None else gitconfig.get(repo, "gc.auto")
    if (auto or "").strip() == "0":
        return False
    # --git-dir: a hook's relative GIT_DIR would not name it from there
    args = [f"--git-dir={repo.common_dir}", "-c", "pack.threads=1", "repack", "-d", "-l", "-q"]
    return detach_git(repo.xp_dir / REPACK_LOCK, args, repo.common_dir, newer="--geometric=2")


def wait_for_repack(xp_dir: Path) -> None:
    """Return once no background repack runs in the repository whose xp dir is ``xp_dir``
    (tests and benchmarks wait, so that the repack is not timed with what comes next)."""
    fsutil.wait_unlocked(xp_dir / REPACK_LOCK)
