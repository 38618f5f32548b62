from __future__ import annotations

import click

from xp.cli import render
from xp.cli.common import open_repo


@click.group()
def remote() -> None:
    """Manage artifact remotes (stored in .xp/config.yaml: commit it to share them)."""


@remote.command("add")
@click.argument("name")
@click.argument("url")
@click.option("-d", "--default", "default", is_flag=True, help="Make it the default remote.")
@click.option("--endpoint-url", help="S3-compatible server URL, e.g. http://127.0.0.1:9000.")
@click.option("--region", help="Object store region.")
@click.option("--profile", help="AWS profile for credentials (never stored: only its name).")
def add(
    name: str,
    url: str,
    default: bool,
    endpoint_url: str | None,
    region: str | None,
    profile: str | None,
) -> None:
    """Add artifact remote NAME at URL: a folder, file://..., s3://bucket/prefix, or any
    fsspec URL whose package is installed."""
    from xp.artifacts.remotes import add_remote

    spec = add_remote(
        open_repo(),
        name=name,
        url=url,
        default=default,
        endpoint_url=endpoint_url,
        region=region,
        profile=profile,
    )
    render.echo(f"added artifact remote {spec.name!r} {spec.url}" + (" (default)" * spec.default))


@remote.command("list")
def list_() -> None:
    """List artifact remotes; the default one is marked with *."""
    from xp.artifacts.remotes import list_remotes

    specs = list_remotes(open_repo())
    for spec in specs:
        extra = f"  endpoint_url={spec.endpoint_url}" if spec.endpoint_url else ""
        render.echo(f"{'*' if spec.default else ' '} {spec.name}\t{spec.url}{extra}")
    if not specs:
        render.echo(
            "no artifact remotes; add one with `xp remote add NAME URL --default`", err=True
        )


@remote.command("remove")
@click.argument("name")
def remove(name: str) -> None:
    """Remove artifact remote NAME from the config (its objects stay where they are)."""
    from xp.artifacts.remotes import remove_remote

    spec = remove_remote(open_repo(), name=name)
    render.echo(f"removed artifact remote {spec.name!r} ({spec.url})")


@remote.command("default")
@click.argument("name")
def default_(name: str) -> None:
    """Make NAME the default artifact remote."""
    from xp.artifacts.remotes import set_default

    spec = set_default(open_repo(), name=name)
    render.echo(f"default artifact remote: {spec.name!r} ({spec.url})")
