"""Helpers shared by commands."""

from __future__ import annotations

from xp.cli import render
from xp.gitstore.repo import GitRepo, find_repo


def open_repo() -> GitRepo:
    """The current repo, after committing any run whose process died (status crashed) and
    removing what killed xp processes left in its temporary folder."""
    from xp.execution.cleanup import clean
    from xp.tracking.recover import recover

    repo = find_repo()
    for run_id, status in recover(repo):
        render.echo(f"xp: recovered run {run_id} of a process that ended ({status})", err=True)
    for path in clean(repo).orphans:
        render.echo(
            f"xp: warning: a process logged into run {path.name.split('-')[0]} after it was"
            f" recorded; those values are not in the run (kept in {path})",
            err=True,
        )
    return repo
