from __future__ import annotations

import click

from xp.cli import render
from xp.gitstore.repo import find_repo
from xp.hooks.clone_setup import init_clone
from xp.sharing.project_setup import undo_project


@click.command()
@click.option(
    "--remote",
    "remotes",
    multiple=True,
    metavar="NAME",
    help="Configure only this git remote (repeatable). Default: every remote.",
)
@click.option("--no-git-config", is_flag=True, help="Write the config file only; leave git alone.")
@click.option("--undo", is_flag=True, help="Remove the refspecs xp added to git's config.")
@click.option(
    "--sign",
    is_flag=True,
    help="Sign run commits and registry tags with your git signing key (xp.sign).",
)
def init(remotes: tuple[str, ...], no_git_config: bool, undo: bool, sign: bool) -> None:
    """Set up xp here: write .xp/config.yaml, make git fetch bring runs and install the
    pre-push hook that sends runs, artifacts and registry tags with git push.

    Safe to run again: it changes only what is missing. Fetched runs land under
    refs/xp/remotes/<remote>/runs/, so `git fetch --prune` never deletes a local run.
    """
    repo = find_repo()
    wanted = list(remotes) or None
    result = (
        undo_project(repo, remotes=wanted)
        if undo
        else init_clone(repo, remotes=wanted, git_config=not no_git_config, sign=sign)
    )
    for change in result.changes:
        render.echo(change)
    if not result.changes:
        render.echo(
            "xp is already set up here; nothing changed." if not undo else "nothing to undo."
        )
    if not undo and not no_git_config and not result.remotes:
        render.echo("no git remote yet: after `git remote add origin URL`, run `xp init` again.")
