"""The run catalog: a git remote's runs under a bounded set of refs (format 2).

A remote holds ``refs/xp/catalog/<bb>`` (256 buckets, ``format.bucket_of``), each a commit
whose tree has one gitlink (mode 160000) per run, named by the run id and pointing at the
run's tip; its parents are the previous bucket tip plus every run tip it added or moved, so
the remote keeps every run reachable (``git gc`` keeps them; a fetch of the bucket brings
them). A clone fetches the buckets to ``refs/xp/remotes/<remote>/catalog/<bb>``. With 100k
runs the remote advertises 256 refs instead of 100k: that is what makes git's push (which has
no protocol v2) and protocol-v0 fetches cheap for everyone, xp user or not.

Fetched buckets are untrusted: an entry that is not a gitlink, whose name is not a run id,
or that sits in the wrong bucket is skipped and said in ``Bucket.skipped``; a bucket tree
over ``MAX_TREE_BYTES`` is not read at all. Nothing read here is ever written outside the
object store and refs/xp/.

Runs listed by a fetched bucket are shown to callers as the fetched copies they stand for
(``RunRef(id, remote)`` = ``refs/xp/remotes/<remote>/runs/<id>``), as the per-run refs of
format 1 were, so resolution, the index, ``xp get`` and the rest see one kind of remote run.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from xp import format as fmt
from xp.gitstore import catfile
from xp.gitstore.identity import identity
from xp.gitstore.objects import ObjectWriter, RawObject, tree_body, zone
from xp.gitstore.refs import PackedRefs, _read_loose, read_ref
from xp.gitstore.repo import GitRepo

GITLINK = 0o160000
# 100k runs over 256 buckets is ~400 entries (~25 kB) a bucket; a tree a thousand times that
# is not one xp wrote, and is not parsed.
MAX_TREE_BYTES = 32 << 20
_MARK = "/catalog/"
# The bucket's run summary (``query.index.summary``): a blob beside the gitlinks, read by the
# index of a fresh clone instead of every run's record. Not a run entry: never warned about.
SUMMARY_NAME = ".xp-index"
SUMMARY_HEADER = b"xp-run-summary 1\n"  # its first line (version 1)
SUMMARY_MAX_BYTES = 64 << 20  # 100k runs: ~40 MB over 256 buckets
# What all the summaries one index update decodes may take (a process; a fresh clone's two
# take twice): their rows are held in memory, ~5x the text. A hostile catalog of 256 big
# blobs would otherwise cost gigabytes; past it, runs are read from their records.
SUMMARIES_BUDGET = 128 << 20
BLOB = 0o100644


@dataclass
class Bucket:
    """One bucket commit as read: its run entries and what was left out."""

    tip: str
    tree: str | None = None
    entries: dict[str, str] = field(default_factory=dict)  # run id -> tip commit
    skipped: list[str] = field(default_factory=list)  # why entries (or the bucket) were skipped
    summary: str | None = None  # the blob of its run summary (SUMMARY_NAME), if it has one


def bucket_ref(bucket: str, remote: str | None = None) -> str:
    return fmt.catalog_prefix(remote) + bucket


def _valid_bucket(name: str) -> bool:
    return len(name) == 2 and all(c in "0123456789abcdef" for c in name)


def tracking_buckets(common_dir: Path) -> dict[str, str]:
    """Every fetched bucket ref (``refs/xp/remotes/<remote>/catalog/<bb>``): name -> tip.

    Found without listing any remote's ``runs`` folder (format 1 copies, maybe 100k files)
    nor reading its slice of packed-refs: one jump over each such slice."""
    out: dict[str, str] = {}
    with PackedRefs(common_dir) as packed:
        out.update(packed.beside_runs(fmt.REMOTES_PREFIX, _is_tracking))
    stack = [fmt.REMOTES_PREFIX.rstrip("/")]
    while stack:
        path = stack.pop()
        try:
            entries = list(os.scandir(common_dir / path))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            if not entry.is_dir(follow_symlinks=False):
                continue
            sub = f"{path}/{entry.name}"
            if entry.name == "catalog":
                for ref in os.scandir(entry.path):
                    ref_name = f"{sub}/{ref.name}"
                    if _is_tracking(ref_name) and ref.is_file(follow_symlinks=False):
                        sha = _read_loose(ref.path)
                        if sha is not None:
                            out[ref_name] = sha
            elif entry.name != "runs":
                stack.append(sub)
    return out


def _is_tracking(name: str) -> bool:
    if not name.startswith(fmt.REMOTES_PREFIX):
        return False
    remote, sep, bucket = name[len(fmt.REMOTES_PREFIX) :].rpartition(_MARK)
    return bool(sep and remote and _valid_bucket(bucket))


def split_tracking(name: str) -> tuple[str, str]:
    """(remote, bucket) of a fetched bucket ref."""
    remote, _sep, bucket = name[len(fmt.REMOTES_PREFIX) :].rpartition(_MARK)
    return remote, bucket


# (repository, bucket commit, bucket filter) -> its entries, read whole: a commit and its tree
# never change, so a process that reads the same tips twice (``xp push``: which runs the
# remote lists, then ``publish``'s own read after its ls-remote) parses them once.
_clean: dict[tuple[str, str, str], tuple[str | None, dict[str, str], str | None]] = {}


def read_buckets(repo: GitRepo, tips: Mapping[str, str]) -> dict[str, Bucket]:
    """Read bucket commits ``tips`` (key -> commit): two ``git cat-file --batch`` rounds
    however many buckets, none for those this process already read whole. Keys ending in
    ``/<bb>`` keep only entries of bucket ``bb``."""
    where = str(repo.common_dir)
    out: dict[str, Bucket] = {}
    todo: dict[str, str] = {}
    for key, tip in tips.items():
        hit = _clean.get((where, tip, key.rpartition("/")[2]))
        if hit is None:
            todo[key] = tip
        else:
            out[key] = Bucket(tip, hit[0], dict(hit[1]), summary=hit[2])
    for key, bucket in _read_buckets(repo, todo).items() if todo else ():
        out[key] = bucket
        if not bucket.skipped:  # a missing object may be fetched later: read it again then
            if len(_clean) > 512:  # two catalogs of 256 buckets: bounded in `xp ui`
                _clean.clear()
            _clean[(where, bucket.tip, key.rpartition("/")[2])] = (
                bucket.tree,
                dict(bucket.entries),
                bucket.summary,
            )
    return {key: out[key] for key in tips}


def _read_buckets(repo: GitRepo, tips: Mapping[str, str]) -> dict[str, Bucket]:
    out = {key: Bucket(tip) for key, tip in tips.items()}
    wanted = sorted(set(tips.values()))
    trees: dict[str, str] = {}
    sizes = catfile.sizes(repo, wanted)
    small = [s for s in wanted if sizes.get(s, 1 << 40) < 1 << 24]  # a commit, not a blob
    for sha, body in catfile.read_objects(repo, small):
        if body is not None and body.startswith(b"tree ") and len(body) >= 45:
            trees[sha] = body[5:45].decode("ascii", "replace")
    tree_ids = sorted(set(trees.values()))
    tree_sizes = catfile.sizes(repo, tree_ids)
    readable = [t for t in tree_ids if tree_sizes.get(t, 1 << 40) <= MAX_TREE_BYTES]
    bodies = dict(catfile.read_objects(repo, readable))
    for key, bucket in out.items():
        tree = trees.get(bucket.tip)
        if tree is None:
            bucket.skipped.append(f"{key}: {bucket.tip[:12]} is not a commit here")
            continue
        bucket.tree = tree
        body = bodies.get(tree)
        if body is None:
            size = tree_sizes.get(tree)
            why = "missing" if size is None else f"{size} bytes, over {MAX_TREE_BYTES}"
            bucket.skipped.append(f"{key}: tree {tree[:12]} not read ({why})")
            continue
        want = key.rpartition("/")[2]
        try:
            entries = catfile.parse_tree(body)
        except (ValueError, IndexError):
            bucket.skipped.append(f"{key}: tree {tree[:12]} is damaged")
            continue
        checked = _valid_bucket(want)  # once per bucket, not per entry (100k in a clone)
        for name, (mode, sha) in entries.items():
            if name == SUMMARY_NAME and mode == BLOB:
                bucket.summary = sha
            elif mode != GITLINK:
                bucket.skipped.append(f"{key}: {name!r} is not a run entry (mode {mode:o})")
            elif not fmt.is_run_id(name):
                bucket.skipped.append(f"{key}: {name!r} is not a run id")
            elif checked and fmt.bucket_of(name) != want:
                bucket.skipped.append(f"{key}: run {name} belongs in bucket {fmt.bucket_of(name)}")
            else:
                bucket.entries[name] = sha
    return out


def listed_estimate(repo: GitRepo, tips: Mapping[str, str]) -> int:
    """About how many runs buckets ``tips`` list, from their trees' sizes alone (one ``git
    cat-file --batch-check``, nothing read): a gitlink entry is ~42 bytes."""
    sizes = catfile.sizes_of(repo, [f"{tip}^{{tree}}" for tip in tips.values()])
    return sum(size for size in sizes if size is not None) // 42


def read_summaries(
    repo: GitRepo, shas: Iterable[str], budget: int | None = None
) -> dict[str, bytes]:
    """The run summary blobs ``shas`` (sha -> content); one over ``SUMMARY_MAX_BYTES``,
    missing, or past ``budget`` bytes for all of them is left out (its bucket's runs are read
    from their records, a batch at a time)."""
    wanted = sorted(set(shas))
    if not wanted:
        return {}
    sizes = catfile.sizes(repo, wanted)
    small = [s for s in wanted if sizes.get(s, 1 << 62) <= SUMMARY_MAX_BYTES]
    if budget is not None:
        kept: list[str] = []
        for sha in small:
            if sizes[sha] <= budget:
                budget -= sizes[sha]
                kept.append(sha)
        small = kept
    return {sha: body for sha, body in catfile.read_objects(repo, small) if body is not None}


def without_runs(summary: bytes, run_ids: Iterable[str]) -> bytes:
    """``summary`` without the lines of ``run_ids`` (each line is a JSON array that starts
    with its run id), for a bucket that drops them."""
    gone = tuple(b'["%s",' % i.encode() for i in run_ids)
    return b"\n".join(line for line in summary.split(b"\n") if not line.startswith(gone))


def present(repo: GitRepo, shas: Iterable[str]) -> set[str]:
    """The commits among ``shas`` this repository has (a bucket may name what it lacks)."""
    types = catfile.object_types(repo, sorted(set(shas)))
    return {sha for sha, kind in types.items() if kind == "commit"}


def remote_runs(repo: GitRepo, tips: Mapping[str, str] | None = None) -> dict[str, str]:
    """Every run the fetched buckets list, as the fetched-copy ref it stands for
    (``refs/xp/remotes/<remote>/runs/<id>``) -> tip; entries whose commit is missing here
    are left out."""
    return listing(repo, tips)[0]


def listing(
    repo: GitRepo, tips: Mapping[str, str] | None = None
) -> tuple[dict[str, str], list[str]]:
    """``remote_runs``, and why entries were skipped (hostile or damaged buckets, commits
    missing here)."""
    if tips is None:
        tips = tracking_buckets(repo.common_dir)
    if not tips:
        return {}, []
    out: dict[str, str] = {}
    skipped: list[str] = []
    for key, bucket in read_buckets(repo, tips).items():
        remote, _b = split_tracking(key)
        skipped += bucket.skipped
        for run_id, sha in bucket.entries.items():
            out[str(fmt.RunRef(run_id, remote))] = sha
    have = present(repo, out.values())
    skipped += [
        f"{ref}: commit {sha[:12]} is not here" for ref, sha in out.items() if sha not in have
    ]
    return {ref: sha for ref, sha in out.items() if sha in have}, skipped


def find(repo: GitRepo, run_id: str) -> dict[str, str]:
    """The fetched buckets' entries for ``run_id``: copy ref -> tip (one bucket per remote)."""
    if not fmt.is_run_id(run_id):
        return {}
    bucket = fmt.bucket_of(run_id)
    tips = {
        name: sha
        for name, sha in tracking_buckets(repo.common_dir).items()
        if split_tracking(name)[1] == bucket
    }
    found = {}
    for key, read in read_buckets(repo, tips).items() if tips else ():
        sha = read.entries.get(run_id)
        if sha is not None:
            found[str(fmt.RunRef(run_id, split_tracking(key)[0]))] = sha
    have = present(repo, found.values())
    return {ref: sha for ref, sha in found.items() if sha in have}


def commit_dates(repo: GitRepo, shas: Iterable[str]) -> dict[str, int]:
    """Committer dates (Unix seconds) of the commits among ``shas``: one ``git cat-file``
    round; objects that are not small commits, or whose date does not parse, are left out."""
    wanted = sorted(set(shas))
    sizes = catfile.sizes(repo, wanted) if wanted else {}
    small = [s for s in wanted if sizes.get(s, 1 << 40) < 1 << 20]
    out: dict[str, int] = {}
    for sha, body in catfile.read_objects(repo, small):
        if body is None or not body.startswith(b"tree "):
            continue
        head = body.partition(b"\n\n")[0]
        for line in head.split(b"\n"):
            if line.startswith(b"committer "):
                fields = line.rsplit(b" ", 2)
                if len(fields) == 3 and fields[1].isdigit() and len(fields[1]) <= 12:
                    out[sha] = int(fields[1])
                break
    return out


def write_bucket(
    repo: GitRepo,
    *,
    entries: Mapping[str, str],
    base: str | None,
    carry: Iterable[str],
    message: str,
    summary: bytes | None = None,
    dates: Mapping[str, int] | None = None,
) -> str:
    """A bucket commit listing ``entries`` (run id -> tip) and ``summary`` as its run summary
    blob, on top of ``base`` (None: a new root), that keeps the run tips ``carry`` reachable;
    its sha. Raw objects (as chains.write
    makes them), no git process but one ``cat-file`` for the parents' dates.

    Git walks commits newest committer date first, inserting each parent into a date-sorted
    list; a commit dated now with hundreds of old parents makes that list long and every walk
    (``gc``, clone, ``rev-list --objects``) quadratic. So no commit has more than
    ``MAX_PARENTS`` parents: the run tips go oldest first into a chain of link commits (the
    tree of the commit before them, so they change no entry), each committed one second after
    its newest parent, and the bucket commit ends the chain. Author date = now (when it was
    published, what ``git log`` shows). ``dates``: the committer dates of ``carry`` and ``base``
    (``commit_dates``) when the caller read them for many buckets at once."""
    carried = [c for c in dict.fromkeys(carry) if c != base]
    wanted = [*carried, *([base] if base else [])]
    if dates is None:
        dates = commit_dates(repo, wanted)
    dates = {c: dates[c] for c in wanted if c in dates}
    carried.sort(key=lambda c: (dates.get(c, 0), c))
    writer = ObjectWriter(repo.objects_dir)
    tree_entries = {name.encode(): (GITLINK, sha.encode()) for name, sha in entries.items()}
    if summary is not None:
        blob = writer.add(RawObject(b"blob", summary))
        tree_entries[SUMMARY_NAME.encode()] = (BLOB, blob)
    tree = writer.add(RawObject(b"tree", tree_body(tree_entries))).decode()
    now = int(time.time())
    who = identity(str(repo.worktree))
    prev_tree: str | None = tree
    if len(carried) > MAX_PARENTS - (base is not None):  # links needed: they keep this tree
        prev_tree = _tree_of(repo, base) if base is not None else None
        prev_tree = prev_tree or writer.add(RawObject(b"tree", b"")).decode()
    tip = base
    while True:
        room = MAX_PARENTS - (tip is not None)
        last = len(carried) <= room
        group, carried = carried[:room], carried[room:]
        parents = ([tip] if tip is not None else []) + group
        known = [dates[p] for p in parents if p in dates]
        committed = min(max(known) + 1, _LATEST) if known else now
        text = b"tree %s\n" % (tree if last else prev_tree or tree).encode()
        text += b"".join(b"parent %s\n" % p.encode() for p in parents)
        text += b"author %s %d %s\n" % (who, now, _zone(now))
        text += b"committer %s %d %s\n\n" % (who, committed, _zone(committed))
        if last:
            text += b"%s\n" % message.encode("utf-8")
        else:
            text += b"xp catalog link: keeps %d more runs reachable\n" % len(group)
        tip = writer.add(RawObject(b"commit", text)).decode()
        dates[tip] = committed
        if last:
            return tip


MAX_PARENTS = 16  # a bucket commit's parents at most (write_bucket says why)
_LATEST = 1 << 34  # year 2514: a run dated later (a hostile one) does not date its bucket past


def _zone(when: int) -> bytes:
    """The local zone at ``when`` (a hostile date past 2038 asks for 2038's)."""
    return zone(time.localtime(min(when, 1 << 31)).tm_gmtoff)


def _tree_of(repo: GitRepo, commit: str) -> str | None:
    for _sha, body in catfile.read_objects(repo, [commit]):
        if body is not None and body.startswith(b"tree ") and len(body) >= 45:
            return body[5:45].decode("ascii", "replace")
    return None


def ancestors(repo: GitRepo, pairs: list[tuple[str, str]]) -> set[tuple[str, str]]:
    """The (old, new) pairs where ``old`` is an ancestor of ``new`` (a run moved forward)."""
    out = set()
    for old, new in pairs:
        proc = repo.git("merge-base", "--is-ancestor", old, new, check=False)
        if proc.returncode == 0:
            out.add((old, new))
    return out


def listed(repo: GitRepo, remote: str, run_ids: Iterable[str]) -> dict[str, str]:
    """run id -> tip of those of ``run_ids`` the fetched buckets of ``remote`` list; reads
    only the buckets they fall in."""
    wanted = {i for i in run_ids if fmt.is_run_id(i)}
    if not wanted:
        return {}
    buckets = {fmt.bucket_of(i) for i in wanted}
    prefix = fmt.catalog_prefix(remote)
    tips = {}
    for bucket in buckets:
        sha = read_ref(repo.common_dir, prefix + bucket)
        if sha is not None:
            tips[prefix + bucket] = sha
    out: dict[str, str] = {}
    for read in read_buckets(repo, tips).values() if tips else ():
        out.update({i: s for i, s in read.entries.items() if i in wanted})
    return out


def forget(repo: GitRepo, run_ids: Iterable[str]) -> list[str]:
    """Drop ``run_ids`` from this clone's fetched buckets (``xp rm`` without ``--remote``: as
    deleting a fetched per-run copy did, until the next fetch brings the remote's bucket back).
    Each bucket moves by compare-and-swap to a local commit listing the rest (whose parents
    keep them reachable here); the copy refs forgotten."""
    from xp.gitstore.refs import delete_refs, update_ref

    wanted = {i for i in run_ids if fmt.is_run_id(i)}
    buckets = {fmt.bucket_of(i) for i in wanted}
    tips = {
        name: sha
        for name, sha in tracking_buckets(repo.common_dir).items()
        if split_tracking(name)[1] in buckets
    }
    forgotten: list[str] = []
    for name, read in (read_buckets(repo, tips) if tips else {}).items():
        gone = sorted(wanted & read.entries.keys())
        if not gone:
            continue
        rest = {i: s for i, s in read.entries.items() if i not in wanted}
        if rest:
            carry = present(repo, rest.values())
            message = f"xp catalog {split_tracking(name)[1]}: -{len(gone)} runs (here only)"
            old = read_summaries(repo, [read.summary]) if read.summary else {}
            summary = old.get(read.summary or "")
            if summary is not None:
                summary = without_runs(summary, gone)
            new = write_bucket(
                repo, entries=rest, base=None, carry=carry, message=message, summary=summary
            )
            update_ref(repo.common_dir, name, new, read.tip)
        else:
            delete_refs(repo.common_dir, {name: read.tip})
        remote = split_tracking(name)[0]
        forgotten += [str(fmt.RunRef(i, remote)) for i in gone]
    return forgotten
