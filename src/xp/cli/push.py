from __future__ import annotations

import click

from xp.cli import render
from xp.cli.common import open_repo
from xp.cli.progress import progress_bar
from xp.config import human_size


@click.command()
@click.argument("git_remote", required=False)
@click.argument("runs", nargs=-1, metavar="[RUN]...")
@click.option(
    "--store", metavar="NAME", help="Artifact remote to upload to (default: the default)."
)
@click.option("--no-artifacts", is_flag=True, help="Send the run refs only.")
@click.option("-j", "--jobs", type=click.IntRange(1, 256), help="Parallel transfers.")
def push(
    git_remote: str | None,
    runs: tuple[str, ...],
    store: str | None,
    no_artifacts: bool,
    jobs: int | None,
) -> None:
    """Send runs to a git remote (default: origin), uploading their artifacts first.

    With no RUN, every local run (refs/xp/runs/*) is pushed, and this clone's monitoring
    points (refs/xp/monitoring/*). Artifact objects the artifact
    remote lacks are uploaded before any ref is sent; an interrupted push resumes where it
    stopped.
    """
    from xp.sharing.push_pull import push as push_runs

    repo = open_repo()
    with progress_bar("uploading") as bar:
        result = push_runs(
            repo,
            remote=git_remote,
            runs=list(runs) or None,
            store=store,
            artifacts=not no_artifacts,
            jobs=jobs,
            progress=bar,
        )
    up = result.upload
    if up.store:
        render.echo(
            f"artifacts: {up.objects} sent ({human_size(up.bytes)}), {up.present} already on"
            f" {up.store!r}"
        )
    for item in up.not_cached:
        render.echo(f"note: data input {item.path} of run {item.run} was not cached; not sent")
    render.echo(
        f"runs: {len(result.pushed)} pushed to {result.git_remote!r}, {result.up_to_date}"
        " up to date"
    )
    if result.migrated:
        render.echo(
            f"{result.migrated} runs moved from per-run refs into the catalog on"
            f" {result.git_remote!r} (docs/format.md, section 1)"
        )
    if result.chains:
        render.echo(f"monitoring points: {result.chains} chain(s) pushed")
    for ref, why in result.rejected:
        render.echo(f"xp: error: {result.git_remote!r} rejected {ref}: {why}", err=True)
    if result.rejected:
        raise click.exceptions.Exit(1)
