"""Append-only commit chains on one ref each: the storage under monitoring points.

A chain is a ref whose commits each add or rewrite a few small files of the previous
commit's tree. Only one clone ever writes a given chain (the ref is named after it), so
chains move by fast-forward only and `git push` / `git fetch` carry them without conflicts.
Writing holds git's lock on the ref and compares-and-swaps it, like every xp ref update;
reading takes every tip's files below one folder in a few ``git cat-file --batch`` rounds,
however many tips there are.
"""

from __future__ import annotations

import stat
import time
import zlib
from dataclasses import dataclass

from xp.gitstore import catfile
from xp.gitstore.identity import identity
from xp.gitstore.objects import ObjectWriter, RawObject, tree_body, zone
from xp.gitstore.refs import update_ref
from xp.gitstore.repo import GitRepo

Entries = dict[str, tuple[int, str]]  # name -> (mode, hex sha), as catfile.parse_tree gives


@dataclass(frozen=True)
class Written:
    commit: str
    tree: str


_bodies: dict[str, bytes] = {}  # sha -> body: objects never change, and an append reads the
_BODIES_MAX = 512  # same few trees several times (and the next append reads them again)


def _raw(repo: GitRepo, sha: str) -> bytes | None:
    """An object's body: from its loose file when it has one (no subprocess), else cat-file."""
    body = _bodies.get(sha)
    if body is not None:
        return body
    try:
        with open(f"{repo.common_dir}/objects/{sha[:2]}/{sha[2:]}", "rb") as fh:
            raw = zlib.decompress(fh.read())
        body = raw[raw.index(b"\0") + 1 :]
    except FileNotFoundError:
        body = dict(catfile.read_objects(repo, [sha])).get(sha)
        if body is None:
            return None
    if len(_bodies) >= _BODIES_MAX:
        _bodies.clear()
    _bodies[sha] = body
    return body


def loose_type(repo: GitRepo, sha: str) -> bytes | None:
    """The type of ``sha`` (b"commit", b"tree"...) read from its loose object's header with
    no subprocess; None when it is not loose (packed, missing, or not a hex object name)."""
    if len(sha) not in (40, 64) or sha.strip("0123456789abcdef"):
        return None
    try:
        with open(f"{repo.common_dir}/objects/{sha[:2]}/{sha[2:]}", "rb") as fh:
            head = zlib.decompressobj().decompress(fh.read(64), 32)
    except (OSError, zlib.error):
        return None
    kind, space, _ = head.partition(b" ")
    return kind if space else None


def read_blob(repo: GitRepo, sha: str) -> bytes:
    data = _raw(repo, sha)
    return b"" if data is None else data


def commit_tree(repo: GitRepo, commit: str) -> str | None:
    body = _raw(repo, commit)
    if body is None or not body.startswith(b"tree "):
        return None
    return body[5:45].decode()


def commit_message(repo: GitRepo, commit: str) -> str:
    body = _raw(repo, commit) or b""
    _headers, _, message = body.partition(b"\n\n")
    return message.decode("utf-8", "replace")


def tree_entries(repo: GitRepo, tree: str | None, path: str = "") -> Entries:
    """The entries of the folder ``path`` below ``tree`` ({} when there is none)."""
    current = tree
    for part in [p for p in path.split("/") if p]:
        if current is None:
            return {}
        entry = _entries(repo, current).get(part)
        current = entry[1] if entry is not None and stat.S_ISDIR(entry[0]) else None
    return _entries(repo, current) if current is not None else {}


def _entries(repo: GitRepo, tree: str) -> Entries:
    body = _raw(repo, tree)
    return catfile.parse_tree(body) if body is not None else {}


def write(
    repo: GitRepo,
    ref: str,
    *,
    parent: str | None,
    expected: str | None,
    files: dict[str, bytes],
    message: str,
    now: float | None = None,
) -> Written:
    """A commit on ``ref`` whose tree is ``parent``'s with ``files`` added or replaced; the ref
    moves only if it is still at ``expected`` (RefChangedError otherwise: read and retry)."""
    writer = ObjectWriter(repo.objects_dir)
    base = commit_tree(repo, parent) if parent else None
    changes: dict[str, dict[str, bytes | None]] = {}  # folder -> {name: blob id}
    for path, data in files.items():
        blob = writer.add(RawObject(b"blob", data))
        folder, _, name = path.rpartition("/")
        changes.setdefault(folder, {})[name] = blob
        while folder:  # make sure every parent folder is rebuilt
            up, _, sub = folder.rpartition("/")
            changes.setdefault(up, {}).setdefault(sub, None)
            folder = up

    def build(folder: str, old: str | None) -> bytes:
        entries: dict[bytes, tuple[int, bytes]] = {}
        for name, (mode, sha) in (_entries(repo, old) if old else {}).items():
            entries[name.encode("utf-8", "surrogateescape")] = (mode, sha.encode())
        for name, blob in changes.get(folder, {}).items():
            if blob is not None:
                entries[name.encode()] = (0o100644, blob)
                continue
            sub = f"{folder}/{name}" if folder else name
            current = _entries(repo, old).get(name) if old else None
            below = current[1] if current is not None and stat.S_ISDIR(current[0]) else None
            entries[name.encode()] = (stat.S_IFDIR, build(sub, below))
        return writer.add(RawObject(b"tree", tree_body(entries)))

    tree_id = build("", base)
    when = time.time() if now is None else now
    ident = identity(str(repo.worktree))
    stamp = b"%s %d %s" % (ident, int(when), zone(time.localtime(when).tm_gmtoff))
    body = b"tree %s\n" % tree_id
    body += b"parent %s\n" % parent.encode() if parent else b""
    body += b"author %s\ncommitter %s\n\n%s" % (stamp, stamp, message.encode("utf-8"))
    sha = writer.add(RawObject(b"commit", body)).decode()
    update_ref(repo.common_dir, ref, sha, expected)
    _log(repo, ref, expected, sha, ident, when, message.partition("\n")[0])
    return Written(sha, tree_id.decode())


def _log(
    repo: GitRepo, ref: str, old: str | None, new: str, ident: bytes, when: float, subject: str
) -> None:
    """Append to the ref's reflog, as git does. git then logs every later update of the ref
    too (a forced fetch that winds it back included), and `git gc` keeps the logged commits,
    so a chain's commits stay findable (``logged_tips``) whatever moved the ref."""
    path = repo.common_dir / "logs" / ref
    tz = time.localtime(when).tm_gmtoff
    sign, tz = ("-", -tz) if tz < 0 else ("+", tz)
    line = (
        f"{old or '0' * 40} {new} {ident.decode('utf-8', 'replace')} {int(when)}"
        f" {sign}{tz // 3600:02d}{tz % 3600 // 60:02d}\t{subject}\n"
    )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(line)
    except OSError:
        pass  # the reflog is a safety net; the ref itself is the record


def logged_tips(repo: GitRepo, ref: str, subject_prefix: str, tail: int = 8192) -> list[str]:
    """Commits the ref's reflog says xp wrote (the entries whose message starts with
    ``subject_prefix``), newest first, from the last ``tail`` bytes of the log."""
    path = repo.common_dir / "logs" / ref
    try:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(0, size - tail))
            data = fh.read().decode("utf-8", "replace")
    except OSError:
        return []
    out = []
    for line in reversed(data.splitlines()):
        head, _, message = line.partition("\t")
        parts = head.split(" ", 2)
        if len(parts) == 3 and len(parts[1]) == 40 and message.startswith(subject_prefix):
            out.append(parts[1])
    return out


def files_below(repo: GitRepo, roots: dict[str, str], depth: int = 8) -> dict[str, dict[str, str]]:
    """For each key, the files below the folder its ``rev:path`` names: {relpath: blob sha},
    at most ``depth`` folders down (a fetched tree is someone else's data: bounded work).

    One ``git cat-file --batch`` round per folder level, shared by every root, so a hundred
    chain tips cost about as much as one.
    """
    out: dict[str, dict[str, str]] = {key: {} for key in roots}
    if not roots:
        return out
    level: list[tuple[str, str, str]]  # (key, relative folder, object name)
    level = [(key, "", name) for key, name in roots.items()]
    for _level in range(depth + 1):
        if not level:
            break
        names = list(dict.fromkeys(name for _k, _p, name in level))
        bodies = dict(catfile.read_objects(repo, names))
        following: list[tuple[str, str, str]] = []
        for key, folder, name in level:
            body = bodies.get(name)
            if body is None:
                continue
            try:
                entries = catfile.parse_tree(body)
            except (ValueError, IndexError):  # a blob where a folder should be: not ours
                continue
            for entry, (mode, sha) in entries.items():
                rel = f"{folder}{entry}"
                if stat.S_ISDIR(mode):
                    following.append((key, rel + "/", sha))
                elif stat.S_ISREG(mode):
                    out[key][rel] = sha
        level = following
    return out


def blobs(repo: GitRepo, shas: list[str]) -> dict[str, bytes]:
    """Blob contents by sha (one cat-file process; missing ones are left out)."""
    return {
        sha: data
        for sha, data in catfile.read_objects(repo, list(dict.fromkeys(shas)))
        if data is not None
    }
