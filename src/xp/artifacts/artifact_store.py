"""An artifact store: an opened remote (a folder, or S3/GCS/Azure through fsspec) holding
``sha256/ab/cd/<hash>``.

Objects land under their final name only when complete: a folder remote writes
``tmp/<random>`` and renames it, an object store publishes an upload atomically by itself.
Existence is checked in batches (one listing per shard) and remembered (``known``), and every
byte is hashed on the way so a corrupt object is caught on either side.

Object stores get bounded patience: a connect timeout, a read timeout and botocore's own
retries with exponential backoff (s3fs's extra retry loop is turned off: it multiplied a
stalled server's wait by five), then one clean error naming the remote. The background tasks
an aborted request leaves in fsspec's event loop are silenced instead of printing tracebacks.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import time
from collections.abc import Callable, Coroutine, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xp import fsutil
from xp.artifacts import cache
from xp.artifacts.remotes import DEFAULT_JOBS, RemoteSpec, get_remote
from xp.errors import CorruptObjectError, RemoteError, XPError, missing_module

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

    from fsspec import AbstractFileSystem  # type: ignore[import-untyped]

    from xp.artifacts.s3_direct import S3Direct
    from xp.gitstore.repo import GitRepo

SMALL = 8 << 20  # objects up to this size move in one request
PER_OBJECT_CHECK = 32  # up to this many objects, ask for each; beyond, list shards
ATOMIC_PUT = {"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "oss"}
# S3: seconds to connect, seconds to wait for an answer, tries per request (botocore's
# "standard" mode: exponential backoff with jitter). A stalled server costs about
# ATTEMPTS * READ_TIMEOUT before the one-line error; remotes.<name>.options.config_kwargs
# overrides each.
CONNECT_TIMEOUT = 5
READ_TIMEOUT = 10
ATTEMPTS = 3
SAMPLE = 8  # known objects a push re-checks before it trusts the known-objects file
PART = 8 << 20  # multipart uploads move in parts this big: progress a stall watch can see


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


class ArtifactStore:
    """An opened remote: its fsspec filesystem and the root path objects live below."""

    def __init__(self, spec: RemoteSpec, worktree: Path, state_dir: Path | None = None) -> None:
        self.spec = spec
        self.state_dir = state_dir
        url = spec.url
        if "://" not in url or url.startswith(("file://", "local://")):
            local = url.split("://", 1)[1] if "://" in url else url
            path = Path(os.path.expanduser(local))
            self.local_root: Path | None = path if path.is_absolute() else worktree / path
            self.protocol = "file"
        else:
            self.local_root = None
            self.protocol = url.split("://", 1)[0]
        self._fs: AbstractFileSystem | None = None
        self._root = ""
        self._lock = threading.Lock()
        self._direct: S3Direct | None = None
        self._direct_resolved = False
        self._tmp_made = False  # the folder store's tmp/ exists (``_local_tmp``)
        # ``settle``: a folder store's files fsynced one by one as they are written (a few
        # objects: the hook's push), else one syncfs after; the folders to fsync then
        self.fsync_each = False
        self._written_in: set[Path] = set()

    @property
    def upload_jobs(self) -> int:
        """Objects sent at once. A folder store's copy is the kernel's work (create, write,
        rename, a new fan-out folder), and threads only fight over the GIL for it: one
        thread, unless the remote's ``jobs`` says otherwise (a network file system)."""
        if self.local_root is not None and self.spec.jobs == DEFAULT_JOBS:
            return 1
        return self.spec.jobs

    def direct(self) -> S3Direct | None:
        """The botocore-free S3 client, when this remote's settings allow it (s3_direct):
        a push of a few objects then never imports s3fs."""
        with self._lock:
            if not self._direct_resolved:
                self._direct_resolved = True
                if self.protocol in ("s3", "s3a"):
                    from xp.artifacts import s3_direct  # S3 only: a folder store needs none

                    with self.errors("open"):
                        self._direct = s3_direct.resolve(self.spec)
            return self._direct

    # fsspec is imported on first use only: plain `xp` commands never pay for it.
    @property
    def fs(self) -> AbstractFileSystem:
        with self._lock:
            if self._fs is None:
                self._fs, self._root = self._open()
            return self._fs

    @property
    def root(self) -> str:
        direct = self.direct()
        if direct is not None:
            return direct.root
        _ = self.fs
        return self._root

    def _open(self) -> tuple[AbstractFileSystem, str]:
        try:
            from fsspec.core import url_to_fs  # type: ignore[import-untyped]
        except ModuleNotFoundError as exc:
            raise missing_module(exc) or exc from None

        options: dict[str, Any] = dict(self.spec.options)
        if self.protocol.startswith("s3"):
            client = dict(options.pop("client_kwargs", {}) or {})
            if self.spec.endpoint_url:
                client["endpoint_url"] = self.spec.endpoint_url
            if self.spec.region:
                client["region_name"] = self.spec.region
            if self.spec.profile:
                options["profile"] = self.spec.profile
            config = dict(options.pop("config_kwargs", {}) or {})
            config.setdefault("connect_timeout", CONNECT_TIMEOUT)
            config.setdefault("read_timeout", READ_TIMEOUT)
            config.setdefault("retries", {"max_attempts": ATTEMPTS, "mode": "standard"})
            options.update(client_kwargs=client, config_kwargs=config)
        options.setdefault("skip_instance_cache", True)
        with self.errors("open"):
            fs, root = url_to_fs(self.spec.url, **options)
        if self.protocol.startswith("s3") and hasattr(fs, "retries"):
            fs.retries = 1  # botocore retries with backoff; s3fs's own loop would x5 the wait
        loop = getattr(fs, "loop", None)
        if loop is not None and hasattr(loop, "set_exception_handler"):
            loop.set_exception_handler(_quiet)
        return fs, root.rstrip("/")

    @contextlib.contextmanager
    def errors(self, action: str) -> Iterator[None]:
        """Any failure of the store becomes one line naming the remote and what to check."""
        where = f"artifact remote {self.spec.name!r} ({self.spec.url})"
        try:
            yield
        except XPError:
            raise
        except ImportError as exc:
            raise RemoteError(
                f'{where}: {exc}; install the fsspec package for it (pip install "git-xp[s3]")'
            ) from None
        except PermissionError as exc:
            raise RemoteError(
                f"{where}: permission denied while trying to {action} ({_describe(exc)});"
                " check the credentials (AWS_ACCESS_KEY_ID / AWS_PROFILE) or folder permissions"
            ) from None
        except FileNotFoundError as exc:
            raise RemoteError(
                f"{where}: not found while trying to {action} ({_describe(exc)});"
                " check the URL and that the bucket or folder exists"
            ) from None
        except Exception as exc:
            name = type(exc).__name__
            if "Timeout" in name or isinstance(exc, TimeoutError):
                raise RemoteError(
                    f"{where}: no answer while trying to {action} ({_describe(exc)}, after"
                    " retries); check that the server is up and reachable, or raise"
                    f" remotes.{self.spec.name}.options.config_kwargs.read_timeout"
                ) from None
            if "NoCredentials" in name:
                raise RemoteError(
                    f"{where}: no credentials found; set AWS_ACCESS_KEY_ID and"
                    " AWS_SECRET_ACCESS_KEY, or AWS_PROFILE (or the remote's profile)"
                ) from None
            hint = "check the URL"
            if self.protocol.startswith("s3"):
                hint += ", endpoint_url, network and AWS credentials"
            raise RemoteError(
                f"{where}: cannot {action}: {_describe(exc)}; {hint}".replace("\n", " ")
            ) from None

    def object_path(self, sha: str) -> str:
        return f"{self.root}/sha256/{sha[:2]}/{sha[2:4]}/{sha}"

    # -- existence -----------------------------------------------------------------------
    # -- what the remote is known to hold ------------------------------------------------
    # Objects are immutable and xp never deletes them from a remote, so "this object was
    # there" stays true: remembering it lets a push with nothing new skip the store entirely.
    def _state_path(self, suffix: str) -> Path | None:
        """``<state dir>/<key>.<suffix>``, key = sha256 of the URL and endpoint."""
        if self.state_dir is None:
            return None
        key = f"{self.spec.url}\n{self.spec.endpoint_url or ''}".encode()
        return self.state_dir / f"{hashlib.sha256(key).hexdigest()[:16]}.{suffix}"

    def _known_path(self) -> Path | None:
        return None if self.local_root is not None else self._state_path("known")

    # The same file names the commits whose every object was on the remote after a push,
    # with those objects ("run <commit> <sha256>..." lines): a push of runs that are all
    # there reads none of their manifests, so a push with nothing new costs a ref listing.
    # Deleting the file forgets both. (For a folder remote, asking it is cheap, so the file
    # holds only these lines.)
    def done_commits(self) -> dict[str, list[str]]:
        """commit -> the sha256s of its objects, for every commit a push completed."""
        path = self._state_path("known")
        try:
            data = path.read_bytes() if path else b""
        except OSError:
            return {}
        out: dict[str, list[str]] = {}
        for line in data.decode("ascii", "replace").split("\n"):
            kind, _, rest = line.partition(" ")
            commit, *shas = rest.split(" ")
            if kind == "run" and len(commit) >= 40 and all(cache.is_sha256(s) for s in shas):
                out[commit] = shas
        return out

    def remember_commits(self, commits: dict[str, list[str]]) -> None:
        path = self._state_path("known")
        lines = "".join(" ".join(["run", c, *shas]) + "\n" for c, shas in commits.items())
        if path is None or not lines:
            return
        with contextlib.suppress(OSError):  # only an optimisation: never fail a push on it
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "a") as fh:
                fh.write(lines)

    def known(self) -> set[str]:
        path = self._known_path()
        try:
            data = path.read_bytes() if path else b""
        except OSError:
            return set()
        return {
            line for line in data.decode("ascii", "replace").split("\n") if cache.is_sha256(line)
        }

    def remember(self, shas: Iterable[str]) -> None:
        path = self._known_path()
        lines = "".join(f"{s}\n" for s in shas)
        if path is None or not lines:
            return
        with contextlib.suppress(OSError):  # only an optimisation: never fail a transfer on it
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "a") as fh:
                fh.write(lines)

    def forget(self) -> None:
        """Drop what earlier pushes saw, objects and completed commits alike (the store lost
        objects behind xp's back)."""
        path = self._state_path("known")
        if path is not None:
            with contextlib.suppress(OSError):
                path.unlink()

    def missing_for_upload(self, shas: Iterable[str], recheck: Iterable[str] = ()) -> set[str]:
        """Like ``missing``, trusting what earlier pushes saw on the remote, except for
        ``recheck``: the objects of the runs the push is about to publish, which are asked
        for on the store itself. When there are any, a sample of the trusted objects is
        checked too, and a miss (the store lost objects behind xp's back) drops the known
        list. A push publishing nothing needs no request at all: no run can appear
        without its files."""
        wanted = set(shas)
        fresh = wanted & set(recheck)
        trusted = (wanted & self.known()) - fresh
        if trusted and fresh and not self.still_there(trusted):
            trusted = set()
        unknown = wanted - trusted
        missing = self.missing(unknown)
        self.remember(sorted(unknown - missing))
        return missing

    def still_there(self, known: set[str]) -> bool:
        """Whether a sample of ``known`` objects (earlier pushes saw them) is on the store;
        when not, what earlier pushes saw is forgotten."""
        import random

        sample = random.sample(sorted(known), min(SAMPLE, len(known)))
        if self.missing(sample):
            self.forget()
            return False
        return True

    def missing(self, shas: Iterable[str]) -> set[str]:
        """The objects among ``shas`` the remote lacks, without one request per object."""
        wanted = set(shas)
        if not wanted:
            return set()
        if self.local_root is not None:
            return {s for s in wanted if not cache.object_path(self.local_root, s).is_file()}
        direct = self.direct() if len(wanted) <= PER_OBJECT_CHECK else None
        if direct is not None:
            order = sorted(wanted)
            with self.errors("check objects"):
                if len(order) == 1:  # the hook's usual case: no thread pool to import
                    return set() if direct.exists(self.object_path(order[0])) else set(order)
                with self._pool(len(order)) as pool:
                    found = pool.map(lambda s: direct.exists(self.object_path(s)), order)
                    return {s for s, ok in zip(order, found, strict=True) if not ok}
        fs = self.fs
        if len(wanted) <= PER_OBJECT_CHECK:
            with self.errors("check objects"), self._pool(len(wanted)) as pool:
                found = pool.map(lambda s: fs.exists(self.object_path(s)), sorted(wanted))
                return {s for s, ok in zip(sorted(wanted), found, strict=True) if not ok}
        shards = sorted({s[:2] for s in wanted})
        with self.errors("list objects"):
            fs.invalidate_cache()
            present = self._list_shard(shards[0])  # also a sample: the remote's size
            strategy = self._strategy(len(wanted), len(shards), len(present) * 256)
            if strategy == "all":
                present = self._list_all()
            elif strategy == "shards":
                with self._pool(len(shards)) as pool:
                    for names in pool.map(self._list_shard, shards[1:]):
                        present.update(names)
            else:
                rest = sorted(s for s in wanted - present if s[:2] != shards[0])
                with self._pool(len(rest)) as pool:
                    found = pool.map(lambda s: fs.exists(self.object_path(s)), rest)
                    present.update(s for s, ok in zip(rest, found, strict=True) if ok)
        return wanted - present

    def _strategy(self, wanted: int, shards: int, estimate: int) -> str:
        """The cheapest way to learn which of ``wanted`` objects exist, in sequential rounds
        of requests: one listing of everything (1,000 keys a page), a listing per shard in
        parallel, or one request per object in parallel."""
        jobs = self.spec.jobs
        pages = estimate // 1000 + 1
        costs = {
            "all": pages,
            "shards": -(-(shards - 1) // jobs) * (estimate // 256 // 1000 + 1),
            "objects": -(-wanted // jobs),
        }
        return min(costs, key=lambda k: costs[k])

    def _list_all(self) -> set[str]:
        return {p.rsplit("/", 1)[-1] for p in self.fs.find(f"{self.root}/sha256")}

    def _list_shard(self, shard: str) -> set[str]:
        paths = self.fs.find(f"{self.root}/sha256/{shard}")
        return {p.rsplit("/", 1)[-1] for p in paths}

    def _pool(self, n: int) -> ThreadPoolExecutor:
        from concurrent.futures import ThreadPoolExecutor

        return ThreadPoolExecutor(max(1, min(self.spec.jobs, n)), thread_name_prefix="xp-io")

    # -- transfers -----------------------------------------------------------------------
    def upload(self, src: Path, sha: str, on_bytes: Callable[[int], None] | None = None) -> int:
        """Send the cached object ``src``; its bytes are checked against ``sha`` on the way.
        ``on_bytes(n)`` as bytes go (by chunk; one call for a small object)."""
        if self.local_root is not None:
            return self._upload_local(src, sha, on_bytes)
        size = src.stat().st_size
        direct = self.direct() if size <= SMALL else None
        if direct is not None:
            data = src.read_bytes()
            _check(hashlib.sha256(data).hexdigest(), sha, src)
            with self.errors(f"upload {sha[:12]}"):
                direct.put(self.object_path(sha), data, sha)
            if on_bytes is not None:
                on_bytes(len(data))
            return len(data)
        fs, final = self.fs, self.object_path(sha)
        if size <= SMALL:
            data = src.read_bytes()
            _check(hashlib.sha256(data).hexdigest(), sha, src)
        else:
            _check(cache.hash_file(src)[0], sha, src)
        atomic = self.protocol in ATOMIC_PUT
        target = final if atomic else f"{self.root}/tmp/{sha}.{os.urandom(6).hex()}"
        with self.errors(f"upload {sha[:12]}"):
            if getattr(fs, "async_impl", False):  # S3 and the like: watched for stalls
                if size <= SMALL:
                    self._watched(lambda _tick: fs._pipe_file(target, data))
                    if on_bytes is not None:
                        on_bytes(size)
                else:
                    self._watched(
                        lambda tick: fs._put_file(str(src), target, callback=tick, chunksize=PART),
                        on_bytes,
                    )
            elif size <= SMALL:
                fs.pipe_file(target, data)
                if on_bytes is not None:
                    on_bytes(size)
            else:
                fs.put_file(str(src), target, callback=_callback(on_bytes))
            if not atomic:
                fs.makedirs(final.rsplit("/", 1)[0], exist_ok=True)
                fs.mv(target, final)
        return size

    def stall_seconds(self) -> float:
        """How long a transfer may move no byte before it is given up: what a request may
        take with its retries (``ATTEMPTS`` x (connect + read timeout))."""
        config = self.spec.options.get("config_kwargs") or {}
        connect = float(config.get("connect_timeout", CONNECT_TIMEOUT))
        read = float(config.get("read_timeout", READ_TIMEOUT))
        tries = (config.get("retries") or {}).get("max_attempts", ATTEMPTS)
        return float(tries) * (connect + read)

    def _watched(
        self,
        start: Callable[[Any], Coroutine[Any, Any, Any]],
        on_bytes: Callable[[int], None] | None = None,
    ) -> Any:
        """Run an async fsspec transfer on its loop and cancel it once no part has moved
        for ``stall_seconds``: aiohttp bounds waiting for an answer (the read timeout) but
        not a send the server stopped reading, which would block forever. Each part that
        moves is reported to ``on_bytes`` (a progress bar by bytes)."""
        import asyncio
        import concurrent.futures

        from fsspec.callbacks import Callback  # type: ignore[import-untyped]

        moved = [time.monotonic()]

        sent = [0]

        class Tick(Callback):  # type: ignore[misc]
            def call(self, *args: Any, **kwargs: Any) -> None:
                moved[0] = time.monotonic()
                value = int(self.value or 0)
                if on_bytes is not None and value > sent[0]:
                    on_bytes(value - sent[0])
                    sent[0] = value

        limit = self.stall_seconds()
        future = asyncio.run_coroutine_threadsafe(start(Tick()), self.fs.loop)
        while True:
            try:
                return future.result(timeout=min(1.0, limit))
            except concurrent.futures.TimeoutError:
                if time.monotonic() - moved[0] > limit:
                    future.cancel()
                    raise TimeoutError(f"no progress for {limit:g} s") from None

    def settle(self) -> None:
        """Make the objects uploaded so far durable before a ref names them. A folder
        store's files and the folders holding their names: with ``fsync_each`` (a few
        objects, as a hook's push sends) each file was fsynced as it was written and its
        folders are now; else (an fsync per file costs seconds for a thousand) one
        ``syncfs`` of the store's file system. An object store's PUT is stored once it
        answered: nothing to do."""
        if self.local_root is None:
            return
        with self.errors("flush the uploaded objects"):
            if self.fsync_each:
                for folder in sorted(self._written_in, key=lambda f: -len(f.parts)):
                    fsutil.fsync_dir(folder)
            else:
                fsutil.sync_filesystem(self.local_root)
        self._written_in.clear()

    def _local_tmp(self) -> Path:
        """A new temp file name in the folder store's ``tmp/``, made once per process (a
        ``mkdir`` per object was a tenth of a 1,000-run push)."""
        assert self.local_root is not None
        folder = self.local_root / "tmp"
        if not self._tmp_made:
            folder.mkdir(parents=True, exist_ok=True)
            self._tmp_made = True
        return folder / f"{os.urandom(8).hex()}.tmp"

    def _upload_local(
        self, src: Path, sha: str, on_bytes: Callable[[int], None] | None = None
    ) -> int:
        assert self.local_root is not None
        final = cache.object_path(self.local_root, sha)
        with self.errors(f"upload {sha[:12]}"):
            tmp: Path | None = self._local_tmp()
            assert tmp is not None
            try:
                got, size = cache.copy_hashing(src, tmp, on_bytes)
                _check(got, sha, src)
                os.chmod(tmp, 0o444)
                if self.fsync_each:
                    fd = os.open(tmp, os.O_RDONLY)
                    try:
                        os.fsync(fd)
                    finally:
                        os.close(fd)
                try:  # its folder is usually there: no mkdir per object (a push of 1,000)
                    os.replace(tmp, final)
                except FileNotFoundError:
                    final.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(tmp, final)
                    if self.fsync_each:  # new folders: their parents name them
                        self._written_in.update(final.parents[:4])
                tmp = None
                if self.fsync_each:
                    self._written_in.add(final.parent)
            finally:
                if tmp is not None:
                    with contextlib.suppress(FileNotFoundError):
                        tmp.unlink()
        return size

    def download(
        self,
        sha: str,
        cache_dir: Path,
        size_hint: int = 0,
        on_bytes: Callable[[int], None] | None = None,
    ) -> int:
        """Fetch one object into the local cache, re-hashed; a mismatch stays out of it."""
        tmp = cache.tmp_path(cache_dir)
        try:
            with self.errors(f"download {sha[:12]}"):
                if self.local_root is not None:
                    got, size = cache.copy_hashing(
                        cache.object_path(self.local_root, sha), tmp, on_bytes
                    )
                elif 0 < size_hint <= SMALL:
                    data = self.fs.cat_file(self.object_path(sha))
                    tmp.write_bytes(data)
                    got, size = hashlib.sha256(data).hexdigest(), len(data)
                else:
                    self.fs.get_file(self.object_path(sha), str(tmp), callback=_callback(on_bytes))
                    got, size = cache.hash_file(tmp)
            if got != sha:
                raise CorruptObjectError(
                    f"object {sha} on artifact remote {self.spec.name!r} is corrupt (its bytes"
                    f" hash to {got[:12]}); delete {self.object_path(sha)} there and push it"
                    " again from a clone that has it"
                )
            cache.install(cache_dir, tmp, sha)
            return size
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()


def _quiet(loop: Any, context: dict[str, Any]) -> None:
    """fsspec's event loop: requests aborted by a failure (ours to report, once) leave tasks
    whose exceptions nobody retrieves; asyncio would print each one's traceback."""
    if os.environ.get("XP_DEBUG_ASYNC"):
        loop.default_exception_handler(context)


def _callback(on_bytes: Callable[[int], None] | None) -> Any:
    """An fsspec callback that reports each chunk's bytes to ``on_bytes``."""
    from fsspec.callbacks import Callback, NoOpCallback

    if on_bytes is None:
        return NoOpCallback()
    report = on_bytes

    class _Bytes(Callback):  # type: ignore[misc]
        sent = 0

        def call(self, *args: Any, **kwargs: Any) -> None:
            value = int(self.value or 0)
            if value > self.sent:
                report(value - self.sent)
                self.sent = value

    return _Bytes()


def _check(got: str, sha: str, src: Path) -> None:
    if got != sha:
        raise CorruptObjectError(
            f"cached object {src} is corrupt (its bytes hash to {got[:12]}, not {sha[:12]});"
            " delete it and restore it from a remote, or log the file again"
        )


def open_store(repo: GitRepo, name: str | None = None) -> ArtifactStore:
    return ArtifactStore(get_remote(repo, name), repo.worktree, repo.xp_dir / "remotes")
