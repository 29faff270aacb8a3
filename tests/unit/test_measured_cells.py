"""A table cell that shows a measured number shows only that number: one `<!-- measured:NAME.QUOTE -->` marker (a
quote, never a whole result with its commentary), and whatever explains it stands outside the marker, in another
cell or the text. tools.measured then rewrites the cell whole, and nothing typed sits beside a number it replaces."""

from __future__ import annotations

import re

import pytest

from tools.measured import TABLE, documents

MARKER = re.compile(r"<!-- measured:([a-z0-9_]+)(?:\.([a-z0-9_]+))? -->(.*?)<!-- /measured -->")
QUOTE_CELL = re.compile(r"<!-- measured:[a-z0-9_]+\.[a-z0-9_]+ -->[^<|]*<!-- /measured -->")


def cells_with_markers(text: str) -> list[str]:
    """Every table cell holding a marker, outside the generated Measured table."""
    text = TABLE.sub("", text)
    rows = [line for line in text.splitlines() if line.startswith("|") and "<!-- measured:" in line]
    return [cell.strip() for row in rows for cell in row.strip("|").split(" | ") if "<!-- measured:" in cell]


def bad_cells(text: str) -> list[str]:
    return [cell for cell in cells_with_markers(text) if not QUOTE_CELL.fullmatch(cell)]


def test_every_measured_cell_is_one_quote():
    cells = [cell for path in documents() for cell in cells_with_markers(path.read_text())]
    assert len(cells) >= 7
    assert {path.name: bad_cells(path.read_text()) for path in documents() if bad_cells(path.read_text())} == {}


@pytest.mark.parametrize(("row", "bad"), [
    ("| endpoint p50 (forward: <!-- measured:endpoint_model.ms -->0.62 ms<!-- /measured -->) | x |", True),
    ("| model | <!-- measured:model_accuracy -->0.878 ± 0.003 (one fold: 0.845)<!-- /measured --> |", True),
    ("| a | <!-- measured:x.q -->1 s<!-- /measured --> and <!-- measured:y.q -->2 s<!-- /measured --> |", True),
    ("| endpoint p50 | <!-- measured:endpoint_wrk.p50 -->0.82 ms<!-- /measured --> | ≤ 1 ms |", False),
])
def test_commentary_inside_a_measured_cell_is_named(row, bad):
    assert bool(bad_cells(row)) is bad
