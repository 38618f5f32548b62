"""`xp run --executor ray` and `ray://`: sweeps on a real Ray runtime (a head started with
`ray start`, reached through Ray Client and through RAY_ADDRESS) against a real git server."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.execution.test_slurm import _project
from tests.helpers import free_port, one_line_error, spawned, wait_for, xp_main
from tests.sharing.test_e2e import _env, daemon, sh, xp_

__all__ = ["daemon", "ray_env", "ray_head", "sweep_runs"]


def ray_env(tmp_path: Path) -> dict[str, str]:
    """What the workers inherit: xp on PATH, the tasks' clones in tmp_path."""
    return {**_env(), "TMPDIR": str(tmp_path), "RAY_USAGE_STATS_ENABLED": "0"}


@pytest.fixture
def ray_head(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """`ray start --head` with 2 CPUs, no dashboard and a small object store; yields its GCS
    address and its Ray Client address. Its whole session is killed afterwards."""
    pytest.importorskip("ray")
    port, client = free_port(), free_port()
    # Ray's sockets live under its temp dir: a short path (AF_UNIX paths are short)
    temp = tempfile.mkdtemp(prefix="xpray-", dir="/tmp")
    ray = str(Path(sys.executable).parent / "ray")
    args = [ray, "start", "--head", "--block", "--num-cpus=2", "--include-dashboard=false"]
    args += [f"--port={port}", f"--ray-client-server-port={client}", "--node-ip-address=127.0.0.1"]
    args += ["--object-store-memory=100000000", f"--temp-dir={temp}", "--disable-usage-stats"]
    try:
        with spawned(
            args, env=ray_env(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        ):
            gcs = f"127.0.0.1:{port}"
            wait_for(lambda: _answers(client), "Ray's client server", timeout=180, interval=0.2)
            # the port opens before the server can start a client's session: ask it for one
            probe = f"import ray; ray.init('ray://127.0.0.1:{client}'); ray.shutdown()"
            wait_for(
                lambda: (
                    subprocess.run(
                        [sys.executable, "-c", probe], env=ray_env(tmp_path), capture_output=True
                    ).returncode
                    == 0
                ),
                "Ray's client server to take a client",
                timeout=180,
                interval=1,
            )
            yield gcs, f"ray://127.0.0.1:{client}"
    finally:
        subprocess.run(["rm", "-rf", temp], check=False)


def _answers(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def sweep_runs(tmp_path: Path, url: str, sweep: str) -> list[object]:
    """The runs of ``sweep`` a fresh clone of the remote sees."""
    import xp

    b = tmp_path / f"b-{sweep}"
    sh(tmp_path, "git", "clone", "-q", url, str(b))
    xp_(b, "init")
    sh(b, "git", "fetch", "-q", "origin")
    # every run, then the sweep's: a filter naming a tag no run has is an error (xp show's
    # typo guard), and a sweep cancelled early may have pushed no run at all
    runs = [xp.get_run(r.id, path=b) for r in xp.list_runs(path=b)]
    return [r for r in runs if r.tags.get("xp.sweep") == sweep]


def _xp_run(a: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "xp", "run", *args],
        cwd=a,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.framework
def test_a_sweep_on_ray_ends_with_its_runs_on_the_remote(
    tmp_path: Path, daemon: str, ray_head: tuple[str, str]
) -> None:
    gcs, client = ray_head
    a = _project(tmp_path, daemon)
    sweep = ["-p", "lr=0.1,0.2", "-p", "depth=1,2", "--", "python", "train.py"]
    proc = _xp_run(a, ray_env(tmp_path), "--executor", client, "--sweep-id", "r1", *sweep)
    assert proc.returncode == 0, proc.stderr
    assert "sweep r1: 4/4 finished on Ray" in proc.stdout
    assert proc.stderr.count(": finished") == 4  # progress as points finished
    runs = sweep_runs(tmp_path, daemon, "r1")
    got = sorted((r.params["lr"], r.params["depth"]) for r in runs)  # type: ignore[attr-defined]
    assert got == [(0.1, 1), (0.1, 2), (0.2, 1), (0.2, 2)]
    metas = [r.meta for r in runs]  # type: ignore[attr-defined]
    assert {m["engine"] for m in metas} == {"ray"}
    assert len({m["job_id"] for m in metas}) == 1  # one Ray job: the sweep's driver
    assert len({m["task_id"] for m in metas}) == 4  # Ray's task ids, one per point
    assert all(len(m["task_id"]) > 16 for m in metas)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("xp-r1-")]  # clones removed

    # `ray` with RAY_ADDRESS set joins that cluster; a failed point is reported with its exit
    # status and its last lines, the others still recorded.
    (a / "train.py").write_text(
        (a / "train.py").read_text()
        + 'if p["lr"] == 0.2:\n    print("diverged at step 7")\n    raise SystemExit(3)\n'
    )
    sh(a, "git", "commit", "-qam", "fail at lr=0.2")
    env = {**ray_env(tmp_path), "RAY_ADDRESS": gcs}
    proc = _xp_run(a, env, "--executor", "ray", "--sweep-id", "r2", "-p", "lr=0.1,0.2", *sweep[4:])
    assert proc.returncode == 1, proc.stderr
    assert "sweep r2: 1/2 finished on Ray" in proc.stdout
    assert f"on Ray at {gcs}" in proc.stderr
    assert "point 1: failed (exit 3)" in proc.stderr
    assert "xp: point 1 failed; its task's last lines:" in proc.stderr
    assert "    diverged at step 7" in proc.stderr
    runs = sweep_runs(tmp_path, daemon, "r2")
    statuses = sorted((r.params["lr"], r.meta["status"]) for r in runs)  # type: ignore[attr-defined]
    assert statuses == [(0.1, "finished"), (0.2, "failed")]  # the failed run is pushed too


def test_a_ray_executor_needs_ray_or_a_client_address(tmp_path: Path, daemon: str) -> None:
    a = _project(tmp_path, daemon)
    argv = ["-p", "lr=0.1,0.2", "--", "python", "train.py"]
    msg = one_line_error(*xp_main("run", "--executor", "ray://", *argv, cwd=a)[::2])
    assert "the Ray Client server as ray://HOST:PORT" in msg
    assert not sh(a, "git", "ls-remote", daemon, "refs/xp/*")  # nothing pushed first
    msg = one_line_error(*xp_main("run", "--executor", "ray", "--point", "1", *argv, cwd=a)[::2])
    assert "--point and --dry-run do not go with --executor ray" in msg


def test_run_id_names_one_points_run(tmp_path: Path, daemon: str) -> None:
    a = _project(tmp_path, daemon)
    argv = ["-p", "lr=0.1,0.2", "--", "python", "train.py"]
    msg = one_line_error(*xp_main("run", "--run-id", "x", *argv, cwd=a)[::2])
    assert "give --point too" in msg
    msg = one_line_error(*xp_main("run", "--run-id", "x", "--point", "0", *argv, cwd=a)[::2])
    assert "is not an xp run id" in msg
    code, out, err = xp_main("run", "--run-id", "1abcdefghjkmnp", "--point", "0", *argv, cwd=a)
    assert code == 0, err
    assert "1abcdefghjkmnp" in out
    msg = one_line_error(
        *xp_main("run", "--run-id", "1abcdefghjkmnp", "--point", "1", *argv, cwd=a)[::2]
    )
    assert "run 1abcdefghjkmnp exists here already" in msg
    assert os.path.isfile(a / ".git" / "refs" / "xp" / "runs" / "1abcdefghjkmnp")
