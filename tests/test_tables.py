"""The one table formatter (sim/results/tables.py): plain and Markdown."""

from __future__ import annotations

import pytest

from sim.results.tables import table


def test_plain_table_aligns_columns_without_reparsing_numbers():
    text = table(["year", "deaths"], [["2017", "28,823 [27,000-30,000]"], ["2020", "0.50"]])
    lines = text.splitlines()
    assert lines[0].split() == ["year", "deaths"] and set(lines[1].replace(" ", "")) == {"-"}
    assert lines[3].endswith("0.50")            # right-aligned, kept as written (not 0.5)
    assert len({len(line) for line in lines}) == 1
    assert table(["year", "deaths"], []).split() == ["year", "deaths", "------", "--------"]


def test_markdown_table_is_compact_and_escapes_pipes():
    text = table(["a", "b"], [["x|y", "1"]], markdown=True, align=["left", "right"])
    assert text.splitlines() == ["| a | b |", "| --- | --: |", "| x\\|y | 1 |"]
    with pytest.raises(ValueError, match="align"):
        table(["a", "b"], [], align=["left"])
