"""``xp ui``: the web app over one repository, on Starlette and uvicorn.

It serves the front end (``static/``: plain ES modules, no build step) and the JSON of
``documents`` and ``models`` (the registry) under ``api/v1/``, and streams live events; GET and
HEAD only, and it never writes to the repository. Security, for a server on the user's machine
that reads data other people produced (fetched runs):

- it binds 127.0.0.1 unless told otherwise;
- it answers only requests whose ``Host`` is a name it serves under (loopback names, the bind
  address, or ``--allow-host``), and refuses any cross-site ``Origin``: a web page cannot reach
  it through DNS rebinding or a cross-site request;
- every response carries ``nosniff``, ``no-referrer`` and a Content-Security-Policy without
  inline script; artifact bytes are served with an allow-listed type under ``sandbox``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gzip
import hashlib
import ipaddress
import json
import socket
import sys
import threading
import traceback
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from importlib import resources
from typing import Any
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from xp.errors import (
    CorruptObjectError,
    InputError,
    InvalidValueError,
    NotFoundError,
    QueryError,
    RemoteError,
    XPError,
)
from xp.gitstore.repo import GitRepo
from xp.query.live import LiveRuns
from xp.ui import artifacts as art
from xp.ui.documents import Source
from xp.ui.live import Events, Watcher
from xp.ui.models import Models
from xp.ui.series import DEFAULT_POINTS, MAX_POINTS, Window

CSP = (
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline';"
    " script-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none';"
    " form-action 'none'; frame-ancestors 'none'"
)
ARTIFACT_CSP = "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'"
LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")
STATIC_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}


@dataclass(frozen=True)
class StaticFile:
    body: bytes
    gzipped: bytes
    content_type: str
    etag: str


def load_static() -> dict[str, StaticFile]:
    """Every file of the front end, read once (~250 kB), with its gzip and ETag."""
    root = resources.files("xp.ui") / "static"
    files: dict[str, StaticFile] = {}

    def walk(folder: Any, prefix: str) -> None:
        for item in folder.iterdir():
            name = prefix + item.name
            if item.is_dir():
                walk(item, name + "/")
                continue
            suffix = "." + item.name.rsplit(".", 1)[-1] if "." in item.name else ""
            if suffix not in STATIC_TYPES:
                continue  # licences and notes are not served
            body = item.read_bytes()
            files[name] = StaticFile(
                body,
                gzip.compress(body, compresslevel=9, mtime=0),
                STATIC_TYPES[suffix],
                '"' + hashlib.sha256(body).hexdigest()[:32] + '"',
            )

    walk(root, "")
    return files


# -- security ---------------------------------------------------------------------------------


def display_name(host: str) -> str:
    """How a URL names this server: the machine's name for a wildcard address."""
    shown = socket.gethostname() if host in ("0.0.0.0", "::", "") else host.strip("[]")
    return f"[{shown}]" if ":" in shown else shown


def allowed_names(host: str, extra: Iterable[str] = ()) -> set[str]:
    """Host names (without port) the server answers to."""
    names = {*LOOPBACK, host.strip("[]").lower(), *(h.lower() for h in extra)}
    if host not in LOOPBACK:
        with contextlib.suppress(OSError):
            names.update({socket.gethostname().lower(), socket.getfqdn().lower()})
    return names


def _host_name(value: str) -> str:
    """``name:port`` / ``[v6]:port`` -> the name, lower case."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class Guard:
    """ASGI middleware: refuse foreign Host and Origin headers and any method but GET/HEAD."""

    def __init__(self, app: ASGIApp, names: set[str], port: Callable[[], int]) -> None:
        self.app = app
        self.names = {n.strip("[]") for n in names}
        self.port = port

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("host", "")
        problem = None
        if _host_name(host) not in self.names:
            problem = f"Host {host!r} is not a name this server answers to"
        elif "origin" in headers and not self._own_origin(headers["origin"]):
            problem = f"cross-site request from {headers['origin']!r} refused"
        elif scope["method"] not in ("GET", "HEAD"):
            body = _json_bytes({"error": "xp ui only reads: GET and HEAD", "code": "method"})
            await _send(send, 405, body, [(b"allow", b"GET, HEAD")])
            return
        if problem is not None:
            body = _json_bytes({"error": problem + " (DNS rebinding guard)", "code": "forbidden"})
            await _send(send, 403, body)
            return
        await self.app(scope, receive, send)

    def _own_origin(self, origin: str) -> bool:
        scheme, _, rest = origin.partition("://")
        if scheme not in ("http", "https") or not rest:
            return False  # "null" (file://, sandboxed frames) and anything odd
        name = _host_name(rest)
        port = rest.rsplit(":", 1)[-1] if not rest.endswith("]") and ":" in rest else ""
        return name in self.names and port == str(self.port())


def _security_headers(csp: str = CSP) -> list[tuple[bytes, bytes]]:
    return [
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
        (b"cross-origin-resource-policy", b"same-origin"),
        (b"x-frame-options", b"DENY"),
        (b"content-security-policy", csp.encode()),
    ]


async def _send(send: Send, status: int, body: bytes, extra: list[Any] | None = None) -> None:
    headers = [
        (b"content-type", b"application/json; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        *_security_headers(),
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


# -- responses --------------------------------------------------------------------------------


def _json_bytes(doc: Any) -> bytes:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def _headers(extra: dict[str, str] | None = None, csp: str = CSP) -> dict[str, str]:
    out = {k.decode(): v.decode() for k, v in _security_headers(csp)}
    out["cache-control"] = "no-cache"
    out.update(extra or {})
    return out


def json_response(request: Request, doc: Any, status: int = 200) -> Response:
    body = _json_bytes(doc)
    headers = _headers()
    if len(body) > 1024 and "gzip" in request.headers.get("accept-encoding", ""):
        body = gzip.compress(body, compresslevel=5, mtime=0)
        headers["content-encoding"] = "gzip"
        headers["vary"] = "Accept-Encoding"
    return Response(body, status, headers, media_type="application/json")


def error_response(request: Request, exc: Exception) -> Response:
    if isinstance(exc, QueryError):
        doc = {
            "error": str(exc),
            "code": "filter",
            "position": exc.position,
            "token": exc.token,
            "suggestions": list(exc.suggestions),
        }
        return json_response(request, doc, 400)
    if isinstance(exc, RemoteError):
        return json_response(request, {"error": str(exc), "code": "not_available"}, 404)
    if isinstance(exc, NotFoundError):
        return json_response(request, {"error": str(exc), "code": "not_found"}, 404)
    if isinstance(exc, (InputError, ValueError)):
        return json_response(request, {"error": str(exc), "code": "bad_request"}, 400)
    if isinstance(exc, CorruptObjectError):
        return json_response(request, {"error": str(exc), "code": "corrupt"}, 500)
    if isinstance(exc, XPError):
        return json_response(request, {"error": str(exc), "code": "bad_request"}, 400)
    traceback.print_exc(file=sys.stderr)
    doc = {"error": f"internal error: {type(exc).__name__}: {exc}", "code": "internal"}
    return json_response(request, doc, 500)


def _list(request: Request, name: str) -> list[str]:
    """Comma-separated, or repeated: ``runs=a,b`` or ``runs=a&runs=b``."""
    out: list[str] = []
    for value in request.query_params.getlist(name):
        out.extend(v for v in value.split(",") if v)
    return out


def _int(request: Request, name: str, default: int | None) -> int | None:
    value = request.query_params.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise InputError(f"{name} must be an integer, got {value!r}") from None


def _float(request: Request, name: str) -> float | None:
    value = request.query_params.get(name)
    if value is None or value == "":
        return None
    try:
        return float(value)
    except ValueError:
        raise InputError(f"{name} must be a number, got {value!r}") from None


# -- the app ----------------------------------------------------------------------------------


class App:
    """The routes, over one ``Source``."""

    def __init__(self, source: Source, events: Events | None, stopping: threading.Event) -> None:
        self.source = source
        self.models = Models(source.repo)
        self.events = events
        self.stopping = stopping
        self.table_answered = threading.Event()  # then the chart's imports may start
        self.static = load_static()

    def routes(self) -> list[Route]:
        def get(path: str, endpoint: Callable[..., Any]) -> Route:
            return Route(path, endpoint, methods=["GET", "HEAD"])

        return [
            get("/", self.index),
            get("/static/{path:path}", self.static_file),
            get("/api/v1/meta", self.api(lambda r: self.source.meta())),
            get("/api/v1/runs", self.api(self.runs)),
            get(
                "/api/v1/runs/{run_id}",
                self.api(lambda r: self.source.run(r.path_params["run_id"])),
            ),
            get("/api/v1/runs/{run_id}/artifacts/{path:path}", self.guarded(self.artifact)),
            get("/api/v1/runs/{run_id}/log", self.guarded(self.log)),
            get("/api/v1/metrics", self.api(lambda r: self.source.metrics(_list(r, "runs")))),
            get("/api/v1/series", self.api(self.series)),
            get("/api/v1/points", self.api(self.points)),
            get("/api/v1/diff", self.api(self.diff)),
            get("/api/v1/history", self.api(self.history)),
            get("/api/v1/models", self.api(lambda r: self.models.listing())),
            get(
                "/api/v1/models/{name:path}",
                self.api(lambda r: self.models.model(r.path_params["name"])),
            ),
            get("/api/v1/events", self.stream),
            get("/api/{rest:path}", self.api(self.no_endpoint)),
        ]

    def api(self, make: Callable[[Request], Any]) -> Callable[[Request], Response]:
        """A JSON endpoint: a sync function (Starlette runs it in its thread pool)."""

        def endpoint(request: Request) -> Response:
            try:
                return json_response(request, make(request))
            except Exception as exc:
                return error_response(request, exc)

        return endpoint

    def guarded(self, make: Callable[[Request], Response]) -> Callable[[Request], Response]:
        def endpoint(request: Request) -> Response:
            try:
                return make(request)
            except Exception as exc:
                return error_response(request, exc)

        return endpoint

    def no_endpoint(self, request: Request) -> Any:
        raise NotFoundError(f"no endpoint {request.url.path}; see docs/ui.md for the API")

    # -- static -----------------------------------------------------------------------------
    def index(self, request: Request) -> Response:
        return self._file(request, "index.html")

    def static_file(self, request: Request) -> Response:
        return self._file(request, request.path_params["path"])

    def _file(self, request: Request, name: str) -> Response:
        found = self.static.get(name)
        if found is None:
            return json_response(request, {"error": f"no file {name!r}", "code": "not_found"}, 404)
        headers = _headers({"etag": found.etag, "vary": "Accept-Encoding"})
        if request.headers.get("if-none-match") == found.etag:
            return Response(b"", 304, headers)
        body = found.body
        if "gzip" in request.headers.get("accept-encoding", ""):
            body = found.gzipped
            headers["content-encoding"] = "gzip"
        return Response(body, 200, headers, media_type=found.content_type)

    # -- documents --------------------------------------------------------------------------
    def run(self, request: Request) -> Any:
        return self.source.run(request.path_params["run_id"])

    def runs(self, request: Request) -> Any:
        ids = _list(request, "ids")
        if ids:
            return self.source.runs_by_id(ids)
        page = self.source.runs(
            q=request.query_params.get("q", ""),
            sort=_list(request, "sort"),
            group=request.query_params.get("group", ""),
            offset=_int(request, "offset", 0) or 0,
            limit=_int(request, "limit", 100) or 0,
            with_meta=request.query_params.get("meta") == "1",
            varying=request.query_params.get("varying") == "1",
        )
        self.table_answered.set()
        return page

    def series(self, request: Request) -> Any:
        points = _int(request, "points", DEFAULT_POINTS)
        assert points is not None
        if not 0 <= points <= MAX_POINTS:
            raise InputError(f"points must be 0 (all) to {MAX_POINTS:,}, got {points}")
        window = Window(
            x=request.query_params.get("x", "step"),
            xmin=_float(request, "xmin"),
            xmax=_float(request, "xmax"),
            after_step=_int(request, "after_step", None),
            points=points,
            smooth=_float(request, "smooth") or 0.0,
        )
        return self.source.series_of(_list(request, "runs"), _list(request, "metrics"), window)

    def points(self, request: Request) -> Any:
        return self.source.points(
            q=request.query_params.get("q", ""),
            sort=_list(request, "sort"),
            ids=_list(request, "ids"),
            cols=_list(request, "cols"),
            limit=_int(request, "limit", 5000) or 5000,
            include=_list(request, "include"),
        )

    def diff(self, request: Request) -> Any:
        a, b = request.query_params.get("a", ""), request.query_params.get("b", "")
        if not a or not b:
            raise InputError("diff needs a=RUN and b=RUN")
        return self.source.diff(a, b)

    def history(self, request: Request) -> Any:
        return self.source.history(
            branch=request.query_params.get("branch") or None,
            metric=request.query_params.get("metric", ""),
            pick=request.query_params.get("pick", "best"),
            q=request.query_params.get("q", ""),
            limit=_int(request, "limit", 200) or 200,
        )

    # -- bytes ------------------------------------------------------------------------------
    def artifact(self, request: Request) -> Response:
        run_id, path = request.path_params["run_id"], request.path_params["path"]
        entry, opened = self.source.artifact(run_id, path)
        return self._bytes(request, opened, path, entry.sha256)

    def log(self, request: Request) -> Response:
        opened = self.source.log_path(request.path_params["run_id"])
        if opened is None:
            raise NotFoundError("this run has no log (`xp run` saves one)")
        return self._bytes(request, opened, art.RUN_LOG, opened.sha256)

    def _bytes(self, request: Request, opened: art.Opened, path: str, sha: str | None) -> Response:
        ctype = art.content_type(path)
        name = path.rsplit("/", 1)[-1]
        download = request.query_params.get("download") == "1"
        inline = not download and ctype != "application/octet-stream"
        disposition = (
            f"{'inline' if inline else 'attachment'}; filename*=UTF-8''{quote(name, safe='')}"
        )
        extra = {"content-disposition": disposition}
        if sha is not None:
            extra["etag"] = f'"{sha}"'
            extra["cache-control"] = "private, max-age=31536000, immutable"
        headers = _headers(extra, csp=ARTIFACT_CSP)
        if sha is not None and request.headers.get("if-none-match") == f'"{sha}"':
            opened.close()
            return Response(b"", 304, headers)
        start, length = 0, opened.size
        head = _int(request, "head", None)
        tail = _int(request, "tail", None)
        text = ctype.startswith("text/")
        if head is not None and text and head < opened.size:
            length = max(0, head)
            headers["x-truncated"] = "1"
        elif tail is not None and text and tail < opened.size:
            start, length = opened.size - max(0, tail), max(0, tail)
            headers["x-truncated"] = "1"
        headers["content-length"] = str(length)
        if request.method == "HEAD":
            opened.close()
            return Response(b"", 200, headers, media_type=ctype)
        return StreamingResponse(opened.chunks(start, length), 200, headers, media_type=ctype)

    # -- live -------------------------------------------------------------------------------
    async def stream(self, request: Request) -> Response:
        events = self.events
        if events is None:
            return json_response(request, {"error": "live updates are off", "code": "off"}, 404)
        # where the client left off: EventSource's own reconnection sends Last-Event-ID; a
        # page that closed its stream while hidden reopens it with ?since=
        last = request.headers.get("last-event-id") or request.query_params.get("since", "")
        cursor = int(last) if last.isdigit() else events.cursor

        async def frames() -> AsyncIterator[bytes]:
            nonlocal cursor
            hello = json.dumps({"cursor": events.cursor})
            yield f"retry: 2000\nevent: hello\ndata: {hello}\n\n".encode()
            idle = 0.0
            while not self.stopping.is_set():
                found = events.after(cursor)
                if found is None:  # we lost the client's place: it reloads its data
                    cursor = events.cursor
                    yield b"event: reset\ndata: {}\n\n"
                    continue
                for event in found:
                    data = _json_bytes(event.data).decode()
                    yield f"id: {event.id}\nevent: {event.kind}\ndata: {data}\n\n".encode()
                    cursor = event.id
                if found:
                    idle = 0.0
                    continue
                await asyncio.sleep(0.1)
                idle += 0.1
                if idle >= 15:
                    idle = 0.0
                    yield b": ping\n\n"

        headers = _headers({"x-accel-buffering": "no"})
        return StreamingResponse(frames(), 200, headers, media_type="text/event-stream")


def create_app(
    repo: GitRepo,
    *,
    names: set[str],
    port: Callable[[], int],
    live: bool = True,
) -> tuple[Starlette, Watcher | None, threading.Event]:
    """The ASGI app over ``repo``, the watcher of its live runs (started by the caller), and
    the event that, once set, ends the event streams (so a shutdown does not wait on them)."""
    source = Source(repo, LiveRuns(repo) if live else None)
    events = Events() if live else None
    watcher = Watcher(source, events) if events is not None else None
    stopping = threading.Event()
    app = App(source, events, stopping)
    starlette = Starlette(routes=app.routes())
    starlette.state.table_answered = app.table_answered
    starlette.add_middleware(Guard, names=names, port=port)
    return starlette, watcher, stopping


# -- running ----------------------------------------------------------------------------------


def bind(host: str, port: int, *, exact: bool) -> socket.socket:
    """A listening socket on ``host``: ``port``, or (unless ``exact``) the next free one."""
    family = socket.AF_INET6 if _is_v6(host) else socket.AF_INET
    last: OSError | None = None
    for candidate in [port] if exact or port == 0 else [*range(port, port + 20), 0]:
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host.strip("[]"), candidate))
        except OSError as exc:
            sock.close()
            last = exc
            continue
        sock.listen(128)
        sock.set_inheritable(True)
        return sock
    assert last is not None
    if last.errno == errno.EADDRINUSE:
        raise InvalidValueError(
            f"port {port} on {host} is taken; choose another with --port, or --port 0 for any"
            " free one"
        )
    raise InvalidValueError(
        f"cannot listen on {host}:{port} ({last.strerror or last}); check --host and --port"
    )


def _is_v6(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).version == 6
    except ValueError:
        return False


def serve(
    repo: GitRepo,
    sock: socket.socket,
    *,
    names: set[str],
    live: bool = True,
    on_ready: Callable[[], None] = lambda: None,
) -> None:
    """Serve until interrupted (Ctrl-C); ``on_ready`` runs once requests are answered."""
    import uvicorn

    port = sock.getsockname()[1]
    app, watcher, stopping = create_app(repo, names=names, port=lambda: port, live=live)
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=2,
        server_header=False,
    )
    server = uvicorn.Server(config)

    class _Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            on_ready()

        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            stopping.set()  # end the event streams first: they would hold the shutdown
            await super().shutdown(sockets)

    server = _Server(config)
    if watcher is not None:
        watcher.start()
    threading.Thread(
        target=_warm_up, args=(app.state.table_answered,), name="xp-ui-warm", daemon=True
    ).start()
    try:
        server.run(sockets=[sock])
    finally:
        stopping.set()
        if watcher is not None:
            watcher.stop()


def _warm_up(table_answered: threading.Event) -> None:
    """Import what the first chart needs once the first page of the table is out (or after a
    few seconds without one): earlier, the imports would hold the GIL while it is computed."""
    table_answered.wait(timeout=5)
    with contextlib.suppress(ImportError):
        import numpy  # noqa: F401
        import pandas  # noqa: F401
