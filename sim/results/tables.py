"""The one table formatter of the project: plain text for the console, Markdown for reports.

Every table fentsim prints or writes (run summaries, comparisons, calibration fits, study reports,
the model reference) goes through `table`.  Plain tables are laid out by `tabulate` (aligned
columns under a rule of dashes); Markdown tables are written compactly (`| a | b |`, alignment in
the rule), so report files stay small and diff well.  Cells are given as already formatted
strings (numbers are never re-parsed), so each caller keeps its own number format; columns are
right-aligned unless `align` says otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tabulate import tabulate

PLAIN = "simple"     # tabulate's format: header, dashes, columns separated by two spaces
RULE = {"left": "---", "right": "--:", "center": ":-:"}


def _cell(value: Any, markdown: bool) -> str:
    text = "" if value is None else str(value)
    if markdown:
        text = text.replace("|", "\\|").replace("\n", " ")
    return text


def table(header: Sequence[str], rows: Sequence[Sequence[Any]], *, markdown: bool = False,
          align: Sequence[str] | str = "right") -> str:
    """`rows` under `header` as a plain (default) or Markdown table, without a trailing newline.

    `align`: 'right', 'left' or 'center' for every column, or one of these per column.
    """
    header = [_cell(h, markdown) for h in header]
    body = [[_cell(c, markdown) for c in row] for row in rows]
    aligns = [align] * len(header) if isinstance(align, str) else list(align)
    if len(aligns) != len(header):
        raise ValueError(f"align: {len(aligns)} value(s) for {len(header)} column(s)")
    if markdown:
        return "\n".join("| " + " | ".join(row) + " |"
                         for row in [header, [RULE[a] for a in aligns], *body])
    return tabulate(body, headers=header, tablefmt=PLAIN, disable_numparse=True,
                    colalign=aligns if body else None)  # (tabulate fails on colalign without rows)
