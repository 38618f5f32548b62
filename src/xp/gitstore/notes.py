"""git notes on run commits: read them (any fan-out), append to them, merge them.

Notes live in ``refs/notes/xp``; copies fetched from a remote in
``refs/xp/remotes/<remote>/notes``. Writing is xp's own commit on the notes ref (the
parent's tree with one note added or replaced, compare-and-swap on the ref, like every xp
ref update; ``git notes add`` moves the ref without checking it did not move meanwhile).
Merging is git's own ``git notes merge -s cat_sort_uniq``, run on a temporary notes ref so
the result lands by compare-and-swap too.

A notes tree names each annotated object by its path with the slashes taken out; git fans
it out (``ab/cdef...``, ``ab/cd/ef...``) as it grows, so readers accept any fan-out.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from xp import format as fmt
from xp.errors import GitError, RefChangedError
from xp.gitstore import catfile, chains
from xp.gitstore.refs import delete_ref, read_ref, update_ref
from xp.gitstore.repo import GitRepo

_HEX = set("0123456789abcdef")


@dataclass(frozen=True)
class NoteBlob:
    commit: str  # the annotated object
    blob: str
    size: int


def _is_notes_ref(name: str) -> bool:
    """``refs/notes/xp`` or a fetched copy ``refs/xp/remotes/<remote>/notes``."""
    if name == fmt.NOTES_REF:
        return True
    return name.startswith(fmt.REMOTES_PREFIX) and name.endswith("/notes") and name.count("/") == 4


def _read_loose(path: Path) -> str | None:
    try:
        content = path.read_bytes().strip()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None
    return content.decode("ascii") if len(content) == 40 else None


def tips(repo: GitRepo) -> dict[str, str]:
    """Every notes ref xp reads -> its tip: the local one and the fetched ones. Looks only
    where those refs can be (no walk of the fetched runs), so the index can ask every call."""
    common = repo.common_dir
    out: dict[str, str] = {}
    try:
        packed = (common / "packed-refs").read_bytes()
    except FileNotFoundError:
        packed = b""
    if b"notes" in packed:
        for line in packed.split(b"\n"):
            if line.endswith(b"/notes") or line.endswith(b"/xp"):
                hexsha, _, raw = line.partition(b" ")
                name = raw.decode("utf-8", "surrogateescape")
                if _is_notes_ref(name) and len(hexsha) == 40:
                    out[name] = hexsha.decode("ascii")
    local = _read_loose(common / fmt.NOTES_REF)
    if local:
        out[fmt.NOTES_REF] = local
    try:
        remotes = os.listdir(common / fmt.REMOTES_PREFIX)
    except OSError:
        remotes = []
    for remote in remotes:
        sha = _read_loose(common / fmt.REMOTES_PREFIX / remote / "notes")
        if sha:
            out[f"{fmt.REMOTES_PREFIX}{remote}/notes"] = sha
    return out


def fetched_refs(repo: GitRepo) -> dict[str, str]:
    """Notes refs fetched from remotes (and bundles): ref -> tip."""
    return {ref: sha for ref, sha in tips(repo).items() if ref != fmt.NOTES_REF}


def _paths(commit: str) -> list[str]:
    """Where a note on ``commit`` can be in a notes tree (fan-out 0 to 3 levels)."""
    return [
        "/".join([commit[2 * i : 2 * i + 2] for i in range(level)] + [commit[2 * level :]])
        for level in range(4)
    ]


def listing(repo: GitRepo, tip: str) -> list[NoteBlob]:
    """Every note under the notes commit ``tip`` (annotated object, blob, size)."""
    proc = repo.git("ls-tree", "-r", "-z", "--long", tip, check=False)
    if proc.returncode != 0:
        raise GitError(f"cannot read notes at {tip[:12]}: not a notes commit")
    out = []
    for entry in proc.stdout.split(b"\0"):
        meta, _, path = entry.partition(b"\t")
        fields = meta.split()
        if len(fields) != 4 or fields[1] != b"blob" or not fields[3].isdigit():
            continue
        name = path.decode("utf-8", "replace").replace("/", "")
        if len(name) == 40 and set(name) <= _HEX:
            out.append(NoteBlob(name, fields[2].decode(), int(fields[3])))
    return out


def changed(repo: GitRepo, old: str, new: str) -> set[str]:
    """Objects whose note differs between notes commits ``old`` and ``new``."""
    proc = repo.git("diff-tree", "-r", "-z", "--no-renames", "--name-only", old, new, check=False)
    if proc.returncode != 0:
        raise GitError(f"cannot compare notes {old[:12]} and {new[:12]}")
    names = (p.decode("utf-8", "replace").replace("/", "") for p in proc.stdout.split(b"\0"))
    return {n for n in names if len(n) == 40 and set(n) <= _HEX}


def read(repo: GitRepo, tip: str, commits: list[str], max_bytes: int) -> dict[str, bytes | None]:
    """The note on each of ``commits`` under ``tip`` (absent ones left out; one larger than
    ``max_bytes`` is None: someone else's data, not read)."""
    names = [f"{tip}:{p}" for c in commits for p in _paths(c)]
    found: dict[str, str] = {}
    proc = repo.git(
        "cat-file",
        "--batch-check=%(objectname) %(objecttype) %(objectsize)",
        input="".join(f"{n}\n" for n in names).encode(),
    )
    sizes: dict[str, int] = {}
    for name, line in zip(names, proc.stdout.decode().splitlines(), strict=False):
        fields = line.split()
        if len(fields) == 3 and fields[1] == "blob":
            commit = name.split(":", 1)[1].replace("/", "")
            found.setdefault(commit, fields[0])
            sizes[fields[0]] = int(fields[2])
    out: dict[str, bytes | None] = {c: None for c, b in found.items() if sizes[b] > max_bytes}
    wanted = {c: b for c, b in found.items() if sizes[b] <= max_bytes}
    blobs = dict(catfile.read_objects(repo, sorted(set(wanted.values()))))
    for commit, blob in wanted.items():
        out[commit] = blobs.get(blob)
    return out


def blobs(repo: GitRepo, shas: list[str]) -> dict[str, bytes]:
    return chains.blobs(repo, shas)


@dataclass(frozen=True)
class Appended:
    commit: str  # the new notes commit
    note: bytes  # the note on the annotated object now


def append(
    repo: GitRepo, *, commit: str, lines: list[str], message: str, max_bytes: int
) -> Appended:
    """Add ``lines`` to the note on ``commit`` in ``refs/notes/xp``. Retries when another
    writer moved the ref meanwhile (compare-and-swap)."""
    for _attempt in range(20):
        tip = read_ref(repo.common_dir, fmt.NOTES_REF)
        if tip is not None and not is_commit(repo, tip):
            raise GitError(
                f"{fmt.NOTES_REF} points at {tip[:12]}, which is not a commit; move it back"
                f" (git reflog {fmt.NOTES_REF}) or delete it (git update-ref -d {fmt.NOTES_REF})"
            )
        path = _paths(commit)[1]
        old = b""
        if tip is not None:
            for candidate in _paths(commit):
                sha = _entry(repo, tip, candidate)
                if sha is not None:
                    path = candidate
                    data = chains.read_blob(repo, sha)
                    old = data if len(data) <= max_bytes else b""
                    break
        body = old if not old or old.endswith(b"\n") else old + b"\n"
        body += "".join(f"{ln}\n" for ln in lines).encode("utf-8")
        try:
            written = chains.write(
                repo,
                fmt.NOTES_REF,
                parent=tip,
                expected=tip,
                files={path: body},
                message=message,
            )
        except RefChangedError:
            continue
        return Appended(written.commit, body)
    raise RefChangedError(f"{fmt.NOTES_REF} kept moving while xp wrote to it; retry")


def _entry(repo: GitRepo, tip: str, path: str) -> str | None:
    tree = chains.commit_tree(repo, tip)
    folder, _, name = path.rpartition("/")
    entry = chains.tree_entries(repo, tree, folder).get(name)
    return entry[1] if entry is not None and entry[0] & 0o170000 == 0o100000 else None


def is_ancestor(repo: GitRepo, ancestor: str, commit: str) -> bool:
    return repo.git("merge-base", "--is-ancestor", ancestor, commit, check=False).returncode == 0


def is_commit(repo: GitRepo, sha: str) -> bool:
    kind = chains.loose_type(repo, sha)  # every `xp tag` asks of the notes tip: no process
    if kind is not None:
        return kind == b"commit"
    proc = repo.git("cat-file", "-t", sha, check=False)
    return proc.returncode == 0 and proc.stdout.strip() == b"commit"


def merge(repo: GitRepo, theirs: str) -> str:
    """Merge the notes commit ``theirs`` into ``refs/notes/xp`` with ``cat_sort_uniq``:
    what either side wrote stays. Returns what happened: up to date, fast-forward, merged."""
    if not is_commit(repo, theirs):
        raise GitError(f"{theirs[:12]} is not a commit, so not a notes history")
    for _attempt in range(20):
        ours = read_ref(repo.common_dir, fmt.NOTES_REF)
        try:
            if ours is None or is_ancestor(repo, ours, theirs):
                if ours == theirs:
                    return "up to date"
                update_ref(repo.common_dir, fmt.NOTES_REF, theirs, ours)
                return "fast-forward"
            if is_ancestor(repo, theirs, ours):
                return "up to date"
            merged = _merge_commit(repo, ours, theirs)
            update_ref(repo.common_dir, fmt.NOTES_REF, merged, ours)
            return "merged"
        except RefChangedError:
            continue
    raise RefChangedError(f"{fmt.NOTES_REF} kept moving while xp merged into it; retry")


def _merge_commit(repo: GitRepo, ours: str, theirs: str) -> str:
    """git's own notes merge, on a throwaway notes ref that starts at ``ours``."""
    tmp = f"refs/notes/tmp-xp-merge-{os.urandom(6).hex()}"  # outside the push glob xp*
    update_ref(repo.common_dir, tmp, ours, None)
    try:
        args = ("notes", f"--ref={tmp}", "merge", "-q", "-s", "cat_sort_uniq", theirs)
        proc = repo.git(*args, check=False)
        if proc.returncode != 0:
            from xp.gitstore.repo import git_failure

            raise git_failure(args, proc, "the fetched notes are not a notes history; skip them")
        merged = read_ref(repo.common_dir, tmp)
        assert merged is not None
        return merged
    finally:
        current = read_ref(repo.common_dir, tmp)
        if current is not None:
            delete_ref(repo.common_dir, tmp, current)
        (repo.common_dir / "logs" / tmp).unlink(missing_ok=True)  # git logged the merge there
