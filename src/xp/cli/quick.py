"""The plain forms of the annotation verbs, ``xp commit`` with its options spelled out, and
``xp hook pre-push``, answered before click is imported.

``xp tag RUN KEY=VALUE...`` and ``xp note RUN [TEXT]`` with no option anywhere are parsed
here (positional arguments only: nothing for click to add) and run the same bodies as the
click commands (``annotate``), with the same error boundary (``output.ending``). Anything
else (an option, ``--help``, a missing argument) returns None: click parses it and says
what is wrong. ``xp commit`` (typed after every training step, issue 18: <= 100 ms) is
answered here when every option is one of its own, written ``-m TEXT``, ``--message TEXT`` or
``--message=TEXT`` (``commit_body.parse``); click imports in ~35 ms of its ~150.
"""

from __future__ import annotations

import sys
import types
from typing import Any

from xp.cli.output import run_guarded


class _Inspect(types.ModuleType):
    """Stands for ``inspect`` in ``dataclasses``: the real module is imported at the first
    use of any of its names, and then replaces this one there."""

    def __getattr__(self, name: str) -> Any:
        import dataclasses
        import importlib

        real = importlib.import_module("inspect")
        dataclasses.inspect = real  # type: ignore[attr-defined]
        return getattr(real, name)


def defer_inspect() -> None:
    """Import ``dataclasses`` without ``inspect`` (and its ``ast``, ``dis``, ``tokenize``:
    ~7 ms of an ``xp commit`` that should take <= 100, issue 18).

    ``dataclasses`` uses ``inspect`` for one thing: the docstring of a class that has none
    (every dataclass ``xp commit`` defines has one). So it is imported with ``_Inspect`` in
    its place, which imports the real module the first time a name is asked of it; anything
    else that imports ``inspect`` gets the real one, as ever.
    """
    if "inspect" in sys.modules or "dataclasses" in sys.modules:
        return
    stand_in = _Inspect("inspect")
    sys.modules["inspect"] = stand_in
    try:
        import dataclasses  # noqa: F401
    finally:
        if sys.modules.get("inspect") is stand_in:
            del sys.modules["inspect"]


def main(args: list[str]) -> int | None:
    """The exit code of a plain annotation command (or of the pre-push hook: every
    ``git push`` runs it), or None when click must run it."""
    if args[:2] == ["hook", "pre-push"]:
        from xp.cli import hook_pre_push

        return hook_pre_push.main(args[2:])
    if args[:1] == ["commit"]:
        defer_inspect()
        from xp.cli import commit_body

        keywords = commit_body.parse(args[1:])
        if keywords is None:
            return None
        return run_guarded(lambda: commit_body.commit(**keywords))
    if len(args) < 2 or args[0] not in ("tag", "note"):
        return None
    if any(a.startswith("-") for a in args[1:]):
        return None
    verb = args[0]
    if (verb == "tag" and len(args) < 3) or (verb == "note" and len(args) > 3):
        return None
    from xp.cli import annotate

    if verb == "tag":
        return run_guarded(lambda: annotate.tag(args[1], tuple(args[2:]), ()))
    return run_guarded(lambda: annotate.note(args[1], args[2] if len(args) == 3 else None))
