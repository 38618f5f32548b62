"""What killed xp processes leave behind, cleaned by the next command.

Every temporary file or checkout xp makes lives in its process's own folder under
``<git common dir>/xp/tmp/`` (``fsutil.private_tmp``), locked for the process's life; a
folder whose lock can be taken belongs to a process that is gone, so it goes (its temporary
worktrees with it, then ``git worktree prune``). Nothing of a live process is touched.

A journal part whose run has been committed (no journal left) and whose writer is gone was
written by a process that outlived its run: it cannot be merged any more, so it is renamed
``.orphan`` and reported once, never deleted.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from dataclasses import dataclass, field
from pathlib import Path

from xp import fsutil
from xp.gitstore.repo import GitRepo

ORPHAN = ".orphan"


@dataclass
class Cleanup:
    """What ``clean`` removed and set aside."""

    removed: list[Path] = field(default_factory=list)  # temporary folders of dead processes
    orphans: list[Path] = field(default_factory=list)  # parts set aside now, as .orphan


def clean(repo: GitRepo) -> Cleanup:
    """Remove the temporary folders of dead xp processes; set aside orphaned parts."""
    result = Cleanup()
    for stale in fsutil.stale_tmp(repo.xp_dir):
        try:
            stale.remove()
        finally:
            stale.close()
        result.removed.append(stale.folder)
    if result.removed:
        from xp.gitstore import worktree

        worktree.prune(repo)  # the admin entries of worktrees whose folders just went
    result.orphans = _orphan_parts(repo.xp_dir / "journal")
    return result


def _orphan_parts(journal_dir: Path) -> list[Path]:
    try:
        names = os.listdir(journal_dir)
    except (FileNotFoundError, NotADirectoryError):
        return []
    if not names:
        return []
    from xp.record.journal import PART, SUFFIX  # every command comes here; most find nothing

    journals = {n[: -len(SUFFIX)] for n in names if n.endswith(SUFFIX)}
    out = []
    for name in sorted(names):
        if not name.endswith(PART) or name.split("-", 1)[0] in journals:
            continue
        path = journal_dir / name
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            continue  # its writer still lives
        finally:
            os.close(fd)
        target = path.with_name(name[: -len(PART)] + ORPHAN)
        with contextlib.suppress(OSError):
            os.replace(path, target)
            out.append(target)
    return out
