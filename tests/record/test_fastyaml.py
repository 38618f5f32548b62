"""The fast reader of flat YAML is exact or silent: ``load_flat`` gives PyYAML's answer, or None
(then the caller asks PyYAML). Differential tests against ``yaml.load(..., CSafeLoader)`` on
what ``yamlio.dump`` writes and on arbitrary lines; the fast writer ``dump_flat`` likewise
against ``yaml.dump(..., CSafeDumper)``."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from xp.record import fastyaml, yamlio
from xp.record.fastyaml import dump_flat, load_entries, load_flat, load_nested

LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
DUMPER: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

# Texts YAML 1.1 reads as something else, or that need quoting, next to arbitrary ones.
TRICKY = [
    *("", " ", "~", "null", "Null", "NULL", "yes", "No", "ON", "off", "y", "n", "true", "False"),
    *("0", "-0", "+1", "007", "0o17", "0x1F", "0b101", "1_000", "1:30", "190:20:30", "1e3"),
    *("1.0e+3", "-1.5e-05", "3.", ".5", ".inf", "-.Inf", "+.INF", ".nan", ".NaN", "1.2.3"),
    *("2001-12-14", "2001-12-14t21:59:43.10-05:00", "<<", "=", "- x", "-", "--", "---", "..."),
    *("a: b", "a:b", "a #b", "#c", "'q'", "it's", '"d"', "[1]", "{a: 1}", "&a", "*a", "!t"),
    *("|", ">", "%x", "@x", "`x", "?", "? x", ":x", ",x", " lead", "trail ", "tab\there"),
    *("é", "naïve ünïcode", "\u2028", "\x85", "\ufeffbom", "line\nbreak", "a\\b"),
]
texts = st.sampled_from(TRICKY) | st.text(max_size=20)
keys = st.sampled_from(TRICKY) | st.text(min_size=1, max_size=20)
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | texts
)
values = scalars | st.lists(scalars, max_size=4)
records = st.dictionaries(keys, values, max_size=8)


def canon(value: Any) -> Any:
    """A form where equal means the same YAML answer: types strict (True is not 1, 1 is not
    1.0), NaN equal to NaN, -0.0 not 0.0."""
    if isinstance(value, float):
        return ("float", "nan" if math.isnan(value) else repr(value))
    if isinstance(value, dict):
        return ("dict", frozenset((canon(k), canon(v)) for k, v in value.items()))
    if isinstance(value, list):
        return ("list", tuple(canon(v) for v in value))
    return (type(value).__name__, value)


def assert_agrees(data: bytes, reader: Callable[[bytes], Any] | None = None) -> None:
    """A fast reader (``load_flat`` by default) reads ``data`` as PyYAML does, or declines."""
    read = reader or load_flat
    fast = read(data)
    try:
        slow = yaml.load(data, Loader=LOADER)
    except yaml.YAMLError:
        assert fast is None, f"PyYAML refuses {data!r}, {read.__name__} read {fast!r}"
        return
    if fast is not None:
        assert canon(fast) == canon(slow), f"{data!r}: {read.__name__} {fast!r}, PyYAML {slow!r}"


@settings(deadline=None)  # no timing in the suite: benchmarks/w3_query.py times the index
@given(records)
def test_what_xp_writes_reads_as_pyyaml_reads_it(record: dict[str, Any]) -> None:
    assert_agrees(yamlio.dump(record))


lines = (
    st.sampled_from(["- ", "-", ":", ": ", "  ", "#"]).flatmap(lambda p: texts.map(p.__add__))
    | st.builds("{}: {}".format, texts, texts)
    | st.builds("{}:".format, texts)
    | texts
)


@settings(deadline=None)
@given(st.lists(lines, max_size=8), st.booleans())
def test_arbitrary_lines_read_as_pyyaml_reads_them(body: list[str], newline: bool) -> None:
    text = "\n".join(body) + ("\n" if newline else "")
    assert_agrees(text.encode("utf-8", "surrogatepass"))


@pytest.mark.parametrize("text", [":", ": x", "a: 1\n: 2"])
def test_an_empty_key_is_refused_as_pyyaml_refuses_it(text: str) -> None:
    assert_agrees(text.encode())


@pytest.mark.parametrize("text", ["\x08:", "a: \x1bx", "\x7f: 1"])
def test_control_characters_are_refused_as_pyyaml_refuses_them(text: str) -> None:
    assert_agrees(text.encode())


@pytest.mark.parametrize("text", ["\ufeff0:", "\ufeff:"])
def test_a_byte_order_mark_is_read_as_pyyaml_reads_it(text: str) -> None:
    assert_agrees(text.encode())


@settings(deadline=None)
@given(
    st.dictionaries(
        st.from_regex(r"[a-z][a-z0-9_./-]{0,15}", fullmatch=True),
        st.integers() | st.floats(allow_nan=False) | st.from_regex(r"[a-z]{1,8}", fullmatch=True),
        min_size=1,
        max_size=8,
    )
)
def test_typical_records_take_the_fast_path(record: dict[str, Any]) -> None:
    """Names, numbers and words, as runs record them, are read without PyYAML."""
    data = yamlio.dump(record)
    fast = load_flat(data)
    assert fast is not None, data
    assert canon(fast) == canon(yaml.load(data, Loader=LOADER))


def assert_dumps_as_pyyaml(record: dict[Any, Any]) -> None:
    fast = dump_flat(record)
    slow = yaml.dump(
        record,
        Dumper=DUMPER,
        sort_keys=True,
        default_flow_style=False,
        allow_unicode=True,
        width=1 << 30,
    ).encode("utf-8")
    assert fast is None or fast == slow, f"{record!r}: dump_flat {fast!r}, PyYAML {slow!r}"


@settings(deadline=None)
@given(records)
def test_dump_flat_writes_what_pyyaml_writes(record: dict[str, Any]) -> None:
    """The fast writer gives PyYAML's bytes or declines (None), on tricky and random text."""
    assert_dumps_as_pyyaml(record)


@pytest.mark.parametrize("text", TRICKY)
def test_dump_flat_quotes_tricky_text_as_pyyaml_does(text: str) -> None:
    assert_dumps_as_pyyaml({"k": text, "items": [text, text]})
    assert_dumps_as_pyyaml({text: 1})


@settings(deadline=None)
@given(
    st.dictionaries(
        # names YAML 1.1 reads as strings (`on`, `yes`, `null` as keys: PyYAML's then)
        st.from_regex(r"[a-z][a-z0-9_./-]{0,15}", fullmatch=True).filter(
            lambda k: yaml.load(k, Loader=LOADER) == k
        ),
        st.integers(-(10**30), 10**30)
        | st.floats()
        | st.booleans()
        | st.none()
        | st.from_regex(r"[a-z]{1,8}", fullmatch=True)
        | st.lists(st.from_regex(r"[a-z0-9 ]{0,8}", fullmatch=True), max_size=3),
        min_size=1,
        max_size=8,
    )
)
def test_typical_records_are_written_without_pyyaml(record: dict[str, Any]) -> None:
    """Names, numbers, words and commands, as runs record them, take the fast writer."""
    fast = dump_flat(record)
    assert fast is not None, record
    assert_dumps_as_pyyaml(record)
    assert yamlio.dump(record) == fast


def test_the_written_out_resolver_table_is_pyyamls_own() -> None:
    """fastyaml carries PyYAML's implicit-resolver table so reading a record does not import
    PyYAML (issue 15); a PyYAML that changed it would fail here, not answer differently."""
    from xp.record.fastyaml import resolvers

    def shape(table: Any) -> dict[Any, list[tuple[str, str, int]]]:
        return {k: [(tag, r.pattern, r.flags) for tag, r in v] for k, v in table.items()}

    assert shape(resolvers()) == shape(LOADER.yaml_implicit_resolvers)


# -- lists of flat mappings (artifacts.yaml, inputs.yaml): load_entries --------------------


def assert_entries_agree(data: bytes) -> None:
    assert_agrees(data, load_entries)


entries = st.lists(st.dictionaries(keys, scalars, min_size=1, max_size=4), max_size=4)


@settings(deadline=None)
@given(entries)
def test_entry_lists_xp_writes_read_as_pyyaml_reads_them(value: list[dict[str, Any]]) -> None:
    assert_entries_agree(yamlio.dump(value))


entry_lines = (
    st.sampled_from(["- ", "  ", "   ", "-", " "]).flatmap(
        lambda p: st.builds("{}{}: {}".format, st.just(p), texts, texts)
    )
    | lines
)


@settings(deadline=None)
@given(st.lists(entry_lines, max_size=8), st.booleans())
def test_arbitrary_entry_lines_read_as_pyyaml_reads_them(body: list[str], newline: bool) -> None:
    text = "\n".join(body) + ("\n" if newline else "")
    assert_entries_agree(text.encode("utf-8", "surrogatepass"))


def test_an_artifact_manifest_takes_the_fast_path() -> None:
    sha = "ab" * 32
    value = [
        {"path": "model.bin", "sha256": sha, "size": 100000},
        {"path": "a b.txt", "sha256": sha, "size": 0},
    ]
    assert load_entries(yamlio.dump(value)) == value


def _same(fast: Any, slow: Any) -> bool:
    """Equal values of equal types (repr tells 1 from 1.0 and True, and nan equals nan)."""
    return repr(fast) == repr(slow)


nested_values = st.recursive(
    st.dictionaries(keys, scalars, max_size=4),
    lambda children: st.dictionaries(keys, children | scalars, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(nested_values, st.sampled_from([2, 4]))
def test_load_nested_reads_what_pyyaml_writes_as_pyyaml_does(value: Any, indent: int) -> None:
    text = yaml.dump(value, Dumper=DUMPER, default_flow_style=False, indent=indent)
    fast = load_nested(text.encode())
    if fast is not None:
        assert _same(fast, yaml.load(text, Loader=LOADER))


PARAM_LINES = st.sampled_from(
    ["lr: 0.01", "model:", "  depth: 6", "  name: rf", "    deep: 1e-3", "  # a comment",
     "# top comment", "", "   ", "epochs: 10", "  - a", "- x", "model: ", "a: b: c", "x:",
     "  x: 'q'", "  'k': v", "opt: adam # inline", "b: yes", "c: ~", "d: 0x1F", "  e: 1_0",
     "f: []", "g: {}", " h: 1", "i: [1, 2]", "j: |", "  text", "k: >", "  cont line"]
)  # fmt: skip


@settings(max_examples=600, deadline=None)
@given(st.lists(PARAM_LINES | st.text(alphabet=" :-#'\"a1.\n\t\\ey", max_size=12), max_size=8))
def test_load_nested_is_pyyaml_or_silent_on_hand_written_params(lines: list[str]) -> None:
    """A params file as people write it (comments, nesting, odd indents): fastyaml's
    reading is PyYAML's, or None; where PyYAML fails, fastyaml is None too."""
    text = "\n".join(lines)
    fast = load_nested(text.encode())
    try:
        slow = yaml.load(text, Loader=LOADER)
    except yaml.YAMLError:
        assert fast is None
        return
    if fast is not None:
        assert _same(fast, slow)


def test_load_nested_reads_a_nested_params_file() -> None:
    text = b"# training\nlr: 0.01\nmodel:\n  depth: 6   \n  # inner\n  name: 'rf'\nopt:\n"
    assert load_nested(text) is None  # trailing spaces after a value: PyYAML's business
    text = b"# training\nlr: 0.01\nmodel:\n  depth: 6\n\n  # inner\n  name: 'rf'\nopt:\n"
    assert load_nested(text) == {"lr": 0.01, "model": {"depth": 6, "name": "rf"}, "opt": None}
    assert load_nested(b"# only a comment\n") is None


@settings(max_examples=500, deadline=None)
@given(texts)
def test_command_line_scalars_read_as_pyyaml_reads_them(text: str) -> None:
    """`--param k=TEXT` is read by fastyaml where it is sure, else PyYAML: same value."""
    fast = fastyaml.scalar(text)
    if fast is fastyaml.UNSURE:
        return
    try:
        slow = yaml.load(text, Loader=LOADER)
    except yaml.YAMLError:
        raise AssertionError(f"fastyaml read {text!r}, PyYAML refuses it") from None
    assert _same(fast, slow)


# The one-regex line reader (`_SIMPLE_LINE`): keys and values drawn from its own alphabets and
# their near misses (a resolver's word, an int, a dash, a quote inside, a sign, an exponent
# without a dot), where the answer must still be PyYAML's or none.
simple_keys = st.from_regex(r"[A-Za-z_][A-Za-z0-9_./-]{0,8}", fullmatch=True) | st.sampled_from(
    ["yes", "No", "null", "NULL", "on", "OFF", "y", "true", "_", "e", "inf", "nan", "a-"]
)
# Every word a resolver of YAML 1.1 claims (bools, nulls, special floats), in all its cases.
WORDS = [
    w
    for word in ("yes", "no", "true", "false", "on", "off", "null", "y", "n", ".inf", ".nan")
    for w in (word, word.capitalize(), word.upper())
]
simple_values = (
    st.from_regex(r"[-+]?[0-9]{1,4}\.[0-9]{0,4}([eE][-+]?[0-9]{1,3})?", fullmatch=True)
    | st.from_regex(r"'[ -~]{0,10}'", fullmatch=True)
    | st.from_regex(r"[A-Za-z_][A-Za-z0-9_./+ -]{0,8}", fullmatch=True)
    | st.from_regex(r"[0-9][0-9a-z_:.-]{0,12}", fullmatch=True)
    | st.sampled_from(TRICKY)
    | st.sampled_from(WORDS)
)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(simple_keys, simple_values), min_size=1, max_size=8))
def test_simple_lines_read_as_pyyaml_reads_them(pairs: list[tuple[str, str]]) -> None:
    assert_agrees("".join(f"{k}: {v}\n" for k, v in pairs).encode("utf-8", "surrogatepass"))


HOSTILE = [
    "a: &x 1\nb: *x\n",  # anchors and aliases
    "a: !!python/object/apply:os.system ['true']\n",
    "a: !!str 1.5\n",
    "a: 1" + "9" * 5000 + "\n",  # past Python's int digits limit: PyYAML's error
    "a: " + "9" * 400 + ".5\n",  # a float past the float range: inf, as PyYAML reads it
    "a: 1.0e+99999\nb: -1.0e+99999\n",
    "a: " + "[" * 200 + "]" * 200 + "\n",  # deep nesting
    "\ufeffa: 1.5\n",
    "a: b\x00c\n",
    "a: 'x\x1by'\n",
    "a: 1.5 # comment\n",
    "a: 'x' \n",
    "a:  word\n",
    "a: word \n",
    "a: 'it''s'\n",
    "yes: 1.5\nnull: word\n1hf7: x\n0x1F: y\n",
    "a: 0x1F\nb: 0b11\nc: 012\nd: 1_000.5\ne: 1:30.5\nf: 2001-12-14\ng: 1e5\n",
    "a: 1hf7yat00d68xj\nb: 0abc\nc: 1.5.6\nd: 190:20:30.15\ne: .5\nf: -.inf\n",
    "a: 1.5\na: 2.5\n",  # a key twice: the last wins, in PyYAML too
    "a: 1.5\n- x\n",
    "a: x\n---\nb: y\n",
]


@pytest.mark.parametrize("text", HOSTILE + [f"a: {w}\n{w}: b\n" for w in WORDS])
def test_hostile_record_lines_read_as_pyyaml_reads_them(text: str) -> None:
    data = text.encode()
    try:
        slow = yaml.load(data, Loader=LOADER)
    except (yaml.YAMLError, ValueError):
        assert load_flat(data) is None  # an int of 5,000 digits is PyYAML's error, not ours
        return
    fast = load_flat(data)
    assert fast is None or canon(fast) == canon(slow)
