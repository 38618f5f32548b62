"""Issue #5 end to end: real git servers on 127.0.0.1 (git daemon; smart HTTP, git http-backend
behind lighttpd, issue #14), clones sharing runs with plain `git push` / `git fetch`, artifacts
through a directory store or an S3 server."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.helpers import HttpRemote, S3Server, free_port, fsck, git, server_runs, spawned, wait_for


def _env() -> dict[str, str]:
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


def sh(cwd: Path, *args: str) -> str:
    proc = subprocess.run(list(args), cwd=cwd, env=_env(), capture_output=True, text=True)
    assert proc.returncode == 0, f"{args}: {proc.stderr}"
    return proc.stdout + proc.stderr


def xp_(cwd: Path, *args: str) -> str:
    return sh(cwd, sys.executable, "-m", "xp", *args)


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[str]:
    """`git daemon --enable=receive-pack` serving tmp_path/srv on 127.0.0.1; yields the URL."""
    base = tmp_path / "srv"
    base.mkdir()
    git(base, "init", "-q", "--bare", "team.git")
    port = free_port()
    url = f"git://127.0.0.1:{port}/team.git"
    with spawned(
        [
            "git",
            "daemon",
            "--reuseaddr",
            "--export-all",
            "--enable=receive-pack",
            f"--base-path={base}",
            "--listen=127.0.0.1",
            f"--port={port}",
            str(base),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    ):
        wait_for(
            lambda: subprocess.run(["git", "ls-remote", url], capture_output=True).returncode == 0,
            "git daemon to answer",
            interval=0.1,
        )
        yield url
    fsck(base / "team.git")


TRAIN = """
import sys, os, xp
i = int(sys.argv[1])
os.makedirs("out", exist_ok=True)
with open("out/model.bin", "wb") as fh:
    fh.write(os.urandom(1000 + i))
with xp.start_run(name=f"run-{i}", params={"i": i}):
    xp.log_metric("loss", 1.0 / (i + 1))
    xp.log_artifact("out/model.bin")
"""


def _setup_a(tmp_path: Path, url: str, store_args: list[str]) -> Path:
    a = tmp_path / "a"
    sh(tmp_path, "git", "clone", "-q", url, str(a))
    (a / "train.py").write_text(TRAIN)
    (a / ".gitignore").write_text("out/\n")
    xp_(a, "init")
    xp_(a, "remote", "add", "store", *store_args, "--default")
    xp_(a, "hooks", "install")
    sh(a, "git", "add", ".")
    sh(a, "git", "commit", "-qm", "project")
    return a


def _share_and_check(tmp_path: Path, url: str, store_args: list[str], n: int = 5) -> None:
    a = _setup_a(tmp_path, url, store_args)
    for i in range(n):
        sh(a, sys.executable, "train.py", str(i))
    out = sh(a, "git", "push", "origin")  # plain git push: branch, runs, artifacts
    assert f"uploaded {n} artifact objects" in out
    b = tmp_path / "b"
    sh(tmp_path, "git", "clone", "-q", url, str(b))
    xp_(b, "init")
    sh(b, "git", "fetch", "-q", "origin")  # plain git fetch
    shown = xp_(b, "show", "--all", "--format", "csv")
    assert sum(f"run-{i}" in shown for i in range(n)) == n
    got = tmp_path / "got"
    for i in range(n):
        xp_(b, "get", f"run-{i}", "-o", str(got / str(i)))
    runs_a = {
        line.split()[1]: line.split()[0]
        for line in sh(
            a, "git", "for-each-ref", "--format=%(objectname) %(refname)", "refs/xp/runs"
        ).splitlines()
    }
    assert len(runs_a) == n
    for i in range(n):
        assert (got / str(i) / "model.bin").stat().st_size == 1000 + i
    for repo in (a, b):
        subprocess.run(
            ["git", "fsck", "--strict", "--no-dangling"], cwd=repo, check=True, capture_output=True
        )


def test_git_daemon_directory_store(tmp_path: Path, daemon: str) -> None:
    _share_and_check(tmp_path, daemon, [str(tmp_path / "store")])


def test_git_daemon_s3_store(tmp_path: Path, daemon: str, s3: S3Server) -> None:
    _share_and_check(tmp_path, daemon, [f"s3://{s3.bucket}/xp", "--endpoint-url", s3.endpoint])


def test_smart_http_directory_store(tmp_path: Path, http_remote: HttpRemote) -> None:
    _share_and_check(tmp_path, http_remote.url, [str(tmp_path / "store")])
    # the server itself holds the runs, in its catalog (fsck'd by the fixture)
    assert len(server_runs(http_remote.bare)) == 5


def test_smart_http_s3_store(tmp_path: Path, http_remote: HttpRemote, s3: S3Server) -> None:
    store = [f"s3://{s3.bucket}/xp", "--endpoint-url", s3.endpoint]
    _share_and_check(tmp_path, http_remote.url, store)


@pytest.mark.slow
def test_eight_clones_push_in_parallel(tmp_path: Path, daemon: str) -> None:
    store = tmp_path / "store"
    seed = _setup_a(tmp_path, daemon, [str(store)])
    sh(seed, "git", "push", "-q", "origin")
    clones = []
    for k in range(8):
        c = tmp_path / f"c{k}"
        sh(tmp_path, "git", "clone", "-q", daemon, str(c))
        xp_(c, "init")
        xp_(c, "hooks", "install")
        clones.append(c)

    def work(c: Path) -> None:
        script = (
            "import os, xp\n"
            "os.makedirs('out', exist_ok=True)\n"
            "for i in range(25):\n"
            "    open('out/model.bin', 'wb').write(os.urandom(200))\n"
            "    with xp.start_run(name=f'{os.path.basename(os.getcwd())}-{i}'):\n"
            "        xp.log_artifact('out/model.bin')\n"
        )
        sh(c, sys.executable, "-c", script)
        for _ in range(5):  # the branch may race; runs never conflict
            proc = subprocess.run(
                ["git", "push", "-q", "origin", "refs/xp/runs/*:refs/xp/runs/*"],
                cwd=c,
                env=_env(),
                capture_output=True,
                text=True,
            )
            if proc.returncode == 0:
                return
        raise AssertionError(proc.stderr)

    with ThreadPoolExecutor(8) as pool:  # its wall time is benchmarks/parallel_push.py
        list(pool.map(work, clones))
    fresh = tmp_path / "fresh"
    sh(tmp_path, "git", "clone", "-q", daemon, str(fresh))
    xp_(fresh, "init")
    sh(fresh, "git", "fetch", "-q", "origin")
    assert len(xp_(fresh, "show", "--all", "--format", "csv").strip().splitlines()) == 201
    xp_(fresh, "pull", "--artifacts")
    objects = [p for p in store.rglob("*") if p.is_file()]
    assert len(objects) == 200


def _job_clone(tmp_path: Path, url: str, name: str) -> Path:
    """A cluster job's clone of the project: fresh, on the commit it was given."""
    job = tmp_path / name
    sh(tmp_path, "git", "clone", "-q", url, str(job))
    return job


def _runs_on(url: str) -> list[str]:
    return list(server_runs(url))


def test_plain_git_push_on_a_detached_head_sends_the_runs(tmp_path: Path, daemon: str) -> None:
    a = _setup_a(tmp_path, daemon, [str(tmp_path / "store")])
    sh(a, "git", "push", "-q", "origin", "HEAD:refs/heads/main")
    job = _job_clone(tmp_path, daemon, "job")
    sh(job, "git", "checkout", "-q", "--detach", "HEAD")  # as Slurm/CI jobs check out a commit
    out = xp_(job, "run", "--", sys.executable, "train.py", "7")  # sets the clone up, once
    assert "set up this clone of an xp project" in out
    proc = subprocess.run(["git", "push"], cwd=job, env=_env(), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "sent 1 run to origin" in proc.stderr
    assert len(_runs_on(daemon)) == 1
    # on a branch, git's own choice of branches is back (push.default simple, the default)
    sh(job, "git", "checkout", "-q", "-b", "topic")
    assert sh(job, "git", "config", "push.default").strip() == "simple"
    refused = subprocess.run(["git", "push"], cwd=job, env=_env(), capture_output=True, text=True)
    assert refused.returncode != 0
    assert "has no upstream branch" in refused.stderr  # simple's own message, not matching's
    sh(job, "git", "checkout", "-q", "--detach")
    assert sh(job, "git", "config", "push.default").strip() == "matching"
    xp_(job, "init", "--undo")
    assert subprocess.run(["git", "config", "push.default"], cwd=job).returncode == 1
    assert not (job / ".git" / "xp" / "push-on-branch.config").exists()


def test_plain_git_push_of_a_branch_behind_sends_runs_and_git_decides_the_exit(
    tmp_path: Path, daemon: str
) -> None:
    a = _setup_a(tmp_path, daemon, [str(tmp_path / "store")])
    sh(a, "git", "push", "-q", "-u", "origin", "HEAD:refs/heads/main")
    job = _job_clone(tmp_path, daemon, "job")
    xp_(job, "run", "--", sys.executable, "train.py", "3")
    (a / "more.txt").write_text("more\n")
    sh(a, "git", "add", "more.txt")
    sh(a, "git", "commit", "-qm", "more")
    sh(a, "git", "push", "-q", "origin", "HEAD:refs/heads/main")  # the job's main is behind now
    proc = subprocess.run(["git", "push"], cwd=job, env=_env(), capture_output=True, text=True)
    assert proc.returncode == 1  # what git says of main (rejected), and only that
    assert "main -> main (non-fast-forward)" in proc.stderr or "rejected" in proc.stderr
    assert "sent 1 run to origin" in proc.stderr
    assert "xp: error" not in proc.stderr
    assert len(_runs_on(daemon)) == 1


def test_xp_rm_on_the_remote_after_xp_init_deletes_there_and_here(
    tmp_path: Path, daemon: str
) -> None:
    # After `xp init` the fetch refspec maps the remote's runs to refs/xp/remotes/origin/, so
    # git itself drops that copy when the push deletes the run: rm must not then fail on it.
    a = _setup_a(tmp_path, daemon, [str(tmp_path / "store")])
    for i in range(3):
        sh(a, sys.executable, "train.py", str(i))
    sh(a, "git", "push", "-q", "origin", "HEAD:refs/heads/main")
    sh(a, "git", "fetch", "-q", "origin")
    sh(a, "git", "pack-refs", "--all")  # packed copies too, as a long-lived clone has them
    b = _job_clone(tmp_path, daemon, "b")
    xp_(b, "init")
    sh(b, "git", "fetch", "-q", "origin")
    ids = sorted(_runs_on(daemon))
    assert len(ids) == 3
    first, second = ids[:2]
    proc = subprocess.run(
        [sys.executable, "-m", "xp", "rm", first, "--remote", "origin"],
        cwd=a,
        env=_env(),
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert "1 deleted on 'origin'" in proc.stdout
    assert first not in sh(a, "git", "for-each-ref", "refs/xp/")  # local ref and copy gone
    # a clone holding only the fetched copy deletes on the server and here as well
    proc = subprocess.run(
        [sys.executable, "-m", "xp", "rm", second, "--remote", "origin"],
        cwd=b,
        env=_env(),
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert second not in sh(b, "git", "for-each-ref", "refs/xp/")
    assert len(_runs_on(daemon)) == 1
