"""Helpers that test modules import: running git and xp, asserting one-line errors, logging a
run with artifacts, and the ``Team`` and ``S3Server`` values that fixtures yield.

Fixtures live in ``tests/conftest.py`` (pytest finds them by name: a test module never imports
a fixture); plain functions live here (``from tests.helpers import git``). xp itself is imported
inside the functions, so loading the conftest imports no xp module.
"""

from __future__ import annotations

import contextlib
import io
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from click.testing import CliRunner, Result

T = TypeVar("T")


def wait_for(
    predicate: Callable[[], T], what: str, timeout: float = 60.0, interval: float = 0.01
) -> T:
    """Poll ``predicate`` until it returns something truthy, and return that.

    For waiting on a state (a journal flushed, a server listening) instead of sleeping a
    fixed time. ``timeout`` only turns a hang into a failure naming ``what``: it is no speed
    claim, so it is generous (the suite shares 2 cores between workers, under coverage in CI).
    """
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout:g} s waiting for {what}")
        time.sleep(interval)
    return value


def journal_lines(path: Path, prefix: str) -> int:
    """How many complete lines of the journal (or part) at ``path`` start with ``prefix``,
    e.g. ``"M\tloss\t"`` for the points of metric loss (docs/format.md); 0 before it exists."""
    try:
        data = path.read_text(errors="replace")
    except FileNotFoundError:
        return 0
    return sum(line.startswith(prefix) for line in data.split("\n")[:-1])


def git(cwd: Path, *args: str) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return proc.stdout


def fsck(repo: Path) -> None:
    proc = subprocess.run(
        ["git", "fsck", "--strict", "--no-dangling"], cwd=repo, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "error" not in proc.stderr.lower(), proc.stderr


def invoke(*args: str) -> Result:
    """``xp ARGS`` through click's runner, in the current directory."""
    from xp.cli import cli

    return CliRunner().invoke(cli, list(args))


def user_error(result: Result) -> str:
    """A user error: exit 1, one line on stderr, no traceback."""
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output
    assert lines[0].startswith("xp: error: ")
    return lines[0]


def xp_main(*args: str, cwd: Path) -> tuple[int, str, str]:
    """``xp ARGS`` through the real entry point (error boundary included), in-process."""
    import xp.cli

    out, err = io.StringIO(), io.StringIO()
    old = os.getcwd()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = xp.cli.main(["-C", str(cwd), *args])
    finally:
        os.chdir(old)
    return code, out.getvalue(), err.getvalue()


def xp_subprocess(*args: str, cwd: Path, **kw: object) -> subprocess.Popen[bytes]:
    return subprocess.Popen(  # type: ignore[call-overload, no-any-return]
        [sys.executable, "-m", "xp", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **kw,
    )


def one_line_error(code: int, err: str) -> str:
    """Assert the CLI failed with one ``xp: error:`` line and no traceback; return it."""
    assert code == 1, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("xp: error: "), err
    assert "Traceback" not in err
    return lines[0]


def log_run(root: Path, files: dict[str, bytes], name: str | None = None) -> str:
    """Log one run in ``root`` with ``files`` (name -> content) as artifacts; its id."""
    import xp

    out = root / "out"
    out.mkdir(exist_ok=True)
    old = os.getcwd()
    os.chdir(root)
    try:
        with xp.start_run(name=name) as run:
            for fname, data in files.items():
                (out / fname).parent.mkdir(parents=True, exist_ok=True)
                (out / fname).write_bytes(data)
                xp.log_artifact(out / fname, name=fname)
            xp.log_metric("acc", 0.5)
    finally:
        os.chdir(old)
    return run.id


@dataclass
class Team:
    """A bare git remote, two clones of it (a, b) and a directory artifact store."""

    bare: Path
    a: Path
    b: Path
    store: Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class S3Server:
    endpoint: str
    bucket: str

    def fs(self) -> object:
        import s3fs  # type: ignore[import-untyped]

        return s3fs.S3FileSystem(
            client_kwargs={"endpoint_url": self.endpoint}, skip_instance_cache=True
        )
