"""Artifact remotes: the config commands, and S3 against a real S3 server (moto, 127.0.0.1)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import xp
from tests.helpers import (
    S3Server,
    Team,
    free_port,
    git,
    log_run,
    moto_server,
    one_line_error,
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


def test_s3_noop_push_trusts_what_earlier_pushes_saw(team: Team, s3: S3Server) -> None:
    use_s3(team, s3)
    log_run(team.a, {"k.bin": b"known"})
    assert "1 sent" in xp_main("push", cwd=team.a)[1]
    fs = s3.fs()
    fs.rm(f"{s3.bucket}/xp", recursive=True)  # type: ignore[attr-defined]
    # Objects are immutable and xp never deletes them remotely: no request is needed.
    assert "0 sent (0 B), 1 already on 's3'" in xp_main("push", cwd=team.a)[1]
    for known in (team.a / ".git" / "xp" / "remotes").glob("*.known"):
        known.unlink()  # forget: the store is asked again
    assert "1 sent" in xp_main("push", cwd=team.a)[1]


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
