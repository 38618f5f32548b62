"""The ``xp`` command: a thin click layer over the library, with one error boundary.

Subcommands load lazily so ``xp --help`` stays fast; XPError becomes one line on stderr
and exit code 1, Ctrl-C exit 130, anything else a short bug report (traceback with --debug).
"""

from __future__ import annotations

import importlib
import os
import sys

import click

from xp.errors import XPError

# command -> (module, function, short help). Keep in step with docs/cli.md.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "init": ("xp.cli.init", "init", "Set up xp in this git repository."),
    "commit": ("xp.cli.commit", "commit", "Record the workspace as a run."),
    "recover": ("xp.cli.recover", "recover", "Commit runs whose process died as 'crashed'."),
    "demo": ("xp.cli.demo", "demo", "Make a demo project and record a few runs in it."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, attr, _ = COMMANDS[cmd_name]
        command = getattr(importlib.import_module(module), attr)
        assert isinstance(command, click.Command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="git-xp", prog_name="xp")
@click.option(
    "-C",
    "directory",
    type=click.Path(file_okay=False),
    default=None,
    help="Run as if xp was started in this directory.",
)
@click.option("--debug", is_flag=True, help="Show tracebacks for internal errors.")
def cli(directory: str | None, debug: bool) -> None:
    """xp: git-native experiment tracking. Every run is a git commit under refs/xp/."""
    if directory:
        try:
            os.chdir(directory)
        except OSError as exc:
            raise XPError(f"cannot enter {directory}: {exc.strerror}") from None


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        cli.main(args=args, prog_name="xp", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return 130
    except XPError as exc:
        click.echo(f"xp: error: {exc}", err=True)
        return exc.exit_code
    except KeyboardInterrupt:
        click.echo("xp: interrupted", err=True)
        return 130
    except BrokenPipeError:
        sys.stderr.close()
        return 1
    except Exception as exc:
        if debug:
            raise
        click.echo(
            f"xp: internal error: {type(exc).__name__}: {exc} (rerun with --debug for the"
            " traceback, and please report it)",
            err=True,
        )
        return 3
    return 0


def run() -> None:  # pragma: no cover - console entry
    sys.exit(main())
