"""The botocore-free S3 path (artifacts/s3_direct.py) against real S3 servers on 127.0.0.1:
moto (one that checks signatures, too) and a small server that only ever fails."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.server
import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml

from tests.helpers import (
    S3Server,
    Team,
    git,
    hook_push_loading,
    log_run,
    moto_server,
    server_runs,
    xp_main,
)
from xp.artifacts import cache, s3_direct
from xp.artifacts.artifact_store import SMALL, open_store
from xp.artifacts.remotes import RemoteSpec
from xp.errors import RemoteError
from xp.gitstore.repo import find_repo


def _use_s3(root: Path, s3: S3Server, prefix: str = "xp", **extra: Any) -> None:
    args = ["remote", "add", "s3", f"s3://{s3.bucket}/{prefix}", "--default"]
    code, _out, err = xp_main(*args, "--endpoint-url", s3.endpoint, cwd=root)
    assert code == 0, err
    if extra:
        cfg = root / ".xp" / "config.yaml"
        data = yaml.safe_load(cfg.read_text())
        data["remotes"]["s3"].update(extra)
        cfg.write_text(yaml.safe_dump(data))


def _object(root: Path, data: bytes) -> tuple[Path, str]:
    cache_dir = root / ".git" / "xp" / "cache"
    sha = cache.add_bytes(cache_dir, data)
    return cache.object_path(cache_dir, sha), sha


def test_an_upload_without_s3fs_reads_back_through_s3fs_byte_identical(
    repo: Path, s3: S3Server
) -> None:
    _use_s3(repo, s3, prefix="runs of 2026/x+y")  # a key that needs escaping when signed
    store = open_store(find_repo(repo))
    assert store.direct() is not None
    data = os.urandom(100_000)
    src, sha = _object(repo, data)
    assert store.missing([sha]) == {sha}
    sent: list[int] = []
    assert store.upload(src, sha, sent.append) == len(data)
    assert sent == [len(data)]
    assert store.missing([sha]) == set()  # HEAD finds it
    other = _object(repo, b"never sent")[1]
    assert store.missing([sha, other]) == {other}  # two HEADs, in parallel
    assert store._fs is None  # s3fs was never opened
    path = f"{s3.bucket}/runs of 2026/x+y/sha256/{sha[:2]}/{sha[2:4]}/{sha}"
    assert store.object_path(sha) == path
    assert s3.fs().cat_file(path) == data  # type: ignore[attr-defined]


def test_a_present_object_is_not_sent_again(team: Team, s3: S3Server) -> None:
    _use_s3(team.a, s3)
    payload = os.urandom(5000)
    log_run(team.a, {"m.bin": payload})
    code, out, err = xp_main("push", cwd=team.a)
    assert code == 0, err
    assert "artifacts: 1 sent" in out
    open_store(find_repo(team.a)).forget()  # only the store itself can say it is there
    log_run(team.a, {"again.bin": payload})
    code, out, err = xp_main("push", cwd=team.a)
    assert code == 0, err
    assert "artifacts: 0 sent (0 B), 1 already on 's3'" in out


class _Recording(http.server.BaseHTTPRequestHandler):
    """Answers 200 and keeps each request's headers and body (moto checks neither
    Content-MD5 nor x-amz-content-sha256; AWS and MinIO refuse a body that fails them)."""

    seen: ClassVar[list[tuple[str, dict[str, str], bytes]]] = []

    def do_PUT(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).seen.append(
            (self.command, {k.lower(): v for k, v in self.headers.items()}, body)
        )
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@contextlib.contextmanager
def _serving(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_an_upload_carries_what_lets_the_server_refuse_changed_bytes(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "k")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s")
    with _serving(_Recording) as endpoint:
        _use_s3(repo, S3Server(endpoint, "rec"))
        store = open_store(find_repo(repo))
        src, sha = _object(repo, os.urandom(4096))
        store.upload(src, sha)
    [(method, headers, body)] = _Recording.seen
    assert method == "PUT"
    assert hashlib.sha256(body).hexdigest() == sha
    assert headers["x-amz-content-sha256"] == sha  # signed: S3 checks the body against it
    assert headers["content-md5"] == base64.b64encode(hashlib.md5(body).digest()).decode()
    signed = headers["authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")
    assert {"content-md5", "x-amz-content-sha256", "host", "x-amz-date"} <= set(signed)


def test_s3_settings_follow_botocore_s_order(tmp_path: Path) -> None:
    creds = tmp_path / "credentials"
    config = tmp_path / "config"
    creds.write_text("[default]\naws_access_key_id = DK\naws_secret_access_key = DS\n")
    creds.write_text(
        creds.read_text()
        + "[team]\naws_access_key_id = TK\naws_secret_access_key = TS\naws_session_token = TT\n"
    )
    config.write_text(
        "[profile team]\nregion = eu-west-3\ns3 =\n  endpoint_url = http://10.0.0.9:9000\n"
        "[profile sso]\nsso_session = corp\nregion = eu-west-1\n"
        "[profile role]\nrole_arn = arn:aws:iam::1:role/x\nsource_profile = team\n"
        "[profile proc]\ncredential_process = /bin/creds\n"
    )
    files = {"AWS_SHARED_CREDENTIALS_FILE": str(creds), "AWS_CONFIG_FILE": str(config)}
    env_keys = {"AWS_ACCESS_KEY_ID": "EK", "AWS_SECRET_ACCESS_KEY": "ES"}

    def settings(
        env: dict[str, str], url: str = "s3://bkt/p", **kw: Any
    ) -> s3_direct.S3Settings | None:
        return s3_direct.settings_for(RemoteSpec("s", url, **kw), {**files, **env})

    # the variables before the default profile; keys in options before both
    got = settings(env_keys)
    assert got is not None
    assert got.credentials == s3_direct.Credentials("EK", "ES")
    assert (got.scheme, got.host, got.path_style) == ("https", "s3.us-east-1.amazonaws.com", False)
    got = settings(env_keys, options={"key": "OK", "secret": "OS", "token": "OT"})
    assert got is not None
    assert got.credentials == s3_direct.Credentials("OK", "OS", "OT")
    got = settings({})
    assert got is not None
    assert got.credentials.key == "DK"
    # AWS_PROFILE: its keys, token, region and nested s3 endpoint (path-style off AWS)
    got = settings({"AWS_PROFILE": "team"})
    assert got is not None
    assert got.credentials == s3_direct.Credentials("TK", "TS", "TT")
    assert (got.region, got.scheme, got.host, got.path_style) == (
        "eu-west-3",
        "http",
        "10.0.0.9:9000",
        True,
    )
    # a profile named by the remote: the variables' keys are not used (as botocore)
    got = settings(env_keys, profile="team")
    assert got is not None
    assert got.credentials.key == "TK"
    # endpoints: the remote's, then AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, the profile's
    ep = {"AWS_ENDPOINT_URL": "http://global:1", "AWS_ENDPOINT_URL_S3": "https://s3only:2"}
    got = settings({**env_keys, **ep, "AWS_PROFILE": "team"})
    assert got is not None
    assert (got.scheme, got.host) == ("https", "s3only:2")
    got = settings({**env_keys, "AWS_ENDPOINT_URL": "http://global:1"})
    assert got is not None
    assert got.host == "global:1"
    got = settings({**env_keys, **ep}, endpoint_url="http://mine:3", region="ap-south-1")
    assert got is not None
    assert (got.host, got.region) == ("mine:3", "ap-south-1")
    # addressing: as configured; virtual needs a name DNS takes
    style = {"config_kwargs": {"s3": {"addressing_style": "virtual"}}}
    got = settings({**env_keys, **ep}, options=style)
    assert got is not None
    assert not got.path_style
    assert settings(env_keys, url="s3://Odd_Bucket/p", options=style) is None
    got = settings(env_keys, url="s3://Odd_Bucket/p")
    assert got is not None
    assert got.path_style
    # s3fs's business: SSO, roles, credential_process, no keys at all, unknown options,
    # a proxy, another signature, or XP_S3_DIRECT=0
    for name in ("sso", "role", "proc"):
        assert settings({"AWS_PROFILE": name}) is None
    assert settings({"AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none")}) is None
    assert settings({**env_keys, "XP_S3_DIRECT": "0"}) is None
    assert settings(env_keys, options={"s3_additional_kwargs": {"ACL": "private"}}) is None
    assert settings({**env_keys, "HTTPS_PROXY": "http://proxy:3128"}) is None
    assert settings({**env_keys, "HTTPS_PROXY": "http://p:1", "NO_PROXY": "amazonaws.com"})
    assert settings({"AWS_WEB_IDENTITY_TOKEN_FILE": "/t", "AWS_ROLE_ARN": "arn:x"}) is None
    assert settings(env_keys, options={"config_kwargs": {"signature_version": "s3"}}) is None


# -- a server that checks signatures -------------------------------------------------------


@pytest.fixture(scope="module")
def iam_s3() -> Iterator[tuple[str, dict[str, str]]]:
    """moto with IAM checks on: a user allowed everything on S3, its keys, and a bucket
    (made by the few requests moto lets through before it starts checking)."""
    import boto3

    with moto_server({**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "6"}) as endpoint:
        kw: dict[str, Any] = {
            "endpoint_url": endpoint,
            "region_name": "us-east-1",
            "aws_access_key_id": "x",
            "aws_secret_access_key": "x",
        }
        iam = boto3.client("iam", **kw)
        iam.create_user(UserName="writer")
        policy = (
            '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}'
        )
        iam.put_user_policy(UserName="writer", PolicyName="all", PolicyDocument=policy)
        key = iam.create_access_key(UserName="writer")["AccessKey"]
        trust = (
            '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole",'
            '"Principal":{"AWS":"*"}}]}'
        )
        iam.create_role(RoleName="writer-role", AssumeRolePolicyDocument=trust)
        iam.put_role_policy(RoleName="writer-role", PolicyName="all", PolicyDocument=policy)
        boto3.client("s3", **kw).create_bucket(Bucket="signed")
        yield (
            endpoint,
            {
                "AWS_ACCESS_KEY_ID": key["AccessKeyId"],
                "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
            },
        )


def _signed_team(team: Team, endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(team.a.parent / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(team.a.parent / "aws-credentials"))
    s3 = S3Server(endpoint, "signed")
    _use_s3(team.a, s3, prefix=team.a.parent.name)


def _git_push(root: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "COVERAGE_"))}
    return subprocess.run(
        ["git", "push", "origin", "main"],
        cwd=root,
        env={**keep, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_wrong_secret_stops_the_push_in_one_line_and_loses_nothing(
    team: Team, iam_s3: tuple[str, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint, keys = iam_s3
    _signed_team(team, endpoint, monkeypatch)
    git(team.a, "commit", "-qam", "store", "--allow-empty")
    run_id = log_run(team.a, {"w.bin": os.urandom(1000)})
    env = {
        "AWS_CONFIG_FILE": os.environ["AWS_CONFIG_FILE"],
        "AWS_SHARED_CREDENTIALS_FILE": os.environ["AWS_SHARED_CREDENTIALS_FILE"],
    }
    wrong = {**env, **keys, "AWS_SECRET_ACCESS_KEY": keys["AWS_SECRET_ACCESS_KEY"] + "x"}
    proc = _git_push(team.a, wrong)
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.startswith("xp:")]
    assert len(lines) == 1, proc.stderr
    assert "push stopped" in lines[0]
    assert "permission denied" in lines[0]
    assert "PermissionError: 403: Forbidden" in lines[0], lines[0]  # as s3fs says it
    assert "AWS_ACCESS_KEY_ID" in lines[0]
    assert "Traceback" not in proc.stderr
    assert run_id not in server_runs(team.bare)  # no run without its files
    proc = _git_push(team.a, {**env, **keys})  # the right secret: everything goes
    assert proc.returncode == 0, proc.stderr
    assert "xp: uploaded 1 artifact objects" in proc.stderr
    assert run_id in server_runs(team.bare)


def test_a_session_token_and_a_profile_file_sign_requests(
    team: Team, iam_s3: tuple[str, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3

    endpoint, keys = iam_s3
    _signed_team(team, endpoint, monkeypatch)
    sts = boto3.client(
        "sts",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=keys["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=keys["AWS_SECRET_ACCESS_KEY"],
    )
    role = "arn:aws:iam::123456789012:role/writer-role"
    temp = sts.assume_role(RoleArn=role, RoleSessionName="ci")["Credentials"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", temp["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", temp["SecretAccessKey"])
    monkeypatch.setenv("AWS_SESSION_TOKEN", temp["SessionToken"])
    store = open_store(find_repo(team.a))
    direct = store.direct()
    assert direct is not None
    assert direct.settings.credentials.token == temp["SessionToken"]
    src, sha = _object(team.a, b"with a session token")
    store.upload(src, sha)
    assert store.missing([sha]) == set()
    # the same keys from a profile file, the endpoint from the profile's config
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(var)
    Path(os.environ["AWS_SHARED_CREDENTIALS_FILE"]).write_text(
        f"[ci]\naws_access_key_id = {keys['AWS_ACCESS_KEY_ID']}\n"
        f"aws_secret_access_key = {keys['AWS_SECRET_ACCESS_KEY']}\n"
    )
    Path(os.environ["AWS_CONFIG_FILE"]).write_text(
        f"[profile ci]\nregion = us-east-1\nendpoint_url = {endpoint}\n"
    )
    monkeypatch.setenv("AWS_PROFILE", "ci")
    cfg = team.a / ".xp" / "config.yaml"
    data = yaml.safe_load(cfg.read_text())
    del data["remotes"]["s3"]["endpoint_url"]
    cfg.write_text(yaml.safe_dump(data))
    store = open_store(find_repo(team.a))
    direct = store.direct()
    assert direct is not None
    assert direct.settings.host == endpoint.split("://")[1]
    src, sha = _object(team.a, b"with a profile")
    store.upload(src, sha)
    assert store.missing([sha]) == set()
    assert store._fs is None


def test_what_the_direct_path_cannot_do_goes_through_s3fs(
    repo: Path, s3: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    _use_s3(repo, s3)
    assert s3_direct.MAX_PUT == SMALL
    big = os.urandom(s3_direct.MAX_PUT + 1)  # above one PUT: s3fs's multipart upload
    src, sha = _object(repo, big)
    store = open_store(find_repo(repo))
    assert store.direct() is not None
    store.upload(src, sha)
    assert store._fs is not None
    assert s3.fs().cat_file(store.object_path(sha)) == big  # type: ignore[attr-defined]
    monkeypatch.setenv("XP_S3_DIRECT", "0")  # forced, as docs/artifacts.md says
    store = open_store(find_repo(repo))
    assert store.direct() is None
    src, sha = _object(repo, b"through s3fs")
    store.upload(src, sha)
    assert store._fs is not None
    assert store.missing([sha]) == set()
    monkeypatch.delenv("XP_S3_DIRECT")
    cfg = Path(os.environ["AWS_CONFIG_FILE"])
    cfg.write_text("[profile sso]\nsso_session = corp\nregion = us-east-1\n")
    monkeypatch.setenv("AWS_PROFILE", "sso")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    assert open_store(find_repo(repo)).direct() is None  # SSO: botocore's business


class _Failing(http.server.BaseHTTPRequestHandler):
    hits = 0

    def _fail(self) -> None:
        type(self).hits += 1
        self.send_response(503)
        body = b"<Error><Code>SlowDown</Code><Message>busy</Message></Error>"
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_HEAD = do_PUT = _fail

    def log_message(self, *args: Any) -> None:
        pass


def test_a_busy_server_is_retried_a_bounded_number_of_times(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "k")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s")
    monkeypatch.setattr(s3_direct, "BACKOFF_CAP", 0.05)
    with _serving(_Failing) as endpoint:
        _use_s3(repo, S3Server(endpoint, "busy"))
        store = open_store(find_repo(repo))
        with pytest.raises(RemoteError) as err:
            store.missing(["a" * 64])
    assert _Failing.hits == 3  # botocore's standard mode: 3 tries
    assert "artifact remote 's3'" in str(err.value)
    assert "503" in str(err.value)
    assert "\n" not in str(err.value)


def test_the_pre_push_hook_to_s3_imports_neither_botocore_nor_s3fs(
    team: Team, s3: S3Server
) -> None:
    """Every `git push` runs the hook (issue 14: <= 0.15 CPU-s); s3fs's import alone is
    twice that."""
    _use_s3(team.a, s3)
    log_run(team.a, {"model.bin": os.urandom(100_000)})
    heavy = ("botocore", "s3fs", "fsspec", "aiohttp", "boto3", "click", "yaml")
    last, out, err = hook_push_loading(team, (*heavy, "concurrent.futures"))
    assert last == "0 loaded: []", out + err
    assert "xp: uploaded 1 artifact objects (100.0 kB) to s3" in err
    assert len(server_runs(team.bare)) == 1


class _ChunkedDenied(http.server.BaseHTTPRequestHandler):
    """HTTP/1.1, keep-alive, its error document sent in chunks (as some S3 servers do)."""

    protocol_version = "HTTP/1.1"

    def do_PUT(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        body = b"<Error><Code>AccessDenied</Code><Message>not yours</Message></Error>"
        self.send_response(403)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for part in (body[:10], body[10:]):
            self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
        self.wfile.write(b"0\r\n\r\n")

    def log_message(self, *args: Any) -> None:
        pass


def test_a_chunked_refusal_is_read_and_named(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "k")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s")
    with _serving(_ChunkedDenied) as endpoint:
        _use_s3(repo, S3Server(endpoint, "denied"))
        store = open_store(find_repo(repo))
        src, sha = _object(repo, b"refused")
        for _ in range(2):  # the second on the same kept-alive connection
            with pytest.raises(RemoteError) as err:
                store.upload(src, sha)
            assert "permission denied" in str(err.value)
            assert "AccessDenied: not yours" in str(err.value)
