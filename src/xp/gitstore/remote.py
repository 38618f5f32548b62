"""Talking to git remotes: list them, push and fetch refs, list what a remote has.

Failures come back typed (``GitRemoteError`` for URL, network or access trouble,
``RefRejectedError`` for refused updates) from ``repo.git_failure``, the one reader of
git's stderr, so callers never parse git's messages.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from xp.errors import GitError, StorageError
from xp.gitstore.repo import GitRepo, git_failure

# Local refs a push stages its new tips under, one folder per push (``push``'s ``tips``);
# deleted when the push returns. Never pushed, fetched or listed as runs.
STAGING_PREFIX = "refs/xp/pushing/"


@dataclass(frozen=True)
class RefUpdate:
    """One line of ``git push --porcelain``: what happened to one destination ref."""

    flag: str  # ' ' fast-forward, '+' forced, '-' deleted, '*' new, '!' rejected, '=' up to date
    ref: str  # the destination ref on the remote
    summary: str

    @property
    def rejected(self) -> bool:
        return self.flag == "!"

    @property
    def up_to_date(self) -> bool:
        return self.flag == "="

    @property
    def reason(self) -> str:
        return self.summary.strip().strip("()")


def names(repo: GitRepo) -> list[str]:
    return repo.git("remote").stdout.decode().split()


def _porcelain(text: str) -> list[RefUpdate]:
    rows = []
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) >= 3 and len(parts[0]) == 1:
            rows.append(RefUpdate(parts[0], parts[1].rsplit(":", 1)[-1], parts[2]))
    return rows


def push(
    repo: GitRepo,
    remote: str,
    refspecs: list[str],
    *,
    env: dict[str, str] | None = None,
    leases: dict[str, str | None] | None = None,
    prune: bool = False,
    tips: Mapping[str, str] | None = None,
) -> list[RefUpdate]:
    """Push ``refspecs``; every ref's outcome, rejections included. Raises when git failed
    without telling about any ref (the remote could not be reached or written).

    ``leases`` (remote ref -> the value it must still have, None: absent) make the push
    atomic and compare-and-swap: all refs move or none, and a ref someone else moved since
    is rejected (``stale info``) instead of overwritten. ``prune`` deletes the remote refs a
    glob refspec maps to that have no source here: one pass, where one refspec per ref costs
    git time quadratic in the refs (2,000 deletions among 10,000 refs: 12 s).

    ``tips`` (remote ref -> commit) are pushed too, through one glob refspec per folder
    from local refs staged for this push only (``STAGING_PREFIX``): git matches each
    explicit refspec against every local ref, so 250 ``<sha>:<ref>`` refspecs in a clone of
    1,000 runs cost it 0.3 CPU-s, the glob a millisecond. Not with ``prune``, which would
    delete every remote ref of the folder that is not staged."""
    lease_args = [f"--force-with-lease={ref}:{sha or ''}" for ref, sha in (leases or {}).items()]
    atomic = ["--atomic"] if leases else []
    pruning = ["--prune"] if prune else []
    if tips:
        clear_staging(repo)
    with _staged(repo, {} if prune else dict(tips or {})) as (globs, rest):
        refspecs = [*refspecs, *globs]
        if prune:
            refspecs += [f"{sha}:{ref}" for ref, sha in (tips or {}).items()]
        refspecs += rest
        args = ("push", "--porcelain", *atomic, *pruning, *lease_args, remote, *refspecs)
        proc = repo.git(*args, env=env, check=False)
    rows = _porcelain(proc.stdout.decode(errors="replace"))
    if proc.returncode != 0 and not any(r.rejected for r in rows):
        raise git_failure(args, proc, "check the remote's URL and your access", remote)
    told = {r.ref for r in rows}
    unsent = [ref for ref in tips or () if ref not in told]
    if unsent:  # a glob that matched nothing pushes nothing, and git says nothing of it
        raise GitError(
            f"{len(unsent)} ref(s) were not sent to {remote} (e.g. {unsent[0]}: its staged"
            f" ref under {STAGING_PREFIX} was gone); run the push again"
        )
    return rows


GLOB_FROM = 8  # tips sharing a folder from which a glob refspec is cheaper than one each


@contextlib.contextmanager
def _staged(repo: GitRepo, tips: dict[str, str]) -> Iterator[tuple[list[str], list[str]]]:
    """(glob refspecs, plain refspecs) pushing ``tips``: folders with ``GLOB_FROM`` tips or
    more go through refs under a folder of ``STAGING_PREFIX`` made for this push (created
    like any loose ref, ``<name>.lock`` then rename), deleted on the way out whatever
    happened; a killed push leaves them for ``clear_staging``."""
    from xp.gitstore.refs import delete_refs

    folders: dict[str, dict[str, str]] = {}
    for ref, sha in tips.items():
        folder, _, name = ref.rpartition("/")
        folders.setdefault(folder, {})[name] = sha
    plain = [
        f"{sha}:{folder}/{name}"
        for folder, names in folders.items()
        if len(names) < GLOB_FROM
        for name, sha in names.items()
    ]
    big = {f: names for f, names in folders.items() if len(names) >= GLOB_FROM}
    if not big:
        yield [], plain
        return
    token = f"{STAGING_PREFIX}{_host()}-{os.getpid()}-{os.urandom(4).hex()}/"
    written: dict[str, str] = {}
    globs = []
    try:
        try:
            for i, (folder, names) in enumerate(sorted(big.items())):
                base = f"{token}{i}/"
                path = repo.common_dir / base
                path.mkdir(parents=True)
                for name, sha in names.items():
                    lock = path / f"{name}.lock"
                    fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                    try:
                        os.write(fd, sha.encode("ascii") + b"\n")
                    finally:
                        os.close(fd)
                    os.replace(lock, path / name)
                    written[base + name] = sha
                globs.append(f"{base}*:{folder}/*")
        except OSError as exc:
            raise StorageError(
                f"cannot write refs under {token}: {exc.strerror}; free disk space"
            ) from None
        yield globs, plain
    finally:
        if written:
            with contextlib.suppress(Exception):  # local scratch refs: never fail a push on it
                delete_refs(repo.common_dir, written)
        import shutil

        with contextlib.suppress(OSError):
            shutil.rmtree(repo.common_dir / token)  # a lock file left by a failed write


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9.-]", "_", os.uname().nodename)[:64] or "host"


def clear_staging(repo: GitRepo) -> None:
    """Delete the refs staged by pushes on this host whose process is gone (killed mid-push:
    ``_staged`` cleans up after every push that returns or raises) and that are over an
    hour old: a container sharing the host's name has its own process ids, and its live
    push's refs must not go (``push`` would then refuse its unsent tips, not lose them)."""
    from xp.gitstore.refs import delete_refs, list_refs

    if not (repo.common_dir / STAGING_PREFIX).is_dir():
        return  # (a ``git pack-refs`` of a killed push's refs keeps them: harmless, rare)
    dead: dict[str, str] = {}
    for name, sha in list_refs(repo.common_dir, STAGING_PREFIX).items():
        token = name[len(STAGING_PREFIX) :].split("/", 1)[0]  # <host>-<pid>-<random>
        host, _, pid = token.rpartition("-")[0].rpartition("-")
        if host == _host() and pid.isdigit() and not _alive(int(pid)) and _stale(repo, token):
            dead[name] = sha
    if dead:
        with contextlib.suppress(Exception):  # another process cleaning up at once: fine
            delete_refs(repo.common_dir, dead)


def _stale(repo: GitRepo, token: str) -> bool:
    """The staging folder ``token`` was last written over an hour ago (or is gone: packed)."""
    try:
        return time.time() - (repo.common_dir / STAGING_PREFIX / token).stat().st_mtime > 3600
    except OSError:
        return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # someone else's process: alive
    return True


# A fetched catalog bucket's ref lock older than this has no live git behind it: a fetch
# updates at most 256 bucket refs, in milliseconds.
STALE_LOCK_SECONDS = 2.0


def fetch(repo: GitRepo, remote: str, refspecs: list[str]) -> None:
    """Fetch ``refspecs`` from ``remote`` (no tags, no FETCH_HEAD). A fetch killed while it
    updated the fetched catalog (``xp push`` SIGKILLed) leaves ref locks that would fail every
    later fetch: when a fetch fails beside such locks, they are removed once they are clearly
    stale, and the fetch runs again. They only guard xp's copies of the remote's buckets."""
    args = ("fetch", "--no-tags", "--no-write-fetch-head", remote, *refspecs)
    proc = repo.git(*args, check=False)
    if proc.returncode != 0 and _clear_stale_locks(repo, remote):
        proc = repo.git(*args, check=False)
    if proc.returncode != 0:
        raise git_failure(args, proc, "check the remote's URL and your access", remote)


def _clear_stale_locks(repo: GitRepo, remote: str) -> bool:
    """Remove the ``.lock`` files of ``remote``'s fetched catalog once each is
    ``STALE_LOCK_SECONDS`` old (waiting at most that long); whether any was removed."""
    import os
    import time

    from xp import format as fmt

    folder = repo.common_dir / fmt.catalog_prefix(remote)
    try:
        locks = [e.path for e in os.scandir(folder) if e.name.endswith(".lock")]
    except OSError:
        return False
    removed = False
    for lock in locks:
        try:
            age = time.time() - os.stat(lock).st_mtime
            if age < STALE_LOCK_SECONDS:
                time.sleep(STALE_LOCK_SECONDS - max(age, 0.0))
                if time.time() - os.stat(lock).st_mtime < STALE_LOCK_SECONDS:
                    continue  # rewritten meanwhile: a live fetch
            os.unlink(lock)
            removed = True
        except FileNotFoundError:
            removed = True  # its fetch finished meanwhile: try again
    return removed


def ls_remote(repo: GitRepo, remote: str, pattern: str, *more: str) -> dict[str, str]:
    """Refs the remote has matching ``pattern`` (or any of ``more``; one round trip):
    name -> sha."""
    args = ("ls-remote", "--refs", remote, pattern, *more)
    proc = repo.git(*args, check=False)
    if proc.returncode != 0:
        raise git_failure(args, proc, "check the remote's URL and your access", remote)
    out: dict[str, str] = {}
    for line in proc.stdout.decode(errors="replace").splitlines():
        sha, _, name = line.partition("\t")
        if name:
            out[name] = sha
    return out


# Runs' objects as ``xp commit`` and ``end_run`` leave them (loose) from which packing them
# while the artifacts upload pays: reading 7,000 loose objects is most of what ``git push``
# of 1,000 runs costs, and a pack written beside the upload turns it into copying.
PACK_FROM = 32


@dataclass
class Packing:
    """A ``git pack-objects`` writing the objects a push is about to send into this
    repository's object store, running while the push does other work."""

    proc: subprocess.Popen[bytes]

    def wait(self) -> bool:
        """Whether the pack was written (a failure only means ``git push`` reads the loose
        objects itself, as it would have)."""
        return self._reap() == 0

    def stop(self) -> None:
        """Kill it (the push failed or was interrupted): objects stay loose, as before;
        git's ``gc`` removes a half-written ``tmp_pack_*`` file."""
        with contextlib.suppress(OSError):
            self.proc.kill()
        self._reap()

    def _reap(self) -> int:
        if self.proc.stdout is not None:  # the pack's name, one line
            with contextlib.suppress(OSError):
                self.proc.stdout.read()
            self.proc.stdout.close()
        return self.proc.wait()


def start_packing(repo: GitRepo, remote: str, commits: list[str]) -> Packing | None:
    """Start packing what ``commits`` bring that ``remote``'s tracking refs (its branches
    and catalog buckets, as last fetched or pushed) do not have, into a pack of this
    repository (as a ``git fetch`` leaves one; ``git gc`` folds packs together and drops
    the loose copies). None when it would not pay: fewer than ``PACK_FROM`` of the commits
    are loose objects, or nothing is known of the remote (the walk would cover the whole
    history)."""
    from xp import format as fmt
    from xp.gitstore.refs import list_refs
    from xp.gitstore.repo import spawn_git

    objects = repo.objects_dir
    loose = [c for c in commits if os.path.isfile(objects / c[:2] / c[2:])]
    if len(loose) < PACK_FROM:
        return None
    have = {
        **list_refs(repo.common_dir, f"refs/remotes/{remote}/"),
        **list_refs(repo.common_dir, fmt.catalog_prefix(remote)),
    }
    if not have:
        return None
    revs = (
        "".join(f"{c}\n" for c in loose) + "--not\n" + "".join(f"{s}\n" for s in set(have.values()))
    )
    args = ["pack-objects", "--revs", "--delta-base-offset", "--threads=1", "-q"]
    args.append(str(objects / "pack" / "pack"))
    try:
        proc = spawn_git(args, repo.worktree, stderr=subprocess.DEVNULL)
    except GitError:
        return None
    try:
        assert proc.stdin is not None
        proc.stdin.write(revs.encode("ascii"))  # it reads every line before it writes
        proc.stdin.close()
    except OSError:  # it died at once (no such object, full disk): the push goes on without
        pass
    return Packing(proc)
