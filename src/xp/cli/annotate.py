"""The bodies of ``xp tag`` and ``xp note``, without click: the click commands (``tag.py``,
``note.py``) and ``quick`` (their plain forms, answered before click is imported) share them."""

from __future__ import annotations

from xp.cli.common import open_repo
from xp.cli.output import echo
from xp.errors import InvalidValueError


def tag(run: str, pairs: tuple[str, ...], remove: tuple[str, ...]) -> None:
    from xp.sharing.annotate import tag as do_tag

    tags = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidValueError(f"{pair!r} is not KEY=VALUE; e.g. xp tag RUN reviewed=yes")
        tags[key] = value
    result = do_tag(open_repo(), run=run, tags=tags, remove=remove)
    shown = " ".join(f"{k}={v}" for k, v in result.tags.items()) or "no tags"
    echo(f"run {result.run_id}: {shown}")


def note(run: str, text: str | None) -> None:
    repo = open_repo()
    if text is None:
        from xp.query.resolve import load_run

        view = load_run(repo, run)
        for n in view.notes:
            echo(f"{n.time}  {n.who}\n    {n.args['text']}")
        if not view.notes:
            echo(f"run {view.run_id} has no notes; add one: xp note {run} 'TEXT'", err=True)
        return
    from xp.sharing.annotate import note as add_note

    result = add_note(repo, run=run, text=text)
    echo(f"run {result.run_id}: note added")
