"""S3 without botocore for the common case: a SigV4-signed HEAD (is the object there?) and
PUT (one request, up to ``MAX_PUT``) over a bare socket (``_Connection``).

Every ``git push`` runs the pre-push hook, and importing s3fs alone costs ~0.35 CPU-s
(botocore's client without s3fs 0.28), more than the whole push may (issue 14: 0.15). This
module is used only when everything s3fs would be told can be read here cheaply and means
the same: static keys (the remote's ``options`` key/secret/token, ``AWS_ACCESS_KEY_ID`` /
``AWS_SECRET_ACCESS_KEY`` / ``AWS_SESSION_TOKEN``, or a profile's keys in
``~/.aws/credentials`` / ``~/.aws/config``), the region and endpoint from the remote, the
``AWS_ENDPOINT_URL(_S3)`` variables or the profile. Anything else (SSO, instance or
container roles, ``credential_process``, assume-role profiles, web identity, a proxy,
fsspec options this module does not know, ``XP_S3_DIRECT=0``) returns None from ``resolve``
and the caller uses s3fs, unchanged.

Failures are raised as the exceptions s3fs raises for them (PermissionError,
FileNotFoundError, TimeoutError, OSError), so ``ArtifactStore.errors`` words them the same.
A 5xx, a throttle or a dropped connection is retried like botocore's "standard" mode
(``ATTEMPTS`` tries, jittered exponential backoff). The body is sent with its Content-MD5
and its SHA-256 signed (``x-amz-content-sha256``): the server refuses bytes that changed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import random
import re
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

if TYPE_CHECKING:
    import socket

    from xp.artifacts.remotes import RemoteSpec

# One PUT holds the whole body in memory and reports progress at its end; larger objects go
# through s3fs's multipart upload (parts, per-part progress, a stall watch). 8 MiB is
# botocore's own multipart threshold and xp's single-request size (artifact_store.SMALL).
MAX_PUT = 8 << 20
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
RETRY_STATUS = {500, 502, 503, 504}
RETRY_CODES = {"RequestTimeout", "SlowDown", "Throttling", "ThrottlingException", "BadDigest"}
BACKOFF_CAP = 20.0  # seconds, botocore's cap
# Profile settings that mean "credentials come from elsewhere": s3fs (botocore) handles them.
_DELEGATED = (
    "role_arn",
    "source_profile",
    "credential_source",
    "credential_process",
    "sso_session",
    "sso_start_url",
    "sso_account_id",
    "web_identity_token_file",
    "login_session",
    "services",
)
# fsspec options this module honours; any other makes it step aside for s3fs.
_OPTIONS = {"key", "secret", "token", "profile", "endpoint_url", "client_kwargs"}
_OPTIONS |= {"config_kwargs", "skip_instance_cache", "anon", "use_listings_cache"}
_CLIENT = {"endpoint_url", "region_name", "aws_access_key_id", "aws_secret_access_key"}
_CLIENT |= {"aws_session_token"}
_CONFIG = {"connect_timeout", "read_timeout", "retries", "s3", "signature_version"}
_IP = re.compile(r"^(\d{1,3}(\.\d{1,3}){3}|\[[0-9a-fA-F:.]+\])$")
_DNS_BUCKET = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")


@dataclass(frozen=True)
class Credentials:
    key: str
    secret: str
    token: str | None = None


@dataclass(frozen=True)
class S3Settings:
    """What a request needs: where (scheme, host, port, addressing), who, and patience."""

    bucket: str
    prefix: str
    region: str
    scheme: str
    host: str  # host[:port] of the endpoint, without the bucket
    path_style: bool
    credentials: Credentials
    connect_timeout: float
    read_timeout: float
    attempts: int
    ca_bundle: str | None = None

    @property
    def root(self) -> str:
        """The remote's root as s3fs names it (``bucket/prefix``)."""
        return f"{self.bucket}/{self.prefix}".rstrip("/")


class S3Direct:
    """HEAD and PUT of objects under one bucket, signed with SigV4; one connection per
    thread, kept alive."""

    def __init__(self, settings: S3Settings) -> None:
        self.settings = settings
        self._local = threading.local()

    @property
    def root(self) -> str:
        return self.settings.root

    def exists(self, path: str) -> bool:
        """Whether the object at ``path`` (``bucket/key``, as ``object_path`` names it) is
        there."""
        status, _code = self._request("HEAD", self._key(path), b"")
        return status == 200

    def put(self, path: str, data: bytes, sha256: str | None = None) -> None:
        """Store ``data`` at ``path``; ``sha256`` (its hash, when the caller checked it
        already) saves hashing it again."""
        self._request("PUT", self._key(path), data, sha256 or hashlib.sha256(data).hexdigest())

    def _key(self, path: str) -> str:
        bucket, _, key = path.partition("/")
        if bucket != self.settings.bucket or not key:
            raise ValueError(f"{path!r} is not in bucket {self.settings.bucket!r}")
        return key

    # -- requests ------------------------------------------------------------------------
    def _request(
        self, method: str, key: str, body: bytes, payload_sha: str = EMPTY_SHA256
    ) -> tuple[int, str]:
        """Send one request with retries; (status, S3 error code) of a 2xx or a HEAD's 404.
        Anything else raises what s3fs would."""
        s = self.settings
        region = s.region
        redirected = False
        attempt = 0
        while True:
            attempt += 1
            headers = self._signed(method, key, body, payload_sha, region)
            try:
                status, reply, answer = self._send(method, key, body, headers)
            except TimeoutError as exc:
                self._drop()
                if attempt >= s.attempts:
                    raise TimeoutError(f"{type(exc).__name__}: {exc or 'timed out'}") from None
            except OSError as exc:
                self._drop()
                if attempt >= s.attempts:
                    raise ConnectionError(
                        f"Could not connect to the endpoint URL: {s.scheme}://{s.host}"
                        f" ({type(exc).__name__}: {exc})"
                    ) from None
            else:
                code, message = _error(answer)
                if 200 <= status < 300 or (method == "HEAD" and status == 404):
                    return status, code
                moved = reply.get("x-amz-bucket-region")
                if moved and moved != region and not redirected and status in (301, 400, 403):
                    region, redirected, attempt = moved, True, attempt - 1
                    continue  # the bucket lives in another region: ask there, as botocore does
                retry = status in RETRY_STATUS or status == 429 or code in RETRY_CODES
                if not retry or attempt >= s.attempts:
                    raise _exception(status, code, message)
            time.sleep(min(BACKOFF_CAP, random.random() * 2 ** (attempt - 1)))

    def _send(
        self, method: str, key: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        conn = self._connection()
        try:
            status, reply, answer = conn.exchange(method, self._path(key), headers, body)
        except BaseException:
            self._drop()
            raise
        if reply.get("connection", "").lower() == "close":
            self._drop()
        return status, reply, answer

    def _connection(self) -> _Connection:
        conn: _Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            s = self.settings
            conn = self._local.conn = _Connection(
                s.scheme, self._host(), s.connect_timeout, s.read_timeout, s.ca_bundle
            )
        return conn

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            conn.close()

    def _host(self) -> str:
        s = self.settings
        return s.host if s.path_style else f"{s.bucket}.{s.host}"

    def _path(self, key: str) -> str:
        s = self.settings
        path = f"/{s.bucket}/{key}" if s.path_style else f"/{key}"
        return quote(path, safe="/~")

    def _signed(
        self, method: str, key: str, body: bytes, payload_sha: str, region: str
    ) -> dict[str, str]:
        """The request's headers with its SigV4 ``Authorization``."""
        s = self.settings
        now = time.gmtime()
        amz_date = time.strftime("%Y%m%dT%H%M%SZ", now)
        day = amz_date[:8]
        host = self._host()
        if (s.scheme, host.rsplit(":", 1)[-1]) in (("http", "80"), ("https", "443")):
            host = host.rsplit(":", 1)[0]
        headers = {"host": host, "x-amz-content-sha256": payload_sha, "x-amz-date": amz_date}
        if s.credentials.token:
            headers["x-amz-security-token"] = s.credentials.token
        if method == "PUT":
            headers["content-md5"] = base64.b64encode(hashlib.md5(body).digest()).decode()
            headers["content-length"] = str(len(body))
        names = sorted(headers)
        canonical = "\n".join(
            [
                method,
                self._path(key),
                "",
                "".join(f"{n}:{headers[n].strip()}\n" for n in names),
                ";".join(names),
                payload_sha,
            ]
        )
        scope = f"{day}/{region}/s3/aws4_request"
        to_sign = "\n".join(
            ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
        )
        signing = ("AWS4" + s.credentials.secret).encode()
        for part in (day, region, "s3", "aws4_request"):
            signing = hmac.new(signing, part.encode(), hashlib.sha256).digest()
        signature = hmac.new(signing, to_sign.encode(), hashlib.sha256).hexdigest()
        headers["authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={s.credentials.key}/{scope},"
            f" SignedHeaders={';'.join(names)}, Signature={signature}"
        )
        return headers


class _Connection:
    """One keep-alive HTTP/1.1 connection on a bare socket: what S3's HEAD and PUT need
    (Content-Length or chunked answers), without ``http.client``, whose import (``email``,
    ``ssl``) alone costs ~15 ms of every push."""

    def __init__(
        self, scheme: str, host: str, connect: float, read: float, ca_bundle: str | None
    ) -> None:
        import socket

        name, _, port = host.rpartition(":") if not host.endswith("]") else (host, "", "")
        if not name or not port.isdigit():
            name, port = host, "443" if scheme == "https" else "80"
        sock = socket.create_connection((name.strip("[]"), int(port)), timeout=connect)
        sock.settimeout(read)  # connected: now each send and read waits this long
        if scheme == "https":
            import ssl

            context = ssl.create_default_context(cafile=ca_bundle)
            sock = context.wrap_socket(sock, server_hostname=name.strip("[]"))
        self.sock: socket.socket = sock
        self.buf = b""

    def close(self) -> None:
        sock = getattr(self, "sock", None)  # None: the connection never opened
        if sock is not None:
            sock.close()

    __del__ = close  # a kept-alive connection ends with its client (thread or store)

    def exchange(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        """Send one request; (status, headers lower-cased, body) of its answer."""
        head = f"{method} {path} HTTP/1.1\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in headers.items()
        )
        self.sock.sendall(head.encode("latin-1") + b"\r\n" + body)
        while True:
            status, reply = self._head()
            if status >= 200:
                break  # 1xx (100 Continue): informational, the answer follows
        if method == "HEAD" or status in (204, 304):
            return status, reply, b""
        if "chunked" in reply.get("transfer-encoding", "").lower():
            return status, reply, self._chunked()
        length = reply.get("content-length")
        if length is not None and length.strip().isdigit():
            return status, reply, self._exactly(int(length))
        reply["connection"] = "close"  # the body ends with the connection
        return status, reply, self._rest()

    def _more(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionResetError("the server closed the connection mid-answer")
        self.buf += chunk

    def _line(self) -> bytes:
        while (end := self.buf.find(b"\r\n")) < 0:
            if len(self.buf) > 65536:
                raise ConnectionError("the server's answer has a line over 64 KiB")
            self._more()
        line, self.buf = self.buf[:end], self.buf[end + 2 :]
        return line

    def _head(self) -> tuple[int, dict[str, str]]:
        parts = self._line().split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
            raise ConnectionError(f"not an HTTP answer: {b' '.join(parts[:2])!r}")
        reply: dict[str, str] = {}
        while line := self._line():
            name, _, value = line.decode("latin-1").partition(":")
            reply[name.strip().lower()] = value.strip()
        if parts[0] == b"HTTP/1.0" and reply.get("connection", "").lower() != "keep-alive":
            reply["connection"] = "close"
        return int(parts[1]), reply

    def _exactly(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._more()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def _chunked(self) -> bytes:
        out: list[bytes] = []
        while True:
            field = self._line().split(b";", 1)[0].strip() or b"0"
            try:
                size = int(field, 16)
            except ValueError:
                raise ConnectionError(f"not an HTTP chunk size: {field[:20]!r}") from None
            if size == 0:
                while self._line():  # trailers, then the empty line
                    pass
                return b"".join(out)
            out.append(self._exactly(size))
            self._line()

    def _rest(self) -> bytes:
        while chunk := self.sock.recv(65536):
            self.buf += chunk
        data, self.buf = self.buf, b""
        return data


def _error(answer: bytes) -> tuple[str, str]:
    """(Code, Message) of an S3 error document; empty when there is none."""
    text = answer[:4096].decode("utf-8", "replace")
    code = re.search(r"<Code>([^<]*)</Code>", text)
    message = re.search(r"<Message>([^<]*)</Message>", text)
    return (code.group(1) if code else "", message.group(1) if message else "")


_REASONS = {400: "Bad Request", 403: "Forbidden", 404: "Not Found", 503: "Slow Down"}


def _exception(status: int, code: str, message: str) -> OSError:
    """The exception s3fs raises for this answer (its ``translate_boto_error``)."""
    reason = _REASONS.get(status, "no message")  # a HEAD's answer has no body to read
    text = f"{code or status}: {message or reason}"
    if status == 403 or code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
        return PermissionError(text)
    if status == 404 or code in ("NoSuchBucket", "NoSuchKey"):
        return FileNotFoundError(text)
    if code in ("RequestTimeout",):
        return TimeoutError(text)
    return OSError(f"the S3 server answered {status} {text}")


# -- settings: what s3fs would be told, read without botocore ------------------------------


def resolve(spec: RemoteSpec, env: dict[str, str] | None = None) -> S3Direct | None:
    """A direct client for ``spec``, or None when s3fs must do it (see the module's doc)."""
    settings = settings_for(spec, os.environ if env is None else env)
    return S3Direct(settings) if settings is not None else None


def settings_for(spec: RemoteSpec, env: Any) -> S3Settings | None:
    if env.get("XP_S3_DIRECT", "1") == "0":
        return None
    protocol, _, rest = spec.url.partition("://")
    if protocol not in ("s3", "s3a") or "?" in rest or "#" in rest:
        return None
    bucket, _, prefix = rest.strip("/").partition("/")
    if not bucket:
        return None
    options = dict(spec.options)
    if not set(options) <= _OPTIONS or options.get("anon"):
        return None
    client = dict(options.get("client_kwargs") or {})
    config = dict(options.get("config_kwargs") or {})
    if not set(client) <= _CLIENT or not set(config) <= _CONFIG:
        return None
    if config.get("signature_version", "s3v4") != "s3v4":
        return None
    s3_config = dict(config.get("s3") or {})
    if not set(s3_config) <= {"addressing_style"}:
        return None
    profile_name = spec.profile or options.get("profile")
    explicit_profile = profile_name is not None
    profile = _profile(env, profile_name or env.get("AWS_PROFILE") or "default")
    if profile is None:  # a profile setting delegated to another provider
        return None
    credentials = _credentials(options, client, env, profile, explicit_profile)
    if credentials is None:
        return None
    endpoint = (
        spec.endpoint_url
        or client.get("endpoint_url")
        or options.get("endpoint_url")
        or _configured_endpoint(env, profile)
    )
    region = (
        spec.region
        or client.get("region_name")
        or env.get("AWS_DEFAULT_REGION")
        or env.get("AWS_REGION")
        or profile.get("region")
        or "us-east-1"
    )
    style = s3_config.get("addressing_style") or _nested(profile, "s3").get("addressing_style")
    if endpoint:
        scheme, sep, host = str(endpoint).partition("://")
        host = host.rstrip("/")
        if not sep or scheme not in ("http", "https") or not host or "/" in host:
            return None  # an endpoint with a path, or odd: s3fs knows what it means
    else:
        scheme, host = "https", f"s3.{region}.amazonaws.com"
    hostname = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    virtual_ok = bool(_DNS_BUCKET.match(bucket)) and not _IP.match(hostname)
    if style == "virtual":
        path_style = False
        if not virtual_ok:
            return None
    elif style == "path":
        path_style = True
    else:  # "auto": virtual-hosted on AWS itself, path-style on other S3 servers (MinIO, ...)
        path_style = bool(endpoint) or not virtual_ok
    if _proxied(env, scheme, hostname):
        return None
    retries = config.get("retries") or {}
    attempts = retries.get("max_attempts", retries.get("total_max_attempts", 3))
    from xp.artifacts import artifact_store as store

    return S3Settings(
        bucket=bucket,
        prefix=prefix.strip("/"),
        region=region,
        scheme=scheme,
        host=host,
        path_style=path_style,
        credentials=credentials,
        connect_timeout=float(config.get("connect_timeout", store.CONNECT_TIMEOUT)),
        read_timeout=float(config.get("read_timeout", store.READ_TIMEOUT)),
        attempts=max(1, int(attempts)),
        ca_bundle=env.get("AWS_CA_BUNDLE") or None,
    )


def _credentials(
    options: dict[str, Any],
    client: dict[str, Any],
    env: Any,
    profile: dict[str, str],
    explicit_profile: bool,
) -> Credentials | None:
    """botocore's order: keys passed in, then (unless a profile was named) the variables,
    then the profile's keys. None: no static keys (an instance role, SSO, ...)."""
    key = options.get("key") or client.get("aws_access_key_id")
    secret = options.get("secret") or client.get("aws_secret_access_key")
    token = options.get("token") or client.get("aws_session_token")
    if key and secret:
        return Credentials(str(key), str(secret), str(token) if token else None)
    if key or secret:
        return None
    if not explicit_profile and env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
        return Credentials(
            env["AWS_ACCESS_KEY_ID"],
            env["AWS_SECRET_ACCESS_KEY"],
            env.get("AWS_SESSION_TOKEN") or env.get("AWS_SECURITY_TOKEN") or None,
        )
    if env.get("AWS_WEB_IDENTITY_TOKEN_FILE") or env.get("AWS_ROLE_ARN"):
        return None  # botocore asks STS before it reads the profile's keys
    if profile.get("aws_access_key_id") and profile.get("aws_secret_access_key"):
        return Credentials(
            profile["aws_access_key_id"],
            profile["aws_secret_access_key"],
            profile.get("aws_session_token") or profile.get("aws_security_token") or None,
        )
    return None


def _configured_endpoint(env: Any, profile: dict[str, str]) -> str | None:
    """botocore's configured endpoint: the S3 variable, the global one, then the profile's
    ``s3`` section and its own ``endpoint_url``."""
    if env.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").lower() == "true":
        return None
    return (
        env.get("AWS_ENDPOINT_URL_S3")
        or env.get("AWS_ENDPOINT_URL")
        or _nested(profile, "s3").get("endpoint_url")
        or profile.get("endpoint_url")
        or None
    )


def _profile(env: Any, name: str) -> dict[str, str] | None:
    """The profile's settings (credentials file over config file), or None when it hands
    credentials to another provider."""
    merged: dict[str, str] = {}
    home = os.path.expanduser("~")
    files = (
        (env.get("AWS_CONFIG_FILE") or os.path.join(home, ".aws", "config"), True),
        (
            env.get("AWS_SHARED_CREDENTIALS_FILE") or os.path.join(home, ".aws", "credentials"),
            False,
        ),
    )
    for path, is_config in files:
        if not os.path.isfile(os.path.expanduser(path)):
            continue
        import configparser  # only with a file to read

        parser = configparser.RawConfigParser(strict=False, interpolation=None)
        try:
            with open(os.path.expanduser(path), encoding="utf-8") as fh:
                parser.read_file(fh)
        except (OSError, UnicodeDecodeError, configparser.Error):
            continue
        section = name if not is_config or name == "default" else f"profile {name}"
        if is_config and name == "default" and not parser.has_section("default"):
            section = "profile default"
        if parser.has_section(section):
            merged.update({k.lower(): v.strip() for k, v in parser.items(section)})
    if any(merged.get(k) for k in _DELEGATED):
        return None
    return merged


def _nested(profile: dict[str, str], name: str) -> dict[str, str]:
    """A nested section of a profile (``s3 =`` followed by indented ``key = value``)."""
    out = {}
    for line in profile.get(name, "").splitlines():
        key, sep, value = line.partition("=")
        if sep:
            out[key.strip().lower()] = value.strip()
    return out


def _proxied(env: Any, scheme: str, hostname: str) -> bool:
    """Whether botocore would send this through a proxy (then s3fs does it)."""
    if not (env.get(f"{scheme}_proxy") or env.get(f"{scheme.upper()}_PROXY")):
        return False
    bypass = env.get("no_proxy") or env.get("NO_PROXY") or ""
    for entry in (e.strip().lstrip(".") for e in bypass.split(",")):
        if entry == "*" or (entry and (hostname == entry or hostname.endswith("." + entry))):
            return False
    return True
