"""The second process of a big index build: it reads the records of the commits it is given
on stdin while the first process reads the rest, and writes their rows to stdout for the
first to store (``--rows``).

A fresh clone of 100,000 runs means 400,000 small files to read and parse: two readers keep
both cores busy. One process writes the index: two writers took turns at SQLite's write lock,
and each turn began with an empty page cache (the other had written), so storing cost twice
its CPU. A fresh clone of a catalog remote is read from the buckets' run summaries instead, half
the buckets here (``--catalog``: into a scratch file of its own, which the first process copies
in; ``--summaries``: a later fetch's many new runs, into the index). Started by ``Index.sync``
as ``python -m xp.query.index.build``; not a command.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from xp.gitstore.repo import GitRepo
from xp.query.index.rows import iter_rows, write_frames
from xp.query.index.store import Index, gc_paused


def main(argv: list[str]) -> int:
    """argv: --rows | --summaries | --catalog, then index file, work tree, git dir, common
    dir; stdin: with ``--rows`` ``<commit> <run id>`` lines (their rows are written to stdout
    in ``rows.write_frames``' frames), with ``--summaries`` a JSON object
    ``{"summaries": {bucket ref: [summary blob, {run id: commit}]}, "wanted": {commit: run
    id}}`` (the fetched buckets' run summaries; printed: ``{"skipped": [what was ignored in
    them, one line each], "stored": how many rows it stored}``), or with ``--catalog`` a JSON
    object ``{"tips": {bucket ref: tip}, "notes": the notes state}`` (a fresh index's share of
    the buckets, indexed whole into the scratch index file; printed: ``{"skipped": [...],
    "runs": how many run ids}``); empty stdin: nothing to do."""
    mode, index_path, worktree, git_dir, common_dir = argv
    repo = GitRepo(Path(worktree), Path(git_dir), Path(common_dir))
    if mode == "--rows":
        wanted = dict(line.split(" ", 1) for line in sys.stdin.read().splitlines() if line)
        with gc_paused():
            write_frames(iter_rows(repo, wanted), sys.stdout.buffer)
        return 0
    if mode == "--catalog":
        job = json.loads(sys.stdin.buffer.read() or b"null")
        if not job:
            return 0
        with Index(repo, Path(index_path), scratch=True) as part:
            runs = part.index_buckets(dict(job["tips"]), job["notes"])
            sys.stdout.write(json.dumps({"skipped": part.skipped, "runs": runs}))
        return 0
    text = sys.stdin.buffer.read()  # --summaries
    if not text:  # started ahead, then not needed
        return 0
    job = json.loads(text)
    with Index(repo, Path(index_path)) as index:
        buckets = {ref: (sha, entries) for ref, (sha, entries) in job["summaries"].items()}
        stored = index.store(index.summarized(buckets, job["wanted"]), whole=True)
        sys.stdout.write(json.dumps({"skipped": index.skipped, "stored": len(stored)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
