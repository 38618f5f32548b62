"""Helpers shared by commands."""

from __future__ import annotations

from xp.cli import render
from xp.gitstore.repo import GitRepo, find_repo


def open_repo() -> GitRepo:
    """The current repo, after committing any run whose process died (status crashed),
    removing what killed xp processes left in its temporary folder, and, in a fresh clone
    of an xp project, setting the clone up to share runs."""
    from xp.config import load_config
    from xp.execution.cleanup import clean
    from xp.hooks.clone_setup import set_up_clone
    from xp.tracking.recover import recover

    repo = find_repo()
    changes = set_up_clone(repo)
    if changes:
        render.echo(
            "xp: set up this clone of an xp project: git fetch and git push now carry runs,"
            f" their artifacts and registry tags ({len(changes)} changes; `xp doctor` checks)",
            err=True,
        )
    for problem in load_config(repo).warnings:  # a newer format or a wrong type raises
        render.echo(f"xp: warning: {problem}", err=True)
    for run_id, status in recover(repo):
        render.echo(f"xp: recovered run {run_id} of a process that ended ({status})", err=True)
    for path in clean(repo).orphans:
        render.echo(
            f"xp: warning: a process logged into run {path.name.split('-')[0]} after it was"
            f" recorded; those values are not in the run (kept in {path})",
            err=True,
        )
    return repo
