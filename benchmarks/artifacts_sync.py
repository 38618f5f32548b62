"""`xp push` / `xp pull --artifacts` of 1,000 runs, each with one small artifact (1 KB), to a
folder artifact remote and to an S3 server (moto's server mode on 127.0.0.1, when moto and
s3fs are installed), plus a no-op push (nothing to publish: one `git ls-remote`, no request
to the store), how long a push to an S3 endpoint that is down takes to fail (bounded
connect timeout and retries), and how long one to a server that stopped answering (SIGSTOP:
it accepts connections, never replies) takes to give its error with the default timeouts.
Git refs go to a local bare repository. Each figure is one `xp` subprocess, as a user runs it.

Runs with the benchmark runner (`python benchmarks/run.py --only sync`) or alone:
`python benchmarks/artifacts_sync.py [--quick]`.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

if __package__ in (None, ""):  # standalone: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.harness import (
    Context,
    Metric,
    Workload,
    child_env,
    children_cpu,
    git,
    settle,
    standalone,
    xp_command,
)
from benchmarks.harness import xp_project as make_project


def xp(
    cwd: Path, *args: str, env: dict[str, str] | None = None, cpu: dict[str, float] | None = None
) -> float:
    """Wall seconds of ``xp ARGS``; ``cpu[ARGS]`` gets the CPU seconds of its process tree."""
    used = children_cpu()
    start = time.perf_counter()
    proc = subprocess.run(
        [*xp_command(), *args], cwd=cwd, env=env or child_env(), capture_output=True, check=False
    )
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"xp {' '.join(args)} failed: {proc.stderr.decode()[-400:]}")
    if cpu is not None:
        cpu[" ".join(args)] = children_cpu() - used
    return elapsed


@contextmanager
def s3_server() -> Iterator[tuple[str, subprocess.Popen[bytes]] | None]:
    """An S3 endpoint on 127.0.0.1 and its process, or None when moto / s3fs are missing."""
    try:
        import moto.server  # noqa: F401
        import s3fs  # type: ignore[import-untyped]  # noqa: F401
    except ImportError:
        yield None
        return
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(endpoint + "/moto-api/", timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        yield endpoint, proc
    finally:
        os.kill(proc.pid, signal.SIGCONT)
        proc.terminate()
        proc.wait(10)


def many_runs(repo: Path, n: int) -> None:
    os.chdir(repo)
    import xp as api

    for i in range(n):
        with api.start_run():
            api.log_metric("loss", 1 / (i + 1))
            api.log_text(f"result {i}\n" + "x" * 1000, "result.txt")


def xp_side(ctx: Context) -> dict[str, float]:
    from xp.gitstore.repack import wait_for_repack
    from xp.gitstore.repo import find_repo

    n = ctx.size(1000, 50)
    repo = make_project(ctx.workdir / "a")
    for name in ("origin", "origin2"):
        git(ctx.workdir, "init", "-q", "--bare", str(ctx.workdir / f"{name}.git"))
        git(repo, "remote", "add", name, str(ctx.workdir / f"{name}.git"))
    xp(repo, "remote", "add", "dir", str(ctx.workdir / "store"), "--default")
    git(repo, "add", ".xp/config.yaml")
    git(repo, "commit", "-q", "-m", "artifact remote")
    git(repo, "push", "-q", "origin", "main")
    # git's automatic packing on, as in a user's clone (the harness turns it off for the
    # commit workload): xp packs the runs' loose objects in the background as they pile up
    # (gitstore.repack.maybe_repack); the push is timed once the last repack ended
    git(repo, "config", "--unset", "gc.auto")
    many_runs(repo, n)
    wait_for_repack(find_repo(repo).xp_dir)
    settle()
    cpu: dict[str, float] = {}
    out = {"push_dir": xp(repo, "push", cpu=cpu)}
    out["push_dir_cpu"] = cpu["push"]
    out["noop_dir"] = xp(repo, "push", cpu=cpu)
    out["noop_dir_cpu"] = cpu["push"]
    clone = ctx.workdir / "b"
    git(ctx.workdir, "clone", "-q", "-b", "main", str(ctx.workdir / "origin.git"), str(clone))
    out["pull_dir"] = xp(clone, "pull", "--artifacts")
    with s3_server() as server:
        if server is None:
            return out
        endpoint, moto = server
        env = {
            **child_env(),
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        import s3fs

        fs = s3fs.S3FileSystem(
            key="bench", secret="bench", client_kwargs={"endpoint_url": endpoint}
        )
        fs.mkdir("bench")
        xp(repo, "remote", "add", "s3", "s3://bench/xp", "--endpoint-url", endpoint)
        git(repo, "commit", "-q", "-am", "s3 remote")
        # --no-verify: the branch alone; the pre-push hook would send the runs, and xp push
        # below is what is measured sending them
        git(repo, "push", "-q", "--no-verify", "origin2", "main")
        out["push_s3"] = xp(repo, "push", "origin2", "--store", "s3", env=env)
        out["noop_s3"] = xp(repo, "push", "origin2", "--store", "s3", env=env)
        fresh = ctx.workdir / "c"
        git(ctx.workdir, "clone", "-q", "-b", "main", str(ctx.workdir / "origin2.git"), str(fresh))
        out["pull_s3"] = xp(fresh, "pull", "--artifacts", "--store", "s3", env=env)
        out["unreachable_s3"] = unreachable(repo, env)
        out["stalled_s3"] = stalled(repo, env, moto.pid)
    return out


def stalled(repo: Path, env: dict[str, str], server: int) -> float:
    """Seconds until `xp push` of one new run to an S3 server that stopped answering (SIGSTOP)
    gives up with its error, default timeouts."""
    os.chdir(repo)
    import xp as api

    with api.start_run():
        api.log_text("one more\n", "late.txt")
    os.kill(server, signal.SIGSTOP)
    try:
        start = time.perf_counter()
        proc = subprocess.run(
            [*xp_command(), "push", "origin2", "--store", "s3"],
            cwd=repo,
            env=env,
            capture_output=True,
            timeout=600,
        )
        elapsed = time.perf_counter() - start
    finally:
        os.kill(server, signal.SIGCONT)
    if proc.returncode != 1 or b"artifact remote 's3'" not in proc.stderr:
        raise RuntimeError(f"push to a stalled server: exit {proc.returncode}, {proc.stderr!r}")
    return elapsed


def unreachable(repo: Path, env: dict[str, str]) -> float:
    """Seconds until `xp push` to an S3 endpoint nobody listens on gives up with its error."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    xp(repo, "remote", "add", "down", "s3://bench/down", "--endpoint-url", dead)
    start = time.perf_counter()
    proc = subprocess.run(
        [*xp_command(), "push", "origin2", "--store", "down"],
        cwd=repo,
        env=env,
        capture_output=True,
    )
    elapsed = time.perf_counter() - start
    if proc.returncode != 1 or b"artifact remote 'down'" not in proc.stderr:
        raise RuntimeError(
            f"push to a dead endpoint: exit {proc.returncode}, {proc.stderr[-300:]!r}"
        )
    return elapsed


WORKLOAD = Workload(
    key="sync",
    title="xp push / pull --artifacts of 1,000 runs with a 1 KB artifact each (subprocess)",
    metrics=(
        Metric("push_dir", "xp push: refs + 1,000 objects to a folder remote", "s", 1.0),
        Metric("push_dir_cpu", "xp push to a folder remote, CPU of its process tree", "s", 1.0),
        Metric("noop_dir", "xp push again: nothing to send (folder remote)", "s", 0.2),
        Metric("noop_dir_cpu", "xp push again, CPU of its process tree", "s", 0.2),
        Metric("pull_dir", "xp pull --artifacts from the folder remote", "s"),
        Metric("push_s3", "xp push: refs + 1,000 objects to S3 (moto server)", "s"),
        Metric("noop_s3", "xp push again: nothing to send (S3)", "s", 1.0),
        Metric("pull_s3", "xp pull --artifacts from S3", "s"),
        Metric(
            "unreachable_s3", "xp push to an S3 endpoint that is down: time to the error", "s", 30
        ),
        Metric(
            "stalled_s3",
            "xp push to an S3 server that stopped answering: time to the error",
            "s",
            60,
        ),
    ),
    xp=xp_side,
    repeat=1,
    order=80,
    notes=(
        "git remotes are local bare repositories; the S3 server is moto on 127.0.0.1 (a"
        " Python server: slower per request than a real S3 endpoint, with no network latency)",
    ),
    quick_notes=("quick: 50 runs",),
)


if __name__ == "__main__":
    standalone(__doc__, {"xp": xp_side})
