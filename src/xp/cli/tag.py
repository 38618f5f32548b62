"""``xp tag RUN KEY=VALUE... [--rm KEY]``: change a finished run's tags (a git note)."""

from __future__ import annotations

import click


@click.command()
@click.argument("run")
@click.argument("pairs", nargs=-1, metavar="KEY=VALUE...")
@click.option("--rm", "remove", multiple=True, metavar="KEY", help="Remove this tag (repeatable).")
def tag(run: str, pairs: tuple[str, ...], remove: tuple[str, ...]) -> None:
    """Set or remove tags of RUN after it ended.

    Stored as an event in the git note on the run's commit (refs/notes/xp): the commit is not
    rewritten, `xp log RUN` lists who changed what and when, and xp show, xp diff and
    search_runs see the tags at once (--where "tags.reviewed = 'yes'").
    """
    from xp.cli import annotate

    annotate.tag(run, pairs, remove)
