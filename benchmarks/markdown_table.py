"""The benchmarks' figures as a Markdown table, ready for the README and docs.

A benchmark runs as a script (`python benchmarks/x.py`), so this folder is on its
import path and `from markdown_table import markdown` finds this module."""

from __future__ import annotations


def markdown(rows: list[dict[str, object]]) -> str:
    """The rows as a Markdown table (numbers right-aligned, integers with separators)."""
    heads = list(rows[0])
    lines = ["| " + " | ".join(heads) + " |"]
    lines.append(
        "|"
        + "|".join("---:" if isinstance(rows[0][h], int | float) else "---" for h in heads)
        + "|"
    )
    for row in rows:
        lines.append(
            "| "
            + " | ".join(f"{row[h]:,}" if isinstance(row[h], int) else str(row[h]) for h in heads)
            + " |"
        )
    return "\n".join(lines)
