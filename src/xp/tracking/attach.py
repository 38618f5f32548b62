"""Whether a process that inherited ``XP_RUN_ID`` can log into that run, or must start its own.

``xp run`` hands its script ``XP_RUN_ID`` and ``XP_JOURNAL_DIR`` (``Run.child_env``): the
script's ``start_run()`` then writes a journal *part* that the owner merges when it commits.
Cluster engines pass the whole environment on (``sbatch --export=ALL``, Ray, Dask), so a task
on another machine, or one that starts after the owner ended, inherits the id too; a part it
wrote would never be merged. So a part is written only while the owner's journal is there and
locked by a live process; otherwise the task starts a run of its own, recorded as a child of
the inherited one (``parent``, tag ``xp.parent``), and says so on stderr. That is what W&B does
with an inherited run id it cannot continue in place (it logs, it never drops values); MLflow
raises instead, which would fail every task of a sweep whose driver is elsewhere.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from xp.record.journal import SUFFIX, flocked_inodes


@dataclass(frozen=True, slots=True)
class Inherited:
    """What a process does with an inherited ``XP_RUN_ID``: ``attach`` to it, or start a
    run whose ``parent`` it is (``why``: the reason, said once on stderr)."""

    attach: str | None
    parent: str | None
    why: str | None = None


def unreachable(run_id: str, journal_dir: str | None) -> str | None:
    """Why run ``run_id``'s owner cannot merge a part written here, or None when it can."""
    if not journal_dir:
        return "XP_JOURNAL_DIR is not set"
    journal = Path(journal_dir) / f"{run_id}{SUFFIX}"
    try:
        inode = os.stat(journal).st_ino
    except OSError:
        return f"its journal {journal} is not on this machine (or the run has ended)"
    locked = flocked_inodes()
    if locked is not None and inode not in locked:
        return f"the process that owns its journal {journal} has ended"
    return None


def inherited(environ: dict[str, str] | None = None) -> Inherited:
    """Read ``XP_RUN_ID`` / ``XP_JOURNAL_DIR`` and decide (see the module docstring)."""
    env = os.environ if environ is None else environ
    run_id = env.get("XP_RUN_ID") or None
    if run_id is None:
        return Inherited(None, None)
    why = unreachable(run_id, env.get("XP_JOURNAL_DIR"))
    if why is None:
        return Inherited(run_id, None)
    return Inherited(None, run_id, why)


def say_own_run(parent: str, why: str, new_id: str) -> None:
    """One line on stderr: a script's run has no caller that would print it (as
    ``run._say_skipped``, an exception to "the library never prints")."""
    sys.stderr.write(
        f"xp: warning: XP_RUN_ID={parent} was inherited but {why}; logging into a new run"
        f" {new_id} with parent {parent} instead (unset XP_RUN_ID in tasks that start their"
        " own runs)\n"
    )
