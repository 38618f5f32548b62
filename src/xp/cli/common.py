"""Helpers shared by commands."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from xp.cli import output
from xp.gitstore.repo import GitRepo, find_repo

if TYPE_CHECKING:
    from xp.tracking.recover import Recovery


def open_repo() -> GitRepo:
    """The current repo, after committing any run whose process died (status crashed),
    removing what killed xp processes left in its temporary folder, and, in a fresh clone
    of an xp project, setting the clone up to share runs."""
    from xp.config import load_config
    from xp.execution.cleanup import clean
    from xp.hooks.clone_setup import set_up_clone

    repo = find_repo()
    changes = set_up_clone(repo)
    if changes:
        output.echo(
            "xp: set up this clone of an xp project: git fetch and git push now carry runs,"
            f" their artifacts and registry tags ({len(changes)} changes; `xp doctor` checks)",
            err=True,
        )
    for problem in load_config(repo).warnings:  # a newer format or a wrong type raises
        output.echo(f"xp: warning: {problem}", err=True)
    try:
        with os.scandir(repo.xp_dir / "journal") as entries:
            journals = any(True for _ in entries)
    except OSError:  # no journal folder: no run ever logged here, none to recover
        journals = False
    if journals:  # only then load what recovering takes (most commands never need it)
        from xp.tracking.recover import recover_all

        report_recovery(recover_all(repo))
    for path in clean(repo).orphans:
        output.echo(
            f"xp: warning: a process logged into run {path.name.split('-')[0]} after it was"
            f" recorded; those values are not in the run (kept in {path})",
            err=True,
        )
    return repo


def report_recovery(result: Recovery, recovered: bool = True) -> None:
    """One line on stderr for each run recovered, set aside or left for later."""
    if recovered:
        for run_id, status in result.recovered:
            output.echo(f"xp: recovered run {run_id} of a process that ended ({status})", err=True)
    for run_id, count in result.damaged:
        output.echo(
            f"xp: warning: run {run_id}: {count} damaged journal lines failed their checksum"
            " and were dropped (noted in the run's warnings)",
            err=True,
        )
    for run_id, path, reason in result.set_aside:
        output.echo(
            f"xp: warning: run {run_id} cannot be recorded ({reason}); its journal is kept as"
            f" {path} (`xp recover --retry-failed` tries again)",
            err=True,
        )
    for run_id, count in result.merged:
        output.echo(
            f"xp: added {count} part(s) a child process logged after run {run_id} was recorded"
            " to that run",
            err=True,
        )
    for run_id, count, reason in result.orphaned:
        output.echo(
            f"xp: warning: {count} part(s) logged into run {run_id} are not merged ({reason});"
            " they are kept in .git/xp/journal (delete them to drop them)",
            err=True,
        )
    for run_id, reason in result.pending:
        output.echo(
            f"xp: warning: run {run_id} of a process that ended is not recorded yet ({reason});"
            " the next xp command tries again",
            err=True,
        )
