"""``xp hook post-checkout``: put the artifacts of the checked-out commit's run record back
where they were logged from."""

from __future__ import annotations

from dataclasses import dataclass, field

from xp import format as fmt
from xp.gitstore.repo import GitRepo
from xp.hooks.settings import settings


@dataclass
class CheckoutResult:
    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # a different file was there: left alone
    absent: list[str] = field(default_factory=list)  # on no store


def post_checkout(repo: GitRepo, *, new_head: str, branch_checkout: bool) -> CheckoutResult:
    """Put the artifacts of the checked-out commit's run record where they were logged from.

    Never overwrites a file with other content (it is reported as kept); objects missing
    from the cache come from the default artifact remote, re-hashed on arrival.
    """
    result = CheckoutResult()
    conf = settings(repo)
    if not branch_checkout or conf.post_checkout == "off":
        return result
    from xp.artifacts import cache
    from xp.artifacts.manifests import Needed, cat_files, check_entry, parse_entries
    from xp.sharing.checkout import work_tree_destination

    spec = f"{new_head}:{fmt.RECORD_DIR}/{fmt.ARTIFACTS_FILE}"
    data = cat_files(repo, [spec]).get(spec)
    if not data:
        return result
    wanted: list[tuple[Needed, str]] = []
    for entry in parse_entries(data, spec):
        path, sha, size = check_entry(entry, spec)
        source = entry.get("source")
        where = work_tree_destination(repo, source if isinstance(source, str) else path)
        rel = where.relative_to(repo.worktree).as_posix()
        wanted.append((Needed(new_head[:12], path, sha, size, "artifact"), rel))
    from xp.sharing.push_pull import download_missing

    fetched = download_missing(repo, items=[n for n, _ in wanted])
    absent = {n.sha256 for n in fetched.absent}
    cache_dir = cache.cache_dir(repo)
    links = ("reflink", "hardlink", "copy") if conf.post_checkout == "link" else ("reflink", "copy")
    for item, rel in wanted:
        target = repo.worktree / rel
        obj = cache.object_path(cache_dir, item.sha256)
        if item.sha256 in absent or not obj.is_file():
            result.absent.append(rel)
        elif target.is_file() and cache.hash_file(target)[0] == item.sha256:
            result.unchanged.append(rel)
        elif target.exists():
            result.kept.append(rel)
        else:
            cache.materialise(obj, target, links)
            result.written.append(rel)
    return result
