from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from xp.cli import render
from xp.cli.progress import progress_bar
from xp.gitstore.repo import find_repo
from xp.hooks import install as githooks


@click.group()
def hooks() -> None:
    """Install, remove or inspect xp's git hooks (pre-commit, pre-push, post-checkout)."""


@hooks.command()
@click.option(
    "--hook",
    "hook",
    multiple=True,
    metavar="NAME",
    help="Only this hook (repeatable): pre-commit, pre-push, post-checkout.",
)
def install(hook: tuple[str, ...]) -> None:
    """Install the hook shims; a hook you already had keeps running first (as NAME.legacy)."""
    fallback = Path(sys.executable).parent / "xp"
    changes = githooks.install(
        find_repo(), names=tuple(hook), fallback=str(fallback) if fallback.exists() else ""
    )
    for line in changes or ["xp's hooks are already installed."]:
        render.echo(line)


@hooks.command()
@click.option("--hook", "hook", multiple=True, metavar="NAME", help="Only this hook (repeatable).")
def uninstall(hook: tuple[str, ...]) -> None:
    """Remove xp's hooks and put back the hooks they had kept."""
    changes = githooks.uninstall(find_repo(), names=tuple(hook))
    for line in changes or ["no xp hooks to remove."]:
        render.echo(line)


@hooks.command()
def status() -> None:
    """Show each hook: installed, installed+legacy, other (not xp's) or missing."""
    for state in githooks.status(find_repo()):
        render.echo(f"{state.name:14} {state.state:17} {state.path}")


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("name", type=click.Choice(githooks.HOOKS))
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def hook(name: str, args: tuple[str, ...]) -> None:
    """Run one hook as git would (the installed shims call this)."""
    repo = find_repo()
    if name == "pre-commit":
        from xp.hooks.pre_commit import pre_commit

        problems = pre_commit(repo).problems
        for problem in problems:
            render.echo(f"xp: commit refused: {problem}", err=True)
        if problems:
            raise SystemExit(1)
    elif name == "pre-push":
        remote = args[0] if args else os.environ.get("PRE_COMMIT_REMOTE_NAME", "origin")
        stdin = "" if sys.stdin is None or sys.stdin.isatty() else sys.stdin.read()
        from xp.cli.hook_pre_push import report
        from xp.hooks.pre_push import pre_push

        with progress_bar("uploading artifacts") as bar:
            result = pre_push(repo, remote=remote, stdin_text=stdin, progress=bar)
        if result is None:
            return
        for line in report(result, remote):
            render.echo(line, err=True)
    else:
        new_head = args[1] if len(args) > 1 else os.environ.get("PRE_COMMIT_TO_REF", "HEAD")
        flag = args[2] if len(args) > 2 else os.environ.get("PRE_COMMIT_CHECKOUT_TYPE", "1")
        from xp.hooks.post_checkout import post_checkout

        done = post_checkout(repo, new_head=new_head, branch_checkout=flag == "1")
        if done.written:
            render.echo(f"xp: put {len(done.written)} artifact files in place", err=True)
        for rel in done.kept:
            render.echo(
                f"xp: kept your {rel} (differs from the run's; `xp get` fetches it)", err=True
            )
        for rel in done.absent:
            render.echo(f"xp: {rel} is in no cache or artifact remote", err=True)
        for rel in done.corrupt:
            render.echo(
                f"xp: {rel} not written: its cached copy was corrupt (removed) and no artifact"
                " remote has a good one",
                err=True,
            )
