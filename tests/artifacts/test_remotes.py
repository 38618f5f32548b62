"""Artifact remotes: the config commands, and S3 against a real S3 server (moto, 127.0.0.1)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

import xp
from tests.helpers import (
    S3Server,
    Team,
    free_port,
    git,
    log_run,
    moto_process,
    moto_server,
    one_line_error,
    server_runs,
    spawned,
    wait_for,
    xp_main,
)
from xp.artifacts import cache
from xp.artifacts.artifact_store import PER_OBJECT_CHECK, open_store
from xp.errors import CorruptObjectError
from xp.gitstore.repo import find_repo


def test_remote_add_list_default_remove_keeps_the_rest_of_the_config(repo: Path) -> None:
    cfg = repo / ".xp" / "config.yaml"
    cfg.parent.mkdir()
    cfg.write_text("# my settings\nparams: [params.yaml]\n\n# keep me\nmax_file_size: 5MB\n")
    assert xp_main("remote", "add", "nas", "/mnt/nas/xp", cwd=repo)[0] == 0
    code, out, err = xp_main(
        "remote",
        "add",
        "s3",
        "s3://bucket/xp",
        "--default",
        "--endpoint-url",
        "http://h:9000",
        cwd=repo,
    )
    assert code == 0, err
    text = cfg.read_text()
    assert text.startswith(
        "# my settings\nparams: [params.yaml]\n\n# keep me\nmax_file_size: 5MB\n"
    )
    assert "default_remote: s3\n" in text
    assert "endpoint_url: http://h:9000" in text
    code, out, _err = xp_main("remote", "list", cwd=repo)
    assert out == "  nas\t/mnt/nas/xp\n* s3\ts3://bucket/xp  endpoint_url=http://h:9000\n"
    assert xp_main("remote", "default", "nas", cwd=repo)[0] == 0
    assert xp_main("remote", "list", cwd=repo)[1].startswith("* nas")
    assert xp_main("remote", "remove", "nas", cwd=repo)[0] == 0
    assert xp_main("remote", "remove", "s3", cwd=repo)[0] == 0
    assert "remotes:" not in cfg.read_text()
    assert "max_file_size: 5MB" in cfg.read_text()


def test_relative_folder_is_stored_relative_to_the_project(repo: Path) -> None:
    (repo / "sub").mkdir()
    assert xp_main("remote", "add", "local", "../../store", cwd=repo / "sub")[0] == 0
    assert "url: ../store" in (repo / ".xp" / "config.yaml").read_text()


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        (["remote", "add", "bad name", "/x"], "remote name 'bad name'"),
        (["remote", "add", "x", "nosuchproto://b/p"], "protocol 'nosuchproto' is not available"),
        (["remote", "remove", "ghost"], "no artifact remote 'ghost'"),
        (["remote", "default", "ghost"], "no artifact remote 'ghost'"),
        (["push", "--store", "ghost"], "no artifact remote 'ghost'"),
    ],
)
def test_remote_bad_input(repo: Path, args: list[str], expect: str) -> None:
    log_run(repo, {"a.bin": b"a"})
    git(repo, "remote", "add", "origin", str(repo))
    assert expect in one_line_error(*xp_main(*args, cwd=repo)[::2])


def test_duplicate_and_broken_config(repo: Path) -> None:
    assert xp_main("remote", "add", "s", "/x", cwd=repo)[0] == 0
    assert "exists" in one_line_error(*xp_main("remote", "add", "s", "/y", cwd=repo)[::2])
    (repo / ".xp" / "config.yaml").write_text("remotes:\n  s: {path: /x}\n")
    assert "needs a 'url'" in one_line_error(*xp_main("remote", "list", cwd=repo)[::2])


def test_unreachable_folder_remote_is_one_line(team: Team) -> None:
    blocker = team.a.parent / "blocker"
    blocker.write_text("a file where the store's folder should be")
    cfg = team.a / ".xp" / "config.yaml"
    cfg.write_text(cfg.read_text().replace(str(team.store), str(blocker / "store")))
    log_run(team.a, {"a.bin": b"a"})
    msg = one_line_error(*xp_main("push", cwd=team.a)[::2])
    assert "artifact remote 'store'" in msg
    assert "check" in msg


def test_a_folder_store_copies_on_one_thread_unless_its_jobs_say_otherwise(
    team: Team, tmp_path: Path
) -> None:
    """A folder store's copy is kernel work that threads only make fight over the GIL (issue
    18); ``jobs`` in the remote's settings (a network file system) still wins. An S3 store
    keeps its parallel requests."""
    from xp.artifacts.artifact_store import ArtifactStore
    from xp.artifacts.remotes import DEFAULT_JOBS, RemoteSpec

    def jobs(url: str, **kw: Any) -> int:
        return ArtifactStore(RemoteSpec("s", url, **kw), tmp_path).upload_jobs

    assert jobs(str(team.store)) == 1
    assert jobs(str(team.store), jobs=4) == 4
    assert jobs("s3://bucket/xp") == DEFAULT_JOBS
    log_run(team.a, {f"{i}.bin": bytes([i]) * 10 for i in range(5)})
    code, out, err = xp_main("push", cwd=team.a)
    assert code == 0, err
    assert "artifacts: 5 sent" in out


# -- S3 ---------------------------------------------------------------------------------------


def use_s3(team: Team, s3: S3Server) -> None:
    for root in (team.a, team.b):
        code, _out, err = xp_main(
            "remote",
            "add",
            "s3",
            f"s3://{s3.bucket}/xp",
            "--default",
            "--endpoint-url",
            s3.endpoint,
            cwd=root,
        )
        assert code == 0, err


def test_s3_two_clones_byte_identical(team: Team, s3: S3Server) -> None:
    use_s3(team, s3)
    big = os.urandom(20 * 1024 * 1024)
    run_id = log_run(team.a, {"model.bin": big, "cfg.json": b"{}"})
    code, out, err = xp_main("push", cwd=team.a)
    assert code == 0, err
    assert "artifacts: 2 sent" in out
    sha = xp.get_run(run_id, team.a).artifacts[1].sha256
    fs = s3.fs()
    assert fs.cat_file(f"{s3.bucket}/xp/sha256/{sha[:2]}/{sha[2:4]}/{sha}") == big  # type: ignore[attr-defined]
    assert fs.find(f"{s3.bucket}/xp/tmp") == []  # type: ignore[attr-defined]
    code, out, err = xp_main("push", cwd=team.a)
    assert "artifacts: 0 sent (0 B), 2 already on 's3'" in out
    code, out, err = xp_main("pull", "--artifacts", cwd=team.b)
    assert code == 0, err
    assert "artifacts: 2 downloaded" in out
    code, out, err = xp_main("get", run_id, "-o", "got", cwd=team.b)
    assert code == 0, err
    assert (team.b / "got" / "model.bin").read_bytes() == big


def test_s3_batch_existence_and_corruption(repo: Path, s3: S3Server) -> None:
    assert (
        xp_main(
            "remote", "add", "s3", f"s3://{s3.bucket}/p", "--endpoint-url", s3.endpoint, cwd=repo
        )[0]
        == 0
    )
    r = find_repo(repo)
    store = open_store(r)
    cache_dir = repo / ".git" / "xp" / "cache"
    shas = [cache.add_bytes(cache_dir, f"object {i}".encode()) for i in range(PER_OBJECT_CHECK + 8)]
    for sha in shas[:10]:
        store.upload(cache.object_path(cache_dir, sha), sha)
    assert store.missing(shas) == set(shas[10:])  # listing shards
    assert store.missing(shas[5:15]) == set(shas[10:15])  # one request per object
    # A tampered object is refused on the way in and never enters the cache.
    victim = shas[0]
    s3.fs().pipe_file(store.object_path(victim), b"tampered")  # type: ignore[attr-defined]
    os.chmod(cache.object_path(cache_dir, victim), 0o644)
    cache.object_path(cache_dir, victim).unlink()
    with pytest.raises(CorruptObjectError, match=victim):
        store.download(victim, cache_dir, 8)
    assert not cache.object_path(cache_dir, victim).exists()


def test_s3_unreachable_and_missing_bucket(team: Team, s3: S3Server) -> None:
    log_run(team.a, {"a.bin": b"a"})
    dead = f"http://127.0.0.1:{free_port()}"
    xp_main("remote", "add", "down", "s3://b/x", "--endpoint-url", dead, cwd=team.a)
    # How long it takes to give up is a figure of benchmarks/artifacts_sync.py.
    msg = one_line_error(*xp_main("push", "--store", "down", cwd=team.a)[::2])
    assert "artifact remote 'down' (s3://b/x)" in msg
    assert "endpoint_url" in msg
    xp_main(
        "remote",
        "add",
        "nobucket",
        "s3://no-such-bucket/x",
        "--endpoint-url",
        s3.endpoint,
        cwd=team.a,
    )
    msg = one_line_error(*xp_main("push", "--store", "nobucket", cwd=team.a)[::2])
    assert "artifact remote 'nobucket'" in msg
    assert "bucket" in msg
    assert "refs/xp/" not in git(team.bare, "for-each-ref")


@pytest.fixture
def strict_s3() -> Iterator[str]:
    """A second S3 server that checks credentials (moto's IAM enforcement)."""
    with moto_server({**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "0"}) as endpoint:
        yield endpoint


def test_s3_permission_denied_is_one_line(
    repo: Path, strict_s3: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "not-a-real-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    git(repo, "remote", "add", "origin", str(repo))
    xp_main(
        "remote", "add", "s3", "s3://locked/x", "--default", "--endpoint-url", strict_s3, cwd=repo
    )
    log_run(repo, {"a.bin": b"a"})
    msg = one_line_error(*xp_main("push", cwd=repo)[::2])
    assert "artifact remote 's3'" in msg
    assert "AWS_ACCESS_KEY_ID" in msg


def test_s3_known_objects_are_trusted_only_after_a_sample_is_found(
    team: Team, s3: S3Server
) -> None:
    use_s3(team, s3)
    log_run(team.a, {"k.bin": b"known"})
    assert "1 sent" in xp_main("push", cwd=team.a)[1]
    fs = s3.fs()
    fs.rm(f"{s3.bucket}/xp", recursive=True)  # type: ignore[attr-defined]
    # Nothing to publish: no request at all (no run can appear without its files).
    assert "0 sent (0 B), 1 already on 's3'" in xp_main("push", cwd=team.a)[1]
    # A new run to publish: its objects are checked, and a sample of the known ones; the
    # sample finds the store emptied, the known list is dropped and both objects go up.
    log_run(team.a, {"n.bin": b"new"})
    assert "2 sent" in xp_main("push", cwd=team.a)[1]


def test_s3_a_run_is_never_published_without_objects_deleted_behind_xp_s_back(
    team: Team, s3: S3Server
) -> None:
    """Many objects known, one deleted from the store: no sample can be relied on to see it,
    so the objects of every run new to the git remote are checked on the store itself."""
    use_s3(team, s3)
    files = {f"f{i}.bin": f"content {i}".encode() for i in range(40)}
    log_run(team.a, files)
    assert "40 sent" in xp_main("push", cwd=team.a)[1]
    victim = next(a for a in xp.get_run(xp.list_runs(team.a)[0].id, team.a).artifacts)
    store = open_store(find_repo(team.a))
    s3.fs().rm(store.object_path(victim.sha256))  # type: ignore[attr-defined]
    run_b = log_run(team.a, {"again.bin": files[victim.path]})  # same bytes, a new run
    code, out, err = xp_main("push", cwd=team.a)
    assert code == 0, err
    assert "1 sent" in out
    assert store.missing([victim.sha256]) == set()
    assert run_b in server_runs(team.bare)


def test_s3_without_credentials_is_one_line(
    team: Team, s3: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_s3(team, s3)
    log_run(team.a, {"c.bin": b"creds"})
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    msg = one_line_error(*xp_main("push", cwd=team.a)[::2])
    assert "artifact remote 's3'" in msg
    assert "no credentials found" in msg


@pytest.fixture
def own_s3(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[tuple[S3Server, subprocess.Popen[str]]]:
    """An S3 server of this test's own, with a bucket: the test stops or kills it."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    with moto_process() as (endpoint, proc):
        server = S3Server(endpoint, "own")
        server.fs().mkdir("own")  # type: ignore[attr-defined]
        try:
            yield server, proc
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGCONT)


def impatient_s3(team: Team, s3: S3Server) -> None:
    """An S3 remote with one-second timeouts and two tries (the defaults take ~45 s)."""
    use_s3(team, s3)
    cfg = team.a / ".xp" / "config.yaml"
    data = yaml.safe_load(cfg.read_text())
    data["remotes"]["s3"]["options"] = {
        "config_kwargs": {
            "connect_timeout": 1,
            "read_timeout": 1,
            "retries": {"max_attempts": 2, "mode": "standard"},
        }
    }
    cfg.write_text(yaml.safe_dump(data))


def test_s3_a_stalled_server_gives_one_line_not_a_hang(
    team: Team, own_s3: tuple[S3Server, subprocess.Popen[str]]
) -> None:
    s3, server = own_s3
    impatient_s3(team, s3)
    log_run(team.a, {"small.bin": b"s" * 1000, "big.bin": os.urandom(20 << 20)})
    os.kill(server.pid, signal.SIGSTOP)  # it accepts connections and never answers
    try:
        msg = one_line_error(*xp_main("push", cwd=team.a)[::2])
    finally:
        os.kill(server.pid, signal.SIGCONT)
    assert "artifact remote 's3'" in msg
    assert "no answer while trying to" in msg
    assert "refs/xp/" not in git(team.bare, "for-each-ref")  # nothing published
    code, out, err = xp_main("push", cwd=team.a)
    assert code == 0, err
    assert "2 sent" in out


def test_s3_a_stall_in_the_middle_of_an_upload_is_given_up(
    team: Team, own_s3: tuple[S3Server, subprocess.Popen[str]]
) -> None:
    """A send the server stopped reading has no read timeout: the stall watch ends it."""
    s3, server = own_s3
    impatient_s3(team, s3)
    log_run(team.a, {"big.bin": os.urandom(64 << 20)})
    _multipart_started(s3)  # boto3 imported and a client made before the push starts
    # at nice 19, so that on a loaded machine the upload is not over before this process looks
    cmd = ["nice", "-n", "19", sys.executable, "-m", "xp", "push"]
    with spawned(
        cmd, cwd=team.a, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as proc:
        wait_for(lambda: _multipart_started(s3), "the multipart upload to start", interval=0.05)
        os.kill(server.pid, signal.SIGSTOP)
        try:
            _out, err = proc.communicate(timeout=120)
        finally:
            os.kill(server.pid, signal.SIGCONT)
    assert proc.returncode == 1, err
    assert one_line_error(1, err)
    assert "refs/xp/" not in git(team.bare, "for-each-ref")


_clients: dict[str, Any] = {}


def _multipart_started(s3: S3Server) -> bool:
    import boto3

    client = _clients.get(s3.endpoint)
    if client is None:
        client = _clients[s3.endpoint] = boto3.client("s3", endpoint_url=s3.endpoint)
    return bool(client.list_multipart_uploads(Bucket=s3.bucket).get("Uploads"))


def _arrived(s3: S3Server) -> bool:
    """An object has arrived (the others are on their way)."""
    import boto3

    client = boto3.client("s3", endpoint_url=s3.endpoint)
    return bool(client.list_objects_v2(Bucket=s3.bucket).get("Contents"))


def test_s3_server_dying_mid_upload_is_one_line_without_tracebacks(
    team: Team, own_s3: tuple[S3Server, subprocess.Popen[str]]
) -> None:
    s3, server = own_s3
    use_s3(team, s3)
    # A small object arrives first while three big ones are still in flight (equal sizes
    # arrive together, and the push could finish before the server died); the push runs at
    # nice 19 so this process, which watches it, is not starved on a loaded machine.
    for i, size in enumerate((1 << 20, 40 << 20, 40 << 20, 40 << 20)):
        log_run(team.a, {f"m{i}.bin": os.urandom(size)})
    cmd = ["nice", "-n", "19", sys.executable, "-m", "xp", "push"]
    with spawned(
        cmd, cwd=team.a, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as proc:
        wait_for(lambda: _arrived(s3), "the first object to arrive", interval=0.05)
        server.kill()
        _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    msg = one_line_error(1, err)
    assert "artifact remote 's3'" in msg
    assert "Traceback" not in err
    assert "refs/xp/" not in git(team.bare, "for-each-ref")


def test_s3_defaults_bound_what_a_stall_costs(team: Team, s3: S3Server) -> None:
    """The defaults themselves (a stall test with them would wait ~45 s)."""
    use_s3(team, s3)
    store = open_store(find_repo(team.a))
    assert store.stall_seconds() == 3 * (5 + 10)
    fs = store.fs
    assert fs.retries == 1  # s3fs's own loop would multiply botocore's tries by five
    assert fs.config_kwargs["read_timeout"] == 10
    assert fs.config_kwargs["retries"] == {"max_attempts": 3, "mode": "standard"}
    # Requests a dead server aborted leave tasks nobody awaits; asyncio would print each
    # one's traceback when it is collected (whether that happens is a race: ask directly).
    import io
    import logging

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logging.getLogger("asyncio").addHandler(handler)
    try:
        fs.loop.call_soon_threadsafe(
            fs.loop.call_exception_handler,
            {"message": "Task exception was never retrieved", "exception": OSError("reset")},
        )
        import concurrent.futures

        done: concurrent.futures.Future[None] = concurrent.futures.Future()
        fs.loop.call_soon_threadsafe(done.set_result, None)
        done.result(timeout=30)
    finally:
        logging.getLogger("asyncio").removeHandler(handler)
    assert stream.getvalue() == ""


def _without(tmp_path: Path, *modules: str) -> dict[str, str]:
    """An environment where ``modules`` are not installed: a folder first on the path holds
    packages that fail to import the way a missing one does."""
    shadow = tmp_path / "shadow"
    for module in modules:
        (shadow / module).mkdir(parents=True)
        (shadow / module / "__init__.py").write_text(
            f"raise ModuleNotFoundError(\"No module named '{module}'\", name={module!r})\n"
        )
    return {**os.environ, "PYTHONPATH": f"{shadow}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


def test_s3_remote_without_the_s3_extra_names_the_pip_command(repo: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    env = _without(tmp_path, "fsspec", "s3fs")
    add = subprocess.run(
        [sys.executable, "-m", "xp", "remote", "add", "s3", "s3://bucket/xp", "--default"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    line = one_line_error(add.returncode, add.stderr)
    assert 'pip install "git-xp[s3]"' in line, line
    # A colleague's committed config names the S3 remote; their first push says the same.
    cfg = repo / ".xp" / "config.yaml"
    cfg.parent.mkdir(exist_ok=True)
    cfg.write_text("remotes:\n  s3:\n    url: s3://bucket/xp\ndefault_remote: s3\n")
    bare = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    git(repo, "remote", "add", "origin", str(bare))
    log_run(repo, {"model.bin": b"weights"})
    push = subprocess.run(
        [sys.executable, "-m", "xp", "push"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    line = one_line_error(push.returncode, push.stderr)
    assert 'pip install "git-xp[s3]"' in line, line
