"""Turn a workspace tree plus record files into a run commit and its ref.

Order is what makes a run all-or-nothing: blobs, trees and the commit first; the ref last,
by compare-and-swap. A crash before the ref leaves only unreferenced objects (git gc
collects them); a crash after leaves a whole run.

Objects are serialised here (``objects.tree_body``, ``commit_body``: git's own bytes, tested
against ``git hash-object``/``mktree``/``commit-tree``), so a commit loads no dulwich.
"""

from __future__ import annotations

import contextlib
import os
import stat
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from xp.errors import GitError, ObjectMissingError, RecordPathError
from xp.gitstore.identity import commit_settings, identity
from xp.gitstore.objects import (
    ObjectWriter,
    PackWriter,
    RawObject,
    Streamed,
    commit_body,
    object_store,
    tree_body,
)
from xp.gitstore.refs import create_ref, read_ref, update_ref
from xp.gitstore.repo import GitRepo

if TYPE_CHECKING:
    from dulwich.objects import ObjectID
else:
    ObjectID = bytes


@dataclass(frozen=True)
class Head:
    """Where the workspace stands: the run's baseline commit and branch (None if detached)."""

    commit: str | None
    branch: str | None


def head(repo: GitRepo) -> Head:
    try:
        content = (repo.git_dir / "HEAD").read_text().strip()
    except OSError as exc:
        raise GitError(f"cannot read {repo.git_dir / 'HEAD'}: {exc.strerror}") from None
    if content.startswith("ref: "):
        ref = content[5:]
        branch = ref.removeprefix("refs/heads/")
        return Head(commit=read_ref(repo.common_dir, ref), branch=branch)
    return Head(commit=content, branch=None)


def _write_streams(
    writer: ObjectWriter | PackWriter, files: Mapping[str, bytes | Streamed]
) -> dict[str, bytes]:
    """The blob ids of the streamed files, written on as many threads as there are cores
    (zlib and SHA-1 let go of the GIL): most of a big run's ``end_run`` is compressing."""
    streamed = {p: d for p, d in files.items() if not isinstance(d, bytes)}
    if not isinstance(writer, ObjectWriter):  # a pack writer holds its objects in memory
        return {
            p: writer.add(RawObject(b"blob", b"".join(d.chunks()))) for p, d in streamed.items()
        }
    big = sum(d.size for d in streamed.values()) > (16 << 20)
    if len(streamed) < 2 or not big:
        return {p: writer.add_stream(d) for p, d in streamed.items()}
    from concurrent.futures import ThreadPoolExecutor

    workers = min(len(streamed), len(os.sched_getaffinity(0)), 8)
    with ThreadPoolExecutor(workers, thread_name_prefix="xp-blob") as pool:
        shas = pool.map(writer.add_stream, streamed.values())
        return dict(zip(streamed, shas, strict=True))


def _tree_from_files(
    writer: ObjectWriter | PackWriter, files: Mapping[str, bytes | Streamed]
) -> bytes:
    """Nested trees from {'a/b.tsv': bytes}; returns the root tree id. A streamed file (a
    big series) is written as it is read, by a loose-object writer."""
    dirs: dict[str, dict[str, bytes]] = {}
    streams = _write_streams(writer, files)
    for path, data in files.items():
        if isinstance(data, bytes):
            sha: bytes = writer.add(RawObject(b"blob", data))
        else:
            sha = streams[path]
        head_, _, name = path.rpartition("/")
        dirs.setdefault(head_, {})[name] = sha
    subdirs: dict[str, set[str]] = {}
    for d in list(dirs):
        while d:
            parent, _, name = d.rpartition("/")
            subdirs.setdefault(parent, set()).add(name)
            dirs.setdefault(parent, {})
            d = parent

    def build(d: str) -> bytes:
        entries = {name.encode(): (0o100644, sha) for name, sha in dirs.get(d, {}).items()}
        for name in subdirs.get(d, ()):
            full = f"{d}/{name}" if d else name
            if name in dirs.get(d, {}):
                raise RecordPathError(
                    f"record path {full!r} is both a file and a folder; rename the metric"
                )
            entries[name.encode()] = (stat.S_IFDIR, build(full))
        return writer.add(RawObject(b"tree", tree_body(entries)))

    return build("")


def compose_tree(
    repo: GitRepo,
    writer: ObjectWriter | PackWriter,
    workspace_tree: str,
    record_dir: str,
    files: Mapping[str, bytes | Streamed],
) -> bytes:
    """The workspace tree with ``record_dir`` replaced by the record files."""
    objects_dir = str(repo.objects_dir)
    record_tree = _tree_from_files(writer, files)
    parts = record_dir.split("/")

    def replace(tree_id: bytes | None, depth: int) -> bytes:
        entries: dict[bytes, tuple[int, bytes]] = {}
        if tree_id is not None:
            entries = {path: (mode, sha) for path, mode, sha in _tree_items(objects_dir, tree_id)}
        name = parts[depth].encode()
        if depth == len(parts) - 1:
            entries[name] = (stat.S_IFDIR, record_tree)
        else:
            child = None
            if name in entries:
                mode, sha = entries[name]
                if not stat.S_ISDIR(mode):
                    raise RecordPathError(
                        f"the workspace has a file {'/'.join(parts[: depth + 1])!r} where xp keeps"
                        " its run record; rename that file"
                    )
                child = sha
            entries[name] = (stat.S_IFDIR, replace(child, depth + 1))
        return writer.add(RawObject(b"tree", tree_body(entries)))

    return replace(workspace_tree.encode(), 0)


def _loose(objects_dir: str, hexsha: str) -> bytes | None:
    """A loose object's body, or None when it is packed. Spares `xp commit` the import of
    dulwich.object_store (~10 ms): the trees it reads were just written loose by write-tree."""
    import zlib

    try:
        with open(os.path.join(objects_dir, hexsha[:2], hexsha[2:]), "rb") as fh:
            raw = zlib.decompress(fh.read())
    except FileNotFoundError:
        return None
    return raw[raw.index(b"\0") + 1 :]


@lru_cache(maxsize=256)
def _tree_items(objects_dir: str, tree_id: bytes) -> tuple[tuple[bytes, int, ObjectID], ...]:
    """A tree's entries; cached because an object never changes (a sweep reads the same
    workspace tree for every run)."""
    body = _loose(objects_dir, tree_id.decode())
    if body is not None:
        from xp.gitstore.catfile import parse_tree

        return tuple(
            (name.encode("utf-8", "surrogateescape"), mode, ObjectID(sha.encode()))
            for name, (mode, sha) in parse_tree(body).items()
        )

    try:
        old = object_store(objects_dir)[ObjectID(tree_id)]
    except KeyError:
        raise ObjectMissingError(
            f"tree {tree_id.decode()[:12]} is gone (git gc --prune=now?)"
        ) from None
    from dulwich.objects import Tree

    if not isinstance(old, Tree):
        raise ObjectMissingError(f"{tree_id.decode()[:12]} is not a tree")
    return tuple((item.path, item.mode, item.sha) for item in old.items())


def is_commit(repo: GitRepo, sha: str) -> bool:
    """Whether ``sha`` (full hex) names a commit this repository has."""

    from dulwich.objects import Commit

    if len(sha) != 40:
        return False
    try:
        obj = object_store(repo.objects_dir)[ObjectID(sha.encode())]
    except (KeyError, ValueError):
        return False
    return isinstance(obj, Commit)


def first_parent(repo: GitRepo, commit: str) -> str | None:
    """The first parent of ``commit`` (None for a root commit or a missing object)."""
    from dulwich.objects import Commit

    try:
        obj = object_store(repo.objects_dir)[ObjectID(commit.encode())]
    except KeyError:
        return None
    if not isinstance(obj, Commit) or not obj.parents:
        return None
    return bytes(obj.parents[0]).decode()


def tree_of(repo: GitRepo, commit: str) -> str:
    return _commit_tree(str(repo.objects_dir), commit)


def empty_tree(writer: ObjectWriter) -> str:
    """The empty tree's id, written (git knows it without storing it; dulwich does not)."""
    return writer.add(RawObject(b"tree", b"")).decode()


def forget_tree(tree: str) -> None:
    """Drop a tree from the read cache (it was found missing: never compose with it again)."""
    _tree_items.cache_clear()


@lru_cache(maxsize=64)
def _commit_tree(objects_dir: str, commit: str) -> str:
    body = _loose(objects_dir, commit)
    if body is not None and body.startswith(b"tree "):
        return body[5:45].decode()

    try:
        obj = object_store(objects_dir)[ObjectID(commit.encode())]
    except KeyError:
        raise ObjectMissingError(f"commit {commit[:12]} is gone") from None
    from dulwich.objects import Commit

    assert isinstance(obj, Commit)
    return bytes(obj.tree).decode()


def build_commit(
    repo: GitRepo,
    tree: bytes,
    parent: str | None,
    message: str,
    start: float,
    end: float,
    ident: bytes | None = None,
) -> RawObject:
    """The run commit object (not written: the caller's writer does it, a pack for an
    import): author date the start, committer date the end, the identity git would use
    (``ident``, when the caller has it)."""
    return RawObject(
        b"commit",
        commit_body(
            tree,
            [parent.encode()] if parent else [],
            ident or identity(str(repo.worktree)),
            int(start),
            int(end),
            time.localtime(end).tm_gmtoff,
            message.encode("utf-8"),
        ),
    )


def write_run_commit(
    repo: GitRepo,
    ref: str,
    tree: bytes,
    parent: str | None,
    message: str,
    start: float,
    end: float,
    writer: ObjectWriter,
    *,
    move: bool = False,
    expected: str | None = None,
    before_ref: Callable[[str], None] | None = None,
) -> str:
    """The commit, then the ref: created (RefExistsError if it exists), or with ``move`` (a
    run continued after it ended, ``parent`` being its previous commit) moved by
    compare-and-swap from ``expected`` (None: absent), RefChangedError if it moved since.
    ``before_ref(sha)`` runs between the two (a continued run's annotations are copied
    there, so the ref never shows the new commit without them)."""
    ident, sign = commit_settings(repo)  # one git process for both
    if sign:  # git writes it, signed with the user's key (docs/provenance.md)
        from xp.gitstore import signing

        sha = signing.signed_commit(
            repo,
            tree=tree.decode(),
            parent=parent,
            message=message.encode("utf-8"),
            ident=ident,
            author_time=int(start),
            commit_time=int(end),
            tz=time.localtime(end).tm_gmtoff,
        )
    else:
        commit = build_commit(repo, tree, parent, message, start, end, ident)
        writer.add(commit)
        sha = commit.id.decode()
    note_recorded(repo, sha)
    if before_ref is not None:
        before_ref(sha)
    if move:
        update_ref(repo.common_dir, ref, sha, expected)
    else:
        create_ref(repo.common_dir, ref, sha)
    return sha


def write_files_commit(
    repo: GitRepo, ref: str, files: dict[str, bytes], message: str, expected: str | None
) -> str:
    """A commit whose tree is just ``files``, on top of ``expected`` (the ref's current
    commit, or None), and the ref moved to it by compare-and-swap: small shared documents
    such as the experiment list keep their history in git and never lose a concurrent
    update (RefChangedError: read again and retry)."""
    writer = ObjectWriter(repo.objects_dir)
    tree = _tree_from_files(writer, files)
    now = time.time()
    commit = build_commit(repo, tree, expected, message, now, now)
    writer.add(commit)
    update_ref(repo.common_dir, ref, commit.id.decode(), expected)
    return commit.id.decode()


def author_of(repo: GitRepo, commit: str) -> str:
    """``Name <email>`` of a commit's author, as whoever made it set them."""
    proc = repo.git("show", "-s", "--format=%an <%ae>", commit, check=False)
    return proc.stdout.decode("utf-8", "replace").strip() or "unknown"


RECORDED_FILE = "recorded"  # <xp dir>/recorded: run commits this clone wrote, one a line


def note_recorded(repo: GitRepo, commit: str) -> None:
    """Remember that this clone wrote ``commit`` (``xp reproduce`` runs the recorded command
    of such runs without asking). Noted before the ref exists, so a recorded run is always
    listed; a failure to note only means a question later."""
    with contextlib.suppress(OSError):
        repo.xp_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(
            repo.xp_dir / RECORDED_FILE,
            os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC,
            0o644,
        )
        try:
            os.write(fd, f"{commit}\n".encode())
        finally:
            os.close(fd)


def recorded_here(repo: GitRepo, commit: str) -> bool:
    """Whether this clone wrote the run commit ``commit`` (``note_recorded``)."""
    try:
        data = (repo.xp_dir / RECORDED_FILE).read_bytes()
    except OSError:
        return False
    return len(commit) == 40 and f"\n{commit}\n".encode() in b"\n" + data
