"""The second process of a big index build: it reads and stores the records of the commits
it is given on stdin while the first process does the other half.

A fresh clone of 100,000 runs means 400,000 small files to read and parse; git reads them
on one core and Python parses them on the other, so two readers keep both cores busy, and
SQLite's write lock (one short transaction per batch) lets both store rows into the same
file. A fresh clone of a catalog remote is read from the buckets' run summaries instead, half
the buckets here (``--catalog``: into a scratch file of its own, which the first process copies
in; ``--summaries``: a later fetch's many new runs, into the index). Started by ``Index.sync``
as ``python -m xp.query.index.build``; not a command.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from xp.gitstore.repo import GitRepo
from xp.query.index.rows import iter_rows
from xp.query.index.store import Index


def main(argv: list[str]) -> int:
    """argv: [--summaries | --catalog] index file, work tree, git dir, common dir; stdin:
    ``<commit> <run id>`` lines (records), or with ``--summaries`` a JSON object
    ``{"summaries": {bucket ref: [summary blob, {run id: commit}]}, "wanted": {commit: run
    id}}`` (the fetched buckets' run summaries; printed: ``{"skipped": [what was ignored in
    them, one line each], "stored": how many rows it stored}``), or with ``--catalog`` a JSON
    object ``{"tips": {bucket ref: tip}, "notes": the notes state}`` (a fresh index's share of
    the buckets, indexed whole into the scratch index file; printed: ``{"skipped": [...],
    "runs": how many run ids}``); empty stdin: nothing to do."""
    mode = argv[0] if argv[:1] in (["--summaries"], ["--catalog"]) else ""
    index_path, worktree, git_dir, common_dir = argv[1:] if mode else argv
    repo = GitRepo(Path(worktree), Path(git_dir), Path(common_dir))
    if mode == "--catalog":
        job = json.loads(sys.stdin.buffer.read() or b"null")
        if not job:
            return 0
        with Index(repo, Path(index_path), scratch=True) as part:
            runs = part.index_buckets(dict(job["tips"]), job["notes"])
            sys.stdout.write(json.dumps({"skipped": part.skipped, "runs": runs}))
        return 0
    summaries = mode == "--summaries"
    with Index(repo, Path(index_path)) as index:
        if summaries:
            text = sys.stdin.buffer.read()
            if not text:  # started ahead, then not needed
                return 0
            job = json.loads(text)
            buckets = {ref: (sha, entries) for ref, (sha, entries) in job["summaries"].items()}
            stored = index.store(index.summarized(buckets, job["wanted"]), whole=True)
            sys.stdout.write(json.dumps({"skipped": index.skipped, "stored": len(stored)}))
            return 0
        wanted = dict(line.split(" ", 1) for line in sys.stdin.read().splitlines() if line)
        index.store(iter_rows(repo, wanted))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
