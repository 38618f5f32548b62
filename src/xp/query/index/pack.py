"""The detached process that packs the loose run refs a look found (1,000 or more):
``Index.sync`` starts it, as ``git gc --auto`` detaches its work, because moving 100,000
refs (a lock file made and removed for each) takes seconds the command that found them
should not wait for. Started as ``python -m xp.query.index.pack``; not a command.

It inherits, as its first argument, a file descriptor holding an exclusive ``flock`` on
``<xp dir>/pack-refs.lock`` (taken by its parent, so no second packer starts meanwhile and a
caller can wait for this one: ``wait_for_packer``), released when it exits.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

from xp import fsutil
from xp.gitstore.repo import GitRepo
from xp.query.index.store import PACKER_LOCK, Index


def main(argv: list[str]) -> int:
    """argv: the locked descriptor, index file, work tree, git dir, common dir."""
    fd = int(argv[0])
    index_path, worktree, git_dir, common_dir = argv[1:5]
    with contextlib.suppress(OSError):
        os.nice(10)  # background work: the user's next command goes first
    repo = GitRepo(Path(worktree), Path(git_dir), Path(common_dir))
    try:
        with Index(repo, Path(index_path)) as index:
            index.pack_loose()
    finally:
        os.close(fd)
    return 0


def wait_for_packer(xp_dir: Path) -> None:
    """Return once no packer runs in the repository whose xp dir is ``xp_dir`` (tests and
    benchmarks wait so that the packing is not timed with what comes next)."""
    fsutil.wait_unlocked(xp_dir / PACKER_LOCK)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
