"""Annotated tags: list them with their messages and taggers, create, delete and verify them."""

from __future__ import annotations

from dataclasses import dataclass

from xp.gitstore.repo import GitRepo, git_failure


@dataclass(frozen=True)
class AnnotatedTag:
    name: str  # without refs/tags/
    commit: str  # what the tag points at (peeled)
    time: int  # tagger date, seconds since the epoch
    message: str
    tagger: str = ""  # "Name <email>" of whoever made the tag


def annotated(repo: GitRepo) -> list[AnnotatedTag]:
    """Every annotated tag (lightweight tags are left out)."""
    fmt_ = (
        "%(refname:strip=2)%00%(objecttype)%00%(*objectname)%00%(taggerdate:unix)"
        "%00%(taggername) %(taggeremail)%00%(contents)%1e"
    )
    out = repo.git("for-each-ref", f"--format={fmt_}", "refs/tags").stdout.decode(
        "utf-8", "replace"
    )
    found = []
    for record in out.split("\x1e\n"):
        fields = record.split("\x00")
        if len(fields) < 6 or fields[1] != "tag" or not fields[2]:
            continue
        name, _kind, commit, when, tagger, message = fields[:6]
        found.append(AnnotatedTag(name, commit, int(when or 0), message, tagger.strip()))
    return found


def create(repo: GitRepo, name: str, commit: str, message: str, *, sign: bool = False) -> None:
    """An annotated tag ``name`` at ``commit``, signed with the user's key when ``sign``;
    RefExistsError when it exists."""
    kind = ("tag", "-s") if sign else ("-c", "tag.gpgSign=false", "tag", "-a")
    args = (*kind, name, "-m", message, commit)
    proc = repo.git(*args, check=False)
    if proc.returncode != 0:
        raise git_failure(args, proc)


def delete(repo: GitRepo, name: str) -> None:
    repo.git("tag", "-d", name, check=False)


def verified(repo: GitRepo, name: str) -> bool:
    """Whether tag ``name`` carries a signature that ``git verify-tag`` accepts (a GPG key in
    the user's keyring, or an SSH key in ``gpg.ssh.allowedSignersFile``)."""
    return repo.git("verify-tag", "--", name, check=False).returncode == 0
