"""Fixtures: real git repositories in tmp dirs, isolated from the user's git config and
environment; a team of clones around a bare remote; a real S3 server on 127.0.0.1.

Helpers that tests import (``git``, ``fsck``, ``xp_main``...) are in ``tests/helpers.py``.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import (
    LIGHTTPD,
    HttpRemote,
    S3Server,
    SmallDisk,
    Team,
    bare_http_repo,
    fsck,
    git,
    http_git_server,
    moto_server,
    xp_main,
)
from tests.ui.project import Project, XpUi, build_project, xp_ui

pytest_plugins = ["tests.plugin"]  # opt-in markers (slow, browser, framework) and coverage


def pytest_configure(config: pytest.Config) -> None:
    # A shell starts background jobs with SIGINT ignored, and an ignored signal stays ignored
    # across exec: every child a test starts would then shrug off the "Ctrl-C" the test sends
    # it. A handled signal is reset to the default in an exec'd child, so handle it here.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def _isolate(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    saved = dict(os.environ)
    home = tmp_path_factory.mktemp("home")
    for key in list(os.environ):
        if key.startswith(("GIT_", "XP_", "MLFLOW_")):
            monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Test Author")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "author@example.com")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "Test Committer")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "committer@example.com")
    (home / ".gitconfig").write_text("[init]\n\tdefaultBranch = main\n")
    yield
    # Code under test may write os.environ itself (MLflow's set_experiment exports
    # MLFLOW_EXPERIMENT_ID for child processes, as xp.mlflow does): no later test, nor the
    # processes it starts, may inherit that.
    for key in set(os.environ) - set(saved):
        del os.environ[key]
    for key, value in saved.items():
        if os.environ.get(key) != value:
            os.environ[key] = value


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A git repo with one commit (train.py, params.yaml), cwd set to it; fsck'd afterwards."""
    root = tmp_path / "proj"
    root.mkdir()
    git(root, "init", "-q")
    (root / "train.py").write_text("print('train')\n")
    (root / "params.yaml").write_text("lr: 0.1\nmodel:\n  depth: 3\n")
    git(root, "add", ".")
    git(root, "commit", "-qm", "init")
    monkeypatch.chdir(root)
    yield root
    fsck(root)


@pytest.fixture
def empty_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A git repo with no commits yet."""
    root = tmp_path / "empty"
    root.mkdir()
    git(root, "init", "-q")
    monkeypatch.chdir(root)
    yield root
    fsck(root)


@pytest.fixture(autouse=True)
def _no_leftover_runs() -> Iterator[None]:
    """Each test starts and ends with no active fluent run (nor one left to retry)."""
    import xp.tracking.fluent

    fluent = xp.tracking.fluent
    fluent._stack.clear()
    fluent._unrecorded.clear()
    yield
    fluent._stack.clear()
    for run in fluent._unrecorded:  # as if the process ended: the journal's lock goes
        run._close_journal(remove=False)
    fluent._unrecorded.clear()


@pytest.fixture
def team(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Team]:
    """Clone a sets up the project (store configured and committed, `xp init`) and pushes;
    b clones."""
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
    git(a, "push", "-q", "-u", "origin", "main")
    b = tmp_path / "b"
    git(tmp_path, "clone", "-q", str(bare), b.name)
    code, _out, err = xp_main("init", cwd=a)  # a: refspecs and the pre-push hook
    assert code == 0, err
    # b stays a clone as git made it (no refspecs, no hooks), marked as offered the setup of
    # a first xp command (tests/hooks/test_clone_setup.py tests that on fresh clones).
    (b / ".git" / "xp").mkdir(parents=True, exist_ok=True)
    (b / ".git" / "xp" / "clone-setup").write_text("left as git made it\n")
    monkeypatch.chdir(a)
    yield Team(bare, a, b, store)
    for path in (a, b, bare):
        fsck(path)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs mounted for this test (root only), so disk-full paths run for real."""
    if os.geteuid() != 0:
        pytest.skip("a full disk needs root to mount a size-limited tmpfs")
    mnt = tmp_path / "small"
    mnt.mkdir()
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


@pytest.fixture(scope="session")
def _moto_server() -> Iterator[str]:
    """One moto S3 server for the session (per xdist worker)."""
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def _http_git_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """One smart-HTTP git server for the session (per xdist worker): (root, base URL)."""
    from tests.plugin import in_ci

    if not os.access(LIGHTTPD, os.X_OK):
        message = f"no web server for git http-backend: install lighttpd ({LIGHTTPD})"
        if in_ci():  # .ci/run installs it: a skip there would hide an untested server
            pytest.fail(message)
        pytest.skip(message)
    root = tmp_path_factory.mktemp("http-git") / "srv"
    root.mkdir()
    with http_git_server(root) as url:
        yield root, url


@pytest.fixture
def http_remote(_http_git_server: tuple[Path, str], tmp_path: Path) -> Iterator[HttpRemote]:
    """A fresh bare repository on the smart-HTTP server, pushes enabled; fsck'd afterwards."""
    root, url = _http_git_server
    name = f"{tmp_path.name}.git"
    bare = bare_http_repo(root, name)
    yield HttpRemote(f"{url}/{name}", bare)
    fsck(bare)


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


@pytest.fixture
def small_disk_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SmallDisk]:
    """A repository (as ``repo``) on a 16 MB tmpfs this test mounts, to fill up at will.

    Needs root (and the right to mount, which containers may withhold): skipped otherwise.
    """
    if os.geteuid() != 0:
        pytest.skip("a disk-full test mounts a tmpfs, which needs root")
    mount = tmp_path / "disk"
    mount.mkdir()
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m,mode=0755", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    try:
        root = mount / "proj"
        root.mkdir()
        git(root, "init", "-q")
        (root / "train.py").write_text("print('train')\n")
        git(root, "add", ".")
        git(root, "commit", "-qm", "init")
        monkeypatch.chdir(root)
        disk = SmallDisk(root)
        yield disk
        disk.free()
        fsck(root)
    finally:
        monkeypatch.chdir(tmp_path)
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


@pytest.fixture(scope="module")
def ui_project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    """A repository with runs of every kind the UI shows, hostile ones included
    (tests/ui/project.py), shared by a test module; fsck'd afterwards."""
    base = tmp_path_factory.mktemp("ui")
    home = base / "home"
    home.mkdir()
    project = build_project(base / "proj", home)
    yield project
    fsck(project.root)


@pytest.fixture(scope="module")
def ui_server(ui_project: Project) -> Iterator[XpUi]:
    """``xp ui`` serving ``ui_project`` on a free port, for a test module."""
    with xp_ui(ui_project) as server:
        yield server
