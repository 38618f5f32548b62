"""What the CLI prints, without click: lines with control characters made visible, and the
one line and exit code an exception ends a command with.

Run names, tags, paths and messages come from records other people wrote, and a terminal
obeys escape sequences (an OSC can set the window title, write the clipboard, hide text or
make a fake link). So every control character (C0 but newline and tab, DEL, C1,
bidirectional overrides, lone surrogates) is shown as a visible escape such as ``\\x1b``.
Click-free so that the plain annotation verbs (``xp.cli.quick``) answer without loading it.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from typing import Any

from xp.errors import XPError, missing_module

# What a terminal may act on: C0 controls but newline and tab, DEL and C1 (an 8-bit CSI/OSC
# opens a sequence on some terminals), bidirectional overrides (text that reads other than
# it is), and lone surrogates (not encodable: they would end the command with a traceback).
BIDI = r"\u200e\u200f\u202a-\u202e\u2066-\u2069"
_CONTROL = re.compile(rf"[\x00-\x08\x0b-\x1f\x7f-\x9f{BIDI}\ud800-\udfff]")

INTERNAL = 3  # the exit code of a bug


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: str) -> str:
    """``text`` with every control character shown as an escape (``\\x1b``), never obeyed."""
    return _CONTROL.sub(_escape, text)


def has_control(text: str) -> bool:
    """Whether ``visible`` would change ``text``."""
    return _CONTROL.search(text) is not None


def is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def echo(message: str = "", *, err: bool = False, nl: bool = True, exact: bool = False) -> None:
    """Print for the CLI, control characters made visible; with ``exact`` (CSV/TSV,
    already-safe JSON) only when the stream is a terminal."""
    stream = sys.stderr if err else sys.stdout
    if not exact or is_terminal(stream):
        message = visible(message)
    stream.write(message + "\n" if nl else message)
    stream.flush()


def ending(exc: BaseException) -> tuple[str, int]:
    """The line (maybe empty) and exit code ``exc`` ends a command with: an XPError its
    message and code, Ctrl-C 130, a closed pipe 1 quietly, a missing optional extra the pip
    command to run, anything else a one-line bug report and ``INTERNAL``."""
    if isinstance(exc, XPError):
        return f"xp: error: {exc}", exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        return "xp: interrupted", 130
    if isinstance(exc, BrokenPipeError):
        return "", 1
    if isinstance(exc, ModuleNotFoundError):
        missing = missing_module(exc)
        if missing is not None:
            return f"xp: error: {missing}", missing.exit_code
    return (
        f"xp: internal error: {type(exc).__name__}: {exc} (rerun with --debug for the"
        " traceback, and please report it)",
        INTERNAL,
    )


def run_guarded(body: Callable[[], None]) -> int:
    """Run a click-free command's ``body`` behind the same boundary as click's commands
    (``ending``): its exit code, 0 when it returns."""
    try:
        body()
    except (Exception, KeyboardInterrupt) as exc:
        message, code = ending(exc)
        if message:
            echo(message, err=True)
        return code
    return 0
