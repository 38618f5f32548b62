"""Artifact remotes: named stores in ``.xp/config.yaml`` (``xp remote add|remove|default``).

The config is committed, so a collaborator's clone knows where the artifacts are; credentials
never go in it (S3 reads the usual AWS variables and files). ``artifact_store`` opens one.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from xp import format as fmt
from xp import fsutil
from xp.config import load_config, strip_keys
from xp.errors import ConfigError, RemoteError, StorageError, missing_module

if TYPE_CHECKING:
    from xp.gitstore.repo import GitRepo

DEFAULT_JOBS = 8
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_SPEC_KEYS = ("url", "endpoint_url", "region", "profile", "jobs", "options")


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
    try:
        import fsspec  # type: ignore[import-untyped]
    except ModuleNotFoundError as exc:
        raise missing_module(exc) or exc from None
    try:
        fsspec.get_filesystem_class(protocol)
    except ModuleNotFoundError as exc:
        raise missing_module(exc) or ConfigError(
            f"remote URL {url!r}: protocol {protocol!r} needs {exc.name}; install it"
        ) from None
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


def _write_remotes(repo: GitRepo, remotes: dict[str, RemoteSpec], default: str | None) -> None:
    from xp.record import yamlio  # only `xp remote` writes: reading remotes needs no PyYAML

    path = repo.worktree / fmt.CONFIG_PATH
    try:
        text = path.read_text() if path.exists() else ""
    except OSError as exc:
        raise StorageError(f"cannot read {path}: {exc.strerror}") from None
    before = yamlio.load(text, fmt.CONFIG_PATH) or {}
    body = strip_keys(text, _OWN_KEYS).rstrip("\n")
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
