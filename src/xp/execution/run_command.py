"""``xp run -- CMD``: run a command as a run, with its output shown live and saved.

The run is created here, in the parent, before the command starts (so the snapshot is the
code that runs); the command's own ``xp.start_run()`` / ``xp.log_*`` calls attach to it through
``XP_RUN_ID`` and ``XP_JOURNAL_DIR`` (see ``Run.child_env``), so a script behaves the same under
``xp run`` and alone.

The command runs under a small guard process, the leader of a new process group:
- Ctrl-C / SIGTERM / SIGHUP sent to ``xp run`` are forwarded to the whole group (a second
  Ctrl-C sends SIGKILL), and the run is recorded as ``killed``;
- when ``xp run`` itself dies (SIGKILL, OOM), the guard notices within 0.2 s that its parent
  is gone and takes the group down: SIGTERM, then SIGKILL after 5 s. The run's journal is then
  committed as ``crashed`` by the next xp command;
- when the command exits, processes it left running in its group get SIGTERM (SIGKILL after
  5 s), and the guard waits for every descendant (on Linux it is their subreaper): nothing
  outlives the run holding its output pipe or an unmerged journal part.

The guard also holds the run journal's lock (it inherits the descriptor), so a killed
``xp run``'s run is recovered only once every process of the command is gone and every part
it logged can be merged. Output goes to ``<journal dir>/<run id>.out`` unbuffered as it
arrives: the run's log artifact at the end, and recovery's when ``xp run`` was killed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xp import format as fmt
from xp import fsutil
from xp.errors import ExecutionError, InvalidValueError, XPError
from xp.execution import overrides as ov
from xp.gitstore.repo import GitRepo
from xp.tracking.run import Run

LOG_ARTIFACT = fmt.RUN_LOG_ARTIFACT
KILL_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGKILL)
Sink = Callable[[str, bytes], None]  # ("out" | "err", bytes)

GUARD = r"""
import os, signal, subprocess, sys, time
parent = os.getppid()
def _ignore(signum, frame):
    pass  # xp run signals the whole group: the command gets it; the guard waits for it
for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    signal.signal(s, _ignore)
try:  # Linux: orphaned descendants become our children, so we can wait for every one
    import ctypes
    ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
except Exception:
    pass
try:
    child = subprocess.Popen(sys.argv[1:])
except OSError as exc:
    sys.stderr.write("xp run: cannot start %s: %s\n" % (sys.argv[1], exc.strerror))
    sys.exit(127)
def _reap(seconds):  # wait for every child, orphaned descendants too; True: none left
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            if os.waitpid(-1, os.WNOHANG) == (0, 0):
                time.sleep(0.02)
        except ChildProcessError:
            return True
    return False
def _kill_ours():  # SIGKILL our group and our children, never this guard (it reaps them)
    try:
        entries = os.listdir("/proc")
    except OSError:
        entries = None
    if entries is None:
        os.killpg(0, signal.SIGKILL)  # no /proc: the group, this guard with it
    for entry in entries or ():
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open("/proc/%s/stat" % entry) as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            if int(fields[1]) == os.getpid() or int(fields[2]) == os.getpgrp():
                os.kill(int(entry), signal.SIGKILL)
        except (OSError, IndexError, ValueError):
            pass
deadline = None
while True:
    try:
        rc = child.wait(timeout=0.2)
        break
    except subprocess.TimeoutExpired:
        if deadline is None and os.getppid() != parent:  # xp run died: stop the command
            os.killpg(0, signal.SIGTERM)
            deadline = time.monotonic() + 5
        elif deadline is not None and time.monotonic() > deadline:
            _kill_ours()
try:
    os.killpg(0, signal.SIGTERM)  # whatever the command left running in its group
except OSError:
    pass
# Processes the command started log into the run's journal parts: the run is only over
# (and its journal, whose lock this process shares, free to recover) once they are gone.
if not _reap(5):
    _kill_ours()
    _reap(5)
if rc < 0:
    if -rc not in (signal.SIGKILL, signal.SIGSTOP):
        signal.signal(-rc, signal.SIG_DFL)
    os.kill(os.getpid(), -rc)
sys.exit(rc)
"""


@dataclass
class LaunchResult:
    """What one ``xp run`` (or one sweep point) did."""

    run_id: str
    name: str
    status: str
    exit_code: int
    duration: float
    commit: str | None
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    changes: list[ov.Change] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    output_tail: list[str] = field(default_factory=list)  # the last lines the command printed
    log_file: str | None = None  # the whole output: the log artifact's file in the cache

    @property
    def shell_code(self) -> int:
        """The exit code a shell would give: the command's, 128+N for signal N."""
        return self.exit_code if self.exit_code >= 0 else 128 - self.exit_code


def check_command(command: list[str] | tuple[str, ...], cwd: Path) -> None:
    """Fail before any run exists when the program cannot be found."""
    if not command:
        raise InvalidValueError(
            "no command to run; give one after --, e.g. xp run -- python train.py"
        )
    prog = command[0]
    if os.sep in prog or (os.altsep and os.altsep in prog):
        path = Path(prog) if os.path.isabs(prog) else cwd / prog
        if not path.is_file():
            raise InvalidValueError(f"command {prog!r} does not exist (looked in {cwd})")
        if not os.access(path, os.X_OK):
            raise InvalidValueError(
                f"{prog} is not executable; run it through its interpreter (python {prog})"
                f" or chmod +x {prog}"
            )
    elif shutil.which(prog) is None:
        raise InvalidValueError(f"command {prog!r} not found on PATH; check the spelling")


class Interrupts:
    """Forward SIGINT/SIGTERM/SIGHUP to the live commands' process groups while installed.

    Only the main thread can install handlers; elsewhere this records nothing and the
    commands still get the terminal's signals through their own group only if forwarded,
    so sweeps install it once in the main thread for all their points.
    """

    def __init__(self) -> None:
        self.groups: set[int] = set()
        self.signal: int | None = None
        self._old: dict[int, Any] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> Interrupts:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old.clear()

    def _handle(self, signum: int, frame: object) -> None:
        again = self.signal is not None
        self.signal = signum
        self.send(signal.SIGKILL if again else signum)

    def send(self, signum: int) -> None:
        with self._lock:
            groups = list(self.groups)
        for pgid in groups:
            with contextlib.suppress(OSError):
                os.killpg(pgid, signum)

    def add(self, pgid: int) -> None:
        with self._lock:
            self.groups.add(pgid)
        if self.signal is not None:  # interrupted while starting: do not let it run
            with contextlib.suppress(OSError):
                os.killpg(pgid, self.signal)

    def discard(self, pgid: int) -> None:
        with self._lock:
            self.groups.discard(pgid)


@contextlib.contextmanager
def _foreground(pgid: int) -> Iterator[None]:
    """Hand the terminal to the command's group (so it can read stdin and gets Ctrl-C)."""
    fd = sys.stdin.fileno()
    old = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
    try:
        mine = os.tcgetpgrp(fd)
        os.tcsetpgrp(fd, pgid)
        with contextlib.suppress(OSError):
            os.killpg(pgid, signal.SIGCONT)  # it may have stopped on a read before the handoff
    except OSError:
        signal.signal(signal.SIGTTOU, old)
        yield
        return
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.tcsetpgrp(fd, mine)
        signal.signal(signal.SIGTTOU, old)


def _stdin_is_our_terminal() -> bool:
    try:
        fd = sys.stdin.fileno()
        return os.isatty(fd) and os.tcgetpgrp(fd) == os.getpgrp()
    except (OSError, ValueError, AttributeError):
        return False


def execute(
    run: Run,
    command: list[str],
    cwd: Path,
    sink: Sink | None = None,
    interrupts: Interrupts | None = None,
    interactive: bool = False,
) -> tuple[str, int]:
    """Run ``command`` attached to ``run``; returns (status, exit code). Output -> log + sink."""
    env = {**os.environ, **run.child_env()}
    env.setdefault("PYTHONUNBUFFERED", "1")  # a piped Python child would buffer its output
    log_path = output_spool(run)
    keep = [run.journal.fd] if run.journal is not None else []
    handoff = interactive and _stdin_is_our_terminal()
    kwargs: dict[str, Any] = (
        {"process_group": 0} if sys.version_info >= (3, 11) else {"preexec_fn": os.setpgrp}
    )
    own = interrupts is None
    interrupts = interrupts or Interrupts()
    # Unbuffered: every chunk is in the file (the kernel's) the moment it arrives.
    with open(log_path, "ab", buffering=0) as log, interrupts if own else contextlib.nullcontext():
        proc = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", GUARD, *command],
            cwd=cwd,
            env=env,
            stdin=None if handoff or interactive else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=[*keep, *fsutil.owner_fds()],
            **kwargs,
        )
        interrupts.add(proc.pid)
        lock = threading.Lock()
        pumps = [
            threading.Thread(target=_pump, args=(s, k, log, lock, sink), daemon=True)
            for s, k in ((proc.stdout, "out"), (proc.stderr, "err"))
        ]
        for t in pumps:
            t.start()
        try:
            with _foreground(proc.pid) if handoff else contextlib.nullcontext():
                rc = proc.wait()
        finally:
            interrupts.discard(proc.pid)
        for t in pumps:
            t.join(timeout=2.0)
    data = log_path.read_bytes()
    if data:
        run.log_bytes(data, LOG_ARTIFACT)
    if interrupts.signal is not None or (rc < 0 and -rc in KILL_SIGNALS):
        status = "killed"
    else:
        status = "finished" if rc == 0 else "failed"
    return status, rc


def output_spool(run: Run) -> Path:
    """Where a run's command output is kept as it comes (``fmt.output_spool``); recovery
    makes it the log artifact of a run whose ``xp run`` was killed."""
    return fmt.output_spool(run.journal_dir, run.id)


def _pump(stream: Any, kind: str, log: Any, lock: threading.Lock, sink: Sink | None) -> None:
    fd = stream.fileno()
    try:
        while data := os.read(fd, 65536):
            with lock:
                log.write(data)
            if sink is not None:
                with contextlib.suppress(OSError, ValueError):
                    sink(kind, data)
    finally:
        stream.close()


def child_params(run: Run) -> set[str]:
    """Param names the command logged itself (from its journal parts)."""
    from xp.record.journal import PART, replay

    keys: set[str] = set()
    with contextlib.suppress(FileNotFoundError):
        for name in os.listdir(run.journal_dir):
            if name.startswith(f"{run.id}-") and name.endswith(PART):
                with contextlib.suppress(OSError, ValueError):
                    keys |= set(replay((run.journal_dir / name).read_bytes()).params)
    return keys


def file_params(root: Path, files: tuple[str, ...]) -> dict[str, Any]:
    from xp.record.params_files import read_values

    out: dict[str, Any] = {}
    for rel in files:
        if (root / rel).is_file():
            out.update(read_values(root / rel, "param"))
    return out


def start(
    repo: GitRepo,
    *,
    command: list[str],
    cwd: str,
    name: str | None,
    experiment: str | None,
    message: str | None,
    tags: dict[str, str] | None = None,
    run_id: str | None = None,
) -> Run:
    """A Run whose recorded command is ``command`` (not ``xp run ...``) and cwd ``cwd``."""
    run = Run(
        repo,
        name=name,
        experiment=experiment,
        message=message,
        command=command,
        cwd=cwd,
        run_id=run_id,
    )
    try:
        for key, value in (tags or {}).items():
            run.set_tag(key, value)
    except BaseException:
        run.abort()
        raise
    return run


def complete(run: Run, root: Path, status: str, rc: int, started: float) -> LaunchResult:
    """Log the params files' values the command did not log itself, then commit the run."""
    run.update_header(exit_code=rc)
    warnings: list[str] = []
    logged = child_params(run)
    try:
        for key, value in file_params(root, run.config.params).items():
            if key not in logged and key not in run.state.params:
                run.log_param(key, value)
    except XPError as exc:
        warnings.append(f"params files not recorded: {exc}")
        run.warn(str(exc))
    commit = run.finish(status)
    output_spool(run).unlink(missing_ok=True)  # recorded: the artifact holds it now
    warnings += _unmerged_parts(run)
    from xp.query.resolve import read_record

    record = read_record(run.repo, commit)
    log_file = None
    for entry in record.artifacts if record else ():
        if entry.path == LOG_ARTIFACT:
            from xp.artifacts.cache import cache_dir, object_path

            log_file = str(object_path(cache_dir(run.repo), entry.sha256))
    return LaunchResult(
        run_id=run.id,
        name=record.name if record else run.name,
        status=status,
        exit_code=rc,
        duration=round(time.time() - started, 3),
        commit=commit,
        params=dict(record.params) if record else {},
        metrics=dict(record.metrics) if record else {},
        warnings=warnings,
        log_file=log_file,
    )


def _unmerged_parts(run: Run) -> list[str]:
    """Parts of the run still there after its commit: a process that outlived the command
    and its guard (stuck, or escaped from its group) kept logging; say where that went."""
    from xp.record.journal import PART

    try:
        names = os.listdir(run.journal_dir)
    except OSError:
        return []
    return [
        f"a process the command started still logs into run {run.id}; what it logs now is"
        f" not part of the run (kept in {run.journal_dir / name})"
        for name in sorted(names)
        if name.startswith(f"{run.id}-") and name.endswith(PART)
    ]


def launch(
    repo: GitRepo,
    *,
    command: list[str],
    name: str | None = None,
    experiment: str | None = None,
    message: str | None = None,
    params: list[str] | tuple[str, ...] = (),
    sink: Sink | None = None,
    interactive: bool = True,
    cwd: str | os.PathLike[str] | None = None,
) -> LaunchResult:
    """``xp run``: apply ``-p`` overrides in the workspace, run ``command`` as a run.

    The overrides stay in the params file afterwards (as DVC's ``exp run -S`` does): the
    workspace then holds what last ran. A sweep (several values) goes to ``xp.sweep``.
    """
    here = Path(cwd if cwd is not None else os.getcwd()).resolve()
    check_command(command, here)
    overrides = ov.parse(list(params))
    if any(len(o.values) > 1 for o in overrides):
        raise InvalidValueError("-p with several values is a sweep; run it with xp.sweep.sweep")
    claim = claim_workspace(repo, edits=bool(overrides))
    if claim is None:
        return _isolated(repo, command, name, experiment, message, params, here)
    with contextlib.closing(claim):
        return _in_place(
            repo, command, name, experiment, message, overrides, here, sink, interactive
        )


def _in_place(
    repo: GitRepo,
    command: list[str],
    name: str | None,
    experiment: str | None,
    message: str | None,
    overrides: list[ov.Override],
    here: Path,
    sink: Sink | None,
    interactive: bool,
) -> LaunchResult:
    from xp.config import load_config

    config = load_config(repo)
    values = {o.key: o.values[0] for o in overrides}
    changes = ov.apply(repo.worktree, config.params, overrides, values)
    rel = os.path.relpath(here, repo.worktree.resolve()).replace(os.sep, "/")
    started = time.time()
    run = start(
        repo,
        command=command,
        cwd=rel if not rel.startswith("..") else ".",
        name=name,
        experiment=experiment,
        message=message,
    )
    return run_to_end(run, command, here, repo.worktree, started, changes, sink, None, interactive)


class _Claim:
    """A lock on the work tree held while an ``xp run`` uses it in place (closed: released)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def close(self) -> None:
        os.close(self.fd)


def claim_workspace(repo: GitRepo, *, edits: bool) -> _Claim | None:
    """Claim the work tree for an in-place ``xp run``, or None when another one holds it.

    A run with ``-p`` edits the params files and needs the work tree alone (an exclusive
    lock); one without only needs nobody to edit them under its command (a shared lock). The
    lock file is per work tree (in its own git dir) and released by the kernel when the
    process ends, however it ends; the command's processes do not inherit it.
    """
    import fcntl

    fd = os.open(repo.git_dir / WORKSPACE_LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, (fcntl.LOCK_EX if edits else fcntl.LOCK_SH) | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return _Claim(fd)


WORKSPACE_LOCK = "xp-run.lock"
ISOLATED = (
    "another `xp run` was using this work tree, so this one ran in a temporary checkout of"
    " it (your files are unchanged; the -p values are in the run, not in your params file)"
)


def _isolated(
    repo: GitRepo,
    command: list[str],
    name: str | None,
    experiment: str | None,
    message: str | None,
    params: list[str] | tuple[str, ...],
    here: Path,
) -> LaunchResult:
    """Run as ``xp run --temp`` does: concurrent in-place runs would edit the same params
    file under each other's command (wrong params recorded, points failing)."""
    from xp.execution.sweep import sweep

    result = sweep(
        repo,
        command=command,
        params=params,
        name=name,
        experiment=experiment,
        message=message,
        cwd=here,
        tags=False,
    )
    point = result.points[0]
    if point.result is None:
        raise ExecutionError(point.error or "the run could not start")
    point.result.changes = []
    point.result.warnings.insert(0, ISOLATED)
    return point.result


def run_to_end(
    run: Run,
    command: list[str],
    cwd: Path,
    root: Path,
    started: float,
    changes: list[ov.Change],
    sink: Sink | None = None,
    interrupts: Interrupts | None = None,
    interactive: bool = False,
) -> LaunchResult:
    """Execute ``command`` in ``run`` and commit it; an interruption still records it (killed)."""
    try:
        status, rc = execute(run, command, cwd, sink, interrupts, interactive=interactive)
    except BaseException:
        if run.status == "running":
            run.finish("killed")
        raise
    tail = output_tail(output_spool(run))  # read before complete() removes the spool
    result = complete(run, root, status, rc, started)
    result.changes = changes
    result.output_tail = tail
    return result


TAIL_LINES = 20


def output_tail(path: Path, lines: int = TAIL_LINES) -> list[str]:
    """The last ``lines`` lines of a command's output (what a failed point shows)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 64 * 1024))  # the tail only, however long the log
            data = fh.read()
    except OSError:
        return []
    text = data.decode("utf-8", errors="replace").replace("\r\n", "\n")
    return text.rstrip("\n").split("\n")[-lines:] if text.strip() else []
