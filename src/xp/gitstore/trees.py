"""Reading trees: a path's object below a commit, the paths of a commit, tree diffs, and
the record folder of a run commit.

The record reader uses dulwich's object store directly (loose and packed objects, no
subprocess), which is the fastest way to read one run; bulk reads use ``catfile``.
"""

from __future__ import annotations

import stat
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from xp.gitstore.objects import object_store
from xp.gitstore.repo import GitRepo

if TYPE_CHECKING:
    from dulwich.objects import ObjectID, ShaFile
else:
    ObjectID = bytes  # dulwich's is a NewType of bytes: `xp commit` need not import dulwich


@dataclass(frozen=True)
class FileDiff:
    """One file changed between two trees."""

    path: str
    status: str  # added, removed, changed (git's A, D, M; T counts as changed)
    added: int | None  # lines; None for binary files
    removed: int | None


def rev_parse_commit(repo: GitRepo, spec: str) -> str | None:
    """The commit ``spec`` names (branch, tag, sha, ``HEAD~2``...), or None."""
    proc = repo.git(
        "rev-parse", "--verify", "-q", "--end-of-options", f"{spec}^{{commit}}", check=False
    )
    out = proc.stdout.decode().strip()
    return out if proc.returncode == 0 and len(out) == 40 else None


def paths(repo: GitRepo, commit: str) -> set[str]:
    """Every file path in ``commit``'s tree."""
    out = repo.git("ls-tree", "-r", "-z", "--name-only", commit).stdout
    return {p.decode("utf-8", "surrogateescape") for p in out.split(b"\0") if p}


def symlinks(repo: GitRepo, commit: str) -> set[str]:
    """Paths in ``commit``'s tree that are symlinks (mode 120000)."""
    out = repo.git("ls-tree", "-r", "-z", commit).stdout
    found = set()
    for entry in out.split(b"\0"):
        meta, _, name = entry.partition(b"\t")
        if meta.startswith(b"120000 "):
            found.add(name.decode("utf-8", "surrogateescape"))
    return found


def patch(repo: GitRepo, tree_a: str, tree_b: str, *, exclude: str) -> str:
    """The unified diff between two trees, ``exclude`` (a top-level folder) left out."""
    proc = repo.git("diff", "--no-color", tree_a, tree_b, "--", ".", f":(exclude,top){exclude}")
    return proc.stdout.decode("utf-8", "replace")


def changed_files(repo: GitRepo, tree_a: str, tree_b: str, *, exclude: str) -> list[FileDiff]:
    """Files that differ between two trees with their line counts, sorted by path."""
    if tree_a == tree_b:
        return []
    spec = ("--", ".", f":(exclude,top){exclude}")
    names = repo.git("diff", "--no-renames", "--name-status", "-z", tree_a, tree_b, *spec)
    counts = repo.git("diff", "--no-renames", "--numstat", "-z", tree_a, tree_b, *spec)
    status_of: dict[str, str] = {}
    parts = names.stdout.decode("utf-8", "surrogateescape").split("\0")
    for code, path in zip(parts[0::2], parts[1::2], strict=False):
        if path:
            status_of[path] = {"A": "added", "D": "removed"}.get(code[:1], "changed")
    out = []
    for entry in counts.stdout.decode("utf-8", "surrogateescape").split("\0"):
        if not entry:
            continue
        added, removed, path = entry.split("\t", 2)
        out.append(
            FileDiff(
                path,
                status_of.get(path, "changed"),
                None if added == "-" else int(added),
                None if removed == "-" else int(removed),
            )
        )
    return sorted(out, key=lambda c: c.path)


@dataclass(frozen=True)
class FolderReader:
    """Files below one folder of a commit's tree: ``read('a/b.tsv')`` -> bytes or None."""

    read: Callable[[str], bytes | None]
    files: Callable[[str], list[str]]  # paths (relative) of every file below a subfolder
    close: Callable[[], None]  # the object store's open packs


def read_folder(repo: GitRepo, commit: str, folder: str) -> FolderReader | None:
    """A reader for ``folder`` in ``commit``'s tree, or None when the commit has no such folder.

    Files are read when asked (a crafted record may hold 100,000 series: ``files`` lists
    them from one parsed tree, and the reader checks the count before reading any); the
    caller calls ``close`` when done, which closes the object store's open pack files."""
    from dulwich.object_store import DiskObjectStore
    from dulwich.objects import Commit

    store = DiskObjectStore(str(repo.objects_dir))
    trees: dict[bytes, ShaFile] = {}  # parsed once: a folder of 10,000 series is one tree

    def get(sha: bytes) -> ShaFile:
        obj = trees.get(sha)
        if obj is None:
            obj = store[ObjectID(sha)]
            if obj.type_name == b"tree":
                trees[sha] = obj
        return obj

    try:
        obj = get(commit.encode())
        top = _lookup(get, obj.tree, folder) if isinstance(obj, Commit) else None
    except KeyError:
        top = None
    if top is None:
        store.close()
        return None

    def read(name: str) -> bytes | None:
        sha = _lookup(get, top, name)
        if sha is None:
            return None
        blob = store[ObjectID(sha)]
        return None if blob.type_name != b"blob" else blob.as_raw_string()

    def files(sub: str) -> list[str]:
        sha = _lookup(get, top, sub)
        return _walk(get, sha) if sha is not None else []

    return FolderReader(read, files, store.close)


def read_file(repo: GitRepo, commit: str, path: str) -> bytes | None:
    """The bytes of the file at ``path`` in ``commit``'s tree, or None when there is none;
    from the object store this thread keeps open for the repository (``objects.object_store``,
    closed at exit): an import reads one small file per run, thousands of times."""
    from dulwich.objects import Commit

    store = object_store(repo.objects_dir)

    def get(sha: bytes) -> ShaFile:
        return store[ObjectID(sha)]

    try:
        obj = get(commit.encode())
        if not isinstance(obj, Commit):
            return None
        sha = _lookup(get, obj.tree, path)
        if sha is None:
            return None
        blob = get(sha)
    except KeyError:
        return None
    return None if blob.type_name != b"blob" else blob.as_raw_string()


class FolderFiles:
    """The files of ``folder`` in ``commit``'s tree, for a record read lazily, one series at
    a time, possibly from several threads. The trees are parsed once for every read (a record
    of 10,000 series is one tree, not 10,000 parses of it), and objects come from the reading
    thread's kept object store (``objects.object_store``), so nothing is left open between
    reads."""

    def __init__(self, repo: GitRepo, commit: str, folder: str) -> None:
        self._repo, self._commit, self._folder = repo, commit, folder
        self._trees: dict[bytes, ShaFile] = {}

    def _get(self, sha: bytes) -> ShaFile:
        obj = self._trees.get(sha)
        if obj is None:
            obj = object_store(self._repo.objects_dir)[ObjectID(sha)]
            if obj.type_name in (b"tree", b"commit"):
                self._trees[sha] = obj
        return obj

    def locate(self, name: str) -> str | None:
        """The object id of ``folder/name``, or None: for a big file streamed by git."""
        from dulwich.objects import Commit

        try:
            top = self._get(self._commit.encode())
            if not isinstance(top, Commit):
                return None
            sha = _lookup(self._get, top.tree, f"{self._folder}/{name}")
        except KeyError:
            return None
        return None if sha is None else sha.decode()

    def listing(self, sub: str) -> dict[str, str]:
        """{name: object id} of the entries of ``folder/sub`` ({} when there is none)."""
        from dulwich.objects import Commit, Tree

        try:
            top = self._get(self._commit.encode())
            if not isinstance(top, Commit):
                return {}
            sha = _lookup(self._get, top.tree, f"{self._folder}/{sub}")
            tree = None if sha is None else self._get(sha)
        except KeyError:
            return {}
        if not isinstance(tree, Tree):
            return {}
        return {e.path.decode("utf-8", "surrogateescape"): e.sha.decode() for e in tree.items()}

    def read(self, name: str) -> bytes | None:
        """The bytes of ``folder/name``, or None."""
        sha = self.locate(name)
        if sha is None:
            return None
        try:
            blob = object_store(self._repo.objects_dir)[ObjectID(sha.encode())]
        except KeyError:
            return None
        return None if blob.type_name != b"blob" else blob.as_raw_string()


def folder_file_reader(repo: GitRepo, commit: str, folder: str) -> Callable[[str], bytes | None]:
    """``read(name)`` -> the bytes of ``folder/name`` in ``commit``'s tree, or None."""
    return FolderFiles(repo, commit, folder).read


def _lookup(get: Callable[[bytes], ShaFile], tree_id: bytes, path: str) -> bytes | None:
    """The id of the object at ``path`` below ``tree_id``, or None."""
    from dulwich.objects import Tree

    current = tree_id
    for part in path.split("/"):
        tree = get(current)
        if not isinstance(tree, Tree):
            return None
        try:
            _mode, current = tree[part.encode()]
        except KeyError:
            return None
    return current


def _walk(get: Callable[[bytes], ShaFile], tree_id: bytes, prefix: str = "") -> list[str]:
    from dulwich.objects import Tree

    out: list[str] = []
    tree = get(tree_id)
    if not isinstance(tree, Tree):
        return out
    for item in tree.items():
        name = item.path.decode("utf-8", "surrogateescape")
        if stat.S_ISDIR(item.mode):
            out += _walk(get, item.sha, f"{prefix}{name}/")
        else:
            out.append(prefix + name)
    return out


@dataclass(frozen=True)
class TreeCheck:
    """What ``rehash_tree`` found."""

    objects: int  # trees and blobs re-hashed
    bad: tuple[str, ...]  # paths whose object is missing or does not hash to its name


def rehash_tree(repo: GitRepo, tree: str) -> TreeCheck:
    """Re-hash every tree and blob below ``tree`` the way git names objects (sha1 of
    ``<type> <size>\\0<bytes>``), so a changed byte anywhere under a signed commit shows."""
    import hashlib

    from xp.gitstore.catfile import read_objects

    out = repo.git("ls-tree", "-r", "-t", "-z", "--full-tree", tree).stdout
    wanted: dict[str, tuple[str, str]] = {tree: ("tree", ".")}
    for entry in out.split(b"\0"):
        if not entry:
            continue
        meta, _, raw_path = entry.partition(b"\t")
        _mode, kind, sha = meta.decode().split(" ")
        if kind in ("tree", "blob"):
            wanted.setdefault(sha, (kind, raw_path.decode("utf-8", "surrogateescape")))
    bad: list[str] = []
    for sha, data in read_objects(repo, list(wanted)):
        kind, path = wanted[sha]
        if data is None:
            bad.append(path)
            continue
        header = f"{kind} {len(data)}\0".encode()
        if hashlib.sha1(header + data).hexdigest() != sha:
            bad.append(path)
    return TreeCheck(len(wanted), tuple(sorted(bad)))
