"""``xp doctor``: what this clone lacks to record and share runs, and how to fix each."""

from __future__ import annotations

import click

from xp.cli import render
from xp.gitstore.repo import find_repo
from xp.hooks.clone_setup import doctor as check_clone


@click.command()
def doctor() -> None:
    """Check this clone: config, git refspecs, hooks, artifact remote; exit 1 if anything is
    missing, with the command that fixes it."""
    findings = check_clone(find_repo())
    if not findings:
        render.echo("ok: runs, artifacts and registry tags travel with git fetch and git push.")
        return
    for finding in findings:
        render.echo(f"- {finding.problem}\n  fix: {finding.fix}")
    raise SystemExit(1)
