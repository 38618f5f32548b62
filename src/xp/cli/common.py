"""Helpers shared by commands."""

from __future__ import annotations

from xp.cli import render
from xp.gitstore.repo import GitRepo, find_repo


def open_repo() -> GitRepo:
    """The current repo, after committing any run whose process died (status crashed)."""
    from xp.tracking.recover import recover

    repo = find_repo()
    for run_id, status in recover(repo):
        render.echo(f"xp: recovered run {run_id} of a process that ended ({status})", err=True)
    return repo
