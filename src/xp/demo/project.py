"""``xp demo``: a small scikit-learn project in its own git repo, with a few real runs in it.

The runs go through the project's ``train.py`` the way a user runs it (``python train.py
--model rf --max-depth 3``): the file on disk that each run's snapshot records, with the
``sys.argv``, working directory and ``sys.path[0]`` that command gives it. They run inside
this process (runpy) rather than as subprocesses because starting Python and importing
scikit-learn costs ~2 s per process: five runs take ~4 s instead of ~12.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import re
import runpy
import shutil
import stat
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from xp import format as fmt
from xp import fsutil
from xp.errors import (
    ExecutionError,
    InvalidValueError,
    MissingDependencyError,
    StorageError,
)

DEFAULT_DIR = "xp-demo"
# Subject of the demo repo's first commit: how --force knows a folder is an earlier demo.
DEMO_SUBJECT = "xp demo: a small scikit-learn project"
INSTALL_HINT = "pip install 'git-xp[demo]'"

# project file -> template in xp/demo/files (train.py is stored as .txt so linters skip it)
FILES = {
    "train.py": "train.py.txt",
    "params.yaml": "params.yaml",
    ".gitignore": "gitignore",
    "README.md": "README.md",
}
# What `xp commit` should pick up in the demo: the files train.py writes.
CONFIG_LISTS = {
    "metrics": "[outputs/metrics.json]",
    "artifacts": "[outputs/model.pkl]",
    "data": "[data/diabetes.csv]",
}
# The runs: train.py's command-line flags (the empty one runs params.yaml as it is).
RUNS: tuple[tuple[str, ...], ...] = (
    ("--model", "rf", "--max-depth", "3", "--n-estimators", "100"),
    ("--model", "rf", "--max-depth", "8", "--n-estimators", "100"),
    ("--max-depth", "2"),
    (),
    ("--max-depth", "5", "--learning-rate", "0.2"),
)

Progress = Callable[[str], None]
_RUN_ENV = ("XP_RUN_ID", "XP_JOURNAL_DIR")  # set by `xp run` for the script it starts


@dataclass(frozen=True)
class DemoRun:
    """One recorded run, as read back from git with ``xp.get_run``."""

    id: str
    name: str
    ref: str
    command: str
    status: str
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class DemoResult:
    path: Path
    baseline: str
    runs: tuple[DemoRun, ...]
    seconds: float

    @property
    def best(self) -> DemoRun:
        return min(self.runs, key=lambda r: r.metrics.get("rmse", float("inf")))

    @property
    def worst(self) -> DemoRun:
        return max(self.runs, key=lambda r: r.metrics.get("rmse", float("-inf")))


def make_demo(
    directory: str | os.PathLike[str] = DEFAULT_DIR,
    force: bool = False,
    progress: Progress | None = None,
) -> DemoResult:
    """Make the project in ``directory``, record the runs, and return them read back from git."""
    say = progress or (lambda _msg: None)
    started = time.perf_counter()
    require_sklearn()
    root = prepare_dir(Path(directory), force)
    baseline = write_project(root)
    say(f"made {directory}: a git repo with {', '.join(FILES)} and .xp/config.yaml (xp init)")
    say(f"first commit {baseline[:7]} {DEMO_SUBJECT}")
    runs = []
    for args in RUNS:
        command = " ".join(["python", "train.py", *args])
        say(f"$ {command}")
        run_id, output = run_script(root, args)
        for line in output.splitlines():
            say(f"  {line}")
        runs.append(_read_back(root, run_id, command))
    return DemoResult(root, baseline, tuple(runs), time.perf_counter() - started)


def require_sklearn() -> None:
    """Fail before touching the disk when scikit-learn (the ``demo`` extra) is missing."""
    try:
        importlib.import_module("sklearn")
    except ImportError:
        raise MissingDependencyError(
            f"the demo needs scikit-learn; install it with: {INSTALL_HINT}"
        ) from None


def is_demo(path: Path) -> bool:
    """Whether ``path`` is the top of a git repo whose first commit is an xp demo's."""
    from xp.gitstore.history import root_subjects

    git_dir = path.resolve() / ".git"
    return git_dir.is_dir() and DEMO_SUBJECT in root_subjects(git_dir)


def prepare_dir(path: Path, force: bool) -> Path:
    """An empty folder at ``path``; an earlier demo there is removed only with ``force``."""
    if path.exists() or path.is_symlink():
        if not path.is_dir():
            raise InvalidValueError(
                f"{path} exists and is not a folder; pick another: xp demo OTHER_DIR"
            )
        if any(path.iterdir()):
            if not is_demo(path):
                also = " (--force only replaces an earlier xp demo)" if force else ""
                raise InvalidValueError(
                    f"{path} exists and is not empty{also}; pick another folder: xp demo OTHER_DIR"
                )
            if not force:
                raise InvalidValueError(
                    f"{path} holds an earlier xp demo; start it over with"
                    f" `xp demo --force {path}`, or pick another folder"
                )
            _remove_tree(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot make {path}: {exc.strerror}; pick another folder") from None
    return path.resolve()


def _remove_tree(path: Path) -> None:
    def retry_writable(func: Callable[..., Any], target: str, *_exc: Any) -> None:
        # artifact cache files are read-only (0444); Windows refuses to delete those
        os.chmod(target, stat.S_IWRITE | stat.S_IREAD)
        func(target)

    try:
        if sys.version_info >= (3, 12):
            shutil.rmtree(path, onexc=retry_writable)
        else:
            shutil.rmtree(path, onerror=retry_writable)
    except OSError as exc:
        raise StorageError(f"cannot remove the earlier demo {path}: {exc.strerror}") from None


def write_project(root: Path) -> str:
    """Project files, ``git init``, ``xp init``, first commit; returns that commit's sha."""
    from xp.gitstore.repo import commit_all, init_repo
    from xp.sharing.project_setup import init_project

    templates = resources.files("xp.demo") / "files"
    for name, template in FILES.items():
        fsutil.atomic_write(root / name, (templates / template).read_bytes(), root=root)
    repo = init_repo(root)
    init_project(repo)
    configure(root)
    return commit_all(repo, DEMO_SUBJECT, env=_identity_env(root))


def configure(root: Path) -> None:
    """Point the metrics/artifacts/data lists of ``.xp/config.yaml`` at train.py's files."""
    path = root / fmt.CONFIG_PATH
    text = path.read_text()
    for key, value in CONFIG_LISTS.items():
        text, found = re.subn(rf"^{key}:.*$", f"{key}: {value}", text, count=1, flags=re.M)
        if not found:
            text += f"{key}: {value}\n"
    fsutil.atomic_write(path, text)


def _identity_env(root: Path) -> dict[str, str] | None:
    """A stand-in author for the first commit on a machine where git has no identity yet."""
    from xp.gitstore.repo import has_identity

    if has_identity(root):
        return None
    name, email = "xp demo", "xp-demo@localhost"
    return {
        "GIT_AUTHOR_NAME": name,
        "GIT_AUTHOR_EMAIL": email,
        "GIT_COMMITTER_NAME": name,
        "GIT_COMMITTER_EMAIL": email,
    }


@contextlib.contextmanager
def _as_script(root: Path, argv: list[str]) -> Iterator[io.StringIO]:
    """What `python train.py ARGS` in ``root`` sets up: cwd, sys.argv, sys.path[0].

    The demo's runs are its own: an ``xp run`` around ``xp demo`` must not adopt them.
    """
    saved_cwd, saved_argv, saved_path = os.getcwd(), sys.argv, list(sys.path)
    saved_env = {key: os.environ.pop(key) for key in _RUN_ENV if key in os.environ}
    out = io.StringIO()
    try:
        os.chdir(root)
        sys.argv = argv
        sys.path.insert(0, str(root))
        with contextlib.redirect_stdout(out):
            yield out
    finally:
        os.chdir(saved_cwd)
        sys.argv = saved_argv
        sys.path[:] = saved_path
        os.environ.update(saved_env)


def run_script(root: Path, args: tuple[str, ...]) -> tuple[str, str]:
    """Run ``python train.py ARGS`` in this process; returns (new run id, what it printed)."""
    from xp.gitstore.repo import find_repo
    from xp.query.resolve import runs_by_id

    repo = find_repo(root)
    before = set(runs_by_id(repo))
    shown = " ".join(["train.py", *args])
    with _as_script(root, ["train.py", *args]) as out:
        try:
            runpy.run_path("train.py", run_name="__main__")
        except SystemExit as exc:
            if exc.code not in (None, 0):
                raise ExecutionError(f"`python {shown}` in {root} exited with {exc.code}") from None
        except Exception as exc:
            raise ExecutionError(
                f"`python {shown}` failed ({type(exc).__name__}: {exc}); run it in {root}"
                " to see the traceback"
            ) from exc
    new = sorted(set(runs_by_id(repo)) - before)
    if len(new) != 1:
        raise ExecutionError(f"`python {shown}` recorded {len(new)} runs instead of 1; see {root}")
    return new[0], out.getvalue()


def _read_back(root: Path, run_id: str, command: str) -> DemoRun:
    from xp.gitstore.repo import find_repo
    from xp.query.resolve import load_run

    view = load_run(find_repo(root), run_id)
    record = view.record
    return DemoRun(
        id=record.id,
        name=record.name,
        ref=view.ref,
        command=command,
        status=record.status,
        params=dict(record.params),
        metrics=dict(record.metrics),
    )
