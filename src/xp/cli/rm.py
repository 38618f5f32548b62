from __future__ import annotations

import click

from xp.cli import render
from xp.cli.common import open_repo


@click.command()
@click.argument("runs", nargs=-1, required=True, metavar="RUN...")
@click.option("--remote", metavar="GIT_REMOTE", help="Also delete the runs on this git remote.")
def rm(runs: tuple[str, ...], remote: str | None) -> None:
    """Delete runs (their local ref and fetched copies); with --remote, on the remote too.

    Artifact objects stay in the cache until `xp gc`.
    """
    from xp.sharing.rm import remove_runs

    result = remove_runs(open_repo(), runs=list(runs), remote=remote)
    for run_id in result.removed:
        render.echo(f"removed {run_id}")
    if result.git_remote:
        render.echo(
            f"{len(result.remote_removed)} deleted on {result.git_remote!r}"
            + (f", {len(result.remote_absent)} were not there" if result.remote_absent else "")
        )
