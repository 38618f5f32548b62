"""The second process of a big index build: it reads and stores the records of the commits
it is given on stdin while the first process does the other half.

A fresh clone of 100,000 runs means 400,000 small files to read and parse; git reads them
on one core and Python parses them on the other, so two readers keep both cores busy, and
SQLite's write lock (one short transaction per batch) lets both store rows into the same
file. Started by ``Index.sync`` as ``python -m xp.query.index.build``; not a command.
"""

from __future__ import annotations

import sys
from pathlib import Path

from xp.gitstore.repo import GitRepo
from xp.query.index.rows import iter_rows
from xp.query.index.store import Index


def main(argv: list[str]) -> int:
    """argv: index file, work tree, git dir, common dir; stdin: ``<commit> <run id>`` lines."""
    index_path, worktree, git_dir, common_dir = argv
    repo = GitRepo(Path(worktree), Path(git_dir), Path(common_dir))
    wanted = dict(line.split(" ", 1) for line in sys.stdin.read().splitlines() if line)
    with Index(repo, Path(index_path)) as index:
        index.store(iter_rows(repo, wanted))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
