"""The second process of a big index build: it reads and stores the records of the commits
it is given on stdin while the first process does the other half.

A fresh clone of 100,000 runs means 400,000 small files to read and parse; git reads them
on one core and Python parses them on the other, so two readers keep both cores busy, and
SQLite's write lock (one short transaction per batch) lets both store rows into the same
file. A fresh clone of a catalog remote is read from the buckets' run summaries instead, half
the buckets here. Started by ``Index.sync`` as ``python -m xp.query.index.build``; not a command.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from xp.gitstore.repo import GitRepo
from xp.query.index.rows import iter_rows
from xp.query.index.store import Index


def main(argv: list[str]) -> int:
    """argv: [--summaries] index file, work tree, git dir, common dir; stdin: ``<commit> <run
    id>`` lines (records), or with ``--summaries`` a JSON object ``{"summaries": {bucket ref:
    [summary blob, {run id: commit}]}, "wanted": {commit: run id}}`` (the fetched buckets'
    run summaries; what was ignored in them is printed, one line each)."""
    summaries = argv[:1] == ["--summaries"]
    index_path, worktree, git_dir, common_dir = argv[1:] if summaries else argv
    repo = GitRepo(Path(worktree), Path(git_dir), Path(common_dir))
    with Index(repo, Path(index_path)) as index:
        if summaries:
            job = json.loads(sys.stdin.buffer.read())
            buckets = {ref: (sha, entries) for ref, (sha, entries) in job["summaries"].items()}
            index.store(index.summarized(buckets, job["wanted"]), whole=True)
            sys.stdout.write("".join(f"{line}\n" for line in index.skipped))
            return 0
        wanted = dict(line.split(" ", 1) for line in sys.stdin.read().splitlines() if line)
        index.store(iter_rows(repo, wanted))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
