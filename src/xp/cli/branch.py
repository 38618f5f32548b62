from __future__ import annotations

import click

from xp.cli import render
from xp.cli.common import open_repo


@click.command()
@click.argument("run")
@click.argument("name")
def branch(run: str, name: str) -> None:
    """Make branch NAME at RUN's commit (its code plus its .xp/run/ record).

    `git switch NAME` then continues from the run; xp diff and xp show read the record.
    """
    from xp.sharing.checkout import branch as do_branch

    repo = open_repo()
    run_id, commit = do_branch(repo, run=run, name=name)
    render.echo(f"branch {name} at {commit[:12]} (run {run_id}); switch to it: git switch {name}")
