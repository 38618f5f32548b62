from __future__ import annotations

import click

from xp.cli import render
from xp.cli.common import report_recovery
from xp.gitstore.repo import find_repo
from xp.tracking import recover as recovery


@click.command()
@click.option(
    "--retry-failed",
    is_flag=True,
    help="Try again the journals set aside as .failed/.corrupt (e.g. after upgrading xp).",
)
def recover(retry_failed: bool) -> None:
    """Commit the journal of every run whose process died (killed, OOM, power loss).

    Other xp commands do this on their own; this one only does that (and lets git repack
    what runs that ended had kept). A journal that can never be committed is set aside as
    .git/xp/journal/<id>.failed with its reason.
    """
    repo = find_repo()
    if retry_failed:
        for run_id in recovery.retry_failed(repo):
            render.echo(f"retrying {run_id}")
    result = recovery.recover_all(repo)
    recovery.release_orphans(repo)
    for run_id, status in result.recovered:
        render.echo(f"recovered {run_id} ({status})")
    report_recovery(result, recovered=False)
    if not result.recovered:
        render.echo("no dead runs to recover.")
