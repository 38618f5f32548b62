"""Table cells: the fast paths of ``clip`` and ``aligned`` give what the general ones give."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from xp.cli import render

texts = st.text(max_size=30) | st.from_regex(r"[ -~]{0,30}", fullmatch=True)


def general_clip(text: str, width: int) -> str:
    """``clip`` without its shortcut for printable ASCII that fits."""
    text = render.visible(text.replace("\n", " ").replace("\t", " "))
    return text if render.cells(text) <= width else render._head(text, width - 1) + "…"


@settings(deadline=None)
@given(texts, st.integers(1, 40))
def test_clip_gives_the_general_answer(text: str, width: int) -> None:
    assert render.clip(text, width) == general_clip(text, width)


def test_a_control_character_in_a_fitting_cell_is_still_escaped() -> None:
    assert render.clip("a\x1b[2Jb", 20) == "a\\x1b[2Jb"
    assert render.clip("tab\there", 20) == "tab here"


@settings(deadline=None)
@given(st.lists(texts, min_size=3, max_size=3))
def test_a_row_lines_up_by_terminal_cells_whatever_its_text(row: list[str]) -> None:
    line = render.aligned([8, 5, 6], [False, True, False])
    out = line(row)
    if all(t.isascii() for t in row):
        expected = f"{row[0]:<8.8}{render.GAP}{row[1]:>5.5}{render.GAP}{row[2]:<6.6}".rstrip()
        assert out == expected
    else:
        assert render.cells(out) <= 8 + 5 + 6 + 2 * render.cells(render.GAP)


_CELL = st.one_of(
    st.text(alphabet=st.characters(codec="ascii"), max_size=30),
    st.text(max_size=30),  # wide characters, combining marks, controls, surrogates
    st.sampled_from(["", "-", "nan", "学习率", "🚀", "a\tb", "x" * 40]),
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.integers(1, 30), st.booleans()), min_size=1, max_size=6).flatmap(
        lambda cols: st.tuples(
            st.just(cols),
            st.lists(st.lists(_CELL, min_size=len(cols), max_size=len(cols)), max_size=8),
        )
    )
)
def test_column_layout_is_the_row_layout(
    case: tuple[list[tuple[int, bool]], list[list[str]]],
) -> None:
    """``xp show -a`` lays rows out column by column (clip_column, aligned_columns): the
    same text as clip and aligned make of each row."""
    cols, rows = case
    widths = [w for w, _ in cols]
    numeric = [num for _, num in cols]
    line = render.aligned(widths, numeric)
    columns = [[row[i] for row in rows] for i in range(len(cols))]
    clipped = [render.clip_column(column, w) for column, w in zip(columns, widths, strict=True)]
    assert clipped == [
        [render.clip(t, w) for t in column] for column, w in zip(columns, widths, strict=True)
    ]
    expected = [line([render.clip(t, w) for t, w in zip(row, widths, strict=True)]) for row in rows]
    assert render.aligned_columns(widths, numeric)(clipped) == expected
