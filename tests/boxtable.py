"""The CLI's tables (DuckDB's box rendering) read back into cells, for tests that check what a user sees."""
from __future__ import annotations


def box_rows(out: str) -> list[list[str]]:
    """Every line of a box table that holds cells (the header, the types, the rows), each cell stripped."""
    return [[cell.strip() for cell in line.strip("│").split("│")] for line in out.splitlines() if line[:1] == "│"]
