"""Annotated tags: list them with their messages, create and delete them."""

from __future__ import annotations

from dataclasses import dataclass

from xp.gitstore.repo import GitRepo, git_failure


@dataclass(frozen=True)
class AnnotatedTag:
    name: str  # without refs/tags/
    commit: str  # what the tag points at (peeled)
    time: int  # tagger date, seconds since the epoch
    message: str


def annotated(repo: GitRepo) -> list[AnnotatedTag]:
    """Every annotated tag (lightweight tags are left out)."""
    fmt_ = (
        "%(refname:strip=2)%00%(objecttype)%00%(*objectname)%00%(taggerdate:unix)%00%(contents)%1e"
    )
    out = repo.git("for-each-ref", f"--format={fmt_}", "refs/tags").stdout.decode(
        "utf-8", "replace"
    )
    found = []
    for record in out.split("\x1e\n"):
        fields = record.split("\x00")
        if len(fields) < 5 or fields[1] != "tag" or not fields[2]:
            continue
        name, _kind, commit, when, message = fields[:5]
        found.append(AnnotatedTag(name, commit, int(when or 0), message))
    return found


def create(repo: GitRepo, name: str, commit: str, message: str) -> None:
    """An annotated tag ``name`` at ``commit``; RefExistsError when it exists."""
    args = ("-c", "tag.gpgSign=false", "tag", "-a", name, "-m", message, commit)
    proc = repo.git(*args, check=False)
    if proc.returncode != 0:
        raise git_failure(args, proc)


def delete(repo: GitRepo, name: str) -> None:
    repo.git("tag", "-d", name, check=False)
