from __future__ import annotations

import click

from xp.cli import render
from xp.cli.common import open_repo
from xp.config import human_size


@click.command()
@click.option("-n", "--dry-run", is_flag=True, help="Say what each step would do; change nothing.")
@click.option(
    "--remote",
    "remotes",
    multiple=True,
    metavar="NAME",
    help="Prune the fetched runs of this git remote only (repeatable; default: every remote).",
)
@click.option("--no-prune", is_flag=True, help="Keep fetched runs the server deleted.")
@click.option("--full", is_flag=True, help="Fold every pack into one (default: when over 50).")
@click.option("--no-cache", is_flag=True, help="Leave the artifact cache alone (no `xp gc`).")
@click.option(
    "--schedule",
    is_flag=True,
    help="Also register this repository with `git maintenance` (git's scheduler).",
)
def maintenance(
    dry_run: bool,
    remotes: tuple[str, ...],
    no_prune: bool,
    full: bool,
    no_cache: bool,
    schedule: bool,
) -> None:
    """Keep a long-lived clone fast: prune, pack refs, repack, expire cache objects.

    Prunes fetched runs deleted on the server, packs refs/xp/ into packed-refs, packs loose
    objects (all packs into one when there are many), expires cache objects by `xp gc`'s
    policy, and prints sizes before and after. Safe while runs are recorded: nothing a
    live run needs is deleted. See docs/teams.md.
    """
    from xp.sharing.maintenance import maintenance as run_maintenance

    result = run_maintenance(
        open_repo(),
        dry_run=dry_run,
        remotes=list(remotes) or None,
        prune=not no_prune,
        full=full,
        cache_gc=not no_cache,
        schedule=schedule,
    )
    would = "would " if dry_run else ""
    for remote, ids in sorted(result.pruned.items()):
        render.echo(f"{would}prune {len(ids)} fetched runs deleted on {remote}")
    render.echo(f"{would}pack {result.refs_packed} loose refs under refs/xp/")
    if result.repack:
        render.echo(f"{would}repack objects ({result.repack})")
    if result.cache is not None:
        render.echo(
            f"{would}expire {result.cache.removed} cache objects"
            f" ({human_size(result.cache.bytes_freed)})"
        )
    b, a = result.before, result.after
    rows = [
        ("refs/xp/ loose", str(b.loose_refs), str(a.loose_refs)),
        ("refs/xp/ packed", str(b.packed_refs), str(a.packed_refs)),
        ("loose objects", str(b.loose_objects), str(a.loose_objects)),
        ("loose objects size", human_size(b.loose_bytes), human_size(a.loose_bytes)),
        ("packed objects", str(b.packed_objects), str(a.packed_objects)),
        ("packs", str(b.packs), str(a.packs)),
        ("packs size", human_size(b.packed_bytes), human_size(a.packed_bytes)),
        ("cache objects", str(b.cache_objects), str(a.cache_objects)),
        ("cache size", human_size(b.cache_bytes), human_size(a.cache_bytes)),
    ]
    render.echo(render.table(["", "before", "after (dry run)" if dry_run else "after"], rows))
    for warning in result.warnings:
        render.echo(f"xp: warning: {warning}", err=True)
    if result.scheduled:
        render.echo(
            "registered with `git maintenance`; run `git maintenance start` once to have"
            " git's scheduler (cron, systemd or launchd) run it hourly"
        )
