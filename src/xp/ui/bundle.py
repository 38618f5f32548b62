"""Inline the front end's ES modules into one classic script, for the self-contained report.

The modules of ``static/`` keep to a few import/export forms, and this bundler accepts only
those (anything else is refused with its file and line, so a new module cannot silently break
reports): ``import X from './a.js'``, ``import { a, b as c } from './a.js'``, ``import * as N
from './a.js'``, ``export function|class|const|let NAME``, ``export { a, b as c }``. Each module
becomes a function whose exports are read by the modules after it, in dependency order. Import
and export words inside comments, strings and regular expressions are left alone (uPlot has an
``export`` in a comment). The output is the same for the same files: no clock, no paths. A
refusal is a bug in xp's own files, so it is a RuntimeError (the CLI's "internal error").
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Callable
from importlib import resources

_IMPORT_RE = re.compile(
    r"""^import\s+(?:(?P<default>[A-Za-z_$][\w$]*)|\{(?P<names>[^}]*)\}"""
    r"""|\*\s+as\s+(?P<ns>[A-Za-z_$][\w$]*))\s+from\s+['"](?P<path>\.{1,2}/[^'"]+)['"];?[ \t]*$""",
    re.M,
)
_EXPORT_DECL_RE = re.compile(
    r"^export\s+(?P<kw>async\s+function\*?|function\*?|class|const|let|var)\s+"
    r"(?P<name>[A-Za-z_$][\w$]*)",
    re.M,
)
_EXPORT_LIST_RE = re.compile(r"^export\s*\{(?P<names>[^}]*)\};?[ \t]*$", re.M)
_KEYWORDS_BEFORE_REGEX = {"return", "typeof", "case", "do", "else", "in", "of", "new"}
_KEYWORDS_BEFORE_REGEX |= {"delete", "void", "throw"}


_INTERESTING = re.compile(r"//|/\*|['\"`/]")
_OPERATORS = set("(,=:[!&|?{};+-*%<>~^")


def comment_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of every comment, skipping strings, template literals and regexes.

    Jumps from one quote or slash to the next: whether a slash starts a regular expression
    or divides is told by the last significant character before it (an operator, or a
    keyword such as ``return``)."""
    spans: list[tuple[int, int]] = []
    pos, n = 0, len(text)
    while (m := _INTERESTING.search(text, pos)) is not None:
        i, token = m.start(), m.group()
        if token == "//":
            j = text.find("\n", i)
            j = n if j < 0 else j
            spans.append((i, j))
            pos = j
        elif token == "/*":
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            spans.append((i, j))
            pos = j
        elif token != "/":  # a string or template literal
            j = i + 1
            while j < n and text[j] != token and not (token != "`" and text[j] == "\n"):
                j += 2 if text[j] == "\\" else 1
            pos = j + 1
        elif _regex_can_start(text, i):
            j, in_class = i + 1, False
            while j < n and text[j] != "\n":
                if text[j] == "\\":
                    j += 2
                    continue
                if text[j] == "[":
                    in_class = True
                elif text[j] == "]":
                    in_class = False
                elif text[j] == "/" and not in_class:
                    break
                j += 1
            pos = j + 1
        else:
            pos = i + 1
    return spans


def _regex_can_start(text: str, i: int) -> bool:
    k = i - 1
    while k >= 0 and text[k].isspace():
        k -= 1
    if k < 0 or text[k] in _OPERATORS:
        return True
    if text[k].isalnum() or text[k] in "_$":
        start = k
        while start > 0 and (text[start - 1].isalnum() or text[start - 1] in "_$"):
            start -= 1
        return text[start : k + 1] in _KEYWORDS_BEFORE_REGEX
    return False


def _outside(spans: list[tuple[int, int]], pos: int) -> bool:
    return not any(a <= pos < b for a, b in spans)


def _names(spec: str, where: str) -> list[tuple[str, str]]:
    out = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        m = re.fullmatch(r"([A-Za-z_$][\w$]*)(?:\s+as\s+([A-Za-z_$][\w$]*))?", part)
        if not m:
            raise RuntimeError(f"{where}: cannot read import/export item {part!r}")
        out.append((m.group(1), m.group(2) or m.group(1)))
    return out


def read_static(name: str) -> str:
    return (resources.files("xp.ui") / "static" / name).read_text(encoding="utf-8")


def bundle(entry: str, read: Callable[[str], str] = read_static) -> str:
    """One classic script running module ``entry``'s ``main()``, with every module it imports."""
    order: list[str] = []
    sources: dict[str, tuple[str, list[tuple[int, int]]]] = {}

    def visit(mod: str, stack: tuple[str, ...] = ()) -> None:
        if mod in stack:  # modules run in order: a cycle would read exports not made yet
            raise RuntimeError(f"import cycle {' -> '.join((*stack, mod))}")
        if mod in sources:
            return
        text = read(mod)
        spans = comment_spans(text)
        sources[mod] = (text, spans)
        for m in _IMPORT_RE.finditer(text):
            if _outside(spans, m.start()):
                visit(_resolve(mod, m.group("path")), (*stack, mod))
        order.append(mod)

    visit(entry)
    out = ["(function () {", '"use strict";', "const __xp = Object.create(null);"]
    for mod in order:
        out.append(_module(mod, *sources[mod]))
    out += [f"__xp[{json.dumps(entry)}].main();", "})();"]
    js = "\n".join(out) + "\n"
    # keep the HTML parser out of the script: `</script` and `<!--` can only occur inside
    # strings, regexes or comments of the code, where `<\/` and `<\!--` mean the same
    return re.sub(r"</(script)", r"<\\/\1", js, flags=re.I).replace("<!--", "<\\!--")


def _resolve(mod: str, path: str) -> str:
    return posixpath.normpath(posixpath.join(posixpath.dirname(mod), path))


def _module(mod: str, text: str, spans: list[tuple[int, int]]) -> str:
    """The module as a function returning its exports; its imports read earlier modules'."""
    exports: list[tuple[str, str]] = []
    edits: list[tuple[int, int, str]] = []  # (start, end, replacement) in the original text

    for m in _IMPORT_RE.finditer(text):
        if not _outside(spans, m.start()):
            continue
        ref = f"__xp[{json.dumps(_resolve(mod, m.group('path')))}]"
        if m.group("default"):
            new = f"const {m.group('default')} = {ref}.default;"
        elif m.group("ns"):
            new = f"const {m.group('ns')} = {ref};"
        else:
            pairs = _names(m.group("names"), mod)
            names = ", ".join(a if a == b else f"{a}: {b}" for a, b in pairs)
            new = f"const {{ {names} }} = {ref};"
        edits.append((m.start(), m.end(), new))
    for m in _EXPORT_DECL_RE.finditer(text):
        if _outside(spans, m.start()):
            exports.append((m.group("name"), m.group("name")))
            edits.append((m.start(), m.end(), m.group("kw") + " " + m.group("name")))
    for m in _EXPORT_LIST_RE.finditer(text):
        if _outside(spans, m.start()):
            exports.extend(_names(m.group("names"), mod))
            edits.append((m.start(), m.end(), ""))
    handled = [(a, b) for a, b, _ in edits]
    for bad in (r"^\s*export\b", r"^\s*import\b", r"\bimport\s*\("):
        for m in re.finditer(bad, text, re.M):
            at = m.end() - 1
            if _outside(spans, at) and _outside(handled, at):
                line = text[: m.start()].count("\n") + 1
                raise RuntimeError(f"{mod}:{line}: an import/export form the bundler does not know")
    parts, last = [], 0
    for start, end, new in sorted(edits):
        parts += [text[last:start], new]
        last = end
    parts.append(text[last:])
    body = ", ".join(f"{json.dumps(public)}: {local}" for local, public in exports)
    return (
        f'// ---- {mod}\n__xp[{json.dumps(mod)}] = (function () {{\n"use strict";\n'
        f"{''.join(parts)}\nreturn {{ {body} }};\n}})();"
    )
