"""``xp note RUN [TEXT]``: add a note to a run, or list its notes."""

from __future__ import annotations

import click

from xp.cli import render
from xp.cli.common import open_repo


@click.command()
@click.argument("run")
@click.argument("text", required=False)
def note(run: str, text: str | None) -> None:
    """Add TEXT as a note on RUN (a git note: the run commit is not rewritten).

    Without TEXT, print RUN's notes, oldest first, with who wrote them and when.
    """
    repo = open_repo()
    if text is None:
        from xp.query.resolve import load_run

        view = load_run(repo, run)
        for n in view.notes:
            render.echo(f"{n.time}  {n.who}\n    {n.args['text']}")
        if not view.notes:
            render.echo(f"run {view.run_id} has no notes; add one: xp note {run} 'TEXT'", err=True)
        return
    from xp.sharing.annotate import note as add_note

    result = add_note(repo, run=run, text=text)
    render.echo(f"run {result.run_id}: note added")
