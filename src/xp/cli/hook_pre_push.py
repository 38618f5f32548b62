"""``xp hook pre-push``, which every ``git push`` runs, answered before click is imported
(``quick`` dispatches it): the shim's command line is fixed (git's two arguments, the pushed
refs on stdin) and click's import was a fifth of the hook's CPU time. Its lines are the click
command's (``cli/hooks.py`` prints ``report`` too), its error boundary ``output.ending``.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from xp.cli.output import echo, run_guarded
from xp.config import human_size

if TYPE_CHECKING:
    from xp.hooks.pre_push import PrePushResult


def report(result: PrePushResult, remote: str) -> list[str]:
    """The hook's lines for ``result`` (stderr: git shows them under the push)."""
    lines = []
    upload = result.upload
    if upload is not None and upload.objects:
        lines.append(
            f"xp: uploaded {upload.objects} artifact objects ({human_size(upload.bytes)})"
            f" to {upload.store}"
        )
    sent = [
        f"{n} {what}{'s' if n != 1 else ''}"
        for n, what in (
            (result.runs, "run"),
            (result.tags, "registry tag"),
            (result.chains, "monitoring chain"),
            (result.annotations, "annotation ref"),
        )
        if n
    ]
    if sent:
        lines.append(f"xp: sent {', '.join(sent)} to {remote} with this push")
    for ref, reason in result.rejected:
        lines.append(f"xp: {remote} refused {ref} ({reason}); see `xp push`")
    return lines


def main(args: list[str]) -> int:
    """Run the hook (``args``: git's remote name and URL); its exit code."""
    from xp.cli.progress import progress_bar
    from xp.gitstore.repo import find_repo
    from xp.hooks.pre_push import pre_push

    def body() -> None:
        repo = find_repo()
        remote = args[0] if args else os.environ.get("PRE_COMMIT_REMOTE_NAME", "origin")
        stdin = "" if sys.stdin is None or sys.stdin.isatty() else sys.stdin.read()
        with progress_bar("uploading artifacts") as bar:
            result = pre_push(repo, remote=remote, stdin_text=stdin, progress=bar)
        for line in report(result, remote) if result is not None else []:
            echo(line, err=True)

    return run_guarded(body)
