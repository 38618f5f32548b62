"""``xp move RUN... -e EXPERIMENT``: put runs in another experiment after the fact."""

from __future__ import annotations

import click

from xp.cli import render
from xp.cli.common import open_repo


@click.command()
@click.argument("runs", nargs=-1, required=True)
@click.option("-e", "--experiment", required=True, help="The experiment to put the runs in.")
def move(runs: tuple[str, ...], experiment: str) -> None:
    """Move RUNS to EXPERIMENT (an annotation: each record keeps where the run started)."""
    from xp.sharing.annotate import move as do_move

    for result in do_move(open_repo(), runs=list(runs), experiment=experiment):
        render.echo(f"run {result.run_id}: experiment {result.experiment}")
