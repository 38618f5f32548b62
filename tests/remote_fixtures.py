"""Fixtures for artifact tests: a bare git remote with two clones, a directory store, and a
real S3 server (moto's server mode on 127.0.0.1) reached through s3fs.

Import the fixtures you use into a test module: ``from tests.remote_fixtures import ...``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import xp.cli
from tests.conftest import fsck, git


def run_xp(*args: str, cwd: Path | None = None) -> Result:
    """``xp ARGS`` in-process (click's runner), from ``cwd`` when given."""
    argv = ["-C", str(cwd), *args] if cwd else list(args)
    old = os.getcwd()
    try:
        return CliRunner().invoke(xp.cli.cli, argv, catch_exceptions=False)
    finally:
        os.chdir(old)


def xp_main(*args: str, cwd: Path) -> tuple[int, str, str]:
    """``xp ARGS`` through the real entry point (error boundary included), in-process."""
    import contextlib
    import io

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


@dataclass
class Team:
    """A bare git remote, two clones of it (a, b) and a directory artifact store."""

    bare: Path
    a: Path
    b: Path
    store: Path


def _clone(bare: Path, dest: Path) -> Path:
    git(dest.parent, "clone", "-q", str(bare), dest.name)
    return dest


@pytest.fixture
def team(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Team]:
    """Clone a sets up the project (store configured and committed) and pushes; b clones."""
    bare = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    a = tmp_path / "a"
    a.mkdir()
    git(a, "init", "-q")
    (a / "train.py").write_text("print('train')\n")
    (a / ".gitignore").write_text("out/\n")
    git(a, "add", ".")
    git(a, "commit", "-qm", "init")
    git(a, "remote", "add", "origin", str(bare))
    store = tmp_path / "store"
    code, _out, err = xp_main("remote", "add", "store", str(store), "--default", cwd=a)
    assert code == 0, err
    git(a, "add", ".xp/config.yaml")
    git(a, "commit", "-qm", "xp config")
    git(a, "push", "-q", "origin", "main")
    b = _clone(bare, tmp_path / "b")
    monkeypatch.chdir(a)
    yield Team(bare, a, b, store)
    for path in (a, b, bare):
        fsck(path)


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


@pytest.fixture(scope="session")
def _moto_server() -> Iterator[str]:
    """One moto S3 server process on 127.0.0.1 for the session (a subprocess: a real
    server, and its threads never share our interpreter's warning filters)."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    import time
    import urllib.request

    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(endpoint + "/moto-api/", timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("moto server did not start") from None
            time.sleep(0.1)
    yield endpoint
    proc.terminate()
    proc.wait(10)


@pytest.fixture
def s3(_moto_server: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> S3Server:
    """A fresh bucket on the S3 server; AWS credentials come from the usual variables."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    bucket = f"xp-{tmp_path.name.lower().replace('_', '-')[-40:]}".rstrip("-")
    server = S3Server(_moto_server, bucket)
    server.fs().mkdir(bucket)  # type: ignore[attr-defined]
    return server
