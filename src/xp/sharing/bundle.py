"""``xp bundle create FILE`` / ``xp bundle import FILE``: runs and their artifacts in one
file, for machines that share no remote (air-gapped ones included).

The file is a tar archive (docs/format.md, section 11): a manifest, a git bundle of the run
refs (and the objects they reach) and one member per artifact, named by its sha256. Import
trusts nothing in it: every artifact is hashed while it is copied into the cache's temporary
folder, and one that does not hash to its name stops the import before anything is kept; git
checks the bundle (``git bundle verify``) and every object it fetches (``fsckObjects``).
Artifacts go into the cache before the refs move (as ``xp push`` uploads before it pushes),
and imported runs land in ``refs/xp/remotes/bundle/runs/``, never in ``refs/xp/runs/``: they
were not recorded here. Importing the same file twice changes nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from xp import format as fmt
from xp import fsutil
from xp.artifacts import cache, manifests
from xp.artifacts.manifests import Needed
from xp.errors import BundleError, ConfigError, GitError, InvalidValueError
from xp.format import RunRef
from xp.gitstore import bundle as git_bundle
from xp.gitstore.refs import create_ref, delete_refs, list_refs, read_ref
from xp.gitstore.repo import GitRepo
from xp.record import yamlio

MAX_MANIFEST = 16 << 20  # bytes: a manifest bigger than this is not ours


@dataclass
class CreateResult:
    path: Path
    runs: list[str] = field(default_factory=list)
    artifacts: int = 0
    bytes: int = 0
    not_cached: list[Needed] = field(default_factory=list)  # inputs logged without cache=True


@dataclass
class ImportResult:
    path: Path
    new: list[str] = field(default_factory=list)  # run ids brought in now
    present: list[str] = field(default_factory=list)  # already here, same commit
    updated: list[str] = field(default_factory=list)
    artifacts: int = 0  # objects added to the cache
    artifacts_present: int = 0
    missing: list[Needed] = field(default_factory=list)  # in neither the bundle nor the cache


# -- create ---------------------------------------------------------------------------------


def _select(repo: GitRepo, runs: list[str], since: str | None) -> dict[RunRef, str]:
    from xp.query.filters import parse_time
    from xp.query.resolve import resolve_run, runs_by_id

    if runs and since:
        raise InvalidValueError("name runs or give --since, not both")
    if runs:
        return {(e := resolve_run(repo, spec)).run_ref: e.commit for spec in runs}
    local = {e.run_ref: e.commit for e in runs_by_id(repo).values() if e.run_ref.is_local}
    if since:
        start = parse_time(since, InvalidValueError)
        local = {r: c for r, c in local.items() if fmt.id_time(r.id) >= start}
    if not local:
        raise BundleError(
            "no runs to bundle"
            + (f" since {since}" if since else "")
            + "; record some, or name runs (xp show lists them)"
        )
    return local


def create(
    repo: GitRepo,
    *,
    path: str | os.PathLike[str],
    runs: list[str] | tuple[str, ...] = (),
    since: str | None = None,
    exclude: list[str] | tuple[str, ...] = (),
) -> CreateResult:
    """Write the selected runs (default: every local run) and their artifacts to ``path``."""
    from xp.sharing.push_pull import download_missing, expand_dirs

    selected = _select(repo, list(runs), since)
    target = Path(path)
    result = CreateResult(target, sorted(r.id for r in selected))
    labels = {c: r.id for r, c in selected.items()}
    cache_dir = cache.cache_dir(repo)
    items, _unknown = expand_dirs(manifests.needed(repo, labels), cache_dir)
    wanted: dict[str, Needed] = {}
    for item in sorted(items, key=lambda i: i.kind != "artifact"):
        wanted.setdefault(item.sha256, item)
    absent = [i for s, i in wanted.items() if not cache.object_path(cache_dir, s).is_file()]
    if any(i.kind == "artifact" for i in absent):
        download_missing(repo, items=[i for i in absent if i.kind == "artifact"])
    lost = [i for i in absent if not cache.object_path(cache_dir, i.sha256).is_file()]
    if any(i.kind == "artifact" for i in lost):
        first = next(i for i in lost if i.kind == "artifact")
        raise BundleError(
            f"run {first.run}: artifact {first.path} is in neither the local cache nor an"
            " artifact remote; bundle on the clone that logged it, or `xp pull --artifacts`"
        )
    result.not_cached = [i for i in lost if i.kind != "artifact"]
    shas = sorted(s for s in wanted if cache.object_path(cache_dir, s).is_file())
    refs = sorted(str(r) for r in selected)
    notes = [fmt.NOTES_REF] if read_ref(repo.common_dir, fmt.NOTES_REF) else []
    git_file = fsutil.private_tmp(repo.xp_dir) / f"bundle-{secrets.token_hex(4)}.bundle"
    partial = fsutil.temp_name(target)
    # A run a fetched catalog lists has no ref of its own (docs/format.md, section 1): the
    # bundle names it by the copy ref it stands for, made for the while git bundles it.
    virtual = {
        str(r): c
        for r, c in selected.items()
        if not r.is_local and read_ref(repo.common_dir, str(r)) is None
    }
    made: dict[str, str] = {}
    try:
        for name, commit in virtual.items():
            create_ref(repo.common_dir, name, commit)
            made[name] = commit
        git_bundle.create(repo, git_file, refs + notes, list(exclude))
        manifest = {
            "format": fmt.BUNDLE_FORMAT,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "runs": [{"id": r.id, "commit": c} for r, c in sorted(selected.items())],
            "artifacts": [{"sha256": s, "size": wanted[s].size} for s in shas],
        }
        with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as tar:
            _add_bytes(tar, fmt.BUNDLE_MANIFEST, yamlio.dump(manifest))
            tar.add(git_file, arcname=fmt.BUNDLE_GIT, recursive=False, filter=_plain)
            for sha in shas:
                obj = cache.object_path(cache_dir, sha)
                tar.add(obj, arcname=fmt.BUNDLE_OBJECTS + sha, recursive=False, filter=_plain)
                result.artifacts += 1
                result.bytes += obj.stat().st_size
        os.replace(partial, target)
    except OSError as exc:
        raise BundleError(f"cannot write {target}: {exc.strerror}; free disk space") from None
    finally:
        if made:
            with contextlib.suppress(OSError):  # changed meanwhile: not ours to remove
                delete_refs(repo.common_dir, made)
        git_file.unlink(missing_ok=True)
        partial.unlink(missing_ok=True)
    return result


def _plain(info: tarfile.TarInfo) -> tarfile.TarInfo:
    """Members carry no owner, group or mode of this machine: the file is the same anywhere."""
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mode = 0o644
    return info


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    import io

    info = _plain(tarfile.TarInfo(name))
    info.size = len(data)
    info.mtime = int(time.time())
    tar.addfile(info, io.BytesIO(data))


# -- import ---------------------------------------------------------------------------------


def _manifest(tar: tarfile.TarFile, member: tarfile.TarInfo) -> dict[str, Any]:
    if member.size > MAX_MANIFEST:
        raise BundleError(f"{fmt.BUNDLE_MANIFEST} is {member.size:,} bytes: not an xp bundle")
    raw = _read(tar, member).read()
    try:
        data = yamlio.load(raw, fmt.BUNDLE_MANIFEST)
    except ConfigError as exc:
        raise BundleError(f"the bundle's manifest cannot be read ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("format"), int):
        raise BundleError("the bundle has no valid manifest; it is not an xp bundle")
    if data["format"] > fmt.BUNDLE_FORMAT:
        raise BundleError(
            f"the bundle has format {data['format']}; this xp reads up to"
            f" {fmt.BUNDLE_FORMAT}: upgrade xp"
        )
    return data


def _read(tar: tarfile.TarFile, member: tarfile.TarInfo) -> IO[bytes]:
    fh = tar.extractfile(member)
    if fh is None:
        raise BundleError(f"bundle member {member.name} is not a file")
    return fh


@contextlib.contextmanager
def _staged(cache_dir: Path) -> Iterator[dict[str, Path]]:
    """Verified artifact temp files (sha256 -> temp path); whatever is left is removed."""
    staged: dict[str, Path] = {}
    try:
        yield staged
    finally:
        for tmp in staged.values():
            tmp.unlink(missing_ok=True)


def import_bundle(repo: GitRepo, *, path: str | os.PathLike[str]) -> ImportResult:
    """Bring the runs and artifacts of bundle ``path`` in, verifying every hash first."""
    source = Path(path)
    result = ImportResult(source)
    cache_dir = cache.cache_dir(repo)
    git_file = fsutil.private_tmp(repo.xp_dir) / f"import-{secrets.token_hex(4)}.bundle"
    runs: dict[str, str] = {}
    before: dict[str, str] = {}
    prefix = RunRef.prefix(fmt.BUNDLE_REMOTE)
    try:
        tar = tarfile.open(source, "r:")  # noqa: SIM115 - closed by the with block below
    except (OSError, tarfile.TarError) as exc:
        raise BundleError(f"cannot read {source} as an xp bundle ({exc}); check the file") from None
    try:
        with tar, _staged(cache_dir) as staged:
            manifest: dict[str, Any] | None = None
            for member in tar:
                name = member.name
                if name == fmt.BUNDLE_MANIFEST and member.isfile():
                    manifest = _manifest(tar, member)
                elif name == fmt.BUNDLE_GIT and member.isfile():
                    with open(git_file, "wb") as out:
                        _copy(_read(tar, member), out)
                elif name.startswith(fmt.BUNDLE_OBJECTS) and member.isfile():
                    sha = name[len(fmt.BUNDLE_OBJECTS) :]
                    if not cache.is_sha256(sha):
                        raise BundleError(f"bundle member {name!r} is not named by a sha256")
                    if sha in staged or cache.object_path(cache_dir, sha).is_file():
                        result.artifacts_present += 1
                        continue
                    tmp = cache.tmp_path(cache_dir)
                    staged[sha] = tmp
                    with open(tmp, "wb") as out:
                        got = _copy(_read(tar, member), out)
                    if got != sha:
                        raise BundleError(
                            f"artifact {sha[:12]}... in the bundle hashes to {got[:12]}...:"
                            " it was changed after the bundle was made; nothing was imported"
                        )
                else:
                    raise BundleError(
                        f"unexpected member {name!r} in the bundle; it is not one xp wrote,"
                        " nothing was imported"
                    )
            if manifest is None or not git_file.is_file():
                raise BundleError(f"{source} is not an xp bundle (no manifest or no runs)")
            try:
                git_bundle.verify(repo, git_file)
                heads = git_bundle.heads(repo, git_file)
            except GitError as exc:
                raise BundleError(str(exc)) from None
            runs = {r.id: sha for ref, sha in heads.items() if (r := RunRef.parse(ref))}
            before = list_refs(repo.common_dir, prefix)
            for sha, tmp in list(staged.items()):
                cache.install(cache_dir, tmp, sha)
                del staged[sha]
                result.artifacts += 1
            refspecs = [
                f"+{ref}:{prefix}{r.id}" for ref in heads if (r := RunRef.parse(ref)) is not None
            ]
            if fmt.NOTES_REF in heads:
                refspecs.append(f"+{fmt.NOTES_REF}:{fmt.notes_ref(fmt.BUNDLE_REMOTE)}")
            try:
                git_bundle.fetch(repo, git_file, refspecs)
            except GitError as exc:
                raise BundleError(str(exc)) from None
    except OSError as exc:
        raise BundleError(f"cannot import {source}: {exc.strerror}; free disk space") from None
    except tarfile.TarError as exc:
        raise BundleError(f"{source} is damaged ({exc}); get a new copy") from None
    finally:
        git_file.unlink(missing_ok=True)
    from xp.sharing.annotate import merge_fetched

    merge_fetched(repo)  # the bundle's annotations join ours (cat_sort_uniq)
    for run_id, sha in sorted(runs.items()):
        old = before.get(prefix + run_id)
        (result.present if old == sha else result.new if old is None else result.updated).append(
            run_id
        )
    from xp.sharing.push_pull import expand_dirs

    labels = {sha: run_id for run_id, sha in runs.items()}
    items, _unknown = expand_dirs(manifests.needed(repo, labels), cache_dir)
    result.missing = [
        i
        for i in items
        if i.kind == "artifact" and not cache.object_path(cache_dir, i.sha256).is_file()
    ]
    return result


def _copy(src: IO[bytes], out: IO[bytes]) -> str:
    h = hashlib.sha256()
    while chunk := src.read(cache.CHUNK):
        h.update(chunk)
        out.write(chunk)
    return h.hexdigest()
