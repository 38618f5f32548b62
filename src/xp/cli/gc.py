from __future__ import annotations

import click

from xp.cli import render
from xp.cli.common import open_repo
from xp.config import human_size


@click.command()
@click.option("-n", "--dry-run", is_flag=True, help="Report what would be deleted; delete nothing.")
@click.option(
    "--grace",
    type=click.FloatRange(min=0),
    default=3600,
    show_default=True,
    metavar="SECONDS",
    help="Keep objects written or used this recently, whoever refers to them.",
)
def gc(dry_run: bool, grace: float) -> None:
    """Delete cached artifact objects that no run, branch, tag or live run refers to.

    With a shared cache every registered clone's refs count. Live runs (and runs that
    commit while gc runs) keep their objects whatever --grace says: a run journals an
    object before it uses it, and gc reads journals before refs.
    """
    from xp.artifacts.gc import gc as collect

    result = collect(open_repo(), dry_run=dry_run, grace=grace)
    verb = "would free" if dry_run else "freed"
    render.echo(
        f"{verb} {human_size(result.bytes_freed)}: {result.removed} objects"
        f" {'to delete' if dry_run else 'deleted'}, {result.kept} kept ({result.cache_dir})"
    )
