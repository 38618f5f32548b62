"""The ``xp`` command: a thin click layer over the library, with one error boundary.

Subcommands load lazily so ``xp --help`` stays fast. ``LazyGroup.invoke`` is the one error
boundary (``output.ending`` says how an exception ends a command): XPError becomes one line
on stderr and its exit code (1), usage errors exit 2, Ctrl-C 130, anything else a one-line
bug report and exit 3 (the traceback with --debug).
"""

from __future__ import annotations

import importlib
import os
from typing import Any

import click

from xp.cli.output import INTERNAL, echo, ending
from xp.errors import InvalidValueError

# command -> (module, function, short help). Keep in step with docs/cli.md.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "init": ("xp.cli.init", "init", "Set up xp in this git repository."),
    "doctor": (
        "xp.cli.doctor",
        "doctor",
        "Check this clone is set up to share runs.",
    ),
    "commit": ("xp.cli.commit", "commit", "Record the workspace as a run."),
    "recover": ("xp.cli.recover", "recover", "Commit runs whose process died as 'crashed'."),
    "demo": ("xp.cli.demo", "demo", "Make a demo project and record a few runs in it."),
    "run": ("xp.cli.run", "run", "Run a command as a run; -p overrides params, a,b sweeps."),
    "model": (
        "xp.cli.model",
        "model",
        "Model registry in git tags; deployed versions: status, perf, check, serve.",
    ),
    "checkout": ("xp.cli.checkout", "checkout", "Bring a run's code, params and artifacts back."),
    "branch": ("xp.cli.branch", "branch", "Make a git branch at a run's commit."),
    "reproduce": ("xp.cli.reproduce", "reproduce", "Re-run a run; --check compares metrics."),
    "hooks": ("xp.cli.hooks", "hooks", "Install, remove or inspect xp's git hooks."),
    "hook": ("xp.cli.hooks", "hook", "Run one git hook as git would (the shims call it)."),
    "show": ("xp.cli.show", "show", "List runs: params, metrics, status; filter and sort."),
    "diff": ("xp.cli.diff", "diff", "Compare two runs, or a run and the workspace."),
    "push": ("xp.cli.push", "push", "Send runs and their artifacts to a remote."),
    "pull": ("xp.cli.pull", "pull", "Fetch runs (and with --artifacts, their files)."),
    "get": ("xp.cli.get", "get", "Write a run's artifacts or data inputs to a folder."),
    "remote": ("xp.cli.remote", "remote", "Manage artifact remotes (folder, s3://...)."),
    "rm": ("xp.cli.rm", "rm", "Delete runs here (and on a git remote)."),
    "gc": ("xp.cli.gc", "gc", "Delete cached artifacts nothing refers to."),
    "maintenance": (
        "xp.cli.maintenance",
        "maintenance",
        "Keep a long-lived clone fast: prune, pack refs, repack, expire cache.",
    ),
    "import": ("xp.cli.importing", "import_", "Make runs from TensorBoard files or MLflow."),
    "export": ("xp.cli.exporting", "export", "Write runs as TensorBoard files or to MLflow."),
    "bisect": ("xp.cli.bisect", "bisect", "Find the first commit on which a metric got worse."),
    "log": ("xp.cli.log", "log", "A run's tag/note history, or a metric along a branch."),
    "tag": ("xp.cli.tag", "tag", "Set or remove a finished run's tags (a git note)."),
    "note": ("xp.cli.note", "note", "Add a note to a run, or list its notes."),
    "move": ("xp.cli.move", "move", "Move runs to another experiment (an annotation)."),
    "ci": ("xp.cli.ci", "ci", "Pull-request check: reproduce the branch's best run, compare."),
    "bundle": ("xp.cli.bundle", "bundle", "Runs and artifacts in one file, for offline machines."),
    "verify": ("xp.cli.verify", "verify", "Check a model's or run's signed provenance chain."),
    "ui": ("xp.cli.ui", "ui", "Browse runs in a local web app: charts, compare, live runs."),
    "report": ("xp.cli.report", "report", "Write runs as one self-contained HTML file."),
    "plot": ("xp.cli.plot", "plot", "Plot a metric of runs to PNG or SVG (matplotlib)."),
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

    def invoke(self, ctx: click.Context) -> Any:
        """The one error boundary: library errors become messages and exit codes."""
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except (Exception, KeyboardInterrupt) as exc:
            message, code = ending(exc)
            if code == INTERNAL and ctx.find_root().params.get("debug"):
                raise
            if message:
                echo(message, err=True)
            raise click.exceptions.Exit(code) from None


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
            raise InvalidValueError(f"cannot enter {directory}: {exc.strerror}") from None


def main(argv: list[str]) -> int:
    """Run the click application on ``argv`` and return its exit code."""
    try:
        cli.main(args=argv, prog_name="xp")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0
