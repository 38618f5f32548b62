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
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from click.testing import CliRunner, Result

if TYPE_CHECKING:
    from xp.query.index.summary import Decoded

ROOT = Path(__file__).resolve().parent.parent  # the repository

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


def journal_points(path: Path, key: str) -> int:
    """How many points of metric ``key`` the complete lines of the journal (or part) at
    ``path`` hold: its ``B`` and ``C`` blocks' (docs/format.md section 7); 0 before it exists."""
    try:
        data = path.read_text(errors="replace")
    except FileNotFoundError:
        return 0
    from xp.record.columns import column_points, parse_columns

    prefix = f"B\t{key}\t"
    count = 0
    for line in data.split("\n")[:-1]:
        if line.startswith(prefix):
            count += int(line.split("\t")[2])
        elif line.startswith("C\t"):  # a big flush, in binary (version 4)
            block = parse_columns(line[2:].rsplit("\t", 1)[0])
            count += sum(1 for k, *_ in column_points(block) if k == key)
    return count


@contextlib.contextmanager
def spawned(args: list[str], **kw: object) -> Iterator[subprocess.Popen[str]]:
    """``Popen(args, **kw)`` in a session of its own; however the test ends, every process
    still in that session is SIGKILLed and the child reaped.

    A session, not just a process group: ``xp run`` starts its command in a group of its own,
    and git daemon forks per connection, but all stay in the session. SIGKILL, because the
    processes under test ignore or handle SIGINT and SIGTERM (xp run's guard does).
    """
    popen: Callable[..., subprocess.Popen[str]] = subprocess.Popen
    proc = popen(args, start_new_session=True, **kw)
    try:
        yield proc
    finally:
        kill_session(proc.pid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.communicate(timeout=30)  # reaps it and closes its pipes


def kill_session(sid: int) -> None:
    """SIGKILL every process in session ``sid`` until none is left."""
    for _ in range(10):
        members = _session_members(sid)
        if not members:
            return
        for pid in members:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.01)


def _session_members(sid: int) -> list[int]:
    if not os.path.isdir("/proc"):  # no /proc: the leader's group is the best we can find
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(sid, signal.SIGKILL)
        return []
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()  # state ppid pgrp session ...
        if int(fields[3]) == sid and fields[0] not in ("Z", "X"):
            members.append(int(entry))
    return members


def alive(pid: int) -> bool:
    """Whether ``pid`` is a running process (a zombie is dead: only its exit status is left)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def fill_disk(folder: Path) -> None:
    """Write into ``folder`` until its file system is full (ENOSPC)."""
    import errno

    with open(folder / "filler", "wb", buffering=0) as fh:
        for size in (1 << 16, 512, 1):  # big writes, then the last bytes small ones still find
            try:
                while True:
                    fh.write(b"\0" * size)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise


def git(cwd: Path, *args: str, input_text: str | None = None) -> str:
    proc = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=True, input=input_text
    )
    return proc.stdout


def fsck(repo: Path) -> None:
    # a repack xp started in the background (many loose objects) ends first: fsck lists
    # loose objects, then reads them, and the repack deletes the loose copies it packed
    from xp.gitstore.repack import wait_for_repack

    wait_for_repack(repo / ".git" / "xp" if (repo / ".git").is_dir() else repo / "xp")
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


def xp_subprocess(
    *args: str, cwd: Path
) -> contextlib.AbstractContextManager[subprocess.Popen[str]]:
    """``python -m xp ARGS`` as a child process, killed with its session on the way out."""
    return spawned(
        [sys.executable, "-m", "xp", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def one_line_error(code: int, err: str) -> str:
    """Assert the CLI failed with one ``xp: error:`` line and no traceback; return it.

    The one-time line of a fresh clone's first command (``xp: set up this clone ...``,
    hooks/clone_setup.py) may come before it: it is news, not part of the error."""
    assert code == 1, err
    lines = [
        line
        for line in err.splitlines()
        if line.strip() and not line.startswith("xp: set up this clone")
    ]
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
    return str(run.id)


def model_version(
    root: Path,
    name: str,
    *,
    metrics: dict[str, float] | None = None,
    model: object = None,
    stage: str | None = None,
    content: bytes = b"",
) -> str:
    """Log a run in ``root`` whose artifact ``model.pkl`` is ``model`` (pickled) or
    ``content``, with ``metrics``; register it as the next version of ``name`` (and assign
    ``stage``). Returns the version."""
    import pickle

    import xp

    out = root / "out"
    out.mkdir(exist_ok=True)
    data = pickle.dumps(model) if model is not None else (content or os.urandom(16))
    (out / "model.pkl").write_bytes(data)
    with xp.start_run(path=root) as run:
        for key, value in (metrics or {}).items():
            xp.log_metric(key, value)
        xp.log_artifact(out / "model.pkl")
    version = xp.register_model(str(run.id), name, path=root).version
    if stage is not None:
        xp.assign_stage(name, version, stage, path=root)
    return version


@dataclass
class Team:
    """A bare git remote, two clones of it (a, b) and a directory artifact store."""

    bare: Path
    a: Path
    b: Path
    store: Path


def hook_push_loading(team: Team, heavy: tuple[str, ...]) -> tuple[str, str, str]:
    """Run `xp hook pre-push` for a push of team.a's HEAD in a fresh interpreter (coverage's
    start-up left out); (its last stdout line, "<exit> loaded: [...]" of ``heavy`` modules it
    imported, its stdout, its stderr)."""
    head = git(team.a, "rev-parse", "HEAD").strip()
    code = (
        "import sys\n"
        "from xp.cli import main\n"
        f"code = main(['hook', 'pre-push', 'origin', {str(team.bare)!r}])\n"
        f"print(code, 'loaded:', [m for m in {heavy!r} if m in sys.modules])\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=team.a,
        env=env,
        input=f"refs/heads/main {head} refs/heads/main {head}\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    return proc.stdout.strip().splitlines()[-1], proc.stdout, proc.stderr


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def moto_server(env: dict[str, str] | None = None) -> Iterator[str]:
    """A moto S3 server process on 127.0.0.1 (a real server in a subprocess, whose threads never
    share our interpreter's warning filters); yields its endpoint once it answers."""
    with moto_process(env) as (endpoint, _proc):
        yield endpoint


@contextlib.contextmanager
def moto_process(
    env: dict[str, str] | None = None,
) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """``moto_server``, also yielding the process, for tests that stop or kill it."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    with spawned(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as proc:

        def answers() -> bool:
            assert proc.poll() is None, f"moto server exited {proc.returncode}"
            try:
                urllib.request.urlopen(endpoint + "/moto-api/", timeout=1).close()
            except OSError:
                return False
            return True

        wait_for(answers, "the moto server to answer", interval=0.1)
        yield endpoint, proc


@dataclass
class S3Server:
    endpoint: str
    bucket: str

    def fs(self) -> object:
        import s3fs  # type: ignore[import-untyped]

        return s3fs.S3FileSystem(
            client_kwargs={"endpoint_url": self.endpoint}, skip_instance_cache=True
        )


@dataclass
class SmallDisk:
    """A repository on a small file system of its own (the ``small_disk`` fixture)."""

    root: Path

    @property
    def filler(self) -> Path:
        return self.root.parent / "filler"

    def fill(self) -> None:
        """Take every free byte (the file system then refuses any write that needs a block)."""
        with open(self.filler, "ab", buffering=0) as fh, contextlib.suppress(OSError):
            chunk = b"\0" * (1 << 16)
            while fh.write(chunk):
                pass

    def free(self) -> None:
        self.filler.unlink(missing_ok=True)


TRAINER = """
import json, sys, xp
spec = json.loads(sys.argv[1])
run = xp.start_run(name=spec.get("name"), experiment=spec.get("experiment"),
                   params=spec.get("params"), tags=spec.get("tags"))
print(run.id, flush=True)
step = 0
for line in sys.stdin:
    word, _, arg = line.strip().partition(" ")
    if word == "log":
        for _ in range(int(arg)):
            xp.log_metric("loss", 1.0 / (step + 1), step=step)
            xp.log_metric("acc", step / (step + 1.0), step=step)
            step += 1
    elif word == "metric":  # metric KEY N: N points of a new series
        key, _, n = arg.partition(" ")
        for i in range(int(n)):
            xp.log_metric(key, float(i), step=i)
    elif word == "tag":
        key, _, value = arg.partition("=")
        xp.set_tag(key, value)
    elif word == "end":
        break
    print("ok", flush=True)
xp.end_run()
print("done", flush=True)
"""


@dataclass
class Trainer:
    """A training process that logs when told (``log N`` points of loss and acc per call)
    and keeps its run live until ``end()``: a real live run with a real journal."""

    proc: subprocess.Popen[str]
    run_id: str
    journal: Path

    def send(self, command: str) -> None:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline().strip()
        assert answer in ("ok", "done"), answer

    def log(self, points: int) -> None:
        self.send(f"log {points}")

    def end(self) -> None:
        self.send("end")
        self.proc.communicate(timeout=60)
        assert self.proc.returncode == 0


@contextlib.contextmanager
def trainer(root: Path, **spec: object) -> Iterator[Trainer]:
    """A ``Trainer`` in repository ``root`` (spec: name, experiment, params, tags); killed
    with its session on the way out."""
    import json

    script = root.parent / f"trainer-{root.name}.py"
    script.write_text(TRAINER)
    cmd = [sys.executable, str(script), json.dumps(spec)]
    pipes = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
    with spawned(cmd, cwd=root, text=True, **pipes) as proc:  # type: ignore[arg-type]
        assert proc.stdout is not None
        run_id = proc.stdout.readline().strip()
        assert run_id, proc.stderr.read() if proc.stderr else ""
        journal = root / ".git" / "xp" / "journal" / f"{run_id}.journal"
        yield Trainer(proc, run_id, journal)


LIGHTTPD = "/usr/sbin/lighttpd"


def git_http_backend() -> str:
    """Where this machine's git keeps ``git http-backend`` (git --exec-path)."""
    exec_path = subprocess.run(["git", "--exec-path"], capture_output=True, text=True).stdout
    return str(Path(exec_path.strip()) / "git-http-backend")


@contextlib.contextmanager
def http_git_server(root: Path) -> Iterator[str]:
    """A smart-HTTP git server: Debian's lighttpd running ``git http-backend`` (CGI) on
    127.0.0.1, serving the bare repositories in ``root`` with push enabled; yields the base
    URL (``<url>/<name>.git``). A repository made under ``root`` later must say
    ``http.receivepack = true`` to take pushes (``bare_http_repo`` does), as git itself asks
    of anonymous HTTP pushes."""
    port = free_port()
    conf = root.parent / f"lighttpd-{port}.conf"
    conf.write_text(
        f'server.document-root = "{root}"\n'
        'server.bind = "127.0.0.1"\n'
        f"server.port = {port}\n"
        'server.modules = ("mod_alias", "mod_setenv", "mod_cgi")\n'
        f'server.errorlog = "{root.parent / f"lighttpd-{port}.log"}"\n'
        f'server.upload-dirs = ("{root.parent}")\n'
        # git's pushes send big packs in one request body: stream them to the CGI
        "server.stream-request-body = 2\n"
        f'alias.url = ("/git" => "{git_http_backend()}")\n'
        '$HTTP["url"] =~ "^/git" {\n'
        '  cgi.assign = ("" => "")\n'
        f'  setenv.set-environment = ("GIT_PROJECT_ROOT" => "{root}",'
        ' "GIT_HTTP_EXPORT_ALL" => "", "GIT_CONFIG_NOSYSTEM" => "1")\n'
        "}\n"
    )
    url = f"http://127.0.0.1:{port}/git"
    with spawned(
        [LIGHTTPD, "-D", "-f", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    ) as proc:

        def answers() -> bool:
            assert proc.poll() is None, f"lighttpd exited {proc.returncode}: {conf}"
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return True
            except OSError:
                return False

        wait_for(answers, "lighttpd to listen", interval=0.05)
        yield url


@dataclass
class HttpRemote:
    """A bare repository served by ``http_git_server``: its URL, and its folder."""

    url: str
    bare: Path


def bare_http_repo(root: Path, name: str) -> Path:
    """A bare repository under an ``http_git_server`` root that takes anonymous pushes."""
    bare = root / name
    git(root, "init", "-q", "--bare", "-b", "main", name)
    git(bare, "config", "http.receivepack", "true")
    return bare


def server_runs(where: Path | str) -> dict[str, str]:
    """run id -> tip of every run a git remote holds (a bare repository's path or a URL):
    its format-2 catalog entries and any format-1 per-run refs (docs/format.md, section 1)."""
    import tempfile

    if isinstance(where, str) and "://" in where:
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(["git", "init", "-q", "--bare", tmp], check=True)
            subprocess.run(
                [
                    "git",
                    "-C",
                    tmp,
                    "fetch",
                    "-q",
                    where,
                    "+refs/xp/catalog/*:refs/xp/catalog/*",
                    "+refs/xp/runs/*:refs/xp/runs/*",
                ],
                check=True,
                capture_output=True,
            )
            return server_runs(Path(tmp))
    bare = Path(where)
    out: dict[str, str] = {}
    listing = git(bare, "for-each-ref", "--format=%(objectname) %(refname)", "refs/xp/")
    for line in listing.splitlines():
        sha, ref = line.split(" ", 1)
        if ref.startswith("refs/xp/runs/"):
            out[ref.rsplit("/", 1)[1]] = sha
        elif ref.startswith("refs/xp/catalog/"):
            for entry in git(bare, "ls-tree", ref).splitlines():
                meta, name = entry.split("\t", 1)
                mode, _kind, tip = meta.split()
                if name == ".xp-index":  # the bucket's run summary
                    assert mode == "100644", entry
                    continue
                assert mode == "160000", entry
                out[name] = tip
    return out


def bucket_summaries(bare: Path) -> dict[str, tuple[dict[str, str], Decoded | None]]:
    """bucket ref -> (its entries, its run summary decoded against them) on a bare remote."""
    from xp.query.index.summary import SUMMARY_NAME, decode

    out: dict[str, tuple[dict[str, str], Decoded | None]] = {}
    refs = git(bare, "for-each-ref", "--format=%(refname)", "refs/xp/catalog/").split()
    for ref in refs:
        entries: dict[str, str] = {}
        blob = None
        for line in git(bare, "ls-tree", ref).splitlines():
            meta, name = line.split("\t", 1)
            if name == SUMMARY_NAME:
                blob = meta.split()[2]
            else:
                entries[name] = meta.split()[2]
        decoded = None
        if blob is not None:
            data = git(bare, "cat-file", "blob", blob).encode()
            decoded = decode(data, entries)
        out[ref] = (entries, decoded)
    return out


def assert_summaries_whole(bare: Path) -> None:
    """Every bucket's summary describes exactly its entries, each at the listed commit."""
    for ref, (entries, decoded) in bucket_summaries(bare).items():
        assert decoded is not None, f"{ref} has no run summary"
        assert decoded.ignored == 0, (ref, decoded.why)
        assert {i.run_id: c for c, i in decoded.items.items()} == entries, ref


@contextlib.contextmanager
def scratch_project() -> Iterator[Path]:
    """A fresh git repository with one commit, the working directory while in use: for a
    Hypothesis test, whose examples cannot share a function-scoped fixture."""
    import tempfile

    here = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        git(root, "init", "-q")
        (root / "train.py").write_text("print('train')\n")
        git(root, "add", ".")
        git(root, "commit", "-qm", "init")
        os.chdir(root)
        try:
            yield root
        finally:
            os.chdir(here)
