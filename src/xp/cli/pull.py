from __future__ import annotations

import click

from xp.cli import render
from xp.cli.common import open_repo
from xp.cli.progress import progress_bar
from xp.config import human_size


@click.command()
@click.argument("git_remote", required=False)
@click.option("--artifacts", is_flag=True, help="Also download the runs' artifact objects.")
@click.option("--store", metavar="NAME", help="Artifact remote to download from.")
@click.option("-j", "--jobs", type=click.IntRange(1, 256), help="Parallel transfers.")
def pull(git_remote: str | None, artifacts: bool, store: str | None, jobs: int | None) -> None:
    """Fetch a git remote's runs (default: origin): its run catalog into
    refs/xp/remotes/<remote>/catalog/ (per-run refs of a format-1 remote into
    refs/xp/remotes/<remote>/runs/), and other clones' monitoring points into
    refs/xp/remotes/<remote>/monitoring/.

    Local runs are never deleted or changed. Artifacts come later with `xp get`, or now
    with --artifacts.
    """
    from xp.sharing.push_pull import pull as pull_runs

    repo = open_repo()
    with progress_bar("downloading") as bar:
        result = pull_runs(
            repo, remote=git_remote, artifacts=artifacts, store=store, jobs=jobs, progress=bar
        )
    render.echo(
        f"runs: {len(result.new)} new, {len(result.updated)} updated, {result.total} on"
        f" {result.git_remote!r}"
    )
    for why in result.skipped[:10]:
        render.echo(f"xp: warning: catalog entry skipped: {why}", err=True)
    if len(result.skipped) > 10:
        more = len(result.skipped) - 10
        render.echo(f"xp: warning: {more} more catalog entries skipped", err=True)
    if result.chains:
        render.echo(f"monitoring points: {result.chains} chain(s) new or updated")
    down = result.download
    if down is None:
        return
    if down.store:
        render.echo(f"artifacts: {down.objects} downloaded ({human_size(down.bytes)})")
    lost = [i for i in down.absent if i.kind == "artifact"]
    for item in lost[:10]:
        render.echo(
            f"xp: error: run {item.run}: {item.path} (sha256 {item.sha256}) is on no store",
            err=True,
        )
    if lost:
        raise click.exceptions.Exit(1)
