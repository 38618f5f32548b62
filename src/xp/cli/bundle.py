"""``xp bundle create FILE [RUN...]`` / ``xp bundle import FILE``: runs in one file."""

from __future__ import annotations

import click

from xp.cli import render
from xp.cli.common import open_repo
from xp.config import human_size


@click.group()
def bundle() -> None:
    """Move runs and their artifacts in one file, between clones that share no remote."""


@bundle.command("create")
@click.argument("file", type=click.Path(dir_okay=False))
@click.argument("runs", nargs=-1)
@click.option("--since", metavar="TIME", help="Runs created since: '2026-11-01' or '7 days ago'.")
@click.option(
    "--exclude",
    multiple=True,
    metavar="REV",
    help="Leave out commits the importing clone has already (e.g. origin/main); repeatable.",
)
def create(file: str, runs: tuple[str, ...], since: str | None, exclude: tuple[str, ...]) -> None:
    """Write RUNS (default: every run recorded here) with their artifacts to FILE.

    FILE holds a git bundle of the runs' commits, their annotations and one copy of each
    artifact; `xp bundle import FILE` on any clone of the project brings them in.
    """
    from xp.sharing.bundle import create as do_create

    repo = open_repo()
    result = do_create(repo, path=file, runs=list(runs), since=since, exclude=list(exclude))
    for item in result.not_cached:
        render.echo(
            f"xp: warning: run {item.run}: data input {item.path} was logged without"
            " cache=True; its bytes are not in the bundle",
            err=True,
        )
    render.echo(
        f"wrote {file}: {len(result.runs)} run(s), {result.artifacts} artifact(s)"
        f" ({human_size(result.bytes)})"
    )


@bundle.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
def import_(file: str) -> None:
    """Bring the runs and artifacts of FILE in, verifying every hash first.

    Runs land in refs/xp/remotes/bundle/runs/ (they were recorded elsewhere); importing a
    file again changes nothing. A bundle whose artifact bytes or git objects do not match
    their hashes is refused whole.
    """
    from xp.sharing.bundle import import_bundle

    repo = open_repo()
    result = import_bundle(repo, path=file)
    for item in result.missing:
        render.echo(
            f"xp: warning: run {item.run}: artifact {item.path} is in neither the bundle nor"
            " the cache",
            err=True,
        )
    render.echo(
        f"imported {file}: {len(result.new)} new run(s), {len(result.updated)} updated,"
        f" {len(result.present)} already here; {result.artifacts} artifact(s) added,"
        f" {result.artifacts_present} already cached"
    )
