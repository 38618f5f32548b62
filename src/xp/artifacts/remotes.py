"""Artifact remotes: named fsspec stores in ``.xp/config.yaml`` holding ``sha256/ab/cd/<hash>``.

The config is committed, so a collaborator's clone knows where the artifacts are; credentials
never go in it (S3 reads the usual AWS variables and files). Objects land under their final
name only when complete: a folder remote writes ``tmp/<random>`` and renames it, an object
store (S3, GCS, Azure) publishes an upload atomically by itself. Existence is checked in
batches (one listing per shard), transfers run in parallel, and every byte is hashed on the
way so a corrupt object is caught on either side.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xp import format as fmt
from xp import fsutil
from xp.artifacts import cache
from xp.config import load_config
from xp.errors import ConfigError, CorruptObjectError, RemoteError, StorageError, XPError
from xp.record import yamlio

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem  # type: ignore[import-untyped]

    from xp.gitstore.repo import GitRepo

DEFAULT_JOBS = 8
SMALL = 8 << 20  # objects up to this size move in one request
PER_OBJECT_CHECK = 32  # up to this many objects, ask for each; beyond, list shards
ATOMIC_PUT = {"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "oss"}
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_SPEC_KEYS = ("url", "endpoint_url", "region", "profile", "jobs", "options")

Progress = Callable[[int, int], None]  # (bytes done, bytes total), called from any thread


# -- configuration -------------------------------------------------------------------------


@dataclass(frozen=True)
class RemoteSpec:
    name: str
    url: str
    endpoint_url: str | None = None
    region: str | None = None
    profile: str | None = None
    jobs: int = DEFAULT_JOBS
    options: dict[str, Any] = field(default_factory=dict)
    default: bool = False

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"url": self.url}
        for key in ("endpoint_url", "region", "profile"):
            if getattr(self, key):
                d[key] = getattr(self, key)
        if self.jobs != DEFAULT_JOBS:
            d["jobs"] = self.jobs
        if self.options:
            d["options"] = dict(self.options)
        return d


def _spec(name: str, raw: object, default: bool) -> RemoteSpec:
    where = f"{fmt.CONFIG_PATH}: remotes.{name}"
    if isinstance(raw, str):
        raw = {"url": raw}
    if not isinstance(raw, dict) or not isinstance(raw.get("url"), str) or not raw["url"]:
        raise ConfigError(f"{where} needs a 'url'; fix the file or run `xp remote add`")
    unknown = sorted(set(raw) - set(_SPEC_KEYS))
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}; known: {', '.join(_SPEC_KEYS)}")
    jobs = raw.get("jobs", DEFAULT_JOBS)
    if not isinstance(jobs, int) or isinstance(jobs, bool) or not 1 <= jobs <= 256:
        raise ConfigError(f"{where}: jobs must be a whole number from 1 to 256")
    options = raw.get("options") or {}
    if not isinstance(options, dict):
        raise ConfigError(f"{where}: options must be a mapping of fsspec settings")
    return RemoteSpec(
        name=name,
        url=raw["url"],
        endpoint_url=_opt_str(raw, "endpoint_url", where),
        region=_opt_str(raw, "region", where),
        profile=_opt_str(raw, "profile", where),
        jobs=jobs,
        options={str(k): v for k, v in options.items()},
        default=default,
    )


def _opt_str(raw: dict[str, Any], key: str, where: str) -> str | None:
    value = raw.get(key)
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{where}: {key} must be text")
    return value


def list_remotes(repo: GitRepo) -> list[RemoteSpec]:
    """Configured artifact remotes, sorted by name."""
    raw = load_config(repo).raw
    section = raw.get("remotes") or {}
    if not isinstance(section, dict):
        raise ConfigError(f"{fmt.CONFIG_PATH}: 'remotes' must map names to settings; fix it")
    default = raw.get("default_remote")
    if default is not None and default not in section:
        raise ConfigError(
            f"{fmt.CONFIG_PATH}: default_remote {default!r} is not among the remotes;"
            " fix it or run `xp remote add NAME URL --default`"
        )
    return [_spec(str(n), section[n], str(n) == default) for n in sorted(section, key=str)]


def get_remote(repo: GitRepo, name: str | None = None) -> RemoteSpec:
    """The remote called ``name``, or the default one (the only one, when there is one)."""
    remotes = list_remotes(repo)
    names = ", ".join(r.name for r in remotes) or "none"
    if name is not None:
        for spec in remotes:
            if spec.name == name:
                return spec
        raise RemoteError(
            f"no artifact remote {name!r} (configured: {names}); add it with"
            f" `xp remote add {name} URL`"
        )
    defaults = [r for r in remotes if r.default] or (remotes if len(remotes) == 1 else [])
    if not defaults:
        if not remotes:
            raise RemoteError(
                "no artifact remote is configured; add one with `xp remote add NAME URL --default`"
                " (a folder or s3://bucket/prefix)"
            )
        raise RemoteError(
            f"several artifact remotes ({names}) and no default; pick one with --store NAME"
            " or set one with `xp remote default NAME`"
        )
    return defaults[0]


def _check_url(url: str) -> None:
    if not url or "\n" in url:
        raise ConfigError(f"remote URL {url!r} must be one line, e.g. /mnt/store or s3://b/xp")
    protocol = url.split("://", 1)[0] if "://" in url else "file"
    if protocol in ("file", "local"):
        return
    import fsspec

    try:
        fsspec.get_filesystem_class(protocol)
    except (ImportError, ValueError) as exc:
        hint = " (pip install 'git-xp[s3]')" if protocol.startswith("s3") else ""
        raise ConfigError(
            f"remote URL {url!r}: protocol {protocol!r} is not available: {exc}".split("\n")[0]
            + f"; install its fsspec package{hint}"
        ) from None


def _portable_path(repo: GitRepo, url: str) -> str:
    """A relative folder typed from a subfolder, stored relative to the project root (the
    config is shared, so it must not depend on where the command ran)."""
    if "://" in url or os.path.isabs(os.path.expanduser(url)):
        return url
    full = os.path.abspath(url)
    return os.path.relpath(full, repo.worktree).replace(os.sep, "/")


def add_remote(
    repo: GitRepo,
    *,
    name: str,
    url: str,
    default: bool = False,
    endpoint_url: str | None = None,
    region: str | None = None,
    profile: str | None = None,
) -> RemoteSpec:
    if not _NAME_RE.match(name):
        raise ConfigError(
            f"remote name {name!r}: use letters, digits, '.', '_', '-' (up to 64), e.g. storage"
        )
    _check_url(url)
    url = _portable_path(repo, url)
    remotes = {r.name: r for r in list_remotes(repo)}
    if name in remotes:
        raise ConfigError(
            f"artifact remote {name!r} exists ({remotes[name].url});"
            f" remove it first with `xp remote remove {name}`"
        )
    spec = RemoteSpec(name, url, endpoint_url, region, profile)
    remotes[name] = spec
    current = next((r.name for r in remotes.values() if r.default), None)
    _write_remotes(repo, remotes, name if default else current)
    return get_remote(repo, name)


def remove_remote(repo: GitRepo, *, name: str) -> RemoteSpec:
    remotes = {r.name: r for r in list_remotes(repo)}
    spec = get_remote(repo, name)
    del remotes[name]
    current = next((r.name for r in remotes.values() if r.default), None)
    _write_remotes(repo, remotes, current)
    return spec


def set_default(repo: GitRepo, *, name: str) -> RemoteSpec:
    remotes = {r.name: r for r in list_remotes(repo)}
    get_remote(repo, name)
    _write_remotes(repo, remotes, name)
    return get_remote(repo, name)


_OWN_KEYS = ("remotes", "default_remote")
_COMMENT = "# Artifact stores for xp push/get, edited by `xp remote`; see docs/artifacts.md"


def _strip_keys(text: str, keys: tuple[str, ...]) -> str:
    """Remove the top-level blocks of ``keys``; every other line, comments included, stays."""
    out: list[str] = []
    skipping = False
    for line in text.splitlines(keepends=True):
        top = line[:1] not in ("", " ", "\t", "\n", "\r", "-")
        if top:
            skipping = any(re.match(rf"{k}\s*:", line) for k in keys)
        if not skipping:
            out.append(line)
    return "".join(out)


def _write_remotes(repo: GitRepo, remotes: dict[str, RemoteSpec], default: str | None) -> None:
    path = repo.worktree / fmt.CONFIG_PATH
    try:
        text = path.read_text() if path.exists() else ""
    except OSError as exc:
        raise StorageError(f"cannot read {path}: {exc.strerror}") from None
    before = yamlio.load(text, fmt.CONFIG_PATH) or {}
    body = _strip_keys(text, _OWN_KEYS).rstrip("\n")
    if _COMMENT not in body:
        body = (body + "\n" if body else "") + _COMMENT
    section: dict[str, Any] = {}
    if default:
        section["default_remote"] = default
    if remotes:
        section["remotes"] = {n: s.to_dict() for n, s in sorted(remotes.items())}
    new = body + "\n" + (yamlio.dump(section).decode() if section else "")
    after = yamlio.load(new, fmt.CONFIG_PATH) or {}
    others = {k: v for k, v in before.items() if k not in _OWN_KEYS}
    if {k: v for k, v in after.items() if k not in _OWN_KEYS} != others:
        new = yamlio.dump({**others, **section}).decode()  # odd layout: rewrite it whole
    fsutil.atomic_write(path, new)


# -- the store -----------------------------------------------------------------------------


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


class Store:
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

    # fsspec is imported on first use only: plain `xp` commands never pay for it.
    @property
    def fs(self) -> AbstractFileSystem:
        with self._lock:
            if self._fs is None:
                self._fs, self._root = self._open()
            return self._fs

    @property
    def root(self) -> str:
        _ = self.fs
        return self._root

    def _open(self) -> tuple[AbstractFileSystem, str]:
        from fsspec.core import url_to_fs  # type: ignore[import-untyped]

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
            config.setdefault("connect_timeout", 10)
            config.setdefault("retries", {"max_attempts": 3, "mode": "standard"})
            options.update(client_kwargs=client, config_kwargs=config)
        options.setdefault("skip_instance_cache", True)
        with self.errors("open"):
            fs, root = url_to_fs(self.spec.url, **options)
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
                f"{where}: {exc}; install the fsspec package for it (pip install 'git-xp[s3]')"
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
            if "NoCredentials" in type(exc).__name__:
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
    def _known_path(self) -> Path | None:
        if self.state_dir is None or self.local_root is not None:
            return None
        key = f"{self.spec.url}\n{self.spec.endpoint_url or ''}".encode()
        return self.state_dir / f"{hashlib.sha256(key).hexdigest()[:16]}.known"

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

    def missing_for_upload(self, shas: Iterable[str]) -> set[str]:
        """Like ``missing``, trusting what earlier pushes saw on the remote."""
        wanted = set(shas)
        unknown = wanted - self.known()
        missing = self.missing(unknown)
        self.remember(sorted(unknown - missing))
        return missing

    def missing(self, shas: Iterable[str]) -> set[str]:
        """The objects among ``shas`` the remote lacks, without one request per object."""
        wanted = set(shas)
        if not wanted:
            return set()
        if self.local_root is not None:
            return {s for s in wanted if not cache.object_path(self.local_root, s).is_file()}
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
        return ThreadPoolExecutor(max(1, min(self.spec.jobs, n)), thread_name_prefix="xp-io")

    # -- transfers -----------------------------------------------------------------------
    def upload(self, src: Path, sha: str) -> int:
        """Send the cached object ``src``; its bytes are checked against ``sha`` on the way."""
        if self.local_root is not None:
            return self._upload_local(src, sha)
        fs, final = self.fs, self.object_path(sha)
        size = src.stat().st_size
        if size <= SMALL:
            data = src.read_bytes()
            _check(hashlib.sha256(data).hexdigest(), sha, src)
        else:
            _check(cache.hash_file(src)[0], sha, src)
        atomic = self.protocol in ATOMIC_PUT
        target = final if atomic else f"{self.root}/tmp/{sha}.{secrets.token_hex(6)}"
        with self.errors(f"upload {sha[:12]}"):
            if size <= SMALL:
                fs.pipe_file(target, data)
            else:
                fs.put_file(str(src), target)
            if not atomic:
                fs.makedirs(final.rsplit("/", 1)[0], exist_ok=True)
                fs.mv(target, final)
        return size

    def _upload_local(self, src: Path, sha: str) -> int:
        assert self.local_root is not None
        final = cache.object_path(self.local_root, sha)
        with self.errors(f"upload {sha[:12]}"):
            tmp = cache.tmp_path(self.local_root)
            try:
                got, size = cache.copy_hashing(src, tmp)
                _check(got, sha, src)
                final.parent.mkdir(parents=True, exist_ok=True)
                os.chmod(tmp, 0o444)
                os.replace(tmp, final)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
        return size

    def download(self, sha: str, cache_dir: Path, size_hint: int = 0) -> int:
        """Fetch one object into the local cache, re-hashed; a mismatch stays out of it."""
        tmp = cache.tmp_path(cache_dir)
        try:
            with self.errors(f"download {sha[:12]}"):
                if self.local_root is not None:
                    got, size = cache.copy_hashing(cache.object_path(self.local_root, sha), tmp)
                elif 0 < size_hint <= SMALL:
                    data = self.fs.cat_file(self.object_path(sha))
                    tmp.write_bytes(data)
                    got, size = hashlib.sha256(data).hexdigest(), len(data)
                else:
                    self.fs.get_file(self.object_path(sha), str(tmp))
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


def _check(got: str, sha: str, src: Path) -> None:
    if got != sha:
        raise CorruptObjectError(
            f"cached object {src} is corrupt (its bytes hash to {got[:12]}, not {sha[:12]});"
            " delete it and restore it from a remote, or log the file again"
        )


def open_store(repo: GitRepo, name: str | None = None) -> Store:
    return Store(get_remote(repo, name), repo.worktree, repo.xp_dir / "remotes")


# -- parallel transfers --------------------------------------------------------------------


@dataclass
class TransferResult:
    objects: int = 0
    bytes: int = 0
    present: int = 0  # already at the destination, not sent


def transfer(
    items: list[tuple[str, int]],
    move: Callable[[str, int], int],
    jobs: int,
    progress: Progress | None = None,
) -> TransferResult:
    """Run ``move(sha, size)`` for every item in parallel; the first error stops the rest."""
    result = TransferResult()
    total = sum(size for _, size in items)
    lock = threading.Lock()
    stop = threading.Event()

    def one(item: tuple[str, int]) -> None:
        if stop.is_set():
            return
        try:
            moved = move(*item)
        except BaseException:
            stop.set()
            raise
        with lock:
            result.objects += 1
            result.bytes += moved
            if progress is not None:
                progress(result.bytes, total)

    if progress is not None:
        progress(0, total)
    # Small objects first: an interrupted transfer keeps as many finished objects as it can.
    ordered = sorted(items, key=lambda i: (i[1], i[0]))
    pool = ThreadPoolExecutor(max(1, min(jobs, len(items) or 1)), "xp-transfer")
    try:
        for future in [pool.submit(one, item) for item in ordered]:
            future.result()
    except BaseException:  # an error or Ctrl-C: finish the objects in flight, start no more
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown()
    return result
