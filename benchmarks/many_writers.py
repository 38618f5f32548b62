"""Many writers, one remote (issue 14 item 3): 32 worker processes, each its own clone of one
bare repository served over smart HTTP (git http-backend behind lighttpd; git daemon when
lighttpd is missing, and the JSON says so), each recording 50 runs with a 100 kB random
artifact and pushing as it goes with plain `git push` (the pre-push hook uploads the artifact
to an S3 server, moto's, and sends the run). Then a fresh clone fetches every run and its
artifacts: every run present, every artifact byte-identical (sha256), the server's
`git fsck --strict` clean, no push failed. Long: `python benchmarks/run.py --only T3`, or alone
`python benchmarks/many_writers.py [--quick]` (4 workers x 5 runs).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

if __package__ in (None, ""):  # standalone: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.harness import (
    Context,
    Metric,
    Workload,
    child_env,
    git,
    standalone,
    xp_command,
    xp_project,
)

BUCKET = "xp-many-writers"

WORKER = """
import hashlib, json, os, resource, subprocess, sys, time
import xp

runs = int(sys.argv[1])
os.makedirs("out", exist_ok=True)
pushes, shas, failed = [], [], []
for i in range(runs):
    data = os.urandom(100_000)
    with open("out/model.bin", "wb") as fh:
        fh.write(data)
    with xp.start_run(name=f"{os.path.basename(os.getcwd())}-{i}"):
        xp.log_artifact("out/model.bin")
    shas.append(hashlib.sha256(data).hexdigest())
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(["git", "push", "-q"], capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    pushes.append((wall, cpu))
    if proc.returncode != 0:
        failed.append(proc.stderr.strip()[-300:])
me = resource.getrusage(resource.RUSAGE_SELF)
kids = resource.getrusage(resource.RUSAGE_CHILDREN)
cpu = me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime
print(json.dumps({"pushes": pushes, "shas": shas, "failed": failed, "cpu": cpu}))
"""


def env(endpoint: str) -> dict[str, str]:
    """child_env with this interpreter's bin/ first (the hooks exec `git-xp`) and the S3
    server's test credentials."""
    return {
        **child_env(),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }


@contextlib.contextmanager
def git_server(root: Path) -> Iterator[tuple[str, str]]:
    """(URL of root/team.git, kind): smart HTTP when lighttpd is here, else git daemon."""
    from tests.helpers import LIGHTTPD, bare_http_repo, free_port, http_git_server, spawned

    if os.access(LIGHTTPD, os.X_OK):
        bare_http_repo(root, "team.git")
        with http_git_server(root) as url:
            yield f"{url}/team.git", "smart-http"
        return
    git(root, "init", "-q", "--bare", "-b", "main", "team.git")
    port = free_port()
    flags = ["--reuseaddr", "--export-all", "--enable=receive-pack", "--listen=127.0.0.1"]
    cmd = ["git", "daemon", *flags, f"--base-path={root}", f"--port={port}", str(root)]
    with spawned(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL):
        url = f"git://127.0.0.1:{port}/team.git"
        for _ in range(300):
            if subprocess.run(["git", "ls-remote", url], capture_output=True).returncode == 0:
                break
            time.sleep(0.1)
        yield url, "git-daemon"


def xp(cwd: Path, environ: dict[str, str], *args: str) -> None:
    subprocess.run([*xp_command(), *args], cwd=cwd, env=environ, capture_output=True, check=True)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def xp_side(ctx: Context) -> dict[str, float]:
    from tests.helpers import moto_server

    workers, runs = ctx.size(32, 4), ctx.size(50, 5)
    srv = ctx.workdir / "srv"
    srv.mkdir()
    with moto_server(child_env()) as endpoint, git_server(srv) as (url, kind):
        environ = env(endpoint)
        import s3fs  # type: ignore[import-untyped]

        s3fs.S3FileSystem(
            key="testing", secret="testing", client_kwargs={"endpoint_url": endpoint}
        ).mkdir(BUCKET)
        seed = xp_project(ctx.workdir / "seed")
        store = f"s3://{BUCKET}/xp"
        xp(seed, environ, "remote", "add", "store", store, "--endpoint-url", endpoint, "--default")
        (seed / ".gitignore").write_text("outputs/\nout/\n__pycache__/\n")
        git(seed, "add", "-A")
        git(seed, "commit", "-q", "-m", "store")
        git(seed, "remote", "add", "origin", url)
        git(seed, "push", "-q", "-u", "origin", "main")
        (ctx.workdir / "worker.py").write_text(WORKER)
        clones = []
        for k in range(workers):
            clone = ctx.workdir / f"w{k:02d}"
            git(ctx.workdir, "clone", "-q", url, str(clone))
            xp(clone, environ, "init")
            xp(clone, environ, "hooks", "install")
            clones.append(clone)
        start = time.perf_counter()
        procs = [
            subprocess.Popen(
                [sys.executable, str(ctx.workdir / "worker.py"), str(runs)],
                cwd=c,
                env=environ,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for c in clones
        ]
        results = []
        for proc in procs:
            out, err = proc.communicate()
            if proc.returncode != 0:
                raise RuntimeError(f"a worker exited {proc.returncode}: {err.strip()[-500:]}")
            results.append(json.loads(out.strip().splitlines()[-1]))
        wall = time.perf_counter() - start
        failed = [f for r in results for f in r["failed"]]
        # a fresh clone: every run, every artifact byte-identical
        fresh = ctx.workdir / "fresh"
        git(ctx.workdir, "clone", "-q", url, str(fresh))
        xp(fresh, environ, "init")
        git(fresh, "fetch", "-q", "origin")
        import xp as xp_api  # runs fetched as catalog entries or per-run copies alike (#14)

        fetched = len(xp_api.list_runs(fresh))
        xp(fresh, environ, "pull", "--artifacts")
        cache = fresh / ".git" / "xp" / "cache" / "sha256"
        wanted = {sha for r in results for sha in r["shas"]}
        intact = sum(
            (cache / sha[:2] / sha[2:4] / sha).is_file()
            and hashlib.sha256((cache / sha[:2] / sha[2:4] / sha).read_bytes()).hexdigest() == sha
            for sha in wanted
        )
        fsck = subprocess.run(
            ["git", "fsck", "--strict", "--no-dangling"],
            cwd=srv / "team.git",
            capture_output=True,
            text=True,
        )
    expected = workers * runs
    if failed or fetched != expected or intact != len(wanted) or fsck.returncode != 0:
        raise RuntimeError(
            f"{kind}: {len(failed)} failed pushes ({failed[:1]}), {fetched}/{expected} runs"
            f" fetched, {intact}/{len(wanted)} artifacts intact, fsck {fsck.returncode}"
            f" {fsck.stderr.strip()[-300:]}"
        )
    pushes = [p for r in results for p in r["pushes"]]
    latencies = [wall_ for wall_, _cpu in pushes]
    print(f"git server: {kind}", file=sys.stderr)
    return {
        "wall": wall,
        "push_p50": percentile(latencies, 50),
        "push_p99": percentile(latencies, 99),
        "push_cpu": statistics.median(cpu for _wall, cpu in pushes),
        "cpu_per_run": sum(r["cpu"] for r in results) / expected,
        "failed": float(len(failed)),
        "smart_http": 1.0 if kind == "smart-http" else 0.0,
    }


WORKLOAD = Workload(
    key="T3",
    title="32 clones x 50 runs (100 kB artifact each) pushed as they go: smart HTTP + S3",
    metrics=(
        Metric("wall", "32 workers log 50 runs each, git push after each", "s"),
        Metric("push_p50", "one git push through the hook, p50", "ms"),
        Metric("push_p99", "one git push through the hook, p99", "ms"),
        Metric("push_cpu", "CPU of one push (whole process tree), median", "ms", target=0.15),
        Metric("cpu_per_run", "worker CPU per run (logging + push)", "ms"),
        Metric("failed", "failed pushes", "n"),
        Metric("smart_http", "server was smart HTTP (1) or git daemon (0)", "n"),
    ),
    xp=xp_side,
    repeat=1,
    order=86,
    long=True,
    needs=("moto", "s3fs"),
    needs_hint='pip install -e ".[test]"',
    notes=(
        "git http-backend behind lighttpd on 127.0.0.1 (git daemon without lighttpd);"
        " artifacts to moto's S3 server through the pre-push hook; a fresh clone then"
        " fetches every run and artifact (sha256 checked), server fsck --strict",
    ),
    quick_notes=("quick: 4 workers x 5 runs",),
)


if __name__ == "__main__":
    standalone(__doc__, {"xp": xp_side})
