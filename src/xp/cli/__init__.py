"""The ``xp`` command. ``main`` is what ``xp`` and ``git xp`` run.

The plain forms of the annotation verbs (``xp tag RUN KEY=VALUE...``, ``xp note RUN TEXT``)
are answered by ``quick`` without importing click, a quarter of such a command's time (people
tag runs in shell loops); everything else goes to the click application in ``app``, which
also holds ``cli`` and ``COMMANDS`` (importable from here too).
"""

from __future__ import annotations

import sys
from typing import Any


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code."""
    args = sys.argv[1:] if argv is None else list(argv)
    from xp.cli import quick

    code = quick.main(args)
    if code is not None:
        return code
    from xp.cli import app

    return app.main(args)


def run() -> None:  # pragma: no cover - console entry
    sys.exit(main())


def __getattr__(name: str) -> Any:
    """``from xp.cli import cli`` (and COMMANDS): the click application, loaded on demand."""
    if name in ("cli", "COMMANDS", "LazyGroup"):
        from xp.cli import app

        return getattr(app, name)
    raise AttributeError(f"module 'xp.cli' has no attribute {name!r}")
