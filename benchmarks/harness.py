"""What a workload module is made of, and the helpers workloads share.

A workload module (``benchmarks/<anything>.py``) defines ``WORKLOAD = Workload(...)``: the rows
it reports and two *side* functions, one timing xp and one timing the peer. The runner calls
each side in a fresh Python process with a fresh, empty working directory (its cwd), takes the
median of each figure over the repetitions, and deletes the directory. docs/benchmarks.md has
the full contract.
"""

from __future__ import annotations

import contextlib
import functools
import os
import random
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

# A side returns named timings in seconds (the keys its workload's Metric rows name; any other
# keys are kept in the JSON only).
Side = Callable[["Context"], dict[str, float]]


@dataclass(frozen=True)
class Context:
    """What a side gets: its empty working directory (also its cwd) and the run's options."""

    workdir: Path
    quick: bool = False
    no_cap: bool = False  # run the peer at full size even where that takes minutes

    def size(self, full: int, quick: int) -> int:
        return quick if self.quick else full


@dataclass(frozen=True)
class Metric:
    """One row of the table: the figure ``key`` of both sides, shown in ``unit``."""

    key: str
    label: str
    unit: str = "s"  # s, ms or us: seconds as shown; % a fraction (0.05); n a count;
    # MB: the figure is megabytes; x: a ratio, not a time
    target: float | None = None  # seconds (MB, a ratio for x); xp passes when its median is <=
    peer_label: str | None = None  # when the peer's figure measures something named otherwise
    peer: str | None = None  # whose figure the row shows: the workload's peer when None, else
    # the name of one of its ``extra_peers``


@dataclass(frozen=True)
class Workload:
    key: str  # what --only selects, e.g. "W1"
    title: str
    metrics: tuple[Metric, ...]
    xp: Side
    peer: str | None = None  # a name in PEERS
    peer_side: Side | None = None
    # More peers doing the same job another way (name in PEERS, side), each measured in its
    # own processes like the first; a Metric names the one it shows with ``peer=``.
    extra_peers: tuple[tuple[str, Side], ...] = ()
    repeat: int = 3  # processes per side in full mode (quick mode: 1)
    peer_repeat: int = 1
    order: int = 100  # table position
    notes: tuple[str, ...] = ()
    quick_notes: tuple[str, ...] = ()
    # modules the workload needs beyond xp's own (frameworks): without them it is left out,
    # with a note saying what to install
    needs: tuple[str, ...] = ()
    needs_hint: str = ""
    # long: left out of a run of everything; it runs when --only names it, or with --long
    long: bool = False


def missing_modules(names: tuple[str, ...]) -> list[str]:
    import importlib.util

    return [n for n in names if importlib.util.find_spec(n) is None]


# -- peers -----------------------------------------------------------------------------------


def script(name: str) -> str | None:
    """A console script next to this interpreter (not a pyenv/asdf shim, which adds ~50 ms),
    else the first one on PATH."""
    local = Path(sysconfig.get_path("scripts")) / name
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    return shutil.which(name)


def _module_version(dist: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _dvc_version() -> str | None:
    exe = script("dvc")
    if exe is None:
        return None
    proc = subprocess.run([exe, "--version"], capture_output=True, text=True, env=child_env())
    return proc.stdout.strip() or None if proc.returncode == 0 else None


# peer name -> its version, or None when it is not installed
PEERS: dict[str, Callable[[], str | None]] = {
    "mlflow": lambda: _module_version("mlflow"),
    "dvc": _dvc_version,
    "wandb": lambda: _module_version("wandb"),
}


@functools.cache
def peer_version(name: str) -> str | None:
    return PEERS[name]()


def xp_command() -> list[str]:
    exe = script("xp")
    return [exe] if exe else [sys.executable, "-m", "xp"]


def child_env() -> dict[str, str]:
    """The environment of every benchmarked process: the user's, minus git variables that
    would point git elsewhere and xp's own settings (``XP_BENCH_*``, the benchmarks' sizes,
    are kept), with the peers' telemetry off (no network calls mid-timing)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not (k.startswith("GIT_") and k not in _GIT_IDENTITY)
        and (not k.startswith("XP_") or k.startswith("XP_BENCH_"))
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    # Installed packages come with their bytecode; without it every timed start compiles
    # xp's modules from source (~70 ms of an `xp commit`): measure what users run.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="1", DVC_NO_ANALYTICS="1")
    return env


_GIT_IDENTITY = ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL")


# -- workspaces ------------------------------------------------------------------------------


def git(cwd: Path, *args: str) -> str:
    proc = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, env=child_env(), check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed in {cwd}: {proc.stderr.strip()}")
    return proc.stdout


def write_files(root: Path, files: dict[str, bytes | str]) -> None:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, str):
            path.write_text(data)
        else:
            path.write_bytes(data)


def git_repo(root: Path, files: dict[str, bytes | str]) -> Path:
    """A git repo at ``root`` holding ``files`` in one commit, with a committer identity set
    (as a user's machine has one).

    ``gc.auto`` is 0: committing 10,000 files leaves more loose objects than git's threshold,
    and the detached ``git gc --auto`` it starts would run during the timed section of
    whichever side comes next (it moved the ``dvc exp save`` figure from 6 s to 30 s)."""
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.name", "Bench Mark")
    git(root, "config", "user.email", "bench@example.com")
    git(root, "config", "gc.auto", "0")
    write_files(root, files)
    age(root)
    git(root, "add", "-A")
    git(root, "commit", "-q", "--no-verify", "-m", "initial")
    return root


def age(root: Path, seconds: float = 3600) -> None:
    """Date every file back, as in a checkout that is not brand new. Files touched in the last
    seconds are "racy" to git and xp alike (their stat cannot prove them unchanged), which
    would make every benchmark measure the first minute of a repository's life."""
    past = time.time() - seconds
    for dirpath, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if d != ".git"]
        for name in names:
            os.utime(os.path.join(dirpath, name), (past, past))


# A small ML project: what W1, W2 and W4 run in (a training script's repository).
SMALL_PROJECT: dict[str, bytes | str] = {
    ".gitignore": "outputs/\n__pycache__/\n",
    "README.md": "# project\n",
    "params.yaml": "lr: 0.01\nepochs: 10\nmodel:\n  depth: 6\n  width: 256\n",
    "train.py": "import xp\n\n" + "".join(f"# line {i}\n" for i in range(200)),
    **{f"src/model/layer{i}.py": f"# layer {i}\n" + "x = 1\n" * 50 for i in range(12)},
}


@contextlib.contextmanager
def git_daemon(srv: Path) -> Iterator[str]:
    """A bare ``srv/team.git`` served by ``git daemon`` (pushes allowed) on 127.0.0.1, up
    until the block ends; yields its URL."""
    srv.mkdir(parents=True, exist_ok=True)
    git(srv, "init", "-q", "--bare", "-b", "main", "team.git")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"git://127.0.0.1:{port}/team.git"
    flags = ["--reuseaddr", "--export-all", "--enable=receive-pack", "--listen=127.0.0.1"]
    daemon = subprocess.Popen(
        ["git", "daemon", *flags, f"--base-path={srv}", f"--port={port}", str(srv)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        for _ in range(300):
            if subprocess.run(["git", "ls-remote", url], capture_output=True).returncode == 0:
                break
            time.sleep(0.1)
        yield url
    finally:
        os.killpg(daemon.pid, 9)
        daemon.wait()


def xp_init(root: Path) -> Path:
    """``xp init`` (config only: no remote to set up) and its config committed, as a user does."""
    subprocess.run(
        [*xp_command(), "init", "--no-git-config"],
        cwd=root,
        env=child_env(),
        capture_output=True,
        check=True,
    )
    age(root)
    git(root, "add", "-A")
    git(root, "commit", "-q", "--no-verify", "-m", "xp init")
    return root


def xp_project(root: Path) -> Path:
    """SMALL_PROJECT as a git repo set up for xp."""
    return xp_init(git_repo(root, SMALL_PROJECT))


def settle() -> None:
    """Flush what the setup wrote (a 50 MB file, 10,000 files) before timing starts, so the
    kernel's write-back of the setup is not billed to the code under test."""
    os.sync()


def random_file(path: Path, size: int, seed: int = 0) -> Path:
    """Incompressible bytes, so no store gets a free ride from compression."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    with open(path, "wb") as fh:
        left = size
        while left:
            n = min(left, 1 << 20)
            fh.write(rng.randbytes(n))
            left -= n
    return path


def best_of(
    cmd: list[str],
    n: int,
    cwd: Path,
    warmup: int = 1,
    before: Callable[[int], object] | None = None,
    cpu: list[float] | None = None,
) -> float:
    """The fastest of ``n`` wall times of ``cmd`` as a subprocess, after ``warmup`` untimed
    runs (so the files it reads are in the page cache, as they are for a user). ``before(i)``
    runs untimed ahead of each run, e.g. to edit files. ``cpu`` collects each timed run's CPU
    seconds (``children_cpu``): on a shared machine the figure load moves least."""
    env = child_env()
    times = []
    for i in range(warmup + n):
        if before is not None:
            before(i)
        used = children_cpu()
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, check=False)
        elapsed = time.perf_counter() - start
        if cpu is not None and i >= warmup:
            cpu.append(children_cpu() - used)
        if proc.returncode != 0:
            raise RuntimeError(
                f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr.decode()[-500:]}"
            )
        if i >= warmup:
            times.append(elapsed)
    return min(times)


def children_cpu() -> float:
    """User + system CPU seconds of every finished child process (and theirs) so far."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Stopwatch:
    """Named laps: ``lap("logging")`` stores the seconds since the previous lap (or start)."""

    laps: dict[str, float] = field(default_factory=dict)
    _last: float = field(default_factory=time.perf_counter)

    def lap(self, name: str) -> float:
        now = time.perf_counter()
        self.laps[name] = now - self._last
        self._last = now
        return self.laps[name]


def standalone(doc: str | None, sides: dict[str, Callable[[Context], dict[str, float]]]) -> None:
    """``python benchmarks/<workload>.py [--quick] [--side NAME]``: run sides here, print figures.

    Each side runs in a fresh temporary folder (its cwd while it runs), as the runner does;
    the runner's fresh processes and repetitions are for ``benchmarks/run.py``.
    """
    import argparse
    import tempfile

    parser = argparse.ArgumentParser(description=(doc or "").strip().splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes")
    parser.add_argument("--side", choices=sorted(sides), action="append", help="only this side")
    args = parser.parse_args()
    for name in args.side or list(sides):
        with tempfile.TemporaryDirectory() as tmp:
            here = os.getcwd()
            os.chdir(tmp)
            try:
                figures = sides[name](Context(Path(tmp), quick=args.quick))
            finally:
                os.chdir(here)
        for key, value in figures.items():
            print(f"{name:6} {key:24} {value:10.4f}")
