"""docs/cli.md, generated from the commands' own --help so the reference cannot drift.

Regenerate with ``python -m xp.cli.reference > docs/cli.md``; tests/test_docs.py checks it.
"""

from __future__ import annotations

import click

from xp.cli.app import COMMANDS, cli


def _help(args: list[str]) -> str:
    # help_option_names as the real CLI has them; click caches the help option per command.
    names = ["-h", "--help"]
    ctx = click.Context(
        cli, info_name="xp", terminal_width=100, max_content_width=100, help_option_names=names
    )
    command: click.Command = cli
    for name in args:
        sub = cli.get_command(ctx, name)
        assert sub is not None
        ctx = click.Context(
            sub,
            info_name=name,
            parent=ctx,
            terminal_width=100,
            max_content_width=100,
            help_option_names=names,
        )
        command = sub
    return command.get_help(ctx)


def render() -> str:
    parts = [
        "# xp command reference\n",
        "Generated from `--help` by `python -m xp.cli.reference > docs/cli.md`; do not edit.\n",
        "Every command is also available as `git xp <command>`. Exit codes: 0 success, 1 a user"
        " error (one line on stderr saying what to fix), 2 a usage error, 3 an internal error,"
        " 130 interrupted.\n",
        "## xp\n",
        f"```\n{_help([])}\n```\n",
    ]
    for name in sorted(COMMANDS):
        parts.append(f"## xp {name}\n")
        parts.append(f"```\n{_help([name])}\n```\n")
    return "\n".join(parts)


if __name__ == "__main__":  # pragma: no cover
    click.echo(render(), nl=False)
