"""``xp ui``: the runs of this repository in the browser (table, charts, compare, run pages,
history, live runs), served from this machine; read-only."""

from __future__ import annotations

import threading

import click

from xp.cli import render
from xp.errors import missing_extra
from xp.gitstore.repo import find_repo

DEFAULT_PORT = 8765


@click.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on. Anything but loopback lets other machines read every run.",
)
@click.option(
    "-p",
    "--port",
    type=click.IntRange(0, 65535),
    default=None,
    help=f"Port (0: any free one)  [default: {DEFAULT_PORT}, or the next free one]",
)
@click.option("--open", "open_browser", is_flag=True, help="Open the page in the web browser.")
@click.option(
    "--allow-host",
    multiple=True,
    metavar="NAME",
    help="Also answer requests for this host name (a proxy's or tunnel's); repeatable.",
)
@click.option("--no-live", is_flag=True, help="Do not follow running runs.")
def ui(
    host: str, port: int | None, open_browser: bool, allow_host: tuple[str, ...], no_live: bool
) -> None:
    """Browse runs in a local web app: filter and sort the table, chart metrics, compare
    params and code, open a run's artifacts, follow running runs live.

    It only reads the repository; it listens on 127.0.0.1 unless --host says otherwise.
    """
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise missing_extra(exc.name or "starlette", "ui", "xp ui") from None
    from xp.ui import server

    repo = find_repo()  # no recovery of dead runs: the UI never writes (they show as crashed)
    sock = server.bind(host, DEFAULT_PORT if port is None else port, exact=port is not None)
    bound = sock.getsockname()[1]
    url = f"http://{server.display_name(host)}:{bound}/"
    if host not in server.LOOPBACK:
        render.echo(
            f"xp ui: warning: listening on {host}: anyone who can reach this machine on port"
            f" {bound} can read every run, param and artifact of this repository",
            err=True,
        )

    def ready() -> None:
        render.echo(f"xp ui: {repo.worktree.name} at {url} (Ctrl-C to stop)")
        if open_browser:
            import webbrowser

            threading.Thread(target=webbrowser.open, args=(url,), daemon=True).start()

    server.serve(
        repo,
        sock,
        names=server.allowed_names(host, allow_host),
        live=not no_live,
        on_ready=ready,
    )
