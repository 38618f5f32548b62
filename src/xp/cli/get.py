from __future__ import annotations

import click

from xp.cli import render
from xp.cli.common import open_repo
from xp.cli.progress import progress_bar
from xp.config import human_size


@click.command()
@click.argument("run")
@click.argument("paths", nargs=-1, metavar="[PATH]...")
@click.option(
    "-o", "--out", "out_dir", type=click.Path(file_okay=False), help="Folder to write into."
)
@click.option("--store", metavar="NAME", help="Artifact remote to fetch missing objects from.")
@click.option(
    "--link",
    help="How to place files: reflink, copy, hardlink, or a list tried in order (default:"
    " the cache link setting, reflink,copy). A hard link is the cached object itself.",
)
@click.option("-f", "--force", is_flag=True, help="Overwrite files that differ.")
@click.option("-l", "--list", "list_only", is_flag=True, help="List the run's files only.")
@click.option("-j", "--jobs", type=click.IntRange(1, 256), help="Parallel transfers.")
def get(
    run: str,
    paths: tuple[str, ...],
    out_dir: str | None,
    store: str | None,
    link: str | None,
    force: bool,
    list_only: bool,
    jobs: int | None,
) -> None:
    """Write a run's artifacts (all, or PATHs) and cached data inputs into a folder.

    Default folder: the current one. Files missing from the local cache come from the
    artifact remote and are checked against their sha256 first.
    """
    from xp.artifacts.cache import parse_links
    from xp.sharing.get import get as get_files
    from xp.sharing.get import list_files

    repo = open_repo()
    if list_only:
        for item in list_files(repo, run=run):
            kind = "input" if item.kind.startswith("input") else "artifact"
            render.echo(f"{item.sha256[:12]}  {item.size:>12}  {kind:8}  {item.path}")
        return
    links = parse_links(link, "--link") if link else None
    with progress_bar("downloading") as bar:
        result = get_files(
            repo,
            run=run,
            paths=paths,
            out_dir=out_dir,
            store=store,
            links=links,
            force=force,
            jobs=jobs,
            progress=bar,
        )
    for _path, dest, kind in result.written:
        render.echo(f"{dest} ({kind})")
    if result.fetched:
        render.echo(
            f"fetched {result.fetched} objects ({human_size(result.fetched_bytes)})", err=True
        )
    if result.unchanged:
        render.echo(f"{len(result.unchanged)} files already up to date", err=True)
    if result.skipped:
        shown = ", ".join(result.skipped[:5]) + (" ..." if len(result.skipped) > 5 else "")
        render.echo(
            f"xp: skipped {len(result.skipped)} data input(s) with no copy in any cache or"
            f" store ({shown}): logged without cache=True, or never pushed",
            err=True,
        )
