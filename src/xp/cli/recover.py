from __future__ import annotations

import click

from xp.cli import render
from xp.gitstore.repo import find_repo
from xp.tracking.recover import recover as recover_runs


@click.command()
def recover() -> None:
    """Commit the journal of every run whose process died (killed, OOM, power loss).

    Other xp commands do this on their own; this one only does that.
    """
    done = recover_runs(find_repo())
    for run_id, status in done:
        render.echo(f"recovered {run_id} ({status})")
    if not done:
        render.echo("no dead runs to recover.")
