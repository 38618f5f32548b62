"""``xp note RUN [TEXT]``: add a note to a run, or list its notes."""

from __future__ import annotations

import click


@click.command()
@click.argument("run")
@click.argument("text", required=False)
def note(run: str, text: str | None) -> None:
    """Add TEXT as a note on RUN (a git note: the run commit is not rewritten).

    Without TEXT, print RUN's notes, oldest first, with who wrote them and when.
    """
    from xp.cli import annotate

    annotate.note(run, text)
