"""``xp tag RUN KEY=VALUE... [--rm KEY]``: change a finished run's tags (a git note)."""

from __future__ import annotations

import click

from xp.cli import render
from xp.cli.common import open_repo
from xp.errors import InvalidValueError


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
    from xp.sharing.annotate import tag as do_tag

    tags = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidValueError(f"{pair!r} is not KEY=VALUE; e.g. xp tag RUN reviewed=yes")
        tags[key] = value
    result = do_tag(open_repo(), run=run, tags=tags, remove=remove)
    shown = " ".join(f"{k}={v}" for k, v in result.tags.items()) or "no tags"
    render.echo(f"run {result.run_id}: {shown}")
